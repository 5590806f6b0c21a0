//! `POST /token`: authorization code with PKCE, refresh rotation, client authentication.

use axum::http::StatusCode;
use base64::Engine as _;
use futures::StreamExt as _;
use redis::AsyncCommands as _;

use crate::support::*;

#[tokio::test]
async fn a_code_is_exchanged_for_a_signed_access_token_and_a_refresh_token() {
    let server = TestServer::start().await;
    let client_id = server.register_public_client().await;
    let code = server.code_for(&client_id, "alice").await;
    let response = server.exchange(&client_id, &code).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(response.header("cache-control"), Some("no-store"));
    assert_eq!(response.header("pragma"), Some("no-cache"));
    let body = response.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 1800);
    assert_eq!(body["scope"], "mcp");
    assert_eq!(body["refresh_token"].as_str().unwrap().len(), 43);
    let typed: mcp_auth_proto::token::TokenResponse = serde_json::from_value(body.clone()).unwrap();

    let (header, claims) = decode_jwt(&typed.access_token);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "EdDSA");
    let jwks = server.get("/jwks").await.json();
    let key = &jwks["keys"][0];
    assert_eq!(header["kid"], key["kid"]);
    let claims: mcp_auth_proto::claims::AccessTokenClaims = serde_json::from_value(claims).unwrap();
    assert_eq!(claims.iss, ISSUER);
    assert!(claims.aud.contains(RESOURCE));
    assert_eq!(claims.sub, "dev-alice");
    assert_eq!(claims.preferred_username, "alice");
    assert_eq!(claims.client_id, client_id);
    assert_eq!(claims.scope, "mcp");
    assert_eq!(claims.exp - claims.iat, 1800);
    assert_eq!(claims.nbf, claims.iat);
    assert!(!claims.jti.is_empty() && !claims.grant_id.is_empty());

    // The signature verifies with the published JWK alone (independent Ed25519 code).
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let x: [u8; 32] = engine
        .decode(key["x"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let verifying = ed25519_dalek::VerifyingKey::from_bytes(&x).unwrap();
    let (signing_input, signature) = typed.access_token.rsplit_once('.').unwrap();
    let signature: [u8; 64] = engine.decode(signature).unwrap().try_into().unwrap();
    verifying
        .verify_strict(
            signing_input.as_bytes(),
            &ed25519_dalek::Signature::from_bytes(&signature),
        )
        .unwrap();
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_what_it_issued() {
    let server = TestServer::start().await;
    let client_id = server.register_public_client().await;
    let code = server.code_for(&client_id, "alice").await;
    let first = server.exchange(&client_id, &code).await.json();
    let (_, claims) = decode_jwt(first["access_token"].as_str().unwrap());

    let mut pubsub = server.redis.client().get_async_pubsub().await.unwrap();
    pubsub.subscribe("t:events:revocations").await.unwrap();

    let replay = server.exchange(&client_id, &code).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert_eq!(replay.error(), "invalid_grant");

    let message = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        pubsub.on_message().next(),
    )
    .await
    .unwrap()
    .unwrap();
    let event: mcp_auth_proto::store::RevocationEvent =
        serde_json::from_slice(message.get_payload_bytes()).unwrap();
    assert_eq!(
        event.target,
        mcp_auth_proto::store::RevocationTarget::Grant(
            claims["grant_id"].as_str().unwrap().to_owned()
        )
    );
    // The access token and refresh token of the first exchange are dead.
    let introspection = server
        .introspect(&client_id, first["access_token"].as_str().unwrap())
        .await;
    assert_eq!(introspection, serde_json::json!({"active": false}));
    let refresh = server
        .refresh(&client_id, first["refresh_token"].as_str().unwrap(), &[])
        .await;
    assert_eq!(refresh.error(), "invalid_grant");
}

#[tokio::test]
async fn pkce_redirect_uri_client_and_resource_must_match() {
    let server = TestServer::start().await;
    let client_id = server.register_public_client().await;
    let other_client = server.register_public_client().await;
    let wrong_verifier = "a".repeat(43);
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (vec![("code_verifier", wrong_verifier)], "invalid_grant"),
        (vec![("code_verifier", "short".into())], "invalid_grant"),
        (
            vec![("redirect_uri", "http://127.0.0.1:33418/other".into())],
            "invalid_grant",
        ),
        (vec![("redirect_uri", String::new())], "invalid_grant"),
        (vec![("client_id", other_client.clone())], "invalid_grant"),
        (
            vec![("resource", "http://time.example.com/mcp".into())],
            "invalid_target",
        ),
    ];
    for (overrides, error) in cases {
        let code = server.code_for(&client_id, "alice").await;
        let mut pairs: Vec<(&str, String)> = vec![
            ("grant_type", "authorization_code".into()),
            ("code", code.clone()),
            ("redirect_uri", REDIRECT.into()),
            ("code_verifier", CHALLENGE_VERIFIER.into()),
            ("client_id", client_id.clone()),
            ("resource", RESOURCE.into()),
        ];
        for (name, value) in &overrides {
            pairs.retain(|(n, _)| n != name);
            if !value.is_empty() {
                pairs.push((name, value.clone()));
            }
        }
        let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let response = server.post_form("/token", &borrowed).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{overrides:?}");
        assert_eq!(response.error(), error, "{overrides:?}");
        // A failed attempt burns the code.
        let retry = server.exchange(&client_id, &code).await;
        assert_eq!(retry.error(), "invalid_grant", "{overrides:?}");
    }
    // resource may be omitted at the token endpoint; the code's applies.
    let code = server.code_for(&client_id, "alice").await;
    let response = server
        .post_form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", CHALLENGE_VERIFIER),
                ("client_id", &client_id),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::OK);
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let server = TestServer::start().await;
    let client_id = server.register_public_client().await;
    let code = server.code_for(&client_id, "alice").await;
    server.clock.advance(61);
    let response = server.exchange(&client_id, &code).await;
    assert_eq!(response.error(), "invalid_grant");
}

#[tokio::test]
async fn malformed_requests_get_rfc6749_errors() {
    let server = TestServer::start().await;
    let client_id = server.register_public_client().await;
    type Case<'a> = (Vec<(&'a str, &'a str)>, &'a str, StatusCode);
    let cases: Vec<Case<'_>> = vec![
        (
            vec![("client_id", &client_id)],
            "invalid_request",
            StatusCode::BAD_REQUEST,
        ),
        (
            vec![("grant_type", "password"), ("client_id", &client_id)],
            "unsupported_grant_type",
            StatusCode::BAD_REQUEST,
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &client_id),
            ],
            "unsupported_grant_type",
            StatusCode::BAD_REQUEST,
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("client_id", &client_id),
            ],
            "invalid_request",
            StatusCode::BAD_REQUEST,
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("code", "x"),
                ("client_id", &client_id),
            ],
            "invalid_request",
            StatusCode::BAD_REQUEST,
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("code", "x"),
                ("code_verifier", CHALLENGE_VERIFIER),
                ("client_id", &client_id),
            ],
            "invalid_grant",
            StatusCode::BAD_REQUEST,
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("grant_type", "refresh_token"),
                ("client_id", &client_id),
            ],
            "invalid_request",
            StatusCode::BAD_REQUEST,
        ),
        (
            vec![("grant_type", "refresh_token"), ("client_id", &client_id)],
            "invalid_request",
            StatusCode::BAD_REQUEST,
        ),
        (
            vec![("grant_type", "authorization_code"), ("code", "x")],
            "invalid_client",
            StatusCode::UNAUTHORIZED,
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("code", "x"),
                ("client_id", "nobody"),
            ],
            "invalid_client",
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for (pairs, error, status) in cases {
        let response = server.post_form("/token", &pairs).await;
        assert_eq!(response.status, status, "{pairs:?}: {}", response.text());
        assert_eq!(response.error(), error, "{pairs:?}");
        assert_eq!(response.header("cache-control"), Some("no-store"));
    }
    let json = server
        .json(
            axum::http::Method::POST,
            "/token",
            &serde_json::json!({"grant_type": "authorization_code"}),
            None,
        )
        .await;
    assert_eq!(json.error(), "invalid_request");
    let get = server.get("/token").await;
    assert_eq!(get.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn confidential_clients_authenticate_with_their_secret() {
    let server = TestServer::start().await;
    for method in ["client_secret_basic", "client_secret_post"] {
        let (client_id, secret) = server.register_confidential_client(method).await;
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"))
        );
        let wrong_basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:wrong"))
        );
        let exchange = |code: String, auth: Option<String>, post_secret: Option<String>| {
            let server = &server;
            let client_id = client_id.clone();
            async move {
                let mut pairs = vec![
                    ("grant_type", "authorization_code".to_owned()),
                    ("code", code),
                    ("redirect_uri", REDIRECT.to_owned()),
                    ("code_verifier", CHALLENGE_VERIFIER.to_owned()),
                    ("client_id", client_id),
                ];
                if let Some(secret) = post_secret {
                    pairs.push(("client_secret", secret));
                }
                let borrowed: Vec<(&str, &str)> =
                    pairs.iter().map(|(n, v)| (*n, v.as_str())).collect();
                let headers: Vec<(&str, &str)> =
                    auth.iter().map(|a| ("authorization", a.as_str())).collect();
                server.post_form_with("/token", &borrowed, &headers).await
            }
        };
        let ok_basic = exchange(
            server.code_for(&client_id, "alice").await,
            Some(basic.clone()),
            None,
        )
        .await;
        assert_eq!(
            ok_basic.status,
            StatusCode::OK,
            "{method}: {}",
            ok_basic.text()
        );
        let ok_post = exchange(
            server.code_for(&client_id, "alice").await,
            None,
            Some(secret.clone()),
        )
        .await;
        assert_eq!(ok_post.status, StatusCode::OK, "{method}");

        let bad = exchange(
            server.code_for(&client_id, "alice").await,
            Some(wrong_basic),
            None,
        )
        .await;
        assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
        assert_eq!(bad.error(), "invalid_client");
        assert!(bad.header("www-authenticate").unwrap().starts_with("Basic"));
        let none = exchange(server.code_for(&client_id, "alice").await, None, None).await;
        assert_eq!(none.error(), "invalid_client");
        let both = exchange(
            server.code_for(&client_id, "alice").await,
            Some(basic),
            Some(secret.clone()),
        )
        .await;
        assert_eq!(both.error(), "invalid_request");

        // RFC 6749 §2.3.1: each half is form-urlencoded before Base64. An encoded secret is
        // the same secret; a secret with anything after it (a second field, say) is not.
        let encoded_secret: String = secret.bytes().map(|b| format!("%{b:02X}")).collect();
        for (case, credentials, status) in [
            (
                "percent-encoded",
                format!("{client_id}:{encoded_secret}"),
                StatusCode::OK,
            ),
            (
                "junk after the secret",
                format!("{client_id}:{secret}&junk"),
                StatusCode::UNAUTHORIZED,
            ),
            (
                "a second colon",
                format!("{client_id}:{secret}:x"),
                StatusCode::UNAUTHORIZED,
            ),
            (
                "a broken escape",
                format!("{client_id}:{secret}%G1"),
                StatusCode::UNAUTHORIZED,
            ),
        ] {
            let auth = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(credentials)
            );
            let response =
                exchange(server.code_for(&client_id, "alice").await, Some(auth), None).await;
            assert_eq!(
                response.status,
                status,
                "{method} {case}: {}",
                response.text()
            );
        }
    }
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_grant() {
    let server = TestServer::start().await;
    let (client_id, first) = server.tokens().await;
    let refresh_1 = first["refresh_token"].as_str().unwrap().to_owned();

    let second = server.refresh(&client_id, &refresh_1, &[]).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text());
    assert_eq!(second.header("cache-control"), Some("no-store"));
    let second = second.json();
    let refresh_2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh_1, refresh_2);
    let (_, claims_1) = decode_jwt(first["access_token"].as_str().unwrap());
    let (_, claims_2) = decode_jwt(second["access_token"].as_str().unwrap());
    assert_eq!(claims_1["grant_id"], claims_2["grant_id"]);
    assert_ne!(claims_1["jti"], claims_2["jti"]);

    // The old token again, past the retry grace: reuse. Refused, and the whole grant goes.
    server.clock.advance(11);
    let reuse = server.refresh(&client_id, &refresh_1, &[]).await;
    assert_eq!(reuse.error(), "invalid_grant");
    let after = server.refresh(&client_id, &refresh_2, &[]).await;
    assert_eq!(after.error(), "invalid_grant");
    let introspection = server
        .introspect(&client_id, second["access_token"].as_str().unwrap())
        .await;
    assert_eq!(introspection["active"], false);
    let mut conn = server.redis.conn().await;
    let grant_id = claims_1["grant_id"].as_str().unwrap();
    let revoked: Option<String> = conn
        .get(format!("t:revoked:grant:{grant_id}"))
        .await
        .unwrap();
    assert!(revoked.is_some());
}

#[tokio::test]
async fn a_refresh_retried_within_the_grace_gets_the_same_successor() {
    let server = TestServer::start().await;
    let (client_id, first) = server.tokens().await;
    let refresh_1 = first["refresh_token"].as_str().unwrap().to_owned();

    // Two concurrent refreshes with one token (a retry racing a lost response): both succeed
    // with the same new refresh token, and the grant lives.
    let (a, b) = tokio::join!(
        server.refresh(&client_id, &refresh_1, &[]),
        server.refresh(&client_id, &refresh_1, &[]),
    );
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(b.status, StatusCode::OK, "{}", b.text());
    let (a, b) = (a.json(), b.json());
    let refresh_2 = a["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(b["refresh_token"], refresh_2);
    assert_ne!(refresh_2, refresh_1);
    assert_ne!(a["access_token"], b["access_token"]);
    // Redis holds neither token in the clear.
    let mut conn = server.redis.conn().await;
    let keys: Vec<String> = conn.keys("t:refresh:*").await.unwrap();
    for key in keys {
        let fields: Vec<String> = conn.hvals(&key).await.unwrap();
        assert!(
            fields
                .iter()
                .all(|v| !v.contains(&refresh_1) && !v.contains(&refresh_2)),
            "{key}: {fields:?}"
        );
    }

    // Ten seconds on it still holds; the successor works and rotates normally.
    server.clock.advance(10);
    let retry = server.refresh(&client_id, &refresh_1, &[]).await;
    assert_eq!(retry.json()["refresh_token"], refresh_2);
    let third = server.refresh(&client_id, &refresh_2, &[]).await;
    assert_eq!(third.status, StatusCode::OK, "{}", third.text());
    let refresh_3 = third.json()["refresh_token"].as_str().unwrap().to_owned();

    // Past the grace, the first token is reuse again: the grant goes, successors with it.
    server.clock.advance(1);
    assert_eq!(
        server.refresh(&client_id, &refresh_1, &[]).await.error(),
        "invalid_grant"
    );
    assert_eq!(
        server.refresh(&client_id, &refresh_3, &[]).await.error(),
        "invalid_grant"
    );
}

#[tokio::test]
async fn a_revoked_grant_gets_no_successor_even_within_the_grace() {
    let server = TestServer::start().await;
    let (client_id, first) = server.tokens().await;
    let refresh_1 = first["refresh_token"].as_str().unwrap().to_owned();
    let second = server.refresh(&client_id, &refresh_1, &[]).await.json();
    let refresh_2 = second["refresh_token"].as_str().unwrap();
    let revoked = server
        .post_form(
            "/revoke",
            &[("token", refresh_2), ("client_id", &client_id)],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text());
    assert_eq!(
        server.refresh(&client_id, &refresh_1, &[]).await.error(),
        "invalid_grant"
    );
}

#[tokio::test]
async fn refresh_may_narrow_the_scope_but_never_widen_it() {
    let server = TestServer::start().await;
    let (client_id, first) = server.tokens().await;
    let refresh = first["refresh_token"].as_str().unwrap().to_owned();

    // Asking for more is refused without costing the token.
    let wider = server
        .refresh(&client_id, &refresh, &[("scope", "mcp admin")])
        .await;
    assert_eq!(wider.error(), "invalid_scope");
    let other_resource = server
        .refresh(
            &client_id,
            &refresh,
            &[("resource", "http://time.example.com/mcp")],
        )
        .await;
    assert_eq!(other_resource.error(), "invalid_target");

    let narrower = server
        .refresh(&client_id, &refresh, &[("scope", "mcp:tools")])
        .await;
    assert_eq!(narrower.status, StatusCode::OK, "{}", narrower.text());
    let narrower = narrower.json();
    assert_eq!(narrower["scope"], "mcp:tools");
    let (_, claims) = decode_jwt(narrower["access_token"].as_str().unwrap());
    assert_eq!(claims["scope"], "mcp:tools");
    // The refresh token keeps the original grant.
    let next = server
        .refresh(&client_id, narrower["refresh_token"].as_str().unwrap(), &[])
        .await
        .json();
    assert_eq!(next["scope"], "mcp");
}

#[tokio::test]
async fn refresh_tokens_belong_to_their_client() {
    let server = TestServer::start().await;
    let (client_id, first) = server.tokens().await;
    let thief = server.register_public_client().await;
    let refresh = first["refresh_token"].as_str().unwrap();
    let stolen = server.refresh(&thief, refresh, &[]).await;
    assert_eq!(stolen.error(), "invalid_grant");
    // The legitimate client is unaffected.
    let own = server.refresh(&client_id, refresh, &[]).await;
    assert_eq!(own.status, StatusCode::OK);
}

#[tokio::test]
async fn clients_without_the_refresh_grant_get_no_refresh_token() {
    let server = TestServer::start().await;
    let body = serde_json::json!({
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code"],
    });
    let info = server
        .json(axum::http::Method::POST, "/register", &body, None)
        .await
        .json();
    let client_id = info["client_id"].as_str().unwrap();
    let code = server.code_for(client_id, "alice").await;
    let response = server.exchange(client_id, &code).await.json();
    assert!(response.get("refresh_token").is_none());
    let refresh = server.refresh(client_id, "anything", &[]).await;
    assert_eq!(refresh.error(), "unauthorized_client");
}

#[tokio::test]
async fn without_a_grace_any_reuse_revokes_the_grant() {
    let server = TestServer::with(
        |yaml| format!("{yaml}tokens: {{ refresh_reuse_grace: 0s }}\n"),
        Default::default(),
    )
    .await;
    let (client_id, first) = server.tokens().await;
    let refresh_1 = first["refresh_token"].as_str().unwrap().to_owned();
    let second = server.refresh(&client_id, &refresh_1, &[]).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text());
    let refresh_2 = second.json()["refresh_token"].as_str().unwrap().to_owned();
    // The same second, no clock advanced: still reuse.
    let reuse = server.refresh(&client_id, &refresh_1, &[]).await;
    assert_eq!(reuse.error(), "invalid_grant");
    let after = server.refresh(&client_id, &refresh_2, &[]).await;
    assert_eq!(after.error(), "invalid_grant");
}

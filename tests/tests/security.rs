//! Hostile clients against the running stack (real Envoy with the filter, ext_authz, the
//! authserver, Redis, the fake GitHub). Every case asserts the exact status and error, and
//! for the MCP endpoint that nothing reached the MCP server: the target service is a
//! header-recording upstream that counts what it receives.
//!
//! The authorization-flow attacks that need a whole sign-in (skipped consent, CSRF, changed
//! redirect URI, code replay, wrong verifier, refresh-token replay, users off the
//! allow-list) live with the flow itself in `e2e/authserver.rs` and `e2e/ext_authz.rs`.

// Helpers outside `#[test]` functions: a failed step should fail loudly, at the step.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_auth_e2e::fake_github::{FakeGitHub, FakeUser};
use mcp_auth_e2e::oauth::{
    Browser, CHALLENGE, INITIALIZE, REDIRECT, VERIFIER, discover, exchange, form, params, register,
    sign_in,
};
use mcp_auth_e2e::stack::{Stack, StackOptions, unix_now};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

const ECHO: &str = "/echo/mcp";

/// A stack whose `echo` service records what reaches it, octocat signed in at GitHub.
async fn stack() -> (Stack, FakeGitHub) {
    Stack::start_with_github(
        FakeUser::new(583231, "octocat"),
        StackOptions {
            header_echo: true,
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

fn reached(stack: &Stack) -> usize {
    stack.echo.as_ref().unwrap().requests().len()
}

/// Claims of a valid token for `resource`, to be spoiled one at a time.
fn claims(stack: &Stack, resource: &str) -> Value {
    let now = unix_now();
    json!({
        "iss": stack.issuer(), "sub": "583231", "aud": resource,
        "exp": now + 600, "iat": now, "nbf": now, "jti": format!("sec-{now}"),
        "client_id": "sec-client", "scope": "mcp", "preferred_username": "octocat",
        "grant_id": "sec-grant",
    })
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// HMAC-SHA256 (RFC 2104), for tokens "signed" with the public key as a shared secret.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// A token with `header` and `claims` and the signature segment `signature`.
fn jws(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header),
        b64(claims),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// POSTs an MCP `initialize` to the echo service with `auth` as the Authorization header.
async fn mcp(stack: &Stack, auth: Option<&str>, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(stack.url(ECHO))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(INITIALIZE);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// Asserts `response` is `status` with `error` in its JSON body and, for 401/403, in its
/// challenge.
async fn refused(case: &str, response: reqwest::Response, status: StatusCode, error: &str) {
    assert_eq!(response.status(), status, "{case}");
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        if !error.is_empty() {
            assert!(
                challenge.contains(&format!("error=\"{error}\"")),
                "{case}: {challenge}"
            );
        }
        assert!(
            challenge.is_empty() || challenge.contains("resource_metadata="),
            "{case}: {challenge}"
        );
    }
    if !error.is_empty() {
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(body["error"], error, "{case}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_misused_tokens_never_reach_the_mcp_server() {
    let (stack, _github) = stack().await;
    let echo_resource = format!("{}{ECHO}", stack.issuer());
    let other_resource = format!("{}/everything/mcp", stack.issuer());
    let jwks: Value = reqwest::get(stack.url("/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    let kid = key["kid"].as_str().unwrap();
    let good = claims(&stack, &echo_resource);
    let now = unix_now();
    let spoiled = |field: &str, value: Value| {
        let mut c = good.clone();
        c[field] = value;
        stack.forge_token(&c).unwrap()
    };
    let real_signature = {
        let token = stack.forge_token(&good).unwrap();
        URL_SAFE_NO_PAD
            .decode(token.rsplit('.').next().unwrap())
            .unwrap()
    };
    let hs256_header = json!({"alg": "HS256", "typ": "at+jwt", "kid": kid});
    let hs256_input = format!("{}.{}", b64(&hs256_header), b64(&good));
    let hs256 = format!(
        "{hs256_input}.{}",
        URL_SAFE_NO_PAD.encode(hmac_sha256(
            key["x"].as_str().unwrap_or_default().as_bytes(),
            hs256_input.as_bytes()
        ))
    );
    let header_with = |extra: Value| {
        let mut header = json!({"alg": key["alg"], "typ": "at+jwt", "kid": kid});
        for (k, v) in extra.as_object().unwrap() {
            header[k] = v.clone();
        }
        header
    };

    let invalid_tokens: Vec<(&str, String)> = vec![
        (
            "alg none",
            jws(&json!({"alg": "none", "typ": "at+jwt"}), &good, b""),
        ),
        (
            "alg none, kid of a real key",
            jws(&json!({"alg": "none", "kid": kid}), &good, b""),
        ),
        ("HS256 with the public key as secret", hs256),
        (
            "unknown kid",
            jws(
                &header_with(json!({"kid": "no-such-key"})),
                &good,
                &real_signature,
            ),
        ),
        (
            "path traversal kid",
            jws(
                &header_with(json!({"kid": "../../../../etc/passwd"})),
                &good,
                &real_signature,
            ),
        ),
        (
            "oversized kid",
            jws(
                &header_with(json!({"kid": "k".repeat(4096)})),
                &good,
                &real_signature,
            ),
        ),
        (
            "jku pointing elsewhere",
            jws(
                &header_with(json!({"jku": "https://evil.example/jwks"})),
                &good,
                &real_signature,
            ),
        ),
        (
            "embedded jwk",
            jws(&header_with(json!({"jwk": key})), &good, &real_signature),
        ),
        (
            "x5u pointing elsewhere",
            jws(
                &header_with(json!({"x5u": "https://evil.example/cert"})),
                &good,
                &real_signature,
            ),
        ),
        (
            "payload swapped under a real signature",
            jws(
                &header_with(json!({})),
                &spoiled_claims(&good, "sub", json!("1")),
                &real_signature,
            ),
        ),
        ("expired", spoiled("exp", json!(now - 3600))),
        ("not yet valid", spoiled("nbf", json!(now + 3600))),
        (
            "wrong issuer",
            spoiled("iss", json!("https://evil.example")),
        ),
        (
            "issuer with a trailing slash",
            spoiled("iss", json!(format!("{}/", stack.issuer()))),
        ),
        (
            "wrong audience",
            spoiled("aud", json!("https://evil.example/mcp")),
        ),
        (
            "token of another service",
            spoiled("aud", json!(other_resource)),
        ),
        ("no audience", spoiled("aud", Value::Null)),
        ("empty subject", spoiled("sub", json!(""))),
        ("not a JWT", "garbage".to_owned()),
        ("two segments", "a.b".to_owned()),
    ];
    let count = invalid_tokens.len();
    for (case, token) in invalid_tokens {
        let response = mcp(&stack, Some(&format!("Bearer {token}")), &[]).await;
        refused(case, response, StatusCode::UNAUTHORIZED, "invalid_token").await;
    }
    assert_eq!(reached(&stack), 0, "after {count} forged tokens");

    // Malformed credentials: RFC 6750 §3.1 invalid_request.
    let valid = stack.forge_token(&good).unwrap();
    let bearer = format!("Bearer {valid}");
    let two = reqwest::Client::new()
        .post(stack.url(ECHO))
        .header("authorization", &bearer)
        .header("authorization", &bearer)
        .body(INITIALIZE)
        .send()
        .await
        .unwrap();
    refused(
        "two Authorization headers",
        two,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    let query = reqwest::Client::new()
        .post(stack.url(&format!("{ECHO}?access_token={valid}")))
        .body(INITIALIZE)
        .send()
        .await
        .unwrap();
    refused(
        "token in the query string",
        query,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    // Characters outside RFC 6750's b64token syntax: a malformed header, not a bad token.
    let syntax = mcp(&stack, Some("Bearer !!.!!.!!"), &[]).await;
    refused(
        "token outside b64token syntax",
        syntax,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    for (case, auth) in [
        ("Basic credentials", "Basic b2N0b2NhdDpwYXNz"),
        ("Bearer without a token", "Bearer "),
    ] {
        let response = mcp(&stack, Some(auth), &[]).await;
        assert!(
            matches!(
                response.status(),
                StatusCode::UNAUTHORIZED | StatusCode::BAD_REQUEST
            ),
            "{case}: {}",
            response.status()
        );
    }
    let spaced = mcp(&stack, Some(&format!("Bearer {valid} extra")), &[]).await;
    assert!(
        matches!(
            spaced.status(),
            StatusCode::UNAUTHORIZED | StatusCode::BAD_REQUEST
        ),
        "a token followed by junk: {}",
        spaced.status()
    );

    // A forged hand-off header without a token is not a token.
    let handoff = mcp(
        &stack,
        None,
        &[(
            "x-mcp-auth-handoff",
            "sub=1;login=root;cid=c;gid=g;jti=j;scope=mcp;exp=9999999999;iat=1;svc=echo",
        )],
    )
    .await;
    refused(
        "forged hand-off, no token",
        handoff,
        StatusCode::UNAUTHORIZED,
        "",
    )
    .await;

    // A disallowed browser Origin (DNS rebinding), even with a valid token.
    let origin = mcp(&stack, Some(&bearer), &[("origin", "https://evil.example")]).await;
    assert_eq!(origin.status(), StatusCode::FORBIDDEN, "disallowed Origin");
    // Headers far over Envoy's limit.
    let huge = "x".repeat(64 * 1024);
    let oversize = mcp(&stack, Some(&bearer), &[("x-filler", &huge)]).await;
    assert_eq!(
        oversize.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "oversize headers"
    );
    assert_eq!(reached(&stack), 0, "malformed requests reached the server");

    // With the valid token the request passes, carrying the gateway's identity, never the
    // client's, and nothing of the reserved namespace.
    let response = mcp(
        &stack,
        Some(&bearer),
        &[
            ("x-mcp-user-id", "0"),
            ("x-mcp-user-login", "root"),
            ("x-mcp-scopes", "admin"),
            (
                "x-mcp-auth-handoff",
                "sub=0;login=root;cid=c;gid=g;jti=j;scope=admin;exp=9999999999;iat=1;svc=echo",
            ),
            ("x-mcp-auth-sub", "0"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let seen = stack.echo.as_ref().unwrap().requests();
    let headers = seen.last().unwrap();
    assert_eq!(headers["x-mcp-user-id"], "583231");
    assert_eq!(headers["x-mcp-user-login"], "octocat");
    assert_eq!(headers["x-mcp-scopes"], "mcp");
    assert!(!headers.contains_key("authorization"), "{headers:?}");
    assert!(
        !headers.keys().any(|k| k.starts_with("x-mcp-auth")),
        "{headers:?}"
    );
}

fn spoiled_claims(claims: &Value, field: &str, value: Value) -> Value {
    let mut c = claims.clone();
    c[field] = value;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_registrations_and_authorization_requests_are_refused() {
    let (stack, _github) = stack().await;
    let discovered = discover(&stack).await;
    let endpoint = discovered.metadata["registration_endpoint"]
        .as_str()
        .unwrap()
        .to_owned();
    let http = reqwest::Client::new();
    let register_with = |metadata: Value| {
        let http = http.clone();
        let endpoint = endpoint.clone();
        async move { http.post(&endpoint).json(&metadata).send().await.unwrap() }
    };
    for (case, metadata, error) in [
        (
            "javascript: redirect URI",
            json!({"redirect_uris": ["javascript:alert(1)"]}),
            "invalid_redirect_uri",
        ),
        (
            "http redirect URI on a public host",
            json!({"redirect_uris": ["http://evil.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            "redirect URI with a fragment",
            json!({"redirect_uris": ["https://app.example/cb#frag"]}),
            "invalid_redirect_uri",
        ),
        (
            "data: redirect URI",
            json!({"redirect_uris": ["data:text/html,hi"]}),
            "invalid_redirect_uri",
        ),
        (
            "no redirect URI",
            json!({"redirect_uris": []}),
            "invalid_redirect_uri",
        ),
        (
            "unsupported authentication method",
            json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
        ),
        (
            "implicit grant",
            json!({"redirect_uris": [REDIRECT], "grant_types": ["implicit"]}),
            "invalid_client_metadata",
        ),
        (
            "token response type",
            json!({"redirect_uris": [REDIRECT], "response_types": ["token"]}),
            "invalid_client_metadata",
        ),
    ] {
        let response = register_with(metadata).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{case}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], error, "{case}");
    }

    // Oversize bodies: refused before they are parsed, never a 500.
    // Four times the authserver's 16 KiB limit.
    let big = "x".repeat(64 * 1024);
    let response = http
        .post(&endpoint)
        .header("content-type", "application/json")
        .body(format!("{{\"client_name\":\"{big}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "oversize registration"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request", "oversize registration");
    let token_endpoint = discovered.metadata["token_endpoint"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = http
        .post(&token_endpoint)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=authorization_code&code={big}"))
        .send()
        .await
        .unwrap();
    // Envoy refuses it before the authserver (which would stop reading mid-upload and reset
    // the connection), with an OAuth error.
    assert_eq!(
        response.status(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "oversize token request"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request", "oversize token request");
    // GET on the token endpoint.
    let response = http.get(&token_endpoint).send().await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::METHOD_NOT_ALLOWED,
        "GET /token"
    );
    // Unsupported grant types.
    for grant in ["password", "client_credentials", "implicit"] {
        let response = http
            .post(&token_endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("grant_type", grant), ("client_id", "x")]))
            .send()
            .await
            .unwrap();
        assert!(
            matches!(
                response.status(),
                StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED
            ),
            "{grant}: {}",
            response.status()
        );
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error"] == "unsupported_grant_type" || body["error"] == "invalid_client",
            "{grant}: {body}"
        );
    }

    // Authorization requests a client (or an attacker crafting a link) can get wrong.
    let client_id = register(&discovered).await;
    let authorize = |pairs: Vec<(&str, String)>| {
        let mut url = reqwest::Url::parse(
            discovered.metadata["authorization_endpoint"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        url.query_pairs_mut()
            .extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())));
        url.to_string()
    };
    let base = |skip: &str, replace: Option<(&'static str, &str)>| {
        let mut pairs: Vec<(&str, String)> = vec![
            ("response_type", "code".into()),
            ("client_id", client_id.clone()),
            ("redirect_uri", REDIRECT.into()),
            ("state", "s".into()),
            ("code_challenge", CHALLENGE.into()),
            ("code_challenge_method", "S256".into()),
            ("resource", discovered.resource.clone()),
        ];
        pairs.retain(|(k, _)| *k != skip);
        if let Some((key, value)) = replace {
            pairs.retain(|(k, _)| *k != key);
            pairs.push((key, value.to_owned()));
        }
        authorize(pairs)
    };
    // Redirect URIs that are not the client's: an error page, never a redirect.
    for (case, uri) in [
        ("unregistered redirect URI", "http://127.0.0.1:33418/other"),
        ("redirect to another host", "https://evil.example/callback"),
        ("javascript: redirect", "javascript:alert(1)"),
    ] {
        let response = Browser::new()
            .get(&base("", Some(("redirect_uri", uri))))
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{case}");
        assert!(response.headers().get("location").is_none(), "{case}");
    }
    let unknown_client = Browser::new()
        .get(&base("", Some(("client_id", "no-such-client"))))
        .await;
    assert_eq!(
        unknown_client.status(),
        StatusCode::BAD_REQUEST,
        "unknown client"
    );
    assert!(unknown_client.headers().get("location").is_none());
    // Errors a valid client gets back at its redirect URI, with iss (RFC 9207).
    for (case, url, error) in [
        (
            "plain PKCE",
            base("", Some(("code_challenge_method", "plain"))),
            "invalid_request",
        ),
        ("no PKCE", base("code_challenge", None), "invalid_request"),
        ("no resource", base("resource", None), "invalid_target"),
        (
            "unknown resource",
            base("", Some(("resource", "https://evil.example/mcp"))),
            "invalid_target",
        ),
        (
            "token response type",
            base("", Some(("response_type", "token"))),
            "unsupported_response_type",
        ),
        (
            "scope the service does not offer",
            base("", Some(("scope", "admin"))),
            "invalid_scope",
        ),
    ] {
        // Nobody approved this client yet: the error is our page, never a redirect to its
        // registered URI (which anyone can point at a phishing site; RFC 9700 §4.11.2).
        let response = Browser::new().get(&url).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{case}");
        assert!(response.headers().get("location").is_none(), "{case}");
        let page = response.text().await.unwrap();
        assert!(page.contains(error), "{case}: {page}");
    }

    // A Client ID Metadata Document on a private address is never fetched.
    for cimd in [
        "https://127.0.0.1/client.json",
        "https://10.0.0.1/client.json",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/client.json",
        "http://app.example/client.json",
    ] {
        let response = Browser::new()
            .get(&base("", Some(("client_id", cimd))))
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "CIMD {cimd}");
        assert!(response.headers().get("location").is_none(), "CIMD {cimd}");
    }

    // Introspection and revocation need the client; another client's token is not theirs.
    let back = params(&sign_in(&stack, &discovered, &client_id).await);
    let (status, tokens) = exchange(&discovered, &client_id, &back["code"], VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    let introspection = discovered.metadata["introspection_endpoint"]
        .as_str()
        .unwrap();
    let anonymous = http
        .post(introspection)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("token", access)]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        anonymous.status(),
        StatusCode::UNAUTHORIZED,
        "anonymous introspection"
    );
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    let other_client = register(&discovered).await;
    let revoke = http
        .post(discovered.metadata["revocation_endpoint"].as_str().unwrap())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("token", access), ("client_id", &other_client)]))
        .send()
        .await
        .unwrap();
    assert!(
        !revoke.status().is_server_error(),
        "revocation by another client: {}",
        revoke.status()
    );
    // ... but the token was not revoked by a client it does not belong to.
    let still = reqwest::Client::new()
        .post(stack.url("/everything/mcp"))
        .bearer_auth(access)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(INITIALIZE)
        .send()
        .await
        .unwrap();
    assert_eq!(
        still.status(),
        StatusCode::OK,
        "another client revoked the token"
    );
}

/// A stack for the hardening cases: the `echo` service records what reaches it and reads the
/// seed's identity headers; `ext_authz` in `fast_mode` or per request.
async fn hardening_stack(fast_mode: bool, extra_config: &str) -> (Stack, FakeGitHub) {
    Stack::start_with_github(
        FakeUser::new(583231, "octocat"),
        StackOptions {
            header_echo: true,
            echo_config: "    identity_headers: { x-user-id: user_id, x-user-name: login }\n"
                .into(),
            extra_config: extra_config.into(),
            fast_mode,
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

/// A signed-in client of the echo service: its access token and client id.
async fn echo_token(stack: &Stack) -> (String, String, mcp_auth_e2e::oauth::Discovered) {
    let discovered = mcp_auth_e2e::oauth::discover_at(&stack.url(ECHO), stack.issuer()).await;
    let client_id = register(&discovered).await;
    let back = params(&sign_in(stack, &discovered, &client_id).await);
    let (status, tokens) = exchange(&discovered, &client_id, &back["code"], VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    (access, client_id, discovered)
}

/// Hardening 1: a token revoked shortly before its `exp` stays refused afterwards, while the
/// filter would still accept its signature for the clock leeway (30 s).
async fn a_revoked_token_stays_refused_past_its_exp(fast_mode: bool) {
    let (stack, _github) = hardening_stack(fast_mode, "tokens: { access_token: 3s }").await;
    let (access, client_id, discovered) = echo_token(&stack).await;
    let exp = {
        let payload = access.split('.').nth(1).unwrap();
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        claims["exp"].as_u64().unwrap()
    };
    assert_eq!(
        mcp(&stack, Some(&format!("Bearer {access}")), &[])
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        mcp_auth_e2e::oauth::revoke(&discovered, &client_id, &access).await,
        StatusCode::OK
    );
    // Past `exp`, inside the leeway: once the revocation record was gone, the token passed.
    mcp_auth_e2e::poll::until(
        "the token's exp to pass",
        std::time::Duration::from_secs(10),
        || async { (unix_now() > exp + 1).then_some(()) },
    )
    .await
    .unwrap();
    let before = reached(&stack);
    for _ in 0..3 {
        let response = mcp(&stack, Some(&format!("Bearer {access}")), &[]).await;
        refused(
            "revoked, past exp, inside the leeway",
            response,
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        )
        .await;
    }
    assert_eq!(
        reached(&stack),
        before,
        "a revoked token reached the MCP server"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_stays_refused_past_its_exp_per_request() {
    a_revoked_token_stays_refused_past_its_exp(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_stays_refused_past_its_exp_fast_mode() {
    a_revoked_token_stays_refused_past_its_exp(true).await;
}

/// Hardening 12: identity headers MCP servers already trust (the seed's ForwardAuth
/// `X-User-*`, `X-Forwarded-User`, `Remote-User`…) never pass from the client; a service that
/// reads the seed's headers gets them from the gateway.
async fn identity_headers_servers_trust_are_set_by_the_gateway_only(fast_mode: bool) {
    let (stack, _github) = hardening_stack(fast_mode, "").await;
    let (access, _, _) = echo_token(&stack).await;
    let forged = [
        ("x-user-id", "1"),
        ("x-user-name", "admin"),
        ("x-user-email", "admin@example.com"),
        ("x-forwarded-user", "admin"),
        ("x-forwarded-email", "admin@example.com"),
        ("x-forwarded-groups", "admins"),
        ("x-auth-request-user", "admin"),
        ("remote-user", "admin"),
        ("x-remote-user", "admin"),
        ("x-mcp-user-id", "1"),
        ("x-mcp-user-login", "admin"),
    ];
    let response = mcp(&stack, Some(&format!("Bearer {access}")), &forged).await;
    assert_eq!(response.status(), StatusCode::OK);
    let seen = stack.echo.as_ref().unwrap().requests();
    let headers = seen.last().unwrap();
    assert_eq!(headers["x-user-id"], "583231", "{headers:?}");
    assert_eq!(headers["x-user-name"], "octocat", "{headers:?}");
    assert_eq!(headers["x-mcp-user-id"], "583231", "{headers:?}");
    assert_eq!(headers["x-mcp-user-login"], "octocat", "{headers:?}");
    for (name, _) in &forged[2..9] {
        assert!(
            !headers.contains_key(*name),
            "{name} reached the server: {headers:?}"
        );
    }
    assert!(!headers.contains_key("authorization"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_headers_servers_trust_are_set_by_the_gateway_only_per_request() {
    identity_headers_servers_trust_are_set_by_the_gateway_only(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_headers_servers_trust_are_set_by_the_gateway_only_fast_mode() {
    identity_headers_servers_trust_are_set_by_the_gateway_only(true).await;
}

/// Hardening 3: a flood of `/authorize` (each would store a pending authorization in Redis)
/// is cut off per client address after the burst, with a page, before anything is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorize_flood_is_rate_limited_before_it_fills_redis() {
    let (stack, _github) = stack().await;
    let discovered = discover(&stack).await;
    let client_id = register(&discovered).await;
    let url = mcp_auth_e2e::oauth::authorize_url(&discovered, &client_id, &discovered.resource);
    let (mut stored, mut limited) = (0u64, 0);
    let started = std::time::Instant::now();
    for _ in 0..300 {
        let response = Browser::new().get(&url).await;
        match response.status() {
            StatusCode::OK => stored += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(response.headers().contains_key("retry-after"));
                limited += 1;
            }
            other => panic!("authorize flood: {other}"),
        }
    }
    // The default limit: 120 a minute per address (two a second), a minute's burst.
    let refilled = 2 * started.elapsed().as_secs() + 2;
    assert!(
        stored <= 120 + refilled,
        "{stored} pending authorizations stored in {:?}",
        started.elapsed()
    );
    assert!(limited > 0 && limited + stored == 300);
}

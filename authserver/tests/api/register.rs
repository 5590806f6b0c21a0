//! RFC 7591 registration and RFC 7592 management.

use axum::http::{Method, StatusCode};
use futures::StreamExt as _;
use redis::AsyncCommands as _;
use serde_json::json;

use crate::support::*;

fn native_client() -> serde_json::Value {
    json!({
        "redirect_uris": ["http://127.0.0.1:33418/callback"],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "client_name": "Test Client",
        "application_type": "native"
    })
}

#[tokio::test]
async fn a_public_client_registers_without_a_secret() {
    let server = TestServer::start().await;
    let response = server
        .json(Method::POST, "/register", &native_client(), None)
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    assert_eq!(response.header("cache-control"), Some("no-store"));
    let info = response.json();
    let client_id = info["client_id"].as_str().unwrap();
    assert!(info.get("client_secret").is_none());
    assert!(info.get("client_secret_expires_at").is_none());
    assert_eq!(info["token_endpoint_auth_method"], "none");
    assert_eq!(info["client_name"], "Test Client");
    assert!(info["client_id_issued_at"].as_u64().unwrap() > 0);
    assert!(info["registration_access_token"].as_str().unwrap().len() >= 43);
    assert_eq!(
        info["registration_client_uri"],
        format!("{ISSUER}/register/{client_id}")
    );
    let typed: mcp_auth_proto::registration::ClientInformation =
        serde_json::from_value(info.clone()).unwrap();
    assert_eq!(typed.client_id, client_id);
}

#[tokio::test]
async fn a_confidential_client_gets_a_secret_stored_only_as_a_digest() {
    let server = TestServer::start().await;
    let body = json!({"redirect_uris": ["https://app.example.com/cb"], "client_name": "Web"});
    let info = server
        .json(Method::POST, "/register", &body, None)
        .await
        .json();
    assert_eq!(info["token_endpoint_auth_method"], "client_secret_basic");
    let secret = info["client_secret"].as_str().unwrap();
    let token = info["registration_access_token"].as_str().unwrap();
    assert!(info["client_secret_expires_at"].as_u64().unwrap() > 0);

    let mut conn = server.redis.conn().await;
    let keys: Vec<String> = conn.keys("*").await.unwrap();
    for key in keys {
        let value: String = conn.get(&key).await.unwrap();
        assert!(!value.contains(secret), "secret stored in clear at {key}");
        assert!(
            !value.contains(token),
            "registration token stored in clear at {key}"
        );
    }
}

#[tokio::test]
async fn client_lifetime_comes_from_the_config() {
    let server = TestServer::start().await;
    let client_id = server.register_public_client().await;
    let mut conn = server.redis.conn().await;
    let key = format!("t:client:{client_id}");
    // Until first used, a day (tokens.unused_client_registration)…
    let ttl: i64 = conn.ttl(&key).await.unwrap();
    assert!(ttl > 23 * 3600 && ttl <= 24 * 3600, "{ttl}");
    // …then the full tokens.client_registration.
    let code = server.code_for(&client_id, "alice").await;
    assert_eq!(
        server.exchange(&client_id, &code).await.status,
        StatusCode::OK
    );
    let ttl: i64 = conn.ttl(&key).await.unwrap();
    assert!(ttl > 89 * 24 * 3600 && ttl <= 90 * 24 * 3600, "{ttl}");

    let forever = TestServer::with(
        |yaml| format!("{yaml}tokens: {{ client_registration: 0s }}\n"),
        Default::default(),
    )
    .await;
    let client_id = forever.register_public_client().await;
    let code = forever.code_for(&client_id, "alice").await;
    assert_eq!(
        forever.exchange(&client_id, &code).await.status,
        StatusCode::OK
    );
    let mut conn = forever.redis.conn().await;
    let ttl: i64 = conn.ttl(format!("t:client:{client_id}")).await.unwrap();
    assert_eq!(ttl, -1);
}

#[tokio::test]
async fn invalid_metadata_is_refused_with_rfc7591_codes() {
    let server = TestServer::start().await;
    let cases = [
        (
            json!({"redirect_uris": ["http://evil.example.com/cb"]}),
            "invalid_redirect_uri",
        ),
        (json!({"redirect_uris": []}), "invalid_redirect_uri"),
        (
            json!({"client_name": "no redirect"}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["implicit"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": "https://a.example/cb"}),
            "invalid_client_metadata",
        ),
        (json!([1, 2]), "invalid_client_metadata"),
    ];
    for (body, code) in cases {
        let response = server.json(Method::POST, "/register", &body, None).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(response.error(), code, "{body}");
    }
    let not_json = server
        .post_form("/register", &[("redirect_uris", "https://a/cb")])
        .await;
    assert_eq!(not_json.status, StatusCode::BAD_REQUEST);
    assert_eq!(not_json.error(), "invalid_client_metadata");

    let huge =
        json!({"redirect_uris": ["https://a.example/cb"], "client_name": "x".repeat(40_000)});
    let response = server.json(Method::POST, "/register", &huge, None).await;
    assert!(response.status.is_client_error());
}

#[tokio::test]
async fn management_needs_the_registration_access_token() {
    let server = TestServer::start().await;
    let info = server
        .json(Method::POST, "/register", &native_client(), None)
        .await
        .json();
    let uri = format!("/register/{}", info["client_id"].as_str().unwrap());
    let token = info["registration_access_token"].as_str().unwrap();

    let read = server
        .json(Method::GET, &uri, &json!({}), Some(token))
        .await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.json()["client_name"], "Test Client");
    assert!(read.json().get("registration_access_token").is_none());

    for bad in [None, Some("wrong")] {
        let response = server.json(Method::GET, &uri, &json!({}), bad).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED);
        assert_eq!(response.error(), "invalid_token");
        assert!(
            response
                .header("www-authenticate")
                .unwrap()
                .starts_with("Bearer")
        );
    }
    // Another client's token does not open this one.
    let other = server
        .json(Method::POST, "/register", &native_client(), None)
        .await
        .json();
    let response = server
        .json(
            Method::GET,
            &uri,
            &json!({}),
            other["registration_access_token"].as_str(),
        )
        .await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    let missing = server
        .json(Method::GET, "/register/nope", &json!({}), Some(token))
        .await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn update_replaces_metadata() {
    let server = TestServer::start().await;
    let info = server
        .json(Method::POST, "/register", &native_client(), None)
        .await
        .json();
    let client_id = info["client_id"].as_str().unwrap();
    let uri = format!("/register/{client_id}");
    let token = info["registration_access_token"].as_str().unwrap();

    let mut update = native_client();
    update["client_id"] = client_id.into();
    update["client_name"] = "Renamed".into();
    let response = server.json(Method::PUT, &uri, &update, Some(token)).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(response.json()["client_name"], "Renamed");

    // Becoming confidential issues a secret, once.
    update["token_endpoint_auth_method"] = "client_secret_post".into();
    let response = server.json(Method::PUT, &uri, &update, Some(token)).await;
    let secret = response.json()["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    // A wrong current secret is refused; the right one accepted.
    update["client_secret"] = "wrong".into();
    let response = server.json(Method::PUT, &uri, &update, Some(token)).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    update["client_secret"] = secret.into();
    let response = server.json(Method::PUT, &uri, &update, Some(token)).await;
    assert_eq!(response.status, StatusCode::OK);
    assert!(response.json().get("client_secret").is_none());

    update["client_id"] = "someone-else".into();
    let response = server.json(Method::PUT, &uri, &update, Some(token)).await;
    assert_eq!(response.error(), "invalid_request");

    let mut bad = native_client();
    bad["client_id"] = client_id.into();
    bad["redirect_uris"] = json!(["http://evil.example.com/cb"]);
    let response = server.json(Method::PUT, &uri, &bad, Some(token)).await;
    assert_eq!(response.error(), "invalid_redirect_uri");
}

#[tokio::test]
async fn delete_removes_the_client_and_announces_the_revocation() {
    let server = TestServer::start().await;
    let info = server
        .json(Method::POST, "/register", &native_client(), None)
        .await
        .json();
    let client_id = info["client_id"].as_str().unwrap();
    let uri = format!("/register/{client_id}");
    let token = info["registration_access_token"].as_str().unwrap();

    let mut pubsub = server.redis.client().get_async_pubsub().await.unwrap();
    pubsub.subscribe("t:events:revocations").await.unwrap();

    let response = server
        .json(Method::DELETE, &uri, &json!({}), Some(token))
        .await;
    assert_eq!(response.status, StatusCode::NO_CONTENT);
    let again = server
        .json(Method::GET, &uri, &json!({}), Some(token))
        .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);

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
        mcp_auth_proto::store::RevocationTarget::Client(client_id.to_owned())
    );
    let mut conn = server.redis.conn().await;
    let stored: Option<String> = conn
        .get(format!("t:revoked:client:{client_id}"))
        .await
        .unwrap();
    assert!(stored.is_some());
    let ttl: i64 = conn
        .ttl(format!("t:revoked:client:{client_id}"))
        .await
        .unwrap();
    assert!(ttl > 0);
}

#[tokio::test]
async fn a_registration_nobody_uses_expires_after_a_day_and_a_used_one_lives_on() {
    let server = TestServer::start().await;
    let unused = server.register_public_client().await;
    let used = server.register_public_client().await;
    let code = server.code_for(&used, "alice").await;
    let exchanged = server.exchange(&used, &code).await;
    assert_eq!(exchanged.status, StatusCode::OK, "{}", exchanged.text());

    server.clock.advance(25 * 3600);
    let page = server.get(&authorize_uri(&unused, "")).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.text().contains("Unknown application"));
    let page = server.get(&authorize_uri(&used, "")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
}

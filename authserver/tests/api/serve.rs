//! `serve` on a real socket: health, graceful shutdown, refusal of a bad environment.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use mcp_auth_authserver::{AppState, router, serve};
use mcp_auth_gateway::GatewayConfig;
use tower::ServiceExt as _;

use crate::support::*;

#[tokio::test]
async fn serves_on_a_listener_and_stops_on_shutdown() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config =
        GatewayConfig::from_yaml(&config_yaml(&redis.url(), &dir.path().join("k"), "")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        config,
        Arc::new(HashMap::<String, String>::new()),
        listener,
        async {
            let _ = stopped.await;
        },
    ));
    let client = reqwest::Client::new();
    let health = client
        .get(format!("http://{address}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let metadata: serde_json::Value = client
        .get(format!(
            "http://{address}/.well-known/oauth-authorization-server"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], ISSUER);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn public_issuer_without_github_credentials_is_refused() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let yaml = config_yaml(&redis.url(), &dir.path().join("k"), "")
        .replace(ISSUER, "https://gw.example.com")
        .replace(
            "http://127.0.0.1:8080/everything/mcp",
            "https://gw.example.com/everything/mcp",
        );
    let config = GatewayConfig::from_yaml(&yaml).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = serve(
        config,
        Arc::new(HashMap::<String, String>::new()),
        listener,
        std::future::pending(),
    )
    .await
    .unwrap_err();
    assert!(error.is_config_error());
    assert!(error.to_string().contains("GITHUB_CLIENT_ID"), "{error}");
}

/// The gateway config of the tests against `redis`'s TLS port, with `ca` as the trusted CA
/// and the client certificate when `client_cert`.
fn tls_config(
    redis: &RedisServer,
    ca: &std::path::Path,
    client_cert: bool,
    keys: &std::path::Path,
) -> GatewayConfig {
    let tls = redis.tls().unwrap();
    let mut files = format!(", tls_ca_file: \"{}\"", ca.display());
    if client_cert {
        files += &format!(
            ", tls_cert_file: \"{}\", tls_key_file: \"{}\"",
            tls.client_cert_file.display(),
            tls.client_key_file.display()
        );
    }
    let yaml = config_yaml(&redis.url(), keys, "").replace(
        "key_prefix: \"t:\" }",
        &format!("key_prefix: \"t:\"{files} }}"),
    );
    GatewayConfig::from_yaml(&yaml).unwrap()
}

async fn register_with(config: GatewayConfig) -> StatusCode {
    let router = router(AppState::new(config, &HashMap::new()).await.unwrap());
    let body =
        serde_json::json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"});
    let request = Request::post("/register")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    router.oneshot(request).await.unwrap().status()
}

#[tokio::test]
async fn state_lives_in_a_redis_reached_over_tls_with_an_acl_user() {
    let redis = RedisServer::start_tls();
    let dir = tempfile::tempdir().unwrap();
    let tls = redis.tls().unwrap().clone();
    let mut conn = redis.conn().await;
    let config = tls_config(&redis, &tls.ca_file, true, &dir.path().join("k"));
    assert_eq!(register_with(config).await, StatusCode::CREATED);
    let clients: Vec<String> = redis::AsyncCommands::keys(&mut conn, "t:client:*")
        .await
        .unwrap();
    assert_eq!(clients.len(), 1, "the registration is in the TLS Redis");

    // A Redis whose certificate another CA signed is not trusted: refused, never a 500.
    let (other_ca, _) = mcp_auth_testkit::test_ca();
    let other_ca_file = dir.path().join("other-ca.crt");
    std::fs::write(&other_ca_file, other_ca).unwrap();
    let config = tls_config(&redis, &other_ca_file, true, &dir.path().join("k"));
    assert_eq!(register_with(config).await, StatusCode::SERVICE_UNAVAILABLE);
    // Without the client certificate Redis asks for: refused too.
    let config = tls_config(&redis, &tls.ca_file, false, &dir.path().join("k"));
    assert_eq!(register_with(config).await, StatusCode::SERVICE_UNAVAILABLE);
    // A wrong password: refused.
    let config = tls_config(&redis, &tls.ca_file, true, &dir.path().join("k"));
    let mut wrong = config.clone();
    wrong.redis.url = wrong.redis.url.replace(&tls.password, "wrong-password");
    assert_eq!(register_with(wrong).await, StatusCode::SERVICE_UNAVAILABLE);
}

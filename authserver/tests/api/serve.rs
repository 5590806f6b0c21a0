//! `serve` on a real socket: health, graceful shutdown, refusal of a bad environment.

use std::collections::HashMap;
use std::sync::Arc;

use mcp_auth_authserver::serve;
use mcp_auth_gateway::GatewayConfig;

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

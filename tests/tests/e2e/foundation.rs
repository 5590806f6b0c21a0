//! The foundation through real Envoy with the real filter: challenges, discovery documents
//! served through the gateway, health of every component.

use mcp_auth_e2e::stack::Stack;
use reqwest::StatusCode;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use mcp_auth_e2e::oauth::INITIALIZE;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_mcp_request_gets_a_resource_metadata_challenge() {
    let stack = Stack::start().await.unwrap();
    let client = reqwest::Client::new();
    let response = client
        .post(stack.url("/everything/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(INITIALIZE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    let expected = format!(
        r#"Bearer resource_metadata="{}/.well-known/oauth-protected-resource/everything/mcp", scope="mcp""#,
        stack.issuer()
    );
    assert_eq!(challenge, expected);
    assert!(
        !challenge.contains("error="),
        "RFC 6750 §3.1: no error attribute without a token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_get_and_delete_with_a_session_id_but_no_token_are_refused() {
    let stack = Stack::start().await.unwrap();
    let client = reqwest::Client::new();
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let response = client
            .request(method.clone(), stack.url("/everything/mcp"))
            .header("mcp-session-id", "3f1c0b5e-session-is-not-authentication")
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{method}");
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("resource_metadata=")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_documents_are_served_through_envoy_and_agree_on_the_issuer() {
    let stack = Stack::start().await.unwrap();
    let client = reqwest::Client::new();
    let resource = format!("{}/everything/mcp", stack.issuer());

    for path in [
        "/.well-known/oauth-protected-resource/everything/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let response = client.get(stack.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let prm: serde_json::Value = response.json().await.unwrap();
        assert_eq!(prm["resource"], resource.as_str(), "{path}");
        assert_eq!(prm["authorization_servers"][0], stack.issuer(), "{path}");
    }

    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let response = client.get(stack.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let metadata: serde_json::Value = response.json().await.unwrap();
        assert_eq!(metadata["issuer"], stack.issuer(), "{path}");
        assert_eq!(
            metadata["code_challenge_methods_supported"],
            serde_json::json!(["S256"]),
            "{path}"
        );
        let jwks_uri = metadata["jwks_uri"].as_str().unwrap().to_owned();
        assert!(jwks_uri.starts_with(stack.issuer()), "{jwks_uri}");
    }

    let jwks: serde_json::Value = client
        .get(stack.url("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!jwks["keys"].as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_component_reports_healthy() {
    let stack = Stack::start().await.unwrap();

    let health = reqwest::get(format!("http://{}/healthz", stack.authserver))
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    let channel = tonic::transport::Channel::from_shared(format!("http://{}", stack.ext_authz))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let grpc = HealthClient::new(channel);
    for service in ["", mcp_auth_ext_authz::AUTHORIZATION_SERVICE] {
        let status = mcp_auth_e2e::poll::until(
            "ext-authz SERVING",
            std::time::Duration::from_secs(10),
            || {
                let mut grpc = grpc.clone();
                async move {
                    let answer = grpc
                        .check(HealthCheckRequest {
                            service: service.to_owned(),
                        })
                        .await
                        .ok()?;
                    (answer.into_inner().status == ServingStatus::Serving as i32).then_some(())
                }
            },
        )
        .await;
        assert!(status.is_ok(), "service {service:?}: {status:?}");
    }

    let ready = reqwest::get(format!("http://{}/ready", stack.envoy.admin()))
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_that_are_neither_mcp_nor_oauth_are_not_found() {
    let stack = Stack::start().await.unwrap();
    for path in [
        "/",
        "/admin",
        "/healthz",
        "/readyz",
        "/metrics",
        "/everything",
        "/everything/mcpx",
    ] {
        let response = reqwest::get(stack.url(path)).await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

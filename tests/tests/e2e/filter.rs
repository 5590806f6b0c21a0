//! The token filter's answers through real Envoy, for requests that carry no valid token.

use mcp_auth_e2e::stack::{Stack, StackOptions};
use reqwest::StatusCode;

const PATH: &str = "/everything/mcp";

/// A structurally valid JWS whose signature no key of ours made (`alg: EdDSA`, `typ: at+jwt`).
const FOREIGN_TOKEN: &str = "eyJhbGciOiJFZERTQSIsInR5cCI6ImF0K2p3dCIsImtpZCI6Im5vLXN1Y2gta2V5In0.eyJpc3MiOiJodHRwczovL2V2aWwuZXhhbXBsZSIsInN1YiI6IjEiLCJhdWQiOiJ4IiwiZXhwIjo0MTAyNDQ0ODAwLCJpYXQiOjEsIm5iZiI6MSwianRpIjoiaiIsImNsaWVudF9pZCI6ImMiLCJncmFudF9pZCI6ImcifQ.AAAA";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_the_exact_status_and_challenge() {
    let stack = Stack::start().await.unwrap();
    let client = reqwest::Client::new();
    let metadata = format!(
        "resource_metadata=\"{}/.well-known/oauth-protected-resource/everything/mcp\"",
        stack.issuer()
    );

    // alg none, a foreign signature, garbage: 401 invalid_token with the metadata URL.
    for token in [
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.",
        FOREIGN_TOKEN,
        "not-a-jwt",
    ] {
        let response = client
            .post(stack.url(PATH))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token}");
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
        assert!(challenge.contains(&metadata), "{challenge}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_token");
    }

    // A token in the query string, or two Authorization headers: 400 invalid_request.
    let query = client
        .post(stack.url(&format!("{PATH}?access_token={FOREIGN_TOKEN}")))
        .send()
        .await
        .unwrap();
    assert_eq!(query.status(), StatusCode::BAD_REQUEST);
    let two = client
        .post(stack.url(PATH))
        .header("authorization", format!("Bearer {FOREIGN_TOKEN}"))
        .header("authorization", "Bearer another")
        .send()
        .await
        .unwrap();
    assert_eq!(two.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = two.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");

    // An Origin the service does not allow (it allows none): 403 before any token matters.
    let origin = client
        .post(stack.url(PATH))
        .header("origin", "https://evil.example")
        .bearer_auth(FOREIGN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(origin.status(), StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_authserver_down_at_start_the_filter_fails_closed_then_recovers() {
    let mut stack = Stack::start_with(StackOptions {
        authserver_later: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let client = reqwest::Client::new();

    // No JWKS yet: any token is refused with 503, never let through.
    let response = client
        .post(stack.url(PATH))
        .bearer_auth(FOREIGN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");

    // The authserver comes up; the same Envoy fetches the keys and judges tokens again.
    stack.start_authserver().await.unwrap();
    stack.wait_for_keys().await.unwrap();
    let response = client
        .post(stack.url(PATH))
        .bearer_auth(FOREIGN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

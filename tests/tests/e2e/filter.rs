//! The token filter's answers through real Envoy: requests without a valid token, too narrow
//! a scope, and key rotation.

// The helpers below are test code outside `#[test]` functions: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use mcp_auth_e2e::fake_github::{FakeGitHub, FakeUser};
use mcp_auth_e2e::oauth::{
    INITIALIZE, VERIFIER, discover, exchange, mcp_status, params, refresh, register, sign_in,
    sign_in_with_scope,
};
use mcp_auth_e2e::poll;
use mcp_auth_e2e::stack::{Stack, StackOptions, unix_now};
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

/// A stack whose filter refreshes its JWKS every second, octocat signed in at the fake
/// GitHub, and a client registered for the `everything` service.
async fn signed_in_stack(
    extra_config: &str,
) -> (
    Stack,
    mcp_auth_e2e::fake_github::FakeGitHub,
    mcp_auth_e2e::oauth::Discovered,
    String,
) {
    let github = FakeGitHub::start("e2e-github-app", "e2e-github-secret")
        .await
        .unwrap();
    github.sign_in(FakeUser::new(583231, "octocat"));
    let stack = Stack::start_with(StackOptions {
        env: github.env(),
        extra_config: extra_config.to_owned(),
        ..Default::default()
    })
    .await
    .unwrap();
    let discovered = discover(&stack).await;
    let client_id = register(&discovered).await;
    (stack, github, discovered, client_id)
}

async fn jwks_kids(stack: &Stack) -> Vec<String> {
    let jwks: serde_json::Value = reqwest::get(stack.url("/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotation_keeps_old_tokens_valid_until_their_key_leaves_the_jwks() {
    let (stack, _github, discovered, client_id) =
        signed_in_stack("filter: { jwks_refresh: 1s }").await;
    let back = params(&sign_in(&stack, &discovered, &client_id).await);
    let (status, first) = exchange(&discovered, &client_id, &back["code"], VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let old_token = first["access_token"].as_str().unwrap().to_owned();
    let [old_kid] = jwks_kids(&stack).await.try_into().unwrap();
    assert_eq!(mcp_status(&stack, &old_token).await, StatusCode::OK);

    // `admin rotate-keys`, with no publish delay: the new key signs as soon as the
    // authserver reloads, so the filter meets its kid before its next periodic refresh and
    // must fetch the JWKS early.
    let rotation = mcp_auth_authserver::keys::rotate(
        &stack.keys_dir(),
        mcp_auth_gateway::config::SigningAlg::ES256,
        mcp_auth_authserver::keys::KeyTiming {
            publish_delay: Duration::ZERO,
            retention: Duration::from_secs(3600),
        },
        unix_now(),
    )
    .unwrap();
    poll::until(
        "the JWKS to hold both keys",
        Duration::from_secs(5),
        || async { (jwks_kids(&stack).await.len() == 2).then_some(()) },
    )
    .await
    .unwrap();
    let (status, refreshed) = refresh(
        &discovered,
        &client_id,
        first["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let new_token = refreshed["access_token"].as_str().unwrap().to_owned();
    assert_ne!(
        new_token.split('.').next(),
        old_token.split('.').next(),
        "the refreshed token must be signed by the new key"
    );
    // With no publish delay the filter may meet the new kid before its copy of the JWKS
    // has it: that request is refused and triggers an early fetch, so the next passes.
    poll::until(
        "the filter to accept the new key's token",
        Duration::from_secs(3),
        || async { (mcp_status(&stack, &new_token).await == StatusCode::OK).then_some(()) },
    )
    .await
    .unwrap();
    assert_eq!(mcp_status(&stack, &old_token).await, StatusCode::OK);

    // The old key's retention ends (what rotation does to retired keys): it leaves the
    // JWKS, and the filter refuses its tokens after its next refresh; new tokens still pass.
    std::fs::remove_file(stack.keys_dir().join(format!("{old_kid}.json"))).unwrap();
    poll::until(
        "the old key to leave the JWKS",
        Duration::from_secs(5),
        || async { (jwks_kids(&stack).await == [rotation.kid.clone()]).then_some(()) },
    )
    .await
    .unwrap();
    poll::until(
        "the filter to refuse the old key's token",
        Duration::from_secs(5),
        || async {
            (mcp_status(&stack, &old_token).await == StatusCode::UNAUTHORIZED).then_some(())
        },
    )
    .await
    .unwrap();
    assert_eq!(mcp_status(&stack, &new_token).await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_with_too_narrow_a_scope_gets_403_insufficient_scope() {
    let (stack, _github, discovered, client_id) = signed_in_stack("").await;
    // `mcp:tools` is offered (it is under `mcp`) but the service requires all of `mcp`.
    let back = params(&sign_in_with_scope(&stack, &discovered, &client_id, "mcp:tools").await);
    let (status, tokens) = exchange(&discovered, &client_id, &back["code"], VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["scope"], "mcp:tools");
    let response = reqwest::Client::new()
        .post(stack.url(PATH))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(INITIALIZE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        challenge,
        format!(
            r#"Bearer error="insufficient_scope", scope="mcp", resource_metadata="{}/.well-known/oauth-protected-resource/everything/mcp""#,
            stack.issuer()
        )
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope");
}

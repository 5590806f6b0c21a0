//! ext_authz behind the filter, through real Envoy: what reaches the MCP server (identity
//! headers, never the bearer token or a client-forged identity) and how fast a revocation
//! stops a token that the filter alone would still accept.
//!
//! Every scenario runs twice: per request (Envoy's ext_authz filter calls `Check`) and in
//! fast mode (the filter caches ext_authz's decisions and follows its invalidation stream),
//! with the same expectations.

// Test code: the scenarios shared by both modes fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use mcp_auth_e2e::fake_github::{FakeGitHub, FakeUser};
use mcp_auth_e2e::stack::{Stack, StackOptions};
use reqwest::StatusCode;

use mcp_auth_e2e::oauth::{
    Discovered, INITIALIZE, VERIFIER, discover, exchange, params, register, sign_in,
};

async fn post_echo(stack: &Stack, token: &str) -> reqwest::Result<reqwest::Response> {
    reqwest::Client::new()
        .post(stack.url("/echo/mcp"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        // Copies of every identity and hand-off header, as a hostile client would send them.
        .header("x-mcp-user-id", "1")
        .header("x-mcp-user-login", "mallory")
        .header("x-mcp-client-id", "forged-client")
        .header("x-mcp-scopes", "admin")
        .header("x-mcp-auth-sub", "1")
        .header("x-mcp-auth-login", "mallory")
        .header(
            "x-mcp-auth-handoff",
            "sub=1;login=mallory;cid=c;gid=g;jti=j;scope=admin;exp=9999999999;iat=1;svc=echo",
        )
        .body(INITIALIZE)
        .send()
        .await
}

/// A stack with the header-recording `echo` service, octocat signed in at the fake GitHub,
/// discovery done for the echo resource and a client registered.
async fn echo_stack(fast_mode: bool) -> anyhow::Result<(Stack, FakeGitHub, Discovered, String)> {
    let github = FakeGitHub::start("e2e-github-app", "e2e-github-secret").await?;
    github.sign_in(FakeUser::new(583231, "octocat"));
    let stack = Stack::start_with(StackOptions {
        env: github.env(),
        header_echo: true,
        fast_mode,
        // Fast mode keeps state per worker: two of them, each with its own cache and stream.
        envoy_workers: if fast_mode { WORKERS } else { 1 },
        // A replayed refresh token is reuse at once, not a retry within the grace (the
        // authserver's API tests cover the grace).
        extra_config: "tokens: { refresh_reuse_grace: 0s }".into(),
        ..Default::default()
    })
    .await?;
    let mut discovered = discover(&stack).await;
    discovered.resource = format!("{}/echo/mcp", stack.issuer());
    let client_id = register(&discovered).await;
    Ok((stack, github, discovered, client_id))
}

/// Fast mode's counter of `Decide` calls (summed over the workers).
const DECIDE_CALLS: &str = "wasmcustom.mcp_auth_filter_decide_calls";
/// Envoy workers in fast mode.
const WORKERS: u32 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcp_server_gets_identity_headers_never_the_token_and_revocation_stops_it() {
    identity_headers_and_revocation(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_mode_gets_identity_headers_never_the_token_and_revocation_stops_it() {
    identity_headers_and_revocation(true).await;
}

async fn identity_headers_and_revocation(fast_mode: bool) {
    let (mut stack, _github, discovered, client_id) = echo_stack(fast_mode).await.unwrap();
    let back = params(&sign_in(&stack, &discovered, &client_id).await);
    let (status, tokens) = exchange(&discovered, &client_id, &back["code"], VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_owned();

    // RS-15: identity headers set by the gateway replace the client's; no token, no hand-off.
    let response = post_echo(&stack, &access).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = stack.echo.as_ref().unwrap().requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let headers = &seen[0].clone();
    assert!(
        !headers.contains_key("authorization"),
        "the bearer token reached the MCP server: {headers:?}"
    );
    assert_eq!(headers["x-mcp-user-id"], "583231");
    assert_eq!(headers["x-mcp-user-login"], "octocat");
    assert_eq!(headers["x-mcp-client-id"], client_id);
    assert_eq!(headers["x-mcp-scopes"], "mcp");
    let leaked: Vec<&String> = headers
        .keys()
        .filter(|k| k.starts_with("x-mcp-auth-"))
        .collect();
    assert!(
        leaked.is_empty(),
        "hand-off headers reached the MCP server: {leaked:?}"
    );
    if fast_mode {
        // The token's decision is cached per worker: once each worker has seen the token
        // (every request opens a new connection, which the kernel spreads over both),
        // more requests ask ext_authz nothing, and each is stripped and stamped the same way.
        // A POST is decided twice on a worker's first sight: the token on the route (its
        // headers), then its JSON-RPC operations (mcp_policy, its body).
        for _ in 0..20 {
            assert_eq!(
                post_echo(&stack, &access).await.unwrap().status(),
                StatusCode::OK
            );
        }
        let asked = stack.envoy.stat(DECIDE_CALLS).await.unwrap().unwrap_or(0);
        assert!(
            (1..=2 * u64::from(WORKERS)).contains(&asked),
            "{asked} Decide calls for one token: {}",
            stack.envoy.log()
        );
        for _ in 0..10 {
            assert_eq!(
                post_echo(&stack, &access).await.unwrap().status(),
                StatusCode::OK
            );
        }
        assert_eq!(stack.envoy.stat(DECIDE_CALLS).await.unwrap(), Some(asked));
        let seen = stack.echo.as_ref().unwrap().requests();
        for headers in &seen {
            assert!(!headers.contains_key("authorization"), "{headers:?}");
            assert!(
                !headers.keys().any(|k| k.starts_with("x-mcp-auth")),
                "{headers:?}"
            );
            assert_eq!(headers["x-mcp-user-login"], "octocat");
            assert_eq!(headers["x-mcp-user-id"], "583231");
        }
    } else {
        assert_eq!(stack.envoy.stat(DECIDE_CALLS).await.unwrap(), None);
    }

    // The same token for another service is refused by the filter (audience).
    let other = reqwest::Client::new()
        .post(stack.url("/everything/mcp"))
        .bearer_auth(&access)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(INITIALIZE)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::UNAUTHORIZED);

    // RFC 7009 revocation: the filter would still accept the signature, ext_authz must not.
    assert_eq!(
        mcp_auth_e2e::oauth::revoke(&discovered, &client_id, &access).await,
        StatusCode::OK
    );
    // Refused within 1 s by every worker (fast mode: each has its own stream and cache), so
    // three requests in a row on new connections.
    let refused = mcp_auth_e2e::poll::until(
        "the revoked token to be refused",
        Duration::from_secs(1),
        || async {
            let mut last = None;
            for _ in 0..3 {
                let response = post_echo(&stack, &access).await.unwrap();
                if response.status() != StatusCode::UNAUTHORIZED {
                    return None;
                }
                last = Some(response.headers().clone());
            }
            last
        },
    )
    .await
    .unwrap();
    assert!(
        refused["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    let reached = stack.echo.as_ref().unwrap().requests().len();
    for _ in 0..3 {
        assert_eq!(
            post_echo(&stack, &access).await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        stack.echo.as_ref().unwrap().requests().len(),
        reached,
        "a revoked token's request reached the MCP server"
    );

    // The grant lives on: a refreshed access token works, until ext_authz goes away. Then
    // Envoy's failure mode (failure_mode_allow: false) refuses, and nothing reaches upstream.
    let (status, refreshed) = mcp_auth_e2e::oauth::refresh(
        &discovered,
        &client_id,
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let fresh = refreshed["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        post_echo(&stack, &fresh).await.unwrap().status(),
        StatusCode::OK
    );
    stack.stop_ext_authz();
    // Per request, the next request is refused. In fast mode a worker that cached the
    // token's decision honours it for `stream_loss_grace` (1 s here) after losing the stream,
    // while a worker that did not is refused at once: wait for every worker to refuse.
    let statuses = mcp_auth_e2e::poll::until(
        "requests to be refused without ext_authz",
        Duration::from_secs(5),
        || async {
            let mut statuses = Vec::new();
            for _ in 0..6 {
                statuses.push(post_echo(&stack, &fresh).await.unwrap().status());
            }
            statuses
                .iter()
                .all(|s| *s != StatusCode::OK)
                .then_some(statuses)
        },
    )
    .await
    .unwrap();
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::SERVICE_UNAVAILABLE),
        "{statuses:?}"
    );
    let reached = stack.echo.as_ref().unwrap().requests().len();
    assert_eq!(
        post_echo(&stack, &fresh).await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        stack.echo.as_ref().unwrap().requests().len(),
        reached,
        "a request passed without ext_authz"
    );

    // ext_authz back on its address: Envoy recovers by itself (in fast mode the stream
    // reconnects, and decisions are cached again).
    stack.restart_ext_authz().await.unwrap();
    mcp_auth_e2e::poll::until(
        "requests to pass again once ext_authz is back",
        Duration::from_secs(10),
        || async {
            (post_echo(&stack, &fresh).await.unwrap().status() == StatusCode::OK).then_some(())
        },
    )
    .await
    .unwrap();
    if fast_mode {
        mcp_auth_e2e::poll::until(
            "decisions to be cached again",
            Duration::from_secs(10),
            || async {
                let before = stack.envoy.stat(DECIDE_CALLS).await.unwrap();
                post_echo(&stack, &fresh).await.unwrap();
                post_echo(&stack, &fresh).await.unwrap();
                (stack.envoy.stat(DECIDE_CALLS).await.unwrap() == before).then_some(())
            },
        )
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_reuse_revokes_the_grant_and_allow_list_changes_apply_without_restart() {
    grant_revocation_and_allow_list(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_mode_refresh_reuse_revokes_the_grant_and_allow_list_changes_apply_without_restart() {
    grant_revocation_and_allow_list(true).await;
}

async fn grant_revocation_and_allow_list(fast_mode: bool) {
    let (stack, _github, discovered, client_id) = echo_stack(fast_mode).await.unwrap();

    // Grant 1: refresh once, then replay the rotated-out refresh token (AS-11).
    let back = params(&sign_in(&stack, &discovered, &client_id).await);
    let (_, tokens) = exchange(&discovered, &client_id, &back["code"], VERIFIER).await;
    let old_refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", old_refresh.as_str()),
        ("client_id", client_id.as_str()),
    ];
    let (status, rotated) = mcp_auth_e2e::oauth::token(&discovered, &refresh).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let access = rotated["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        post_echo(&stack, &access).await.unwrap().status(),
        StatusCode::OK
    );
    let (status, replay) = mcp_auth_e2e::oauth::token(&discovered, &refresh).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(replay["error"], "invalid_grant");
    // Every access token of the grant is refused within 1 s, though each still verifies.
    mcp_auth_e2e::poll::until(
        "the grant's access token to be refused",
        Duration::from_secs(1),
        || async {
            (post_echo(&stack, &access).await.unwrap().status() == StatusCode::UNAUTHORIZED)
                .then_some(())
        },
    )
    .await
    .unwrap();

    // Grant 2, from a new sign-in: works until the user leaves the allow-list in the gateway
    // config, which ext_authz reloads by itself (no restart, no SIGHUP).
    let back = params(&sign_in(&stack, &discovered, &client_id).await);
    let (_, tokens) = exchange(&discovered, &client_id, &back["code"], VERIFIER).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        post_echo(&stack, &access).await.unwrap().status(),
        StatusCode::OK
    );
    let yaml = std::fs::read_to_string(&stack.config_path).unwrap();
    let narrowed = yaml.replace(
        r#"access: { users: ["*"] }"#,
        r#"access: { users: ["someone-else"] }"#,
    );
    assert_ne!(
        yaml, narrowed,
        "the test config's allow-list line changed shape"
    );
    std::fs::write(&stack.config_path, narrowed).unwrap();
    let reached = mcp_auth_e2e::poll::until(
        "the removed user to be refused",
        Duration::from_secs(5),
        || async {
            (post_echo(&stack, &access).await.unwrap().status() == StatusCode::FORBIDDEN)
                .then_some(())
        },
    )
    .await;
    assert!(reached.is_ok(), "{reached:?}");
}

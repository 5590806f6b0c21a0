//! The authorization server through real Envoy, with the fake GitHub: discovery →
//! registration → consent (its CSRF token) → GitHub → token → MCP call → refresh rotation →
//! revoke → introspect, and the negative cases a client or an attacker can produce.

// The helpers below are test code outside `#[test]` functions: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use mcp_auth_e2e::fake_github::{FakeGitHub, FakeUser};
use mcp_auth_e2e::oauth::*;
use mcp_auth_e2e::poll;
use mcp_auth_e2e::stack::{Stack, StackOptions};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn github_stack(user: FakeUser, extra_env: &[(&str, &str)]) -> (Stack, FakeGitHub) {
    let env = extra_env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Stack::start_with_github(
        user,
        StackOptions {
            env,
            // A replayed refresh token is reuse at once, not a retry within the grace (the
            // authserver's API tests cover the grace).
            extra_config: "tokens: { refresh_reuse_grace: 0s }".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_goes_from_discovery_to_mcp_calls_and_back_to_revocation() {
    let (stack, _github) = github_stack(FakeUser::new(583231, "octocat"), &[]).await;
    let discovered = discover(&stack).await;
    let client_id = register(&discovered).await;

    let back = sign_in(&stack, &discovered, &client_id).await;
    assert!(back.starts_with(REDIRECT), "{back}");
    let back = params(&back);
    assert_eq!(back["iss"], stack.issuer());
    assert_eq!(back["state"], "e2e-state");

    let (status, tokens) = exchange(&discovered, &client_id, &back["code"], VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(mcp_status(&stack, &access).await, StatusCode::OK);

    // Refresh rotates; the new access token works.
    let refresh_1 = tokens["refresh_token"].as_str().unwrap().to_owned();
    let (status, rotated) = refresh(&discovered, &client_id, &refresh_1).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let access_2 = rotated["access_token"].as_str().unwrap().to_owned();
    let refresh_2 = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh_1, refresh_2);
    assert_eq!(mcp_status(&stack, &access_2).await, StatusCode::OK);

    // Revoking the access token: introspection says inactive, and the gateway refuses it as
    // soon as ext_authz has the event.
    let revoked = reqwest::Client::new()
        .post(discovered.metadata["revocation_endpoint"].as_str().unwrap())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("token", &access_2), ("client_id", &client_id)]))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_eq!(
        introspect(&discovered, &client_id, &access_2).await["active"],
        false
    );
    poll::until(
        "the revoked token to be refused",
        Duration::from_secs(10),
        || async {
            (mcp_status(&stack, &access_2).await == StatusCode::UNAUTHORIZED).then_some(())
        },
    )
    .await
    .unwrap();

    // The refresh token still works (only one access token was revoked)...
    assert_eq!(
        introspect(&discovered, &client_id, &refresh_2).await["active"],
        true
    );
    // ...until the old one is replayed: reuse revokes the whole grant.
    let (status, reuse) = refresh(&discovered, &client_id, &refresh_1).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(reuse["error"], "invalid_grant");
    let (_, after) = refresh(&discovered, &client_id, &refresh_2).await;
    assert_eq!(after["error"], "invalid_grant");
    poll::until(
        "the grant's first token to be refused",
        Duration::from_secs(10),
        || async { (mcp_status(&stack, &access).await == StatusCode::UNAUTHORIZED).then_some(()) },
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacks_and_mistakes_are_refused() {
    let (stack, _github) = github_stack(FakeUser::new(1, "octocat"), &[]).await;
    let discovered = discover(&stack).await;
    let client_id = register(&discovered).await;

    // Consent skipped: the consent form posted without the page's session, or without CSRF.
    let mut browser = Browser::new();
    let page = browser
        .get(&authorize_url(
            &discovered,
            &client_id,
            &discovered.resource,
        ))
        .await;
    let html = page.text().await.unwrap();
    let (request, csrf) = (form_field(&html, "request"), form_field(&html, "csrf"));
    let mut stranger = Browser::new();
    let skipped = stranger
        .post_form(
            &stack.url("/login/consent"),
            &[
                ("request", &request),
                ("csrf", &csrf),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(skipped.status(), StatusCode::FORBIDDEN);
    let no_csrf = browser
        .post_form(
            &stack.url("/login/consent"),
            &[("request", &request), ("decision", "approve")],
        )
        .await;
    assert_eq!(no_csrf.status(), StatusCode::BAD_REQUEST);
    // Going straight to the callback with a made-up state.
    let forged = browser
        .get(&stack.url("/login/callback?code=x&state=forged"))
        .await;
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);

    // A changed redirect URI: an error page, never a redirect.
    let changed = authorize_url(&discovered, &client_id, &discovered.resource)
        .replace("33418%2Fcallback", "33418%2Fevil");
    let response = Browser::new().get(&changed).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get("location").is_none());

    // An unknown resource from a client this browser's user never approved: invalid_target
    // on our page, not a redirect to the client's URI (RFC 9700 §4.11.2: anyone can register
    // a client whose redirect URI is a phishing page).
    let response = Browser::new()
        .get(&authorize_url(
            &discovered,
            &client_id,
            "http://127.0.0.1:1/other/mcp",
        ))
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get("location").is_none());
    assert!(response.text().await.unwrap().contains("invalid_target"));

    // A wrong verifier, then the code replayed: both refused.
    let back = params(&sign_in(&stack, &discovered, &client_id).await);
    let (status, wrong) = exchange(&discovered, &client_id, &back["code"], &"x".repeat(43)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(wrong["error"], "invalid_grant");
    let back = params(&sign_in(&stack, &discovered, &client_id).await);
    let (status, first) = exchange(&discovered, &client_id, &back["code"], VERIFIER).await;
    assert_eq!(status, StatusCode::OK);
    let (status, replay) = exchange(&discovered, &client_id, &back["code"], VERIFIER).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(replay["error"], "invalid_grant");
    // The replay revoked what the code issued.
    let access = first["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        introspect(&discovered, &client_id, &access).await["active"],
        false
    );
    poll::until(
        "the replayed code's token to be refused",
        Duration::from_secs(10),
        || async { (mcp_status(&stack, &access).await == StatusCode::UNAUTHORIZED).then_some(()) },
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_off_the_allow_list_gets_access_denied_and_no_token() {
    let (stack, _github) = github_stack(
        FakeUser::new(2, "mallory"),
        &[("ALLOWED_GITHUB_USERS", "octocat")],
    )
    .await;
    let discovered = discover(&stack).await;
    let client_id = register(&discovered).await;
    let back = params(&sign_in(&stack, &discovered, &client_id).await);
    assert_eq!(back["error"], "access_denied");
    assert_eq!(back["iss"], stack.issuer());
    assert!(!back.contains_key("code"));
}

/// `@modelcontextprotocol/conformance`'s `conformance` command: `MCP_AUTH_CONFORMANCE`, else
/// the project's npm prefix.
fn conformance_bin() -> std::path::PathBuf {
    let bin = std::env::var_os("MCP_AUTH_CONFORMANCE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| mcp_auth_e2e::tools::npm_prefix().join("node_modules/.bin/conformance"));
    assert!(
        bin.is_file(),
        "{} not found: install it with `npm install --prefix {} @modelcontextprotocol/conformance@0.2.0-alpha.12` \
         (or set MCP_AUTH_CONFORMANCE)",
        bin.display(),
        mcp_auth_e2e::tools::npm_prefix().display()
    );
    bin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_suite_passes_both_authorization_scenarios() {
    use tokio::io::AsyncBufReadExt as _;

    let conformance = conformance_bin();
    let node = mcp_auth_e2e::tools::node_bin().unwrap();
    let (stack, _github) = github_stack(FakeUser::new(583231, "octocat"), &[]).await;
    let discovered = discover(&stack).await;
    // The suite's callback server listens on a port we pick and register.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let callback = format!("http://127.0.0.1:{port}/callback");
    let info: Value = reqwest::Client::new()
        .post(
            discovered.metadata["registration_endpoint"]
                .as_str()
                .unwrap(),
        )
        .json(&json!({
            "redirect_uris": [callback],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code"],
            "client_name": "MCP conformance suite",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = info["client_id"].as_str().unwrap();

    let path = std::env::join_paths(
        node.parent()
            .into_iter()
            .map(std::path::Path::to_path_buf)
            .chain(std::env::split_paths(
                &std::env::var_os("PATH").unwrap_or_default(),
            )),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(&conformance)
        .args([
            "authorization",
            "--url",
            stack.issuer(),
            "--client-id",
            client_id,
        ])
        .args([
            "--resource",
            &discovered.resource,
            "--port",
            &port.to_string(),
        ])
        .env("PATH", path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut output = Vec::new();
    let authorize = format!(
        "{}?",
        discovered.metadata["authorization_endpoint"]
            .as_str()
            .unwrap()
    );
    let url = loop {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("the suite printed no authorization URL")
            .unwrap()
            .unwrap_or_else(|| panic!("the suite ended early:\n{}", output.join("\n")));
        output.push(line.clone());
        if line.starts_with(&authorize) {
            break line;
        }
    };

    // The user's part: consent, GitHub, and the redirect to the suite's callback server.
    let mut browser = Browser::new();
    let page = browser.get(&url).await;
    let html = page.text().await.unwrap();
    let approve = browser
        .post_form(
            &stack.url("/login/consent"),
            &[
                ("request", &form_field(&html, "request")),
                ("csrf", &form_field(&html, "csrf")),
                ("decision", "approve"),
            ],
        )
        .await;
    let github = browser.get(&location(&approve)).await;
    let done = browser.get(&location(&github)).await;
    let back = location(&done);
    assert!(back.starts_with(&callback), "{back}");
    let delivered = Browser::new().get(&back).await;
    assert_eq!(delivered.status(), StatusCode::OK);

    while let Some(line) = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("the suite did not finish")
        .unwrap()
    {
        output.push(line);
    }
    let status = child.wait().await.unwrap();
    let output = output.join("\n");
    assert!(status.success(), "{output}");
    assert!(output.contains("Total: 3 passed, 0 failed"), "{output}");
    assert!(!output.to_lowercase().contains("warning"), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuer_with_a_path_serves_its_endpoints_under_it() {
    let github = FakeGitHub::start("e2e-github-app", "e2e-github-secret")
        .await
        .unwrap();
    github.sign_in(FakeUser::new(583231, "octocat"));
    let stack = Stack::start_with(StackOptions {
        env: github.env(),
        issuer_path: "/auth".to_owned(),
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(stack.issuer().ends_with("/auth"));

    // RFC 8414 §3.1 path-inserted metadata; every endpoint lives under the issuer's path.
    let discovered = discover(&stack).await;
    for endpoint in [
        "authorization_endpoint",
        "token_endpoint",
        "registration_endpoint",
        "jwks_uri",
    ] {
        let url = discovered.metadata[endpoint].as_str().unwrap();
        assert!(url.starts_with(&format!("{}/", stack.issuer())), "{url}");
    }
    let http = reqwest::Client::new();
    let jwks: Value = http
        .get(discovered.metadata["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!jwks["keys"].as_array().unwrap().is_empty());
    // OpenID discovery is appended to the issuer; the root paths are not the authserver's.
    let oidc = http
        .get(format!(
            "{}/.well-known/openid-configuration",
            stack.issuer()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(oidc.status(), StatusCode::OK);
    let oidc: Value = oidc.json().await.unwrap();
    assert_eq!(oidc["issuer"], stack.issuer());
    let root_token = http.post(stack.url("/token")).send().await.unwrap();
    assert_eq!(root_token.status(), StatusCode::NOT_FOUND);

    // The whole flow through the prefixed consent and callback, then an MCP call.
    let client_id = register(&discovered).await;
    let back = params(&sign_in(&stack, &discovered, &client_id).await);
    assert_eq!(back["iss"], stack.issuer());
    let (status, tokens) = exchange(&discovered, &client_id, &back["code"], VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(mcp_status(&stack, access).await, StatusCode::OK);
}

//! An OpenID provider changing under a running authserver, in Chromium, against the real
//! provider (npm `oidc-provider`): it rotates its signing key after we cached its JWKS (the
//! next sign-in follows, the withdrawn key is refused), and it is down while the authserver
//! starts (the authserver runs, says so on a page, retries, and signs users in once the
//! provider is up).

// Test code: a failed step should fail loudly, at the step.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use mcp_auth_e2e::chromium::Chromium;
use mcp_auth_e2e::oauth;
use mcp_auth_e2e::oidc_provider::{ProviderSetup, stack_before_provider, stack_with};
use mcp_auth_e2e::poll;
use mcp_auth_e2e::stack::StackOptions;
use serde_json::json;

use crate::oidc::{logged_since, sign_in_at};
use crate::support::SignIn;

/// Users admitted by verified email domain `example.com`.
fn admitted_by_domain() -> StackOptions {
    StackOptions {
        env: [("ALLOWED_EMAIL_DOMAINS".to_owned(), "example.com".to_owned())].into(),
        ..Default::default()
    }
}

fn alice() -> serde_json::Value {
    json!({ "preferred_username": "alice", "email": "alice@example.com", "email_verified": true })
}

/// Signs in as `login` in a fresh browser (the only provider: no choice page) and asserts
/// the client got a code whose token works through Envoy as `op:<login>`; the `n`th answer
/// of the client's callback.
async fn signs_in(flow: &SignIn, login: &str, n: usize) {
    let mut browser = Chromium::start(&format!("oidc-ops-{login}-{n}"))
        .await
        .unwrap();
    let page = sign_in_at(&mut browser, flow, None, login).await;
    let access = flow.admitted(n, &page, login).await;
    assert_eq!(oauth::jwt_claims(&access)["sub"], format!("op:{login}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signing_key_rotation_at_the_provider_is_followed_and_the_withdrawn_key_refused() {
    mcp_auth_e2e::log_capture::install();
    let accounts = json!({
        "alice": alice(),
        // Its ID token is signed with the provider's first key, withdrawn by the rotation.
        "mallory": { "preferred_username": "mallory", "email": "mallory@example.com",
                     "email_verified": true, "attack": "first_key" },
    });
    let setup = ProviderSetup {
        accounts,
        ..ProviderSetup::default()
    };
    let (stack, op) = stack_with(admitted_by_domain(), setup).await.unwrap();
    let flow = SignIn::around(stack, None).await;
    let first = op.published_kids().await.unwrap();

    // The authserver discovered the provider, first key and all: a sign-in works.
    signs_in(&flow, "alice", 0).await;

    // The provider rotates: a new kid signs, and its JWKS publishes that one alone.
    let kid = op.rotate_signing_key().await.unwrap();
    assert_eq!(op.published_kids().await.unwrap(), [kid.as_str()]);
    assert!(!first.contains(&kid), "{first:?} already had {kid}");

    // The next sign-in names a kid the cached JWKS lacks: fetched again, accepted.
    let logged = mcp_auth_e2e::log_capture::contents().len();
    signs_in(&flow, "alice", 1).await;
    let refetched = logged_since(logged, &format!("{}/jwks", op.issuer));
    assert!(
        refetched
            .iter()
            .any(|l| l.contains("fetched the JWKS again") && l.contains("UnknownKey")),
        "{refetched:?}"
    );

    // A token signed with the withdrawn key: the new set replaced the old, nothing issued.
    let logged = mcp_auth_e2e::log_capture::contents().len();
    let mut browser = Chromium::start("oidc-ops-mallory").await.unwrap();
    let page = sign_in_at(&mut browser, &flow, None, "mallory").await;
    flow.refused(2, &page, "mallory").await;
    let refused = logged_since(logged, "ID token refused");
    assert!(
        refused.iter().any(|l| l.contains(&flow.client_id)),
        "the refusal is not in the log: {refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authserver_starts_while_the_provider_is_down_and_signs_in_once_it_is_up() {
    mcp_auth_e2e::log_capture::install();
    let setup = ProviderSetup {
        accounts: json!({ "alice": alice() }),
        ..ProviderSetup::default()
    };
    let logged = mcp_auth_e2e::log_capture::contents().len();
    let (stack, launcher) = stack_before_provider(admitted_by_domain(), setup)
        .await
        .unwrap();
    let issuer = launcher.issuer();
    let flow = SignIn::around(stack, None).await;

    // Up and serving, and saying why the provider is not usable, with the retry planned.
    poll::until(
        "the failed discovery in the log",
        Duration::from_secs(10),
        || async {
            logged_since(logged, &issuer)
                .iter()
                .any(|l| l.contains("discovery failed") && l.contains("retry_in"))
                .then_some(())
        },
    )
    .await
    .unwrap();

    // A sign-in meanwhile: past our consent, a page of ours says so; nothing is issued.
    let mut browser = Chromium::start("oidc-ops-undiscovered").await.unwrap();
    browser.goto(&flow.authorize_url()).await.unwrap();
    let page = browser
        .click("button[value=approve]")
        .await
        .unwrap()
        .clone();
    assert_eq!(page.status, 503, "{}", page.text);
    assert!(
        page.text
            .contains("Test OP cannot be reached right now, so you cannot sign in with it."),
        "{}",
        page.text
    );
    assert!(page.url.starts_with(flow.stack.issuer()), "{}", page.url);
    browser
        .screenshot("oidc-provider-unavailable")
        .await
        .unwrap();
    assert!(flow.callback.queries().is_empty());

    // The provider comes up: the authserver's own retries find it, no sign-in needed.
    let _op = launcher.start().await.unwrap();
    poll::until(
        "the retried discovery to succeed",
        discovery_retry_bound(),
        || async {
            logged_since(logged, &issuer)
                .iter()
                .any(|l| l.contains("discovered the OpenID provider"))
                .then_some(())
        },
    )
    .await
    .unwrap();
    signs_in(&flow, "alice", 0).await;
}

/// The longest the authserver may leave between two discovery attempts, and some.
fn discovery_retry_bound() -> Duration {
    mcp_auth_authserver::idp::oidc::discovery::MAX_RETRY_DELAY + Duration::from_secs(15)
}

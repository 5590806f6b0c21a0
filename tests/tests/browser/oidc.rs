//! Sign-in at an OpenID Connect provider, in Chromium, against a real one (npm
//! `oidc-provider`, see `mcp_auth_e2e::oidc_provider`) beside the fake GitHub: our consent
//! page, our provider choice, the provider's login form, our callback, the client's code, a
//! token that works through Envoy, with the user's verified email and groups deciding the
//! allow-lists. Then the refusals, each with `access_denied` at the client, nothing issued,
//! and the reason in the authserver's log: the provider's redirect to our callback replayed,
//! an unverified email, a foreign Workspace domain, the user cancelling at the provider, and
//! every spoiled ID token of a hostile provider.

// Test code: a failed step should fail loudly, at the step.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mcp_auth_e2e::chromium::Chromium;
use mcp_auth_e2e::fake_github::{FakeGitHub, FakeUser};
use mcp_auth_e2e::oauth;
use mcp_auth_e2e::oidc_provider::{OidcProvider, stack_with_provider};
use mcp_auth_e2e::stack::StackOptions;
use serde_json::json;

use crate::support::SignIn;

/// Spoiled ID tokens and what each tests; `tests/oidc/provider.mjs` makes them.
const ATTACKS: &[&str] = &[
    "wrong_nonce",
    "no_nonce",
    "wrong_aud",
    "extra_aud",
    "foreign_azp",
    "wrong_iss",
    "expired",
    "future",
    "not_yet",
    "unknown_kid",
    "none",
    "bad_signature",
];

/// Not an account: the user cancels at the provider's login page.
const CANCEL: &str = "(cancel)";

/// The provider's accounts: alice (verified, in `mcp-users`), bob (email not verified),
/// carol (another Workspace domain), and one per attack.
fn accounts() -> serde_json::Value {
    let mut accounts = json!({
        "alice": { "preferred_username": "alice", "email": "alice@example.com",
                   "email_verified": true, "groups": ["mcp-users"], "hd": "example.com" },
        "bob": { "preferred_username": "bob", "email": "bob@example.com",
                 "email_verified": false, "hd": "example.com" },
        "carol": { "preferred_username": "carol", "email": "carol@elsewhere.org",
                   "email_verified": true, "hd": "elsewhere.org" },
    });
    for attack in ATTACKS {
        accounts[*attack] = json!({
            "preferred_username": attack, "email": "alice@example.com",
            "email_verified": true, "hd": "example.com", "attack": attack,
        });
    }
    accounts
}

/// A stack with the fake GitHub and the provider `op`, users admitted by verified email
/// domain `example.com` (alice) or as octocat; the provider's Workspace domain `example.com`.
async fn oidc_stack() -> (SignIn, OidcProvider, FakeGitHub) {
    mcp_auth_e2e::log_capture::install();
    let github = FakeGitHub::start("e2e-github-app", "e2e-github-secret")
        .await
        .unwrap();
    github.sign_in(FakeUser::new(583231, "octocat"));
    let mut env = github.env();
    env.insert("ALLOWED_EMAIL_DOMAINS".into(), "example.com".into());
    env.insert("ALLOWED_GITHUB_USERS".into(), "octocat".into());
    let (stack, op) = stack_with_provider(
        StackOptions {
            env,
            ..Default::default()
        },
        accounts(),
        ", hosted_domain: example.com",
    )
    .await
    .unwrap();
    (SignIn::around(stack, None).await, op, github)
}

/// Consent → our choice page (when `provider` names a button on it) → the provider's login
/// form as `login` → back; the page the browser ends on.
pub async fn sign_in_at(
    browser: &mut Chromium,
    flow: &SignIn,
    provider: Option<&str>,
    login: &str,
) -> mcp_auth_e2e::chromium::PageState {
    browser.goto(&flow.authorize_url()).await.unwrap();
    browser.click("button[value=approve]").await.unwrap();
    if let Some(id) = provider {
        browser.click(&format!("button[value={id}]")).await.unwrap();
    }
    browser.wait_for("input[name=login]").await.unwrap();
    browser.fill("input[name=login]", login).await.unwrap();
    browser.fill("input[name=password]", "any").await.unwrap();
    browser.click("button[type=submit]").await.unwrap().clone()
}

/// What the authserver logged from `offset` on, in lines holding `needle`.
pub fn logged_since(offset: usize, needle: &str) -> Vec<String> {
    mcp_auth_e2e::log_capture::contents()[offset..]
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

/// Consent → our choice page → the provider's login form as `login` → back; the page the
/// browser ends on.
async fn sign_in_as(
    browser: &mut Chromium,
    flow: &SignIn,
    login: &str,
) -> mcp_auth_e2e::chromium::PageState {
    let consent = browser.goto(&flow.authorize_url()).await.unwrap().clone();
    assert!(
        consent
            .text
            .contains("You will sign in with GitHub or Test OP next"),
        "{}",
        consent.text
    );
    let choice = browser
        .click("button[value=approve]")
        .await
        .unwrap()
        .clone();
    assert!(choice.text.contains("Sign in with"), "{}", choice.text);
    if login == "alice" {
        browser.screenshot("oidc-choice").await.unwrap();
    }
    browser.click("button[value=op]").await.unwrap();
    browser.wait_for("input[name=login]").await.unwrap();
    if login == CANCEL {
        // The provider's own "Cancel": it answers our callback with `error=access_denied`.
        return browser.click(".login-help a").await.unwrap().clone();
    }
    browser.fill("input[name=login]", login).await.unwrap();
    browser.fill("input[name=password]", "any").await.unwrap();
    browser.click("button[type=submit]").await.unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_at_an_openid_provider_in_a_real_browser() {
    let (flow, _op, _github) = oidc_stack().await;
    let mut browser = Chromium::start("oidc").await.unwrap();

    // alice: verified email at example.com, of the Workspace domain: a working token.
    let done = sign_in_as(&mut browser, &flow, "alice").await;
    assert!(
        done.url.starts_with(&flow.callback.callback_url()),
        "{}: {}",
        done.url,
        done.text
    );
    let access = flow.admitted(0, &done, "alice").await;
    let claims = oauth::jwt_claims(&access);
    assert_eq!(claims["sub"], "op:alice");
    assert_eq!(claims["preferred_username"], "alice");
    browser.screenshot("oidc-done").await.unwrap();

    // The provider's redirect to our callback, replayed in the same (now signed-in) browser:
    // its state was taken by the first visit, so nothing is exchanged or issued.
    let replayed = done
        .navigations
        .iter()
        .rfind(|url| url.contains("/login/oidc/callback?") && url.contains("code="))
        .unwrap_or_else(|| panic!("no callback among {:?}", done.navigations))
        .clone();
    let page = browser.goto(&replayed).await.unwrap().clone();
    assert_eq!(page.status, 400, "{}", page.text);
    assert!(
        page.url
            .starts_with(&flow.stack.url("/login/oidc/callback")),
        "{}",
        page.url
    );
    assert!(
        page.text
            .contains("This sign-in has expired or was already completed."),
        "{}",
        page.text
    );
    assert_eq!(
        flow.callback.queries().len(),
        1,
        "the client got a second answer"
    );
    browser.screenshot("oidc-replayed-callback").await.unwrap();

    // Each next sign-in in a fresh browser, so no session of ours signs it in.
    // Why each is refused, as the authserver logs it.
    for (n, (login, why)) in [
        ("bob", "sign-in refused by the allow-list"),
        ("carol", "not of the hosted domain"),
        (CANCEL, "the identity provider refused the sign-in"),
    ]
    .into_iter()
    .chain(ATTACKS.iter().map(|a| (*a, "ID token refused")))
    .enumerate()
    {
        let logged = mcp_auth_e2e::log_capture::contents().len();
        let mut browser = Chromium::start(&format!("oidc-{login}")).await.unwrap();
        let page = sign_in_as(&mut browser, &flow, login).await;
        flow.refused(n + 1, &page, &format!("{login} ({why})"))
            .await;
        let log = mcp_auth_e2e::log_capture::contents();
        let reason = log[logged..]
            .lines()
            .find(|l| l.contains("sign-in") && l.contains(&flow.client_id))
            .unwrap_or_default()
            .to_owned();
        println!("{login}: {reason}");
        assert!(reason.contains(why), "{login}: {reason}");
    }
}

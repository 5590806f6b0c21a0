//! The error pages a person can land on, as a browser shows them.

// Test code: a failed step should fail loudly, at the step.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mcp_auth_e2e::chromium::Chromium;

use crate::support::SignIn;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_pages_explain_themselves_and_never_redirect() {
    let flow = SignIn::with_github().await;
    let mut browser = Chromium::start("error-pages").await.unwrap();

    let unknown = flow
        .authorize_url()
        .replace(&flow.client_id, "no-such-client");
    let page = browser.goto(&unknown).await.unwrap().clone();
    assert_eq!(page.status, 400);
    assert_eq!(page.title, "Unknown application");
    assert!(page.url.starts_with(flow.stack.issuer()), "{}", page.url);
    browser.screenshot("error-unknown-client").await.unwrap();

    let page = browser
        .goto(&flow.authorize_url_at("https://phish.example/callback"))
        .await
        .unwrap()
        .clone();
    assert_eq!(page.status, 400);
    assert!(
        page.text.contains("redirect_uri is not registered"),
        "{}",
        page.text
    );
    browser.screenshot("error-redirect-uri").await.unwrap();

    // A valid client and redirect URI, a bad scope, nobody has approved the client yet: our
    // page, not a redirect to the client's URI (it could be anyone's).
    let page = browser
        .goto(&flow.authorize_url().replace("scope=mcp", "scope=admin"))
        .await
        .unwrap()
        .clone();
    assert_eq!(page.status, 400);
    assert!(page.text.contains("invalid_scope"), "{}", page.text);
    assert!(flow.callback.queries().is_empty());

    let page = browser
        .goto(
            &flow
                .stack
                .url("/login/callback?state=expired-or-forged&code=x"),
        )
        .await
        .unwrap()
        .clone();
    assert_eq!(page.status, 400);
    assert_eq!(page.title, "Sign-in expired");
    assert_eq!(
        page.text.to_lowercase().matches("start again").count(),
        1,
        "{}",
        page.text
    );
    browser.screenshot("error-sign-in-expired").await.unwrap();
}

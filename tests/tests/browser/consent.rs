//! The consent page in Chromium: Approve, Deny, the dev login, remembered consent, and a
//! cross-site form post.

// Test code: a failed step should fail loudly, at the step.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mcp_auth_e2e::chromium::Chromium;
use mcp_auth_e2e::oauth;
use reqwest::StatusCode;

use crate::support::{CLIENT_NAME, SignIn};

const APPROVE: &str = "button[value=approve]";
const DENY: &str = "button[value=deny]";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approving_in_a_real_browser_gives_the_client_a_code_that_buys_a_working_token() {
    let flow = SignIn::with_github().await;
    let mut browser = Chromium::start("consent-approve").await.unwrap();

    let page = browser.goto(&flow.authorize_url()).await.unwrap().clone();
    assert_eq!(page.status, 200, "{}", page.text);
    assert_eq!(page.title, format!("Authorize {CLIENT_NAME}"));
    assert_eq!(page.headers["referrer-policy"], "same-origin");
    assert_eq!(page.headers["cross-origin-opener-policy"], "same-origin");
    assert_eq!(page.headers["x-frame-options"], "DENY");
    // What a careful user must be able to read before approving.
    assert!(
        page.text.contains(&format!(
            "{CLIENT_NAME} wants to use the MCP server everything"
        )),
        "{}",
        page.text
    );
    assert!(
        page.text.contains(&flow.callback.callback_url()),
        "the redirect target with its port and path: {}",
        page.text
    );
    assert!(
        page.text.contains("list and call its tools"),
        "{}",
        page.text
    );
    assert!(page.text.contains("runs on a computer, not a website"));
    browser.screenshot("consent").await.unwrap();
    let layout = phone_layout(&mut browser).await;
    assert!(layout.0 >= 8.0 && layout.1 <= 382.0, "card at {layout:?}");
    assert!(layout.2 <= 390.0, "the page scrolls sideways: {layout:?}");

    let done = browser.click(APPROVE).await.unwrap().clone();
    assert!(
        done.url.starts_with(&flow.callback.callback_url()),
        "{}: {}",
        done.url,
        done.text
    );
    // What the browser really sent with the form.
    let post = &done.form_posts[0];
    assert_eq!(post.headers["origin"], flow.issuer_origin());
    assert_eq!(post.headers["sec-fetch-site"], "same-origin");

    let query = flow.callback_query(0).await;
    assert_eq!(query["state"], "e2e-state");
    assert_eq!(query["iss"], flow.stack.issuer());
    let access = flow.token_for(&query["code"]).await;
    assert_eq!(
        oauth::mcp_status(&flow.stack, &access).await,
        StatusCode::OK
    );

    // Signed in and approved: the same request comes straight back with a code.
    let again = browser.goto(&flow.authorize_url()).await.unwrap().clone();
    assert!(
        again.url.starts_with(&flow.callback.callback_url()),
        "{}",
        again.url
    );
    assert!(flow.callback_query(1).await.contains_key("code"));

    // Another loopback port may be another program: the user is asked again.
    let mut other_port = reqwest::Url::parse(&flow.callback.callback_url()).unwrap();
    let port = other_port.port().unwrap();
    other_port
        .set_port(Some(if port < 65000 { port + 1 } else { port - 1 }))
        .unwrap();
    let other_port = other_port.to_string();
    let asked = browser
        .goto(&flow.authorize_url_at(&other_port))
        .await
        .unwrap()
        .clone();
    assert_eq!(
        asked.title,
        format!("Authorize {CLIENT_NAME}"),
        "{}",
        asked.text
    );
    assert!(asked.text.contains(&other_port), "{}", asked.text);
    assert!(asked.text.contains("as octocat"), "{}", asked.text);
    browser.screenshot("consent-signed-in").await.unwrap();
}

/// Left and right edge of the card and the page's scroll width, on a phone.
async fn phone_layout(browser: &mut Chromium) -> (f64, f64, f64) {
    browser.phone_viewport(true).await.unwrap();
    let value = browser
        .eval(
            "(() => { const r = document.querySelector('main').getBoundingClientRect(); \
             return [r.left, r.right, document.documentElement.scrollWidth]; })()",
        )
        .await
        .unwrap();
    browser.phone_viewport(false).await.unwrap();
    let at = |i: usize| value[i].as_f64().unwrap();
    (at(0), at(1), at(2))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_sends_access_denied_to_the_client() {
    let flow = SignIn::with_github().await;
    let mut browser = Chromium::start("consent-deny").await.unwrap();
    browser.goto(&flow.authorize_url()).await.unwrap();
    let done = browser.click(DENY).await.unwrap().clone();
    assert!(
        done.url.starts_with(&flow.callback.callback_url()),
        "{}",
        done.url
    );
    let query = flow.callback_query(0).await;
    assert_eq!(query["error"], "access_denied");
    assert_eq!(query["state"], "e2e-state");
    assert_eq!(query["iss"], flow.stack.issuer());
    assert!(!query.contains_key("code"));
    // GitHub was never asked.
    let github = flow.github.as_ref().unwrap();
    assert!(
        github.calls().iter().all(|c| !c.contains("/login/oauth")),
        "{:?}",
        github.calls()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dev_login_form_signs_in_from_a_browser_and_validates_the_login() {
    let flow = SignIn::with_dev_login().await;
    let mut browser = Chromium::start("dev-login").await.unwrap();
    let consent = browser.goto(&flow.authorize_url()).await.unwrap().clone();
    assert!(
        consent.text.contains("Development login"),
        "{}",
        consent.text
    );
    let form = browser.click(APPROVE).await.unwrap().clone();
    assert_eq!(form.status, 200, "{}", form.text);
    assert_eq!(form.title, "Development sign-in");
    browser.screenshot("dev-login").await.unwrap();

    // The browser itself checks the login (the pattern compiles under the `v` flag).
    browser.fill("#login", "not a login!").await.unwrap();
    let invalid = browser
        .eval("document.querySelector('#login').validity.patternMismatch")
        .await
        .unwrap();
    assert_eq!(invalid, true);
    let stayed = browser
        .click_in_place("button[type=submit]")
        .await
        .unwrap()
        .clone();
    assert_eq!(stayed.title, "Development sign-in");
    assert_eq!(stayed.form_posts.len(), 1, "only the consent form was sent");

    browser.fill("#login", "octo-cat").await.unwrap();
    browser.fill("#orgs", "acme").await.unwrap();
    let done = browser.click("button[type=submit]").await.unwrap().clone();
    assert!(
        done.url.starts_with(&flow.callback.callback_url()),
        "{}: {}",
        done.url,
        done.text
    );
    assert_eq!(done.form_posts[1].headers["sec-fetch-site"], "same-origin");
    let query = flow.callback_query(0).await;
    let access = flow.token_for(&query["code"]).await;
    assert_eq!(
        oauth::mcp_status(&flow.stack, &access).await,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consent_form_posted_from_another_site_is_refused() {
    let flow = SignIn::with_github().await;
    let mut browser = Chromium::start("cross-site").await.unwrap();
    // The victim has a consent page open (a live request, a session cookie).
    browser.goto(&flow.authorize_url()).await.unwrap();
    let fields = browser
        .eval(
            "[document.querySelector('form').action, \
              document.querySelector('[name=request]').value, \
              document.querySelector('[name=csrf]').value]",
        )
        .await
        .unwrap();
    let (action, request, csrf) = (
        fields[0].as_str().unwrap(),
        fields[1].as_str().unwrap(),
        fields[2].as_str().unwrap(),
    );
    // Even knowing the form's secrets, another site's copy of the form is refused.
    let attacker = format!(
        "<!doctype html><form method=post action=\"{action}\">\
         <input type=hidden name=request value=\"{request}\">\
         <input type=hidden name=csrf value=\"{csrf}\">\
         <button name=decision value=approve>Win a prize</button></form>"
    );
    browser
        .serve("http://attacker.example/", &attacker)
        .await
        .unwrap();
    browser.goto("http://attacker.example/").await.unwrap();
    let refused = browser.click("button").await.unwrap().clone();
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(
        refused.text.contains("submitted from another site"),
        "{}",
        refused.text
    );
    let post = refused.form_posts.last().unwrap();
    assert_eq!(post.headers["sec-fetch-site"], "cross-site");
    assert_eq!(post.headers["origin"], "http://attacker.example");
    browser.screenshot("cross-site-refused").await.unwrap();
    assert!(
        flow.callback.queries().is_empty(),
        "the client got an answer"
    );
    assert!(
        flow.github
            .as_ref()
            .unwrap()
            .calls()
            .iter()
            .all(|c| !c.contains("/login/oauth")),
        "the attacker's post started a sign-in"
    );
}

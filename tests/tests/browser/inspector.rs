//! The MCP Inspector's web UI connects to a protected service through a real browser: its
//! OAuth flow (discovery and registration from its own server, `/authorize` and our consent
//! page in the browser, the fake GitHub, its callback page, the token) and then lists tools.

// Test code: a failed step should fail loudly, at the step.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mcp_auth_e2e::chromium::Chromium;
use mcp_auth_e2e::inspector::InspectorWeb;

use crate::support::SignIn;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inspector_web_ui_signs_in_through_the_consent_page_and_lists_tools() {
    let flow = SignIn::with_github().await;
    let inspector = InspectorWeb::start().await.unwrap();
    let mut browser = Chromium::start("inspector").await.unwrap();

    let mcp_url = flow.stack.url("/everything/mcp");
    browser
        .goto(&inspector.connect_url(&mcp_url).unwrap())
        .await
        .unwrap();
    // The UI meets the 401, registers itself and sends the browser to /authorize.
    let consent = browser.wait_for_url("/authorize").await.unwrap().clone();
    browser.wait_for("button[value=approve]").await.unwrap();
    let consent_text = browser.eval("document.body.innerText").await.unwrap();
    assert!(
        consent_text
            .as_str()
            .unwrap()
            .contains("MCP Inspector wants to use the MCP server everything"),
        "{}: {consent_text}",
        consent.url
    );
    browser.screenshot("inspector-consent").await.unwrap();
    browser.click("button[value=approve]").await.unwrap();

    // Back in the UI, connected: the header's tabs (a segmented control whose radio inputs
    // are hidden; their labels take the clicks) appear; the Tools tab lists the tools.
    let tools_tab = "label[for$=\"-Tools\"]";
    browser.wait_for(tools_tab).await.unwrap();
    browser.click_in_place(tools_tab).await.unwrap();
    browser
        .wait_for("[data-testid=\"tools-screen\"]:not([data-tool-count=\"0\"])")
        .await
        .unwrap();
    let names = browser
        .eval(
            "[...document.querySelectorAll('[data-testid=\"tools-screen\"] button.list-item')]\
             .map(b => [...b.querySelectorAll('p')].at(-1)?.textContent)",
        )
        .await
        .unwrap();
    browser.screenshot("inspector-tools").await.unwrap();
    let names: Vec<&str> = names
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    assert!(names.contains(&"echo"), "{names:?}");
    assert!(names.contains(&"get-sum"), "{names:?}");
}

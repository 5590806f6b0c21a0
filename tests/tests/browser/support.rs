//! One sign-in set-up for the browser tests: a stack (with the fake GitHub or the dev login),
//! a registered native client whose loopback redirect URI is served by a [`HeaderEcho`], and
//! the discovery a client would have made.

// Test code: a failed step should fail loudly, at the step.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use mcp_auth_e2e::chromium::PageState;
use mcp_auth_e2e::fake_github::{FakeGitHub, FakeUser};
use mcp_auth_e2e::header_echo::HeaderEcho;
use mcp_auth_e2e::oauth::{self, Discovered};
use mcp_auth_e2e::poll;
use mcp_auth_e2e::stack::{Stack, StackOptions};

/// The client's name on the consent page.
pub const CLIENT_NAME: &str = "Browser test client";

pub struct SignIn {
    pub stack: Stack,
    pub github: Option<FakeGitHub>,
    /// The client's loopback redirect URI.
    pub callback: HeaderEcho,
    pub discovered: Discovered,
    pub client_id: String,
}

impl SignIn {
    /// Users sign in at the fake GitHub, as `octocat`.
    pub async fn with_github() -> Self {
        let (stack, github) =
            Stack::start_with_github(FakeUser::new(583231, "octocat"), StackOptions::default())
                .await
                .unwrap();
        Self::around(stack, Some(github)).await
    }

    /// No identity provider configured: the dev login form.
    pub async fn with_dev_login() -> Self {
        Self::around(Stack::start().await.unwrap(), None).await
    }

    /// The client of `stack`, signing in wherever the stack sends it.
    pub async fn around(stack: Stack, github: Option<FakeGitHub>) -> Self {
        let callback = HeaderEcho::start().await.unwrap();
        let discovered = oauth::discover(&stack).await;
        let client_id =
            oauth::register_with(&discovered, &callback.callback_url(), CLIENT_NAME).await;
        Self {
            stack,
            github,
            callback,
            discovered,
            client_id,
        }
    }

    /// The client's authorization request, answered at `redirect_uri`.
    pub fn authorize_url_at(&self, redirect_uri: &str) -> String {
        oauth::authorize_url_at(
            &self.discovered,
            &self.client_id,
            &self.discovered.resource,
            "mcp",
            redirect_uri,
        )
    }

    /// The client's authorization request, answered at its callback.
    pub fn authorize_url(&self) -> String {
        self.authorize_url_at(&self.callback.callback_url())
    }

    /// The query of the `n`th request the client's callback received.
    pub async fn callback_query(&self, n: usize) -> BTreeMap<String, String> {
        poll::until(
            "the client's loopback callback",
            Duration::from_secs(10),
            || async { self.callback.queries().get(n).cloned() },
        )
        .await
        .unwrap()
    }

    /// Exchanges a code the callback received for tokens; the access token.
    pub async fn token_for(&self, code: &str) -> String {
        let (status, tokens) = oauth::exchange_at(
            &self.discovered,
            &self.client_id,
            code,
            oauth::VERIFIER,
            &self.callback.callback_url(),
        )
        .await;
        assert_eq!(status, reqwest::StatusCode::OK, "{tokens}");
        tokens["access_token"].as_str().unwrap().to_owned()
    }

    /// The `n`th callback's code, exchanged: an access token the MCP route answers 200 for.
    pub async fn admitted(&self, n: usize, page: &PageState, label: &str) -> String {
        let query = self.callback_query(n).await;
        let code = query.get("code").unwrap_or_else(|| {
            panic!("{label}: no code: {query:?} at {}: {}", page.url, page.text)
        });
        let access = self.token_for(code).await;
        assert_eq!(
            oauth::mcp_status(&self.stack, &access).await,
            reqwest::StatusCode::OK,
            "{label}"
        );
        access
    }

    /// The `n`th callback is `access_denied`, with no code.
    pub async fn refused(&self, n: usize, page: &PageState, label: &str) {
        let query = self.callback_query(n).await;
        assert_eq!(
            query.get("error").map(String::as_str),
            Some("access_denied"),
            "{label}: {query:?} at {}",
            page.url
        );
        assert!(!query.contains_key("code"), "{label}: {query:?}");
    }

    /// The issuer's origin, as a browser serialises it in `Origin`.
    pub fn issuer_origin(&self) -> String {
        reqwest::Url::parse(self.stack.issuer())
            .unwrap()
            .origin()
            .ascii_serialization()
    }
}

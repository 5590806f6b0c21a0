//! An OAuth client of the gateway, as an MCP client drives it: discovery from the MCP
//! endpoint's 401, registration, the consent page and the (fake) GitHub, token requests.
//! Shared by every end-to-end test binary.

// Test code: a failed step should fail the test loudly, at the step.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use reqwest::{StatusCode, Url};
use serde_json::{Value, json};

use crate::stack::Stack;

pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
pub const REDIRECT: &str = "http://127.0.0.1:33418/callback";
pub const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"0"}}}"#;

/// An HTTP client that follows no redirect and keeps the authserver's session cookie by hand
/// (it is `Secure`, which a browser keeps on loopback http but reqwest's store would not).
pub struct Browser {
    pub http: reqwest::Client,
    pub cookie: Option<String>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    fn keep_cookie(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all("set-cookie") {
            let value = value.to_str().unwrap();
            self.cookie = Some(value.split(';').next().unwrap().to_owned());
        }
    }

    pub async fn get(&mut self, url: &str) -> reqwest::Response {
        let mut request = self.http.get(url);
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        self.keep_cookie(&response);
        response
    }

    pub async fn post_form(&mut self, url: &str, pairs: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(pairs));
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        self.keep_cookie(&response);
        response
    }
}

pub fn form(pairs: &[(&str, &str)]) -> String {
    let mut url = Url::parse("http://form/").unwrap();
    url.query_pairs_mut().extend_pairs(pairs);
    url.query().unwrap_or_default().to_owned()
}

pub fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

pub fn params(url: &str) -> HashMap<String, String> {
    Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

pub fn form_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end].to_owned()
}

/// The value of the first `name="…"` attribute in `html`.
pub fn html_attribute(html: &str, name: &str) -> String {
    let marker = format!("{name}=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    let end = start + html[start..].find('"').unwrap();
    // Undo the template engine's HTML escaping of URLs.
    html[start..end]
        .replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// What discovery tells a client, starting from the MCP endpoint's 401.
pub struct Discovered {
    pub resource: String,
    pub metadata: Value,
}

pub async fn discover(stack: &Stack) -> Discovered {
    discover_at(&stack.url("/everything/mcp"), stack.issuer()).await
}

/// [`discover`] from the MCP endpoint `mcp_url` of a gateway whose issuer is `issuer`.
pub async fn discover_at(mcp_url: &str, issuer: &str) -> Discovered {
    let expected_issuer = issuer;
    let http = reqwest::Client::new();
    let challenge = post_initialize(&http, mcp_url, None).await;
    assert_eq!(challenge.status(), StatusCode::UNAUTHORIZED);
    let header = challenge.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    let prm_url = header
        .split("resource_metadata=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let prm: Value = http
        .get(&prm_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let issuer = prm["authorization_servers"][0].as_str().unwrap();
    assert_eq!(issuer, expected_issuer);
    // RFC 8414 §3.1: the well-known segment goes between the host and the issuer's path.
    let issuer_url = Url::parse(issuer).unwrap();
    let metadata_url = format!(
        "{}/.well-known/oauth-authorization-server{}",
        issuer_url.origin().ascii_serialization(),
        issuer_url.path().trim_end_matches('/')
    );
    let metadata: Value = http
        .get(&metadata_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], issuer);
    assert_eq!(
        metadata["authorization_response_iss_parameter_supported"],
        true
    );
    Discovered {
        resource: prm["resource"].as_str().unwrap().to_owned(),
        metadata,
    }
}

pub async fn register(discovered: &Discovered) -> String {
    register_with(discovered, REDIRECT, "e2e client").await
}

/// Registers a public native client (as MCP clients do) answering at `redirect_uri`.
pub async fn register_with(discovered: &Discovered, redirect_uri: &str, name: &str) -> String {
    let response = reqwest::Client::new()
        .post(
            discovered.metadata["registration_endpoint"]
                .as_str()
                .unwrap(),
        )
        .json(&json!({
            "redirect_uris": [redirect_uri],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "application_type": "native",
            "client_name": name,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let info: Value = response.json().await.unwrap();
    info["client_id"].as_str().unwrap().to_owned()
}

pub fn authorize_url(discovered: &Discovered, client_id: &str, resource: &str) -> String {
    authorize_url_with_scope(discovered, client_id, resource, "mcp")
}

/// The authorization request of [`authorize_url`], asking for `scope`.
pub fn authorize_url_with_scope(
    discovered: &Discovered,
    client_id: &str,
    resource: &str,
    scope: &str,
) -> String {
    authorize_url_at(discovered, client_id, resource, scope, REDIRECT)
}

/// The authorization request of [`authorize_url_with_scope`], answered at `redirect_uri`.
pub fn authorize_url_at(
    discovered: &Discovered,
    client_id: &str,
    resource: &str,
    scope: &str,
    redirect_uri: &str,
) -> String {
    let mut url = Url::parse(
        discovered.metadata["authorization_endpoint"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("state", "e2e-state")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256")
        .append_pair("resource", resource)
        .append_pair("scope", scope);
    url.into()
}

/// Consent page → approve (with its CSRF token) → GitHub → our callback; returns the final
/// redirect to the client.
pub async fn sign_in(stack: &Stack, discovered: &Discovered, client_id: &str) -> String {
    sign_in_with_scope(stack, discovered, client_id, "mcp").await
}

/// [`sign_in`] asking for `scope`.
pub async fn sign_in_with_scope(
    stack: &Stack,
    discovered: &Discovered,
    client_id: &str,
    scope: &str,
) -> String {
    sign_in_at(stack.issuer(), discovered, client_id, scope).await
}

/// [`sign_in_with_scope`] at the gateway whose issuer is `issuer`.
pub async fn sign_in_at(
    issuer: &str,
    discovered: &Discovered,
    client_id: &str,
    scope: &str,
) -> String {
    let mut browser = Browser::new();
    let page = browser
        .get(&authorize_url_with_scope(
            discovered,
            client_id,
            &discovered.resource,
            scope,
        ))
        .await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let html = page.text().await.unwrap();
    assert!(html.contains("e2e client"));
    let action = html_attribute(&html, "action");
    assert!(action.starts_with(issuer), "{action}");
    let approve = browser
        .post_form(
            &action,
            &[
                ("request", &form_field(&html, "request")),
                ("csrf", &form_field(&html, "csrf")),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(approve.status(), StatusCode::SEE_OTHER);
    let github = browser.get(&location(&approve)).await;
    assert_eq!(github.status(), StatusCode::FOUND);
    let callback = location(&github);
    assert!(
        callback.starts_with(&format!("{issuer}/login/callback")),
        "{callback}"
    );
    let done = browser.get(&callback).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    location(&done)
}

pub async fn token(discovered: &Discovered, pairs: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(discovered.metadata["token_endpoint"].as_str().unwrap())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(pairs))
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert_eq!(response.headers()["cache-control"], "no-store");
    (status, response.json().await.unwrap())
}

pub async fn exchange(
    discovered: &Discovered,
    client_id: &str,
    code: &str,
    verifier: &str,
) -> (StatusCode, Value) {
    exchange_at(discovered, client_id, code, verifier, REDIRECT).await
}

/// [`exchange`] of a code sent to `redirect_uri`.
pub async fn exchange_at(
    discovered: &Discovered,
    client_id: &str,
    code: &str,
    verifier: &str,
    redirect_uri: &str,
) -> (StatusCode, Value) {
    token(
        discovered,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
            ("client_id", client_id),
            ("resource", &discovered.resource),
        ],
    )
    .await
}

/// The refresh token grant (RFC 6749 §6) of a public client.
pub async fn refresh(
    discovered: &Discovered,
    client_id: &str,
    refresh_token: &str,
) -> (StatusCode, Value) {
    token(
        discovered,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", client_id),
        ],
    )
    .await
}

pub async fn mcp_status(stack: &Stack, access_token: &str) -> StatusCode {
    post_initialize(
        &reqwest::Client::new(),
        &stack.url("/everything/mcp"),
        Some(access_token),
    )
    .await
    .status()
}

/// POSTs an MCP `initialize` to `url` as a streamable-HTTP client does, with `bearer` as its
/// access token.
pub async fn post_initialize(
    client: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
) -> reqwest::Response {
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(INITIALIZE);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// RFC 7009 revocation of `token` by the public client `client_id`; the status.
pub async fn revoke(discovered: &Discovered, client_id: &str, token: &str) -> StatusCode {
    reqwest::Client::new()
        .post(discovered.metadata["revocation_endpoint"].as_str().unwrap())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("token", token), ("client_id", client_id)]))
        .send()
        .await
        .unwrap()
        .status()
}

pub async fn introspect(discovered: &Discovered, client_id: &str, token: &str) -> Value {
    reqwest::Client::new()
        .post(
            discovered.metadata["introspection_endpoint"]
                .as_str()
                .unwrap(),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("token", token), ("client_id", client_id)]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The claims of a JWT, unverified (what a test inspects of a token it was issued).
pub fn jwt_claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

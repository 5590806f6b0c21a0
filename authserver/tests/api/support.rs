//! Test support: a throwaway Redis per test, a configured router, request helpers.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use mcp_auth_authserver::{AppState, router, system_now};
use mcp_auth_gateway::GatewayConfig;
pub use mcp_auth_testkit::RedisServer;
use tempfile::TempDir;
use tower::ServiceExt as _;

pub const ISSUER: &str = "http://127.0.0.1:8080";
pub const RESOURCE: &str = "http://127.0.0.1:8080/everything/mcp";

/// A settable clock shared with the state.
#[derive(Clone)]
pub struct TestClock(Arc<AtomicU64>);

impl TestClock {
    pub fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

/// One authserver under test.
pub struct TestServer {
    pub state: AppState,
    pub router: Router,
    pub redis: RedisServer,
    pub clock: TestClock,
    pub keys_dir: PathBuf,
    _dir: TempDir,
}

/// The gateway config of the tests, with `extra` YAML appended at the top level.
pub fn config_yaml(redis_url: &str, keys_dir: &std::path::Path, extra: &str) -> String {
    format!(
        r#"issuer: {ISSUER}
redis: {{ url: "{redis_url}", key_prefix: "t:" }}
authserver: {{ keys_dir: "{keys}", rate_limit_per_minute: 0 }}
access: {{ users: ["*"] }}
services:
  - name: everything
    upstream: {{ url: "http://127.0.0.1:3001/mcp" }}
    scopes: [mcp, "mcp:tools"]
  - name: time
    host: time.example.com
    path: /mcp
    resource: http://time.example.com/mcp
    upstream: {{ url: "http://127.0.0.1:3002/mcp" }}
{extra}"#,
        keys = keys_dir.display()
    )
}

impl TestServer {
    pub async fn start() -> Self {
        Self::with(|yaml| yaml, HashMap::new()).await
    }

    pub async fn with(edit: impl FnOnce(String) -> String, env: HashMap<String, String>) -> Self {
        Self::with_state(edit, env, |state| state).await
    }

    /// A server whose state is adjusted by `adjust` (e.g. to fetch metadata documents from
    /// loopback).
    pub async fn with_state(
        edit: impl FnOnce(String) -> String,
        env: HashMap<String, String>,
        adjust: impl FnOnce(AppState) -> AppState,
    ) -> Self {
        let redis = RedisServer::start();
        let dir = tempfile::tempdir().unwrap();
        let keys_dir = dir.path().join("keys");
        let yaml = edit(config_yaml(&redis.url(), &keys_dir, ""));
        let config = GatewayConfig::from_yaml(&yaml).unwrap();
        let clock = TestClock(Arc::new(AtomicU64::new(system_now())));
        let ticking = clock.clone();
        let state = adjust(
            AppState::new(config, &env)
                .await
                .unwrap()
                .with_clock(Arc::new(move || ticking.now())),
        );
        Self {
            router: router(state.clone()),
            state,
            redis,
            clock,
            keys_dir,
            _dir: dir,
        }
    }

    pub async fn send(&self, request: Request<Body>) -> TestResponse {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        TestResponse {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, uri: &str) -> TestResponse {
        self.send(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    pub async fn get_with_host(&self, uri: &str, host: &str) -> TestResponse {
        self.send(
            Request::get(uri)
                .header(header::HOST, host)
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    /// A form POST (`application/x-www-form-urlencoded`).
    pub async fn post_form(&self, uri: &str, pairs: &[(&str, &str)]) -> TestResponse {
        self.post_form_with(uri, pairs, &[]).await
    }

    pub async fn post_form_with(
        &self,
        uri: &str,
        pairs: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> TestResponse {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        let mut request =
            Request::post(uri).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request.body(Body::from(body)).unwrap()).await
    }

    pub async fn json(
        &self,
        method: Method,
        uri: &str,
        body: &serde_json::Value,
        bearer: Option<&str>,
    ) -> TestResponse {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(token) = bearer {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        self.send(request.body(Body::from(body.to_string())).unwrap())
            .await
    }
}

/// A collected response.
#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TestResponse {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {} {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `error` code of an RFC 6749 §5.2 body.
    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }
}

pub const CHALLENGE_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
pub const REDIRECT: &str = "http://127.0.0.1:33418/callback";

/// A browser: keeps our session cookie between requests, like a real one would.
#[derive(Debug, Default, Clone)]
pub struct Browser {
    pub cookie: Option<String>,
}

impl Browser {
    pub fn absorb(&mut self, response: &TestResponse) {
        for value in response.headers.get_all(header::SET_COOKIE) {
            let value = value.to_str().unwrap();
            let pair = value.split(';').next().unwrap();
            self.cookie = Some(pair.to_owned());
        }
    }

    fn cookie_header(&self) -> Vec<(&str, &str)> {
        self.cookie
            .as_deref()
            .map(|c| vec![("cookie", c)])
            .unwrap_or_default()
    }

    pub async fn get(&mut self, server: &TestServer, uri: &str) -> TestResponse {
        let mut request = Request::get(uri);
        if let Some(cookie) = &self.cookie {
            request = request.header(header::COOKIE, cookie);
        }
        let response = server.send(request.body(Body::empty()).unwrap()).await;
        self.absorb(&response);
        response
    }

    pub async fn post(
        &mut self,
        server: &TestServer,
        uri: &str,
        pairs: &[(&str, &str)],
    ) -> TestResponse {
        let headers = self.cookie_header();
        let response = server.post_form_with(uri, pairs, &headers).await;
        self.absorb(&response);
        response
    }
}

/// The value of a hidden form field in a page.
pub fn form_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name} in:\n{html}"))
        + marker.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end].to_owned()
}

/// The path and query of an absolute URL on the issuer.
pub fn local_path(location: &str) -> String {
    location
        .strip_prefix(ISSUER)
        .unwrap_or_else(|| panic!("{location} is not on the issuer"))
        .to_owned()
}

/// The query parameters of a URL.
pub fn query_params(location: &str) -> HashMap<String, String> {
    let url = url::Url::parse(location).unwrap();
    url.query_pairs().into_owned().collect()
}

/// An `/authorize` URL for `client_id` with PKCE, `state=xyz` and the default resource.
pub fn authorize_uri(client_id: &str, extra: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("state", "xyz")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256")
        .append_pair("resource", RESOURCE)
        .append_pair("scope", "mcp")
        .finish();
    format!("/authorize?{query}{extra}")
}

impl TestServer {
    /// Registers a public native client with a loopback redirect; returns its id.
    pub async fn register_public_client(&self) -> String {
        let body = serde_json::json!({
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "client_name": "Test Client"
        });
        let response = self.json(Method::POST, "/register", &body, None).await;
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
        response.json()["client_id"].as_str().unwrap().to_owned()
    }

    /// Registers a confidential client; returns its id and secret.
    pub async fn register_confidential_client(&self, method: &str) -> (String, String) {
        let body = serde_json::json!({
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": method,
            "grant_types": ["authorization_code", "refresh_token"],
            "client_name": "Confidential"
        });
        let info = self
            .json(Method::POST, "/register", &body, None)
            .await
            .json();
        (
            info["client_id"].as_str().unwrap().to_owned(),
            info["client_secret"].as_str().unwrap().to_owned(),
        )
    }

    /// The dev login flow up to the consent page: returns the page.
    pub async fn consent_page(
        &self,
        browser: &mut Browser,
        client_id: &str,
        extra: &str,
    ) -> TestResponse {
        let page = browser.get(self, &authorize_uri(client_id, extra)).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        page
    }

    /// Approves the consent page in `page`; returns the response (a redirect).
    pub async fn approve(&self, browser: &mut Browser, page: &TestResponse) -> TestResponse {
        let html = page.text();
        let request = form_field(&html, "request");
        let csrf = form_field(&html, "csrf");
        browser
            .post(
                self,
                "/login/consent",
                &[
                    ("request", &request),
                    ("csrf", &csrf),
                    ("decision", "approve"),
                ],
            )
            .await
    }

    /// The whole dev-login flow for a new browser as `login`: returns the final redirect to
    /// the client.
    pub async fn dev_login(
        &self,
        browser: &mut Browser,
        client_id: &str,
        login: &str,
        extra: &str,
    ) -> TestResponse {
        let page = self.consent_page(browser, client_id, extra).await;
        let to_login = self.approve(browser, &page).await;
        assert_eq!(
            to_login.status,
            StatusCode::SEE_OTHER,
            "{}",
            to_login.text()
        );
        let login_uri = local_path(to_login.header("location").unwrap());
        assert!(login_uri.starts_with("/login/dev?state="), "{login_uri}");
        let form = browser.get(self, &login_uri).await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.text());
        let state = form_field(&form.text(), "state");
        browser
            .post(self, "/login/dev", &[("state", &state), ("login", login)])
            .await
    }

    /// A fresh authorization code for `client_id` via the dev login as `login`.
    pub async fn code_for(&self, client_id: &str, login: &str) -> String {
        let mut browser = Browser::default();
        let done = self.dev_login(&mut browser, client_id, login, "").await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text());
        let location = done.header("location").unwrap();
        assert!(location.starts_with(REDIRECT), "{location}");
        query_params(location)["code"].clone()
    }
}

impl TestServer {
    /// `POST /token` for a public client's code.
    pub async fn exchange(&self, client_id: &str, code: &str) -> TestResponse {
        self.post_form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", CHALLENGE_VERIFIER),
                ("client_id", client_id),
                ("resource", RESOURCE),
            ],
        )
        .await
    }

    /// `POST /token` with a refresh token for a public client.
    pub async fn refresh(
        &self,
        client_id: &str,
        refresh_token: &str,
        extra: &[(&str, &str)],
    ) -> TestResponse {
        let mut pairs = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", client_id),
        ];
        pairs.extend_from_slice(extra);
        self.post_form("/token", &pairs).await
    }

    /// A public client and a fresh token response for it (as `alice`).
    pub async fn tokens(&self) -> (String, serde_json::Value) {
        let client_id = self.register_public_client().await;
        let code = self.code_for(&client_id, "alice").await;
        let response = self.exchange(&client_id, &code).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        (client_id, response.json())
    }

    /// `POST /introspect` by a public client.
    pub async fn introspect(&self, client_id: &str, token: &str) -> serde_json::Value {
        let response = self
            .post_form("/introspect", &[("token", token), ("client_id", client_id)])
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        response.json()
    }
}

/// The decoded header and claims of a JWT (not verified).
pub fn decode_jwt(token: &str) -> (serde_json::Value, serde_json::Value) {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts = token.split('.');
    let header = engine.decode(parts.next().unwrap()).unwrap();
    let claims = engine.decode(parts.next().unwrap()).unwrap();
    (
        serde_json::from_slice(&header).unwrap(),
        serde_json::from_slice(&claims).unwrap(),
    )
}

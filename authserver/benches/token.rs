//! `/token` throughput: authorization-code exchanges and refreshes per second, the authserver
//! on one core (a current-thread runtime), Redis on loopback (a unix socket), the load
//! generator on another thread.
//!
//! `cargo bench -p mcp-auth-authserver --bench token` (needs `redis-server`). Codes are put
//! straight into Redis, as a completed `/authorize` would have left them, so what is measured
//! is the token endpoint alone: client lookup, the single-use code script, PKCE, signing
//! (EdDSA), and the grant/refresh write. Numbers on shared machines are noisy: compare runs
//! made one after the other, never a lone figure.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use mcp_auth_authserver::secret::Secret;
use mcp_auth_authserver::store::{CodeRecord, Store};
use mcp_auth_gateway::GatewayConfig;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const REDIRECT: &str = "http://127.0.0.1:33418/callback";
const REQUESTS: usize = 5_000;
const CONCURRENCY: usize = 32;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let redis = mcp_auth_testkit::RedisServer::start();
    let redis_url = redis.url();
    let keys = dir.path().join("keys");

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let address = listener.local_addr().unwrap();
    let issuer = format!("http://{address}");
    let yaml = format!(
        "issuer: {issuer}\nredis: {{ url: \"{redis_url}\", key_prefix: \"bench:\" }}\n\
         authserver: {{ keys_dir: \"{}\", rate_limit_per_minute: 0 }}\naccess: {{ users: [\"*\"] }}\n\
         services:\n  - name: everything\n    upstream: {{ url: \"http://127.0.0.1:3001/mcp\" }}\n",
        keys.display()
    );
    let config = GatewayConfig::from_yaml(&yaml).unwrap();

    // The authserver: one core.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            mcp_auth_authserver::serve(
                config,
                Arc::new(HashMap::<String, String>::new()),
                listener,
                std::future::pending(),
            )
            .await
            .unwrap();
        });
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(issuer, redis_url));
}

async fn run(issuer: String, redis_url: String) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while http.get(format!("{issuer}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the authserver did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let client: serde_json::Value = http
        .post(format!("{issuer}/register"))
        .json(&serde_json::json!({
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = client["client_id"].as_str().unwrap().to_owned();

    let store = Store::new(&mcp_auth_gateway::config::RedisConfig {
        url: redis_url,
        key_prefix: "bench:".to_owned(),
        ..Default::default()
    })
    .unwrap();
    let now = mcp_auth_authserver::system_now();
    let mut codes = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        let code = Secret::generate();
        let record = CodeRecord {
            client_id: client_id.clone(),
            redirect_uri: REDIRECT.to_owned(),
            redirect_uri_explicit: true,
            code_challenge: CHALLENGE.to_owned(),
            resource: format!("{issuer}/everything/mcp"),
            scopes: vec!["mcp".to_owned()],
            subject: "12345".to_owned(),
            login: "octocat".to_owned(),
            expires_at: now + 600,
        };
        store.put_code(&code.digest(), &record, 600).await.unwrap();
        codes.push(code.expose().to_owned());
    }

    let token_url = format!("{issuer}/token");
    let post = |body: String| {
        let http = http.clone();
        let url = token_url.clone();
        async move {
            let response = http
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let body: serde_json::Value = response.json().await.unwrap();
            body["refresh_token"].as_str().unwrap().to_owned()
        }
    };

    let started = Instant::now();
    let refresh_tokens: Vec<String> = futures::stream::iter(codes.into_iter().map(|code| {
        post(form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", &client_id),
        ]))
    }))
    .buffer_unordered(CONCURRENCY)
    .collect()
    .await;
    let exchange = started.elapsed();

    let started = Instant::now();
    let rotated: Vec<String> = futures::stream::iter(refresh_tokens.into_iter().map(|token| {
        post(form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &token),
            ("client_id", &client_id),
        ]))
    }))
    .buffer_unordered(CONCURRENCY)
    .collect()
    .await;
    let refresh = started.elapsed();
    assert_eq!(rotated.len(), REQUESTS);

    let rate = |d: Duration| REQUESTS as f64 / d.as_secs_f64();
    println!(
        "/token on one core, {REQUESTS} requests, {CONCURRENCY} in flight, EdDSA, Redis on a unix socket:"
    );
    println!("  authorization_code exchanges: {:>8.0}/s", rate(exchange));
    println!("  refresh_token rotations:      {:>8.0}/s", rate(refresh));
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse("http://form/").unwrap();
    url.query_pairs_mut().extend_pairs(pairs);
    url.query().unwrap_or_default().to_owned()
}

use super::*;

#[test]
fn client_id_urls_follow_the_draft() {
    assert!(check_url("https://app.example.com/oauth/client.json", false).is_ok());
    assert!(check_url("https://app.example.com:8443/c?v=1", false).is_ok());
    for bad in [
        "http://app.example.com/client.json",
        "https://app.example.com",
        "https://app.example.com/",
        "https://app.example.com/a/../client.json",
        "https://app.example.com/./client.json",
        "https://app.example.com/c#f",
        "https://u:p@app.example.com/c",
        "https://127.0.0.1/c",
        "https://10.1.2.3/c",
        "https://[::1]/c",
        "https://169.254.169.254/latest/meta-data",
        "https://[::ffff:127.0.0.1]/c",
        "https://APP.example.com/c",
    ] {
        assert!(check_url(bad, false).is_err(), "{bad}");
    }
    // IP literals are judged like resolved addresses (written in normal form, which `Url`
    // insists on).
    for non_public in [
        "https://[::7f00:1]/c",
        "https://[::ffff:a9fe:a9fe]/c",
        "https://[64:ff9b::a9fe:a9fe]/c",
        "https://[64:ff9b:1::1]/c",
        "https://[2001::1]/c",
        "https://[2002:7f00:1::1]/c",
        "https://[fec0::1]/c",
        "https://100.64.0.1/c",
        "https://198.18.0.1/c",
        "https://240.0.0.1/c",
    ] {
        assert!(
            matches!(
                check_url(non_public, true),
                Err(CimdError::NonPublicAddress)
            ),
            "{non_public}"
        );
    }
    assert!(check_url("https://[2606:4700:4700::1111]/c", false).is_ok());
    assert!(check_url("http://127.0.0.1:9/c.json", true).is_ok());
}

#[test]
fn documents_must_name_themselves() {
    let url = "https://app.example.com/client.json";
    let ok = serde_json::json!({
        "client_id": url,
        "client_name": "App",
        "redirect_uris": ["http://127.0.0.1/cb"]
    });
    let client = parse_document(url, ok.to_string().as_bytes()).unwrap();
    assert_eq!(client.kind, ClientKind::MetadataDocument);
    assert_eq!(client.display_name(), "App");

    let other = serde_json::json!({"client_id": "https://evil.example.com/c", "redirect_uris": ["https://a/cb"]});
    assert!(parse_document(url, other.to_string().as_bytes()).is_err());
    let secret = serde_json::json!({"client_id": url, "redirect_uris": ["https://a/cb"], "client_secret": "x"});
    assert!(parse_document(url, secret.to_string().as_bytes()).is_err());
    assert!(parse_document(url, b"[]").is_err());
    assert!(parse_document(url, b"not json").is_err());
}

#[tokio::test]
async fn private_hosts_are_never_fetched() {
    let resolver = CimdResolver::new().unwrap();
    // `localhost` resolves to loopback only: refused by the resolver before any connection.
    let err = resolver
        .resolve("https://localhost/client.json")
        .await
        .unwrap_err();
    assert!(
        matches!(err, CimdError::Fetch(_) | CimdError::NonPublicAddress),
        "{err}"
    );
}

/// A local document server that counts requests. `/{name}.json` serves a document naming
/// itself with `Cache-Control: {name}` (so `/no-store.json` says `no-store`);
/// `/slow/{name}.json` does the same once `open` is called; anything else is a 404.
struct DocumentServer {
    base: String,
    hits: Arc<std::sync::atomic::AtomicUsize>,
    gate: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DocumentServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DocumentServer {
    async fn start() -> Self {
        use axum::extract::{OriginalUri, Path};
        use axum::routing::get;
        use std::sync::atomic::Ordering;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (gate, opened) = tokio::sync::watch::channel(false);
        let document = {
            let base = base.clone();
            move |uri: &axum::http::Uri, cache_control: String| {
                let body = serde_json::json!({
                    "client_id": format!("{base}{}", uri.path()),
                    "redirect_uris": ["http://127.0.0.1/cb"],
                });
                ([("cache-control", cache_control)], axum::Json(body))
            }
        };
        let fast = {
            let (hits, document) = (hits.clone(), document.clone());
            move |Path(name): Path<String>, OriginalUri(uri): OriginalUri| {
                hits.fetch_add(1, Ordering::SeqCst);
                let response = document(&uri, name.trim_end_matches(".json").to_owned());
                async move { response }
            }
        };
        let slow = {
            let hits = hits.clone();
            move |OriginalUri(uri): OriginalUri| {
                hits.fetch_add(1, Ordering::SeqCst);
                let mut opened = opened.clone();
                let response = document(&uri, "max-age=300".to_owned());
                async move {
                    let _ = opened.wait_for(|open| *open).await;
                    response
                }
            }
        };
        let missing = {
            let hits = hits.clone();
            move || {
                hits.fetch_add(1, Ordering::SeqCst);
                async { axum::http::StatusCode::NOT_FOUND }
            }
        };
        let app = axum::Router::new()
            .route("/{name}", get(fast))
            .route("/slow/{name}", get(slow))
            .fallback(missing);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base,
            hits,
            gate,
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn open(&self) {
        self.gate.send_replace(true);
    }

    /// Waits (with a deadline) until `n` requests have arrived.
    async fn wait_for_hits(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.hits() < n {
            assert!(Instant::now() < deadline, "{} of {n} requests", self.hits());
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

fn test_resolver() -> Arc<CimdResolver> {
    Arc::new(CimdResolver::allowing_loopback_http().unwrap())
}

#[tokio::test]
async fn documents_asking_not_to_be_cached_are_cached_for_a_minute() {
    let server = DocumentServer::start().await;
    let resolver = test_resolver();
    for name in ["/no-store.json", "/max-age=0.json", "/no-cache.json"] {
        for _ in 0..3 {
            let client = resolver.resolve(&server.url(name)).await.unwrap();
            assert_eq!(client.client_id, server.url(name));
        }
    }
    assert_eq!(server.hits(), 3, "one fetch per document");
}

#[tokio::test]
async fn concurrent_resolutions_of_one_url_share_one_fetch() {
    let server = DocumentServer::start().await;
    let resolver = test_resolver();
    let url = server.url("/slow/shared.json");
    let resolutions = futures::future::join_all((0..20).map(|_| resolver.resolve(&url)));
    let release = async {
        server.wait_for_hits(1).await;
        server.open();
    };
    let (outcomes, ()) = tokio::join!(resolutions, release);
    for outcome in outcomes {
        assert_eq!(outcome.unwrap().client_id, url);
    }
    assert_eq!(server.hits(), 1);
    assert!(lock(&resolver.inner.state).in_flight.is_empty());
    // Done flights leave the answer in the cache.
    resolver.resolve(&url).await.unwrap();
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn fetches_beyond_the_cap_fail_at_once_and_are_not_remembered() {
    let server = DocumentServer::start().await;
    let resolver = test_resolver();
    let held: Vec<_> = (0..MAX_CONCURRENT_FETCHES)
        .map(|i| {
            let (resolver, url) = (resolver.clone(), server.url(&format!("/slow/{i}.json")));
            tokio::spawn(async move { resolver.resolve(&url).await })
        })
        .collect();
    server.wait_for_hits(MAX_CONCURRENT_FETCHES).await;

    let extra = server.url("/slow/extra.json");
    let refused = tokio::time::timeout(Duration::from_secs(2), resolver.resolve(&extra))
        .await
        .expect("a full cap answers at once, it does not queue")
        .unwrap_err();
    assert!(
        matches!(refused, CimdError::Fetch(FetchFailure::Busy)),
        "{refused:?}"
    );
    assert_eq!(
        refused.to_string(),
        "the client metadata document could not be fetched"
    );
    assert_eq!(server.hits(), MAX_CONCURRENT_FETCHES, "never sent");

    server.open();
    for resolution in held {
        resolution.await.unwrap().unwrap();
    }
    // The refusal was not the URL's fault: it is tried again, and now fetched.
    resolver.resolve(&extra).await.unwrap();
    assert_eq!(server.hits(), MAX_CONCURRENT_FETCHES + 1);
}

#[tokio::test]
async fn failing_ids_never_evict_good_documents() {
    let server = DocumentServer::start().await;
    let resolver = test_resolver();
    let good = server.url("/max-age=3600.json");
    resolver.resolve(&good).await.unwrap();
    let failing = cache::MAX_FAILURES + 100;
    for i in 0..failing {
        let url = server.url(&format!("/missing/{i}.json"));
        assert!(resolver.resolve(&url).await.is_err());
    }
    assert_eq!(server.hits(), 1 + failing);
    resolver.resolve(&good).await.unwrap();
    assert_eq!(
        server.hits(),
        1 + failing,
        "the good document is still cached"
    );
    // Recent failures are remembered, not fetched again.
    let last = server.url(&format!("/missing/{}.json", failing - 1));
    let remembered = resolver.resolve(&last).await.unwrap_err();
    assert!(
        matches!(remembered, CimdError::Remembered(_)),
        "{remembered:?}"
    );
    assert_eq!(server.hits(), 1 + failing);
}

#[tokio::test]
async fn the_caller_is_not_told_why_a_fetch_failed() {
    let server = DocumentServer::start().await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let resolver = test_resolver();
    let generic = "the client metadata document could not be fetched";
    for url in [
        format!("http://{closed}/client.json"),
        server.url("/missing/client.json"),
    ] {
        let error = resolver.resolve(&url).await.unwrap_err();
        assert_eq!(error.to_string(), generic, "{error:?}");
        // The reason is there for the log.
        let reason = std::error::Error::source(&error).unwrap().to_string();
        assert!(!reason.is_empty());
        let again = resolver.resolve(&url).await.unwrap_err();
        assert_eq!(
            again.to_string(),
            format!("{generic} (remembered from a recent attempt)")
        );
    }
    // The production resolver hides why a name did not resolve to a public address, too.
    let error = CimdResolver::new()
        .unwrap()
        .resolve("https://localhost/client.json")
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), generic, "{error:?}");
}

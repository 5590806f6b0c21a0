use super::*;
use crate::clients::cimd::{FetchFailure, parse_document};

fn client(url: &str) -> Arc<Client> {
    let document = serde_json::json!({"client_id": url, "redirect_uris": ["http://127.0.0.1/cb"]});
    Arc::new(parse_document(url, document.to_string().as_bytes()).unwrap())
}

fn refused() -> CimdError {
    CimdError::Fetch(FetchFailure::Status(404))
}

#[test]
fn cache_lifetime_follows_cache_control_within_bounds() {
    assert_eq!(cache_ttl(None), DEFAULT_CACHE_TTL);
    assert_eq!(cache_ttl(Some("")), DEFAULT_CACHE_TTL);
    assert_eq!(
        cache_ttl(Some("public, max-age=120")),
        Duration::from_secs(120)
    );
    assert_eq!(cache_ttl(Some("max-age=\"600\"")), Duration::from_secs(600));
    assert_eq!(cache_ttl(Some("max-age=99999999")), MAX_CACHE_TTL);
    // "Never cache" is not obeyed below the floor.
    for no_cache in [
        "no-store",
        "No-Cache",
        "max-age=0",
        "max-age=1",
        "public, max-age=60, no-store",
    ] {
        assert_eq!(cache_ttl(Some(no_cache)), MIN_CACHE_TTL, "{no_cache}");
    }
    assert_eq!(cache_ttl(Some("max-age=junk")), DEFAULT_CACHE_TTL);
}

#[test]
fn documents_live_for_their_ttl() {
    let url = "https://app.example.com/c.json";
    let now = Instant::now();
    let mut cache = DocumentCache::default();
    cache.remember_document(url, client(url), MIN_CACHE_TTL, now);
    let hit = cache.lookup(url, now + MIN_CACHE_TTL - Duration::from_secs(1));
    assert_eq!(hit.unwrap().unwrap().client_id, url);
    assert!(cache.lookup(url, now + MIN_CACHE_TTL).is_none());
    assert_eq!(cache.len(), (0, 0), "an expired document is dropped");
}

#[test]
fn failures_live_for_the_failure_ttl() {
    let url = "https://app.example.com/c.json";
    let now = Instant::now();
    let mut cache = DocumentCache::default();
    cache.remember_failure(url, refused(), now);
    let hit = cache.lookup(url, now + FAILURE_TTL - Duration::from_secs(1));
    assert!(
        matches!(hit, Some(Err(CimdError::Remembered(ref e))) if matches!(**e, CimdError::Fetch(FetchFailure::Status(404)))),
        "{hit:?}"
    );
    assert!(cache.lookup(url, now + FAILURE_TTL).is_none());
    // A later success replaces the failure.
    cache.remember_failure(url, refused(), now);
    cache.remember_document(url, client(url), MIN_CACHE_TTL, now);
    assert!(matches!(cache.lookup(url, now), Some(Ok(_))));
}

#[test]
fn failures_never_push_out_documents() {
    let now = Instant::now();
    let mut cache = DocumentCache::default();
    let good = "https://app.example.com/good.json";
    cache.remember_document(good, client(good), DEFAULT_CACHE_TTL, now);
    for i in 0..(MAX_FAILURES * 3) {
        let at = now + Duration::from_millis(i as u64);
        cache.remember_failure(&format!("https://evil.example.com/{i}"), refused(), at);
    }
    assert_eq!(cache.len(), (1, MAX_FAILURES));
    assert!(matches!(cache.lookup(good, now), Some(Ok(_))));
    // The failure map dropped its oldest entries, kept its newest.
    let newest = format!("https://evil.example.com/{}", MAX_FAILURES * 3 - 1);
    assert!(matches!(cache.lookup(&newest, now), Some(Err(_))));
    assert!(cache.lookup("https://evil.example.com/0", now).is_none());
}

#[test]
fn a_full_document_cache_drops_the_least_recently_used() {
    let now = Instant::now();
    let mut cache = DocumentCache::default();
    let url = |i: usize| format!("https://app.example.com/{i}.json");
    for i in 0..MAX_DOCUMENTS {
        let at = now + Duration::from_millis(i as u64);
        cache.remember_document(&url(i), client(&url(i)), DEFAULT_CACHE_TTL, at);
    }
    // The oldest document is in use; the second oldest is not.
    let later = now + Duration::from_secs(10);
    assert!(matches!(cache.lookup(&url(0), later), Some(Ok(_))));
    let extra = url(MAX_DOCUMENTS);
    cache.remember_document(&extra, client(&extra), DEFAULT_CACHE_TTL, later);
    assert_eq!(cache.len(), (MAX_DOCUMENTS, 0));
    assert!(matches!(cache.lookup(&url(0), later), Some(Ok(_))));
    assert!(cache.lookup(&url(1), later).is_none());
    assert!(matches!(cache.lookup(&extra, later), Some(Ok(_))));
}

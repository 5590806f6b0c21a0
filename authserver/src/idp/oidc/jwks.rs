//! The provider's JWKS as we hold it, and when to fetch it again:
//!
//! - **stale**: a set older than [`JWKS_MAX_AGE`] is fetched again before it verifies an ID
//!   token, so a key the provider withdrew (a compromise, the end of a rotation) stops being
//!   accepted within that time even when every token names a key we hold;
//! - **unknown key**: a token naming a key the set does not hold (a rotation) fetches it
//!   again, at most once per [`JWKS_REFETCH_INTERVAL`] counted from the last fetch a token
//!   caused (discovery's own fetch does not count, so a rotation right after start is picked
//!   up at the first sign-in).
//!
//! A failed fetch keeps the previous set (the provider's token endpoint just answered, so the
//! JWKS failing is a hiccup, not a withdrawal) and is not retried within the interval. Each
//! fetch replaces the whole set: keys are never merged, so a withdrawn key is gone at once.
//! Times are arguments ([`Instant`]s), so the rules are tested without a clock.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use openidconnect::JsonWebKeySet;
use openidconnect::core::CoreJsonWebKey;

/// Oldest a set may be to verify a token.
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(10 * 60);
/// Least time between two fetches a token caused.
pub const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(30);

/// The provider's keys.
pub type KeySet = JsonWebKeySet<CoreJsonWebKey>;

/// Why the set is fetched again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refetch {
    /// Older than [`JWKS_MAX_AGE`].
    Stale,
    /// A token names a key the set does not hold.
    UnknownKey,
}

/// The cached JWKS of one provider.
#[derive(Debug)]
pub struct JwksCache {
    state: Mutex<Cached>,
}

#[derive(Debug)]
struct Cached {
    set: Arc<KeySet>,
    /// When `set` was fetched.
    fetched_at: Instant,
    /// When a token last made us fetch (success or not).
    last_attempt: Option<Instant>,
}

impl JwksCache {
    /// The set fetched at `fetched_at` (at discovery).
    pub fn new(set: KeySet, fetched_at: Instant) -> Self {
        Self {
            state: Mutex::new(Cached {
                set: Arc::new(set),
                fetched_at,
                last_attempt: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cached> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The set as held now.
    pub fn keys(&self) -> Arc<KeySet> {
        Arc::clone(&self.lock().set)
    }

    /// Whether the set is too old to verify a token at `now`.
    pub fn is_stale(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.lock().fetched_at) >= JWKS_MAX_AGE
    }

    /// Whether `reason` may fetch the set at `now`; if so, the attempt is recorded (so
    /// concurrent sign-ins fetch once).
    fn claim_fetch(&self, reason: Refetch, now: Instant) -> bool {
        let mut cached = self.lock();
        let cooled = cached
            .last_attempt
            .is_none_or(|at| now.saturating_duration_since(at) >= JWKS_REFETCH_INTERVAL);
        let due = match reason {
            Refetch::Stale => now.saturating_duration_since(cached.fetched_at) >= JWKS_MAX_AGE,
            Refetch::UnknownKey => true,
        };
        if due && cooled {
            cached.last_attempt = Some(now);
        }
        due && cooled
    }

    /// Fetches the set with `fetch` when `reason` allows it at `now`, and replaces the held
    /// set with the answer. `Ok(true)`: a new set is held; `Ok(false)`: no fetch was due;
    /// `Err`: the fetch failed and the previous set is kept.
    pub async fn refetch<F, Fut>(
        &self,
        reason: Refetch,
        now: Instant,
        fetch: F,
    ) -> Result<bool, String>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<KeySet, String>>,
    {
        if !self.claim_fetch(reason, now) {
            return Ok(false);
        }
        let set = fetch().await?;
        let mut cached = self.lock();
        cached.set = Arc::new(set);
        cached.fetched_at = now;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openidconnect::JsonWebKey as _;
    use serde_json::json;

    fn set(kids: &[&str]) -> KeySet {
        let keys: Vec<_> = kids
            .iter()
            .map(|kid| json!({"kty": "RSA", "use": "sig", "kid": kid, "n": "AQAB", "e": "AQAB"}))
            .collect();
        serde_json::from_value(json!({ "keys": keys })).unwrap()
    }

    fn kids(cache: &JwksCache) -> Vec<String> {
        cache
            .keys()
            .keys()
            .iter()
            .filter_map(|k| k.key_id().map(|id| id.to_string()))
            .collect()
    }

    /// A fetch answering `kids`, counting its calls.
    fn answering<'a>(
        calls: &'a std::cell::Cell<u32>,
        answer: Result<&'a [&'a str], &'a str>,
    ) -> impl FnOnce() -> std::future::Ready<Result<KeySet, String>> + 'a {
        move || {
            calls.set(calls.get() + 1);
            std::future::ready(answer.map(set).map_err(str::to_owned))
        }
    }

    #[tokio::test]
    async fn a_stale_set_is_replaced_so_a_withdrawn_key_stops_verifying() {
        let start = Instant::now();
        let cache = JwksCache::new(set(&["old", "new"]), start);
        let calls = std::cell::Cell::new(0);

        // Younger than the max age: nothing fetched, both keys verify.
        let young = start + JWKS_MAX_AGE - Duration::from_secs(1);
        assert!(!cache.is_stale(young));
        let fetched = cache
            .refetch(Refetch::Stale, young, answering(&calls, Ok(&["new"])))
            .await;
        assert_eq!((fetched, calls.get()), (Ok(false), 0));
        assert_eq!(kids(&cache), ["old", "new"]);

        // At the max age the set is fetched again and replaced, not merged.
        let old = start + JWKS_MAX_AGE;
        assert!(cache.is_stale(old));
        let fetched = cache
            .refetch(Refetch::Stale, old, answering(&calls, Ok(&["new"])))
            .await;
        assert_eq!((fetched, calls.get()), (Ok(true), 1));
        assert_eq!(kids(&cache), ["new"]);
        assert!(!cache.is_stale(old + Duration::from_secs(1)));
    }

    #[tokio::test]
    async fn a_failed_refresh_keeps_the_set_and_waits_before_trying_again() {
        let start = Instant::now();
        let cache = JwksCache::new(set(&["k1"]), start);
        let calls = std::cell::Cell::new(0);
        let old = start + JWKS_MAX_AGE;
        let fetched = cache
            .refetch(Refetch::Stale, old, answering(&calls, Err("HTTP 503")))
            .await;
        assert_eq!(fetched, Err("HTTP 503".to_owned()));
        assert_eq!(kids(&cache), ["k1"]);
        // Still stale, but the next sign-ins do not each hit the provider.
        let soon = old + JWKS_REFETCH_INTERVAL - Duration::from_secs(1);
        assert!(cache.is_stale(soon));
        let fetched = cache
            .refetch(Refetch::Stale, soon, answering(&calls, Ok(&["k2"])))
            .await;
        assert_eq!((fetched, calls.get()), (Ok(false), 1));
        let later = old + JWKS_REFETCH_INTERVAL;
        let fetched = cache
            .refetch(Refetch::Stale, later, answering(&calls, Ok(&["k2"])))
            .await;
        assert_eq!((fetched, calls.get()), (Ok(true), 2));
        assert_eq!(kids(&cache), ["k2"]);
    }

    #[tokio::test]
    async fn an_unknown_key_fetches_at_once_after_discovery_then_once_per_interval() {
        let start = Instant::now();
        let cache = JwksCache::new(set(&["k1"]), start);
        let calls = std::cell::Cell::new(0);
        // A rotation a second after discovery: fetched at once.
        let rotation = start + Duration::from_secs(1);
        let fetched = cache
            .refetch(
                Refetch::UnknownKey,
                rotation,
                answering(&calls, Ok(&["k2"])),
            )
            .await;
        assert_eq!((fetched, calls.get()), (Ok(true), 1));
        assert_eq!(kids(&cache), ["k2"]);
        // A provider signing with keys it never publishes makes us fetch once per interval.
        for after in [1, 29] {
            let at = rotation + Duration::from_secs(after);
            let fetched = cache
                .refetch(Refetch::UnknownKey, at, answering(&calls, Ok(&["k2"])))
                .await;
            assert_eq!((fetched, calls.get()), (Ok(false), 1), "{after} s after");
        }
        let fetched = cache
            .refetch(
                Refetch::UnknownKey,
                rotation + JWKS_REFETCH_INTERVAL,
                answering(&calls, Ok(&["k3"])),
            )
            .await;
        assert_eq!((fetched, calls.get()), (Ok(true), 2));
        assert_eq!(kids(&cache), ["k3"]);
    }
}

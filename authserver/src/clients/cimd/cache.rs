//! The metadata document cache: good documents and recent failures, kept apart.
//!
//! Two rules matter:
//! - A document is kept at least [`MIN_CACHE_TTL`], whatever its `Cache-Control` says
//!   (`no-store`, `max-age=0`): the URL's owner is a stranger, and honouring "never cache"
//!   would let them make us fetch on every request. At most [`MAX_CACHE_TTL`].
//! - Failures live in their own bounded map. Stranger-chosen URLs that fail cost nothing to
//!   make up, so they must never push good documents out: a full failure map evicts its own
//!   oldest entry, and a full document map evicts its least recently used document.
//!
//! Pure: the time is an argument.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::CimdError;
use crate::oauth::client::Client;

/// How long a document is cached when its `Cache-Control` names no lifetime.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(300);
/// The shortest time a document is cached, even when it asks for `no-store` or `max-age=0`.
pub const MIN_CACHE_TTL: Duration = Duration::from_secs(60);
/// The longest time a document is cached, so an edit is seen within a day.
pub const MAX_CACHE_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long a failed fetch is remembered, so a bad `client_id` cannot make us fetch on every
/// request either, while a fixed document is picked up soon.
pub const FAILURE_TTL: Duration = Duration::from_secs(30);
/// Most good documents kept.
pub const MAX_DOCUMENTS: usize = 1024;
/// Most failures kept.
pub const MAX_FAILURES: usize = 1024;

/// How long a document may be cached, from its `Cache-Control` (RFC 9111 §5.2.2), clamped to
/// [`MIN_CACHE_TTL`]..=[`MAX_CACHE_TTL`].
pub fn cache_ttl(cache_control: Option<&str>) -> Duration {
    let mut ttl = DEFAULT_CACHE_TTL;
    for directive in cache_control
        .unwrap_or_default()
        .split(',')
        .map(|d| d.trim().to_ascii_lowercase())
    {
        if directive == "no-store" || directive == "no-cache" {
            return MIN_CACHE_TTL;
        }
        if let Some(secs) = directive.strip_prefix("max-age=") {
            ttl = secs
                .trim_matches('"')
                .parse::<u64>()
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_CACHE_TTL);
        }
    }
    ttl.clamp(MIN_CACHE_TTL, MAX_CACHE_TTL)
}

struct Document {
    client: Arc<Client>,
    expires: Instant,
    last_used: Instant,
}

struct Failure {
    error: CimdError,
    expires: Instant,
}

/// Before `url` goes into `map` (bounded by `max`): when it is new and the map is full,
/// expired entries go, and if none did, the entry `times` ranks lowest. `times` gives an
/// entry's expiry and the instant it is ranked by.
fn make_room<V>(
    map: &mut HashMap<String, V>,
    url: &str,
    max: usize,
    now: Instant,
    times: impl Fn(&V) -> (Instant, Instant),
) {
    if map.contains_key(url) || map.len() < max {
        return;
    }
    map.retain(|_, entry| times(entry).0 > now);
    if map.len() < max {
        return;
    }
    let lowest = map
        .iter()
        .min_by_key(|(_, entry)| times(entry).1)
        .map(|(url, _)| url.clone());
    if let Some(lowest) = lowest {
        map.remove(&lowest);
    }
}

/// Documents and failures by `client_id` URL.
#[derive(Default)]
pub(super) struct DocumentCache {
    documents: HashMap<String, Document>,
    failures: HashMap<String, Failure>,
}

impl DocumentCache {
    /// The live answer for `url`: its document, or why it was refused a moment ago.
    pub(super) fn lookup(
        &mut self,
        url: &str,
        now: Instant,
    ) -> Option<Result<Arc<Client>, CimdError>> {
        if let Some(document) = self.documents.get_mut(url) {
            if document.expires > now {
                document.last_used = now;
                return Some(Ok(document.client.clone()));
            }
            self.documents.remove(url);
        }
        if let Some(failure) = self.failures.get(url) {
            if failure.expires > now {
                return Some(Err(CimdError::Remembered(Box::new(failure.error.clone()))));
            }
            self.failures.remove(url);
        }
        None
    }

    /// Keeps `client`, fetched from `url`, for `ttl`.
    pub(super) fn remember_document(
        &mut self,
        url: &str,
        client: Arc<Client>,
        ttl: Duration,
        now: Instant,
    ) {
        self.failures.remove(url);
        make_room(&mut self.documents, url, MAX_DOCUMENTS, now, |d| {
            (d.expires, d.last_used)
        });
        self.documents.insert(
            url.to_owned(),
            Document {
                client,
                expires: now + ttl,
                last_used: now,
            },
        );
    }

    /// Remembers for [`FAILURE_TTL`] that `url` was refused with `error`. Never touches the
    /// documents.
    pub(super) fn remember_failure(&mut self, url: &str, error: CimdError, now: Instant) {
        // All share one lifetime, so the first to expire is the oldest.
        make_room(&mut self.failures, url, MAX_FAILURES, now, |f| {
            (f.expires, f.expires)
        });
        self.failures.insert(
            url.to_owned(),
            Failure {
                error,
                expires: now + FAILURE_TTL,
            },
        );
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> (usize, usize) {
        (self.documents.len(), self.failures.len())
    }
}

#[cfg(test)]
mod tests;

//! OAuth Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document): a
//! `client_id` that is an https URL names a JSON document of RFC 7591 metadata served there.
//!
//! Fetching a URL a stranger chose is an SSRF and amplification risk, so:
//! - the fetch goes only to public addresses, checked on the addresses actually connected to
//!   (`address`), follows no redirect, uses no proxy, takes at most 5 s and reads at most
//!   5 KB (`fetch`);
//! - a document is cached per `Cache-Control` but at least a minute, whatever it asks, and a
//!   failure for 30 s, in a map of its own so failing ids never push good documents out
//!   (`cache`);
//! - concurrent resolutions of one URL share one fetch (single flight), and at most
//!   [`MAX_CONCURRENT_FETCHES`] fetches run at once across all URLs; past that a resolution
//!   fails at once rather than queue, so the AS cannot be made to send an unbounded number of
//!   requests or hold an unbounded number of waiting tasks;
//! - the caller is told only that the document could not be fetched; why (DNS, connect,
//!   status) goes to the log, so the error cannot be used to map our network.

mod address;
mod cache;
mod fetch;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use mcp_auth_proto::registration::ClientIdMetadataDocument;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

use crate::oauth::client::{Client, ClientKind, MetadataSource, validate};
use address::allowed;
use cache::DocumentCache;

pub use address::{PublicOnlyResolver, is_public, non_public_range};
pub use cache::{FAILURE_TTL, MAX_CACHE_TTL, MIN_CACHE_TTL, cache_ttl};
pub use fetch::{FETCH_TIMEOUT, FetchFailure, MAX_DOCUMENT_BYTES};

/// Most document fetches in flight at once, across all URLs.
pub const MAX_CONCURRENT_FETCHES: usize = 8;
const MAX_URL_LEN: usize = 2048;

/// Why a metadata document client could not be resolved. `Display` is what the caller may
/// see; details that describe our network stay in sources and logs.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CimdError {
    #[error("client_id is not a valid metadata document URL: {0}")]
    BadUrl(&'static str),
    #[error("the client_id host is not a public address")]
    NonPublicAddress,
    /// The reason is logged where the fetch ends and kept as the source, never displayed.
    #[error("the client metadata document could not be fetched")]
    Fetch(#[source] FetchFailure),
    #[error("the document is not valid client metadata: {0}")]
    Invalid(String),
    #[error("{0} (remembered from a recent attempt)")]
    Remembered(Box<CimdError>),
    /// At start-up only.
    #[error("the HTTP client for metadata documents could not be built: {0}")]
    Setup(String),
}

/// True for a `client_id` that is meant as a metadata document URL.
pub fn looks_like_metadata_url(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

/// Checks a `client_id` URL (draft §3): https, a path, no dot segments, fragment or
/// credentials. `allow_loopback_http` admits `http://127.0.0.1` URLs (tests only).
pub fn check_url(client_id: &str, allow_loopback_http: bool) -> Result<url::Url, CimdError> {
    if client_id.len() > MAX_URL_LEN {
        return Err(CimdError::BadUrl("too long"));
    }
    let url = url::Url::parse(client_id).map_err(|_| CimdError::BadUrl("not a URL"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_loopback_http => {}
        _ => return Err(CimdError::BadUrl("the scheme must be https")),
    }
    if url.fragment().is_some() || client_id.contains('#') {
        return Err(CimdError::BadUrl("it must not have a fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(CimdError::BadUrl("it must not carry credentials"));
    }
    // `Url` normalises dot segments away, so look at the string as sent.
    let path = client_id
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or("");
    let path = path.split(['?', '#']).next().unwrap_or("");
    if path.is_empty() || path == "/" {
        return Err(CimdError::BadUrl("it must have a path"));
    }
    if path.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(CimdError::BadUrl("it must not have dot segments"));
    }
    if url.as_str() != client_id {
        return Err(CimdError::BadUrl("it is not in normal form"));
    }
    match url.host() {
        Some(url::Host::Ipv4(ip)) if !allowed(IpAddr::V4(ip), allow_loopback_http) => {
            Err(CimdError::NonPublicAddress)
        }
        Some(url::Host::Ipv6(ip)) if !allowed(IpAddr::V6(ip), allow_loopback_http) => {
            Err(CimdError::NonPublicAddress)
        }
        Some(_) => Ok(url),
        None => Err(CimdError::BadUrl("it has no host")),
    }
}

/// What a fetch ends with, shared by everyone waiting on it.
type Outcome = Result<Arc<Client>, CimdError>;

/// Fetches, validates and caches metadata documents.
pub struct CimdResolver {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    allow_loopback_http: bool,
    /// One permit per fetch in flight ([`MAX_CONCURRENT_FETCHES`]).
    fetch_permits: Arc<Semaphore>,
    state: Mutex<State>,
}

/// Cache and flights under one lock, so a resolution sees either a cached answer or the
/// flight that will produce it, never the gap between them.
#[derive(Default)]
struct State {
    cache: DocumentCache,
    in_flight: HashMap<String, Flight>,
    next_flight: u64,
}

struct Flight {
    /// Tells this flight from a later one for the same URL.
    id: u64,
    outcome: Shared<BoxFuture<'static, Outcome>>,
}

/// Either an answer now or a flight to wait for.
enum Lookup {
    Answer(Outcome),
    Wait(Shared<BoxFuture<'static, Outcome>>),
}

impl std::fmt::Debug for CimdResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CimdResolver")
            .field("allow_loopback_http", &self.inner.allow_loopback_http)
            .finish_non_exhaustive()
    }
}

impl CimdResolver {
    /// The production resolver: https and public addresses only.
    pub fn new() -> Result<Self, CimdError> {
        Self::build(false)
    }

    /// A resolver that also fetches `http://` loopback URLs, for tests that serve documents
    /// locally. Never reachable from config or environment.
    #[doc(hidden)]
    pub fn allowing_loopback_http() -> Result<Self, CimdError> {
        Self::build(true)
    }

    fn build(allow_loopback_http: bool) -> Result<Self, CimdError> {
        let http =
            fetch::http_client(allow_loopback_http).map_err(|e| CimdError::Setup(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                allow_loopback_http,
                fetch_permits: Arc::new(Semaphore::new(MAX_CONCURRENT_FETCHES)),
                state: Mutex::default(),
            }),
        })
    }

    /// The client named by the metadata document at `client_id`: from the cache, by joining
    /// a fetch of the same URL already in flight, or by a new fetch when a permit is free
    /// (else at once `CimdError::Fetch(FetchFailure::Busy)`). The fetch runs in its own task,
    /// so a caller that goes away neither cancels it nor loses its result for the next one.
    pub async fn resolve(&self, client_id: &str) -> Result<Client, CimdError> {
        let url = check_url(client_id, self.inner.allow_loopback_http)?;
        let outcome = match self.lookup_or_take_off(url)? {
            Lookup::Answer(outcome) => outcome,
            Lookup::Wait(flight) => flight.await,
        };
        outcome.map(|client| Client::clone(&client))
    }

    fn lookup_or_take_off(&self, url: url::Url) -> Result<Lookup, CimdError> {
        let mut state = lock(&self.inner.state);
        if let Some(answer) = state.cache.lookup(url.as_str(), Instant::now()) {
            return Ok(Lookup::Answer(answer));
        }
        if let Some(flight) = state.in_flight.get(url.as_str()) {
            return Ok(Lookup::Wait(flight.outcome.clone()));
        }
        let permit = self
            .inner
            .fetch_permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| {
                tracing::warn!(
                    client_id = url.as_str(),
                    limit = MAX_CONCURRENT_FETCHES,
                    "client metadata document not fetched: too many fetches in flight"
                );
                CimdError::Fetch(FetchFailure::Busy)
            })?;
        let id = state.next_flight;
        state.next_flight = state.next_flight.wrapping_add(1);
        let key = url.as_str().to_owned();
        let task = tokio::spawn(
            fly(self.inner.clone(), url, id, permit).instrument(tracing::Span::current()),
        );
        let outcome = async move {
            task.await.unwrap_or_else(|error| {
                tracing::error!(%error, "client metadata document fetch task failed");
                Err(CimdError::Fetch(FetchFailure::Aborted))
            })
        }
        .boxed()
        .shared();
        state.in_flight.insert(
            key,
            Flight {
                id,
                outcome: outcome.clone(),
            },
        );
        Ok(Lookup::Wait(outcome))
    }
}

/// One flight: fetch and validate `url`, remember the outcome, then leave `in_flight`.
async fn fly(inner: Arc<Inner>, url: url::Url, id: u64, permit: OwnedSemaphorePermit) -> Outcome {
    let key = url.as_str().to_owned();
    // Leaves `in_flight` however the task ends (even aborted at shutdown), after the
    // outcome is cached below.
    let _landing = Landing {
        state: &inner.state,
        url: &key,
        id,
    };
    let fetched = fetch_document(&inner.http, url).await;
    drop(permit);
    let now = Instant::now();
    let mut state = lock(&inner.state);
    let outcome = match fetched {
        Ok((client, ttl)) => {
            let client = Arc::new(client);
            state
                .cache
                .remember_document(&key, client.clone(), ttl, now);
            Ok(client)
        }
        Err(error) => {
            tracing::info!(
                client_id = key.as_str(),
                reason = %with_causes(error.to_string(), &error),
                "client metadata document refused"
            );
            state.cache.remember_failure(&key, error.clone(), now);
            Err(error)
        }
    };
    drop(state);
    outcome
}

async fn fetch_document(
    http: &reqwest::Client,
    url: url::Url,
) -> Result<(Client, Duration), CimdError> {
    let client_id = url.as_str().to_owned();
    let (body, ttl) = fetch::fetch(http, url).await.map_err(CimdError::Fetch)?;
    Ok((parse_document(&client_id, &body)?, ttl))
}

/// Removes its flight from `in_flight` when dropped (only that flight, not a later one).
struct Landing<'a> {
    state: &'a Mutex<State>,
    url: &'a str,
    id: u64,
}

impl Drop for Landing<'_> {
    fn drop(&mut self) {
        let mut state = lock(self.state);
        if state
            .in_flight
            .get(self.url)
            .is_some_and(|f| f.id == self.id)
        {
            state.in_flight.remove(self.url);
        }
    }
}

/// The state, also after a panic elsewhere: every critical section leaves it consistent.
fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `message` followed by every cause of `error`, for the log.
fn with_causes(mut message: String, error: &dyn std::error::Error) -> String {
    let mut source = error.source();
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    message
}

/// Validates a fetched document for `client_id`.
pub fn parse_document(client_id: &str, body: &[u8]) -> Result<Client, CimdError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| CimdError::Invalid(e.to_string()))?;
    if !value.is_object() {
        return Err(CimdError::Invalid("not a JSON object".into()));
    }
    if value.get("client_secret").is_some() || value.get("client_secret_expires_at").is_some() {
        return Err(CimdError::Invalid(
            "a public document must not carry a client secret".into(),
        ));
    }
    let document: ClientIdMetadataDocument =
        serde_json::from_value(value).map_err(|e| CimdError::Invalid(e.to_string()))?;
    if document.client_id != client_id {
        return Err(CimdError::Invalid(
            "its client_id is not the URL it was fetched from".into(),
        ));
    }
    let valid = validate(document.metadata, MetadataSource::MetadataDocument)
        .map_err(|e| CimdError::Invalid(e.to_string()))?;
    Ok(Client::from_metadata(
        document.client_id,
        ClientKind::MetadataDocument,
        valid,
        None,
    ))
}

#[cfg(test)]
mod tests;

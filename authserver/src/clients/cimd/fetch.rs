//! One GET of a metadata document, within limits: no redirect, no proxy, public addresses
//! only ([`PublicOnlyResolver`]), [`FETCH_TIMEOUT`] for the whole exchange and at most
//! [`MAX_DOCUMENT_BYTES`] read.
//!
//! A [`FetchFailure`] says what went wrong in terms of the AS's own network (DNS answers,
//! refused connections, timeouts). It is for the log: the caller who chose the URL is told
//! only that the document could not be fetched (`CimdError::Fetch`), or they could map our
//! network through it.

use std::sync::Arc;
use std::time::Duration;

use super::address::PublicOnlyResolver;
use super::cache::cache_ttl;

/// Largest document read.
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024;
/// Whole fetch deadline.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a document could not be fetched: logged, never shown to the caller.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchFailure {
    /// DNS, connection, TLS, timeout or body errors, with their causes (the URL left out).
    #[error("{0}")]
    Transport(String),
    #[error("the document answered HTTP {0}")]
    Status(u16),
    #[error("the document is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge,
    #[error("{} fetches are already in flight", super::MAX_CONCURRENT_FETCHES)]
    Busy,
    #[error("the fetch task ended without an answer")]
    Aborted,
}

/// The HTTP client documents are fetched with; `allow_loopback_http` (tests only) admits
/// `http://` and loopback addresses.
pub(super) fn http_client(allow_loopback_http: bool) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(FETCH_TIMEOUT)
        .connect_timeout(FETCH_TIMEOUT)
        .https_only(!allow_loopback_http)
        .user_agent(concat!("mcp-mesh-auth/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(PublicOnlyResolver {
            allow_loopback: allow_loopback_http,
        }))
        .build()
}

/// GETs `url`: the body and how long it may be cached.
pub(super) async fn fetch(
    http: &reqwest::Client,
    url: url::Url,
) -> Result<(Vec<u8>, Duration), FetchFailure> {
    let mut response = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| FetchFailure::Transport(without_url(&e)))?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(FetchFailure::Status(response.status().as_u16()));
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
    {
        return Err(FetchFailure::TooLarge);
    }
    let ttl = cache_ttl(
        response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok()),
    );
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| FetchFailure::Transport(without_url(&e)))?
    {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(FetchFailure::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, ttl))
}

/// The error and its causes, without the URL (the log names it once, as `client_id`).
fn without_url(error: &reqwest::Error) -> String {
    let mut message = error.to_string();
    if let Some(url) = error.url() {
        message = message.replace(url.as_str(), "<client_id>");
    }
    super::with_causes(message, error)
}

//! OAuth Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document): a
//! `client_id` that is an https URL names a JSON document of RFC 7591 metadata served there.
//!
//! Fetching a URL a stranger chose is an SSRF risk, so the fetch:
//! - goes only to public addresses: names are resolved by [`PublicOnlyResolver`], which drops
//!   loopback, private, link-local, CGNAT, multicast and reserved addresses (the addresses it
//!   returns are the ones connected to, so DNS rebinding cannot swap them), and IP literals
//!   are checked the same way;
//! - follows no redirect, uses no proxy, takes at most 5 s, and reads at most 5 KB;
//! - is cached per `Cache-Control: max-age` (default 5 minutes, at most a day), so a client
//!   cannot make us fetch on every request.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mcp_auth_proto::registration::ClientIdMetadataDocument;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::oauth::client::{Client, ClientKind, MetadataSource, validate};

/// Largest document read.
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024;
/// Whole fetch deadline.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(300);
const MAX_CACHE_TTL: Duration = Duration::from_secs(24 * 3600);
const MAX_CACHE_ENTRIES: usize = 1024;
/// How long a failed fetch is remembered, so a bad `client_id` cannot make us fetch on
/// every request either.
const FAILURE_TTL: Duration = Duration::from_secs(30);
const MAX_URL_LEN: usize = 2048;

/// Why a metadata document client could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum CimdError {
    #[error("client_id is not a valid metadata document URL: {0}")]
    BadUrl(&'static str),
    #[error("the client_id host is not a public address")]
    NonPublicAddress,
    #[error("fetching the document failed: {0}")]
    Fetch(String),
    #[error("the document answered HTTP {0}")]
    Status(u16),
    #[error("the document is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge,
    #[error("the document is not valid client metadata: {0}")]
    Invalid(String),
    #[error("{0} (remembered from a recent attempt)")]
    Cached(String),
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

fn allowed(ip: IpAddr, allow_loopback: bool) -> bool {
    is_public(ip) || (allow_loopback && ip.is_loopback())
}

/// True for a globally routable unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let seg = v6.segments();
            // NAT64 (64:ff9b::/96) embeds an IPv4 address.
            if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = seg[6].to_be_bytes();
                let [c, d] = seg[7].to_be_bytes();
                return is_public_v4(Ipv4Addr::new(a, b, c, d));
            }
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (seg[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (seg[0] & 0xffc0) == 0xfec0 // site-local fec0::/10
                || seg[0] == 0x2001 && seg[1] == 0x0db8 // documentation
                || seg[0] == 0x2002 // 6to4 embeds an IPv4 address
                || v6 == Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1))
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64.0.0/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19))) // benchmarking
}

/// A DNS resolver that returns public addresses only (and fails when there are none).
#[derive(Debug, Clone, Copy)]
pub struct PublicOnlyResolver {
    allow_loopback: bool,
}

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| allowed(a.ip(), allow_loopback))
                .collect();
            if addrs.is_empty() {
                return Err(Box::new(CimdError::NonPublicAddress)
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

struct CacheEntry {
    /// The client, or why its document was refused.
    outcome: Result<Arc<Client>, Arc<str>>,
    expires: Instant,
}

/// Fetches, validates and caches metadata documents.
pub struct CimdResolver {
    http: reqwest::Client,
    cache: Mutex<HashMap<String, CacheEntry>>,
    allow_loopback_http: bool,
}

impl std::fmt::Debug for CimdResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CimdResolver")
            .field("allow_loopback_http", &self.allow_loopback_http)
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
        let http = reqwest::Client::builder()
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
            .map_err(|e| CimdError::Fetch(e.to_string()))?;
        Ok(Self {
            http,
            cache: Mutex::new(HashMap::new()),
            allow_loopback_http,
        })
    }

    /// The client named by the metadata document at `client_id` (cached, failures too).
    pub async fn resolve(&self, client_id: &str) -> Result<Client, CimdError> {
        if let Some(outcome) = self.cached(client_id) {
            return outcome;
        }
        let url = check_url(client_id, self.allow_loopback_http)?;
        let fetched = match self.fetch(url).await {
            Ok((body, ttl)) => parse_document(client_id, &body).map(|client| (client, ttl)),
            Err(error) => Err(error),
        };
        match fetched {
            Ok((client, ttl)) => {
                if !ttl.is_zero() {
                    self.remember(client_id, Ok(Arc::new(client.clone())), ttl);
                }
                Ok(client)
            }
            Err(error) => {
                self.remember(client_id, Err(Arc::from(error.to_string())), FAILURE_TTL);
                Err(error)
            }
        }
    }

    fn cached(&self, client_id: &str) -> Option<Result<Client, CimdError>> {
        let cache = self.cache.lock().ok()?;
        let entry = cache
            .get(client_id)
            .filter(|e| e.expires > Instant::now())?;
        Some(match &entry.outcome {
            Ok(client) => Ok((**client).clone()),
            Err(problem) => Err(CimdError::Cached(problem.to_string())),
        })
    }

    fn remember(&self, client_id: &str, outcome: Result<Arc<Client>, Arc<str>>, ttl: Duration) {
        let Ok(mut cache) = self.cache.lock() else {
            return;
        };
        let now = Instant::now();
        if cache.len() >= MAX_CACHE_ENTRIES {
            cache.retain(|_, e| e.expires > now);
        }
        if cache.len() >= MAX_CACHE_ENTRIES {
            // Still full of live entries: start over rather than grow without bound.
            cache.clear();
        }
        cache.insert(
            client_id.to_owned(),
            CacheEntry {
                outcome,
                expires: now + ttl,
            },
        );
    }

    async fn fetch(&self, url: url::Url) -> Result<(Vec<u8>, Duration), CimdError> {
        let mut response = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| CimdError::Fetch(without_url(&e)))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(CimdError::Status(response.status().as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
        {
            return Err(CimdError::TooLarge);
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
            .map_err(|e| CimdError::Fetch(without_url(&e)))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(CimdError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, ttl))
    }
}

fn without_url(error: &reqwest::Error) -> String {
    let mut message = error.to_string();
    if let Some(url) = error.url() {
        message = message.replace(url.as_str(), "<client_id>");
    }
    if let Some(source) = std::error::Error::source(error) {
        message = format!("{message}: {source}");
    }
    message
}

/// How long a document may be cached, from its `Cache-Control`.
pub fn cache_ttl(cache_control: Option<&str>) -> Duration {
    let Some(value) = cache_control else {
        return DEFAULT_CACHE_TTL;
    };
    let mut ttl = DEFAULT_CACHE_TTL;
    for directive in value.split(',').map(|d| d.trim().to_ascii_lowercase()) {
        if directive == "no-store" || directive == "no-cache" {
            return Duration::ZERO;
        }
        if let Some(secs) = directive.strip_prefix("max-age=") {
            ttl = secs
                .trim_matches('"')
                .parse::<u64>()
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_CACHE_TTL);
        }
    }
    ttl.min(MAX_CACHE_TTL)
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

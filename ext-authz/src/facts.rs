//! The facts of one Check, read from the `CheckRequest` without copying (a hand-off value
//! that needed escaping is the exception).
//!
//! The token facts come only from the filter's hand-off header
//! ([`mcp_auth_proto::handoff`]): the filter verified the token, replaced any client-sent
//! copy of that header and signed its value with a key only it and ext_authz hold, so a
//! value whose MAC verifies was written by the filter — also where a request reached
//! ext_authz without passing the filter (an Istio CUSTOM provider on a workload without
//! the WasmPlugin). Nothing else in the request is trusted for identity, which keeps the
//! service usable as an Istio CUSTOM provider (it needs only what a `CheckRequest` holds).

use std::borrow::Cow;

use envoy_types::pb::envoy::service::auth::v3::CheckRequest;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::HttpRequest;
use mcp_auth_proto::handoff::{
    HANDOFF_HEADER, Handoff, HandoffError, HandoffKeys, RESERVED_PREFIX,
};

/// Why a Check carries no usable hand-off from the filter. Always a deny: without the filter's
/// verdict there is no verified token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FactsError {
    #[error("the CheckRequest has no HTTP request attributes")]
    NoHttpRequest,
    #[error("hand-off header {0} is missing or empty")]
    Missing(&'static str),
    #[error("hand-off header {0} appears more than once")]
    Repeated(&'static str),
    #[error("hand-off header {0} is not valid")]
    Malformed(&'static str),
    #[error(transparent)]
    Handoff(#[from] HandoffError),
}

/// What the filter verified about the bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenFacts<'a> {
    /// `sub`.
    pub subject: Cow<'a, str>,
    /// `preferred_username`; may be empty.
    pub login: Cow<'a, str>,
    pub client_id: Cow<'a, str>,
    pub grant_id: Cow<'a, str>,
    /// `jti`.
    pub token_id: Cow<'a, str>,
    /// Space-delimited scopes (RFC 6749 §3.3); may be empty.
    pub scope: Cow<'a, str>,
    /// `exp`, Unix seconds.
    pub expires_at: u64,
    /// `iat`, Unix seconds.
    pub issued_at: u64,
}

/// The HTTP request as Envoy described it, for per-method policy.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpFacts<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// Up to Envoy's `with_request_body.max_request_bytes` of the body (raw or UTF-8 form);
    /// empty when Envoy sends none.
    pub body: &'a [u8],
    pub http: &'a HttpRequest,
    /// Fast mode's header-phase `Decide` of a POST: the filter asks again with the body, so
    /// `mcp_policy` is not decided now.
    pub body_follows: bool,
}

impl HttpFacts<'_> {
    /// A request header by lowercase name (the first copy), from either of Envoy's maps.
    pub fn header(&self, name: &str) -> Option<&str> {
        if let Some(value) = self.http.headers.get(name) {
            return Some(value);
        }
        self.http.header_map.as_ref().and_then(|map| {
            map.headers.iter().find(|h| h.key == name).and_then(|h| {
                if h.raw_value.is_empty() {
                    Some(h.value.as_str())
                } else {
                    std::str::from_utf8(&h.raw_value).ok()
                }
            })
        })
    }
}

/// Everything a decision is made from.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestFacts<'a> {
    /// The gateway service (route) the filter matched.
    pub service: Cow<'a, str>,
    pub token: TokenFacts<'a>,
    pub request: HttpFacts<'a>,
}

impl<'a> RequestFacts<'a> {
    /// Reads the facts of `check`, whose hand-off must verify under `keys`.
    pub fn from_check(check: &'a CheckRequest, keys: &HandoffKeys) -> Result<Self, FactsError> {
        let http = check
            .attributes
            .as_ref()
            .and_then(|a| a.request.as_ref())
            .and_then(|r| r.http.as_ref())
            .ok_or(FactsError::NoHttpRequest)?;
        let value = header(http, HANDOFF_HEADER)?
            .filter(|v| !v.is_empty())
            .ok_or(FactsError::Missing(HANDOFF_HEADER))?;
        let handoff = Handoff::verify_and_decode(keys, value)?;
        let body = if http.raw_body.is_empty() {
            http.body.as_bytes()
        } else {
            &http.raw_body
        };
        Ok(Self {
            service: handoff.service,
            token: TokenFacts {
                subject: handoff.subject,
                login: handoff.login,
                client_id: handoff.client_id,
                grant_id: handoff.grant_id,
                token_id: handoff.token_id,
                scope: handoff.scope,
                expires_at: handoff.expires_at,
                issued_at: handoff.issued_at,
            },
            request: HttpFacts {
                method: &http.method,
                path: &http.path,
                body,
                http,
                body_follows: false,
            },
        })
    }
}

/// Names of the request's headers no MCP server may receive from a client: those in the
/// gateway's reserved namespace ([`mcp_auth_proto::handoff::RESERVED_PREFIX`]) and those in
/// `stripped` (identity headers servers trust). They are removed before the request goes
/// upstream, with the hand-off header itself.
pub fn reserved_header_names<'a>(check: &'a CheckRequest, stripped: &[String]) -> Vec<&'a str> {
    let Some(http) = check
        .attributes
        .as_ref()
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref())
    else {
        return Vec::new();
    };
    let mut names: Vec<&str> = http
        .headers
        .keys()
        .map(String::as_str)
        .chain(
            http.header_map
                .iter()
                .flat_map(|m| m.headers.iter().map(|h| h.key.as_str())),
        )
        .filter(|name| {
            name.starts_with(RESERVED_PREFIX) || stripped.iter().any(|s| s.as_str() == *name)
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// One request header by (lowercase) name, from the header map Envoy filled: `headers`, or
/// `header_map` when Envoy runs with `encode_raw_headers: true`.
fn header<'a>(http: &'a HttpRequest, name: &'static str) -> Result<Option<&'a str>, FactsError> {
    if let Some(value) = http.headers.get(name) {
        return Ok(Some(value));
    }
    let Some(map) = &http.header_map else {
        return Ok(None);
    };
    let mut found = None;
    for entry in map.headers.iter().filter(|h| h.key == name) {
        if found.is_some() {
            // The filter sets the hand-off header exactly once; a second copy means it was
            // bypassed, and guessing which copy is real would be unsafe.
            return Err(FactsError::Repeated(name));
        }
        let value = if entry.raw_value.is_empty() {
            entry.value.as_str()
        } else {
            std::str::from_utf8(&entry.raw_value).map_err(|_| FactsError::Malformed(name))?
        };
        found = Some(value);
    }
    Ok(found)
}

#[cfg(test)]
mod tests;

/// Hand-off keys and signed values for the unit tests of this crate.
#[cfg(test)]
pub(crate) mod testing {
    use mcp_auth_proto::handoff::{HANDOFF_KEY_ENV, Handoff, HandoffKey, HandoffKeys};

    pub const SECRET: &str = "ext-authz-unit-tests-handoff-secret";

    pub fn keys() -> HandoffKeys {
        HandoffKeys {
            current: HandoffKey::from_secret(HANDOFF_KEY_ENV, SECRET).unwrap(),
            previous: None,
        }
    }

    /// `handoff` as the filter writes it.
    pub fn signed(handoff: &Handoff<'_>) -> String {
        keys().current.sign(&handoff.encode())
    }
}

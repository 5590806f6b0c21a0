//! The filter's plugin configuration: the contract between the Envoy config renderer (which
//! derives it from the gateway config) and the proxy-wasm filter (which parses it in
//! `on_configure`). Unknown fields are rejected so a typo can never silently weaken a check.

use serde::{Deserialize, Serialize};

use crate::scope::Scope;

/// Plugin configuration of the token-verifying filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// Required `iss` of every token, byte-identical to the authserver's issuer.
    pub issuer: String,
    /// Where the filter fetches the authserver's JWKS from inside Envoy.
    pub jwks: JwksSource,
    /// Allowed clock skew for `exp`/`nbf`, in seconds (default 30, at most 60).
    #[serde(default = "default_clock_leeway_secs")]
    pub clock_leeway_secs: u64,
    /// Verified tokens remembered per worker (default 10,000; 0 verifies every request).
    #[serde(default = "default_token_cache_entries")]
    pub token_cache_entries: usize,
    /// One entry per MCP service, looked up by the Envoy route name.
    pub routes: Vec<RoutePolicy>,
    /// Set where nothing of the gateway's own runs before the filter (an Istio sidecar): in
    /// fast mode the filter then removes from each admitted request, itself, every header of
    /// the reserved `x-mcp-auth*` namespace and these names (the identity headers servers
    /// trust). Absent, the gateway's Envoy removes them before the filter runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip_request_headers: Option<Vec<String>>,
    /// Fast mode: the filter asks ext_authz itself and caches its decisions
    /// ([`crate::decisions`]); absent, Envoy's ext_authz filter asks on every request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decisions: Option<DecisionSource>,
}

/// Where the filter asks for decisions in fast mode (`dispatch_grpc_call`,
/// `open_grpc_stream`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionSource {
    /// Envoy cluster of ext_authz (HTTP/2).
    pub cluster: String,
    /// `:authority` of the calls; absent, Envoy sends the cluster name (Istio: set it to the
    /// Service's `HOST:PORT`, since `outbound|PORT||HOST` is no valid authority).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    /// Deadline of one `Decide`, in milliseconds.
    pub timeout_ms: u64,
    /// How long cached decisions still count after the invalidation stream is lost.
    pub stream_loss_grace_ms: u64,
    /// A POST body is read whole (at most this many bytes, else 413) and sent with the
    /// `Decide`, for `mcp_policy`; decisions are cached per token, route and operations.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: u32,
}

fn default_max_body_bytes() -> u32 {
    1 << 20
}

/// Where and how often the JWKS is fetched (`dispatch_http_call`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwksSource {
    /// Envoy cluster of the authserver.
    pub cluster: String,
    /// `:authority` sent with the fetch.
    pub authority: String,
    /// Path of the JWKS document, e.g. `/jwks`.
    pub path: String,
    /// Refresh interval, in seconds.
    pub refresh_secs: u64,
    /// Timeout of one fetch, in milliseconds.
    #[serde(default = "default_fetch_timeout_ms")]
    pub timeout_ms: u64,
}

/// What one protected MCP route requires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutePolicy {
    /// Envoy route name (the gateway service name).
    pub route: String,
    /// Canonical resource URI: the `aud` a token must carry (RFC 8707).
    pub resource: String,
    /// RFC 9728 metadata URL for `WWW-Authenticate: Bearer resource_metadata="…"`.
    pub resource_metadata: String,
    /// Scopes every request must hold (a broader granted scope satisfies a narrower one).
    pub required_scopes: Vec<Scope>,
    /// `Origin` values allowed for browser requests; an absent `Origin` is always allowed.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

fn default_clock_leeway_secs() -> u64 {
    30
}

/// Default of [`FilterConfig::token_cache_entries`].
pub const DEFAULT_TOKEN_CACHE_ENTRIES: usize = 10_000;

fn default_token_cache_entries() -> usize {
    DEFAULT_TOKEN_CACHE_ENTRIES
}

fn default_fetch_timeout_ms() -> u64 {
    5_000
}

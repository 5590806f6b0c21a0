//! The gateway config schema: what a deployment says once, and every component reads.
//!
//! The YAML form is documented field by field in `envoy/gateway.example.yaml`; the Rust
//! doc comments below are the reference. Durations are humantime strings (`30s`, `30m`, `90d`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use mcp_auth_proto::scope::Scope;
use serde::{Deserialize, Serialize};
use url::Url;

pub use crate::access::{AccessList, Member};
use crate::endpoint::Endpoint;
use crate::service::Service;

/// The whole gateway config, validated (see [`crate::load`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Public URL of the gateway and OAuth issuer (RFC 8414 §2): `http(s)://host[:port][/path]`,
    /// no trailing slash, query or fragment. Clients build every URL from it, so it must be
    /// exactly what they reach; it is never guessed from request headers.
    pub issuer: Url,
    /// Where Envoy accepts client traffic.
    #[serde(default)]
    pub listener: ListenerConfig,
    /// The network between Envoy and the authserver, ext_authz and Redis is encrypted and
    /// authenticated by a service mesh (Istio, Linkerd mTLS): `http://`/`redis://` off
    /// loopback are then allowed. Otherwise they are refused, as the JWKS, decisions and
    /// tokens would cross the network in clear.
    #[serde(default)]
    pub mesh_mtls: bool,
    /// Envoy's admin interface; must be a loopback address.
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub redis: RedisConfig,
    #[serde(default)]
    pub authserver: AuthServerConfig,
    #[serde(default)]
    pub ext_authz: ExtAuthzConfig,
    #[serde(default)]
    pub filter: FilterSettings,
    #[serde(default)]
    pub tokens: TokenLifetimes,
    /// Who may use any service at all (GitHub users, orgs, teams). A service's own `access`
    /// list narrows this further.
    #[serde(default)]
    pub access: AccessList,
    /// The protected MCP services.
    pub services: Vec<Service>,
    /// Who may call which tool, prompt and resource ([`crate::mcp_policy`]).
    #[serde(default)]
    pub mcp_policy: crate::mcp_policy::McpPolicy,
}

/// Envoy's client-facing listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Default `127.0.0.1:8080`. Use `0.0.0.0:8080` to accept remote clients.
    #[serde(default = "default_listener")]
    pub address: SocketAddr,
    /// Proxies in front of Envoy that append to `X-Forwarded-For` (a load balancer: 1).
    /// Envoy's `xff_num_trusted_hops`; the authserver's rate limits count the address these
    /// hops saw. Default 0: the client connects to Envoy itself.
    #[serde(default)]
    pub xff_num_trusted_hops: u32,
    /// Downstream connections Envoy holds open at once; past this it refuses new ones.
    #[serde(default = "default_max_connections")]
    pub max_connections: u64,
    /// Envoy's heap budget: near it, Envoy shrinks its heap, then stops taking keep-alive
    /// connections, then refuses new requests (503) instead of being killed for memory.
    #[serde(default = "default_max_heap_bytes")]
    pub max_heap_bytes: u64,
    /// Terminate TLS on `address` (README "TLS"). Absent: plain http, for loopback or behind
    /// a TLS terminator in front of Envoy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ListenerTls>,
}

/// The listener's TLS: its certificate, the protocol floor, HSTS and the http → https
/// redirect.
///
/// Envoy reads the certificate through file-based SDS, so a certificate and key moved into
/// place (a Kubernetes Secret update, cert-manager, `mv` of a new pair) are served from the
/// next handshake on, without a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerTls {
    /// The certificate chain, PEM, leaf first then intermediates; an absolute path where
    /// Envoy runs.
    pub certificate_chain_file: PathBuf,
    /// The certificate's private key, PEM; an absolute path where Envoy runs.
    pub private_key_file: PathBuf,
    /// The oldest TLS version accepted: `TLSv1_2` (default) or `TLSv1_3`.
    #[serde(default)]
    pub min_version: TlsVersion,
    /// `max-age` of the `Strict-Transport-Security` header on every https response
    /// (RFC 6797 §6.1.1); default 365 days. `0s` tells browsers to forget the policy.
    #[serde(default = "default_hsts_max_age", with = "humantime_serde")]
    pub hsts_max_age: Duration,
    /// Adds `includeSubDomains` (RFC 6797 §6.1.2): only when every subdomain of the
    /// issuer's host is served over https.
    #[serde(default)]
    pub hsts_include_subdomains: bool,
    /// A plain-http listener that answers every request with `301` to the same URL over
    /// https (at the issuer's port), and nothing else: no route, no HSTS (RFC 6797 §7.2).
    /// Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_redirect_address: Option<SocketAddr>,
}

/// TLS protocol versions, by Envoy's names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TlsVersion {
    #[default]
    #[serde(rename = "TLSv1_2")]
    Tls12,
    #[serde(rename = "TLSv1_3")]
    Tls13,
}

impl TlsVersion {
    /// Envoy's `TlsParameters.TlsProtocol` name.
    pub fn envoy_name(self) -> &'static str {
        match self {
            Self::Tls12 => "TLSv1_2",
            Self::Tls13 => "TLSv1_3",
        }
    }
}

/// Envoy's admin endpoint (stats, readiness). Never exposed beyond loopback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Default `127.0.0.1:9901`.
    #[serde(default = "default_admin")]
    pub address: SocketAddr,
}

/// Where state lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port/db` or `rediss://...`; a password is better
    /// given in the URL through the `REDIS_URL` environment variable than in this file.
    #[serde(default = "default_redis_url")]
    pub url: String,
    /// Prefix of every key this deployment writes, so several can share one Redis.
    #[serde(default = "default_redis_prefix")]
    pub key_prefix: String,
    /// `rediss://` only: the CA (PEM) that signed Redis's certificate, when it is not one the
    /// system trusts.
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// `rediss://` only: a client certificate (PEM), for a Redis that asks for one (Redis's
    /// `tls-auth-clients yes`, its default); with `tls_key_file`.
    #[serde(default)]
    pub tls_cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[serde(default)]
    pub tls_key_file: Option<PathBuf>,
}

/// The OAuth authorization server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthServerConfig {
    /// Where the authserver binds. Default `127.0.0.1:8081`.
    #[serde(default = "default_authserver_listen")]
    pub listen: SocketAddr,
    /// How Envoy reaches it; default `http://<listen>` (loopback when `listen` is unspecified).
    #[serde(default)]
    pub url: Option<Url>,
    /// Algorithm of newly generated signing keys.
    #[serde(default)]
    pub signing_alg: SigningAlg,
    /// Directory of persisted signing keys (generated on first start when empty).
    #[serde(default = "default_keys_dir")]
    pub keys_dir: PathBuf,
    /// Requests per minute per client IP on `/register` and `/token`.
    #[serde(default = "default_rate_limit")]
    pub rate_limit_per_minute: u32,
    /// Peers whose `X-Forwarded-For` the authserver reads (Envoy's addresses). Default
    /// loopback: Envoy beside the authserver. Any other peer is itself the client.
    #[serde(default = "default_trusted_proxies")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// OpenID Connect providers users may sign in with (`crate::oidc`).
    #[serde(default)]
    pub oidc_providers: Vec<crate::oidc::OidcProvider>,
}

/// JWS algorithms the authserver signs with (RFC 7518 §3.1, RFC 8037 §3.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlg {
    /// Ed25519: the cheapest to verify in the filter (see the README's measurements).
    #[default]
    EdDSA,
    ES256,
    RS256,
}

/// The ext_authz gRPC service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtAuthzConfig {
    /// Where the gRPC server binds. Default `127.0.0.1:9191`.
    #[serde(default = "default_ext_authz_listen")]
    pub listen: SocketAddr,
    /// How Envoy reaches it; default `http://<listen>`.
    #[serde(default)]
    pub url: Option<Url>,
    /// Where ext_authz serves its Prometheus metrics (`GET /metrics`, plain HTTP). Default
    /// `127.0.0.1:9192`: only the host itself scrapes unless this says otherwise.
    #[serde(default = "default_ext_authz_metrics_listen")]
    pub metrics_listen: SocketAddr,
    /// Envoy's deadline for one Check.
    #[serde(default = "default_ext_authz_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// How long ext_authz keeps answering from memory after losing Redis, then fails closed.
    #[serde(default = "default_redis_grace", with = "humantime_serde")]
    pub redis_grace: Duration,
    /// Full resync of the in-memory state from Redis, on top of the event stream.
    #[serde(default = "default_resync", with = "humantime_serde")]
    pub resync_interval: Duration,
    /// Names of the identity headers the MCP server receives.
    #[serde(default)]
    pub identity_headers: IdentityHeaders,
    /// How requests are put to ext_authz: `fast` (default) or `per_request`.
    #[serde(default)]
    pub mode: ExtAuthzMode,
    /// Fast mode: how long cached decisions still count once the invalidation stream from
    /// ext_authz is lost; after that every request is decided by ext_authz again.
    #[serde(default = "default_stream_loss_grace", with = "humantime_serde")]
    pub stream_loss_grace: Duration,
}

/// How requests are put to ext_authz.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtAuthzMode {
    /// Envoy's `ext_authz` filter calls `Authorization/Check` for every request: the mode an
    /// Istio `CUSTOM` provider uses too; for where the filter cannot open its own streams.
    PerRequest,
    /// The default: the token filter asks ext_authz (`mcp_auth.v1.Decisions/Decide`) only
    /// for the first request of a token on a service, per Envoy worker, and reuses the
    /// decision until it expires or ext_authz pushes an invalidation over a long-lived stream.
    #[default]
    Fast,
}

/// Identity headers set for the MCP server (client-sent copies are removed first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityHeaders {
    #[serde(default = "default_user_id_header")]
    pub user_id: String,
    #[serde(default = "default_user_login_header")]
    pub user_login: String,
    #[serde(default = "default_client_id_header")]
    pub client_id: String,
    #[serde(default = "default_scopes_header")]
    pub scopes: String,
    /// Headers MCP servers commonly trust as identity (set by other gateways: the seed's
    /// ForwardAuth `X-User-*`, oauth2-proxy's `X-Auth-Request-*`, `X-Forwarded-User`,
    /// `Remote-User`…), removed from every request before it goes upstream, whatever the
    /// client sent. Every identity header name configured here or per service is removed too.
    #[serde(default = "default_stripped_identity_headers")]
    pub strip: Vec<String>,
}

/// What a service-specific identity header carries (`services[].identity_headers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityClaim {
    /// The user's stable id (`sub`).
    UserId,
    /// The user's login.
    Login,
    /// The OAuth client's id.
    ClientId,
    /// The granted scopes, space-delimited.
    Scopes,
}

/// The default of `ext_authz.identity_headers.strip`.
pub const DEFAULT_STRIPPED_IDENTITY_HEADERS: &[&str] = &[
    "x-user-id",
    "x-user-name",
    "x-user-login",
    "x-user-email",
    "x-user-groups",
    "x-user-roles",
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-groups",
    "x-forwarded-preferred-username",
    "x-forwarded-access-token",
    "x-auth-request-user",
    "x-auth-request-email",
    "x-auth-request-groups",
    "x-auth-request-preferred-username",
    "x-auth-request-access-token",
    "remote-user",
    "x-remote-user",
    "x-authenticated-user",
];

fn default_stripped_identity_headers() -> Vec<String> {
    DEFAULT_STRIPPED_IDENTITY_HEADERS
        .iter()
        .map(|name| (*name).to_owned())
        .collect()
}

/// Token verification in the Envoy filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterSettings {
    /// JWKS refresh interval.
    #[serde(default = "default_jwks_refresh", with = "humantime_serde")]
    pub jwks_refresh: Duration,
    /// Allowed clock skew for `exp`/`nbf`; at most 60 s.
    #[serde(default = "default_clock_leeway", with = "humantime_serde")]
    pub clock_leeway: Duration,
    /// Verified tokens each Envoy worker remembers, so a signature is checked once per
    /// token per worker; 0 verifies every request.
    #[serde(default = "default_token_cache_entries")]
    pub token_cache_entries: usize,
}

/// Lifetimes of what the authserver issues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenLifetimes {
    #[serde(default = "default_access_ttl", with = "humantime_serde")]
    pub access_token: Duration,
    #[serde(default = "default_refresh_ttl", with = "humantime_serde")]
    pub refresh_token: Duration,
    /// At most 10 minutes (OAuth 2.1 §4.1.2).
    #[serde(default = "default_code_ttl", with = "humantime_serde")]
    pub authorization_code: Duration,
    /// Lifetime of a dynamically registered client; `0s` means it never expires.
    #[serde(default = "default_client_ttl", with = "humantime_serde")]
    pub client_registration: Duration,
    /// Lifetime of a registration no code was ever exchanged for: anyone may register, so
    /// what nobody uses must not stay (its first code exchange extends it to
    /// `client_registration`).
    #[serde(default = "default_unused_client_ttl", with = "humantime_serde")]
    pub unused_client_registration: Duration,
    /// How long after a refresh a second use of the same refresh token (a client retrying
    /// after a lost response, or two concurrent refreshes) gets the same successor instead
    /// of revoking the grant. Reuse after this still revokes it; `0s` disables the grace.
    #[serde(default = "default_refresh_reuse_grace", with = "humantime_serde")]
    pub refresh_reuse_grace: Duration,
}

fn default_refresh_reuse_grace() -> Duration {
    Duration::from_secs(10)
}

fn default_unused_client_ttl() -> Duration {
    Duration::from_secs(24 * 3600)
}

impl GatewayConfig {
    /// Every request header removed before a request reaches any MCP server, lowercase and
    /// sorted: `ext_authz.identity_headers.strip` and every identity header name the gateway
    /// sets (globally and per service). Envoy removes them before the token filter runs, and
    /// ext_authz's answer removes them again (what an Istio `CUSTOM` provider relies on).
    pub fn stripped_request_headers(&self) -> Vec<String> {
        let headers = &self.ext_authz.identity_headers;
        let mut names: Vec<String> = headers
            .strip
            .iter()
            .chain([
                &headers.user_id,
                &headers.user_login,
                &headers.client_id,
                &headers.scopes,
            ])
            .chain(self.services.iter().flat_map(|s| s.identity_headers.keys()))
            .map(|name| name.to_ascii_lowercase())
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The issuer exactly as clients and tokens carry it (no trailing slash).
    pub fn issuer_str(&self) -> &str {
        self.issuer.as_str().trim_end_matches('/')
    }

    /// The service with this name.
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    /// Every scope any service supports, deduplicated, in config order.
    pub fn scopes_supported(&self) -> Vec<Scope> {
        let mut scopes: Vec<Scope> = Vec::new();
        for scope in self.services.iter().flat_map(|s| &s.scopes) {
            if !scopes.contains(scope) {
                scopes.push(scope.clone());
            }
        }
        scopes
    }

    /// How Envoy reaches the authserver.
    pub fn authserver_endpoint(&self) -> Endpoint {
        reach(self.authserver.url.as_ref(), self.authserver.listen)
    }

    /// How Envoy reaches ext_authz.
    pub fn ext_authz_endpoint(&self) -> Endpoint {
        reach(self.ext_authz.url.as_ref(), self.ext_authz.listen)
    }
}

/// The explicit URL when it names a host (validated at load), else the bind address.
fn reach(url: Option<&Url>, listen: SocketAddr) -> Endpoint {
    url.and_then(Endpoint::from_url)
        .unwrap_or_else(|| Endpoint::from_listen(listen))
}

impl Default for ListenerConfig {
    fn default() -> Self {
        Self {
            address: default_listener(),
            xff_num_trusted_hops: 0,
            max_connections: default_max_connections(),
            max_heap_bytes: default_max_heap_bytes(),
            tls: None,
        }
    }
}
impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            address: default_admin(),
        }
    }
}
impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: default_redis_url(),
            key_prefix: default_redis_prefix(),
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}
impl Default for AuthServerConfig {
    fn default() -> Self {
        Self {
            listen: default_authserver_listen(),
            url: None,
            signing_alg: SigningAlg::default(),
            keys_dir: default_keys_dir(),
            rate_limit_per_minute: default_rate_limit(),
            trusted_proxies: default_trusted_proxies(),
            oidc_providers: Vec::new(),
        }
    }
}
impl Default for ExtAuthzConfig {
    fn default() -> Self {
        Self {
            listen: default_ext_authz_listen(),
            metrics_listen: default_ext_authz_metrics_listen(),
            url: None,
            timeout: default_ext_authz_timeout(),
            redis_grace: default_redis_grace(),
            resync_interval: default_resync(),
            identity_headers: IdentityHeaders::default(),
            mode: ExtAuthzMode::default(),
            stream_loss_grace: default_stream_loss_grace(),
        }
    }
}
impl Default for IdentityHeaders {
    fn default() -> Self {
        Self {
            user_id: default_user_id_header(),
            user_login: default_user_login_header(),
            client_id: default_client_id_header(),
            scopes: default_scopes_header(),
            strip: default_stripped_identity_headers(),
        }
    }
}
impl Default for FilterSettings {
    fn default() -> Self {
        Self {
            jwks_refresh: default_jwks_refresh(),
            clock_leeway: default_clock_leeway(),
            token_cache_entries: default_token_cache_entries(),
        }
    }
}
impl Default for TokenLifetimes {
    fn default() -> Self {
        Self {
            access_token: default_access_ttl(),
            refresh_token: default_refresh_ttl(),
            authorization_code: default_code_ttl(),
            client_registration: default_client_ttl(),
            unused_client_registration: default_unused_client_ttl(),
            refresh_reuse_grace: default_refresh_reuse_grace(),
        }
    }
}

fn default_listener() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_admin() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9901))
}
fn default_redis_url() -> String {
    "redis://127.0.0.1:6379/0".to_owned()
}
fn default_redis_prefix() -> String {
    "mcp-auth:".to_owned()
}
fn default_authserver_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8081))
}
fn default_keys_dir() -> PathBuf {
    PathBuf::from(".data/keys")
}
fn default_rate_limit() -> u32 {
    120
}
fn default_trusted_proxies() -> Vec<ipnet::IpNet> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    vec![
        ipnet::IpNet::new_assert(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 8),
        ipnet::IpNet::new_assert(IpAddr::V6(Ipv6Addr::LOCALHOST), 128),
    ]
}
fn default_max_connections() -> u64 {
    10_000
}
fn default_max_heap_bytes() -> u64 {
    1 << 30
}
fn default_hsts_max_age() -> Duration {
    Duration::from_secs(365 * 24 * 3600)
}
fn default_ext_authz_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9191))
}
fn default_ext_authz_timeout() -> Duration {
    Duration::from_millis(250)
}
fn default_ext_authz_metrics_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9192))
}

fn default_redis_grace() -> Duration {
    Duration::from_secs(30)
}
fn default_resync() -> Duration {
    Duration::from_secs(30)
}
fn default_stream_loss_grace() -> Duration {
    Duration::from_secs(3)
}
fn default_user_id_header() -> String {
    mcp_auth_proto::headers::DEFAULT_IDENTITY_USER_ID.to_owned()
}
fn default_user_login_header() -> String {
    mcp_auth_proto::headers::DEFAULT_IDENTITY_USER_LOGIN.to_owned()
}
fn default_client_id_header() -> String {
    mcp_auth_proto::headers::DEFAULT_IDENTITY_CLIENT_ID.to_owned()
}
fn default_scopes_header() -> String {
    mcp_auth_proto::headers::DEFAULT_IDENTITY_SCOPES.to_owned()
}
fn default_jwks_refresh() -> Duration {
    Duration::from_secs(300)
}
fn default_token_cache_entries() -> usize {
    mcp_auth_proto::filter_config::DEFAULT_TOKEN_CACHE_ENTRIES
}

fn default_clock_leeway() -> Duration {
    Duration::from_secs(30)
}
fn default_access_ttl() -> Duration {
    Duration::from_secs(30 * 60)
}
fn default_refresh_ttl() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}
fn default_code_ttl() -> Duration {
    Duration::from_secs(60)
}
fn default_client_ttl() -> Duration {
    Duration::from_secs(90 * 24 * 3600)
}

//! The authserver's Prometheus metrics, served at `GET /metrics` on `authserver.listen`
//! (Envoy routes only the public OAuth paths, so a scrape never comes through the gateway).
//!
//! | metric | labels | what it counts |
//! |---|---|---|
//! | `mcp_auth_http_requests_total` | `endpoint`, `method`, `status` | requests answered, by route pattern |
//! | `mcp_auth_http_request_duration_seconds` | `endpoint` | time to answer (histogram) |
//! | `mcp_auth_tokens_issued_total` | `grant_type` | access tokens issued: `authorization_code` (new grants) or `refresh_token` (refreshes) |
//! | `mcp_auth_revocations_total` | `target`, `reason` | revocations written: `target` token/grant/user/client; `reason` `revoke_endpoint`, `code_replay`, `refresh_reuse`, `client_deleted` |
//! | `mcp_auth_client_registrations_total` | `operation` | `register`, `update`, `delete` (RFC 7591/7592) that succeeded |
//! | `mcp_auth_logins_total` | `provider`, `outcome` | sign-ins at an identity provider: `admitted`, `not_allowed` (allow-list), `provider_refused`, `incomplete`, `exchange_failed`, `provider_unreachable` |
//! | `mcp_auth_redis_up` | | 1 when Redis answered the last `PING` (each scrape and `/readyz` pings) |

use std::sync::Arc;

use mcp_auth_telemetry::metrics::HttpMetrics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrantType {
    grant_type: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RevocationLabels {
    target: &'static str,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Operation {
    operation: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    provider: String,
    outcome: &'static str,
}

/// Why a revocation was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationReason {
    /// `POST /revoke` (RFC 7009).
    RevokeEndpoint,
    /// An authorization code presented twice: its grant is revoked.
    CodeReplay,
    /// A rotated refresh token presented again: its grant is revoked.
    RefreshReuse,
    /// A client deleted its registration (RFC 7592).
    ClientDeleted,
}

impl RevocationReason {
    fn as_str(self) -> &'static str {
        match self {
            RevocationReason::RevokeEndpoint => "revoke_endpoint",
            RevocationReason::CodeReplay => "code_replay",
            RevocationReason::RefreshReuse => "refresh_reuse",
            RevocationReason::ClientDeleted => "client_deleted",
        }
    }
}

/// How a sign-in at an identity provider ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome {
    Admitted,
    /// Signed in, but not on the allow-list of the service.
    NotAllowed,
    /// The provider answered with an error (the user cancelled, or it refused).
    ProviderRefused,
    /// The callback carried no code.
    Incomplete,
    /// The provider refused our code exchange.
    ExchangeFailed,
    /// The provider could not be reached or answered nonsense.
    ProviderUnreachable,
}

impl LoginOutcome {
    fn as_str(self) -> &'static str {
        match self {
            LoginOutcome::Admitted => "admitted",
            LoginOutcome::NotAllowed => "not_allowed",
            LoginOutcome::ProviderRefused => "provider_refused",
            LoginOutcome::Incomplete => "incomplete",
            LoginOutcome::ExchangeFailed => "exchange_failed",
            LoginOutcome::ProviderUnreachable => "provider_unreachable",
        }
    }
}

/// Every metric of one authserver, and the registry that renders them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    http: Arc<HttpMetrics>,
    tokens_issued: Family<GrantType, Counter>,
    revocations: Family<RevocationLabels, Counter>,
    registrations: Family<Operation, Counter>,
    logins: Family<LoginLabels, Counter>,
    redis_up: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let http = Arc::new(HttpMetrics::register(&mut registry));
        let tokens_issued = Family::<GrantType, Counter>::default();
        registry.register(
            "mcp_auth_tokens_issued",
            "Access tokens issued, by grant type (refresh_token: a refresh)",
            tokens_issued.clone(),
        );
        let revocations = Family::<RevocationLabels, Counter>::default();
        registry.register(
            "mcp_auth_revocations",
            "Revocations written, by what they cover and why",
            revocations.clone(),
        );
        let registrations = Family::<Operation, Counter>::default();
        registry.register(
            "mcp_auth_client_registrations",
            "Successful client registration operations (RFC 7591, RFC 7592)",
            registrations.clone(),
        );
        let logins = Family::<LoginLabels, Counter>::default();
        registry.register(
            "mcp_auth_logins",
            "Sign-ins at an identity provider, by provider and outcome",
            logins.clone(),
        );
        let redis_up = Gauge::default();
        registry.register(
            "mcp_auth_redis_up",
            "1 when Redis answered the last PING, else 0",
            redis_up.clone(),
        );
        Self {
            registry,
            http,
            tokens_issued,
            revocations,
            registrations,
            logins,
            redis_up,
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The HTTP request metrics, for the router's middleware.
    pub fn http(&self) -> Arc<HttpMetrics> {
        Arc::clone(&self.http)
    }

    pub fn token_issued(&self, grant_type: &str) {
        let grant_type = match grant_type {
            "authorization_code" => "authorization_code",
            _ => "refresh_token",
        };
        self.tokens_issued
            .get_or_create(&GrantType { grant_type })
            .inc();
    }

    pub fn revoked(
        &self,
        target: &mcp_auth_proto::store::RevocationTarget,
        reason: RevocationReason,
    ) {
        self.revocations
            .get_or_create(&RevocationLabels {
                target: target.kind(),
                reason: reason.as_str(),
            })
            .inc();
    }

    pub fn registration(&self, operation: &'static str) {
        self.registrations
            .get_or_create(&Operation { operation })
            .inc();
    }

    pub fn login(&self, provider: &str, outcome: LoginOutcome) {
        self.logins
            .get_or_create(&LoginLabels {
                provider: provider.to_owned(),
                outcome: outcome.as_str(),
            })
            .inc();
    }

    pub fn set_redis_up(&self, up: bool) {
        self.redis_up.set(i64::from(up));
    }
}

//! Derives the filter's plugin config from the gateway config.

use mcp_auth_proto::filter_config::{DecisionSource, FilterConfig, JwksSource, RoutePolicy};
use mcp_auth_proto::paths::JWKS;

use crate::GatewayConfig;
use crate::config::ExtAuthzMode;
use crate::envoy::{AUTHSERVER_CLUSTER, EXT_AUTHZ_CLUSTER};

/// Timeout of one JWKS fetch from inside Envoy.
const JWKS_FETCH_TIMEOUT_MS: u64 = 5_000;

/// The plugin config of the token-verifying filter for this gateway.
pub fn filter_config(config: &GatewayConfig) -> FilterConfig {
    FilterConfig {
        issuer: config.issuer_str().to_owned(),
        jwks: JwksSource {
            cluster: AUTHSERVER_CLUSTER.to_owned(),
            authority: config.authserver_endpoint().authority(),
            path: JWKS.to_owned(),
            refresh_secs: config.filter.jwks_refresh.as_secs(),
            timeout_ms: JWKS_FETCH_TIMEOUT_MS,
        },
        clock_leeway_secs: config.filter.clock_leeway.as_secs(),
        token_cache_entries: config.filter.token_cache_entries,
        // Our bootstrap removes them before the filter (envoy.yaml.j2).
        strip_request_headers: None,
        routes: config
            .services
            .iter()
            .map(|service| RoutePolicy {
                route: service.name.clone(),
                resource: service.resource.clone(),
                resource_metadata: service.resource_metadata_url(),
                required_scopes: service.required_scopes.clone(),
                allowed_origins: service.allowed_origins.clone(),
            })
            .collect(),
        decisions: (config.ext_authz.mode == ExtAuthzMode::Fast).then(|| DecisionSource {
            cluster: EXT_AUTHZ_CLUSTER.to_owned(),
            authority: None,
            timeout_ms: millis(config.ext_authz.timeout),
            stream_loss_grace_ms: millis(config.ext_authz.stream_loss_grace),
            max_body_bytes: config.mcp_policy.max_body_bytes,
        }),
    }
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

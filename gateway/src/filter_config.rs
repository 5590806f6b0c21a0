//! Derives the filter's plugin config from the gateway config.

use mcp_auth_proto::filter_config::{FilterConfig, JwksSource, RoutePolicy};
use mcp_auth_proto::paths::JWKS;

use crate::GatewayConfig;
use crate::envoy::AUTHSERVER_CLUSTER;

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
    }
}

//! What ext_authz takes from the gateway config, compiled once per (re)load.

use std::time::Duration;

use mcp_auth_gateway::GatewayConfig;
use mcp_auth_gateway::config::IdentityHeaders;
use mcp_auth_proto::handoff::RESERVED_PREFIX;

use crate::mcp_policy::McpPolicy;
use crate::policy::AccessPolicy;

/// Why a config cannot drive ext_authz although the gateway crate accepted it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("gateway config: `{field}`: {problem}")]
    Invalid { field: String, problem: String },
}

/// The part of the gateway config every Check reads; swapped whole on reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Bumped at every successful reload, so a cached decision can tell it is stale.
    pub generation: u64,
    pub access: AccessPolicy,
    /// `mcp_policy`, compiled.
    pub mcp_policy: McpPolicy,
    /// `mcp_policy.max_body_bytes`.
    pub max_body_bytes: usize,
    pub identity_headers: IdentityHeaders,
    /// Request headers no MCP server may receive from a client
    /// ([`GatewayConfig::stripped_request_headers`]).
    pub stripped_headers: Vec<String>,
    /// `filter.clock_leeway` in seconds: the filter accepts a token this long past `exp`.
    pub clock_leeway: u64,
    /// How long to keep answering from memory after Redis stopped answering.
    pub redis_grace: Duration,
    /// Full resync period; also the longest an allow-list decision may be cached, since
    /// user records (orgs, teams) are refreshed at that pace.
    pub resync_interval: Duration,
    /// Where the state lives; read at start only (a change needs a restart).
    /// `redis:` (URL, key prefix, TLS files).
    pub redis: mcp_auth_gateway::config::RedisConfig,
}

impl Settings {
    /// Compiles `config`; refuses identity header names that would not reach the MCP server
    /// or would clash with headers ext_authz removes.
    pub fn from_config(config: &GatewayConfig, generation: u64) -> Result<Self, SettingsError> {
        let headers = &config.ext_authz.identity_headers;
        let mut seen: Vec<&str> = Vec::new();
        for (field, name) in [
            ("user_id", &headers.user_id),
            ("user_login", &headers.user_login),
            ("client_id", &headers.client_id),
            ("scopes", &headers.scopes),
        ] {
            let field = format!("ext_authz.identity_headers.{field}");
            check_identity_header(&field, name)?;
            if seen.contains(&name.as_str()) {
                return Err(invalid(field, format!("{name:?} is used twice")));
            }
            seen.push(name);
        }
        for (i, name) in headers.strip.iter().enumerate() {
            check_identity_header(&format!("ext_authz.identity_headers.strip[{i}]"), name)?;
        }
        for (i, service) in config.services.iter().enumerate() {
            for name in service.identity_headers.keys() {
                let field = format!("services[{i}].identity_headers.{name}");
                check_identity_header(&field, name)?;
                if seen.contains(&name.as_str()) {
                    return Err(invalid(
                        field,
                        format!("{name:?} is already a global identity header"),
                    ));
                }
            }
        }
        Ok(Self {
            generation,
            access: AccessPolicy::from_config(config),
            mcp_policy: McpPolicy::from_config(config),
            max_body_bytes: usize::try_from(config.mcp_policy.max_body_bytes).unwrap_or(usize::MAX),
            identity_headers: headers.clone(),
            stripped_headers: config.stripped_request_headers(),
            clock_leeway: config.filter.clock_leeway.as_secs(),
            redis_grace: config.ext_authz.redis_grace,
            resync_interval: config.ext_authz.resync_interval,
            redis: config.redis.clone(),
        })
    }
}

fn invalid(field: String, problem: impl Into<String>) -> SettingsError {
    SettingsError::Invalid {
        field,
        problem: problem.into(),
    }
}

/// Header names Envoy sends on as lowercase tokens (RFC 9110 §5.1); anything else would be
/// rejected by Envoy or silently differ from what the MCP server looks up.
fn check_identity_header(field: &str, name: &str) -> Result<(), SettingsError> {
    let token = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
    if !token {
        return Err(invalid(
            field.to_owned(),
            format!("{name:?} is not a lowercase HTTP header name ([a-z0-9-_.])"),
        ));
    }
    // These are removed before the request goes upstream, so an identity header of that
    // name would never arrive (`authorization` would also hand the token on: RS-15).
    if name == "authorization" || name == "host" || name.starts_with(RESERVED_PREFIX) {
        return Err(invalid(
            field.to_owned(),
            format!("{name:?} is reserved by the gateway"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(headers: &str) -> GatewayConfig {
        GatewayConfig::from_yaml(&format!(
            "issuer: http://127.0.0.1:8080\n\
             ext_authz:\n  identity_headers:\n{headers}\n\
             tokens: {{ access_token: 10m }}\n\
             services:\n  - name: svc\n    upstream: {{ url: http://127.0.0.1:3001/mcp }}\n"
        ))
        .unwrap()
    }

    #[test]
    fn defaults_compile() {
        let settings = Settings::from_config(&config("    {}"), 3).unwrap();
        assert_eq!(settings.generation, 3);
        assert_eq!(settings.identity_headers.user_id, "x-mcp-user-id");
        assert!(settings.access.service("svc").is_some());
    }

    #[test]
    fn reserved_or_malformed_identity_headers_are_refused_by_field() {
        for (yaml, field) in [
            (
                "    user_id: authorization",
                "ext_authz.identity_headers.user_id",
            ),
            (
                "    scopes: x-mcp-auth-sub",
                "ext_authz.identity_headers.scopes",
            ),
            (
                "    user_login: X-User",
                "ext_authz.identity_headers.user_login",
            ),
            (
                "    client_id: x-mcp-user-id",
                "ext_authz.identity_headers.client_id",
            ),
        ] {
            let err = Settings::from_config(&config(yaml), 1).unwrap_err();
            let SettingsError::Invalid { field: got, .. } = &err;
            assert_eq!(got, field, "{yaml}: {err}");
        }
    }
}

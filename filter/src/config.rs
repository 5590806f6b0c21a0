//! The plugin configuration: [`FilterConfig`] JSON, parsed and validated once in `on_configure`
//! and shared with every request through an `Rc`.
//!
//! Parsing reports the JSON path of the offending field (`routes[0].resource`), so a log line
//! names what to fix. Unknown fields are rejected by the proto types themselves.

use std::collections::HashMap;
use std::rc::Rc;

use mcp_auth_proto::decisions::EnvoyGrpcService;
use mcp_auth_proto::filter_config::{FilterConfig, JwksSource, RoutePolicy};

/// Upper bound of `clock_leeway_secs`: more would keep expired tokens alive noticeably.
pub const MAX_CLOCK_LEEWAY_SECS: u64 = 60;

/// Why the plugin configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("the plugin configuration is empty")]
    Empty,
    #[error("field `{path}`: {message}")]
    Json { path: String, message: String },
    #[error("field `{field}`: {reason}")]
    Invalid { field: String, reason: String },
}

/// The validated configuration of one plugin instance.
#[derive(Debug)]
pub struct Config {
    /// Required `iss` of every token.
    pub issuer: String,
    /// Allowed clock skew for `exp`/`nbf`, in seconds.
    pub clock_leeway_secs: u64,
    /// Capacity of each worker's verified-token cache.
    pub token_cache_entries: usize,
    /// Where the JWKS comes from.
    pub jwks: JwksSource,
    /// Fast mode: where decisions come from; `None` in per-request mode.
    pub decisions: Option<Decisions>,
    /// [`mcp_auth_proto::filter_config::FilterConfig::strip_request_headers`]: `Some` where the
    /// filter must empty the reserved namespace and these headers itself.
    pub strip_request_headers: Option<Vec<String>>,
    routes: HashMap<String, Rc<Route>>,
}

/// Fast mode's upstream, ready for the host calls.
#[derive(Debug)]
pub struct Decisions {
    /// What the host takes as the upstream of a gRPC call or stream: an encoded
    /// `GrpcService` naming the cluster (or the bare name, where that would not be UTF-8).
    pub upstream: String,
    pub timeout_ms: u64,
    pub stream_loss_grace_ms: u64,
    /// Largest POST body read for `mcp_policy`.
    pub max_body_bytes: usize,
}

/// One protected route, with what its answers need precomputed.
#[derive(Debug)]
pub struct Route {
    pub policy: RoutePolicy,
    /// The required scopes, space-joined: the `scope` attribute of every challenge.
    pub scope_param: String,
    /// The route's part of the hand-off header value (`;svc=<route>`).
    pub handoff_service: String,
    /// Index of the route in the configuration (part of fast mode's cache key).
    pub ordinal: u32,
}

impl Config {
    /// Parses and validates the plugin configuration (the JSON of a `StringValue`).
    pub fn parse(json: &[u8]) -> Result<Self, ConfigError> {
        if json.iter().all(u8::is_ascii_whitespace) {
            return Err(ConfigError::Empty);
        }
        let mut deserializer = serde_json::Deserializer::from_slice(json);
        let config: FilterConfig =
            serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
                ConfigError::Json {
                    path: err.path().to_string(),
                    message: err.inner().to_string(),
                }
            })?;
        deserializer.end().map_err(|err| ConfigError::Json {
            path: ".".to_owned(),
            message: err.to_string(),
        })?;
        Self::from_filter_config(config)
    }

    /// Validates an already deserialized configuration.
    pub fn from_filter_config(config: FilterConfig) -> Result<Self, ConfigError> {
        non_empty("issuer", &config.issuer)?;
        if config.clock_leeway_secs > MAX_CLOCK_LEEWAY_SECS {
            return Err(invalid(
                "clock_leeway_secs",
                format!(
                    "{} exceeds the maximum of {MAX_CLOCK_LEEWAY_SECS} seconds",
                    config.clock_leeway_secs
                ),
            ));
        }
        non_empty("jwks.cluster", &config.jwks.cluster)?;
        non_empty("jwks.authority", &config.jwks.authority)?;
        if !config.jwks.path.starts_with('/') {
            return Err(invalid("jwks.path", "must start with '/'".to_owned()));
        }
        if config.jwks.refresh_secs == 0 {
            return Err(invalid(
                "jwks.refresh_secs",
                "must be at least 1".to_owned(),
            ));
        }
        if config.jwks.timeout_ms == 0 {
            return Err(invalid("jwks.timeout_ms", "must be at least 1".to_owned()));
        }
        if config.routes.is_empty() {
            return Err(invalid(
                "routes",
                "at least one route is required".to_owned(),
            ));
        }

        let decisions = match config.decisions {
            None => None,
            Some(source) => {
                non_empty("decisions.cluster", &source.cluster)?;
                if source.timeout_ms == 0 {
                    return Err(invalid(
                        "decisions.timeout_ms",
                        "must be at least 1".to_owned(),
                    ));
                }
                let encoded = EnvoyGrpcService::encode(
                    &source.cluster,
                    source.authority.as_deref().unwrap_or_default(),
                );
                Some(Decisions {
                    upstream: String::from_utf8(encoded).unwrap_or(source.cluster),
                    timeout_ms: source.timeout_ms,
                    stream_loss_grace_ms: source.stream_loss_grace_ms,
                    max_body_bytes: usize::try_from(source.max_body_bytes).unwrap_or(usize::MAX),
                })
            }
        };

        let mut routes = HashMap::with_capacity(config.routes.len());
        for (i, policy) in config.routes.into_iter().enumerate() {
            let field = |name: &str| format!("routes[{i}].{name}");
            non_empty(&field("route"), &policy.route)?;
            non_empty(&field("resource"), &policy.resource)?;
            non_empty(&field("resource_metadata"), &policy.resource_metadata)?;
            // Both end up in header values; a control character would be header injection.
            for (name, value) in [
                ("resource", &policy.resource),
                ("resource_metadata", &policy.resource_metadata),
            ] {
                if value.chars().any(char::is_control) {
                    return Err(invalid(
                        &field(name),
                        "contains a control character".to_owned(),
                    ));
                }
            }
            let scope_param = policy
                .required_scopes
                .iter()
                .map(|scope| scope.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            let name = policy.route.clone();
            let route = Rc::new(Route {
                handoff_service: mcp_auth_proto::handoff::service_field(&policy.route),
                ordinal: u32::try_from(i).unwrap_or(u32::MAX),
                policy,
                scope_param,
            });
            if routes.insert(name.clone(), route).is_some() {
                return Err(invalid(
                    &field("route"),
                    format!("route {name:?} is configured twice"),
                ));
            }
        }

        Ok(Self {
            issuer: config.issuer,
            clock_leeway_secs: config.clock_leeway_secs,
            token_cache_entries: config.token_cache_entries,
            jwks: config.jwks,
            decisions,
            strip_request_headers: config.strip_request_headers.map(|names| {
                names
                    .into_iter()
                    .map(|name| name.to_ascii_lowercase())
                    .collect()
            }),
            routes,
        })
    }

    /// The policy of the Envoy route named `route_name`, if it is protected.
    pub fn route(&self, route_name: &str) -> Option<&Rc<Route>> {
        self.routes.get(route_name)
    }
}

impl Route {
    /// RS-18: an absent `Origin` is allowed; a present one must be listed exactly.
    pub fn allows_origin(&self, origin: Option<&str>) -> bool {
        origin.is_none_or(|origin| self.policy.allowed_origins.iter().any(|o| o == origin))
    }
}

fn non_empty(field: &str, value: &str) -> Result<(), ConfigError> {
    if value.trim().is_empty() {
        Err(invalid(field, "must not be empty".to_owned()))
    } else {
        Ok(())
    }
}

fn invalid(field: &str, reason: String) -> ConfigError {
    ConfigError::Invalid {
        field: field.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests;

//! The one gateway config file every mcp-mesh-auth component reads, and the Envoy bootstrap
//! rendered from it.
//!
//! The authserver (issuer, resources, lifetimes), ext_authz (allow-lists, identity headers),
//! the filter (its plugin config is derived here) and Envoy (rendered here) all take their
//! view of a deployment from one validated [`GatewayConfig`], so they cannot disagree about
//! a resource, a scope or an issuer.

pub mod access;
pub mod config;
pub mod endpoint;
pub mod env;
pub mod envoy;
pub mod filter_config;
pub mod mcp_policy;
pub mod oidc;
pub mod redis_client;
pub mod service;
pub mod shutdown;
mod validate;
pub mod wrap;

use std::path::Path;

pub use config::GatewayConfig;
pub use service::Service;
pub use validate::validate_oidc_providers;

/// Why a gateway config was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read gateway config {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("gateway config: {0}")]
    Parse(String),
    #[error("gateway config: `{field}`: {problem}")]
    Invalid { field: String, problem: String },
}

impl GatewayConfig {
    /// Parses and validates a gateway config from YAML.
    pub fn from_yaml(yaml: &str) -> Result<Self, ConfigError> {
        let deserializer = serde_yaml_ng::Deserializer::from_str(yaml);
        let config: GatewayConfig =
            serde_path_to_error::deserialize(deserializer).map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner().to_string();
                if path == "." {
                    ConfigError::Parse(inner)
                } else {
                    ConfigError::Parse(format!("`{path}`: {inner}"))
                }
            })?;
        validate::validate(config)
    }

    /// Reads, parses and validates the gateway config file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let yaml = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml(&yaml)
    }

    /// Checks the files Envoy reads on this config's behalf (the listener's certificate
    /// chain and key) are readable PEM, naming the field of the one that is not. Not part of
    /// [`GatewayConfig::load`]: the authserver and ext_authz read the same config where those
    /// files are absent, and a bootstrap may be rendered for another machine; whoever starts
    /// Envoy here calls it first.
    pub fn check_listener_files(&self) -> Result<(), ConfigError> {
        validate::check_listener_files(self)
    }

    /// [`GatewayConfig::load`], then the overrides every component applies alike:
    /// `ALLOWED_GITHUB_USERS`, `ALLOWED_GITHUB_ORGS`, `ALLOWED_GITHUB_TEAMS`, `ALLOWED_EMAILS`,
    /// `ALLOWED_EMAIL_DOMAINS` and `ALLOWED_GROUPS` (comma-separated), when any of them is
    /// set, replace the global `access` allow-list as a whole (a list none of them names is
    /// emptied: `ALLOWED_GROUPS=admins` admits the group alone, never also the file's
    /// `users: ["*"]`), and `REDIS_URL` replaces `redis.url`.
    pub fn load_with_env(path: &Path, env: &dyn env::Env) -> Result<Self, ConfigError> {
        let mut yaml: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&std::fs::read_to_string(path).map_err(|source| {
                ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                }
            })?)
            .map_err(|e| ConfigError::Parse(e.to_string()))?;
        let allow_list = [
            ("ALLOWED_GITHUB_USERS", "users"),
            ("ALLOWED_GITHUB_ORGS", "orgs"),
            ("ALLOWED_GITHUB_TEAMS", "teams"),
            ("ALLOWED_EMAILS", "emails"),
            ("ALLOWED_EMAIL_DOMAINS", "email_domains"),
            ("ALLOWED_GROUPS", "groups"),
        ]
        .map(|(var, field)| (var, field, env.var(var)));
        if allow_list.iter().any(|(_, _, value)| value.is_some()) {
            for (var, field, value) in allow_list {
                let list = value
                    .map(|value| env::comma_list(&value))
                    .unwrap_or_default()
                    .into_iter()
                    .map(serde_yaml_ng::Value::String)
                    .collect();
                set_field(
                    &mut yaml,
                    "access",
                    field,
                    serde_yaml_ng::Value::Sequence(list),
                    var,
                )?;
            }
        }
        if let Some(url) = env.var("REDIS_URL") {
            set_field(
                &mut yaml,
                "redis",
                "url",
                serde_yaml_ng::Value::String(url),
                "REDIS_URL",
            )?;
        }
        let yaml =
            serde_yaml_ng::to_string(&yaml).map_err(|e| ConfigError::Parse(e.to_string()))?;
        Self::from_yaml(&yaml)
    }

    /// The validated config as YAML (what `cargo xtask up` hands every component).
    pub fn to_yaml(&self) -> Result<String, ConfigError> {
        serde_yaml_ng::to_string(self).map_err(|e| ConfigError::Parse(e.to_string()))
    }
}

fn set_field(
    doc: &mut serde_yaml_ng::Value,
    section: &str,
    field: &str,
    value: serde_yaml_ng::Value,
    var: &str,
) -> Result<(), ConfigError> {
    let not_a_map = || ConfigError::Invalid {
        field: section.to_owned(),
        problem: format!("must be a map to apply {var}"),
    };
    let root = doc.as_mapping_mut().ok_or_else(not_a_map)?;
    let entry = root
        .entry(serde_yaml_ng::Value::String(section.to_owned()))
        .or_insert_with(|| serde_yaml_ng::Value::Mapping(Default::default()));
    entry
        .as_mapping_mut()
        .ok_or_else(not_a_map)?
        .insert(serde_yaml_ng::Value::String(field.to_owned()), value);
    Ok(())
}

#[cfg(test)]
mod tests;

//! One protected MCP service: where clients reach it, where it really runs, what it requires.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use mcp_auth_proto::scope::Scope;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::config::{AccessList, IdentityClaim};

/// An MCP service behind the gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// `[a-z0-9-]`, 1 to 40 characters. Names the Envoy route and cluster.
    pub name: String,
    /// Switch the service off without deleting it (`cargo xtask up` also reads
    /// `MCP_<NAME>_ENABLED`). Disabled services are dropped at load time.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// Public path of the MCP endpoint; default `/<name>/mcp`.
    #[serde(default)]
    pub path: String,
    /// Serve the service on a host of its own (an Envoy virtual host) instead of the issuer's.
    #[serde(default)]
    pub host: Option<String>,
    /// Where the MCP server really runs.
    pub upstream: Upstream,
    /// Canonical resource URI (RFC 8707 §2, MCP authorization): the `aud` of its tokens.
    /// Default: the issuer's scheme, `host` (or the issuer's authority) and `path`.
    #[serde(default)]
    pub resource: String,
    /// Scopes this service offers (`scopes_supported` of its RFC 9728 metadata). Default `[mcp]`.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<Scope>,
    /// Scopes every request must hold; default: all of `scopes`. A broader granted scope
    /// satisfies a narrower requirement (`mcp` satisfies `mcp:tools`).
    #[serde(default)]
    pub required_scopes: Vec<Scope>,
    /// One line per scope, shown on the consent page beside it (e.g. `mcp:admin: "Call the
    /// administrators' tools"`). A scope without one gets a generic line.
    #[serde(default)]
    pub scope_descriptions: BTreeMap<String, String>,
    /// Browser `Origin`s allowed to call the service. A request without `Origin` is allowed;
    /// one with an `Origin` not listed here gets 403 (MCP streamable HTTP, DNS rebinding).
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Who may use this service, on top of the global `access` list. Absent: the global list.
    #[serde(default)]
    pub access: Option<AccessList>,
    /// More identity headers for this service's MCP server, by name: what a server built for
    /// another gateway reads (the seed's servers read `x-user-id` and `x-user-name`). Set by
    /// the gateway like the global ones; client-sent copies never pass.
    #[serde(default)]
    pub identity_headers: BTreeMap<String, IdentityClaim>,
}

/// The MCP server itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// The server's streamable-HTTP endpoint, e.g. `http://127.0.0.1:3001/mcp`. For a stdio
    /// server this is where the wrapper that `cargo xtask up` starts will listen.
    pub url: Url,
    /// How the server speaks MCP.
    #[serde(default)]
    pub transport: Transport,
    /// The process that runs the server, started and supervised by `cargo xtask up`.
    /// Required for `transport: stdio`; for `http` leave it out when the server runs elsewhere.
    #[serde(default)]
    pub run: Option<Command>,
    /// Per-request timeout; default none, since SSE streams stay open.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
}

/// The MCP transport of an upstream server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// Streamable HTTP (and legacy HTTP+SSE) served natively.
    #[default]
    Http,
    /// stdio: the gateway's local stack wraps `run` as streamable HTTP at `url`.
    Stdio,
}

/// A command line to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory, relative to the gateway config file's directory.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
}

impl Service {
    /// The scopes to advertise in a `WWW-Authenticate` challenge and to require.
    pub fn required_scopes(&self) -> &[Scope] {
        &self.required_scopes
    }

    /// Envoy cluster name of this service's upstream.
    pub fn cluster_name(&self) -> String {
        format!("mcp_{}", self.name.replace('-', "_"))
    }

    /// RFC 9728 §3.1 metadata URL of this service (path-inserted form).
    pub fn resource_metadata_url(&self) -> String {
        // `resource` is validated to be an absolute URL without query or fragment.
        mcp_auth_proto::paths::protected_resource_metadata_url(&self.resource).unwrap_or_default()
    }
}

fn enabled_by_default() -> bool {
    true
}

fn default_scopes() -> Vec<Scope> {
    Scope::new("mcp").into_iter().collect()
}

//! `mcp_policy`: who may call which tool, get which prompt and read which resource of which
//! MCP service, mesh-wide — and, through the same rules, who is shown them in listings.
//!
//! # How a rule decides
//! Rules are tried in order; the **first** rule that matches an operation decides it. A rule
//! matches when the service is one of `services`, the JSON-RPC method one of `methods`, and
//! the operation's name (tool or prompt name, resource URI) one of `names` (exact, or a glob
//! with `*` and `?`). `names` other than `["*"]` match only the operations that name
//! something: `tools/call`, `prompts/get`, `resources/read`, `resources/subscribe` and
//! `resources/unsubscribe`.
//!
//! A matching rule allows the operation when the caller is on its `allow` list (absent:
//! anyone who may use the service; `allow: {}`: no one) **and** their token holds its
//! `scopes`. Refused by `allow`: 403 with a JSON-RPC error. Refused for scopes only: 403
//! `insufficient_scope` naming every scope needed, so the client can step up.
//!
//! # When no rule matches
//! An operation that names something gets `default` (`allow`, the default; `deny` makes the
//! policy an allow-list). An operation that names nothing (`initialize`, `tools/list`,
//! `ping`, notifications…) is allowed: only a rule with `methods: ["*"]` or its method
//! governs it.
//!
//! # Listings
//! `tools/list`, `prompts/list`, `resources/list` and `resources/templates/list` show an
//! item when its `tools/call` / `prompts/get` / `resources/read` would pass the `allow`
//! lists. An item gated only by scopes stays listed, so the client can call it and step up.

use mcp_auth_proto::scope::Scope;
use serde::{Deserialize, Serialize};

use crate::config::AccessList;

/// Every service, method or name.
pub const ANY: &str = "*";

/// The `mcp_policy:` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpPolicy {
    /// What a named operation no rule matches gets.
    #[serde(default)]
    pub default: PolicyDefault,
    /// Largest POST body Envoy buffers to read its JSON-RPC (default 1 MiB, at most 1 MiB):
    /// a larger request is refused with 413 before any MCP server sees it.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: u32,
    #[serde(default)]
    pub rules: Vec<PolicyRule>,
}

/// `mcp_policy.default`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyDefault {
    #[default]
    Allow,
    Deny,
}

/// One rule of `mcp_policy.rules`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRule {
    /// Shown in the audit log; default `rules[<index>]`.
    #[serde(default)]
    pub name: Option<String>,
    /// Service names, or `*` (default): every service.
    #[serde(default = "any")]
    pub services: Vec<String>,
    /// JSON-RPC methods (`tools/call`, `prompts/get`, `resources/read`, …), or `*` (default).
    #[serde(default = "any")]
    pub methods: Vec<String>,
    /// Tool or prompt names, resource URIs; exact or globs; `*` (default) is every one.
    #[serde(default = "any")]
    pub names: Vec<String>,
    /// Who may: GitHub users, orgs, teams. Absent: anyone the access lists let in.
    #[serde(default)]
    pub allow: Option<AccessList>,
    /// Scopes the token must hold on top of the service's `required_scopes`; each must be
    /// among the `scopes` of every service the rule covers, so a client can obtain it.
    #[serde(default)]
    pub scopes: Vec<Scope>,
}

impl PolicyRule {
    /// The label of the rule at `index`.
    pub fn label(&self, index: usize) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("rules[{index}]"))
    }

    /// True when the rule covers the service named `service`.
    pub fn covers_service(&self, service: &str) -> bool {
        self.services.iter().any(|s| s == ANY || s == service)
    }
}

impl Default for McpPolicy {
    fn default() -> Self {
        Self {
            default: PolicyDefault::Allow,
            max_body_bytes: default_max_body_bytes(),
            rules: Vec::new(),
        }
    }
}

/// The largest `max_body_bytes`: Envoy's default per-connection buffer.
pub const MAX_BODY_BYTES_LIMIT: u32 = 1 << 20;

fn default_max_body_bytes() -> u32 {
    MAX_BODY_BYTES_LIMIT
}

fn any() -> Vec<String> {
    vec![ANY.to_owned()]
}

/// The JSON-RPC methods of MCP a rule may name (2025-11-25 and 2026-07-28), besides `*` and
/// `notifications/...`.
pub const KNOWN_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "prompts/list",
    "prompts/get",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "completion/complete",
    "logging/setLevel",
    "tasks/get",
    "tasks/list",
    "tasks/result",
    "tasks/cancel",
    "server/discover",
];

//! `mcp_policy`, compiled: the verdict on each operation of a request, and what a caller is
//! shown in listings. The semantics are documented on [`mcp_auth_gateway::mcp_policy`].

use mcp_auth_gateway::GatewayConfig;
use mcp_auth_gateway::mcp_policy::{ANY, PolicyDefault};
use mcp_auth_proto::listing::{KindVisibility, ListKind, Visibility};
use mcp_auth_proto::mcp::{Operation, glob_match, name_param};
use mcp_auth_proto::scope::missing_scopes;

use crate::policy::{AccessRule, User};

/// One compiled rule.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    label: String,
    /// `None`: every service.
    services: Option<Vec<String>>,
    /// `None`: every method.
    methods: Option<Vec<String>>,
    /// `None`: every name (and operations that name nothing).
    names: Option<Vec<String>>,
    /// `None`: anyone the access lists let in.
    allow: Option<AccessRule>,
    scopes: Vec<String>,
}

impl Rule {
    fn covers(&self, service: &str, method: &str) -> bool {
        self.services
            .as_ref()
            .is_none_or(|s| s.iter().any(|s| s == service))
            && self
                .methods
                .as_ref()
                .is_none_or(|m| m.iter().any(|m| m == method))
    }

    fn matches(&self, service: &str, op: &Operation) -> bool {
        self.covers(service, &op.method)
            && match (&self.names, &op.name) {
                (None, _) => true,
                (Some(names), Some(name)) => names.iter().any(|p| glob_match(p, name)),
                (Some(_), None) => false,
            }
    }

    fn admits(&self, user: &User<'_>) -> bool {
        self.allow.as_ref().is_none_or(|list| list.allows(user))
    }
}

/// The policy of a whole config.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct McpPolicy {
    deny_by_default: bool,
    rules: Vec<Rule>,
}

/// The verdict on one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationVerdict {
    Allowed {
        /// The rule that decided, `None` for no rule (the default, or an unnamed method).
        rule: Option<String>,
    },
    /// The caller is not on the deciding rule's `allow` list (or the default denies): a new
    /// token would not help.
    Denied { rule: Option<String> },
    /// The caller may, with these scopes their token lacks.
    NeedsScopes { rule: String, missing: Vec<String> },
}

impl McpPolicy {
    pub fn from_config(config: &GatewayConfig) -> Self {
        let any = |list: &[String]| list.iter().any(|entry| entry == ANY);
        let policy = &config.mcp_policy;
        Self {
            deny_by_default: policy.default == PolicyDefault::Deny,
            rules: policy
                .rules
                .iter()
                .enumerate()
                .map(|(i, rule)| Rule {
                    label: rule.label(i),
                    services: (!any(&rule.services)).then(|| rule.services.clone()),
                    methods: (!any(&rule.methods)).then(|| rule.methods.clone()),
                    names: (!any(&rule.names)).then(|| rule.names.clone()),
                    allow: rule.allow.as_ref().map(AccessRule::new),
                    scopes: rule.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
                })
                .collect(),
        }
    }

    /// True when no rule exists and nothing is denied by default: every operation passes
    /// without being looked at.
    pub fn is_open(&self) -> bool {
        self.rules.is_empty() && !self.deny_by_default
    }

    /// The verdict on `op` on `service` for `user`, whose token holds `scope` (space-
    /// delimited).
    pub fn evaluate(
        &self,
        service: &str,
        op: &Operation,
        user: &User<'_>,
        scope: &str,
    ) -> OperationVerdict {
        let Some(rule) = self.rules.iter().find(|r| r.matches(service, op)) else {
            let denied = self.deny_by_default && name_param(&op.method).is_some();
            return if denied {
                OperationVerdict::Denied { rule: None }
            } else {
                OperationVerdict::Allowed { rule: None }
            };
        };
        if !rule.admits(user) {
            return OperationVerdict::Denied {
                rule: Some(rule.label.clone()),
            };
        }
        let granted = scope.split(' ').filter(|s| !s.is_empty());
        let missing = missing_scopes(granted, rule.scopes.iter().map(String::as_str));
        if missing.is_empty() {
            OperationVerdict::Allowed {
                rule: Some(rule.label.clone()),
            }
        } else {
            OperationVerdict::NeedsScopes {
                rule: rule.label.clone(),
                missing: missing.into_iter().map(str::to_owned).collect(),
            }
        }
    }

    /// The scopes the rule deciding `op` requires (all of them, not only the missing ones).
    pub fn scopes_for(&self, service: &str, op: &Operation) -> &[String] {
        self.rules
            .iter()
            .find(|r| r.matches(service, op))
            .map_or(&[], |r| r.scopes.as_slice())
    }

    /// What `user` is shown in the listings of `service`; `None` when nothing is hidden.
    pub fn visibility(&self, service: &str, user: &User<'_>) -> Option<Visibility> {
        if self.is_open() {
            return None;
        }
        let kinds: Vec<KindVisibility> = ListKind::ALL
            .iter()
            .map(|kind| {
                let mut rules = Vec::new();
                for rule in self
                    .rules
                    .iter()
                    .filter(|r| r.covers(service, kind.operation()))
                {
                    let shown = rule.admits(user);
                    match &rule.names {
                        None => rules.push((ANY.to_owned(), shown)),
                        Some(names) => rules.extend(names.iter().map(|n| (n.clone(), shown))),
                    }
                }
                // Past a rule for every name nothing else is ever consulted.
                if let Some(all) = rules.iter().position(|(p, _)| p == ANY) {
                    rules.truncate(all + 1);
                }
                KindVisibility {
                    kind: *kind,
                    default: !self.deny_by_default,
                    rules,
                }
            })
            .collect();
        let visibility = Visibility {
            kinds: kinds
                .into_iter()
                .filter(|k| !k.default || k.rules.iter().any(|(_, shown)| !shown))
                .collect(),
        };
        (!visibility.kinds.is_empty()).then_some(visibility)
    }
}

#[cfg(test)]
mod tests;

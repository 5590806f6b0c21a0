//! Allow-list evaluation: may this user use this service?
//!
//! A user passes when the global `access` list matches **and**, if the service has an
//! `access` list of its own, that one matches too (the service list narrows the global one).
//! A list matches by [`AccessList::admits`], the rule the authserver applies at login.
//!
//! Organisations, teams, the verified email and groups come from the user's [`UserRecord`]
//! (what the identity provider said at their last login); without one only the `users` list
//! can match, so a user with no record facing lists that name only those is refused.

use std::collections::HashMap;
use std::sync::Arc;

use mcp_auth_gateway::GatewayConfig;
use mcp_auth_gateway::config::{AccessList, IdentityClaim, Member};
use mcp_auth_proto::store::UserRecord;

/// One `access` list, decided by the one membership rule ([`AccessList::admits`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessRule(AccessList);

impl AccessRule {
    /// An empty list matches nobody: a deployment that names no one lets no one in, rather
    /// than everyone.
    pub fn new(list: &AccessList) -> Self {
        Self(list.clone())
    }

    /// True when `user` is on this list. Without a record only the token's login can match.
    pub fn allows(&self, user: &User<'_>) -> bool {
        let member = match user.record {
            Some(record) => Member {
                login: user.login,
                ..Member::of(record)
            },
            None => Member {
                login: user.login,
                ..Member::default()
            },
        };
        self.0.admits(&member)
    }

    /// True when the list can only match through a user record (it names more than logins
    /// but is not a wildcard); used to explain a refusal.
    fn needs_record(&self) -> bool {
        !self.0.allows_anyone() && self.0.names_more_than_users()
    }
}

/// The user an allow-list is evaluated for.
#[derive(Debug, Clone, Copy)]
pub struct User<'a> {
    /// The login to match against `users`: the record's (newest) when there is one, else
    /// the token's `preferred_username`.
    pub login: &'a str,
    pub record: Option<&'a UserRecord>,
}

impl<'a> User<'a> {
    /// The user a token with login `token_login` stands for, given their record (if any).
    pub fn new(token_login: &'a str, record: Option<&'a UserRecord>) -> Self {
        // The record is written at each login, so it is never older than the token's claim;
        // a renamed GitHub account is matched under its current name.
        let login = record
            .map(|r| r.login.as_str())
            .filter(|l| !l.is_empty())
            .unwrap_or(token_login);
        Self { login, record }
    }
}

/// Which list refused the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListScope {
    /// The gateway-wide `access` list.
    Global,
    /// The service's own `access` list.
    Service,
}

/// The answer of [`AccessPolicy::evaluate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessOutcome {
    Allowed,
    /// The request names a service the config does not have (or has disabled).
    UnknownService,
    /// A list did not match the user.
    NotAllowed {
        list: ListScope,
        /// The user has no [`UserRecord`] and the refusing list names orgs or teams.
        no_user_record: bool,
    },
}

/// What the config says of one service, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRule {
    /// The service's own list; `None` means the global list alone decides.
    pub access: Option<AccessRule>,
    /// RFC 9728 §3.1 metadata URL, advertised in `WWW-Authenticate` challenges.
    pub resource_metadata_url: String,
    /// The service's own identity headers (`services[].identity_headers`), shared with every
    /// decision that allows a request (no copy per request).
    pub identity_headers: Arc<[(String, IdentityClaim)]>,
    /// Scopes every request to the service needs (part of a step-up challenge's `scope`).
    pub required_scopes: Vec<String>,
}

/// The allow-lists of a whole config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessPolicy {
    global: AccessRule,
    services: HashMap<String, ServiceRule>,
}

impl AccessPolicy {
    /// Compiles the allow-lists of `config` (global and per enabled service).
    pub fn from_config(config: &GatewayConfig) -> Self {
        let services = config
            .services
            .iter()
            .map(|service| {
                let rule = ServiceRule {
                    access: service.access.as_ref().map(AccessRule::new),
                    resource_metadata_url: service.resource_metadata_url(),
                    identity_headers: service
                        .identity_headers
                        .iter()
                        .map(|(name, claim)| (name.clone(), *claim))
                        .collect(),
                    required_scopes: service
                        .required_scopes()
                        .iter()
                        .map(|s| s.as_str().to_owned())
                        .collect(),
                };
                (service.name.clone(), rule)
            })
            .collect();
        Self {
            global: AccessRule::new(&config.access),
            services,
        }
    }

    /// The compiled rule of the service named `name`.
    pub fn service(&self, name: &str) -> Option<&ServiceRule> {
        self.services.get(name)
    }

    /// May `user` use the service named `service`?
    pub fn evaluate(&self, service: &str, user: &User<'_>) -> AccessOutcome {
        let Some(rule) = self.services.get(service) else {
            return AccessOutcome::UnknownService;
        };
        let refused = |list: ListScope, rule: &AccessRule| AccessOutcome::NotAllowed {
            list,
            no_user_record: user.record.is_none() && rule.needs_record(),
        };
        if !self.global.allows(user) {
            return refused(ListScope::Global, &self.global);
        }
        match &rule.access {
            Some(own) if !own.allows(user) => refused(ListScope::Service, own),
            _ => AccessOutcome::Allowed,
        }
    }
}

#[cfg(test)]
mod tests;

//! The decision for one request: a pure function of the request facts, the state snapshot
//! and the time. No I/O, no clock: [`decide`] is what the unit tests exercise branch by branch.
//!
//! # Revocation and `iat`
//! A revocation covers the tokens of its target issued at or before `revoked_at`
//! ([`mcp_auth_proto::store::RevocationEvent`]); the filter hands the verified `iat` on.
//! A token-id revocation needs no `iat`: it names the token itself.
//!
//! # Caching
//! Every [`Decision`] says how long it stays valid ([`Decision::valid_for`]) and which
//! revocation targets invalidate it earlier ([`Decision::keys`]); a config reload invalidates
//! every decision of an older [`Decision::config_generation`].

use std::time::Duration;

use mcp_auth_gateway::config::IdentityClaim;

use crate::facts::{FactsError, HttpFacts, RequestFacts};
use crate::policy::{AccessOutcome, ListScope, ServiceRule, User};
use crate::state::{TargetKind, View};

/// What to answer, and for how long the answer may be reused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    /// How long the same request facts get the same verdict, barring a revocation of one of
    /// [`Decision::keys`] or a config reload. Zero: do not cache.
    pub valid_for: Duration,
    /// Revocation targets whose revocation invalidates this decision; `None` when the
    /// request carried no token facts (such a decision is never cached).
    pub keys: Option<InvalidationKeys>,
    /// The [`crate::settings::Settings::generation`] the decision was made under.
    pub config_generation: u64,
}

/// The revocation targets a decision depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidationKeys {
    pub token_id: String,
    pub grant_id: String,
    /// `sub`: also the key of the user record the allow-lists read.
    pub subject: String,
    pub client_id: String,
}

/// The verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Let the request through to the MCP server with these identity headers.
    Allow(Identity),
    /// `401 invalid_token`: the client should obtain a new token (RFC 6750 §3.1).
    Unauthenticated {
        reason: Unauthenticated,
        /// RFC 9728 metadata URL of the service, for the `WWW-Authenticate` challenge.
        resource_metadata: Option<String>,
    },
    /// `403`: a new token would not help.
    Forbidden(Forbidden),
}

/// Why a token is no longer accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unauthenticated {
    /// Revoked through a record of this kind.
    Revoked(TargetKind),
    /// Past `exp` plus the filter's clock leeway (the filter should have refused it).
    Expired,
}

/// Why a valid token may not be used here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forbidden {
    /// The filter's hand-off is missing or malformed: the filter did not run on this request.
    NoHandoff(FactsError),
    /// The request names a service this config does not have.
    UnknownService,
    /// The user is not on an allow-list.
    NotAllowed {
        list: ListScope,
        no_user_record: bool,
    },
    /// Refused by per-request policy ([`request_policy`]); the text is safe to show.
    RequestPolicy(String),
}

/// Who the MCP server is told the caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `sub`.
    pub user_id: String,
    /// May be empty (then the header is removed rather than set).
    pub login: String,
    pub client_id: String,
    /// Space-delimited; may be empty.
    pub scopes: String,
    /// The service's own identity headers and what each carries.
    pub service_headers: std::sync::Arc<[(String, IdentityClaim)]>,
}

impl Identity {
    /// The value `claim` has for this caller (may be empty).
    pub fn value_of(&self, claim: IdentityClaim) -> &str {
        match claim {
            IdentityClaim::UserId => &self.user_id,
            IdentityClaim::Login => &self.login,
            IdentityClaim::ClientId => &self.client_id,
            IdentityClaim::Scopes => &self.scopes,
        }
    }
}

/// Decides one request at `now` (Unix seconds) against `view`.
pub fn decide(facts: Result<&RequestFacts<'_>, &FactsError>, view: &View, now: u64) -> Decision {
    let settings = &view.settings;
    let facts = match facts {
        Ok(facts) => facts,
        Err(error) => {
            return Decision {
                verdict: Verdict::Forbidden(Forbidden::NoHandoff(error.clone())),
                valid_for: Duration::ZERO,
                keys: None,
                config_generation: settings.generation,
            };
        }
    };
    let token = &facts.token;
    let service = settings.access.service(&facts.service);
    let decision = |verdict, valid_for| Decision {
        verdict,
        valid_for,
        keys: Some(InvalidationKeys {
            token_id: token.token_id.to_string(),
            grant_id: token.grant_id.to_string(),
            subject: token.subject.to_string(),
            client_id: token.client_id.to_string(),
        }),
        config_generation: settings.generation,
    };
    let unauthenticated = |reason| Verdict::Unauthenticated {
        reason,
        resource_metadata: service.map(|s| s.resource_metadata_url.clone()),
    };

    // The filter accepts a token until `exp + leeway`; so do we, and no longer.
    let dies_at = token.expires_at.saturating_add(settings.clock_leeway);
    let Some(remaining) = dies_at.checked_sub(now).filter(|r| *r > 0) else {
        return decision(unauthenticated(Unauthenticated::Expired), Duration::ZERO);
    };
    let remaining = Duration::from_secs(remaining);

    if let Some(kind) = revoked_by(facts, view) {
        // Revocation is final for this token: the verdict holds until the token dies.
        return decision(unauthenticated(Unauthenticated::Revoked(kind)), remaining);
    }

    // Allow-lists depend on user records, refreshed at every resync: cache no longer.
    let list_bound = remaining.min(settings.resync_interval);
    let record = view.store.users.get(&*token.subject);
    let user = User::new(&token.login, record);
    let rule = match settings.access.evaluate(&facts.service, &user) {
        AccessOutcome::Allowed => service,
        AccessOutcome::UnknownService => None,
        AccessOutcome::NotAllowed {
            list,
            no_user_record,
        } => {
            let forbidden = Forbidden::NotAllowed {
                list,
                no_user_record,
            };
            return decision(Verdict::Forbidden(forbidden), list_bound);
        }
    };
    let Some(rule) = rule else {
        return decision(Verdict::Forbidden(Forbidden::UnknownService), list_bound);
    };

    if let Err(forbidden) = request_policy(&facts.request, rule) {
        return decision(Verdict::Forbidden(forbidden), Duration::ZERO);
    }

    let identity = Identity {
        user_id: token.subject.to_string(),
        login: user.login.to_owned(),
        client_id: token.client_id.to_string(),
        scopes: token.scope.to_string(),
        service_headers: std::sync::Arc::clone(&rule.identity_headers),
    };
    decision(Verdict::Allow(identity), list_bound)
}

/// The first revocation record that covers the token, if any. A record covers its tokens for
/// as long as it is in the snapshot, whatever its `expires_at`: the token's own acceptance
/// window (`exp + leeway`, checked before this) is what ends, and the authserver keeps every
/// record past the end of the windows it covers. Pruning drops records only after that.
fn revoked_by(facts: &RequestFacts<'_>, view: &View) -> Option<TargetKind> {
    let token = &facts.token;
    let revocations = &view.store.revocations;
    if revocations
        .get(TargetKind::Token, &token.token_id)
        .is_some()
    {
        return Some(TargetKind::Token);
    }
    let issued_at = token.issued_at;
    [
        (TargetKind::Grant, &*token.grant_id),
        (TargetKind::User, &*token.subject),
        (TargetKind::Client, &*token.client_id),
    ]
    .into_iter()
    .find(|(kind, id)| {
        revocations
            .get(*kind, id)
            .is_some_and(|r| issued_at <= r.revoked_at)
    })
    .map(|(kind, _)| kind)
}

/// Per-request policy: the extension point for MCP method / tool rules.
///
/// It runs after revocation and allow-lists, for an allowed user, with the HTTP facts
/// (method, path, and the first bytes of the body when Envoy is configured
/// `with_request_body`). A rule reads the JSON-RPC `method` (and `params.name` for
/// `tools/call`) from the body; the `Mcp-Method` / `Mcp-Name` headers may be used only when
/// `MCP-Protocol-Version` ≥ 2026-07-28 **and** they match the body (SPEC). Returning
/// `Err(Forbidden::RequestPolicy(..))` answers 403; such decisions depend on the body, so they
/// are not cached (`valid_for` zero). No rules exist yet: every request passes.
fn request_policy(_request: &HttpFacts<'_>, _service: &ServiceRule) -> Result<(), Forbidden> {
    Ok(())
}

#[cfg(test)]
mod tests;

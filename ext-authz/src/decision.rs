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

use crate::facts::{FactsError, RequestFacts};
use crate::mcp_policy::OperationVerdict;
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
    /// Set when `mcp_policy` looked at the request.
    pub audit: Option<Audit>,
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
    /// The request's JSON-RPC was refused by `mcp_policy` or could not be read: the MCP
    /// server never sees it.
    Refused(Refusal),
}

/// Why `mcp_policy` refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The body cannot be decided on (not JSON-RPC, too large, a content type that is not
    /// JSON, routing headers that contradict it): `status` with JSON-RPC error `code`.
    BadRequest {
        status: u16,
        code: i64,
        message: String,
    },
    /// The caller may, after obtaining `scopes` (every scope the operation needs, the
    /// service's own included): 403 `insufficient_scope`, so the client can step up.
    InsufficientScope {
        scopes: Vec<String>,
        resource_metadata: String,
        method: String,
        name: Option<String>,
    },
    /// The caller may not: 403 with a JSON-RPC error naming the operation.
    Denied {
        /// The refused request's id (raw JSON); `None` for a batch or a notification.
        id: Option<String>,
        method: String,
        name: Option<String>,
    },
}

/// What `mcp_policy` decided about one request, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    /// The deciding operation (the refused one, else the first), if the body had any.
    pub method: Option<String>,
    pub name: Option<String>,
    /// `allow`, `deny`, `insufficient_scope` or `bad_request`.
    pub decision: &'static str,
    /// The deciding rule's label; `None` for the default or no rule.
    pub rule: Option<String>,
    pub reason: String,
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
    /// What the caller is shown in listings ([`mcp_auth_proto::listing::VISIBILITY_HEADER`]),
    /// when something is hidden from them.
    pub visibility: Option<String>,
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
                audit: None,
            };
        }
    };
    let token = &facts.token;
    let service = settings.access.service(&facts.service);
    let decision_with = |verdict, valid_for, audit| Decision {
        verdict,
        valid_for,
        keys: Some(InvalidationKeys {
            token_id: token.token_id.to_string(),
            grant_id: token.grant_id.to_string(),
            subject: token.subject.to_string(),
            client_id: token.client_id.to_string(),
        }),
        config_generation: settings.generation,
        audit,
    };
    let decision = |verdict, valid_for| decision_with(verdict, valid_for, None);
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

    let policy = &settings.mcp_policy;
    let (audit, may_list) = match request_policy(facts, rule, &user, settings) {
        Ok(passed) => passed,
        Err(refused) => {
            let (refusal, audit) = *refused;
            return decision_with(Verdict::Refused(refusal), Duration::ZERO, Some(audit));
        }
    };

    let identity = Identity {
        user_id: token.subject.to_string(),
        login: user.login.to_owned(),
        client_id: token.client_id.to_string(),
        scopes: token.scope.to_string(),
        service_headers: std::sync::Arc::clone(&rule.identity_headers),
        // Only responses that may carry a list are filtered (a `*/list` request, an SSE
        // GET stream); others pass unread, however large.
        visibility: may_list
            .then(|| policy.visibility(&facts.service, &user))
            .flatten()
            .map(|v| v.encode()),
    };
    // Cacheable as an allow-list decision: the filter keys fast-mode decisions by the
    // request's operations too, and a reload flushes them.
    decision_with(Verdict::Allow(identity), list_bound, audit)
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

/// `mcp_policy` on the request's JSON-RPC: every operation of the body must be allowed, or
/// the whole request is refused. Requests without a body (an SSE `GET`, a session `DELETE`)
/// name no operation and pass. The `Mcp-Method` / `Mcp-Name` headers are never believed,
/// only checked against the body (MCP 2026-07-28).
///
/// A refusal by [`request_policy`] and its audit record (boxed: it is the rare path).
type RefusedByPolicy = Box<(Refusal, Audit)>;

/// `Ok((None, _))`: the policy has nothing to say (no rules and no default deny: the body is
/// not even read; or the body is decided by a second call). Otherwise the audit record,
/// with the refusal when there is one. The flag: the response may carry a list (a GET
/// stream, or a `*/list` request).
fn request_policy(
    facts: &RequestFacts<'_>,
    rule: &ServiceRule,
    user: &User<'_>,
    settings: &crate::settings::Settings,
) -> Result<(Option<Audit>, bool), RefusedByPolicy> {
    use mcp_auth_proto::mcp::{self, MCP_METHOD_HEADER, MCP_NAME_HEADER, error_code};
    let policy = &settings.mcp_policy;
    let request = &facts.request;
    if policy.is_open() {
        return Ok((None, false));
    }
    let bad = |status: u16, code: i64, message: String| {
        let audit = Audit {
            method: None,
            name: None,
            decision: "bad_request",
            rule: None,
            reason: message.clone(),
        };
        Box::new((
            Refusal::BadRequest {
                status,
                code,
                message,
            },
            audit,
        ))
    };
    if request.method != "POST" {
        return Ok((None, request.method == "GET"));
    }
    if request.body_follows {
        return Ok((None, false));
    }
    if request.header("x-envoy-auth-partial-body") == Some("true")
        || request.body.len() > settings.max_body_bytes
    {
        return Err(bad(
            413,
            error_code::INVALID_REQUEST,
            format!(
                "the request body is over the gateway's limit of {} bytes",
                settings.max_body_bytes
            ),
        ));
    }
    let json = request.header("content-type").is_some_and(|ct| {
        ct.split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
    });
    if !json {
        return Err(bad(
            415,
            error_code::INVALID_REQUEST,
            "an MCP request body must be application/json".to_owned(),
        ));
    }
    let operations =
        mcp::operations(request.body).map_err(|error| bad(400, error.code(), error.to_string()))?;
    mcp::check_routing_headers(
        &operations,
        request.header(MCP_METHOD_HEADER).map(str::as_bytes),
        request.header(MCP_NAME_HEADER).map(str::as_bytes),
    )
    .map_err(|error| bad(400, error_code::HEADER_MISMATCH, error.to_string()))?;

    let mut allowed_by = None;
    let mut scopes_needed: Option<(String, &mcp::Operation, Vec<String>)> = None;
    for op in &operations.operations {
        match policy.evaluate(&facts.service, op, user, &facts.token.scope) {
            OperationVerdict::Allowed { rule } => {
                allowed_by = allowed_by.or(rule);
            }
            OperationVerdict::Denied { rule } => {
                let reason = match &rule {
                    Some(label) => format!("not on the allow list of rule {label}"),
                    None => "no rule allows it (default: deny)".to_owned(),
                };
                let audit = Audit {
                    method: Some(op.method.clone()),
                    name: op.name.clone(),
                    decision: "deny",
                    rule,
                    reason,
                };
                let refusal = Refusal::Denied {
                    id: (!operations.batch).then(|| op.id.clone()).flatten(),
                    method: op.method.clone(),
                    name: op.name.clone(),
                };
                return Err(Box::new((refusal, audit)));
            }
            OperationVerdict::NeedsScopes { rule, missing } => {
                if scopes_needed.is_none() {
                    scopes_needed = Some((rule, op, missing));
                }
            }
        }
    }
    if let Some((label, op, missing)) = scopes_needed {
        // Every scope the operation needs: a new token replaces the old one's scopes.
        let mut scopes: Vec<String> = Vec::new();
        for scope in rule.required_scopes.iter().map(String::as_str).chain(
            policy
                .scopes_for(&facts.service, op)
                .iter()
                .map(String::as_str),
        ) {
            if !scopes.iter().any(|s| s == scope) {
                scopes.push(scope.to_owned());
            }
        }
        let audit = Audit {
            method: Some(op.method.clone()),
            name: op.name.clone(),
            decision: "insufficient_scope",
            rule: Some(label),
            reason: format!("the token lacks {}", missing.join(" ")),
        };
        let refusal = Refusal::InsufficientScope {
            scopes,
            resource_metadata: rule.resource_metadata_url.clone(),
            method: op.method.clone(),
            name: op.name.clone(),
        };
        return Err(Box::new((refusal, audit)));
    }
    let first = operations.operations.first();
    let may_list = operations
        .operations
        .iter()
        .any(|op| mcp_auth_proto::listing::ListKind::for_method(&op.method).is_some());
    let audit = Audit {
        method: first.map(|op| op.method.clone()),
        name: first.and_then(|op| op.name.clone()),
        decision: "allow",
        reason: match &allowed_by {
            Some(_) => "allowed by rule".to_owned(),
            None => "no rule applies".to_owned(),
        },
        rule: allowed_by,
    };
    Ok((Some(audit), may_list))
}

#[cfg(test)]
mod tests;

//! `envoy.service.auth.v3.Authorization/Check`: facts → [`decide`] → `CheckResponse`.
//!
//! A deny is an `Ok(CheckResponse)` with a denied status; a gRPC error means the state could
//! not be trusted (nothing loaded, or Redis silent past the grace time), and Envoy's failure
//! mode (`failure_mode_allow: false`: deny) decides. An error is never an allow.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use envoy_types::ext_authz::v3::pb::{Authorization, CheckRequest, CheckResponse};
use mcp_auth_proto::handoff::HandoffKeys;
use tonic::{Request, Response, Status};

use crate::decision::{Decision, Verdict, decide};
use crate::facts::{RequestFacts, reserved_header_names};
use crate::metrics::Api;
use crate::response::check_response;
use crate::state::{Shared, Unavailable};

/// Why a Check could not be answered (infrastructure, never a deny).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    State(#[from] Unavailable),
    #[error("the system clock is before the Unix epoch")]
    Clock,
}

impl From<CheckError> for Status {
    fn from(error: CheckError) -> Self {
        // Logged here, once; the caller (Envoy) only needs to know it should apply its
        // failure mode, not why.
        tracing::warn!(%error, "refusing to answer Check");
        Status::unavailable("authorization state unavailable")
    }
}

/// The Authorization service over the shared in-memory state.
#[derive(Debug, Clone)]
pub struct AuthorizationService {
    shared: Arc<Shared>,
    handoff_keys: Arc<HandoffKeys>,
}

impl AuthorizationService {
    /// `handoff_keys`: what a hand-off must be signed with ([`HandoffKeys::from_env`]).
    pub fn new(shared: Arc<Shared>, handoff_keys: Arc<HandoffKeys>) -> Self {
        Self {
            shared,
            handoff_keys,
        }
    }

    /// Decides `check` now, as Envoy's `Check` asks. Public so benchmarks and tests can call
    /// it without gRPC.
    pub fn decide(&self, check: &CheckRequest) -> Result<(Decision, CheckResponse), CheckError> {
        self.decide_as(Api::Check, check, false)
    }

    /// [`AuthorizationService::decide`] through `api`, counted in its metrics;
    /// `body_follows`: fast mode's header-phase decision of a POST, whose body is decided
    /// by a second call.
    pub fn decide_as(
        &self,
        api: Api,
        check: &CheckRequest,
        body_follows: bool,
    ) -> Result<(Decision, CheckResponse), CheckError> {
        let started = Instant::now();
        let metrics = &self.shared.metrics;
        let view = self.shared.view(started).inspect_err(|unavailable| {
            metrics.decided(api, "", Err(*unavailable), started);
        })?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| CheckError::Clock)?
            .as_secs();
        let facts = RequestFacts::from_check(check, &self.handoff_keys).map(|mut facts| {
            facts.request.body_follows = body_follows;
            facts
        });
        let decision = decide(facts.as_ref(), &view, now);
        log(&decision, facts.as_ref().ok());
        if let (Some(audit), Ok(facts)) = (&decision.audit, facts.as_ref()) {
            crate::audit::record(audit, facts, now);
        }
        let response = check_response(
            &decision,
            &view.settings.identity_headers,
            &reserved_header_names(check, &view.settings.stripped_headers),
        );
        let service = facts.as_ref().map_or("", |f| &*f.service);
        metrics.decided(api, service, Ok(&decision.verdict), started);
        Ok((decision, response))
    }
}

#[tonic::async_trait]
impl Authorization for AuthorizationService {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let (_, response) = self.decide(request.get_ref())?;
        Ok(Response::new(response))
    }
}

/// One line per non-allow decision; never a token (RS-17) — ids only.
fn log(decision: &Decision, facts: Option<&RequestFacts<'_>>) {
    let service = facts.map_or("", |f| &*f.service);
    let subject = facts.map_or("", |f| &*f.token.subject);
    let token_id = facts.map_or("", |f| &*f.token.token_id);
    match &decision.verdict {
        Verdict::Allow(_) => {
            tracing::debug!(service, subject, token_id, "allowed");
        }
        Verdict::Unauthenticated { reason, .. } => {
            tracing::info!(
                service,
                subject,
                token_id,
                ?reason,
                "refused: invalid token"
            );
        }
        Verdict::Forbidden(forbidden) => {
            tracing::info!(service, subject, token_id, ?forbidden, "refused: forbidden");
        }
        // The audit line says why.
        Verdict::Refused(_) => {
            tracing::debug!(service, subject, token_id, "refused by mcp_policy");
        }
    }
}

//! The HTTP context: reads what the decision needs from the request, applies the answer.
//!
//! Per-request mode: on success the filter replaces the one hand-off header
//! ([`HANDOFF_HEADER`]) with the verified claims (RS-15): a replace drops every client-sent
//! copy first, and it is the only host call the filter makes besides its four reads. The
//! `Authorization` header is left in place: ext_authz, the next filter, re-checks revocation
//! with the token's `jti` and then removes both the bearer token and the hand-off header
//! before the request reaches the MCP server.
//!
//! Fast mode ([`crate::fast`]): the filter applies ext_authz's decision itself, from its cache
//! or, on a miss, from a `Decide` call made while the request waits. An allow removes the
//! bearer token and sets the identity headers, exactly as ext_authz's `CheckResponse` would
//! (the reserved `x-mcp-auth*` headers are stripped natively before this filter, by the
//! gateway's `header_mutation` filter); a deny is answered with ext_authz's status, headers
//! and body.
//!
//! Header values are read as bytes: the SDK's `String` getters panic on non-UTF-8 values,
//! which a client controls.

use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use log::debug;
use prost::Message as _;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use mcp_auth_proto::decisions::{DECIDE, DecideRequest, DecideResponse, SERVICE, Verdict};
use mcp_auth_proto::handoff::{HANDOFF_HEADER, RESERVED_PREFIX};

use crate::challenge::{self, Denial};
use crate::config::Decisions;
use crate::fast::DecisionKey;
use crate::verify::VerifiedToken;
use crate::worker::{Admitted, RequestFacts, Worker};

/// One request's context.
pub struct FilterRequest {
    worker: Option<Rc<Worker>>,
    /// Fast mode: the `Decide` this request waits for.
    pending: Option<PendingDecision>,
}

struct PendingDecision {
    call: u32,
    key: DecisionKey,
    token: Rc<VerifiedToken>,
    /// [`crate::fast::FastPath::epoch`] when the call was made.
    epoch: u64,
}

impl FilterRequest {
    pub fn new(worker: Option<Rc<Worker>>) -> Self {
        Self {
            worker,
            pending: None,
        }
    }

    fn now_ms(&self) -> u64 {
        self.get_current_time()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    fn deny(&self, denial: &Denial) -> Action {
        self.send_http_response(
            denial.status,
            denial.headers(),
            Some(denial.body.as_bytes()),
        );
        Action::Pause
    }

    /// Fast mode: the cached decision, or a `Decide` call while the request waits.
    fn decide_fast(
        &mut self,
        worker: &Worker,
        decisions: &Decisions,
        admitted: &Admitted,
        now_ms: u64,
    ) -> Action {
        let Some(fast) = worker.fast.as_ref() else {
            return self.deny(&challenge::not_configured());
        };
        let key = (admitted.token_hash, admitted.route.ordinal);
        let cached = fast.borrow().lookup(&key, now_ms);
        if let Some(verdict) = cached {
            return self.apply(&verdict);
        }
        let header = |name| {
            self.get_http_request_header_bytes(name)
                .map(|v| String::from_utf8_lossy(&v).into_owned())
                .unwrap_or_default()
        };
        let request = DecideRequest {
            handoff: admitted.handoff_value(),
            method: header(":method"),
            path: header(":path"),
            host: header(":authority"),
        };
        let call = hostcalls::dispatch_grpc_call(
            &decisions.upstream,
            SERVICE,
            DECIDE,
            Vec::new(),
            Some(&request.encode_to_vec()),
            Duration::from_millis(decisions.timeout_ms),
        );
        match call {
            Ok(call) => {
                if let Some(metric) = worker.decide_calls_metric.get() {
                    let _ = hostcalls::increment_metric(metric, 1);
                }
                self.pending = Some(PendingDecision {
                    call,
                    key,
                    token: Rc::clone(&admitted.token),
                    epoch: fast.borrow().epoch(),
                });
                Action::Pause
            }
            Err(status) => {
                // Per request, so debug: the lost stream already said so once, as a warning.
                debug!("cannot ask ext_authz for a decision: {status:?}");
                self.deny(&challenge::decisions_unavailable())
            }
        }
    }

    /// Applies ext_authz's verdict to the request.
    fn apply(&self, verdict: &Verdict) -> Action {
        match verdict {
            Verdict::Allow(allow) => {
                // The reserved `x-mcp-auth*` namespace was emptied before this filter ran
                // (the gateway's header-mutation filter): one host call fewer per name.
                for name in &allow.remove_headers {
                    if !name.starts_with(RESERVED_PREFIX) {
                        self.set_http_request_header(name, None);
                    }
                }
                for header in &allow.set_headers {
                    self.set_http_request_header(&header.name, Some(&header.value));
                }
                Action::Continue
            }
            Verdict::Deny(deny) => {
                let headers: Vec<(&str, &str)> = deny
                    .headers
                    .iter()
                    .map(|h| (h.name.as_str(), h.value.as_str()))
                    .collect();
                self.send_http_response(deny.status, headers, Some(&deny.body));
                Action::Pause
            }
        }
    }
}

impl Context for FilterRequest {
    fn on_grpc_call_response(&mut self, token_id: u32, status_code: u32, response_size: usize) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        if pending.call != token_id {
            self.pending = Some(pending);
            return;
        }
        let answer = (status_code == 0)
            .then(|| self.get_grpc_call_response_body(0, response_size))
            .flatten()
            .and_then(|body| DecideResponse::decode(body.as_slice()).ok())
            .and_then(|response| Some((response.verdict?, response.valid_for_ms)));
        let Some((verdict, valid_for_ms)) = answer else {
            debug!("ext_authz gave no decision (gRPC status {status_code}); refusing");
            self.deny(&challenge::decisions_unavailable());
            return;
        };
        let verdict = Rc::new(verdict);
        if let Some(fast) = self.worker.as_ref().and_then(|w| w.fast.as_ref()) {
            let now = self.now_ms();
            fast.borrow_mut().remember(
                pending.key,
                pending.token,
                Rc::clone(&verdict),
                valid_for_ms,
                pending.epoch,
                now,
            );
        }
        if self.apply(&verdict) == Action::Continue {
            self.resume_http_request();
        }
    }
}

impl HttpContext for FilterRequest {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(worker) = self.worker.clone() else {
            return self.deny(&challenge::not_configured());
        };
        // Not the trait's `get_property`: it panics where the host reports an error.
        let route_name = hostcalls::get_property(vec!["xds", "route_name"])
            .ok()
            .flatten();
        let origin = self.get_http_request_header_bytes("origin");
        let authorization = self.get_http_request_header_bytes("authorization");
        let path = self.get_http_request_header_bytes(":path");
        let facts = RequestFacts {
            route_name: route_name.as_deref(),
            origin: origin.as_deref(),
            authorization: authorization.as_deref(),
            path: path.as_deref(),
        };
        let now_ms = self.now_ms();
        match worker.decide(&facts, now_ms / 1_000) {
            Ok(admitted) => match &worker.config.decisions {
                Some(decisions) => self.decide_fast(&worker, decisions, &admitted, now_ms),
                None => {
                    self.set_http_request_header(HANDOFF_HEADER, Some(&admitted.handoff_value()));
                    Action::Continue
                }
            },
            Err(refused) => {
                debug!("refused with {}: {}", refused.denial.status, refused.reason);
                self.deny(&refused.denial)
            }
        }
    }
}

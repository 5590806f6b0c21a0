//! The HTTP context: reads what the decision needs from the request, applies the answer.
//!
//! Per-request mode: on success the filter replaces the one hand-off header
//! ([`HANDOFF_HEADER`]) with the verified claims (RS-15): a replace drops every client-sent
//! copy first, and it is the only host call the filter makes besides its four reads. The
//! `Authorization` header is left in place: ext_authz, the next filter, re-checks revocation
//! with the token's `jti`, decides `mcp_policy` on the body, and then removes both the bearer
//! token and the hand-off header before the request reaches the MCP server.
//!
//! Fast mode ([`crate::fast`]): the filter applies ext_authz's decisions itself, from its
//! cache or, on a miss, from a `Decide` call made while the request waits. Two of them:
//! - on the headers, the token on this route (revocation, allow-lists): an allow removes the
//!   bearer token and sets the identity headers, exactly as ext_authz's `CheckResponse`
//!   would (the reserved `x-mcp-auth*` headers are stripped natively before this filter);
//! - on the whole body of a POST, its JSON-RPC operations (`mcp_policy`), cached per token,
//!   route and operations. Meanwhile the gateway's buffer filter, after this one, holds the
//!   request (headers included) until its body is complete, so nothing reaches the MCP
//!   server before this decision. (Envoy's wasm host pauses every later callback, body
//!   included, when the header phase pauses; and request headers can no longer be read or
//!   changed once that phase is over: everything the body decision needs is read first.)
//!
//! A deny is answered with ext_authz's status, headers and body.
//!
//! Listings ([`crate::listing`]): when ext_authz says something is hidden from the caller
//! ([`VISIBILITY_HEADER`] on the response in per-request mode, the `Decide` answer in fast
//! mode), `*/list` results are filtered as they stream back; the header never reaches the
//! client.
//!
//! Header values are read as bytes: the SDK's `String` getters panic on non-UTF-8 values,
//! which a client controls.

use std::borrow::Cow;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use log::debug;
use prost::Message as _;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, MapType};

use mcp_auth_proto::decisions::{
    DECIDE, DecideRequest, DecideResponse, Header, POLICY_HEADERS, SERVICE, Verdict,
};
use mcp_auth_proto::handoff::{HANDOFF_HEADER, RESERVED_PREFIX};
use mcp_auth_proto::listing::{VISIBILITY_HEADER, Visibility};

use crate::cache::TokenHash;
use crate::challenge::{self, Denial};
use crate::fast::DecisionKey;
use crate::listing::{Framing, ListFilter, framing};
use crate::verify::VerifiedToken;
use crate::worker::{Admitted, RequestFacts, Worker};

/// Longest SSE event (or JSON list result) the listing filter holds while filtering.
const MAX_LIST_BYTES: usize = 8 << 20;

/// One request's context.
pub struct FilterRequest {
    worker: Option<Rc<Worker>>,
    /// Fast mode: the `Decide` this request waits for.
    pending: Option<PendingDecision>,
    /// Fast mode: the admitted request, what a `Decide` sends of it, and whether its body
    /// is still to be decided.
    fast_request: Option<FastRequest>,
    /// Fast mode: what the allow said listings hide ([`VISIBILITY_HEADER`]).
    visibility: Option<String>,
    /// The response's list filter, when something is hidden and the response may list.
    listing: Option<(Framing, ListFilter)>,
}

/// What fast mode keeps of a request between its header and body phases.
struct FastRequest {
    admitted: Admitted,
    method: String,
    path: String,
    host: String,
    /// [`POLICY_HEADERS`] the request has.
    headers: Vec<Header>,
    /// A POST with a body: decided again once the body is whole.
    body_follows: bool,
}

/// Which decision a `Decide` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Headers,
    Body,
}

struct PendingDecision {
    call: u32,
    phase: Phase,
    /// `None`: the answer is for this request only (its body could not be read as
    /// operations), never cached.
    key: Option<DecisionKey>,
    token: Rc<VerifiedToken>,
    /// [`crate::fast::FastPath::epoch`] when the call was made.
    epoch: u64,
}

impl FilterRequest {
    pub fn new(worker: Option<Rc<Worker>>) -> Self {
        Self {
            worker,
            pending: None,
            fast_request: None,
            visibility: None,
            listing: None,
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

    /// Fast mode, header phase: keeps what both decisions need of the request's headers
    /// (read once, in one host call), then decides the token.
    fn start_fast(
        &mut self,
        worker: &Worker,
        admitted: Admitted,
        headers: &[(String, Vec<u8>)],
        end_of_stream: bool,
    ) -> Action {
        let header =
            |name: &str| header_in(headers, name).map(|v| String::from_utf8_lossy(v).into_owned());
        let method = header(":method").unwrap_or_default();
        let body_follows = !end_of_stream && method == "POST";
        let policy_headers = if method == "POST" {
            POLICY_HEADERS
                .iter()
                .filter_map(|name| {
                    header(name).map(|value| Header {
                        name: (*name).to_owned(),
                        value,
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        self.fast_request = Some(FastRequest {
            admitted,
            method,
            path: header(":path").unwrap_or_default(),
            host: header(":authority").unwrap_or_default(),
            headers: policy_headers,
            body_follows,
        });
        self.decide_fast(worker, Phase::Headers, Vec::new(), Some(TokenHash::of("")))
    }

    /// Fast mode: the cached decision, or a `Decide` call while the request waits. `body` is
    /// the whole body of a POST (body phase); `operations` the hash of its operations,
    /// `None` when it is not readable as JSON-RPC (ext_authz then answers, nothing cached).
    fn decide_fast(
        &mut self,
        worker: &Worker,
        phase: Phase,
        body: Vec<u8>,
        operations: Option<TokenHash>,
    ) -> Action {
        let (Some(fast), Some(decisions), Some(request)) = (
            worker.fast.as_ref(),
            worker.config.decisions.as_ref(),
            self.fast_request.as_ref(),
        ) else {
            return self.deny(&challenge::not_configured());
        };
        let admitted = &request.admitted;
        let now_ms = self.now_ms();
        let key = operations.map(|ops| (admitted.token_hash, admitted.route.ordinal, ops));
        let cached = key.and_then(|key| fast.borrow().lookup(&key, now_ms));
        if let Some(verdict) = cached {
            return self.apply(&verdict, phase);
        }
        let decide = DecideRequest {
            handoff: worker.handoff_value(admitted),
            method: request.method.clone(),
            path: request.path.clone(),
            host: request.host.clone(),
            headers: request.headers.clone(),
            body,
            body_follows: phase == Phase::Headers && request.body_follows,
        };
        let token = Rc::clone(&admitted.token);
        let call = hostcalls::dispatch_grpc_call(
            &decisions.upstream,
            SERVICE,
            DECIDE,
            Vec::new(),
            Some(&decide.encode_to_vec()),
            Duration::from_millis(decisions.timeout_ms),
        );
        match call {
            Ok(call) => {
                if let Some(metric) = worker.decide_calls_metric.get() {
                    let _ = hostcalls::increment_metric(metric, 1);
                }
                self.pending = Some(PendingDecision {
                    call,
                    phase,
                    key,
                    token,
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

    /// Fast mode, body phase: the POST's body has arrived whole; decide on its operations.
    fn decide_on_body(&mut self, body_size: usize) -> Action {
        let Some(worker) = self.worker.clone() else {
            return self.deny(&challenge::not_configured());
        };
        let body = self.get_http_request_body(0, body_size).unwrap_or_default();
        // The headers policy reads are part of the key: the same body with headers that
        // contradict it (or another content type) is decided anew.
        let operations = mcp_auth_proto::mcp::operations(&body).ok().map(|ops| {
            let mut key = ops.cache_key();
            for header in self.fast_request.iter().flat_map(|r| &r.headers) {
                key.push('\u{1d}');
                key.push_str(&header.name);
                key.push('=');
                key.push_str(&header.value);
            }
            TokenHash::of(&key)
        });
        self.decide_fast(&worker, Phase::Body, body, operations)
    }

    /// Applies ext_authz's verdict to the request. Request headers change only in the
    /// header phase; a body-phase allow only lets the request go on.
    fn apply(&mut self, verdict: &Verdict, phase: Phase) -> Action {
        match verdict {
            Verdict::Allow(allow) => {
                self.visibility = allow
                    .response_headers
                    .iter()
                    .find(|h| h.name == VISIBILITY_HEADER)
                    .map(|h| h.value.clone());
                if phase == Phase::Headers {
                    self.strip_client_headers();
                    // The reserved `x-mcp-auth*` namespace is empty by now (the gateway's
                    // header-mutation filter emptied it before this filter, or the line above
                    // did): one host call fewer per name.
                    for name in &allow.remove_headers {
                        if !name.starts_with(RESERVED_PREFIX) {
                            self.set_http_request_header(name, None);
                        }
                    }
                    for header in &allow.set_headers {
                        self.set_http_request_header(&header.name, Some(&header.value));
                    }
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

/// The first value of header `name` (lowercase) in a header map the host gave.
fn header_in<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
}

impl FilterRequest {
    /// Where nothing of the gateway's runs before the filter (an Istio sidecar), removes the
    /// reserved `x-mcp-auth*` namespace and the configured identity headers a client sent.
    fn strip_client_headers(&self) {
        let Some(strip) = self
            .worker
            .as_ref()
            .and_then(|w| w.config.strip_request_headers.as_ref())
        else {
            return;
        };
        for (name, _) in self.get_http_request_headers() {
            if name.starts_with(RESERVED_PREFIX) || strip.contains(&name) {
                self.set_http_request_header(&name, None);
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
        if let (Some(fast), Some(key)) = (
            self.worker.as_ref().and_then(|w| w.fast.as_ref()),
            pending.key,
        ) {
            let now = self.now_ms();
            fast.borrow_mut().remember(
                key,
                pending.token,
                Rc::clone(&verdict),
                valid_for_ms,
                pending.epoch,
                now,
            );
        }
        if self.apply(&verdict, pending.phase) == Action::Continue {
            self.resume_http_request();
        }
    }
}

impl HttpContext for FilterRequest {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Some(worker) = self.worker.clone() else {
            return self.deny(&challenge::not_configured());
        };
        // Not the trait's `get_property`: it panics where the host reports an error.
        let route_name = hostcalls::get_property(vec!["xds", "route_name"])
            .ok()
            .flatten();
        // Fast mode reads more of the request: all of it in one host call, cheaper than
        // one call per header from the fourth on. Per-request mode reads three.
        let fast_mode = worker.config.decisions.is_some();
        let headers = if fast_mode {
            hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default()
        } else {
            Vec::new()
        };
        let read = |name: &str| -> Option<Cow<'_, [u8]>> {
            if fast_mode {
                header_in(&headers, name).map(Cow::Borrowed)
            } else {
                self.get_http_request_header_bytes(name).map(Cow::Owned)
            }
        };
        let origin = read("origin");
        let authorization = read("authorization");
        let path = read(":path");
        let facts = RequestFacts {
            route_name: route_name.as_deref(),
            origin: origin.as_deref(),
            authorization: authorization.as_deref(),
            path: path.as_deref(),
        };
        let now_ms = self.now_ms();
        let decided = worker.decide(&facts, now_ms / 1_000);
        match decided {
            Ok(admitted) => match &worker.config.decisions {
                Some(_) => self.start_fast(&worker, admitted, &headers, end_of_stream),
                None => {
                    self.set_http_request_header(
                        HANDOFF_HEADER,
                        Some(&worker.handoff_value(&admitted)),
                    );
                    Action::Continue
                }
            },
            Err(refused) => {
                debug!("refused with {}: {}", refused.denial.status, refused.reason);
                self.deny(&refused.denial)
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !self.fast_request.as_ref().is_some_and(|r| r.body_follows) {
            return Action::Continue;
        }
        let limit = self
            .worker
            .as_ref()
            .and_then(|w| w.config.decisions.as_ref())
            .map_or(0, |d| d.max_body_bytes);
        if body_size > limit {
            self.fast_request = None;
            return self.deny(&challenge::body_too_large(limit));
        }
        if !end_of_stream {
            // This filter keeps the chunks until the body is whole.
            return Action::Pause;
        }
        if let Some(request) = self.fast_request.as_mut() {
            request.body_follows = false;
        }
        self.decide_on_body(body_size)
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let fast_mode = self
            .worker
            .as_ref()
            .is_some_and(|w| w.config.decisions.is_some());
        let value = if fast_mode {
            self.visibility.take().map(String::into_bytes)
        } else {
            let value = self.get_http_response_header_bytes(VISIBILITY_HEADER);
            if value.is_some() {
                self.set_http_response_header(VISIBILITY_HEADER, None);
            }
            value
        };
        let Some(value) = value else {
            return Action::Continue;
        };
        if end_of_stream {
            return Action::Continue;
        }
        let Some(framing) = self
            .get_http_response_header_bytes("content-type")
            .and_then(|ct| framing(&ct))
        else {
            return Action::Continue;
        };
        // Unreadable: hide everything rather than guess.
        let visibility = Visibility::decode(&value).unwrap_or_else(Visibility::nothing);
        if visibility.shows_everything() {
            return Action::Continue;
        }
        // The body may shrink. (The headers go on now: a paused header phase would hold the
        // body back from this filter too.)
        self.set_http_response_header("content-length", None);
        self.listing = Some((
            framing,
            ListFilter::new(framing, visibility, MAX_LIST_BYTES),
        ));
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let json = match &self.listing {
            Some((framing, _)) => *framing == Framing::Json,
            None => return Action::Continue,
        };
        if json && !end_of_stream {
            return Action::Pause;
        }
        let chunk = self
            .get_http_response_body(0, body_size)
            .unwrap_or_default();
        let Some((_, listing)) = self.listing.as_mut() else {
            return Action::Continue;
        };
        match listing.push(&chunk, end_of_stream) {
            Ok(out) => {
                if out != chunk {
                    self.set_http_response_body(0, body_size, &out);
                }
                Action::Continue
            }
            Err(error) => {
                log::warn!("cannot filter a list result: {error}");
                self.listing = None;
                if json {
                    // The status is sent already: the body becomes a JSON-RPC error.
                    let denial = challenge::list_unfilterable();
                    self.set_http_response_body(0, body_size, denial.body.as_bytes());
                } else {
                    // End the stream here rather than pass the rest unfiltered.
                    self.set_http_response_body(0, body_size, b"");
                    let _ = hostcalls::reset_http_response();
                }
                Action::Continue
            }
        }
    }
}

//! `mcp_auth.v1.Decisions`: the fast path (`mcp_auth_proto::decisions`).
//!
//! `Decide` answers from the very function `Authorization/Check` uses: it builds the
//! `CheckRequest` Envoy would have sent for the filter's hand-off and converts the
//! `CheckResponse` into what the filter applies itself, adding how long the decision holds.
//! `WatchInvalidations` pushes every [`Change`] of the state to the filter, so a revocation
//! voids its cached decisions without a per-request call.
//!
//! A watch stream is only open while the state can be trusted: when nothing is loaded, or
//! Redis has been silent past the grace time, the stream ends with `UNAVAILABLE` after a
//! `flush_all`, and the filter falls back to per-request `Decide`s, which fail closed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use envoy_types::ext_authz::v3::pb::{
    CheckRequest, CheckResponse, HeaderValueOption, HttpResponse,
};
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
use mcp_auth_proto::decisions::{
    self as pb, Allow, DecideRequest, DecideResponse, Deny, HEARTBEAT_INTERVAL_MS, Invalidation,
    POLICY_HEADERS, TargetKind, WatchRequest,
};
use mcp_auth_proto::handoff::{HANDOFF_HEADER, HandoffKeys};
use mcp_auth_proto::store::{RevocationEvent, RevocationTarget};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request as GrpcRequest, Response, Status};

use crate::decision::Decision;
use crate::service::AuthorizationService;
use crate::state::{Change, Shared};

mod generated {
    include!(concat!(env!("OUT_DIR"), "/mcp_auth.v1.Decisions.rs"));
}
pub use generated::decisions_client::DecisionsClient;
pub use generated::decisions_server::{Decisions, DecisionsServer};

/// Messages a watcher may fall behind by before the stream ends.
const WATCH_BUFFER: usize = 256;

/// The Decisions service over the shared in-memory state.
#[derive(Debug, Clone)]
pub struct DecisionsService {
    authorization: AuthorizationService,
    shared: Arc<Shared>,
    closing: watch::Receiver<()>,
}

impl DecisionsService {
    /// Watch streams end (`UNAVAILABLE`) when `closing` changes or its sender is dropped: a
    /// stream never outlives the server, nor holds up its graceful shutdown.
    pub fn new(
        shared: Arc<Shared>,
        handoff_keys: Arc<HandoffKeys>,
        closing: watch::Receiver<()>,
    ) -> Self {
        Self {
            authorization: AuthorizationService::new(shared.clone(), handoff_keys),
            shared,
            closing,
        }
    }
}

#[tonic::async_trait]
impl Decisions for DecisionsService {
    async fn decide(
        &self,
        request: GrpcRequest<DecideRequest>,
    ) -> Result<Response<DecideResponse>, Status> {
        let check = check_request(request.get_ref());
        let body_follows = request.get_ref().body_follows;
        let (decision, response) =
            self.authorization
                .decide_as(crate::metrics::Api::Decide, &check, body_follows)?;
        Ok(Response::new(decide_response(&decision, response)))
    }

    type WatchInvalidationsStream = ReceiverStream<Result<Invalidation, Status>>;

    async fn watch_invalidations(
        &self,
        request: GrpcRequest<WatchRequest>,
    ) -> Result<Response<Self::WatchInvalidationsStream>, Status> {
        if !self.shared.is_available(Instant::now()) {
            return Err(Status::unavailable("authorization state unavailable"));
        }
        let watcher = request.into_inner().watcher;
        // Subscribed before `ready` is sent: no change falls between the two.
        let changes = self.shared.subscribe();
        let (sender, receiver) = mpsc::channel(WATCH_BUFFER);
        let closing = self.closing.clone();
        tokio::spawn(forward(
            self.shared.clone(),
            changes,
            closing,
            sender,
            watcher,
        ));
        Ok(Response::new(ReceiverStream::new(receiver)))
    }
}

/// The `CheckRequest` Envoy's ext_authz filter would send for this request.
pub fn check_request(request: &DecideRequest) -> CheckRequest {
    let mut headers = HashMap::from([(HANDOFF_HEADER.to_owned(), request.handoff.clone())]);
    for header in &request.headers {
        // Only the headers policy reads; never the hand-off twice.
        if POLICY_HEADERS.contains(&header.name.as_str()) {
            headers.insert(header.name.clone(), header.value.clone());
        }
    }
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                http: Some(HttpRequest {
                    method: request.method.clone(),
                    path: request.path.clone(),
                    host: request.host.clone(),
                    headers,
                    raw_body: request.body.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

/// What the filter applies for `response`, valid for the decision's lifetime.
pub fn decide_response(decision: &Decision, response: CheckResponse) -> DecideResponse {
    let verdict = match response.http_response {
        Some(HttpResponse::OkResponse(ok)) => pb::Verdict::Allow(Allow {
            set_headers: headers(ok.headers),
            remove_headers: ok.headers_to_remove,
            response_headers: headers(ok.response_headers_to_add),
        }),
        Some(HttpResponse::DeniedResponse(denied)) => pb::Verdict::Deny(Deny {
            status: denied
                .status
                .map_or(403, |s| u32::try_from(s.code).unwrap_or(403)),
            headers: headers(denied.headers),
            body: denied.body.into_bytes(),
        }),
        // `check_response` always sets an OK or denied response; refuse rather than guess.
        Some(HttpResponse::ErrorResponse(_)) | None => pb::Verdict::Deny(Deny {
            status: 403,
            ..Default::default()
        }),
    };
    DecideResponse {
        verdict: Some(verdict),
        // Zero for every decision that must not be reused (no hand-off, body policy).
        valid_for_ms: u64::try_from(decision.valid_for.as_millis()).unwrap_or(u64::MAX),
    }
}

fn headers(options: Vec<HeaderValueOption>) -> Vec<pb::Header> {
    options
        .into_iter()
        .filter_map(|option| option.header)
        .map(|header| pb::Header {
            name: header.key,
            value: header.value,
        })
        .collect()
}

/// The invalidation a change becomes on the wire.
pub fn invalidation(change: &Change) -> Invalidation {
    match change {
        Change::Revoked(event) => revoked(event),
        // Every token of the subject, whenever issued: the filter forgets their decisions
        // (nothing is revoked; the next request asks again).
        Change::UserChanged(subject) => Invalidation::revoked(TargetKind::User, subject, u64::MAX),
        Change::Flush(reason) => Invalidation::flush_all(reason),
    }
}

fn revoked(event: &RevocationEvent) -> Invalidation {
    let (kind, id) = match &event.target {
        RevocationTarget::Token(id) => (TargetKind::Token, id),
        RevocationTarget::Grant(id) => (TargetKind::Grant, id),
        RevocationTarget::User(id) => (TargetKind::User, id),
        RevocationTarget::Client(id) => (TargetKind::Client, id),
    };
    Invalidation::revoked(kind, id, event.revoked_at)
}

/// Feeds one watcher: `ready`, then every change and a heartbeat per interval, until the
/// watcher goes or the state can no longer be trusted.
/// Counts an open invalidation stream until dropped, however `forward` ends.
struct StreamOpen<'a>(&'a Shared);

impl Drop for StreamOpen<'_> {
    fn drop(&mut self) {
        self.0.metrics.stream_changed(-1);
    }
}

async fn forward(
    shared: Arc<Shared>,
    mut changes: broadcast::Receiver<Change>,
    mut closing: watch::Receiver<()>,
    sender: mpsc::Sender<Result<Invalidation, Status>>,
    watcher: String,
) {
    tracing::info!(watcher, "invalidation watcher connected");
    shared.metrics.stream_changed(1);
    let _open = StreamOpen(&shared);
    let mut heartbeat =
        tokio::time::interval(Duration::from_millis(u64::from(HEARTBEAT_INTERVAL_MS)));
    heartbeat.tick().await;
    let mut next = Invalidation::ready();
    loop {
        if sender.send(Ok(next)).await.is_err() {
            break;
        }
        next = tokio::select! {
            change = changes.recv() => match change {
                Ok(change) => invalidation(&change),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(watcher, missed, "invalidation watcher lagged; flushing it");
                    Invalidation::flush_all("watcher fell behind")
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = heartbeat.tick() => {
                if shared.is_available(Instant::now()) {
                    Invalidation::heartbeat()
                } else {
                    let _ = sender.send(Ok(Invalidation::flush_all("state unavailable"))).await;
                    let _ = sender
                        .send(Err(Status::unavailable("authorization state unavailable")))
                        .await;
                    break;
                }
            }
            () = sender.closed() => break,
            _ = closing.changed() => {
                let _ = sender
                    .send(Err(Status::unavailable("ext_authz is shutting down")))
                    .await;
                break;
            }
        };
    }
    tracing::info!(watcher, "invalidation watcher gone");
}

#[cfg(test)]
mod tests;

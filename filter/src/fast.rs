//! Fast mode's per-worker state, with no host calls: the decisions ext_authz gave, and
//! what the invalidation stream says about them (`mcp_auth_proto::decisions`).
//!
//! - A decision is cached per token (hash), route and operations, for the validity ext_authz gave it,
//!   and only while the invalidation stream is up: otherwise a revocation could be missed.
//! - A decision that was asked for before an invalidation arrived and answered after it is
//!   used for its own request but not cached ([`FastPath::epoch`]).
//! - `ready` on a (re)connected stream flushes everything: events may have been missed.
//! - A lost stream (closed, or silent for [`MISSED_HEARTBEATS`] heartbeats) keeps cached
//!   decisions for `stream_loss_grace_ms`; after that every request asks ext_authz.
//!
//! Times are milliseconds since the epoch.

use std::rc::Rc;

use mcp_auth_proto::decisions::{
    Event, HEARTBEAT_INTERVAL_MS, Invalidation, MISSED_HEARTBEATS, TargetKind, Verdict,
};

use crate::cache::{TokenCache, TokenHash};
use crate::verify::VerifiedToken;

/// A cached decision: the key of its token, route and the request's operations (the hash of
/// [`mcp_auth_proto::mcp::Operations::cache_key`]; of `""` for a request without a body).
pub type DecisionKey = (TokenHash, u32, TokenHash);

/// One cached decision and the token facts invalidations are matched against.
struct CachedDecision {
    verdict: Rc<Verdict>,
    token: Rc<VerifiedToken>,
}

/// The invalidation stream as this worker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamState {
    /// Not (yet) live; cached decisions count until `grace_until`.
    Down { grace_until: u64 },
    /// Live; `last_heard` is when its last message arrived.
    Up { last_heard: u64, heartbeat_ms: u64 },
}

/// Fast-mode state of one worker.
pub struct FastPath {
    cache: TokenCache<CachedDecision, DecisionKey>,
    stream: StreamState,
    /// Bumped by every invalidation and stream change.
    epoch: u64,
    stream_loss_grace_ms: u64,
}

impl FastPath {
    pub fn new(capacity: usize, stream_loss_grace_ms: u64) -> Self {
        Self {
            cache: TokenCache::new(capacity),
            stream: StreamState::Down { grace_until: 0 },
            epoch: 0,
            stream_loss_grace_ms,
        }
    }

    pub fn stream(&self) -> StreamState {
        self.stream
    }

    /// The current epoch: pass it to [`FastPath::remember`] with the answer.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// The cached verdict for `key` at `now`, if it still counts.
    pub fn lookup(&self, key: &DecisionKey, now: u64) -> Option<Rc<Verdict>> {
        if let StreamState::Down { grace_until } = self.stream
            && now >= grace_until
        {
            return None;
        }
        self.cache.get(key, now).map(|d| Rc::clone(&d.verdict))
    }

    /// Caches ext_authz's answer to a `Decide` sent at `asked_epoch`, if it may be reused.
    pub fn remember(
        &mut self,
        key: DecisionKey,
        token: Rc<VerifiedToken>,
        verdict: Rc<Verdict>,
        valid_for_ms: u64,
        asked_epoch: u64,
        now: u64,
    ) -> bool {
        let reusable = valid_for_ms > 0
            && asked_epoch == self.epoch
            && matches!(self.stream, StreamState::Up { .. });
        if reusable {
            let decision = CachedDecision { verdict, token };
            self.cache
                .insert(key, decision, now.saturating_add(valid_for_ms), now);
        }
        reusable
    }

    /// Applies one message of the stream.
    pub fn on_message(&mut self, message: &Invalidation, now: u64) {
        if let StreamState::Up { last_heard, .. } = &mut self.stream {
            *last_heard = now;
        }
        match &message.event {
            Some(Event::Ready(ready)) => {
                self.flush();
                self.stream = StreamState::Up {
                    last_heard: now,
                    heartbeat_ms: u64::from(ready.heartbeat_interval_ms.max(1)),
                };
            }
            Some(Event::Revoked(revoked)) => {
                self.epoch += 1;
                let kind = TargetKind::try_from(revoked.kind).unwrap_or(TargetKind::Unspecified);
                let id = revoked.id.as_str();
                let revoked_at = revoked.revoked_at;
                self.cache
                    .retain(|d| !covers(kind, id, revoked_at, &d.token));
            }
            Some(Event::FlushAll(_)) => self.flush(),
            // Heartbeats only prove the stream lives; an unknown event is ignored, as proto3
            // readers do, but still voids decisions in flight.
            Some(Event::Heartbeat(_)) => {}
            None => self.epoch += 1,
        }
    }

    /// The stream closed (or is about to be closed) at `now`.
    pub fn on_stream_lost(&mut self, now: u64) {
        self.epoch += 1;
        if let StreamState::Up { .. } = self.stream {
            self.stream = StreamState::Down {
                grace_until: now.saturating_add(self.stream_loss_grace_ms),
            };
        }
    }

    /// Whether the stream opened at `opened_at` should be replaced at `now`: it is live but
    /// has missed [`MISSED_HEARTBEATS`] heartbeats, or it never became ready in that time.
    pub fn stream_is_stuck(&self, opened_at: u64, now: u64) -> bool {
        let limit = |heartbeat_ms: u64| heartbeat_ms.saturating_mul(u64::from(MISSED_HEARTBEATS));
        match self.stream {
            StreamState::Up {
                last_heard,
                heartbeat_ms,
            } => now.saturating_sub(last_heard) > limit(heartbeat_ms),
            StreamState::Down { .. } => {
                now.saturating_sub(opened_at) > limit(u64::from(HEARTBEAT_INTERVAL_MS))
            }
        }
    }

    fn flush(&mut self) {
        self.epoch += 1;
        self.cache.clear();
    }
}

/// Whether a revocation of `id` as a `kind` at `revoked_at` covers `token`.
fn covers(kind: TargetKind, id: &str, revoked_at: u64, token: &VerifiedToken) -> bool {
    let issued_before = token.issued_at <= revoked_at;
    match kind {
        TargetKind::Token => token.token_id == id,
        TargetKind::Grant => token.grant_id == id && issued_before,
        TargetKind::User => token.subject == id && issued_before,
        TargetKind::Client => token.client_id == id && issued_before,
        // A kind this filter does not know: drop everything rather than miss a revocation.
        TargetKind::Unspecified => true,
    }
}

#[cfg(test)]
mod tests;

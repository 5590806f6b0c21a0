//! ext_authz's Prometheus metrics, served at `GET /metrics` on `ext_authz.metrics_listen`
//! (default `127.0.0.1:9192`).
//!
//! | metric | labels | what it says |
//! |---|---|---|
//! | `mcp_auth_decisions_total` | `api`, `service`, `result`, `reason` | decisions: `api` `check` (Envoy's ext_authz, per request) or `decide` (the filter, fast mode, on a cache miss); `result` `allow`, `unauthenticated`, `forbidden`, `refused`, `unavailable`; `reason` below |
//! | `mcp_auth_decision_duration_seconds` | `api` | time to decide (histogram) |
//! | `mcp_auth_redis_up` | | 1 while Redis answers (it is pinged every second) |
//! | `mcp_auth_redis_silence_seconds` | | how long Redis has been silent (0 while it answers) |
//! | `mcp_auth_answering_from_memory` | | 1 while Redis is lost but decisions still come from memory (within `ext_authz.redis_grace`) |
//! | `mcp_auth_events_total` | `kind` | events applied from Redis pub/sub: `revocation`, `user` |
//! | `mcp_auth_event_lag_seconds` | | the last revocation event's delay, from its `revoked_at` (whole seconds, so within a second) to its arrival here |
//! | `mcp_auth_resyncs_total` | | full loads of the state from Redis (start, reconnect, `resync_interval`) |
//! | `mcp_auth_invalidation_streams` | | fast-mode filters (Envoy workers) following the invalidation stream |
//! | `mcp_auth_revocations_in_memory`, `mcp_auth_users_in_memory` | | the in-memory state's size |
//!
//! `reason`: `ok` for an allow; `revoked_token` / `revoked_grant` / `revoked_user` /
//! `revoked_client`, `expired`; `no_handoff`, `unknown_service`, `not_allowed_global`,
//! `not_allowed_service`; `policy_denied`, `insufficient_scope`, `bad_request`;
//! `not_loaded`, `redis_lost`.

use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::decision::{Forbidden, Refusal, Unauthenticated, Verdict};
use crate::policy::ListScope;
use crate::state::{Shared, TargetKind, Unavailable};

/// Which API a decision was asked through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Check,
    Decide,
}

impl Api {
    fn as_str(self) -> &'static str {
        match self {
            Api::Check => "check",
            Api::Decide => "decide",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    api: &'static str,
    service: String,
    result: &'static str,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
    api: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    kind: &'static str,
}

/// Every metric of one ext_authz, and the registry that renders them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    decisions: Family<DecisionLabels, Counter>,
    duration: Family<ApiLabels, Histogram>,
    redis_up: Gauge,
    redis_silence: Gauge<f64, std::sync::atomic::AtomicU64>,
    from_memory: Gauge,
    events: Family<EventLabels, Counter>,
    event_lag: Gauge<f64, std::sync::atomic::AtomicU64>,
    resyncs: Counter,
    streams: Gauge,
    revocations: Gauge,
    users: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "mcp_auth_decisions",
            "Decisions, by API, service, result and reason",
            decisions.clone(),
        );
        let duration = Family::<ApiLabels, Histogram>::new_with_constructor(
            mcp_auth_telemetry::metrics::latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "mcp_auth_decision_duration_seconds",
            "Time to decide, by API",
            duration.clone(),
        );
        let redis_up = Gauge::default();
        registry.register(
            "mcp_auth_redis_up",
            "1 while Redis answers, else 0",
            redis_up.clone(),
        );
        let redis_silence = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "mcp_auth_redis_silence_seconds",
            "How long Redis has not answered",
            redis_silence.clone(),
        );
        let from_memory = Gauge::default();
        registry.register(
            "mcp_auth_answering_from_memory",
            "1 while Redis is lost and decisions come from memory (within redis_grace)",
            from_memory.clone(),
        );
        let events = Family::<EventLabels, Counter>::default();
        registry.register(
            "mcp_auth_events",
            "Events applied from Redis pub/sub, by kind",
            events.clone(),
        );
        let event_lag = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "mcp_auth_event_lag_seconds",
            "Delay of the last revocation event, from revoked_at to its arrival",
            event_lag.clone(),
        );
        let resyncs = Counter::default();
        registry.register(
            "mcp_auth_resyncs",
            "Full loads of the state from Redis",
            resyncs.clone(),
        );
        let streams = Gauge::default();
        registry.register(
            "mcp_auth_invalidation_streams",
            "Fast-mode filters following the invalidation stream",
            streams.clone(),
        );
        let revocations = Gauge::default();
        registry.register(
            "mcp_auth_revocations_in_memory",
            "Revocation records held in memory",
            revocations.clone(),
        );
        let users = Gauge::default();
        registry.register(
            "mcp_auth_users_in_memory",
            "User records held in memory",
            users.clone(),
        );
        Self {
            registry,
            decisions,
            duration,
            redis_up,
            redis_silence,
            from_memory,
            events,
            event_lag,
            resyncs,
            streams,
            revocations,
            users,
        }
    }

    /// Counts one decision made through `api` for `service`, started at `started`.
    pub fn decided(
        &self,
        api: Api,
        service: &str,
        outcome: Result<&Verdict, Unavailable>,
        started: Instant,
    ) {
        let (result, reason) = match outcome {
            Ok(verdict) => result_and_reason(verdict),
            Err(Unavailable::NotLoaded) => ("unavailable", "not_loaded"),
            Err(Unavailable::RedisLost(_)) => ("unavailable", "redis_lost"),
        };
        self.decisions
            .get_or_create(&DecisionLabels {
                api: api.as_str(),
                service: service.to_owned(),
                result,
                reason,
            })
            .inc();
        self.duration
            .get_or_create(&ApiLabels { api: api.as_str() })
            .observe(started.elapsed().as_secs_f64());
    }

    /// Counts one event applied; `lag_secs` for a revocation.
    pub fn event(&self, kind: &'static str, lag_secs: Option<f64>) {
        self.events.get_or_create(&EventLabels { kind }).inc();
        if let Some(lag) = lag_secs {
            self.event_lag.set(lag);
        }
    }

    pub fn resynced(&self) {
        self.resyncs.inc();
    }

    /// An invalidation stream opened (`+1`) or ended (`-1`).
    pub fn stream_changed(&self, delta: i64) {
        self.streams.inc_by(delta);
    }

    /// The registry, with the gauges of `shared`'s state brought up to `now`.
    pub fn registry(&self, shared: &Shared, now: Instant) -> &Registry {
        let silence = shared.silence(now);
        let heard = shared.redis_answers(now);
        self.redis_up.set(i64::from(heard));
        self.redis_silence
            .set(silence.map_or(f64::NAN, |s| if heard { 0.0 } else { s.as_secs_f64() }));
        self.from_memory
            .set(i64::from(!heard && shared.is_available(now)));
        if let Some(store) = shared.store() {
            self.revocations
                .set(i64::try_from(store.revocations.len()).unwrap_or(i64::MAX));
            self.users
                .set(i64::try_from(store.users.len()).unwrap_or(i64::MAX));
        }
        &self.registry
    }
}

fn result_and_reason(verdict: &Verdict) -> (&'static str, &'static str) {
    match verdict {
        Verdict::Allow(_) => ("allow", "ok"),
        Verdict::Unauthenticated { reason, .. } => (
            "unauthenticated",
            match reason {
                Unauthenticated::Revoked(TargetKind::Token) => "revoked_token",
                Unauthenticated::Revoked(TargetKind::Grant) => "revoked_grant",
                Unauthenticated::Revoked(TargetKind::User) => "revoked_user",
                Unauthenticated::Revoked(TargetKind::Client) => "revoked_client",
                Unauthenticated::Expired => "expired",
            },
        ),
        Verdict::Forbidden(forbidden) => (
            "forbidden",
            match forbidden {
                Forbidden::NoHandoff(_) => "no_handoff",
                Forbidden::UnknownService => "unknown_service",
                Forbidden::NotAllowed {
                    list: ListScope::Global,
                    ..
                } => "not_allowed_global",
                Forbidden::NotAllowed {
                    list: ListScope::Service,
                    ..
                } => "not_allowed_service",
            },
        ),
        Verdict::Refused(refusal) => (
            "refused",
            match refusal {
                Refusal::BadRequest { .. } => "bad_request",
                Refusal::InsufficientScope { .. } => "insufficient_scope",
                Refusal::Denied { .. } => "policy_denied",
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcp_auth_gateway::GatewayConfig;

    use crate::settings::Settings;

    fn shared() -> Shared {
        let config = GatewayConfig::from_yaml(
            "issuer: http://127.0.0.1:8080\n\
             services:\n  - name: svc\n    upstream: { url: http://127.0.0.1:3001/mcp }\n",
        )
        .unwrap();
        Shared::new(Settings::from_config(&config, 1).unwrap())
    }

    fn render(shared: &Shared) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(
            &mut text,
            shared.metrics.registry(shared, Instant::now()),
        )
        .unwrap();
        text
    }

    #[test]
    fn decisions_are_counted_by_result_and_reason() {
        let shared = shared();
        let revoked = Verdict::Unauthenticated {
            reason: Unauthenticated::Revoked(TargetKind::Grant),
            resource_metadata: None,
        };
        let denied = Verdict::Refused(Refusal::Denied {
            id: None,
            method: "tools/call".into(),
            name: Some("get-env".into()),
        });
        let now = Instant::now();
        shared.metrics.decided(Api::Check, "svc", Ok(&revoked), now);
        shared.metrics.decided(Api::Decide, "svc", Ok(&denied), now);
        shared.metrics.decided(Api::Decide, "svc", Ok(&denied), now);
        shared
            .metrics
            .decided(Api::Check, "", Err(Unavailable::NotLoaded), now);
        let text = render(&shared);
        for line in [
            "mcp_auth_decisions_total{api=\"check\",service=\"svc\",result=\"unauthenticated\",reason=\"revoked_grant\"} 1",
            "mcp_auth_decisions_total{api=\"decide\",service=\"svc\",result=\"refused\",reason=\"policy_denied\"} 2",
            "mcp_auth_decisions_total{api=\"check\",service=\"\",result=\"unavailable\",reason=\"not_loaded\"} 1",
            "mcp_auth_decision_duration_seconds_count{api=\"decide\"} 2",
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
    }

    #[test]
    fn redis_and_streams_are_reported_as_of_the_scrape() {
        let shared = shared();
        let text = render(&shared);
        // Never heard from Redis: down, and nothing is answered from memory either.
        assert!(text.contains("mcp_auth_redis_up 0\n"), "{text}");
        assert!(
            text.contains("mcp_auth_answering_from_memory 0\n"),
            "{text}"
        );
        shared.mark_contact(Instant::now());
        shared.metrics.stream_changed(1);
        shared.metrics.stream_changed(1);
        shared.metrics.stream_changed(-1);
        let text = render(&shared);
        assert!(text.contains("mcp_auth_redis_up 1\n"), "{text}");
        assert!(text.contains("mcp_auth_invalidation_streams 1\n"), "{text}");
    }
}

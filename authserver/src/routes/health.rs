//! The operator's endpoints, served on `authserver.listen` and never routed through Envoy:
//! liveness (`/healthz`), readiness (`/readyz`) and the Prometheus metrics (`/metrics`).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// How long a readiness or scrape `PING` may take.
const PING_TIMEOUT: Duration = Duration::from_secs(1);

/// 200 while the process serves HTTP. Redis is not consulted: a Redis outage is reported
/// per request (503) and by `/readyz`, and restarting the authserver would not fix it.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// 200 when Redis answers a `PING` within a second, else 503: a load balancer or Kubernetes
/// sends no sign-in to an authserver that could not complete it.
pub async fn readyz(State(state): State<AppState>) -> Response {
    if redis_up(&state).await {
        "ready\n".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Redis does not answer\n").into_response()
    }
}

/// The metrics, with `mcp_auth_redis_up` as of a `PING` made now.
pub async fn metrics(State(state): State<AppState>) -> Response {
    redis_up(&state).await;
    mcp_auth_telemetry::metrics::render(state.metrics.registry())
}

async fn redis_up(state: &AppState) -> bool {
    let up = tokio::time::timeout(PING_TIMEOUT, state.store.ping())
        .await
        .unwrap_or(false);
    state.metrics.set_redis_up(up);
    up
}

//! `GET /healthz`: liveness of the process (not routed through Envoy).

/// 200 while the process serves HTTP. Redis is not consulted: a Redis outage is reported
/// per request (503), and restarting the authserver would not fix it.
pub async fn healthz() -> &'static str {
    "ok\n"
}

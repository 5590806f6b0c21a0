//! What every mcp-mesh-auth server reports about itself, in one place for the authserver and
//! ext_authz:
//!
//! - [`logs`] — `tracing` events on stderr, as text or one JSON object per line
//!   (`LOG_FORMAT=json`), filtered by `RUST_LOG`;
//! - [`metrics`] — a Prometheus registry rendered in the OpenMetrics text format at
//!   `GET /metrics`, and the HTTP request metrics of an axum server;
//! - [`requests`] — one log event per HTTP request, under a request id.
//!
//! Each server owns its registry (no global recorder): tests run several servers in one
//! process and read each one's figures apart.

pub mod logs;
pub mod metrics;
pub mod requests;

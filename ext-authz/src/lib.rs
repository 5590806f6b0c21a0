//! mcp-auth-ext-authz: Envoy's `ext_authz` gRPC service for mcp-mesh-auth.
//!
//! The Envoy filter verifies the access token and hands the verified claims on in the
//! `x-mcp-auth-handoff` header; this service then decides, on every request, what a signature
//! cannot: is the token, its grant, its user or its client revoked; is the user (still) on
//! the global and the service's allow-list. Allowed requests reach the MCP server without
//! the token and with identity headers instead (SPEC RS-9, RS-10, RS-15, RS-16).
//!
//! - [`decision`] — the pure decision (request facts + state + time → [`decision::Decision`]).
//! - [`policy`] — allow-list evaluation.
//! - [`state`] — the in-memory state, swapped atomically; [`store`] keeps it current from
//!   Redis (load, pub/sub events, periodic resync); [`reload`] follows the config file.
//! - [`service`] — `Authorization/Check`; [`response`] puts a decision on the wire.
//! - [`decisions`] — `mcp_auth.v1.Decisions`, the fast path: the same decision asked by the
//!   filter on a cache miss, and invalidations pushed to it.
//! - [`metrics`] — the Prometheus metrics, served on `ext_authz.metrics_listen`.
//! - [`serve()`] — everything together, with the gRPC health service.

pub mod audit;
pub mod decision;
pub mod decisions;
pub mod facts;
pub mod mcp_policy;
pub mod metrics;
pub mod policy;
pub mod reload;
pub mod response;
pub mod serve;
pub mod service;
pub mod settings;
pub mod state;
pub mod store;

pub use reload::{ConfigLoadError, load_config};
pub use serve::{AUTHORIZATION_SERVICE, Listeners, ServeError, serve};

//! Harness of the end-to-end suite: real Redis, real Envoy with the real filter, the
//! authserver and ext_authz in-process, real MCP servers as child processes.
//!
//! Every handle cleans up on `Drop` (children killed, tasks aborted, temp dirs removed). No
//! fixed ports: Redis listens on a unix socket, the in-process servers on `127.0.0.1:0`, and
//! Envoy's listener port is reserved before it starts (see [`envoy::ReservedPort`]).
//! Readiness is polled with a deadline, never slept on.

pub mod auth_proxy;
pub mod catalogue;
pub mod chromium;
pub mod envoy;
pub mod fake_github;
pub mod header_echo;
pub mod inspector;
pub mod istio_sidecar;
pub mod log_capture;
pub mod mcp_client;
pub mod mcp_server;
pub mod metrics;
pub mod oauth;
pub mod oidc_provider;
pub mod poll;
pub use mcp_auth_testkit::RedisServer;
pub mod stack;
pub mod tools;

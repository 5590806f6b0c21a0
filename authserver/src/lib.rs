//! The OAuth 2.1 authorization server of mcp-mesh-auth.
//!
//! It issues the access tokens Envoy's filter verifies for MCP servers: discovery (RFC 8414,
//! RFC 9728), dynamic registration (RFC 7591/7592) and Client ID Metadata Documents, the
//! authorization code flow with PKCE (OAuth 2.1) behind our own consent page and a GitHub
//! login, refresh rotation, revocation (RFC 7009) with events for ext_authz, and
//! introspection (RFC 7662).
//!
//! [`router`] builds the HTTP API for tests (`tower::ServiceExt::oneshot`); [`serve`] runs it.

pub mod admin;
pub mod clients;
pub mod error;
pub mod idp;
pub mod keys;
pub mod metrics;
pub mod oauth;
mod pages;
pub mod ratelimit;
pub mod revocation;
mod routes;
pub mod secret;
mod serve;
pub mod session;
pub mod settings;
mod state;
pub mod store;
pub mod tokens;

pub use routes::router;
pub use serve::{ServeError, serve};
pub use state::{AppState, Clock, system_now};

//! Wire contracts that two or more mcp-mesh-auth components must agree on.
//!
//! Types, parsing and validation only: no I/O, and everything here builds for
//! `wasm32-unknown-unknown` so the Envoy filter shares the exact same definitions
//! as the authorization server and the ext_authz service.

pub mod claims;
pub mod decisions;
pub mod filter_config;
pub mod handoff;
pub mod headers;
pub mod listing;
pub mod mcp;
pub mod metadata;
pub mod oauth_error;
pub mod paths;
pub mod registration;
pub mod scope;
pub mod store;
pub mod token;

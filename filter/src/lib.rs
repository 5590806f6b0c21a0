//! `mcp-auth-filter`: a proxy-wasm HTTP filter for Envoy that verifies MCP access tokens
//! (RFC 9068 JWTs signed by the authserver) locally, answers RFC 6750 / RFC 9728 challenges,
//! and hands the verified claims on to ext_authz in the `x-mcp-auth-*` headers.
//!
//! The proxy-wasm glue is thin (`root`, `http`); the logic lives in pure modules with native
//! unit tests: `config`, `jwks`, `verify`, `bearer`, `challenge`, `cache`, `schedule`,
//! `worker`. Time is always an argument there.

pub mod bearer;
pub mod cache;
pub mod challenge;
pub mod config;
pub mod fast;
mod host_env;
mod http;
pub mod jwks;
pub mod listing;
mod root;
pub mod schedule;
pub mod verify;
pub mod worker;

#[cfg(test)]
pub(crate) mod testing;

use proxy_wasm::traits::RootContext;
use proxy_wasm::types::LogLevel;

proxy_wasm::main! {{
    // Envoy filters what it prints by its own `wasm` log level; debug lines (one per
    // refused request, never with the token) cost nothing unless it is enabled.
    proxy_wasm::set_log_level(LogLevel::Debug);
    // Replaces the SDK's hook, which unwraps the log call it makes.
    std::panic::set_hook(Box::new(|info| {
        let _ = proxy_wasm::hostcalls::log(LogLevel::Critical, &format!("mcp-auth-filter panicked: {info}"));
    }));
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(root::FilterRoot::default()) });
}}

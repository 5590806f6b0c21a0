//! The processes that run a gateway config's MCP servers, in one place for `cargo xtask up`
//! and the test harness.
//!
//! A streamable-HTTP server's `run` command runs as written. A stdio server's `run` command
//! is wrapped by PyPI `mcp-streamablehttp-proxy` (the wrapper the seed gateway used), which
//! starts it, speaks stdio to it and serves it as streamable HTTP at `upstream.url` — so no
//! service needs anything hand-written for its transport.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::endpoint::Endpoint;
use crate::service::{Service, Transport};

/// The stdio → streamable HTTP wrapper (PyPI `mcp-streamablehttp-proxy`, on `PATH`).
pub const STDIO_WRAPPER: &str = "mcp-streamablehttp-proxy";
/// The path the wrapper serves MCP at: a stdio service's `upstream.url` must end with it.
pub const STDIO_WRAPPER_PATH: &str = "/mcp";

/// A process to start for a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSpec {
    pub program: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// Relative to the gateway config file's directory, as in the config.
    pub cwd: Option<PathBuf>,
}

/// The process that serves `service`, if the config says how to run it.
pub fn process_spec(service: &Service) -> Option<ProcessSpec> {
    let run = service.upstream.run.as_ref()?;
    let spec = match service.upstream.transport {
        Transport::Http => ProcessSpec {
            program: run.command.clone(),
            args: run.args.clone(),
            env: run.env.clone(),
            cwd: run.cwd.clone(),
        },
        Transport::Stdio => {
            // Validation guarantees a loopback http URL (crate::validate).
            let endpoint = Endpoint::from_url(&service.upstream.url)?;
            let mut args = vec![
                "--host".to_owned(),
                endpoint.host,
                "--port".to_owned(),
                endpoint.port.to_string(),
                "--log-level".to_owned(),
                "warning".to_owned(),
                // Everything after `--` is the server's command line, options included.
                "--".to_owned(),
                run.command.clone(),
            ];
            args.extend(run.args.iter().cloned());
            ProcessSpec {
                program: STDIO_WRAPPER.to_owned(),
                args,
                env: run.env.clone(),
                cwd: run.cwd.clone(),
            }
        }
    };
    Some(spec)
}

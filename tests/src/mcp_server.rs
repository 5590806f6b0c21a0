//! Real MCP servers as child processes.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::{poll, tools};

/// A running MCP server; killed on drop.
pub struct McpServer {
    child: Child,
    addr: SocketAddr,
    path: &'static str,
}

impl McpServer {
    /// npm `@modelcontextprotocol/server-everything` in streamable-HTTP mode.
    pub async fn everything() -> Result<Self> {
        let script = tools::npm_prefix()
            .join("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
        anyhow::ensure!(
            script.is_file(),
            "{} is missing; run `cargo xtask install`",
            script.display()
        );
        // The server picks no port itself: take a free one (Node cannot share a reserved one).
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(tools::node_bin()?)
            .arg(script)
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start server-everything")?;
        let server = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            path: "/mcp",
        };
        let addr = server.addr;
        poll::until(
            "server-everything to accept connections",
            Duration::from_secs(30),
            || async move { tokio::net::TcpStream::connect(addr).await.ok().map(|_| ()) },
        )
        .await?;
        Ok(server)
    }

    /// The server's own streamable-HTTP URL (what the gateway forwards to).
    pub fn url(&self) -> String {
        format!("http://{}{}", self.addr, self.path)
    }
}

impl Drop for McpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

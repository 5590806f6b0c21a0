//! The seed gateway's verify endpoint (PyPI `mcp-oauth-dynamicclient` 0.2.0, what Traefik's
//! ForwardAuth called per request), run by `bench/seed/seed_verify.py` against the bench's
//! Redis, with a token the package itself minted.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::AsyncBufReadExt as _;

/// The running seed server and what to load it with.
pub struct Seed {
    pub child: tokio::process::Child,
    pub token: String,
    pub url: String,
}

impl Seed {
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }
}

/// Starts the seed's app with `python` (the seed venv's) on a free port.
pub async fn start(root: &Path, python: &Path, redis_url: &str) -> Result<Seed> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut child = tokio::process::Command::new(python)
        .arg(root.join("bench/seed/seed_verify.py"))
        .args(["--redis-url", redis_url, "--port", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting the seed's verify endpoint")?;
    let stdout = child.stdout.take().context("seed stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let (mut token, mut url) = (None, None);
    while token.is_none() || url.is_none() {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .context("the seed printed no token within 60 s")??
            .context("the seed exited before printing its token")?;
        if let Some(t) = line.strip_prefix("TOKEN ") {
            token = Some(t.to_owned());
        } else if let Some(u) = line.strip_prefix("VERIFY ") {
            url = Some(u.to_owned());
        }
    }
    let (token, url) = (token.unwrap_or_default(), url.unwrap_or_default());
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if let Ok(response) = client.post(&url).bearer_auth(&token).send().await {
            if response.status().is_success() {
                return Ok(Seed { child, token, url });
            }
            bail!("the seed refuses its own token: {}", response.status());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("the seed's verify endpoint did not come up at {url}")
}

//! A real `redis-server` per test, on a unix socket in its own temp dir: no port to collide on.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{poll, tools};

/// A running Redis; killed (and its directory removed) on drop.
pub struct Redis {
    dir: tempfile::TempDir,
    child: Child,
}

impl Redis {
    pub async fn start() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let socket = dir.path().join("redis.sock");
        let child = Command::new(tools::redis_bin()?)
            .args([
                "--port",
                "0",
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--unixsocket")
            .arg(&socket)
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start redis-server; install it with `cargo xtask install`")?;
        let redis = Self { dir, child };
        poll::until(
            "redis-server to answer PING",
            Duration::from_secs(10),
            || async { ping(&socket).await.then_some(()) },
        )
        .await?;
        Ok(redis)
    }

    /// The redis-server process id (for CPU and memory readings).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    /// The URL the components connect with.
    pub fn url(&self) -> String {
        format!("unix://{}", self.socket().display())
    }
}

async fn ping(socket: &std::path::Path) -> bool {
    let Ok(mut stream) = tokio::net::UnixStream::connect(socket).await else {
        return false;
    };
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").await.is_ok()
        && stream.read_exact(&mut reply).await.is_ok()
        && &reply == b"+PONG\r\n"
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! A real `redis-server` per test, on a unix socket in its own temp dir (no port to collide
//! on), killed on drop; it can be stopped and restarted on the same socket, as an outage.

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running (or stopped, restartable) Redis.
pub struct RedisServer {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a Redis and waits until it answers `PING`. Panics (this is test support) with
    /// how to install `redis-server` when it cannot run.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir for redis-server");
        let mut server = Self { dir, child: None };
        server.restart();
        server
    }

    /// The binary: `MCP_AUTH_REDIS_BIN`, else `redis-server` on `PATH`.
    fn binary() -> PathBuf {
        std::env::var_os("MCP_AUTH_REDIS_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("redis-server"))
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    /// The URL the components connect with.
    pub fn url(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// The redis-server process id (for CPU and memory readings); 0 when stopped.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("the test Redis URL parses")
    }

    /// A connection of the test's own (to seed or inspect state).
    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        self.client()
            .get_multiplexed_async_connection()
            .await
            .expect("a connection to the test Redis")
    }

    /// Kills it (SIGKILL: no goodbye to clients, like a crash).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same socket and directory (empty: nothing is saved), and
    /// waits until it answers.
    pub fn restart(&mut self) {
        self.stop();
        let socket = self.socket();
        let _ = std::fs::remove_file(&socket);
        let child = Command::new(Self::binary())
            .args(["--port", "0", "--unixsocketperm", "700"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--unixsocket")
            .arg(&socket)
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run redis-server ({e}); install it: `cargo xtask install` or apt-get install -y redis-server"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !answers(&socket) {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING on {} within 10 s",
                socket.display()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn answers(socket: &Path) -> bool {
    let Ok(mut stream) = UnixStream::connect(socket) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

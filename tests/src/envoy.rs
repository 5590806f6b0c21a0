//! A real Envoy with the real filter, started from a rendered bootstrap.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use mcp_auth_proto::handoff::HANDOFF_KEY_ENV;
use socket2::{Domain, Socket, Type};

use crate::{poll, tools};

/// A loopback port held for Envoy before Envoy exists.
///
/// The issuer URL must be Envoy's real address, and it is rendered into the filter's config
/// before Envoy starts, so the port cannot be Envoy's own pick. This socket binds
/// `127.0.0.1:0` with `SO_REUSEPORT` and never listens: the kernel gives no other socket that
/// port (none listens on it without `SO_REUSEPORT` from the same user), while Envoy, whose
/// listener sets `enable_reuse_port`, binds it too. Connections go to listening sockets only,
/// so all of them reach Envoy. Held for Envoy's lifetime; the admin `/listeners` then confirms.
pub struct ReservedPort {
    socket: Socket,
    port: u16,
}

impl ReservedPort {
    pub fn new() -> Result<Self> {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        socket.set_reuse_port(true)?;
        socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
        let port = socket
            .local_addr()?
            .as_socket()
            .map(|a| a.port())
            .context("reserved socket has no port")?;
        Ok(Self { socket, port })
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl std::fmt::Debug for ReservedPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ReservedPort({}, {:?})",
            self.port,
            self.socket.local_addr().ok().and_then(|a| a.as_socket())
        )
    }
}

/// A running Envoy; killed on drop.
pub struct Envoy {
    child: Child,
    _dir: tempfile::TempDir,
    _port: ReservedPort,
    admin: SocketAddr,
    listener: SocketAddr,
}

static NEXT_BASE_ID: AtomicU32 = AtomicU32::new(0);

/// The hand-off secret ([`HANDOFF_KEY_ENV`]) the Envoys and ext_authz of this test process
/// share: random per process, as a deployment's is per deployment.
pub fn handoff_secret() -> &'static str {
    static SECRET: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SECRET.get_or_init(|| {
        let bytes: [u8; 32] = rand::random();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    })
}

impl Envoy {
    /// Starts Envoy with `bootstrap` (whose listener is on `port`) and waits until it is ready.
    pub async fn start(bootstrap: &str, port: ReservedPort) -> Result<Self> {
        Self::start_with_workers(bootstrap, port, 1).await
    }

    /// [`Envoy::start`] with `workers` worker threads (`--concurrency`), each with its own
    /// wasm VM.
    pub async fn start_with_workers(
        bootstrap: &str,
        port: ReservedPort,
        workers: u32,
    ) -> Result<Self> {
        Self::start_logging(bootstrap, port, workers, false).await
    }

    /// [`Envoy::start_with_workers`]; `verbose` logs at `info`, the filter at `debug`
    /// (otherwise Envoy logs warnings only).
    pub async fn start_logging(
        bootstrap: &str,
        port: ReservedPort,
        workers: u32,
        verbose: bool,
    ) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("envoy.yaml");
        let admin_path = dir.path().join("admin-address");
        std::fs::write(&config, bootstrap)?;
        // Envoys of parallel tests must not share hot-restart shared memory.
        let base_id =
            std::process::id() % 10_000 * 100 + NEXT_BASE_ID.fetch_add(1, Ordering::Relaxed) % 100;
        let log = std::fs::File::create(dir.path().join("envoy.log"))?;
        let child = Command::new(tools::envoy_bin()?)
            .env(HANDOFF_KEY_ENV, handoff_secret())
            .arg("-c")
            .arg(&config)
            .args([
                "--concurrency",
                &workers.to_string(),
                "--log-level",
                if verbose { "info" } else { "warn" },
                "--component-log-level",
                if verbose { "wasm:debug" } else { "wasm:warn" },
                // The access log reaches the file within 100 ms (Envoy's default: 10 s).
                "--file-flush-interval-msec",
                "100",
                "--base-id",
                &base_id.to_string(),
            ])
            .arg("--admin-address-path")
            .arg(&admin_path)
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .context("cannot start Envoy; install it with `cargo xtask install`")?;
        let mut envoy = Self {
            child,
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            listener: SocketAddr::from(([127, 0, 0, 1], port.port())),
            _dir: dir,
            _port: port,
        };
        envoy
            .wait_ready(&admin_path)
            .await
            .with_context(|| format!("Envoy log:\n{}", envoy.log()))?;
        Ok(envoy)
    }

    async fn wait_ready(&mut self, admin_path: &std::path::Path) -> Result<()> {
        let deadline = Duration::from_secs(30);
        let child = &mut self.child;
        let admin = poll::until("Envoy's admin address", deadline, || {
            let exited = child.try_wait().ok().flatten();
            let address = std::fs::read_to_string(admin_path)
                .ok()
                .and_then(|a| a.trim().parse::<SocketAddr>().ok());
            async move {
                if exited.is_some() {
                    Some(Err(()))
                } else {
                    address.map(Ok)
                }
            }
        })
        .await?
        .map_err(|()| anyhow::anyhow!("Envoy exited during start"))?;
        self.admin = admin;
        let client = reqwest::Client::new();
        let ready = format!("http://{admin}/ready");
        poll::until("Envoy /ready", deadline, || async {
            let response = client.get(&ready).send().await.ok()?;
            response.status().is_success().then_some(())
        })
        .await?;
        let listeners: serde_json::Value = client
            .get(format!("http://{admin}/listeners?format=json"))
            .send()
            .await?
            .json()
            .await?;
        let bound = listeners["listener_statuses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["local_address"]["socket_address"]["port_value"].as_u64())
            .any(|p| p == u64::from(self.listener.port()));
        if !bound {
            bail!(
                "Envoy is not listening on the reserved port {}: {listeners}",
                self.listener.port()
            );
        }
        Ok(())
    }

    /// The client-facing listener's address.
    pub fn address(&self) -> SocketAddr {
        self.listener
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.listener)
    }

    /// Where the listener `name` of the bootstrap is bound (one rendered on port 0 gets its
    /// port from the kernel), from the admin `/listeners`.
    pub async fn listener_address(&self, name: &str) -> Result<SocketAddr> {
        let listeners: serde_json::Value =
            reqwest::get(format!("http://{}/listeners?format=json", self.admin))
                .await?
                .error_for_status()?
                .json()
                .await?;
        let status = listeners["listener_statuses"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["name"] == name)
            .with_context(|| format!("Envoy has no listener {name:?}: {listeners}"))?;
        let socket = &status["local_address"]["socket_address"];
        let ip: std::net::IpAddr = socket["address"]
            .as_str()
            .context("listener without an address")?
            .parse()?;
        let port = socket["port_value"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .context("listener without a port")?;
        Ok(SocketAddr::new(ip, port))
    }

    /// The Envoy process id (for CPU and memory readings).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn admin(&self) -> SocketAddr {
        self.admin
    }

    /// The value of the counter or gauge `name` in the admin `/stats`, if Envoy has it.
    pub async fn stat(&self, name: &str) -> Result<Option<u64>> {
        let text = reqwest::get(format!("http://{}/stats?filter=^{name}$", self.admin))
            .await?
            .error_for_status()?
            .text()
            .await?;
        Ok(text
            .lines()
            .filter_map(|line| line.split_once(": "))
            .find(|(key, _)| *key == name)
            .and_then(|(_, value)| value.trim().parse().ok()))
    }

    /// What Envoy logged so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("envoy.log")).unwrap_or_default()
    }

    /// The bootstrap Envoy runs.
    pub fn config_path(&self) -> PathBuf {
        self._dir.path().join("envoy.yaml")
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

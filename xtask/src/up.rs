//! `cargo xtask up`: the whole product on one machine.
//!
//! Redis (AOF on, data in `.data/redis`), the authserver, ext_authz, every service that has a
//! `run` command, and Envoy with the filter, all from one effective gateway config in `.data/`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mcp_auth_gateway::GatewayConfig;
use mcp_auth_gateway::env::ProcessEnv;
use mcp_auth_gateway::service::Transport;
use mcp_auth_proto::handoff::HANDOFF_KEY_ENV;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::envoy_config::{render_to, write_effective_config};
use crate::process::run;
use crate::supervise::Supervisor;
use crate::tools::Tools;
use crate::wasm;

const READY_DEADLINE: Duration = Duration::from_secs(90);

/// Options of `cargo xtask up`.
pub struct UpOptions {
    pub config: PathBuf,
    pub release: bool,
}

pub async fn up(tools: &Tools, options: &UpOptions) -> Result<()> {
    tools.install()?;
    let root = &tools.root;
    let profile = if options.release { "release" } else { "debug" };
    let mut build = std::process::Command::new("cargo");
    build.current_dir(root).args([
        "build",
        "-p",
        "mcp-auth-authserver",
        "-p",
        "mcp-auth-ext-authz",
    ]);
    if options.release {
        build.arg("--release");
    }
    run(&mut build)?;
    let wasm = wasm::build(root)?;

    let data = tools.data_dir();
    let source = root.join(&options.config);
    let (config_path, config) =
        write_effective_config(&source, &data.join("gateway.yaml"), &ProcessEnv)?;
    // Envoy would start without its certificate and reset every TLS connection.
    config.check_listener_files()?;
    let bootstrap = data.join("envoy.yaml");
    render_to(&config, &wasm, &bootstrap, None)?;

    let mut stack = Supervisor::new();
    let outcome = start_and_wait(
        tools,
        &config,
        &config_path,
        &bootstrap,
        profile,
        &mut stack,
    )
    .await;
    stack.stop_all().await;
    outcome
}

async fn start_and_wait(
    tools: &Tools,
    config: &GatewayConfig,
    config_path: &Path,
    bootstrap: &Path,
    profile: &str,
    stack: &mut Supervisor,
) -> Result<()> {
    // Handlers first: a signal during start must stop the children, not kill xtask alone.
    let mut term = signal(SignalKind::terminate())?;
    let root = &tools.root;
    let mut table: Vec<(String, String)> = Vec::new();
    let handoff_secret = handoff_secret(&tools.data_dir())?;

    if let Some(port) = local_redis_port(&config.redis.url) {
        let dir = tools.data_dir().join("redis");
        std::fs::create_dir_all(&dir)?;
        let mut redis = Command::new(tools.redis_bin()?);
        redis
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--appendonly",
                "yes",
                "--dir",
            ])
            .arg(&dir);
        stack.spawn("redis", redis)?;
        table.push((
            "redis".into(),
            format!("127.0.0.1:{port} (AOF in {})", dir.display()),
        ));
    } else {
        table.push((
            "redis".into(),
            format!("{} (not started: not local)", config.redis.url),
        ));
    }

    for (name, binary) in [
        ("authserver", "mcp-auth-authserver"),
        ("ext-authz", "mcp-auth-ext-authz"),
    ] {
        let mut command = Command::new(root.join("target").join(profile).join(binary));
        command
            .current_dir(root)
            .arg("--config")
            .arg(config_path)
            .env("PATH", tools.child_path())
            .env(HANDOFF_KEY_ENV, &handoff_secret);
        stack.spawn(name, command)?;
    }
    table.push((
        "authserver".into(),
        format!("http://{} (health /healthz)", config.authserver.listen),
    ));
    table.push((
        "ext-authz".into(),
        format!("grpc://{}", config.ext_authz.listen),
    ));

    for service in &config.services {
        // One place says how a service runs, stdio ones under the wrapper (gateway::wrap).
        let Some(spec) = mcp_auth_gateway::wrap::process_spec(service) else {
            continue;
        };
        let mut command = Command::new(&spec.program);
        command
            .args(&spec.args)
            .envs(&spec.env)
            .env("PATH", tools.child_path());
        command.current_dir(
            spec.cwd
                .as_ref()
                .map_or_else(|| root.clone(), |cwd| root.join("envoy").join(cwd)),
        );
        stack.spawn(&service.name, command)?;
        let how = match service.upstream.transport {
            Transport::Http => "upstream",
            Transport::Stdio => "stdio server, wrapped",
        };
        table.push((
            service.name.clone(),
            format!("{} ({how})", service.upstream.url),
        ));
    }

    let mut envoy = Command::new(tools.envoy_bin()?);
    envoy
        .env(HANDOFF_KEY_ENV, &handoff_secret)
        .arg("-c")
        .arg(bootstrap)
        .args(["--concurrency", "2", "--log-level", "warn", "--base-id"])
        .arg(std::process::id().to_string());
    stack.spawn("envoy", envoy)?;

    let deadline = Instant::now() + READY_DEADLINE;
    let ready = async {
        wait_http_ok(config.authserver.listen, "/healthz", deadline)
            .await
            .context("the authserver did not become healthy")?;
        wait_http_ok(config.admin.address, "/ready", deadline)
            .await
            .context("Envoy did not become ready")
    };
    tokio::select! {
        result = ready => result?,
        signal = stop_signal(&mut term) => { println!("stopping ({signal})"); return Ok(()) }
        name = stack.first_exit() => bail!("{name} exited during start; stopping the stack"),
    }

    let issuer = config.issuer_str();
    println!();
    println!("mcp-mesh-auth is up. Issuer: {issuer}");
    for service in &config.services {
        table.push((format!("{} (MCP)", service.name), service.resource.clone()));
    }
    table.push((
        "envoy".into(),
        format!(
            "{} (admin http://{})",
            config.listener.address, config.admin.address
        ),
    ));
    for (what, where_) in &table {
        println!("  {what:<22} {where_}");
    }
    println!(
        "Try: curl -i -X POST {}",
        config
            .services
            .first()
            .map_or(issuer, |s| s.resource.as_str())
    );
    println!("Ctrl-C stops everything.");
    println!();

    tokio::select! {
        signal = stop_signal(&mut term) => { println!("stopping ({signal})"); Ok(()) }
        name = stack.first_exit() => bail!("{name} exited; stopping the stack"),
    }
}

/// Resolves on Ctrl-C or SIGTERM, naming which.
async fn stop_signal(term: &mut Signal) -> &'static str {
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "Ctrl-C",
        _ = term.recv() => "SIGTERM",
    }
}

/// The port of a `redis://` URL on a loopback host, which `up` runs itself.
fn local_redis_port(url: &str) -> Option<u16> {
    let rest = url.strip_prefix("redis://")?;
    let authority = rest.split('/').next()?;
    let host_port = authority.rsplit('@').next()?;
    let (host, port) = host_port.rsplit_once(':').unwrap_or((host_port, "6379"));
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
        .then(|| port.parse().ok())
        .flatten()
}

/// Polls `GET path` on `addr` until it answers 200 or the deadline passes.
async fn wait_http_ok(addr: SocketAddr, path: &str, deadline: Instant) -> Result<()> {
    let addr = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    loop {
        if http_status(addr, path).await == Some(200) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("no 200 from http://{addr}{path} within {READY_DEADLINE:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// The filter's and ext_authz's shared hand-off secret: `MCP_AUTH_HANDOFF_KEY` when set,
/// else one made once for this checkout and kept in `data_dir` (readable by its owner only).
fn handoff_secret(data_dir: &Path) -> Result<String> {
    if let Some(secret) = std::env::var(HANDOFF_KEY_ENV)
        .ok()
        .filter(|s| !s.is_empty())
    {
        return Ok(secret);
    }
    let path = data_dir.join("handoff-secret");
    if let Ok(secret) = std::fs::read_to_string(&path) {
        return Ok(secret.trim().to_owned());
    }
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::create_dir_all(data_dir)?;
    let bytes: [u8; 32] = rand::random();
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut file| file.write_all(secret.as_bytes()))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_redis_only_for_loopback_urls() {
        assert_eq!(local_redis_port("redis://127.0.0.1:6380/0"), Some(6380));
        assert_eq!(local_redis_port("redis://:secret@localhost/1"), Some(6379));
        assert_eq!(local_redis_port("redis://redis.internal:6379/0"), None);
        assert_eq!(local_redis_port("rediss://127.0.0.1:6379"), None);
    }
}

//! The compose stack of `deploy/compose/`, brought up for real with podman-compose from the
//! images `cargo xtask images` builds: the official Python SDK completes the OAuth flow
//! through it (discovery, registration, consent, the fake GitHub, token) and calls a tool;
//! then the Redis container is restarted and the client's refresh token still works, since
//! Redis keeps it in its AOF on the volume. Everything is torn down after (`down -v`), on
//! failure too.
//!
//! The shipped `compose.yaml` runs from a directory of the test's own, with a `.env` and a
//! gateway config made from the shipped `gateway.yaml` on free ports, rendered by
//! `cargo xtask compose-config` as a user would. Every container uses host networking, so
//! the fake GitHub on the test's loopback is reachable from the authserver's container.

// Helpers outside `#[test]` functions: a failed step should fail loudly, at the step.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use mcp_auth_e2e::catalogue::free_port;
use mcp_auth_e2e::fake_github::{FakeGitHub, FakeUser};
use mcp_auth_e2e::mcp_client::McpSession;
use mcp_auth_e2e::poll;
use mcp_auth_e2e::tools::workspace_root;
use serde_json::json;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};

/// The images the compose file runs (built by `cargo xtask images`, tagged `latest`).
const IMAGES: [&str; 8] = [
    "authserver",
    "ext-authz",
    "envoy",
    "redis",
    "mcp-everything",
    "mcp-fetchs",
    "mcp-tmux",
    "mcp-playwright",
];

/// The compose services, each a container of the run (playwright switched on).
const SERVICES: [&str; 8] = [
    "redis",
    "authserver",
    "ext-authz",
    "envoy",
    "everything",
    "fetchs",
    "tmux",
    "playwright",
];

/// How long the stack gets to start (image start, key generation, the filter's JWKS fetch).
const START_DEADLINE: Duration = Duration::from_secs(90);

/// The official SDK (2.x, `.tools/venv`) through `tests/clients/python_sdk.py`'s provider
/// and headless browser. Prints `READY <tools> <refresh token> <echo text>` once signed in
/// and a tool answered, then waits for a line on stdin (the test restarts Redis meanwhile),
/// waits out the access token, and calls again, which makes the SDK refresh: `REFRESH
/// <refresh token used> <its successor> <echo text>`.
const SDK_SCRIPT: &str = r#"
import asyncio, sys, time
sys.path.insert(0, sys.argv[1])
url = sys.argv[2]
sys.argv = sys.argv[:1]  # python_sdk runs its main on import: given no URL it does nothing
import python_sdk as sdk
assert sdk.V2, "this script drives the SDK's 2.x API"
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

async def main():
    storage = sdk.MemoryStorage()
    http = httpx2.AsyncClient(auth=sdk.provider(url, sdk.HeadlessBrowser(), storage), timeout=30)
    async with Client(streamable_http_client(url, http_client=http)) as client:
        tools = await client.list_tools()
        async def call(message):
            return await client.call_tool("echo", {"message": message})
        result = await call("hello before the redis restart")
        expires_at = time.time() + (storage.tokens.expires_in or 1)
        print("READY", len(tools.tools), storage.tokens.refresh_token, sdk.echo_text(result), flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        await asyncio.sleep(max(0.0, expires_at + 1 - time.time()))
        used = storage.tokens.refresh_token
        result = await call("hello after the redis restart")
        print("REFRESH", used, storage.tokens.refresh_token, sdk.echo_text(result), flush=True)

asyncio.run(main())
"#;

fn podman_compose() -> PathBuf {
    let path = std::env::var_os("MCP_AUTH_PODMAN_COMPOSE").map_or_else(
        || workspace_root().join(".tools/venv-compose/bin/podman-compose"),
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "podman-compose not found at {} (set MCP_AUTH_PODMAN_COMPOSE); install it with \
         `cargo xtask install`",
        path.display()
    );
    path
}

fn assert_images_built() {
    for name in IMAGES {
        let image = format!("localhost/mcp-mesh-auth/{name}:latest");
        let found = std::process::Command::new("podman")
            .args(["image", "exists", &image])
            .status()
            .unwrap_or_else(|e| panic!("podman: {e}; install it with `cargo xtask install`"));
        assert!(
            found.success(),
            "image {image} is missing: build it with `cargo xtask images`"
        );
    }
}

/// Runs `command` to completion within `deadline`; its stdout, or a panic with its output.
async fn run(command: std::process::Command, what: &str, deadline: Duration) -> String {
    let mut command = tokio::process::Command::from(command);
    command.kill_on_drop(true).stdin(Stdio::null());
    let output = tokio::time::timeout(deadline, command.output())
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {deadline:?}"))
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The ports of one run, all free loopback ports.
struct Ports {
    envoy: u16,
    admin: u16,
    authserver: u16,
    ext_authz: u16,
    redis: u16,
    everything: u16,
    fetchs: u16,
    tmux: u16,
    playwright: u16,
}

impl Ports {
    fn new() -> Self {
        Self {
            envoy: free_port().unwrap(),
            admin: free_port().unwrap(),
            authserver: free_port().unwrap(),
            ext_authz: free_port().unwrap(),
            redis: free_port().unwrap(),
            everything: free_port().unwrap(),
            fetchs: free_port().unwrap(),
            tmux: free_port().unwrap(),
            playwright: free_port().unwrap(),
        }
    }
}

/// The shipped gateway config on this run's ports, with 4 s access tokens (so that the
/// client refreshes soon after the Redis restart).
fn gateway_config(ports: &Ports) -> String {
    let shipped = std::fs::read_to_string(workspace_root().join("deploy/compose/gateway.yaml"))
        .expect("deploy/compose/gateway.yaml");
    let mut config = shipped;
    for (address, port) in [
        ("127.0.0.1:8080", ports.envoy),
        ("127.0.0.1:9901", ports.admin),
        ("127.0.0.1:8081", ports.authserver),
        ("127.0.0.1:9191", ports.ext_authz),
        ("127.0.0.1:6379", ports.redis),
        ("127.0.0.1:3001", ports.everything),
        ("127.0.0.1:3004", ports.fetchs),
        ("127.0.0.1:3106", ports.tmux),
        ("127.0.0.1:3005", ports.playwright),
    ] {
        assert!(
            config.contains(address),
            "deploy/compose/gateway.yaml no longer has {address}; update this test"
        );
        config = config.replace(address, &format!("127.0.0.1:{port}"));
    }
    config.push_str("\ntokens:\n  access_token: 4s\n");
    config
}

/// The `.env` of this run: the fake GitHub, the allow-list, the ports.
fn dot_env(ports: &Ports, github: &FakeGitHub) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = github.env().into_iter().collect();
    vars.extend(
        [
            ("ALLOWED_GITHUB_USERS", "octocat".to_owned()),
            (
                "MCP_AUTH_HANDOFF_KEY",
                mcp_auth_e2e::envoy::handoff_secret().to_owned(),
            ),
            ("ALLOWED_GITHUB_ORGS", String::new()),
            ("ALLOWED_GITHUB_TEAMS", String::new()),
            // Every key of .env.example, as a user's copy has them.
            ("ALLOWED_EMAILS", String::new()),
            ("ALLOWED_EMAIL_DOMAINS", String::new()),
            ("ALLOWED_GROUPS", String::new()),
            ("OIDC_ISSUER", String::new()),
            ("OIDC_CLIENT_ID", String::new()),
            ("OIDC_CLIENT_SECRET", String::new()),
            ("GOOGLE_CLIENT_ID", String::new()),
            ("GOOGLE_CLIENT_SECRET", String::new()),
            ("GOOGLE_HOSTED_DOMAIN", String::new()),
            ("MCP_EVERYTHING_ENABLED", "true".to_owned()),
            ("REDIS_PORT", ports.redis.to_string()),
            ("AUTHSERVER_PORT", ports.authserver.to_string()),
            ("EXT_AUTHZ_PORT", ports.ext_authz.to_string()),
            ("ENVOY_ADMIN_PORT", ports.admin.to_string()),
            ("MCP_EVERYTHING_PORT", ports.everything.to_string()),
            ("MCP_FETCHS_ENABLED", "true".to_owned()),
            ("MCP_FETCHS_PORT", ports.fetchs.to_string()),
            ("MCP_TMUX_ENABLED", "true".to_owned()),
            ("MCP_TMUX_PORT", ports.tmux.to_string()),
            // Off by default (as in the seed); on here, so that its image is tried too.
            ("MCP_PLAYWRIGHT_ENABLED", "true".to_owned()),
            ("MCP_PLAYWRIGHT_PORT", ports.playwright.to_string()),
            ("MCP_AUTH_TAG", "latest".to_owned()),
            (
                "REDIS_IMAGE",
                "localhost/mcp-mesh-auth/redis:latest".to_owned(),
            ),
            ("MCP_AUTH_RENDERED", "./.rendered".to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    vars.sort();
    vars
}

/// One compose project. Dropping it runs `down -v` (containers, pod and volumes), after
/// printing every container's log when the test failed.
struct ComposeProject {
    dir: tempfile::TempDir,
    project: String,
    /// Variables of `.env`, removed from the environment of every command so that the file,
    /// not the shell running the tests, is what compose reads.
    env_names: Vec<String>,
    down: bool,
}

impl ComposeProject {
    fn new(env: &[(String, String)], gateway: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            workspace_root().join("deploy/compose/compose.yaml"),
            dir.path().join("compose.yaml"),
        )
        .unwrap();
        let text: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        std::fs::write(dir.path().join(".env"), text).unwrap();
        std::fs::write(dir.path().join("gateway.yaml"), gateway).unwrap();
        Self {
            dir,
            project: format!("mcp-auth-compose-test-{}", std::process::id()),
            env_names: env.iter().map(|(k, _)| k.clone()).collect(),
            down: false,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn clean(&self, mut command: std::process::Command) -> std::process::Command {
        for name in &self.env_names {
            command.env_remove(name);
        }
        command.current_dir(self.path());
        command
    }

    /// `cargo xtask compose-config` on this project's config and `.env`.
    fn render(&self) -> std::process::Command {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = std::process::Command::new(cargo);
        command
            .current_dir(workspace_root())
            .args(["xtask", "compose-config", "--config"])
            .arg(self.path().join("gateway.yaml"))
            .arg("--env-file")
            .arg(self.path().join(".env"))
            .arg("--out")
            .arg(self.path().join(".rendered"));
        let mut command = self.clean(command);
        command.current_dir(workspace_root());
        command
    }

    /// `podman-compose -p <project> -f compose.yaml <args>`.
    fn compose(&self, args: &[&str]) -> std::process::Command {
        let mut command = std::process::Command::new(podman_compose());
        command
            .args(["-p", &self.project, "-f"])
            .arg(self.path().join("compose.yaml"))
            .args(args);
        self.clean(command)
    }

    fn container(&self, service: &str) -> String {
        format!("{}_{service}_1", self.project)
    }

    /// When `service`'s container last started (changes on a restart).
    async fn started_at(&self, service: &str) -> String {
        let mut command = std::process::Command::new("podman");
        command.args([
            "inspect",
            "--format",
            "{{.State.StartedAt}}",
            &self.container(service),
        ]);
        run(command, "podman inspect", Duration::from_secs(30))
            .await
            .trim()
            .to_owned()
    }

    /// Runs each container's HEALTHCHECK once (podman runs them on systemd timers, which
    /// these machines lack) and returns the services that were not healthy.
    async fn unhealthy(&self, services: &[&str]) -> Vec<String> {
        let mut failed = Vec::new();
        for service in services {
            let status = tokio::process::Command::new("podman")
                .args(["healthcheck", "run", &self.container(service)])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await
                .unwrap();
            if !status.success() {
                failed.push((*service).to_owned());
            }
        }
        failed
    }

    /// What is left of the project (containers and volumes), for the teardown check.
    fn leftovers(&self) -> String {
        let label = format!("label=io.podman.compose.project={}", self.project);
        let mut left = String::new();
        for what in [&["ps", "-a", "-q"][..], &["volume", "ls", "-q"][..]] {
            let output = std::process::Command::new("podman")
                .args(what)
                .args(["--filter", &label])
                .output()
                .unwrap();
            left.push_str(String::from_utf8_lossy(&output.stdout).trim());
        }
        left
    }

    fn down(&mut self) {
        if std::mem::replace(&mut self.down, true) {
            return;
        }
        if std::thread::panicking() {
            for service in SERVICES {
                let logs = std::process::Command::new("podman")
                    .args(["logs", "--tail", "40", &self.container(service)])
                    .output();
                if let Ok(logs) = logs {
                    eprintln!(
                        "--- {service} ---\n{}{}",
                        String::from_utf8_lossy(&logs.stdout),
                        String::from_utf8_lossy(&logs.stderr)
                    );
                }
            }
        }
        let status = self
            .compose(&["down", "-v", "-t", "5"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!(
                "podman-compose down failed ({status:?}): remove project {} by hand",
                self.project
            );
        }
    }
}

impl Drop for ComposeProject {
    fn drop(&mut self) {
        self.down();
    }
}

/// The catalogue's containers besides `everything` (which the SDK uses below): each has its
/// route and challenge in Envoy, and its server, asked directly on the host's loopback (host
/// networking; the servers know nothing about tokens), answers `initialize`, `tools/list`
/// and a `tools/call` that needs nothing from outside.
async fn catalogue_containers_answer(ports: &Ports, issuer: &str) {
    let client = reqwest::Client::new();
    for service in ["fetchs", "tmux", "playwright"] {
        let challenge = client
            .post(format!("{issuer}/{service}/mcp"))
            .send()
            .await
            .unwrap();
        assert_eq!(challenge.status(), 401, "{service}");
    }
    let connect = async |service: &str, port: u16| {
        let url = format!("http://127.0.0.1:{port}/mcp");
        let what = format!("{service}'s container to answer initialize at {url}");
        poll::until(&what, START_DEADLINE, || async {
            McpSession::connect(&url, "unused").await.ok()
        })
        .await
        .unwrap()
        .0
    };

    let mut fetchs = connect("fetchs", ports.fetchs).await;
    assert!(
        fetchs
            .tool_names()
            .await
            .unwrap()
            .contains(&"fetch".to_owned())
    );
    // Its own guard refuses loopback before any request leaves the container.
    let refused = fetchs
        .call("fetch", json!({"url": format!("{issuer}/")}))
        .await
        .unwrap();
    assert_eq!(refused["isError"], json!(true), "{refused}");

    let mut tmux = connect("tmux", ports.tmux).await;
    assert!(
        tmux.tool_names()
            .await
            .unwrap()
            .contains(&"run_in_terminal".to_owned())
    );
    let started = tmux
        .call(
            "run_in_terminal",
            json!({"command": "echo compose-$((6 * 7))", "project": "compose"}),
        )
        .await
        .unwrap();
    assert!(
        McpSession::text(&started).contains("\"success\": true"),
        "{started}"
    );
    // The shell's answer (the typed line has `$((6 * 7))`).
    let deadline = std::time::Instant::now() + START_DEADLINE;
    loop {
        let screen = tmux
            .call("get_terminal_output", json!({"project": "compose"}))
            .await
            .unwrap();
        if McpSession::text(&screen).contains("compose-42") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no compose-42 on tmux's screen: {screen}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut playwright = connect("playwright", ports.playwright).await;
    assert!(
        playwright
            .tool_names()
            .await
            .unwrap()
            .contains(&"browser_navigate".to_owned())
    );
    let page = format!("{issuer}/.well-known/oauth-authorization-server");
    let navigated = playwright
        .call("browser_navigate", json!({"url": page}))
        .await
        .unwrap();
    assert!(
        McpSession::text(&navigated).contains(&format!("Page URL: {page}")),
        "{navigated}"
    );
}

/// Answers `PING` with `+PONG` at `127.0.0.1:port`?
async fn redis_answers(port: u16) -> bool {
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    if stream.write_all(b"PING\r\n").await.is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    tokio::io::AsyncReadExt::read_exact(&mut stream, &mut reply)
        .await
        .is_ok_and(|_| &reply == b"+PONG\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compose_stack_signs_in_the_python_sdk_and_keeps_its_refresh_token_across_a_redis_restart()
 {
    let python = workspace_root().join(".tools/venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run `cargo xtask install`",
        python.display()
    );
    let podman_compose = podman_compose();
    assert_images_built();

    let github = FakeGitHub::start("compose-app", "compose-secret")
        .await
        .unwrap();
    github.sign_in(FakeUser::new(583231, "octocat"));
    let ports = Ports::new();
    let mut project = ComposeProject::new(&dot_env(&ports, &github), &gateway_config(&ports));
    run(
        project.render(),
        "cargo xtask compose-config",
        Duration::from_secs(300),
    )
    .await;
    run(
        project.compose(&["up", "-d"]),
        &format!("{} up -d", podman_compose.display()),
        Duration::from_secs(180),
    )
    .await;

    // Ready: the authserver, Envoy, the 401 challenge, and a filter that holds the JWKS
    // (it answers 503 to any token until its first fetch lands, failing closed).
    let issuer = format!("http://127.0.0.1:{}", ports.envoy);
    let mcp_url = format!("{issuer}/everything/mcp");
    poll::until_ok(
        "the authserver's /healthz",
        &format!("http://127.0.0.1:{}/healthz", ports.authserver),
        START_DEADLINE,
    )
    .await
    .unwrap();
    poll::until_ok(
        "Envoy's /ready",
        &format!("http://127.0.0.1:{}/ready", ports.admin),
        START_DEADLINE,
    )
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let challenge = client.post(&mcp_url).send().await.unwrap();
    assert_eq!(challenge.status(), 401);
    let www_authenticate = challenge.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        www_authenticate.contains(&format!(
            "resource_metadata=\"{issuer}/.well-known/oauth-protected-resource/everything/mcp\""
        )),
        "{www_authenticate}"
    );
    poll::until("the filter to hold the JWKS", START_DEADLINE, || async {
        let response = client
            .post(&mcp_url)
            .bearer_auth("probe")
            .send()
            .await
            .ok()?;
        (response.status() != reqwest::StatusCode::SERVICE_UNAVAILABLE).then_some(())
    })
    .await
    .unwrap();
    catalogue_containers_answer(&ports, &issuer).await;
    assert_eq!(
        project.unhealthy(&SERVICES).await,
        Vec::<String>::new(),
        "HEALTHCHECKs"
    );

    // The OAuth flow and a tool call, through the stack.
    let mut sdk = tokio::process::Command::new(&python)
        .arg("-c")
        .arg(SDK_SCRIPT)
        .arg(workspace_root().join("tests/clients"))
        .arg(&mcp_url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = sdk.stdin.take().unwrap();
    let mut lines = tokio::io::BufReader::new(sdk.stdout.take().unwrap()).lines();
    let mut next_line = async |what: &str| {
        tokio::time::timeout(Duration::from_secs(120), lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("no {what} line from the SDK within 120 s"))
            .unwrap()
            .unwrap_or_else(|| panic!("the SDK exited before its {what} line"))
    };
    let ready = next_line("READY").await;
    let mut parts = ready.splitn(4, ' ');
    assert_eq!(parts.next(), Some("READY"), "{ready}");
    let tools: u32 = parts.next().unwrap().parse().unwrap();
    let refresh_token = parts.next().unwrap().to_owned();
    assert!(tools > 0, "{ready}");
    assert!(
        parts
            .next()
            .unwrap()
            .contains("hello before the redis restart"),
        "{ready}"
    );

    // Redis restarted: the refresh token lives only there, so only its AOF on the volume
    // can bring it back.
    let started = project.started_at("redis").await;
    run(
        project.compose(&["restart", "redis"]),
        "podman-compose restart redis",
        Duration::from_secs(60),
    )
    .await;
    assert_ne!(
        project.started_at("redis").await,
        started,
        "Redis did not restart"
    );
    poll::until("Redis to answer again", START_DEADLINE, || async {
        redis_answers(ports.redis).await.then_some(())
    })
    .await
    .unwrap();
    // The authserver back on Redis: an unknown refresh token is a 400 again (a 5xx while
    // its connection is being re-established).
    poll::until("the authserver to reach Redis", START_DEADLINE, || async {
        let response = client
            .post(format!("{issuer}/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                "grant_type=refresh_token&refresh_token=not-a-refresh-token&client_id=not-a-client",
            )
            .send()
            .await
            .ok()?;
        response.status().is_client_error().then_some(())
    })
    .await
    .unwrap();

    stdin.write_all(b"go\n").await.unwrap();
    stdin.flush().await.unwrap();
    let refreshed = next_line("REFRESH").await;
    let mut parts = refreshed.splitn(4, ' ');
    assert_eq!(parts.next(), Some("REFRESH"), "{refreshed}");
    assert_eq!(
        parts.next(),
        Some(refresh_token.as_str()),
        "the SDK refreshed with another token than it held before the restart: {refreshed}"
    );
    let successor = parts.next().unwrap();
    assert_ne!(
        successor, refresh_token,
        "the refresh token did not rotate: {refreshed}"
    );
    assert!(
        parts
            .next()
            .unwrap()
            .contains("hello after the redis restart"),
        "{refreshed}"
    );
    // A refused refresh would have sent the SDK through the whole flow again, GitHub included.
    let authorizations = github
        .calls()
        .iter()
        .filter(|call| call.as_str() == "GET /login/oauth/authorize")
        .count();
    assert_eq!(
        authorizations,
        1,
        "signed in again instead of refreshing: {:?}",
        github.calls()
    );
    let status = tokio::time::timeout(Duration::from_secs(30), sdk.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "the SDK exited with {status}");

    project.down();
    assert_eq!(project.leftovers(), "", "podman-compose down -v left these");
}

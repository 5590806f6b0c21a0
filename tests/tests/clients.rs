//! Unmodified MCP clients through the gateway, headless: each completes discovery →
//! registration → consent → GitHub (the fake) → token → `tools/list` → `tools/call`
//! against two services (server-everything and the stateful echo server), each with its
//! own resource and token. The browser step is played by `tests/clients/browser.py`.

// Helpers outside `#[test]` functions: a failed step should fail loudly, at the step.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Duration;

use mcp_auth_e2e::catalogue::{Catalogue, free_port};
use mcp_auth_e2e::fake_github::{FakeGitHub, FakeUser};
use mcp_auth_e2e::stack::{Stack, StackOptions};
use mcp_auth_e2e::tools::workspace_root;

/// Both services' MCP URLs through the gateway.
const SERVICES: [&str; 2] = ["everything", "echo-stateful"];

/// What the echo server accepts; its default is 2025-06-18 alone, which today's clients
/// (offering 2025-11-25 first) are refused with, gateway or not.
const PROTOCOL_VERSIONS: &str = "2025-06-18,2025-11-25";

struct Setup {
    stack: Stack,
    _github: FakeGitHub,
    _catalogue: Catalogue,
}

async fn setup() -> Setup {
    let github = FakeGitHub::start("clients-app", "clients-secret")
        .await
        .unwrap();
    github.sign_in(FakeUser::new(583231, "octocat"));
    let port = free_port().unwrap();
    let stack = Stack::start_with(StackOptions {
        env: github.env(),
        extra_services: format!(
            "  - name: echo-stateful\n    upstream:\n      url: http://127.0.0.1:{port}/mcp\n      run: {{ command: mcp-echo-streamablehttp-server-stateful, args: [--host, 127.0.0.1, --port, \"{port}\", --protocol-versions, \"{PROTOCOL_VERSIONS}\"] }}\n"
        ),
        ..Default::default()
    })
    .await
    .unwrap();
    let catalogue = Catalogue::start(&stack.config).await.unwrap();
    Setup {
        stack,
        _github: github,
        _catalogue: catalogue,
    }
}

fn clients_dir() -> PathBuf {
    workspace_root().join("tests/clients")
}

fn urls(stack: &Stack) -> Vec<String> {
    SERVICES
        .iter()
        .map(|s| stack.url(&format!("/{s}/mcp")))
        .collect()
}

/// Runs `command` with a deadline; its stdout, or a failure with everything it printed.
async fn run(mut command: tokio::process::Command, what: &str) -> String {
    command.kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within 120 s"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The SDK's answer per server: `<url> <tools> <echo text>`.
fn assert_sdk_output(stdout: &str, stack: &Stack, what: &str) {
    for url in urls(stack) {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{url} ")))
            .unwrap_or_else(|| panic!("{what}: no answer from {url}:\n{stdout}"));
        let mut parts = line.splitn(3, ' ');
        let (_, tools, text) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
        assert!(tools.parse::<u32>().unwrap() > 0, "{what}: {line}");
        assert!(text.contains("hello from the python sdk"), "{what}: {line}");
    }
}

async fn python_sdk(python: PathBuf, what: &str) {
    assert!(
        python.is_file(),
        "{} is missing: run `cargo xtask install`",
        python.display()
    );
    let setup = setup().await;
    let mut command = tokio::process::Command::new(python);
    command
        .arg(clients_dir().join("python_sdk.py"))
        .args(urls(&setup.stack));
    let stdout = run(command, what).await;
    assert_sdk_output(&stdout, &setup.stack, what);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_2x_completes_the_flow_on_two_services() {
    python_sdk(
        workspace_root().join(".tools/venv/bin/python"),
        "mcp 2.x client",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_1x_completes_the_flow_on_two_services() {
    python_sdk(
        workspace_root().join(".tools/venv-mcp1/bin/python"),
        "mcp 1.x client",
    )
    .await;
}

/// The official SDK through Envoy with an OpenID provider as the only login (no choice
/// page): discovery, registration, consent, the provider's login form, token, tools.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_signs_in_at_an_openid_provider() {
    let accounts = serde_json::json!({
        "alice": { "preferred_username": "alice", "email": "alice@example.com",
                   "email_verified": true, "groups": ["mcp-users"] },
    });
    let (stack, _provider) = mcp_auth_e2e::oidc_provider::stack_with_provider(
        StackOptions {
            env: [("ALLOWED_GROUPS".to_owned(), "mcp-users".to_owned())].into(),
            ..Default::default()
        },
        accounts,
        "",
    )
    .await
    .unwrap();
    let url = stack.url("/everything/mcp");
    let mut command = tokio::process::Command::new(workspace_root().join(".tools/venv/bin/python"));
    command
        .arg(clients_dir().join("python_sdk.py"))
        .arg(&url)
        .env("MCP_AUTH_E2E_OIDC_LOGIN", "alice");
    let stdout = run(command, "mcp 2.x client at an OpenID provider").await;
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&format!("{url} ")))
        .unwrap_or_else(|| panic!("no answer from {url}:\n{stdout}"));
    assert!(line.contains("hello from the python sdk"), "{line}");
}

/// A stdio MCP client session with a child process (one JSON-RPC message per line).
struct StdioPeer {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    next_id: u64,
}

impl StdioPeer {
    fn spawn(mut command: tokio::process::Command) -> Self {
        command
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        use tokio::io::AsyncBufReadExt as _;
        Self {
            child,
            stdin,
            lines: tokio::io::BufReader::new(stdout).lines(),
            next_id: 1,
        }
    }

    async fn send(&mut self, message: &serde_json::Value) {
        use tokio::io::AsyncWriteExt as _;
        let mut line = message.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// A request and its answer's `result` (the OAuth flow happens inside the first one).
    async fn request(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(
            &serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
        )
        .await;
        let answer = tokio::time::timeout(Duration::from_secs(90), async {
            loop {
                let line = self
                    .lines
                    .next_line()
                    .await
                    .unwrap()
                    .expect("the client closed stdout");
                let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if message["id"] == serde_json::json!(id) {
                    return message;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no answer to {method} within 90 s"));
        assert!(answer["error"].is_null(), "{method}: {answer}");
        answer["result"].clone()
    }
}

impl Drop for StdioPeer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// `initialize`, `tools/list` and `tools/call echo` over a stdio peer.
async fn drive_stdio_client(peer: &mut StdioPeer, what: &str) {
    let info = peer
        .request(
            "initialize",
            serde_json::json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "0"}}),
        )
        .await;
    assert!(info["serverInfo"].is_object(), "{what}: {info}");
    peer.send(&serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await;
    let tools = peer.request("tools/list", serde_json::json!({})).await;
    assert!(
        tools["tools"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["name"] == "echo")),
        "{what}: {tools}"
    );
    let result = peer
        .request(
            "tools/call",
            serde_json::json!({"name": "echo", "arguments": {"message": "hello through mcp-remote"}}),
        )
        .await;
    assert!(
        result.to_string().contains("hello through mcp-remote"),
        "{what}: {result}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_remote_completes_the_flow_on_two_services() {
    let setup = setup().await;
    let node = mcp_auth_e2e::tools::node_bin().unwrap();
    let proxy = mcp_auth_e2e::tools::npm_prefix().join("node_modules/mcp-remote/dist/proxy.js");
    assert!(
        proxy.is_file(),
        "{} is missing: run `cargo xtask install`",
        proxy.display()
    );
    let config_dir = tempfile::tempdir().unwrap();
    for url in urls(&setup.stack) {
        let mut command = tokio::process::Command::new(&node);
        command
            .arg(&proxy)
            .arg(&url)
            .arg(free_port().unwrap().to_string())
            .arg("--allow-http")
            .env("BROWSER", clients_dir().join("browser.py"))
            .env("MCP_REMOTE_CONFIG_DIR", config_dir.path())
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .stderr(std::process::Stdio::null());
        let mut peer = StdioPeer::spawn(command);
        drive_stdio_client(&mut peer, &format!("mcp-remote at {url}")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_remote_client_completes_the_flow_and_lists_tools_on_two_services() {
    let setup = setup().await;
    let node = mcp_auth_e2e::tools::node_bin().unwrap();
    let client = mcp_auth_e2e::tools::npm_prefix().join("node_modules/mcp-remote/dist/client.js");
    assert!(
        client.is_file(),
        "{} is missing: run `cargo xtask install`",
        client.display()
    );
    let config_dir = tempfile::tempdir().unwrap();
    for url in urls(&setup.stack) {
        let mut command = tokio::process::Command::new(&node);
        command
            .arg(&client)
            .arg(&url)
            .arg(free_port().unwrap().to_string())
            .arg("--allow-http")
            .env("BROWSER", clients_dir().join("browser.py"))
            .env("MCP_REMOTE_CONFIG_DIR", config_dir.path())
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            // Kept open: the client must not take a closed stdin for the end of the session.
            .stdin(std::process::Stdio::piped());
        command
            .kill_on_drop(true)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = command.spawn().unwrap();
        // Held until it exits: it treats the end of stdin as the end of the session.
        let _stdin = child.stdin.take();
        let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
            .await
            .expect("mcp-remote-client did not finish within 120 s")
            .unwrap();
        // It logs what it did, the tools it listed, then "Exiting OK".
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success(),
            "mcp-remote-client at {url}:\n{log}"
        );
        assert!(
            log.contains("\"echo\""),
            "no echo tool listed at {url}:\n{log}"
        );
        assert!(log.contains("Exiting OK"), "{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inspector_cli_completes_the_flow_on_two_services() {
    let setup = setup().await;
    let node = mcp_auth_e2e::tools::node_bin().unwrap();
    let cli = mcp_auth_e2e::tools::npm_prefix()
        .join("node_modules/@modelcontextprotocol/inspector/clients/cli/build/index.js");
    assert!(
        cli.is_file(),
        "{} is missing: run `cargo xtask install`",
        cli.display()
    );
    let home = tempfile::tempdir().unwrap();
    for url in urls(&setup.stack) {
        for method in [
            vec!["--method", "tools/list"],
            vec![
                "--method",
                "tools/call",
                "--tool-name",
                "echo",
                "--tool-arg",
                "message=hello from the inspector",
            ],
        ] {
            let mut command = tokio::process::Command::new(&node);
            command
                .arg(&cli)
                .arg(&url)
                .args(&method)
                .env("HOME", home.path())
                .env("MCP_AUTO_OPEN_ENABLED", "true")
                .env("BROWSER", clients_dir().join("browser.py"))
                .env_remove("DISPLAY")
                .env_remove("WAYLAND_DISPLAY")
                .stdin(std::process::Stdio::piped());
            let what = format!("inspector {} at {url}", method[1]);
            let stdout = run(command, &what).await;
            let expected = if method[1] == "tools/list" {
                "\"echo\""
            } else {
                "hello from the inspector"
            };
            assert!(stdout.contains(expected), "{what}: {stdout}");
        }
    }
}

/// Scenario name → passed, from the conformance runner's summary lines (`✓ name: …`).
fn conformance_results(output: &str) -> std::collections::BTreeMap<String, bool> {
    output
        .lines()
        .filter_map(|line| {
            let (passed, rest) = if let Some(rest) = line.strip_prefix("✓ ") {
                (true, rest)
            } else {
                (false, line.strip_prefix("✗ ")?)
            };
            Some((rest.split(':').next()?.trim().to_owned(), passed))
        })
        .collect()
}

async fn conformance_server(
    url: &str,
    requirements: &str,
) -> std::collections::BTreeMap<String, bool> {
    let bin = mcp_auth_e2e::tools::npm_prefix().join("node_modules/.bin/conformance");
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo xtask install`",
        bin.display()
    );
    let out = tempfile::tempdir().unwrap();
    let mut command = tokio::process::Command::new(bin);
    command
        .args(["server", "--url", url, "--requirements", requirements, "-o"])
        .arg(out.path())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(300), command.output())
        .await
        .expect("the conformance run did not finish within 300 s")
        .unwrap();
    // It exits non-zero when a scenario fails; the comparison below is what is asserted.
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let results = conformance_results(&text);
    assert!(!results.is_empty(), "no scenario results at {url}:\n{text}");
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_server_scenarios_pass_through_the_gateway_as_they_do_directly() {
    use mcp_auth_e2e::oauth::{VERIFIER, discover, exchange, params, register, sign_in};

    let github = FakeGitHub::start("conf-app", "conf-secret").await.unwrap();
    github.sign_in(FakeUser::new(583231, "octocat"));
    let stack = Stack::start_with(StackOptions {
        env: github.env(),
        ..Default::default()
    })
    .await
    .unwrap();
    let discovered = discover(&stack).await;
    let client_id = register(&discovered).await;
    let back = params(&sign_in(&stack, &discovered, &client_id).await);
    let (_, tokens) = exchange(&discovered, &client_id, &back["code"], VERIFIER).await;
    let envoy: std::net::SocketAddr = stack
        .envoy
        .url()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let proxy =
        mcp_auth_e2e::auth_proxy::AuthProxy::start(envoy, tokens["access_token"].as_str().unwrap())
            .await
            .unwrap();
    let through = format!("{}/everything/mcp", proxy.url());

    for requirements in ["2025-11-25", "2026-07-28"] {
        let direct = conformance_server(&stack.upstream.url(), requirements).await;
        let gateway = conformance_server(&through, requirements).await;
        let passing: Vec<&String> = direct.iter().filter(|(_, p)| **p).map(|(s, _)| s).collect();
        assert!(
            !passing.is_empty(),
            "{requirements}: nothing passes directly: {direct:?}"
        );
        let broken: Vec<&&String> = passing
            .iter()
            .filter(|s| gateway.get(**s) != Some(&true))
            .collect();
        assert!(
            broken.is_empty(),
            "{requirements}: scenarios that pass straight at the server but not through the gateway: {broken:?}\n\
             direct: {direct:?}\ngateway: {gateway:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_progress_and_the_legacy_session_wire_work_through_the_gateway() {
    use mcp_auth_e2e::mcp_client::McpSession;
    use mcp_auth_e2e::oauth::{VERIFIER, discover, exchange, params, register, sign_in};
    use reqwest::StatusCode;
    use std::time::Instant;

    let github = FakeGitHub::start("wire-app", "wire-secret").await.unwrap();
    github.sign_in(FakeUser::new(583231, "octocat"));
    let stack = Stack::start_with(StackOptions {
        env: github.env(),
        ..Default::default()
    })
    .await
    .unwrap();
    let discovered = discover(&stack).await;
    let client_id = register(&discovered).await;
    let back = params(&sign_in(&stack, &discovered, &client_id).await);
    let (_, tokens) = exchange(&discovered, &client_id, &back["code"], VERIFIER).await;
    let token = tokens["access_token"].as_str().unwrap().to_owned();
    let url = stack.url("/everything/mcp");

    // Legacy wire: initialize hands out a session id, which later requests carry.
    let initialize = reqwest::Client::new()
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(mcp_auth_e2e::oauth::INITIALIZE)
        .send()
        .await
        .unwrap();
    assert_eq!(initialize.status(), StatusCode::OK);
    let session = initialize.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let _ = initialize.text().await;
    let with_session = |request: reqwest::RequestBuilder| {
        request
            .bearer_auth(&token)
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-06-18")
    };
    let initialized = with_session(reqwest::Client::new().post(&url))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
        .send()
        .await
        .unwrap();
    assert!(
        initialized.status().is_success(),
        "{}",
        initialized.status()
    );

    // A tool that reports progress over two seconds: every event must arrive as it is sent,
    // not when the response ends (Envoy, the filter and ext_authz must not buffer SSE).
    let started = Instant::now();
    let mut call = with_session(reqwest::Client::new().post(&url))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"trigger-long-running-operation","arguments":{"duration":2,"steps":4},"_meta":{"progressToken":"p1"}}}"#,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(call.status(), StatusCode::OK);
    let mut body = String::new();
    let mut progress_at = Vec::new();
    let mut done_at = None;
    while let Some(chunk) = call.chunk().await.unwrap() {
        body.push_str(&String::from_utf8_lossy(&chunk));
        let seen = body.matches("notifications/progress").count();
        while progress_at.len() < seen {
            progress_at.push(started.elapsed());
        }
        if body.contains("Long running operation completed") {
            done_at = Some(started.elapsed());
            break;
        }
    }
    let done_at = done_at.unwrap_or_else(|| panic!("no result in the stream: {body}"));
    assert_eq!(progress_at.len(), 4, "{body}");
    assert!(
        progress_at[0] + Duration::from_millis(1000) < done_at,
        "the first progress event arrived at {:?}, the result at {done_at:?}: the stream was buffered",
        progress_at[0]
    );

    // GET opens the session's server-to-client SSE stream; DELETE ends the session.
    let get = with_session(reqwest::Client::new().get(&url))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::OK);
    assert!(
        get.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    drop(get);
    let delete = with_session(reqwest::Client::new().delete(&url))
        .send()
        .await
        .unwrap();
    assert!(delete.status().is_success(), "DELETE: {}", delete.status());
    let after = with_session(reqwest::Client::new().post(&url))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap();
    // The server's own refusal (server-everything answers 400 for an unknown session),
    // passed through: not the gateway's 401/403.
    assert!(
        after.status().is_client_error()
            && after.status() != StatusCode::UNAUTHORIZED
            && after.status() != StatusCode::FORBIDDEN,
        "the deleted session: {}",
        after.status()
    );

    // And a fresh session through the client helper still works.
    let (mut mcp, _) = McpSession::connect(&url, &token).await.unwrap();
    assert!(mcp.tool_names().await.unwrap().contains(&"echo".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_refreshes_with_rotation_and_the_old_refresh_token_is_refused() {
    use mcp_auth_e2e::oauth::{discover, token};

    let github = FakeGitHub::start("refresh-app", "refresh-secret")
        .await
        .unwrap();
    github.sign_in(FakeUser::new(583231, "octocat"));
    let stack = Stack::start_with(StackOptions {
        env: github.env(),
        // Access tokens of 2 s: the SDK must refresh within the test. No retry grace, so the
        // old refresh token replayed at once is reuse (the authserver's API tests cover the
        // grace).
        extra_config: "tokens: { access_token: 2s, refresh_reuse_grace: 0s }".to_owned(),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut command = tokio::process::Command::new(workspace_root().join(".tools/venv/bin/python"));
    command
        .arg(clients_dir().join("python_sdk.py"))
        .arg("--refresh")
        .arg(stack.url("/everything/mcp"));
    let stdout = run(command, "mcp 2.x client with refresh").await;
    let line = stdout
        .lines()
        .find(|l| l.starts_with("REFRESH "))
        .unwrap_or_else(|| panic!("no refresh reported:\n{stdout}"));
    let mut parts = line.split(' ').skip(1);
    let (old, new, client_id) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    assert_ne!(old, new, "the refresh token was not rotated");
    assert!(line.contains("hello from the python sdk"), "{line}");

    // The rotated-out refresh token is refused (and revokes the grant: RFC 9700 §4.14.2).
    let discovered = discover(&stack).await;
    let replay = [
        ("grant_type", "refresh_token"),
        ("refresh_token", old),
        ("client_id", client_id),
    ];
    let (status, body) = token(&discovered, &replay).await;
    assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");
    // The replay revoked the grant: the SDK's current refresh token is dead too.
    let current = [
        ("grant_type", "refresh_token"),
        ("refresh_token", new),
        ("client_id", client_id),
    ];
    let (status, body) = token(&discovered, &current).await;
    assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "{body}");
}

//! The service catalogue through the gateway: each of the seed's MCP services, run the way
//! `cargo xtask up` runs it (stdio servers under the wrapper), gets a token for its own
//! resource and answers `initialize`, `tools/list` and a real `tools/call` through Envoy,
//! the filter and ext_authz.

// Helpers outside `#[test]` functions: a failed step should fail loudly, at the step.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;

use mcp_auth_e2e::catalogue::{Catalogue, free_port};
use mcp_auth_e2e::fake_github::{FakeGitHub, FakeUser};
use mcp_auth_e2e::mcp_client::McpSession;
use mcp_auth_e2e::oauth::{Discovered, VERIFIER, discover, exchange, params, register, sign_in};
use mcp_auth_e2e::stack::{Stack, StackOptions};
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The host name the `fetchs` server fetches through its proxy (there is no internet here).
const PROXIED_HOST: &str = "catalogue.test";

/// A page for the fetch servers and the browser to fetch (there is no internet here):
/// `/page` is HTML, everything else (robots.txt included) 404. It is also the HTTP proxy of
/// the `fetchs` server, whose own guard refuses loopback addresses: as a proxy it is asked
/// for `http://catalogue.test/page`.
async fn serve_page() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = stream.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]);
                let target = request.split(' ').nth(1).unwrap_or_default();
                let proxied = format!("http://{PROXIED_HOST}");
                let path = target.strip_prefix(proxied.as_str()).unwrap_or(target);
                let (status, body) = if request.starts_with("GET ") && path == "/page" {
                    (
                        "200 OK",
                        "<html><head><title>Gateway catalogue</title></head><body><h1>Gateway catalogue</h1><p>fetched through mcp-mesh-auth</p></body></html>",
                    )
                } else {
                    ("404 Not Found", "not found")
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    addr
}

/// A `services:` entry whose `run` command the catalogue starts (`transport` http or stdio).
fn entry(
    name: &str,
    port: u16,
    transport: &str,
    command: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> String {
    let env: serde_json::Map<String, serde_json::Value> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    format!(
        "  - name: {name}\n    upstream:\n      url: http://127.0.0.1:{port}/mcp\n      transport: {transport}\n      run: {{ command: {command}, args: {}, env: {} }}\n",
        serde_json::to_string(args).unwrap(),
        serde_json::to_string(&env).unwrap()
    )
}

fn stdio(name: &str, port: u16, command: &str, args: &[&str]) -> String {
    entry(name, port, "stdio", command, args, &[])
}

/// A streamable-HTTP server that takes `--host` and `--port`, then `args`.
fn http(name: &str, port: u16, command: &str, args: &[&str]) -> String {
    let port_arg = port.to_string();
    let all: Vec<&str> = ["--host", "127.0.0.1", "--port", &port_arg]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    entry(name, port, "http", command, &all, &[])
}

/// Stops the `tmux` service's tmux server (a daemon of its own, outside the service's
/// process group), on failure too.
struct TmuxServer(std::path::PathBuf);

impl Drop for TmuxServer {
    fn drop(&mut self) {
        let _ = std::process::Command::new("tmux")
            .env("TMUX_TMPDIR", &self.0)
            .arg("kill-server")
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// A token for `service`'s resource, through the whole flow.
async fn token_for(
    stack: &Stack,
    discovered: &Discovered,
    client_id: &str,
    service: &str,
) -> String {
    let discovered = Discovered {
        resource: format!("{}/{service}/mcp", stack.issuer()),
        metadata: discovered.metadata.clone(),
    };
    let back = params(&sign_in(stack, &discovered, client_id).await);
    let (status, tokens) = exchange(&discovered, client_id, &back["code"], VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{service}: {tokens}");
    tokens["access_token"].as_str().unwrap().to_owned()
}

async fn session(stack: &Stack, token: &str, service: &str) -> McpSession {
    let (session, info) = McpSession::connect(&stack.url(&format!("/{service}/mcp")), token)
        .await
        .unwrap_or_else(|e| panic!("{service}: {e:#}"));
    assert!(info["serverInfo"]["name"].is_string(), "{service}: {info}");
    session
}

fn assert_tool(tools: &[String], name: &str, service: &str) {
    assert!(
        tools.iter().any(|t| t == name),
        "{service}: no {name} in {tools:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_catalogue_service_works_through_the_gateway() {
    let github = FakeGitHub::start("cat-app", "cat-secret").await.unwrap();
    github.sign_in(FakeUser::new(583231, "octocat"));
    let sandbox = tempfile::tempdir().unwrap();
    let sandbox_path = sandbox.path().canonicalize().unwrap();
    let sandbox_str = sandbox_path.to_str().unwrap();
    let page = serve_page().await;
    let proxy = format!("http://{page}");
    let fetchs_port = free_port().unwrap();
    let fetchs_port_str = fetchs_port.to_string();
    let tmux_dir = tempfile::tempdir().unwrap();
    let tmux_server = TmuxServer(tmux_dir.path().to_owned());
    let chromium = mcp_auth_e2e::tools::chromium_bin().unwrap();
    let services = [
        http(
            "echo-stateful",
            free_port().unwrap(),
            "mcp-echo-streamablehttp-server-stateful",
            &[],
        ),
        http(
            "echo-stateless",
            free_port().unwrap(),
            "mcp-echo-streamablehttp-server-stateless",
            &[],
        ),
        // As the shipped config has it, with the page as its egress proxy.
        entry(
            "fetchs",
            fetchs_port,
            "http",
            "mcp-fetch-streamablehttp-server",
            &[],
            &[
                ("HOST", "127.0.0.1"),
                ("PORT", &fetchs_port_str),
                ("MCP_SERVER_NAME", "fetchs"),
                ("MCP_SERVER_VERSION", "0.2.0"),
                ("MCP_PROTOCOL_VERSION", "2025-06-18"),
                ("HTTP_PROXY", &proxy),
                ("http_proxy", &proxy),
            ],
        ),
        // Off by default in the shipped config (MCP_PLAYWRIGHT_ENABLED); on here, with the
        // shipped flags: Debian's Chromium, headless, no sandbox, the profile in memory.
        http(
            "playwright",
            free_port().unwrap(),
            "playwright-mcp",
            &[
                "--browser",
                "chromium",
                "--executable-path",
                chromium.to_str().unwrap(),
                "--headless",
                "--no-sandbox",
                "--isolated",
                "--output-dir",
                ".",
            ],
        ),
        stdio("memory", free_port().unwrap(), "mcp-server-memory", &[]),
        stdio(
            "filesystem",
            free_port().unwrap(),
            "mcp-server-filesystem",
            &[sandbox_str],
        ),
        stdio(
            "sequential-thinking",
            free_port().unwrap(),
            "mcp-server-sequential-thinking",
            &[],
        ),
        stdio("time", free_port().unwrap(), "mcp-server-time", &[]),
        // The page is on loopback (no internet here): fetch's own switch for that; the
        // shipped config keeps its default, which refuses private addresses (SSRF).
        stdio(
            "fetch",
            free_port().unwrap(),
            "mcp-server-fetch",
            &["--allow-private-ips"],
        ),
        entry(
            "tmux",
            free_port().unwrap(),
            "stdio",
            "mcp-tmux",
            &[],
            &[("TMUX_TMPDIR", tmux_dir.path().to_str().unwrap())],
        ),
    ]
    .concat();
    let stack = Stack::start_with(StackOptions {
        env: github.env(),
        extra_services: services,
        ..Default::default()
    })
    .await
    .unwrap();
    let catalogue = Catalogue::start(&stack.config).await.unwrap();
    let discovered = discover(&stack).await;
    let client_id = register(&discovered).await;
    let mut checked = Vec::new();

    for service in ["echo-stateful", "echo-stateless"] {
        let token = token_for(&stack, &discovered, &client_id, service).await;
        let mut mcp = session(&stack, &token, service).await;
        let tools = mcp.tool_names().await.unwrap();
        assert_tool(&tools, "echo", service);
        let result = mcp
            .call("echo", json!({"message": "through the gateway"}))
            .await
            .unwrap();
        assert!(
            McpSession::text(&result).contains("through the gateway"),
            "{service}: {result}"
        );
        checked.push(service);
    }

    let token = token_for(&stack, &discovered, &client_id, "memory").await;
    let mut mcp = session(&stack, &token, "memory").await;
    assert_tool(
        &mcp.tool_names().await.unwrap(),
        "create_entities",
        "memory",
    );
    mcp.call(
        "create_entities",
        json!({"entities": [{"name": "mcp-mesh-auth", "entityType": "project", "observations": ["guards the catalogue"]}]}),
    )
    .await
    .unwrap();
    let graph = mcp.call("read_graph", json!({})).await.unwrap();
    assert!(
        McpSession::text(&graph).contains("guards the catalogue"),
        "{graph}"
    );
    checked.push("memory");

    let token = token_for(&stack, &discovered, &client_id, "filesystem").await;
    let mut mcp = session(&stack, &token, "filesystem").await;
    assert_tool(&mcp.tool_names().await.unwrap(), "write_file", "filesystem");
    let inside = format!("{sandbox_str}/note.txt");
    mcp.call(
        "write_file",
        json!({"path": inside, "content": "sandboxed"}),
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read_to_string(&inside).unwrap(), "sandboxed");
    let read = mcp
        .call("read_text_file", json!({"path": inside}))
        .await
        .unwrap();
    assert!(McpSession::text(&read).contains("sandboxed"), "{read}");
    let outside = mcp
        .call("read_text_file", json!({"path": "/etc/hostname"}))
        .await;
    let escaped = outside
        .as_ref()
        .map(|r| r["isError"] != json!(true))
        .unwrap_or(false);
    assert!(!escaped, "read outside the sandbox: {outside:?}");
    checked.push("filesystem");

    let token = token_for(&stack, &discovered, &client_id, "sequential-thinking").await;
    let mut mcp = session(&stack, &token, "sequential-thinking").await;
    let tools = mcp.tool_names().await.unwrap();
    assert_tool(&tools, "sequentialthinking", "sequential-thinking");
    let thought = mcp
        .call(
            "sequentialthinking",
            json!({"thought": "Is the token checked?", "thoughtNumber": 1, "totalThoughts": 1, "nextThoughtNeeded": false}),
        )
        .await
        .unwrap();
    assert_ne!(thought["isError"], json!(true), "{thought}");
    checked.push("sequential-thinking");

    let token = token_for(&stack, &discovered, &client_id, "time").await;
    let mut mcp = session(&stack, &token, "time").await;
    assert_tool(&mcp.tool_names().await.unwrap(), "get_current_time", "time");
    let now = mcp
        .call("get_current_time", json!({"timezone": "UTC"}))
        .await
        .unwrap();
    assert!(McpSession::text(&now).contains("UTC"), "{now}");
    checked.push("time");

    let token = token_for(&stack, &discovered, &client_id, "fetch").await;
    let mut mcp = session(&stack, &token, "fetch").await;
    assert_tool(&mcp.tool_names().await.unwrap(), "fetch", "fetch");
    let fetched = mcp
        .call("fetch", json!({"url": format!("http://{page}/page")}))
        .await
        .unwrap();
    assert!(
        McpSession::text(&fetched).contains("fetched through mcp-mesh-auth"),
        "{fetched}\n{}",
        catalogue.log("fetch")
    );
    checked.push("fetch");

    let token = token_for(&stack, &discovered, &client_id, "fetchs").await;
    let mut mcp = session(&stack, &token, "fetchs").await;
    assert_tool(&mcp.tool_names().await.unwrap(), "fetch", "fetchs");
    let fetched = mcp
        .call(
            "fetch",
            json!({"url": format!("http://{PROXIED_HOST}/page")}),
        )
        .await
        .unwrap();
    assert!(
        McpSession::text(&fetched).contains("fetched through mcp-mesh-auth"),
        "{fetched}\n{}",
        catalogue.log("fetchs")
    );
    // Its own guard: loopback is refused before any request leaves.
    let refused = mcp
        .call("fetch", json!({"url": format!("http://{page}/page")}))
        .await
        .unwrap();
    assert_eq!(refused["isError"], json!(true), "{refused}");
    checked.push("fetchs");

    let token = token_for(&stack, &discovered, &client_id, "playwright").await;
    let mut mcp = session(&stack, &token, "playwright").await;
    assert_tool(
        &mcp.tool_names().await.unwrap(),
        "browser_navigate",
        "playwright",
    );
    let navigated = mcp
        .call(
            "browser_navigate",
            json!({"url": format!("http://{page}/page")}),
        )
        .await
        .unwrap();
    assert!(
        McpSession::text(&navigated).contains("Page Title: Gateway catalogue"),
        "{navigated}\n{}",
        catalogue.log("playwright")
    );
    checked.push("playwright");

    let token = token_for(&stack, &discovered, &client_id, "tmux").await;
    let mut mcp = session(&stack, &token, "tmux").await;
    assert_tool(&mcp.tool_names().await.unwrap(), "run_in_terminal", "tmux");
    let started = mcp
        .call(
            "run_in_terminal",
            json!({"command": "echo catalogue-$((6 * 7))", "project": "catalogue"}),
        )
        .await
        .unwrap();
    assert!(
        McpSession::text(&started).contains("\"success\": true"),
        "{started}\n{}",
        catalogue.log("tmux")
    );
    // The shell's answer (the arithmetic done; the typed line has `$((6 * 7))`) on its screen.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let screen = mcp
            .call("get_terminal_output", json!({"project": "catalogue"}))
            .await
            .unwrap();
        if McpSession::text(&screen).contains("catalogue-42") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no catalogue-42 on the tmux screen: {screen}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    mcp.call("kill_session", json!({"project": "catalogue"}))
        .await
        .unwrap();
    drop(tmux_server);
    checked.push("tmux");

    // A token for one catalogue service is refused by another.
    let response = reqwest::Client::new()
        .post(stack.url("/memory/mcp"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(checked.len(), 10, "{checked:?}");
}

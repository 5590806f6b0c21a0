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

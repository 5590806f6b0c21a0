//! `mcp_policy` end to end, in both ext_authz modes, with real MCP servers: server-everything
//! (SSE responses), the stateless echo server (JSON responses) and server-filesystem (stdio,
//! wrapped), and the official Python SDK as the client.
//!
//! The policy is the shipped example's: `get-env` of everything is reserved to the team
//! `acme/admins`; on filesystem the tools that write need `mcp:write`, obtained by step-up.
//! The stateless echo server's `environmentDump` is reserved the same way (JSON listings).

// Helpers outside `#[test]` functions: a failed step should fail loudly, at the step.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use std::path::PathBuf;
use std::time::Duration;

use mcp_auth_e2e::catalogue::{Catalogue, free_port};
use mcp_auth_e2e::fake_github::{FakeGitHub, FakeUser};
use mcp_auth_e2e::oauth::{Discovered, VERIFIER, discover, exchange, params, register, sign_in};
use mcp_auth_e2e::stack::{Stack, StackOptions};
use mcp_auth_e2e::tools::workspace_root;
use reqwest::StatusCode;
use serde_json::{Value, json};

const POLICY: &str = r#"mcp_policy:
  max_body_bytes: 4096
  rules:
    - { name: everything-get-env-admins, services: [everything], methods: [tools/call], names: [get-env], allow: { teams: [acme/admins] } }
    - { name: stateless-env-admins, services: [echo-stateless], methods: [tools/call], names: [environmentDump], allow: { teams: [acme/admins] } }
    - { name: filesystem-writes, services: [filesystem], methods: [tools/call], names: [write_file, edit_file, create_directory, move_file], scopes: ["mcp:write"] }
"#;

struct PolicyStack {
    stack: Stack,
    github: FakeGitHub,
    sandbox: tempfile::TempDir,
    _catalogue: Catalogue,
}

fn admin() -> FakeUser {
    FakeUser::new(583231, "octocat").in_team("acme/admins")
}

fn stranger() -> FakeUser {
    FakeUser::new(424242, "mallory").in_team("acme/interns")
}

async fn policy_stack(fast_mode: bool) -> PolicyStack {
    mcp_auth_e2e::log_capture::install();
    let github = FakeGitHub::start("policy-app", "policy-secret")
        .await
        .unwrap();
    github.sign_in(admin());
    let sandbox = tempfile::tempdir().unwrap();
    let sandbox_path = sandbox.path().canonicalize().unwrap();
    let (fs_port, echo_port) = (free_port().unwrap(), free_port().unwrap());
    let extra_services = format!(
        "  - name: filesystem\n    upstream:\n      url: http://127.0.0.1:{fs_port}/mcp\n      transport: stdio\n      run: {{ command: mcp-server-filesystem, args: [{sandbox:?}] }}\n    scopes: [\"mcp:read\", \"mcp:write\"]\n    required_scopes: [\"mcp:read\"]\n    scope_descriptions: {{ \"mcp:read\": \"Read the sandbox\", \"mcp:write\": \"Change the files of the sandbox\" }}\n  - name: echo-stateless\n    upstream:\n      url: http://127.0.0.1:{echo_port}/mcp\n      run: {{ command: mcp-echo-streamablehttp-server-stateless, args: [--host, 127.0.0.1, --port, \"{echo_port}\"] }}\n",
        sandbox = sandbox_path.to_str().unwrap(),
    );
    let stack = Stack::start_with(StackOptions {
        env: github.env(),
        extra_services,
        extra_config: POLICY.into(),
        fast_mode,
        ..Default::default()
    })
    .await
    .unwrap();
    let catalogue = Catalogue::start(&stack.config).await.unwrap();
    PolicyStack {
        stack,
        github,
        sandbox,
        _catalogue: catalogue,
    }
}

fn python() -> PathBuf {
    let python = workspace_root().join(".tools/venv/bin/python");
    assert!(python.is_file(), "run `cargo xtask install`");
    python
}

/// Runs tests/clients/python_policy.py; its output lines.
async fn python_policy(args: &[&str]) -> Vec<String> {
    let mut command = tokio::process::Command::new(python());
    command
        .arg(workspace_root().join("tests/clients/python_policy.py"))
        .args(args)
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("the Python SDK did not finish within 120 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "python_policy.py {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout.lines().map(str::to_owned).collect()
}

fn line<'a>(lines: &'a [String], prefix: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} line in {lines:?}"))
}

/// The Python SDK lists everything's tools and calls `get-env`: an admin sees and calls it;
/// anyone else is not shown it and is refused; the audit log says who and why.
async fn get_env_is_for_admins_only(fast_mode: bool) {
    let s = policy_stack(fast_mode).await;
    let url = s.stack.url("/everything/mcp");
    let lines = python_policy(&["everything", &url]).await;
    let tools = line(&lines, "TOOLS ");
    assert!(tools.split(' ').any(|t| t == "get-env"), "{tools}");
    assert!(
        line(&lines, "CALL get-env").starts_with("CALL get-env ok"),
        "{lines:?}"
    );

    s.github.sign_in(stranger());
    let lines = python_policy(&["everything", &url]).await;
    let tools = line(&lines, "TOOLS ");
    assert!(!tools.split(' ').any(|t| t == "get-env"), "{tools}");
    assert!(tools.split(' ').any(|t| t == "echo"), "{tools}");
    let call = line(&lines, "CALL get-env");
    assert!(call.starts_with("CALL get-env refused"), "{call}");

    let audit = mcp_auth_e2e::log_capture::contents();
    let denied = audit
        .lines()
        .filter_map(|l| l.find('{').map(|i| &l[i..]))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|a| a["login"] == "mallory" && a["decision"] == "deny")
        .unwrap_or_else(|| panic!("no audit line of the refusal"));
    assert_eq!(denied["rule"], "everything-get-env-admins");
    assert_eq!(denied["method"], "tools/call");
    assert_eq!(denied["name"], "get-env");
    assert_eq!(denied["service"], "everything");
    assert_eq!(denied["user_id"], "424242");
    assert!(denied["time"].as_str().unwrap().ends_with('Z'));
    assert!(!audit.contains("Bearer "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_env_is_listed_and_callable_for_admins_only_per_request() {
    get_env_is_for_admins_only(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_env_is_listed_and_callable_for_admins_only_fast_mode() {
    get_env_is_for_admins_only(true).await;
}

/// The Python SDK writes a file on filesystem: its first token (`mcp:read`, what the
/// challenge asks for) gets 403 insufficient_scope, it re-authorizes with `mcp:write` (shown
/// on the consent page) and the retried call writes the file.
async fn writing_needs_a_step_up(fast_mode: bool) {
    let s = policy_stack(fast_mode).await;
    let target = s.sandbox.path().canonicalize().unwrap().join("note.txt");
    let lines = python_policy(&[
        "filesystem",
        &s.stack.url("/filesystem/mcp"),
        target.to_str().unwrap(),
    ])
    .await;
    assert!(line(&lines, "TOOLS ").contains("write_file"), "{lines:?}");
    assert!(
        line(&lines, "CALL write_file").starts_with("CALL write_file ok"),
        "{lines:?}"
    );
    let scope = line(&lines, "SCOPE ");
    assert!(scope.split(' ').any(|s| s == "mcp:write"), "{scope}");
    assert_eq!(line(&lines, "CONSENT 0"), "CONSENT 0 mcp:read");
    assert!(line(&lines, "CONSENT 1").contains("mcp:write"), "{lines:?}");
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "written through the gateway"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writing_a_file_needs_a_step_up_to_mcp_write_per_request() {
    writing_needs_a_step_up(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writing_a_file_needs_a_step_up_to_mcp_write_fast_mode() {
    writing_needs_a_step_up(true).await;
}

/// A token for `service` of the user signed in at the fake GitHub.
async fn token_for(stack: &Stack, service: &str) -> String {
    let discovered = discover(stack).await;
    let discovered = Discovered {
        resource: format!("{}/{service}/mcp", stack.issuer()),
        metadata: discovered.metadata,
    };
    let client_id = register(&discovered).await;
    let back = params(&sign_in(stack, &discovered, &client_id).await);
    let (status, tokens) = exchange(&discovered, &client_id, &back["code"], VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    tokens["access_token"].as_str().unwrap().to_owned()
}

/// POSTs `body` to `service` as the stateless 2025-06-18 client it is, with `extra` headers.
async fn post(
    stack: &Stack,
    service: &str,
    token: &str,
    body: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(stack.url(&format!("/{service}/mcp")))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .body(body.to_owned());
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

fn call(id: u64, name: &str) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": {"message": "hi"}}}).to_string()
}

const TOOLS_LIST: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;

/// The tool names of a `tools/list` response, JSON or SSE.
async fn listed(response: reqwest::Response) -> (String, Vec<String>) {
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let text = response.text().await.unwrap();
    let message: Value = if content_type.starts_with("text/event-stream") {
        let data: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim)
            .filter(|d| d.contains("\"tools\""))
            .collect();
        serde_json::from_str(data.first().unwrap_or(&"null")).unwrap()
    } else {
        serde_json::from_str(&text).unwrap()
    };
    let names = message["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("not a tools/list result: {text}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    (content_type, names)
}

/// Listings in both framings, refusals of every kind with their exact answers, 2026-07-28
/// routing headers checked against the body, and a policy change applied live.
async fn raw_requests_are_decided_on_their_json_rpc(fast_mode: bool) {
    let s = policy_stack(fast_mode).await;
    let stack = &s.stack;
    let admin_token = token_for(stack, "echo-stateless").await;
    s.github.sign_in(stranger());
    let token = token_for(stack, "echo-stateless").await;
    let everything = token_for(stack, "everything").await;

    // JSON listings (the stateless echo server), filtered per caller.
    let (content_type, names) =
        listed(post(stack, "echo-stateless", &token, TOOLS_LIST, &[]).await).await;
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert!(
        names.contains(&"echo".to_owned()) && !names.contains(&"environmentDump".to_owned()),
        "{names:?}"
    );
    let (_, names) =
        listed(post(stack, "echo-stateless", &admin_token, TOOLS_LIST, &[]).await).await;
    assert!(names.contains(&"environmentDump".to_owned()), "{names:?}");
    // SSE listings (server-everything), filtered as they stream.
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"policy-test","version":"1"}}}).to_string();
    let response = post(stack, "everything", &everything, &init, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let (content_type, names) = listed(
        post(
            stack,
            "everything",
            &everything,
            TOOLS_LIST,
            &[("mcp-session-id", &session)],
        )
        .await,
    )
    .await;
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    assert!(
        names.contains(&"echo".to_owned()) && !names.contains(&"get-env".to_owned()),
        "{names:?}"
    );

    // Refused for who the caller is: a JSON-RPC error with the request's id.
    let response = post(
        stack,
        "echo-stateless",
        &token,
        &call(7, "environmentDump"),
        &[],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], 7);
    assert_eq!(body["error"]["code"], -32003);
    assert_eq!(
        body["error"]["message"],
        "tools/call environmentDump is not allowed for you"
    );
    // A batch with one denied element is refused whole.
    let batch = format!("[{TOOLS_LIST},{}]", call(8, "environmentDump"));
    assert_eq!(
        post(stack, "echo-stateless", &token, &batch, &[])
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    // An allowed call passes.
    let response = post(stack, "echo-stateless", &token, &call(9, "echo"), &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains("hi"));

    // MCP 2026-07-28 routing headers: believed only when they name the body's operation.
    let echo = call(10, "echo");
    let matching = post(
        stack,
        "echo-stateless",
        &token,
        &echo,
        &[("mcp-method", "tools/call"), ("mcp-name", "echo")],
    )
    .await;
    assert_eq!(matching.status(), StatusCode::OK);
    for (case, headers) in [
        (
            "name header of another tool",
            [
                ("mcp-method", "tools/call"),
                ("mcp-name", "environmentDump"),
            ],
        ),
        (
            "method header of another method",
            [("mcp-method", "tools/list"), ("mcp-name", "echo")],
        ),
    ] {
        let response = post(stack, "echo-stateless", &token, &echo, &headers).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{case}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], -32020, "{case}");
    }
    // A header claiming an allowed tool does not let a denied body through.
    let sneaky = post(
        stack,
        "echo-stateless",
        &token,
        &call(11, "environmentDump"),
        &[("mcp-method", "tools/call"), ("mcp-name", "echo")],
    )
    .await;
    assert_eq!(sneaky.status(), StatusCode::BAD_REQUEST);

    // Bodies that cannot be decided on.
    let big = call(12, &"x".repeat(5000));
    for (case, body, content_type, status, code) in [
        ("not JSON", "{", "application/json", 400, Some(-32700)),
        (
            "tools/call without a name",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#,
            "application/json",
            400,
            Some(-32602),
        ),
        (
            "a content type that lies",
            echo.as_str(),
            "text/plain",
            415,
            Some(-32600),
        ),
        (
            "over max_body_bytes",
            big.as_str(),
            "application/json",
            413,
            None,
        ),
    ] {
        let response = reqwest::Client::new()
            .post(stack.url("/echo-stateless/mcp"))
            .bearer_auth(&token)
            .header("content-type", content_type)
            .header("accept", "application/json, text/event-stream")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{case}");
        if let Some(code) = code {
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], code, "{case}");
        }
    }

    // A policy change on disk is in force within a second, without restarting Envoy.
    let yaml = std::fs::read_to_string(&stack.config_path).unwrap();
    let opened = yaml.replace(
        "names: [environmentDump], allow: { teams: [acme/admins] }",
        "names: [environmentDump]",
    );
    assert_ne!(yaml, opened);
    std::fs::write(&stack.config_path, opened).unwrap();
    let changed = std::time::Instant::now();
    mcp_auth_e2e::poll::until(
        "the opened tool to be callable",
        Duration::from_secs(3),
        || async {
            (post(
                stack,
                "echo-stateless",
                &token,
                &call(13, "environmentDump"),
                &[],
            )
            .await
            .status()
                == StatusCode::OK)
                .then_some(())
        },
    )
    .await
    .unwrap();
    assert!(
        changed.elapsed() < Duration::from_millis(1500),
        "{:?}",
        changed.elapsed()
    );
    let (_, names) = listed(post(stack, "echo-stateless", &token, TOOLS_LIST, &[]).await).await;
    assert!(names.contains(&"environmentDump".to_owned()), "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_requests_are_decided_on_their_json_rpc_per_request() {
    raw_requests_are_decided_on_their_json_rpc(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_requests_are_decided_on_their_json_rpc_fast_mode() {
    raw_requests_are_decided_on_their_json_rpc(true).await;
}

//! The `mcp_policy` scenarios' workload: the policy (the shipped example's two rules and two
//! on the bench service), a ~1 KiB `tools/call` it allows the bench user, and a 50-tool
//! `tools/list` answer of which it hides [`HIDDEN`] from them. Before any load, [`check`]
//! proves that the policy is in force where the scenario says it is, so a number never
//! measures a chain that lets everything through.
//!
//! The list is answered as one server-sent event, as the MCP SDKs' streamable HTTP servers
//! answer a POST by default (and as the bench's `everything` does). Not yet as
//! `application/json`: in the bench the filter never answered a filtered JSON list (504 at
//! Envoy's stream timeout). It holds a JSON result's headers while it reads the body, and
//! Envoy's wasm host turns a paused header phase into "stop all", so the body never reaches
//! it; measure JSON too once the filter no longer pauses there.

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// Added to the bench gateway config of the policy scenarios: the example's `filesystem`
/// service (its rule must name a service that exists and a scope it offers) and the policy.
/// The bench user (`octocat`, in no team) may call `echo` by name; `get-env` and the
/// `admin-*` tools are reserved for `acme/admins`.
pub const CONFIG: &str = r#"  - name: filesystem
    upstream: { url: "http://127.0.0.1:9/mcp" }
    scopes: ["mcp:read", "mcp:write"]
mcp_policy:
  rules:
    - name: everything-get-env-admins
      services: [everything]
      methods: [tools/call]
      names: [get-env]
      allow: { teams: [acme/admins] }
    - name: filesystem-writes
      services: [filesystem]
      methods: [tools/call]
      names: [write_file, edit_file, create_directory, move_file]
      scopes: ["mcp:write"]
    - name: everything-admin-tools
      services: [everything]
      methods: [tools/call]
      names: ["admin-*"]
      allow: { teams: [acme/admins] }
    - name: everything-echo
      services: [everything]
      methods: [tools/call]
      names: [echo]
      allow: { users: [octocat] }
"#;

/// The tool the call scenarios call (allowed by the last rule, after three that miss).
const CALLED_TOOL: &str = "echo";
/// Tools in the list answer.
pub const LISTED: usize = 50;
/// Of which the policy hides from the bench user: `get-env` and `admin-1`…`admin-9`.
pub const HIDDEN: usize = 10;
/// Size the `tools/call` body is padded to.
const CALL_BYTES: usize = 1024;

/// A `tools/call` of [`CALLED_TOOL`] of about [`CALL_BYTES`].
pub fn call_body() -> String {
    call_of(CALLED_TOOL, CALL_BYTES)
}

fn call_of(tool: &str, size: usize) -> String {
    let with = |message: &str| {
        json!({
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": tool, "arguments": {"message": message}},
        })
        .to_string()
    };
    let bare = with("").len();
    with(&"x".repeat(size.saturating_sub(bare)))
}

/// The names of the listed tools, hidden ones first.
fn tool_names() -> Vec<String> {
    let mut names = vec!["get-env".to_owned()];
    names.extend((1..HIDDEN).map(|i| format!("admin-{i}")));
    names.push(CALLED_TOOL.to_owned());
    names.extend((names.len()..LISTED).map(|i| format!("tool-{i:02}")));
    names
}

fn hidden(name: &str) -> bool {
    name == "get-env" || name.starts_with("admin-")
}

/// `Content-Type` of [`list_answer`].
pub const LIST_CONTENT_TYPE: &str = "text/event-stream";

/// The MCP server's answer to `tools/list`: [`LISTED`] tools as servers describe them, in
/// one SSE event.
pub fn list_answer() -> String {
    format!("event: message\ndata: {}\n\n", list_result())
}

fn list_result() -> String {
    let tools: Vec<Value> = tool_names()
        .iter()
        .map(|name| {
            json!({
                "name": name,
                "description": format!("Bench tool {name}: answers with its arguments"),
                "inputSchema": {
                    "type": "object",
                    "properties": {"text": {"type": "string", "description": "Any text"}},
                    "required": ["text"],
                },
            })
        })
        .collect();
    json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": tools}}).to_string()
}

/// What [`check`] expects of a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The policy decides the call: `echo` passes, `get-env` is refused with 403.
    PolicyDecidesCalls,
    /// The list comes back whole.
    WholeList,
    /// The list comes back without the [`HIDDEN`] tools.
    FilteredList,
}

/// Fails unless `url` behaves as `expect` says for `token`.
pub async fn check(url: &str, token: &str, expect: Expect) -> Result<()> {
    // A hung answer is found in seconds, not at Envoy's stream timeout.
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()?;
    let post = |body: String| {
        client
            .post(url)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body)
            .send()
    };
    match expect {
        Expect::PolicyDecidesCalls => {
            let allowed = post(call_body()).await?.status();
            let denied = post(call_of("get-env", CALL_BYTES)).await?;
            let status = denied.status();
            if !allowed.is_success() || status != reqwest::StatusCode::FORBIDDEN {
                bail!(
                    "the policy does not decide calls at {url}: echo {allowed}, get-env {status} {}",
                    denied.text().await.unwrap_or_default()
                );
            }
        }
        Expect::WholeList | Expect::FilteredList => {
            let response = post(super::wrk::LIST_BODY.to_owned()).await?;
            let status = response.status();
            let text = response.text().await?;
            let listed = listed_tools(&text)
                .with_context(|| format!("no tools/list result at {url}: {status} {text}"))?;
            let want: Vec<String> = tool_names()
                .into_iter()
                .filter(|name| expect == Expect::WholeList || !hidden(name))
                .collect();
            if listed != want {
                bail!(
                    "{url} lists {} tools, expected {} ({expect:?}): {listed:?}",
                    listed.len(),
                    want.len()
                );
            }
        }
    }
    Ok(())
}

/// The tool names of a `tools/list` result, JSON or one SSE event.
fn listed_tools(text: &str) -> Option<Vec<String>> {
    let data: String = match text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .collect::<Vec<_>>()
    {
        lines if lines.is_empty() => text.to_owned(),
        lines => lines
            .iter()
            .map(|l| l.trim_start())
            .collect::<Vec<_>>()
            .join("\n"),
    };
    let message: Value = serde_json::from_str(&data).ok()?;
    let tools = message["result"]["tools"].as_array()?;
    Some(
        tools
            .iter()
            .filter_map(|t| t["name"].as_str().map(str::to_owned))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::scenarios::SERVICE;

    #[test]
    fn the_call_is_about_one_kib_and_the_list_has_its_tools() {
        assert_eq!(call_body().len(), CALL_BYTES);
        let names = tool_names();
        assert_eq!(names.len(), LISTED);
        assert_eq!(names.iter().filter(|n| hidden(n)).count(), HIDDEN);
        assert!(!hidden(CALLED_TOOL));
        assert_eq!(listed_tools(&list_answer()).unwrap(), names);
        assert_eq!(listed_tools(&list_result()).unwrap(), names);
        assert!(list_answer().ends_with("}\n\n"));
    }

    #[test]
    fn the_policy_is_a_valid_config_section() {
        let yaml = format!("services:\n  - name: {SERVICE}\n{CONFIG}");
        let doc: Value = serde_yaml_ng::from_str(&yaml).unwrap();
        assert_eq!(doc["services"].as_array().unwrap().len(), 2);
        let rules = doc["mcp_policy"]["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 4);
        // The rules are written for the bench's service.
        assert_eq!(rules[0]["services"][0], SERVICE);
    }
}

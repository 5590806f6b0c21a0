//! A minimal streamable-HTTP MCP client (JSON-RPC over POST, JSON or SSE answers, the
//! `Mcp-Session-Id` of stateful servers), for driving real servers through the gateway.

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// One MCP session at `url`, authorized with a bearer token.
pub struct McpSession {
    http: reqwest::Client,
    url: String,
    token: String,
    session_id: Option<String>,
    protocol_version: String,
    next_id: u64,
}

impl McpSession {
    /// `initialize` then `notifications/initialized`; returns the session and the server's
    /// `initialize` result.
    pub async fn connect(url: &str, token: &str) -> Result<(Self, Value)> {
        let mut session = Self {
            http: reqwest::Client::new(),
            url: url.to_owned(),
            token: token.to_owned(),
            session_id: None,
            protocol_version: "2025-06-18".to_owned(),
            next_id: 1,
        };
        let result = session
            .request(
                "initialize",
                json!({
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "mcp-auth-e2e", "version": "0"},
                }),
            )
            .await?;
        if let Some(version) = result["protocolVersion"].as_str() {
            session.protocol_version = version.to_owned();
        }
        session.notify("notifications/initialized").await?;
        Ok((session, result))
    }

    fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", &self.protocol_version)
            .json(body);
        if let Some(id) = &self.session_id {
            request = request.header("mcp-session-id", id);
        }
        request
    }

    /// A request; the JSON-RPC `result`, or an error carrying the JSON-RPC error.
    pub async fn request(&mut self, method: &str, params: Value) -> Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let response = self.post(&body).send().await?;
        let status = response.status();
        if let Some(session) = response.headers().get("mcp-session-id") {
            self.session_id = Some(session.to_str()?.to_owned());
        }
        let is_sse = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let text = response.text().await?;
        if !status.is_success() {
            bail!("{method}: HTTP {status}: {text}");
        }
        let message = if is_sse {
            text.lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
                .find(|m| m["id"] == json!(id))
                .with_context(|| format!("{method}: no answer in the event stream: {text}"))?
        } else {
            serde_json::from_str(&text).with_context(|| format!("{method}: {text}"))?
        };
        if !message["error"].is_null() {
            bail!("{method}: JSON-RPC error {}", message["error"]);
        }
        Ok(message["result"].clone())
    }

    /// A notification (no answer expected beyond 202).
    pub async fn notify(&mut self, method: &str) -> Result<()> {
        let response = self
            .post(&json!({"jsonrpc": "2.0", "method": method}))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("{method}: HTTP {}", response.status());
        }
        Ok(())
    }

    /// `tools/list`: the tool names.
    pub async fn tool_names(&mut self) -> Result<Vec<String>> {
        let result = self.request("tools/list", json!({})).await?;
        Ok(result["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["name"].as_str().map(str::to_owned))
            .collect())
    }

    /// `tools/call`; the whole result (`content`, `isError`).
    pub async fn call(&mut self, tool: &str, arguments: Value) -> Result<Value> {
        self.request("tools/call", json!({"name": tool, "arguments": arguments}))
            .await
    }

    /// The text of a tool result's content, joined.
    pub fn text(result: &Value) -> String {
        result["content"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

//! MCP's JSON-RPC as the gateway reads it: which operations a request body asks for (each
//! method and the tool, prompt or resource it acts on), the 2026-07-28 routing headers that
//! must agree with the body, and the name patterns policy rules match.
//!
//! One parser for ext_authz (which decides) and the filter (which keys its decision cache by
//! the operations), so the two can never read a body differently.

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

pub const TOOLS_CALL: &str = "tools/call";
pub const PROMPTS_GET: &str = "prompts/get";
pub const RESOURCES_READ: &str = "resources/read";
pub const RESOURCES_SUBSCRIBE: &str = "resources/subscribe";
pub const RESOURCES_UNSUBSCRIBE: &str = "resources/unsubscribe";

/// 2026-07-28 Streamable HTTP: the JSON-RPC method of the body, mirrored.
pub const MCP_METHOD_HEADER: &str = "mcp-method";
/// 2026-07-28: the name (tool, prompt) or URI (resource) of the body, mirrored.
pub const MCP_NAME_HEADER: &str = "mcp-name";

/// JSON-RPC 2.0 error codes the gateway answers with.
pub mod error_code {
    /// Invalid JSON was received.
    pub const PARSE_ERROR: i64 = -32700;
    /// The JSON sent is not a valid request object.
    pub const INVALID_REQUEST: i64 = -32600;
    /// Invalid method parameters (`tools/call` without a name).
    pub const INVALID_PARAMS: i64 = -32602;
    /// MCP 2026-07-28: the routing headers and the body disagree.
    pub const HEADER_MISMATCH: i64 = -32020;
    /// Implementation-defined server error: the gateway's policy refused the operation.
    pub const FORBIDDEN: i64 = -32003;
}

/// The parameter that names what a method acts on, for the methods policy names.
pub fn name_param(method: &str) -> Option<&'static str> {
    match method {
        TOOLS_CALL | PROMPTS_GET => Some("name"),
        RESOURCES_READ | RESOURCES_SUBSCRIBE | RESOURCES_UNSUBSCRIBE => Some("uri"),
        _ => None,
    }
}

/// One request or notification of a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// The JSON-RPC `id` as sent (raw JSON), `None` for a notification.
    pub id: Option<String>,
    pub method: String,
    /// What the method acts on ([`name_param`]); `None` for methods that name nothing.
    pub name: Option<String>,
}

/// What a POST body asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Operations {
    /// A JSON-RPC batch (protocol versions before 2025-06-18 allow them).
    pub batch: bool,
    /// Requests and notifications, in body order; responses the client sends back (to the
    /// server's sampling or elicitation requests) are not operations and are left out.
    pub operations: Vec<Operation>,
}

impl Operations {
    /// A stable text of the operations, for cache keys: `method\x1fname` joined by `\x1e`.
    pub fn cache_key(&self) -> String {
        let mut key = String::new();
        for (i, op) in self.operations.iter().enumerate() {
            if i > 0 {
                key.push('\u{1e}');
            }
            key.push_str(&op.method);
            key.push('\u{1f}');
            key.push_str(op.name.as_deref().unwrap_or(""));
        }
        key
    }
}

/// Why a body is not MCP JSON-RPC the gateway can decide on. Each maps to the JSON-RPC error
/// the client is answered with ([`BodyError::code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the body is not UTF-8")]
    NotUtf8,
    #[error("the body is not JSON")]
    NotJson,
    #[error("the body is not a JSON-RPC 2.0 message: {0}")]
    NotJsonRpc(&'static str),
    #[error("an empty batch")]
    EmptyBatch,
    #[error("{method} without a string {param}")]
    MissingName { method: String, param: &'static str },
}

impl BodyError {
    /// The JSON-RPC error code for this error.
    pub fn code(&self) -> i64 {
        match self {
            BodyError::NotUtf8 | BodyError::NotJson => error_code::PARSE_ERROR,
            BodyError::NotJsonRpc(_) | BodyError::EmptyBatch => error_code::INVALID_REQUEST,
            BodyError::MissingName { .. } => error_code::INVALID_PARAMS,
        }
    }
}

#[derive(Deserialize)]
struct Message<'a> {
    jsonrpc: Option<&'a str>,
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    method: Option<String>,
    #[serde(borrow)]
    params: Option<&'a RawValue>,
    result: Option<IgnoredAny>,
    error: Option<IgnoredAny>,
}

/// Reads the operations of a POST body: one JSON-RPC message or a batch of them.
///
/// Strict where a lenient reading could differ from the MCP server's: duplicate keys,
/// trailing data, a `jsonrpc` other than `"2.0"` and a named method without its name are
/// errors, never guesses.
pub fn operations(body: &[u8]) -> Result<Operations, BodyError> {
    let text = std::str::from_utf8(body).map_err(|_| BodyError::NotUtf8)?;
    let trimmed = text.trim_start_matches([' ', '\t', '\r', '\n']);
    if trimmed.starts_with('[') {
        let messages: Vec<&RawValue> =
            serde_json::from_str(text).map_err(|_| BodyError::NotJson)?;
        if messages.is_empty() {
            return Err(BodyError::EmptyBatch);
        }
        let mut operations = Vec::with_capacity(messages.len());
        for message in messages {
            if let Some(op) = operation(message.get())? {
                operations.push(op);
            }
        }
        Ok(Operations {
            batch: true,
            operations,
        })
    } else {
        Ok(Operations {
            batch: false,
            operations: operation(text)?.into_iter().collect(),
        })
    }
}

fn operation(text: &str) -> Result<Option<Operation>, BodyError> {
    let message: Message<'_> = serde_json::from_str(text).map_err(|_| {
        // A body that is not JSON at all is a parse error, not an invalid request. (Asked
        // only on failure: an MCP request is read once.)
        match serde_json::from_str::<IgnoredAny>(text) {
            Err(_) => BodyError::NotJson,
            Ok(_) => BodyError::NotJsonRpc("not an object, or a member twice or mistyped"),
        }
    })?;
    if message.jsonrpc != Some("2.0") {
        return Err(BodyError::NotJsonRpc("jsonrpc is not \"2.0\""));
    }
    let Some(method) = message.method else {
        if message.result.is_some() || message.error.is_some() {
            return Ok(None);
        }
        return Err(BodyError::NotJsonRpc("no method, result or error"));
    };
    let name = match name_param(&method) {
        Some(param) => Some(named(message.params, &method, param)?),
        None => None,
    };
    Ok(Some(Operation {
        id: message.id.map(|id| id.get().to_owned()),
        method,
        name,
    }))
}

fn named(
    params: Option<&RawValue>,
    method: &str,
    param: &'static str,
) -> Result<String, BodyError> {
    #[derive(Deserialize)]
    struct Named {
        name: Option<String>,
        uri: Option<String>,
    }
    let missing = || BodyError::MissingName {
        method: method.to_owned(),
        param,
    };
    let params: Named = params
        .map(|p| serde_json::from_str(p.get()))
        .transpose()
        .map_err(|_| missing())?
        .ok_or_else(missing)?;
    let value = if param == "uri" {
        params.uri
    } else {
        params.name
    };
    value.filter(|v| !v.is_empty()).ok_or_else(missing)
}

/// Why the 2026-07-28 routing headers cannot be believed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderMismatch {
    #[error("{header} is not valid")]
    Malformed { header: &'static str },
    #[error("{header} does not match the body")]
    Differs { header: &'static str },
    #[error("{header} is sent with a batch")]
    Batch { header: &'static str },
}

/// Checks the `Mcp-Method` / `Mcp-Name` headers (when sent) against the body: they must
/// name the body's one operation exactly. Older protocol versions send neither, and are
/// decided from the body alone.
pub fn check_routing_headers(
    operations: &Operations,
    method_header: Option<&[u8]>,
    name_header: Option<&[u8]>,
) -> Result<(), HeaderMismatch> {
    if method_header.is_none() && name_header.is_none() {
        return Ok(());
    }
    let only = match (operations.batch, operations.operations.as_slice()) {
        (false, [only]) => Some(only),
        (false, []) => None,
        _ => {
            return Err(HeaderMismatch::Batch {
                header: MCP_METHOD_HEADER,
            });
        }
    };
    if let Some(raw) = method_header {
        let method = decode_header_value(raw).ok_or(HeaderMismatch::Malformed {
            header: MCP_METHOD_HEADER,
        })?;
        if only.map(|op| op.method.as_str()) != Some(method.as_str()) {
            return Err(HeaderMismatch::Differs {
                header: MCP_METHOD_HEADER,
            });
        }
    }
    let body_name = only.and_then(|op| op.name.as_deref());
    match name_header {
        Some(raw) => {
            let name = decode_header_value(raw).ok_or(HeaderMismatch::Malformed {
                header: MCP_NAME_HEADER,
            })?;
            if body_name != Some(name.as_str()) {
                return Err(HeaderMismatch::Differs {
                    header: MCP_NAME_HEADER,
                });
            }
        }
        // A named operation's name header may be left out only when no header is sent.
        None if body_name.is_some() => {
            return Err(HeaderMismatch::Differs {
                header: MCP_NAME_HEADER,
            });
        }
        None => {}
    }
    Ok(())
}

/// A 2026-07-28 header value: plain visible ASCII as is, anything else as
/// `=?base64?<standard base64 of the UTF-8>?=`. `None` when it is neither.
pub fn decode_header_value(raw: &[u8]) -> Option<String> {
    use base64::Engine as _;
    let text = std::str::from_utf8(raw).ok()?;
    if let Some(encoded) = text
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?;
        return String::from_utf8(bytes).ok();
    }
    let plain = text
        .bytes()
        .all(|b| b == b'\t' || (0x20..=0x7e).contains(&b));
    (plain && text.trim() == text).then(|| text.to_owned())
}

/// Glob match of `name` against `pattern`: `*` is any run of characters (including `/`),
/// `?` one character; everything else matches itself. A pattern without either is an exact
/// name; `file:///srv/*` matches every URI under that prefix.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    if !pattern.contains(['*', '?']) {
        return pattern == name;
    }
    // Byte offsets, stepping a character at a time: no allocation per item matched (the list
    // filter matches every item of a list against every rule).
    let next = |text: &str, at: usize| text[at..].chars().next();
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while let Some(c) = next(name, n) {
        match next(pattern, p) {
            Some('*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(pc) if pc == '?' || pc == c => {
                p += pc.len_utf8();
                n += c.len_utf8();
            }
            _ => match star {
                Some((sp, sn)) => {
                    let after = sn + next(name, sn).map_or(1, char::len_utf8);
                    p = sp + 1;
                    n = after;
                    star = Some((sp, after));
                }
                None => return false,
            },
        }
    }
    pattern[p..].chars().all(|c| c == '*')
}

#[cfg(test)]
mod tests;

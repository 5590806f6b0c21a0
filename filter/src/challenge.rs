//! The filter's answers to requests it refuses: status, `WWW-Authenticate` challenge
//! (RFC 6750 §3, RFC 9728 §5.1) and a small RFC 6749 §5.2-style JSON body.
//!
//! - no token: `401`, `Bearer resource_metadata="…", scope="…"` with no `error` (RFC 6750 §3.1);
//! - bad token: `401`, `error="invalid_token"`;
//! - bad request (two headers, token in the query): `400`, `error="invalid_request"`;
//! - too few scopes: `403`, `error="insufficient_scope"` and every scope the route needs;
//! - disallowed `Origin`, route without policy: `403 access_denied`, no challenge;
//! - no keys yet, or (fast mode) no answer from ext_authz: `503 temporarily_unavailable`;
//! - (fast mode) a POST body over `mcp_policy.max_body_bytes`: `413` with a JSON-RPC error,
//!   as ext_authz answers bodies it cannot decide on;
//! - a list result too large to filter: its body becomes a JSON-RPC error (never shown
//!   unfiltered).

use mcp_auth_proto::oauth_error::{ErrorCode, ErrorResponse};

use crate::config::Route;

/// A refusal, ready to be sent with `send_http_response`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub status: u32,
    pub www_authenticate: Option<String>,
    /// Seconds, for `retry-after`.
    pub retry_after: Option<&'static str>,
    pub body: String,
}

impl Denial {
    /// The response headers, `content-type` and `cache-control: no-store` included.
    pub fn headers(&self) -> Vec<(&str, &str)> {
        let mut headers = vec![
            ("content-type", "application/json"),
            ("cache-control", "no-store"),
        ];
        if let Some(challenge) = &self.www_authenticate {
            headers.push(("www-authenticate", challenge));
        }
        if let Some(secs) = self.retry_after {
            headers.push(("retry-after", secs));
        }
        headers
    }
}

/// RFC 6750 §3.1: a request without a token gets a challenge without an error code.
pub fn missing_token(route: &Route) -> Denial {
    let mut challenge = String::from("Bearer ");
    push_param(
        &mut challenge,
        "resource_metadata",
        &route.policy.resource_metadata,
    );
    push_scope(&mut challenge, route);
    Denial {
        status: 401,
        www_authenticate: Some(challenge),
        retry_after: None,
        // The challenge carries no error code; the body needs one, and a missing token is a
        // missing required parameter (RFC 6750 §3.1 `invalid_request`).
        body: body(
            ErrorCode::InvalidRequest,
            "This resource requires an OAuth access token",
        ),
    }
}

/// RFC 6750 §3.1 `invalid_token`: expired, revoked, malformed, foreign or for another resource.
pub fn invalid_token(route: &Route, description: &str) -> Denial {
    with_error(route, 401, ErrorCode::InvalidToken, description)
}

/// RFC 6750 §3.1 `invalid_request`: the credentials are sent the wrong way.
pub fn invalid_request(route: &Route, description: &str) -> Denial {
    with_error(route, 400, ErrorCode::InvalidRequest, description)
}

/// RFC 6750 §3.1 `insufficient_scope`; `scope` lists every scope the route needs (RS-11).
pub fn insufficient_scope(route: &Route, description: &str) -> Denial {
    with_error(route, 403, ErrorCode::InsufficientScope, description)
}

/// RS-18: an `Origin` that is present and not allowed.
pub fn origin_not_allowed() -> Denial {
    plain(403, ErrorCode::AccessDenied, "This origin is not allowed")
}

/// A request on a route the filter has no policy for: fail closed.
pub fn no_policy() -> Denial {
    plain(
        403,
        ErrorCode::AccessDenied,
        "This route is not protected by any policy",
    )
}

/// No signing keys are known yet (first JWKS fetch pending or failing).
pub fn keys_unavailable() -> Denial {
    Denial {
        retry_after: Some("5"),
        ..plain(
            503,
            ErrorCode::TemporarilyUnavailable,
            "The token signing keys are not available yet; retry later",
        )
    }
}

/// Fast mode: ext_authz could not be asked, or gave no usable answer. Fail closed, as
/// Envoy's ext_authz filter does in per-request mode (`status_on_error: 503`).
pub fn decisions_unavailable() -> Denial {
    plain(
        503,
        ErrorCode::TemporarilyUnavailable,
        "The authorization service is not available; retry later",
    )
}

/// The filter itself is not usable (no configuration).
pub fn not_configured() -> Denial {
    plain(
        500,
        ErrorCode::ServerError,
        "The authorization filter is not configured",
    )
}

fn with_error(route: &Route, status: u32, code: ErrorCode, description: &str) -> Denial {
    let mut challenge = String::from("Bearer ");
    push_param(&mut challenge, "error", code.as_str());
    if code == ErrorCode::InsufficientScope {
        // The scope comes right after the error it explains; the description is in the body.
        push_scope(&mut challenge, route);
        push_param(
            &mut challenge,
            "resource_metadata",
            &route.policy.resource_metadata,
        );
    } else {
        push_param(
            &mut challenge,
            "error_description",
            &description_text(description),
        );
        push_param(
            &mut challenge,
            "resource_metadata",
            &route.policy.resource_metadata,
        );
        push_scope(&mut challenge, route);
    }
    Denial {
        status,
        www_authenticate: Some(challenge),
        retry_after: None,
        body: body(code, description),
    }
}

fn plain(status: u32, code: ErrorCode, description: &str) -> Denial {
    Denial {
        status,
        www_authenticate: None,
        retry_after: None,
        body: body(code, description),
    }
}

fn push_scope(challenge: &mut String, route: &Route) {
    if !route.scope_param.is_empty() {
        push_param(challenge, "scope", &route.scope_param);
    }
}

/// Appends `, name="value"` (or `name="value"` first), as an RFC 9110 §5.6.4 quoted-string.
fn push_param(challenge: &mut String, name: &str, value: &str) {
    if !challenge.ends_with(' ') {
        challenge.push_str(", ");
    }
    challenge.push_str(name);
    challenge.push_str("=\"");
    for c in value.chars() {
        if c == '"' || c == '\\' {
            challenge.push('\\');
        }
        challenge.push(c);
    }
    challenge.push('"');
}

/// RFC 6750 §3: `error_description` is limited to %x20-21 / %x23-5B / %x5D-7E.
fn description_text(description: &str) -> String {
    description
        .chars()
        .map(|c| match c {
            ' ' | '!' | '#'..='[' | ']'..='~' => c,
            _ => '?',
        })
        .collect()
}

fn body(code: ErrorCode, description: &str) -> String {
    serde_json::to_string(&ErrorResponse::new(code, description))
        .unwrap_or_else(|_| format!("{{\"error\":\"{}\"}}", code.as_str()))
}

#[cfg(test)]
mod tests;

/// A JSON-RPC 2.0 error without an id (the request's was not read).
fn json_rpc_error(code: i64, message: &str) -> String {
    serde_json::json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}})
        .to_string()
}

/// Fast mode: a POST body larger than `mcp_policy.max_body_bytes`.
pub fn body_too_large(limit: usize) -> Denial {
    Denial {
        status: 413,
        www_authenticate: None,
        retry_after: None,
        body: json_rpc_error(
            mcp_auth_proto::mcp::error_code::INVALID_REQUEST,
            &format!("the request body is over the gateway's limit of {limit} bytes"),
        ),
    }
}

/// A list result the filter could not filter (too large): never shown unfiltered. Its
/// status is already sent, so only the body replaces it.
pub fn list_unfilterable() -> Denial {
    Denial {
        status: 502,
        www_authenticate: None,
        retry_after: None,
        body: json_rpc_error(
            -32603,
            "the MCP server's list result is too large for the gateway to filter",
        ),
    }
}

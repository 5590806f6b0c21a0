//! A [`Decision`] on the wire: the `CheckResponse` Envoy acts on.
//!
//! - Allow: gRPC status OK; `authorization`, the hand-off header and the rest of the
//!   reserved `x-mcp-auth*` namespace removed (RS-15: the MCP server never sees the token);
//!   identity headers set with
//!   `OVERWRITE_IF_EXISTS_OR_ADD`, so a client-sent copy is replaced; an identity header with
//!   nothing to say (empty login or scopes) is removed instead, so a client copy never
//!   survives.
//! - Unauthenticated: `401` with `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750
//!   §3.1) and the service's `resource_metadata` (RFC 9728 §5.1).
//! - Forbidden: `403` with a JSON body `{"error":"access_denied",...}`.
//!
//! Every answer carries the decision's cache facts as dynamic metadata
//! ([`METADATA_NAMESPACE`]).

use envoy_types::ext_authz::v3::pb::{
    CheckResponse, DeniedHttpResponse, HeaderAppendAction, HeaderValue, HeaderValueOption,
    HttpResponse, HttpStatus, HttpStatusCode, OkHttpResponse,
};
use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
use envoy_types::pb::google::rpc;
use mcp_auth_gateway::config::IdentityHeaders;
use mcp_auth_proto::handoff::HANDOFF_HEADER;
use mcp_auth_proto::listing::VISIBILITY_HEADER;

use crate::decision::{Decision, Forbidden, Identity, Refusal, Unauthenticated, Verdict};
use crate::policy::ListScope;

/// Key of the dynamic metadata entry (under Envoy's ext_authz filter namespace) holding
/// `valid_for_ms`, `config_generation` and the invalidation keys of the decision.
pub const METADATA_NAMESPACE: &str = "mcp_auth";

/// Builds the `CheckResponse` for `decision`; on allow, the request's `reserved` headers
/// (the gateway's namespace, whatever a client put there) are removed too.
pub fn check_response(
    decision: &Decision,
    headers: &IdentityHeaders,
    reserved: &[&str],
) -> CheckResponse {
    let (code, http_response) = match &decision.verdict {
        Verdict::Allow(identity) => (
            tonic::Code::Ok,
            HttpResponse::OkResponse(allowed(identity, headers, reserved)),
        ),
        Verdict::Unauthenticated {
            reason,
            resource_metadata,
        } => (
            tonic::Code::Unauthenticated,
            HttpResponse::DeniedResponse(unauthenticated(*reason, resource_metadata.as_deref())),
        ),
        Verdict::Forbidden(forbidden) => (
            tonic::Code::PermissionDenied,
            HttpResponse::DeniedResponse(forbidden_response(forbidden)),
        ),
        Verdict::Refused(refusal) => (
            tonic::Code::PermissionDenied,
            HttpResponse::DeniedResponse(refused(refusal)),
        ),
    };
    CheckResponse {
        status: Some(rpc::Status {
            code: code.into(),
            ..Default::default()
        }),
        http_response: Some(http_response),
        dynamic_metadata: Some(metadata(decision)),
    }
}

fn header(key: &str, value: &str) -> HeaderValueOption {
    #[allow(deprecated)] // `append` is the deprecated predecessor of `append_action`.
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_owned(),
            value: value.to_owned(),
            raw_value: Vec::new(),
        }),
        append: None,
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd.into(),
        keep_empty_value: false,
    }
}

fn allowed(identity: &Identity, names: &IdentityHeaders, reserved: &[&str]) -> OkHttpResponse {
    let service_headers = identity
        .service_headers
        .iter()
        .map(|(name, claim)| (name, identity.value_of(*claim)));
    let mut headers = Vec::with_capacity(4 + identity.service_headers.len());
    let mut emptied = Vec::new();
    for (name, value) in [
        (&names.user_id, identity.user_id.as_str()),
        (&names.user_login, identity.login.as_str()),
        (&names.client_id, identity.client_id.as_str()),
        (&names.scopes, identity.scopes.as_str()),
    ]
    .into_iter()
    .chain(service_headers)
    {
        if value.is_empty() {
            emptied.push(name.clone());
        } else {
            headers.push(header(name, value));
        }
    }
    // A header we set replaces the client's copy (OVERWRITE_IF_EXISTS_OR_ADD); every other
    // reserved or stripped header the client sent is removed.
    let set = |name: &str| {
        headers
            .iter()
            .any(|h| h.header.as_ref().is_some_and(|h| h.key == name))
    };
    let mut headers_to_remove: Vec<String> =
        vec!["authorization".to_owned(), HANDOFF_HEADER.to_owned()];
    headers_to_remove.extend(
        reserved
            .iter()
            .filter(|name| **name != HANDOFF_HEADER && !set(name))
            .map(|name| (*name).to_owned()),
    );
    for name in emptied {
        if !headers_to_remove.contains(&name) {
            headers_to_remove.push(name);
        }
    }
    // What the caller may see of listings travels on the response, for the filter, which
    // removes it before the client sees it.
    let response_headers_to_add = identity
        .visibility
        .iter()
        .map(|value| header(VISIBILITY_HEADER, value))
        .collect();
    OkHttpResponse {
        headers,
        headers_to_remove,
        response_headers_to_add,
        ..Default::default()
    }
}

/// A JSON-RPC 2.0 error response with `id` (raw JSON, `null` when there is none).
fn json_rpc_error(id: Option<&str>, code: i64, message: &str) -> String {
    let id = id
        .and_then(|raw| serde_json::from_str::<serde_json::Value>(raw).ok())
        .unwrap_or(serde_json::Value::Null);
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": { "code": code, "message": message },
    })
    .to_string()
}

fn refused(refusal: &Refusal) -> DeniedHttpResponse {
    let json = vec![
        header("content-type", "application/json"),
        header("cache-control", "no-store"),
    ];
    match refusal {
        Refusal::BadRequest {
            status,
            code,
            message,
        } => {
            let status = match status {
                413 => HttpStatusCode::PayloadTooLarge,
                415 => HttpStatusCode::UnsupportedMediaType,
                _ => HttpStatusCode::BadRequest,
            };
            denied(status, json, json_rpc_error(None, *code, message))
        }
        Refusal::InsufficientScope {
            scopes,
            resource_metadata,
            method,
            name,
        } => {
            let scope = scopes.join(" ");
            let description = format!(
                "{} needs the scope {scope}",
                operation(method, name.as_deref())
            );
            // Scope tokens (RFC 6749 §3.3 NQCHAR) and the validated metadata URL need no
            // escaping inside quoted strings; the description is ours.
            let mut challenge = format!(
                "Bearer error=\"insufficient_scope\", scope=\"{scope}\", error_description=\"{}\"",
                description.replace(['"', '\\'], "")
            );
            if !resource_metadata.contains(['"', '\\']) {
                challenge.push_str(&format!(", resource_metadata=\"{resource_metadata}\""));
            }
            let mut headers = json;
            headers.push(header("www-authenticate", &challenge));
            denied(
                HttpStatusCode::Forbidden,
                headers,
                json_error("insufficient_scope", &description),
            )
        }
        Refusal::Denied { id, method, name } => denied(
            HttpStatusCode::Forbidden,
            json,
            json_rpc_error(
                id.as_deref(),
                mcp_auth_proto::mcp::error_code::FORBIDDEN,
                &format!(
                    "{} is not allowed for you",
                    operation(method, name.as_deref())
                ),
            ),
        ),
    }
}

/// `tools/call get-env`, or the method alone.
fn operation(method: &str, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("{method} {name}"),
        None => method.to_owned(),
    }
}

fn denied(
    code: HttpStatusCode,
    headers: Vec<HeaderValueOption>,
    body: String,
) -> DeniedHttpResponse {
    DeniedHttpResponse {
        status: Some(HttpStatus { code: code.into() }),
        headers,
        body,
    }
}

fn json_error(error: &str, description: &str) -> String {
    serde_json::json!({ "error": error, "error_description": description }).to_string()
}

fn unauthenticated(reason: Unauthenticated, resource_metadata: Option<&str>) -> DeniedHttpResponse {
    let description = match reason {
        Unauthenticated::Revoked(_) => "the access token has been revoked",
        Unauthenticated::Expired => "the access token has expired",
    };
    // Quoted-string values (RFC 6750 §3): neither contains '"' or '\'; the metadata URL is a
    // validated absolute URL.
    let mut challenge =
        format!("Bearer error=\"invalid_token\", error_description=\"{description}\"");
    if let Some(url) = resource_metadata.filter(|u| !u.contains(['"', '\\'])) {
        challenge.push_str(&format!(", resource_metadata=\"{url}\""));
    }
    denied(
        HttpStatusCode::Unauthorized,
        vec![
            header("www-authenticate", &challenge),
            header("content-type", "application/json"),
            header("cache-control", "no-store"),
        ],
        json_error("invalid_token", description),
    )
}

fn forbidden_response(forbidden: &Forbidden) -> DeniedHttpResponse {
    // Said to the client: enough to act on, nothing about the gateway's internals.
    let description = match forbidden {
        Forbidden::NoHandoff(_) => "the request was not authenticated by the gateway",
        Forbidden::UnknownService => "no such service",
        Forbidden::NotAllowed {
            list: ListScope::Global,
            ..
        } => "you are not allowed to use this gateway",
        Forbidden::NotAllowed {
            list: ListScope::Service,
            ..
        } => "you are not allowed to use this service",
    };
    denied(
        HttpStatusCode::Forbidden,
        vec![
            header("content-type", "application/json"),
            header("cache-control", "no-store"),
        ],
        json_error("access_denied", description),
    )
}

fn metadata(decision: &Decision) -> Struct {
    let string = |s: &str| Value {
        kind: Some(Kind::StringValue(s.to_owned())),
    };
    let number = |n: u64| Value {
        // JSON numbers: exact up to 2^53, far beyond any duration or generation here.
        kind: Some(Kind::NumberValue(n as f64)),
    };
    let mut fields = std::collections::HashMap::new();
    let valid_for_ms = u64::try_from(decision.valid_for.as_millis()).unwrap_or(u64::MAX);
    fields.insert("valid_for_ms".to_owned(), number(valid_for_ms));
    fields.insert(
        "config_generation".to_owned(),
        number(decision.config_generation),
    );
    if let Some(keys) = &decision.keys {
        fields.insert("token_id".to_owned(), string(&keys.token_id));
        fields.insert("grant_id".to_owned(), string(&keys.grant_id));
        fields.insert("subject".to_owned(), string(&keys.subject));
        fields.insert("client_id".to_owned(), string(&keys.client_id));
    }
    let inner = Value {
        kind: Some(Kind::StructValue(Struct { fields })),
    };
    Struct {
        fields: [(METADATA_NAMESPACE.to_owned(), inner)].into(),
    }
}

#[cfg(test)]
mod tests;

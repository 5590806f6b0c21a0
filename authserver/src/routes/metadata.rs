//! Discovery: RFC 8414 authorization server metadata (and the same document as OpenID
//! Connect Discovery), RFC 9728 protected resource metadata for every service.
//!
//! The issuer and every URL come from the configured issuer, never from request headers
//! (RFC 8414 §3.3, MCP authorization). The `Host` header only *selects* which service's
//! protected-resource document to return when several share a path.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use mcp_auth_proto::metadata::{AuthorizationServerMetadata, ProtectedResourceMetadata};
use mcp_auth_proto::paths;

use crate::error::ApiError;
use crate::settings::{ResourceService, Settings};
use crate::state::AppState;

/// Grant types of `/token` (RFC 8414 §2).
pub const GRANT_TYPES: &[&str] = &["authorization_code", "refresh_token"];
/// Client authentication methods of `/token`, `/revoke` and `/introspect`.
pub const AUTH_METHODS: &[&str] = &["none", "client_secret_basic", "client_secret_post"];

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|s| (*s).to_owned()).collect()
}

/// The RFC 8414 §2 document of this server.
pub fn authorization_server_metadata(settings: &Settings) -> AuthorizationServerMetadata {
    let mut scopes: Vec<String> = Vec::new();
    for scope in settings.services.iter().flat_map(|s| &s.scopes) {
        if !scopes.iter().any(|s| s == scope.as_str()) {
            scopes.push(scope.as_str().to_owned());
        }
    }
    AuthorizationServerMetadata {
        issuer: settings.issuer.clone(),
        authorization_endpoint: settings.endpoint(paths::AUTHORIZE),
        token_endpoint: settings.endpoint(paths::TOKEN),
        jwks_uri: settings.endpoint(paths::JWKS),
        registration_endpoint: Some(settings.endpoint(paths::REGISTER)),
        scopes_supported: scopes,
        response_types_supported: strings(&["code"]),
        response_modes_supported: strings(&["query"]),
        grant_types_supported: strings(GRANT_TYPES),
        token_endpoint_auth_methods_supported: strings(AUTH_METHODS),
        revocation_endpoint: Some(settings.endpoint(paths::REVOKE)),
        revocation_endpoint_auth_methods_supported: strings(AUTH_METHODS),
        introspection_endpoint: Some(settings.endpoint(paths::INTROSPECT)),
        introspection_endpoint_auth_methods_supported: strings(AUTH_METHODS),
        code_challenge_methods_supported: strings(&["S256"]),
        authorization_response_iss_parameter_supported: true,
        client_id_metadata_document_supported: true,
        protected_resources: settings
            .services
            .iter()
            .map(|s| s.resource.clone())
            .collect(),
        service_documentation: None,
    }
}

/// The RFC 9728 §2 document of one service.
pub fn protected_resource_metadata(
    settings: &Settings,
    service: &ResourceService,
) -> ProtectedResourceMetadata {
    ProtectedResourceMetadata {
        resource: service.resource.clone(),
        authorization_servers: vec![settings.issuer.clone()],
        scopes_supported: service
            .scopes
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect(),
        bearer_methods_supported: strings(&["header"]),
        resource_name: Some(service.name.clone()),
    }
}

fn cacheable(body: impl serde::Serialize) -> Response {
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    response
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414 §3).
pub async fn authorization_server(State(state): State<AppState>) -> Response {
    cacheable(authorization_server_metadata(&state.settings))
}

/// `GET /.well-known/oauth-authorization-server/<issuer path>` (RFC 8414 §3.1: the
/// well-known segment is inserted before the issuer's path, when it has one).
pub async fn authorization_server_with_path(
    State(state): State<AppState>,
    Path(issuer_path): Path<String>,
) -> Result<Response, ApiError> {
    let expected = state.settings.issuer_path().trim_start_matches('/');
    if expected.is_empty() || issuer_path.trim_end_matches('/') != expected {
        return Err(ApiError::not_found("no authorization server at this path"));
    }
    Ok(cacheable(authorization_server_metadata(&state.settings)))
}

/// `GET /.well-known/openid-configuration` (OpenID Connect Discovery 1.0 §4): the same
/// document, for clients that only look there.
pub async fn openid_configuration(State(state): State<AppState>) -> Response {
    cacheable(authorization_server_metadata(&state.settings))
}

/// `GET /.well-known/oauth-protected-resource<path>` (RFC 9728 §3.1): the service whose
/// resource has this path. Services on different hosts may share a path; the `Host` header
/// picks among them, else the first in config order.
pub async fn protected_resource(
    State(state): State<AppState>,
    Path(resource_path): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let path = format!("/{}", resource_path.trim_end_matches('/'));
    let host = host_header(&headers);
    let candidates: Vec<&ResourceService> = state
        .settings
        .services
        .iter()
        .filter(|s| s.resource_path == path)
        .collect();
    let service = candidates
        .iter()
        .find(|s| host.is_some_and(|h| s.host_matches(h)))
        .or(candidates.first())
        .ok_or_else(|| ApiError::not_found("no protected resource at this path"))?;
    Ok(cacheable(protected_resource_metadata(
        &state.settings,
        service,
    )))
}

/// `GET /.well-known/oauth-protected-resource` (RFC 9728 §3): the document of a resource
/// without a path on the requested host; else the first service (config order) on the
/// requested host; else the first service. Clients normally use the path-inserted URL from
/// the `WWW-Authenticate` challenge; this root document exists for clients that drop the
/// path, and is only unambiguous for a single-service gateway or a host-routed service.
pub async fn protected_resource_root(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let services = &state.settings.services;
    let host = host_header(&headers);
    let on_host = |s: &&ResourceService| host.is_some_and(|h| s.host_matches(h));
    let service = services
        .iter()
        .filter(on_host)
        .find(|s| s.resource_path.is_empty())
        .or_else(|| services.iter().find(on_host))
        .or(services.first())
        .ok_or_else(|| ApiError::not_found("no protected resource is configured"))?;
    Ok(cacheable(protected_resource_metadata(
        &state.settings,
        service,
    )))
}

/// The request's `Host` (HTTP/1.1) or `:authority` (HTTP/2, which hyper exposes as `Host`).
fn host_header(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::HOST).and_then(|v| v.to_str().ok())
}

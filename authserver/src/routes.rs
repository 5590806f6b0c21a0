//! The HTTP API: one module per endpoint family, assembled here.

mod authorize;
mod choose;
mod client_auth;
pub(crate) mod extract;
mod flow;
mod health;
mod introspect;
mod jwks;
mod login;
mod metadata;
mod register;
mod revoke;
mod token;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mcp_auth_proto::paths;

use crate::error::ApiError;
use crate::state::AppState;

/// The authorization server's routes: exactly the public paths of
/// [`mcp_auth_proto::paths::AUTHSERVER_PUBLIC_PATHS`] plus `/healthz`, `/readyz` and
/// `/metrics`, which Envoy does not route.
pub fn router(state: AppState) -> Router {
    let token = Router::new()
        .route(paths::TOKEN, post(token::token))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            crate::ratelimit::limit_token,
        ));
    let registration = Router::new()
        .route(paths::REGISTER, post(register::register))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            crate::ratelimit::limit_register,
        ));
    let api = Router::new()
        .route(
            paths::AUTHORIZATION_SERVER_METADATA,
            get(metadata::authorization_server),
        )
        .route(
            "/.well-known/oauth-authorization-server/{*issuer_path}",
            get(metadata::authorization_server_with_path),
        )
        .route(
            paths::OPENID_CONFIGURATION,
            get(metadata::openid_configuration),
        )
        .route(
            paths::PROTECTED_RESOURCE_METADATA,
            get(metadata::protected_resource_root),
        )
        .route(
            "/.well-known/oauth-protected-resource/{*resource_path}",
            get(metadata::protected_resource),
        )
        .route(paths::JWKS, get(jwks::jwks))
        .route(paths::REVOKE, post(revoke::revoke))
        .route(paths::INTROSPECT, post(introspect::introspect))
        .merge(token)
        .merge(registration)
        .route(
            "/register/{client_id}",
            get(register::read)
                .put(register::update)
                .delete(register::delete),
        );

    let pages = Router::new()
        .route(paths::AUTHORIZE, get(authorize::authorize))
        .route(authorize::CONSENT_PATH, post(authorize::consent))
        .route(crate::idp::github::CALLBACK_PATH, get(login::callback))
        .route(crate::idp::oidc::CALLBACK_PATH, get(login::oidc_callback))
        .route(choose::CHOOSE_PATH, post(choose::choose))
        .route(
            crate::idp::dev::DEV_LOGIN_PATH,
            get(login::dev_form).post(login::dev_submit),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            crate::ratelimit::limit_sign_in,
        ));

    Router::new()
        .route(paths::HEALTH, get(health::healthz))
        .route(paths::READY, get(health::readyz))
        .route(paths::METRICS, get(health::metrics))
        .merge(api)
        .merge(pages)
        .route_layer(middleware::from_fn_with_state(
            state.metrics.http(),
            mcp_auth_telemetry::metrics::track,
        ))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(paths::AUTHSERVER_MAX_BODY_BYTES))
        .layer(middleware::from_fn(cors))
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn(
            mcp_auth_telemetry::requests::log_request,
        ))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

/// Headers every response carries.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // `same-origin`: a referrer only on requests to us, none to GitHub or the client. Not
    // `no-referrer`, under which browsers send `Origin: null` on our own same-origin form
    // posts, which then look cross-site (see `flow::check_origin`).
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// True for the endpoints a browser-based client calls cross-origin without credentials
/// (no cookies): metadata, JWKS, registration, token, revocation, introspection. The pages
/// (`/authorize`, `/login/*`) are navigated to, never fetched, and get no CORS headers.
fn is_cors_path(path: &str) -> bool {
    !(path == paths::AUTHORIZE
        || path == paths::HEALTH
        || path == paths::READY
        || path == paths::METRICS
        || path.starts_with(paths::LOGIN_PREFIX))
}

/// CORS for the credential-less API endpoints: any origin, never cookies (Fetch standard
/// §3.2), so `Access-Control-Allow-Origin: *` exposes nothing a plain HTTP client could not get.
async fn cors(request: Request, next: Next) -> Response {
    if !is_cors_path(request.uri().path()) {
        return next.run(request).await;
    }
    if request.method() == Method::OPTIONS {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, PUT, DELETE, OPTIONS"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type, mcp-protocol-version"),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        return response;
    }
    let mut response = next.run(request).await;
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

//! Errors as clients see them: RFC 6749 §5.2 JSON from the API endpoints, converted once here.
//! Internal causes are logged, never sent.

use std::borrow::Cow;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mcp_auth_proto::oauth_error::{ErrorCode, ErrorResponse};

use crate::store::StoreError;

/// An OAuth error response (RFC 6749 §5.2; RFC 6750 §3.1 for bearer-protected endpoints;
/// RFC 7591 §3.2.2 for registration; RFC 8707 §2 for `invalid_target`).
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    description: Cow<'static, str>,
    /// `WWW-Authenticate` value (RFC 6749 §5.2 for HTTP Basic, RFC 6750 §3 for bearer).
    challenge: Option<&'static str>,
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: ErrorCode,
        description: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code,
            description: description.into(),
            challenge: None,
            retry_after: None,
        }
    }

    fn bad_request(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, description)
    }

    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::bad_request(ErrorCode::InvalidRequest, description)
    }

    /// RFC 6749 §5.2: 401, with a `Basic` challenge when the client tried HTTP Basic.
    pub fn invalid_client(description: impl Into<Cow<'static, str>>, used_basic: bool) -> Self {
        let mut error = Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidClient,
            description,
        );
        if used_basic {
            error.challenge = Some(r#"Basic realm="mcp-auth", charset="UTF-8""#);
        }
        error
    }

    pub fn invalid_grant(description: impl Into<Cow<'static, str>>) -> Self {
        Self::bad_request(ErrorCode::InvalidGrant, description)
    }

    pub fn unauthorized_client(description: impl Into<Cow<'static, str>>) -> Self {
        Self::bad_request(ErrorCode::UnauthorizedClient, description)
    }

    pub fn unsupported_grant_type(description: impl Into<Cow<'static, str>>) -> Self {
        Self::bad_request(ErrorCode::UnsupportedGrantType, description)
    }

    pub fn invalid_scope(description: impl Into<Cow<'static, str>>) -> Self {
        Self::bad_request(ErrorCode::InvalidScope, description)
    }

    pub fn invalid_target(description: impl Into<Cow<'static, str>>) -> Self {
        Self::bad_request(ErrorCode::InvalidTarget, description)
    }

    pub fn invalid_client_metadata(description: impl Into<Cow<'static, str>>) -> Self {
        Self::bad_request(ErrorCode::InvalidClientMetadata, description)
    }

    pub fn invalid_redirect_uri(description: impl Into<Cow<'static, str>>) -> Self {
        Self::bad_request(ErrorCode::InvalidRedirectUri, description)
    }

    /// RFC 6750 §3.1 / RFC 7592 §2: a bad registration access token.
    pub fn invalid_token(description: impl Into<Cow<'static, str>>) -> Self {
        let mut error = Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidToken,
            description,
        );
        error.challenge = Some(r#"Bearer error="invalid_token""#);
        error
    }

    /// 429 with `Retry-After` (RFC 6585 §4).
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TemporarilyUnavailable,
            "too many requests from this address; retry later",
        );
        error.retry_after = Some(retry_after_secs.max(1));
        error
    }

    /// 404 for a path under a prefix we serve that names nothing.
    pub fn not_found(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ErrorCode::InvalidRequest,
            description,
        )
    }

    /// 405 for a method an endpoint does not take.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::InvalidRequest,
            "method not allowed",
        )
    }

    /// A dependency (Redis) failed: logged, and 503 `temporarily_unavailable` to the client.
    pub fn unavailable(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(%cause, "request failed on a dependency");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::TemporarilyUnavailable,
            "the authorization server cannot serve this request right now",
        )
    }

    /// A bug or an unexpected internal failure: logged, and 500 `server_error`.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::ServerError,
            "internal error",
        )
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn description(&self) -> &str {
        &self.description
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        ApiError::unavailable(&error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorResponse::new(self.code, self.description.into_owned());
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        // RFC 6749 §5.1/§5.2: token endpoint responses, errors included, are never cached.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let Some(challenge) = self.challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

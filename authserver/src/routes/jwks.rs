//! `GET /jwks`: the published signing keys (RFC 7517 §5).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// The JWK set: pending, signing, and recently superseded keys (see [`crate::keys`]).
pub async fn jwks(State(state): State<AppState>) -> Response {
    let set = state.keys.ring().jwks(state.now());
    let mut response = Json(set).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    response
}

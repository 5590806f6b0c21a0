//! Dynamic client registration: RFC 7591 `POST /register` and RFC 7592 management at
//! `/register/{client_id}` with the registration access token.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mcp_auth_proto::paths;
use mcp_auth_proto::registration::{ClientInformation, ClientMetadata, ClientUpdateRequest};
use mcp_auth_proto::store::RevocationTarget;

use crate::error::ApiError;
use crate::oauth::client::{ClientRecord, MetadataError, MetadataSource, ValidMetadata, validate};
use crate::routes::extract::bearer_token;
use crate::secret::{Secret, constant_time_eq, random_token};
use crate::state::AppState;

fn metadata_error(error: MetadataError) -> ApiError {
    match error {
        MetadataError::InvalidRedirectUri(m) => ApiError::invalid_redirect_uri(m),
        MetadataError::InvalidClientMetadata(m) => ApiError::invalid_client_metadata(m),
    }
}

fn json_error(rejection: JsonRejection) -> ApiError {
    ApiError::invalid_client_metadata(format!(
        "the body is not client metadata JSON: {}",
        rejection.body_text()
    ))
}

/// Registration responses carry secrets: never cached (RFC 7591 §3.2.1).
fn no_store(status: StatusCode, info: ClientInformation) -> Response {
    let mut response = (status, Json(info)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// `POST /register` (RFC 7591 §3.1): validates the metadata and registers a client.
/// Confidential clients (`client_secret_basic`/`_post`) get a secret; every client gets a
/// registration access token for RFC 7592. Both are shown once and stored as digests.
pub async fn register(
    State(state): State<AppState>,
    body: Result<Json<ClientMetadata>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(metadata) = body.map_err(json_error)?;
    let valid = validate(metadata, MetadataSource::Registration).map_err(metadata_error)?;
    let now = state.now();
    let client_id = random_token(16);
    let secret = valid.auth_method.is_confidential().then(Secret::generate);
    let registration_token = Secret::generate();
    let record = ClientRecord {
        client_id: client_id.clone(),
        metadata: valid.metadata,
        secret_digest: secret.as_ref().map(Secret::digest),
        registration_token_digest: registration_token.digest(),
        issued_at: now,
        // Unused registrations go soon (anyone may register); the first code exchange
        // extends the record to its full lifetime (`clients::mark_used`).
        expires_at: Some(
            now + state
                .settings
                .client_ttl
                .map_or(state.settings.unused_client_ttl, |ttl| {
                    ttl.min(state.settings.unused_client_ttl)
                })
                .as_secs(),
        ),
        used: false,
    };
    state.store.put_client(&record, now).await?;
    tracing::info!(
        %client_id,
        name = record.metadata.client_name.as_deref().unwrap_or_default(),
        auth_method = record.metadata.token_endpoint_auth_method.as_deref().unwrap_or_default(),
        "client registered"
    );
    let info = record.information(
        registration_client_uri(&state, &client_id),
        secret.map(|s| s.expose().to_owned()),
        Some(registration_token.expose().to_owned()),
    );
    state.metrics.registration("register");
    Ok(no_store(StatusCode::CREATED, info))
}

fn registration_client_uri(state: &AppState, client_id: &str) -> String {
    let mut uri = state.settings.endpoint(paths::REGISTER);
    uri.push('/');
    uri.extend(url::form_urlencoded::byte_serialize(client_id.as_bytes()));
    uri
}

/// The client `client_id` if `headers` carry its registration access token (RFC 7592 §2).
/// A missing client and a wrong token look the same: 401 `invalid_token`.
async fn authorize_management(
    state: &AppState,
    client_id: &str,
    headers: &HeaderMap,
) -> Result<ClientRecord, ApiError> {
    let token = bearer_token(headers)
        .ok_or_else(|| ApiError::invalid_token("a registration access token is required"))?;
    let record = match state.store.client(client_id).await? {
        Some(record) if record.expires_at.is_none_or(|at| at > state.now()) => record,
        _ => return Err(ApiError::invalid_token("invalid registration access token")),
    };
    if !token.matches_digest(&record.registration_token_digest) {
        return Err(ApiError::invalid_token("invalid registration access token"));
    }
    Ok(record)
}

/// `GET /register/{client_id}` (RFC 7592 §2.1): the current registration.
pub async fn read(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let record = authorize_management(&state, &client_id, &headers).await?;
    let info = record.information(registration_client_uri(&state, &client_id), None, None);
    Ok(no_store(StatusCode::OK, info))
}

/// `PUT /register/{client_id}` (RFC 7592 §2.2): replaces the metadata. A client that becomes
/// confidential gets a new secret (in this response only); one that becomes public loses it.
pub async fn update(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<ClientUpdateRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let mut record = authorize_management(&state, &client_id, &headers).await?;
    let Json(update) = body.map_err(json_error)?;
    if update.client_id != client_id {
        return Err(ApiError::invalid_request(
            "client_id in the body does not match the URL",
        ));
    }
    if let Some(sent) = &update.client_secret {
        let matches = record.secret_digest.as_deref().is_some_and(|d| {
            constant_time_eq(Secret::new(sent.clone()).digest().as_bytes(), d.as_bytes())
        });
        if !matches {
            return Err(ApiError::invalid_client_metadata(
                "client_secret does not match the current secret",
            ));
        }
    }
    let ValidMetadata {
        metadata,
        auth_method,
        ..
    } = validate(update.metadata, MetadataSource::Registration).map_err(metadata_error)?;
    let mut new_secret = None;
    match (
        auth_method.is_confidential(),
        record.secret_digest.is_some(),
    ) {
        (true, false) => {
            let secret = Secret::generate();
            record.secret_digest = Some(secret.digest());
            new_secret = Some(secret.expose().to_owned());
        }
        (false, true) => record.secret_digest = None,
        _ => {}
    }
    record.metadata = metadata;
    state.store.put_client(&record, state.now()).await?;
    tracing::info!(%client_id, "client registration updated");
    state.metrics.registration("update");
    let info = record.information(
        registration_client_uri(&state, &client_id),
        new_secret,
        None,
    );
    Ok(no_store(StatusCode::OK, info))
}

/// `DELETE /register/{client_id}` (RFC 7592 §2.3): deletes the client and revokes every token
/// issued to it.
pub async fn delete(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    authorize_management(&state, &client_id, &headers).await?;
    state.store.delete_client(&client_id).await?;
    crate::revocation::revoke_now(
        &state,
        RevocationTarget::Client(client_id.clone()),
        crate::metrics::RevocationReason::ClientDeleted,
    )
    .await?;
    state.metrics.registration("delete");
    tracing::info!(%client_id, "client deleted");
    Ok(StatusCode::NO_CONTENT)
}

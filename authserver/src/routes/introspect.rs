//! `POST /introspect` (RFC 7662) for authenticated clients. A client learns about its own
//! tokens only: anything else, like an unknown, expired or revoked token, is
//! `{"active": false}` (§2.2), so the endpoint cannot be used to probe other clients' tokens.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use mcp_auth_proto::claims::Audience;
use mcp_auth_proto::store::RevocationTarget;
use mcp_auth_proto::token::IntrospectionResponse;

use crate::error::ApiError;
use crate::routes::client_auth::TokenRequest;
use crate::routes::extract::OAuthForm;
use crate::secret::digest;
use crate::state::AppState;
use crate::tokens::{active_access_token, looks_like_jwt};

/// `POST /introspect`.
pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    OAuthForm(request): OAuthForm<TokenRequest>,
) -> Result<Response, ApiError> {
    let (client, token) = request.authenticate(&state, &headers).await?;
    let answer = if looks_like_jwt(&token) {
        match active_access_token(&state, &token).await? {
            Some(claims) if claims.client_id == client.client_id => IntrospectionResponse {
                active: true,
                scope: Some(claims.scope),
                client_id: Some(claims.client_id),
                username: Some(claims.preferred_username),
                token_type: Some("Bearer".to_owned()),
                exp: Some(claims.exp),
                iat: Some(claims.iat),
                nbf: Some(claims.nbf),
                sub: Some(claims.sub),
                aud: match claims.aud {
                    Audience::One(aud) => Some(aud),
                    Audience::Many(auds) => auds.into_iter().next(),
                },
                iss: Some(claims.iss),
                jti: Some(claims.jti),
            },
            _ => IntrospectionResponse::default(),
        }
    } else {
        refresh_token(&state, &token, &client.client_id).await?
    };
    let mut response = Json(answer).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn refresh_token(
    state: &AppState,
    token: &str,
    client_id: &str,
) -> Result<IntrospectionResponse, ApiError> {
    let Some((record, rotated)) = state.store.refresh_token(&digest(token)).await? else {
        return Ok(IntrospectionResponse::default());
    };
    if rotated
        || record.client_id != client_id
        || state.store.grant(&record.grant_id).await?.is_none()
    {
        return Ok(IntrospectionResponse::default());
    }
    let revocations = state
        .store
        .revocations_for(&[
            RevocationTarget::Grant(record.grant_id.clone()),
            RevocationTarget::User(record.sub.clone()),
            RevocationTarget::Client(record.client_id.clone()),
        ])
        .await?;
    if revocations
        .iter()
        .any(|r| r.covers_issued_at(record.grant_created_at))
    {
        return Ok(IntrospectionResponse::default());
    }
    Ok(IntrospectionResponse {
        active: true,
        scope: Some(record.scopes.join(" ")),
        client_id: Some(record.client_id),
        username: Some(record.login),
        sub: Some(record.sub),
        aud: Some(record.resource),
        iss: Some(state.settings.issuer.clone()),
        iat: Some(record.grant_created_at),
        ..IntrospectionResponse::default()
    })
}

//! `POST /revoke` (RFC 7009): access tokens (by `jti`, until their expiry) and refresh tokens
//! (the whole grant, §2.1: revoking a refresh token also ends the access tokens of its grant).

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mcp_auth_proto::claims::AccessTokenClaims;
use mcp_auth_proto::store::RevocationTarget;

use crate::error::ApiError;
use crate::metrics::RevocationReason;
use crate::revocation;
use crate::routes::client_auth::TokenRequest;
use crate::routes::extract::OAuthForm;
use crate::secret::digest;
use crate::state::AppState;
use crate::tokens::looks_like_jwt;

/// `POST /revoke`: 200 whether or not the token was known (§2.2), after authenticating the
/// client; a token of another client is refused (§2.1).
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    OAuthForm(request): OAuthForm<TokenRequest>,
) -> Result<Response, ApiError> {
    let (client, token) = request.authenticate(&state, &headers).await?;
    let now = state.now();
    if looks_like_jwt(&token) {
        // Expired or foreign tokens need no revocation: they are already useless.
        if let Ok(claims) = state.keys.ring().verify::<AccessTokenClaims>(&token, now)
            && claims.iss == state.settings.issuer
        {
            if claims.client_id != client.client_id {
                return Err(ApiError::unauthorized_client(
                    "the token was issued to another client",
                ));
            }
            if claims.exp > now {
                let event = revocation::revoke_token(
                    &state.store,
                    &state.settings,
                    now,
                    &claims.jti,
                    claims.exp,
                )
                .await?;
                state
                    .metrics
                    .revoked(&event.target, RevocationReason::RevokeEndpoint);
            }
        }
    } else {
        let token_digest = digest(&token);
        if let Some((record, _)) = state.store.refresh_token(&token_digest).await? {
            if record.client_id != client.client_id {
                return Err(ApiError::unauthorized_client(
                    "the token was issued to another client",
                ));
            }
            state.store.delete_refresh_token(&token_digest).await?;
            revocation::revoke_now(
                &state,
                RevocationTarget::Grant(record.grant_id),
                RevocationReason::RevokeEndpoint,
            )
            .await?;
        }
    }
    let mut response = StatusCode::OK.into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

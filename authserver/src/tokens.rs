//! Issuing and reading our tokens: JWT access tokens (RFC 9068 profile, claims from
//! `mcp_auth_proto::claims`), opaque refresh tokens, and whether a token is still active.

use mcp_auth_proto::claims::{AccessTokenClaims, Audience};
use mcp_auth_proto::store::RevocationTarget;
use mcp_auth_proto::token::TokenResponse;

use crate::keys::KeyError;
use crate::secret::{Secret, random_token};
use crate::state::AppState;
use crate::store::StoreError;

/// Who and what an access token is for.
#[derive(Debug, Clone)]
pub struct TokenSubject<'a> {
    pub grant_id: &'a str,
    pub client_id: &'a str,
    pub subject: &'a str,
    pub login: &'a str,
    pub resource: &'a str,
    pub scopes: &'a [String],
}

/// Signs an access token for `subject`; returns the JWT and its claims.
pub fn access_token(
    state: &AppState,
    subject: &TokenSubject<'_>,
) -> Result<(String, AccessTokenClaims), KeyError> {
    let now = state.now();
    let claims = AccessTokenClaims {
        iss: state.settings.issuer.clone(),
        sub: subject.subject.to_owned(),
        aud: Audience::One(subject.resource.to_owned()),
        exp: now + state.settings.access_token_ttl.as_secs(),
        iat: now,
        nbf: now,
        jti: random_token(16),
        client_id: subject.client_id.to_owned(),
        scope: subject.scopes.join(" "),
        preferred_username: subject.login.to_owned(),
        grant_id: subject.grant_id.to_owned(),
    };
    let jwt = state.keys.ring().sign_access_token(&claims, now)?;
    Ok((jwt, claims))
}

/// The RFC 6749 §5.1 response.
pub fn response(
    state: &AppState,
    access_token: String,
    scopes: &[String],
    refresh: Option<&Secret>,
) -> TokenResponse {
    TokenResponse {
        access_token,
        token_type: "Bearer".to_owned(),
        expires_in: state.settings.access_token_ttl.as_secs(),
        refresh_token: refresh.map(|r| r.expose().to_owned()),
        scope: Some(scopes.join(" ")),
    }
}

/// The claims of `token` if it is one of our access tokens, signed by a published key, for
/// our issuer, within its lifetime, and not revoked.
pub async fn active_access_token(
    state: &AppState,
    token: &str,
) -> Result<Option<AccessTokenClaims>, StoreError> {
    let now = state.now();
    let Ok(claims) = state.keys.ring().verify::<AccessTokenClaims>(token, now) else {
        return Ok(None);
    };
    if claims.iss != state.settings.issuer || claims.exp <= now || claims.nbf > now {
        return Ok(None);
    }
    let revocations = state
        .store
        .revocations_for(&[
            RevocationTarget::Token(claims.jti.clone()),
            RevocationTarget::Grant(claims.grant_id.clone()),
            RevocationTarget::User(claims.sub.clone()),
            RevocationTarget::Client(claims.client_id.clone()),
        ])
        .await?;
    if revocations.iter().any(|r| r.covers_issued_at(claims.iat)) {
        return Ok(None);
    }
    Ok(Some(claims))
}

/// True when `token` has the shape of a JWT (so it is not one of our opaque tokens).
pub fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

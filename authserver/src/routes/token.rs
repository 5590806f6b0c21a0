//! `POST /token` (RFC 6749 §3.2, OAuth 2.1 §3.2): the authorization code grant with PKCE and
//! the refresh token grant with rotation and reuse detection. Responses are never cached.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use mcp_auth_proto::store::RevocationTarget;
use serde::Deserialize;

use crate::error::ApiError;
use crate::metrics::RevocationReason;
use crate::oauth::client::Client;
use crate::oauth::pkce::CodeVerifier;
use crate::oauth::scope::narrow;
use crate::revocation;
use crate::routes::client_auth::{authenticate, presented};
use crate::routes::extract::OAuthForm;
use crate::secret::{Secret, digest, random_token};
use crate::state::AppState;
use crate::store::{CodeOutcome, GrantRecord, RefreshOutcome, RefreshRecord, Rotation};
use crate::tokens::{self, TokenSubject};

/// The token request's parameters (both grants).
#[derive(Debug, Deserialize)]
pub struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
    scope: Option<String>,
    resource: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// `POST /token`.
pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm<TokenForm>,
) -> Result<Response, ApiError> {
    let credentials = presented(
        &headers,
        form.client_id.as_deref(),
        form.client_secret.as_deref(),
    )?;
    let grant_type = form
        .grant_type
        .clone()
        .ok_or_else(|| ApiError::invalid_request("grant_type is required"))?;
    // Check the grant type before touching the client, so an unknown one says so.
    if !matches!(grant_type.as_str(), "authorization_code" | "refresh_token") {
        return Err(ApiError::unsupported_grant_type(
            "only authorization_code and refresh_token are supported",
        ));
    }
    let client = authenticate(&state, &credentials).await?;
    let body = match grant_type.as_str() {
        "authorization_code" => authorization_code(&state, &client, form).await?,
        _ => refresh_token(&state, &client, form).await?,
    };
    state.metrics.token_issued(&grant_type);
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// RFC 6749 §4.1.3 with RFC 7636 §4.5 and RFC 8707 §2.2.
async fn authorization_code(
    state: &AppState,
    client: &Client,
    form: TokenForm,
) -> Result<mcp_auth_proto::token::TokenResponse, ApiError> {
    let code = form
        .code
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::invalid_request("code is required"))?;
    let verifier = form
        .code_verifier
        .ok_or_else(|| ApiError::invalid_request("code_verifier is required (PKCE)"))?;
    let grant_id = random_token(16);
    let record = match state.store.consume_code(&digest(&code), &grant_id).await? {
        CodeOutcome::Fresh(record) => record,
        CodeOutcome::Missing => {
            return Err(ApiError::invalid_grant(
                "the code is invalid, expired or already used",
            ));
        }
        CodeOutcome::Replayed { grant_id } => {
            // OAuth 2.1 §4.1.3: a second use may be an attacker's; revoke what the first issued.
            tracing::warn!(client_id = %client.client_id, %grant_id, "authorization code replayed; revoking its grant");
            revocation::revoke_now(
                state,
                RevocationTarget::Grant(grant_id),
                RevocationReason::CodeReplay,
            )
            .await?;
            return Err(ApiError::invalid_grant(
                "the code is invalid, expired or already used",
            ));
        }
    };
    let now = state.now();
    if record.expires_at <= now {
        return Err(ApiError::invalid_grant("the code has expired"));
    }
    if record.client_id != client.client_id {
        return Err(ApiError::invalid_grant(
            "the code was issued to another client",
        ));
    }
    let redirect_ok = match form.redirect_uri.as_deref() {
        Some(sent) => sent == record.redirect_uri,
        None => !record.redirect_uri_explicit,
    };
    if !redirect_ok {
        return Err(ApiError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    let verified =
        CodeVerifier::parse(verifier).is_some_and(|v| v.verifies(&record.code_challenge));
    if !verified {
        return Err(ApiError::invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    crate::clients::mark_used(&state.store, &state.settings, client, now).await?;
    if form
        .resource
        .as_deref()
        .is_some_and(|r| r != record.resource)
    {
        return Err(ApiError::invalid_target(
            "resource differs from the authorization request",
        ));
    }

    let subject = TokenSubject {
        grant_id: &grant_id,
        client_id: &client.client_id,
        subject: &record.subject,
        login: &record.login,
        resource: &record.resource,
        scopes: &record.scopes,
    };
    let (access_token, _) =
        tokens::access_token(state, &subject).map_err(|e| ApiError::internal(&e))?;
    let grant = GrantRecord {
        client_id: client.client_id.clone(),
        subject: record.subject.clone(),
        resource: record.resource.clone(),
        scopes: record.scopes.clone(),
        created_at: now,
    };
    let refresh = client.may_refresh.then(Secret::generate);
    let refresh_record = RefreshRecord {
        grant_id: grant_id.clone(),
        client_id: client.client_id.clone(),
        sub: record.subject.clone(),
        login: record.login.clone(),
        resource: record.resource.clone(),
        scopes: record.scopes.clone(),
        grant_created_at: now,
    };
    let refresh_digest = refresh.as_ref().map(Secret::digest);
    let settings = &state.settings;
    let ttl = if refresh.is_some() {
        settings.refresh_token_ttl
    } else {
        settings.access_token_ttl
    };
    state
        .store
        .issue_grant(
            &grant_id,
            &grant,
            refresh_digest.as_deref().map(|d| (d, &refresh_record)),
            ttl.as_secs(),
        )
        .await?;
    tracing::info!(client_id = %client.client_id, %grant_id, login = %record.login, "tokens issued");
    Ok(tokens::response(
        state,
        access_token,
        &record.scopes,
        refresh.as_ref(),
    ))
}

/// RFC 6749 §6 with OAuth 2.1 §4.3.1: every refresh rotates the token; presenting a rotated
/// one is reuse, and revokes the whole grant.
async fn refresh_token(
    state: &AppState,
    client: &Client,
    form: TokenForm,
) -> Result<mcp_auth_proto::token::TokenResponse, ApiError> {
    let presented = form
        .refresh_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::invalid_request("refresh_token is required"))?;
    if !client.may_refresh {
        return Err(ApiError::unauthorized_client(
            "this client did not register the refresh_token grant",
        ));
    }
    let old_digest = digest(&presented);
    let invalid = || ApiError::invalid_grant("the refresh token is invalid, expired or revoked");
    // A narrowed scope or a resource is checked before rotating, so a bad request does not
    // cost the client its token.
    if form.scope.is_some() || form.resource.is_some() {
        let (record, _) = state
            .store
            .refresh_token(&old_digest)
            .await?
            .ok_or_else(invalid)?;
        if record.client_id != client.client_id {
            return Err(invalid());
        }
        narrow(form.scope.as_deref(), &record.scopes).map_err(ApiError::invalid_scope)?;
        if form
            .resource
            .as_deref()
            .is_some_and(|r| r != record.resource)
        {
            return Err(ApiError::invalid_target(
                "resource differs from the grant's",
            ));
        }
    }
    let presented = Secret::new(presented);
    let mut new_refresh = Secret::generate();
    let sealed_successor = new_refresh
        .seal_under(&presented)
        .ok_or_else(|| ApiError::internal(&"sealing the successor refresh token failed"))?;
    let outcome = state
        .store
        .rotate_refresh(&Rotation {
            old_digest: &old_digest,
            new_digest: &new_refresh.digest(),
            sealed_successor: &sealed_successor,
            client_id: &client.client_id,
            ttl_secs: state.settings.refresh_token_ttl.as_secs(),
            user_ttl_secs: (state.settings.refresh_token_ttl + state.settings.access_token_ttl)
                .as_secs(),
            now: state.now(),
            grace_secs: state.settings.refresh_reuse_grace.as_secs(),
        })
        .await?;
    let record = match outcome {
        RefreshOutcome::Rotated(record) => record,
        RefreshOutcome::RetriedWithinGrace {
            record,
            sealed_successor,
        } => {
            tracing::info!(client_id = %client.client_id, grant_id = %record.grant_id, "refresh token used again within the grace; the same successor is returned");
            new_refresh = Secret::open_sealed(&sealed_successor, &presented).ok_or_else(invalid)?;
            record
        }
        RefreshOutcome::Reused(record) => {
            tracing::warn!(client_id = %client.client_id, grant_id = %record.grant_id, "refresh token reused; revoking its grant");
            revocation::revoke_now(
                state,
                RevocationTarget::Grant(record.grant_id),
                RevocationReason::RefreshReuse,
            )
            .await?;
            return Err(invalid());
        }
        RefreshOutcome::Revoked | RefreshOutcome::WrongClient | RefreshOutcome::Missing => {
            return Err(invalid());
        }
    };
    let scopes = narrow(form.scope.as_deref(), &record.scopes).map_err(ApiError::invalid_scope)?;
    let subject = TokenSubject {
        grant_id: &record.grant_id,
        client_id: &record.client_id,
        subject: &record.sub,
        login: &record.login,
        resource: &record.resource,
        scopes: &scopes,
    };
    let (access_token, _) =
        tokens::access_token(state, &subject).map_err(|e| ApiError::internal(&e))?;
    Ok(tokens::response(
        state,
        access_token,
        &scopes,
        Some(&new_refresh),
    ))
}

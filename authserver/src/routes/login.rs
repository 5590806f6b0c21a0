//! The identity provider's side of the flow: the callbacks of GitHub (`GET /login/callback`)
//! and of OpenID Connect providers (`GET /login/oidc/callback`), and the dev login form
//! (`GET`/`POST /login/dev`).
//!
//! Both take the pending authorization by the single-use upstream `state`, and require it to
//! have been started in this browser (its session cookie), so a login link cannot be replayed
//! in someone else's browser (login CSRF).

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::idp::IdpError;
use crate::idp::dev::{DEV_LOGIN_PATH, dev_user, is_valid_login};
use crate::metrics::LoginOutcome;
use crate::pages::{PageError, render_page};
use crate::routes::flow::{self, check_origin, client_error};
use crate::secret::digest;
use crate::session::Session;
use crate::state::AppState;
use crate::store::{PendingAuthorization, Stage};

fn expired() -> PageError {
    PageError::bad_request(
        "Sign-in expired",
        "This sign-in has expired or was already completed.",
    )
}

fn other_browser() -> PageError {
    PageError::forbidden("This sign-in was started in another browser, or your session expired.")
}

/// Checks that the pending login belongs to the browser presenting `headers`.
fn bound_session(
    state: &AppState,
    headers: &HeaderMap,
    pending: &PendingAuthorization,
) -> Result<Session, PageError> {
    let session = state
        .sessions
        .from_headers(headers, state.now())
        .ok_or_else(other_browser)?;
    if pending.stage != Stage::Login || pending.browser != digest(&session.bid) {
        return Err(other_browser());
    }
    Ok(session)
}

/// GitHub's callback parameters.
#[derive(Debug, Deserialize)]
pub struct CallbackParams {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

/// Which callback URL the browser came back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Callback {
    /// `/login/callback`, GitHub's.
    GitHub,
    /// `/login/oidc/callback`, every OpenID Connect provider's.
    Oidc,
}

/// `GET /login/callback`: GitHub sends the browser back with `code` (or `error`) and our state.
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<CallbackParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    match handle_callback(&state, &headers, params, Callback::GitHub).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// `GET /login/oidc/callback`: an OpenID Connect provider sends the browser back.
pub async fn oidc_callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<CallbackParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    match handle_callback(&state, &headers, params, Callback::Oidc).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn handle_callback(
    state: &AppState,
    headers: &HeaderMap,
    params: Result<Query<CallbackParams>, axum::extract::rejection::QueryRejection>,
    route: Callback,
) -> Result<Response, PageError> {
    let Query(params) = params.map_err(|_| expired())?;
    let upstream_state = params.state.filter(|s| !s.is_empty()).ok_or_else(expired)?;
    let Some(pending) = state.store.take_pending(&digest(&upstream_state)).await? else {
        // Taken once: a replayed callback (back button, a copied URL) issues nothing.
        tracing::info!(
            ?route,
            "login callback with an unknown, expired or already used state: refused"
        );
        return Err(expired());
    };
    let session = bound_session(state, headers, &pending)?;
    let reply = flow::reply_of(&pending);
    // The provider this sign-in was sent to, and only if it answers at its own callback.
    let idp = state
        .idp(pending.provider.as_deref())
        .filter(|idp| (idp.id() == "github") == (route == Callback::GitHub))
        .cloned()
        .ok_or_else(expired)?;
    let provider = idp.id().to_owned();
    let failed = |outcome| state.metrics.login(&provider, outcome);
    if let Some(error) = params.error {
        failed(LoginOutcome::ProviderRefused);
        tracing::info!(%error, client_id = %pending.client_id, "the identity provider refused the sign-in");
        return Ok(client_error(
            state,
            &reply,
            "access_denied",
            "the sign-in was cancelled or refused",
        ));
    }
    let (Some(code), Some(verifier)) = (params.code, pending.upstream_verifier.as_deref()) else {
        failed(LoginOutcome::Incomplete);
        return Ok(client_error(
            state,
            &reply,
            "access_denied",
            "the sign-in did not complete",
        ));
    };
    let user = match idp
        .identify(&code, verifier, state.needs, state.now())
        .await
    {
        Ok(user) => user,
        Err(error @ IdpError::Exchange(_)) => {
            failed(LoginOutcome::ExchangeFailed);
            tracing::warn!(%error, client_id = %pending.client_id, "sign-in failed");
            return Ok(client_error(
                state,
                &reply,
                "access_denied",
                "the sign-in failed",
            ));
        }
        Err(error) => {
            failed(LoginOutcome::ProviderUnreachable);
            tracing::error!(%error, client_id = %pending.client_id, "sign-in failed");
            return Ok(client_error(
                state,
                &reply,
                "temporarily_unavailable",
                "the identity provider could not be reached",
            ));
        }
    };
    flow::complete(state, pending, user, &session, true).await
}

fn dev_only(state: &AppState) -> Result<(), PageError> {
    if state.settings.is_dev_login() {
        Ok(())
    } else {
        Err(PageError::new(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no development login here.",
        ))
    }
}

/// The dev login's query.
#[derive(Debug, Deserialize)]
pub struct DevQuery {
    state: Option<String>,
}

#[derive(Serialize)]
struct DevContext<'a> {
    state: &'a str,
    client_name: &'a str,
    resource: &'a str,
    action: String,
}

/// `GET /login/dev?state=…`: the "sign in as" form (dev login only).
pub async fn dev_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<DevQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let result: Result<Response, PageError> = async {
        dev_only(&state)?;
        let Query(query) = query.map_err(|_| expired())?;
        let upstream_state = query.state.filter(|s| !s.is_empty()).ok_or_else(expired)?;
        let pending = state
            .store
            .pending(&digest(&upstream_state))
            .await?
            .ok_or_else(expired)?;
        bound_session(&state, &headers, &pending)?;
        tracing::warn!("DEV LOGIN page served: anyone can sign in as anyone");
        Ok(render_page(
            StatusCode::OK,
            "dev_login.html",
            DevContext {
                state: &upstream_state,
                client_name: &pending.client_name,
                resource: &pending.resource,
                action: state.settings.endpoint(DEV_LOGIN_PATH),
            },
        ))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The dev login form.
#[derive(Debug, Deserialize)]
pub struct DevForm {
    state: String,
    login: String,
    #[serde(default)]
    orgs: String,
    #[serde(default)]
    teams: String,
}

/// `POST /login/dev`: signs in as the named user (dev login only).
pub async fn dev_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<DevForm>, FormRejection>,
) -> Response {
    let result: Result<Response, PageError> = async {
        dev_only(&state)?;
        check_origin(&state, &headers)?;
        let Form(form) =
            form.map_err(|_| PageError::bad_request("Invalid request", "The form is incomplete."))?;
        let login = form.login.trim();
        if !is_valid_login(login) {
            return Err(PageError::bad_request(
                "Invalid login",
                "A login is 1 to 39 letters, digits or hyphens.",
            ));
        }
        let pending = state
            .store
            .take_pending(&digest(&form.state))
            .await?
            .ok_or_else(expired)?;
        let session = bound_session(&state, &headers, &pending)?;
        let user = dev_user(login, &form.orgs, &form.teams, state.now());
        tracing::warn!(login = %user.login, "DEV LOGIN: signed in without an identity provider");
        flow::complete(&state, pending, user, &session, true).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

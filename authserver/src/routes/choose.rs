//! After consent, signing in upstream: straight to the only identity provider, or, with
//! several, a page of ours where the user picks one (`POST /login/choose`). The choice is
//! bound to the browser like the consent form (session cookie, CSRF token, `Origin`), and
//! the pending authorization then records the provider, so the callback exchanges its code
//! with that provider only (no mix-up between providers).

use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::idp::IdentityProvider;
use crate::pages::{PageError, render_page};
use crate::routes::authorize::PENDING_TTL_SECS;
use crate::routes::flow;
use crate::secret::{digest, random_token};
use crate::session::Session;
use crate::state::AppState;
use crate::store::{PendingAuthorization, Stage};

/// Path of the provider choice form.
pub const CHOOSE_PATH: &str = "/login/choose";

/// "GitHub", "GitHub or Google", "GitHub, Google or Keycloak": for the consent page.
pub fn provider_names(state: &AppState) -> String {
    let names: Vec<&str> = state.idps.iter().map(|p| p.display_name()).collect();
    match names.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// Consented, not signed in: to the only provider, or to the choice page.
pub async fn sign_in_upstream(
    state: &AppState,
    pending: PendingAuthorization,
    session: &Session,
) -> Result<Response, PageError> {
    match state.idps.as_ref() {
        [only] => {
            let only = Arc::clone(only);
            start_login(state, pending, &only).await
        }
        _ => choice_page(state, pending, session).await,
    }
}

/// Sends the browser to `idp`: a fresh single-use upstream state and PKCE verifier, stored
/// only now that the user consented (AS-16).
async fn start_login(
    state: &AppState,
    mut pending: PendingAuthorization,
    idp: &Arc<dyn IdentityProvider>,
) -> Result<Response, PageError> {
    let upstream_state = random_token(32);
    let verifier = random_token(32);
    let location = match idp.login_url(&upstream_state, &verifier, state.needs).await {
        Ok(location) => location,
        Err(error) => {
            tracing::warn!(provider = %idp.id(), %error, client_id = %pending.client_id, "sign-in cannot start");
            return Err(provider_unavailable(idp.display_name()));
        }
    };
    pending.stage = Stage::Login;
    pending.upstream_verifier = Some(verifier);
    pending.provider = Some(idp.id().to_owned());
    state
        .store
        .put_pending(&digest(&upstream_state), &pending, PENDING_TTL_SECS)
        .await?;
    Ok(flow::see_other(&location))
}

/// The page of a sign-in whose provider cannot take it now (an OpenID provider not
/// discovered yet): nothing was stored, the user starts again later.
fn provider_unavailable(name: &str) -> PageError {
    PageError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "Sign-in unavailable",
        format!(
            "{name} cannot be reached right now, so you cannot sign in with it. Try again in a \
             minute."
        ),
    )
}

/// One button of the choice page.
#[derive(Serialize)]
struct Choice<'a> {
    id: &'a str,
    name: &'a str,
}

async fn choice_page(
    state: &AppState,
    mut pending: PendingAuthorization,
    session: &Session,
) -> Result<Response, PageError> {
    let request_id = random_token(32);
    pending.stage = Stage::Choose;
    state
        .store
        .put_pending(&digest(&request_id), &pending, PENDING_TTL_SECS)
        .await?;
    let providers: Vec<Choice<'_>> = state
        .idps
        .iter()
        .map(|p| Choice {
            id: p.id(),
            name: p.display_name(),
        })
        .collect();
    let context = minijinja::context! {
        client_name => &pending.client_name,
        resource => &pending.resource,
        providers => providers,
        request_id => &request_id,
        csrf => state.sessions.csrf_token(&request_id, &session.bid),
        action => state.settings.endpoint(CHOOSE_PATH),
    };
    Ok(render_page(StatusCode::OK, "choose.html", &context))
}

/// The choice form.
#[derive(Debug, Deserialize)]
pub struct ChoiceForm {
    request: String,
    csrf: String,
    provider: String,
}

/// `POST /login/choose`.
pub async fn choose(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<ChoiceForm>, FormRejection>,
) -> Response {
    match chosen(&state, &headers, form).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn chosen(
    state: &AppState,
    headers: &HeaderMap,
    form: Result<Form<ChoiceForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) =
        form.map_err(|_| PageError::bad_request("Invalid request", "The form is incomplete."))?;
    let Some(idp) = state.idp(Some(&form.provider)).cloned() else {
        return Err(PageError::bad_request(
            "Invalid request",
            "There is no such identity provider.",
        ));
    };
    let (pending, _session) =
        flow::take_form_pending(state, headers, &form.request, &form.csrf, Stage::Choose).await?;
    start_login(state, pending, &idp).await
}

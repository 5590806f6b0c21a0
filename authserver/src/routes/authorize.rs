//! `GET /authorize` (RFC 6749 §4.1.1, OAuth 2.1) and our consent page, `POST /login/consent`.
//!
//! AS-15/16: we are a proxy with one GitHub app, and GitHub silently re-approves it, so
//! GitHub's own consent protects nothing here. Before any redirect to GitHub the user sees
//! *our* consent page naming the client, the service, the scopes and where the browser goes
//! next; its form carries a CSRF token bound to this browser's session cookie. Consent is
//! remembered per user and client, and a returning signed-in user is not asked again.

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::clients::{self, ClientError};
use crate::oauth::authorize::{self, AuthorizeError, AuthorizeRequest, ClientReply, Params};
use crate::oauth::client::{Client, ClientKind};
use crate::oauth::redirect_uri::RedirectUri;
use crate::pages::{PageError, render_page};
use crate::routes::flow::{self, client_error, with_session};
use crate::secret::{digest, random_token};
use crate::session::Session;
use crate::state::AppState;
use crate::store::{ConsentRecord, PendingAuthorization, Stage};
use mcp_auth_proto::store::UserRecord;

/// How long a consent page or a login at the identity provider may take (AS-16: ≤ 10 min).
pub const PENDING_TTL_SECS: u64 = 600;
/// Where the consent form posts.
pub const CONSENT_PATH: &str = "/login/consent";

/// `GET /authorize`.
pub async fn authorize(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    match handle(&state, query.as_deref().unwrap_or_default(), &headers).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn handle(state: &AppState, query: &str, headers: &HeaderMap) -> Result<Response, PageError> {
    let params = Params::parse(query);
    let now = state.now();
    let client_id = authorize::client_id(&params).map_err(page_error)?;
    let client = match clients::resolve(&state.store, &state.documents, client_id, now).await {
        Ok(client) => client,
        Err(ClientError::Unknown) => {
            return Err(PageError::bad_request(
                "Unknown application",
                "This application is not registered with this server (or its registration expired).",
            ));
        }
        Err(ClientError::MetadataDocument(error)) => {
            tracing::info!(%error, "client metadata document refused");
            return Err(PageError::bad_request(
                "Unknown application",
                format!("The application's metadata document could not be used: {error}."),
            ));
        }
        Err(ClientError::Store(error)) => return Err(error.into()),
    };
    let reply = authorize::client_reply(&params, &client).map_err(page_error)?;
    let session = state.sessions.from_headers(headers, now);
    let request = match authorize::validate(&params, reply, &state.settings) {
        Ok(request) => request,
        Err(AuthorizeError::Redirect {
            reply,
            error,
            description,
        }) => {
            return refuse(
                state,
                &client,
                session.as_ref(),
                &reply,
                error,
                &description,
            )
            .await;
        }
        Err(AuthorizeError::Page(message)) => {
            return Err(PageError::bad_request("Invalid request", message));
        }
    };

    if let Some(response) = returning_user(state, &client, &request, session.as_ref()).await? {
        return Ok(response);
    }
    if request.prompt.none {
        let error = if session.as_ref().is_some_and(|s| s.sub.is_some()) {
            "consent_required"
        } else {
            "login_required"
        };
        let description = "user interaction is required";
        return refuse(
            state,
            &client,
            session.as_ref(),
            &request.reply,
            error,
            description,
        )
        .await;
    }
    let session = session.unwrap_or_else(|| Session::anonymous(now));
    let request_id = random_token(32);
    let pending = pending_of(&client, &request, &session, Stage::Consent, now);
    state
        .store
        .put_pending(&digest(&request_id), &pending, PENDING_TTL_SECS)
        .await?;
    let page = consent_page(state, &client, &request, &session, &request_id);
    Ok(with_session(state, page, &session))
}

/// Answers an invalid request whose client and redirect URI are known good.
///
/// RFC 6749 §4.1.2.1 would redirect every such error to the client. But anyone can register a
/// client (RFC 7591) or publish a metadata document naming any redirect URI, so redirecting
/// before the user has chosen to trust it makes us an open redirector (RFC 9700 §4.11.2). The
/// rule: an error raised before the user acted on one of our pages is redirected only when
/// the user signed in to this browser approved this client at this very redirect URI before;
/// otherwise it is shown on our own error page, with nothing to click through. Errors after
/// the user acted (Deny on the consent page, the allow-list after sign-in, the identity
/// provider's answer) are always redirected: the consent page showed where they lead.
async fn refuse(
    state: &AppState,
    client: &Client,
    session: Option<&Session>,
    reply: &ClientReply,
    error: &str,
    description: &str,
) -> Result<Response, PageError> {
    let trusted = remembered_consent(state, session, client)
        .await?
        .is_some_and(|(_, consent)| consent.trusts_redirect_uri(&reply.redirect_uri));
    if trusted {
        return Ok(client_error(state, reply, error, description));
    }
    tracing::info!(
        client_id = %client.client_id,
        error,
        "authorization request refused on our page: the redirect URI is not yet trusted"
    );
    Err(PageError::bad_request(
        "Invalid request",
        format!(
            "The application sent a request this server cannot accept ({error}: {description})."
        ),
    ))
}

fn page_error(error: AuthorizeError) -> PageError {
    match error {
        AuthorizeError::Page(message) => PageError::bad_request("Invalid request", message),
        AuthorizeError::Redirect { description, .. } => {
            PageError::bad_request("Invalid request", description)
        }
    }
}

fn pending_of(
    client: &Client,
    request: &AuthorizeRequest,
    session: &Session,
    stage: Stage,
    now: u64,
) -> PendingAuthorization {
    PendingAuthorization {
        stage,
        client_id: client.client_id.clone(),
        client_name: client.display_name().to_owned(),
        redirect_uri: request.reply.redirect_uri.clone(),
        redirect_uri_explicit: request.reply.redirect_uri_explicit,
        state: request.reply.state.clone(),
        code_challenge: request.code_challenge.clone(),
        resource: request.resource.clone(),
        scopes: request.scopes.clone(),
        browser: digest(&session.bid),
        force_login: request.prompt.login,
        upstream_verifier: None,
        provider: None,
        created_at: now,
    }
}

/// The user signed in to this browser (not revoked since) and their remembered consent to
/// `client`, when there are both.
async fn remembered_consent(
    state: &AppState,
    session: Option<&Session>,
    client: &Client,
) -> Result<Option<(UserRecord, ConsentRecord)>, PageError> {
    let Some(session) = session.filter(|s| s.sub.is_some()) else {
        return Ok(None);
    };
    let Some(user) = flow::signed_in_user(state, session).await? else {
        return Ok(None);
    };
    let consent = state
        .store
        .consent(&user.subject, &client.client_id)
        .await?;
    Ok(consent.map(|consent| (user, consent)))
}

/// A signed-in user who already consented to this client, resource, scopes and redirect URI:
/// finished without a page, from the user record of their last login.
async fn returning_user(
    state: &AppState,
    client: &Client,
    request: &AuthorizeRequest,
    session: Option<&Session>,
) -> Result<Option<Response>, PageError> {
    let Some(session) = session else {
        return Ok(None);
    };
    if request.prompt.login || request.prompt.consent {
        return Ok(None);
    }
    let Some((user, consent)) = remembered_consent(state, Some(session), client).await? else {
        return Ok(None);
    };
    let covered = consent.covers(
        &request.resource,
        &request.scopes,
        &request.reply.redirect_uri,
    );
    if !covered {
        return Ok(None);
    }
    let pending = pending_of(client, request, session, Stage::Consent, state.now());
    flow::complete(state, pending, user, session, false)
        .await
        .map(Some)
}

/// A requested scope as the consent page lists it.
#[derive(Serialize)]
struct ScopeLine<'a> {
    name: &'a str,
    description: String,
}

#[derive(Serialize)]
struct ConsentContext<'a> {
    client_name: &'a str,
    client_id: &'a str,
    /// The host of a metadata document's URL: verified, since we fetched it from there.
    verified_host: Option<String>,
    /// The host of a self-registered client's `client_uri`: anyone may claim any.
    claimed_host: Option<String>,
    unverified: bool,
    service_name: &'a str,
    resource: &'a str,
    scopes: Vec<ScopeLine<'a>>,
    /// Where the browser goes next: scheme, host, port and path of the redirect URI.
    redirect_target: String,
    localhost_only: bool,
    user_login: Option<&'a str>,
    idp_name: String,
    dev_login: bool,
    request_id: &'a str,
    csrf: String,
    action: String,
}

/// The consent page's line for a scope without a configured description.
fn default_scope_description(scope: &str) -> String {
    if scope == "mcp" {
        "Use this MCP server on your behalf: list and call its tools, read its resources and prompts."
            .to_owned()
    } else {
        format!("The permission \u{201c}{scope}\u{201d} of this MCP server.")
    }
}

/// `scheme://host[:port]/path` of a redirect URI: everything that decides which program or
/// site receives the code (the query is the client's own).
fn redirect_target(redirect_uri: &str) -> String {
    url::Url::parse(redirect_uri).map_or_else(
        |_| redirect_uri.to_owned(),
        |url| format!("{}{}", url.origin().ascii_serialization(), url.path()),
    )
}

fn consent_page(
    state: &AppState,
    client: &Client,
    request: &AuthorizeRequest,
    session: &Session,
    request_id: &str,
) -> Response {
    let redirect = RedirectUri::parse(&request.reply.redirect_uri).ok();
    let service = state.settings.service_by_resource(&request.resource);
    let host_of = |uri: &str| {
        url::Url::parse(uri)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
    };
    let (verified_host, claimed_host) = match client.kind {
        ClientKind::MetadataDocument => (host_of(&client.client_id), None),
        ClientKind::Registered => (None, client.client_uri.as_deref().and_then(host_of)),
    };
    let scopes = request
        .scopes
        .iter()
        .map(|scope| ScopeLine {
            name: scope,
            description: service
                .and_then(|s| s.scope_descriptions.get(scope))
                .cloned()
                .unwrap_or_else(|| default_scope_description(scope)),
        })
        .collect();
    let context = ConsentContext {
        client_name: client.display_name(),
        client_id: &client.client_id,
        verified_host,
        claimed_host,
        unverified: client.kind == ClientKind::Registered,
        service_name: service.map_or("", |s| s.name.as_str()),
        resource: &request.resource,
        scopes,
        redirect_target: redirect_target(&request.reply.redirect_uri),
        localhost_only: redirect.as_ref().is_some_and(RedirectUri::is_loopback),
        user_login: session.login.as_deref().filter(|_| session.sub.is_some()),
        idp_name: super::choose::provider_names(state),
        dev_login: state.settings.is_dev_login(),
        request_id,
        csrf: state.sessions.csrf_token(request_id, &session.bid),
        action: state.settings.endpoint(CONSENT_PATH),
    };
    render_page(StatusCode::OK, "consent.html", &context)
}

/// The consent form.
#[derive(Debug, Deserialize)]
pub struct ConsentForm {
    request: String,
    csrf: String,
    decision: String,
}

/// `POST /login/consent`: the user's decision.
pub async fn consent(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<ConsentForm>, FormRejection>,
) -> Response {
    match decide(&state, &headers, form).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn decide(
    state: &AppState,
    headers: &HeaderMap,
    form: Result<Form<ConsentForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form.map_err(|_| {
        PageError::bad_request("Invalid request", "The consent form is incomplete.")
    })?;
    let (pending, session) =
        flow::take_form_pending(state, headers, &form.request, &form.csrf, Stage::Consent).await?;
    let reply = flow::reply_of(&pending);
    match form.decision.as_str() {
        "approve" => {}
        "deny" => {
            tracing::info!(client_id = %pending.client_id, "the user denied consent");
            return Ok(client_error(
                state,
                &reply,
                "access_denied",
                "the user denied the request",
            ));
        }
        _ => {
            return Err(PageError::bad_request(
                "Invalid request",
                "Approve or deny.",
            ));
        }
    }

    if !pending.force_login
        && let Some(user) = flow::signed_in_user(state, &session).await?
    {
        return flow::complete(state, pending, user, &session, false).await;
    }

    super::choose::sign_in_upstream(state, pending, &session).await
}

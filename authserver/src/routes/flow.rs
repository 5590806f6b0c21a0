//! The end of the authorization flow, shared by `/authorize` (returning user), the consent
//! form (signed-in user) and the login callbacks: allow-lists, user record, remembered
//! consent, the authorization code, the session, and the redirect back to the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mcp_auth_proto::store::UserRecord;

use crate::metrics::LoginOutcome;
use crate::oauth::access;
use crate::oauth::authorize::ClientReply;
use crate::pages::PageError;
use crate::secret::Secret;
use crate::secret::digest;
use crate::session::Session;
use crate::state::AppState;
use crate::store::{CodeRecord, PendingAuthorization, Stage};

/// A 303 to `location` that is never cached.
pub fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            let headers = response.headers_mut();
            headers.insert(header::LOCATION, value);
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(_) => PageError::internal().into_response(),
    }
}

/// The redirect back to the client: `params`, its `state`, and `iss` (RFC 9207 §2), appended
/// to the registered redirect URI's own query.
pub fn to_client(reply: &ClientReply, params: &[(&str, &str)], issuer: &str) -> Response {
    let Ok(mut url) = url::Url::parse(&reply.redirect_uri) else {
        return PageError::internal().into_response();
    };
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in params {
            query.append_pair(name, value);
        }
        if let Some(state) = &reply.state {
            query.append_pair("state", state);
        }
        query.append_pair("iss", issuer);
    }
    see_other(url.as_str())
}

/// An error response at the client (RFC 6749 §4.1.2.1), with `state` and `iss`.
pub fn client_error(
    state: &AppState,
    reply: &ClientReply,
    error: &str,
    description: &str,
) -> Response {
    to_client(
        reply,
        &[("error", error), ("error_description", description)],
        state.issuer(),
    )
}

/// The reply target of a pending authorization.
pub fn reply_of(pending: &PendingAuthorization) -> ClientReply {
    ClientReply {
        redirect_uri: pending.redirect_uri.clone(),
        redirect_uri_explicit: pending.redirect_uri_explicit,
        state: pending.state.clone(),
    }
}

/// Adds `Set-Cookie` for `session` to `response`.
pub fn with_session(state: &AppState, mut response: Response, session: &Session) -> Response {
    if let Some(cookie) = state.sessions.set_cookie(session, state.now()) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// Finishes an authorization for `user`: writes the user record (after a fresh login),
/// applies the allow-lists, remembers the consent, issues a code, signs the browser in, and
/// redirects to the client.
pub async fn complete(
    state: &AppState,
    pending: PendingAuthorization,
    user: UserRecord,
    session: &Session,
    fresh_login: bool,
) -> Result<Response, PageError> {
    let settings = &state.settings;
    let reply = reply_of(&pending);
    let Some(service) = settings.service_by_resource(&pending.resource) else {
        return Ok(client_error(
            state,
            &reply,
            "invalid_target",
            "the resource is no longer served",
        ));
    };
    let now = state.now();
    if fresh_login {
        let ttl = (settings.refresh_token_ttl + settings.access_token_ttl).as_secs();
        state.store.put_user(&user, ttl).await?;
    }
    let checked = access::check(&settings.global_access, service.access.as_ref(), &user);
    if fresh_login {
        let provider = pending.provider.as_deref().unwrap_or("unknown");
        let outcome = match checked {
            Ok(()) => LoginOutcome::Admitted,
            Err(_) => LoginOutcome::NotAllowed,
        };
        state.metrics.login(provider, outcome);
    }
    if let Err(list) = checked {
        tracing::info!(
            login = %user.login,
            subject = %user.subject,
            service = %service.name,
            client_id = %pending.client_id,
            ?list,
            "sign-in refused by the allow-list"
        );
        return Ok(client_error(
            state,
            &reply,
            "access_denied",
            "this user is not allowed to use this service",
        ));
    }

    let mut consent = state
        .store
        .consent(&user.subject, &pending.client_id)
        .await?
        .unwrap_or_default();
    if !consent.covers(&pending.resource, &pending.scopes, &pending.redirect_uri) {
        consent.approve(
            &pending.resource,
            &pending.scopes,
            &pending.redirect_uri,
            now,
        );
        state
            .store
            .put_consent(
                &user.subject,
                &pending.client_id,
                &consent,
                settings.refresh_token_ttl.as_secs(),
            )
            .await?;
    }

    let code = Secret::generate();
    let record = CodeRecord {
        client_id: pending.client_id.clone(),
        redirect_uri: pending.redirect_uri.clone(),
        redirect_uri_explicit: pending.redirect_uri_explicit,
        code_challenge: pending.code_challenge.clone(),
        resource: pending.resource.clone(),
        scopes: pending.scopes.clone(),
        subject: user.subject.clone(),
        login: user.login.clone(),
        expires_at: now + settings.code_ttl.as_secs(),
    };
    state
        .store
        .put_code(&code.digest(), &record, settings.code_ttl.as_secs())
        .await?;
    tracing::info!(
        login = %user.login,
        client_id = %pending.client_id,
        service = %service.name,
        "authorization code issued"
    );
    let signed_in = session.signed_in(&user.subject, &user.login, now);
    let response = to_client(&reply, &[("code", code.expose())], state.issuer());
    Ok(with_session(state, response, &signed_in))
}

/// The user a session is signed in as, from the record of their last login; `None` when the
/// session is anonymous, the record is gone, or the user was revoked since signing in (an
/// admin revocation must not be undone by a remembered session).
pub async fn signed_in_user(
    state: &AppState,
    session: &Session,
) -> Result<Option<UserRecord>, PageError> {
    let Some(subject) = session.sub.as_deref() else {
        return Ok(None);
    };
    let revoked = state
        .store
        .revocations_for(&[mcp_auth_proto::store::RevocationTarget::User(
            subject.to_owned(),
        )])
        .await?
        .iter()
        .any(|r| r.covers_issued_at(session.iat));
    if revoked {
        return Ok(None);
    }
    Ok(state.store.user(subject).await?)
}

/// Refuses a form POST that a browser did not send from one of our own pages (CSRF defence on
/// top of the form's token and the `SameSite=Lax` session cookie).
///
/// Browsers say where a request comes from in two headers a page cannot set:
/// - `Sec-Fetch-Site` (Fetch Metadata; Chrome 76, Firefox 90, Safari 16.4): a form we served
///   posting back to us is `same-origin`; `same-site`, `cross-site` and `none` are refused.
///   It decides when present, because it stays exact where `Origin` does not: under a
///   referrer policy of `no-referrer` a browser sends `Origin: null` even for a same-origin
///   form (Fetch §3.1, "serializing a request origin"), which is why our pages use
///   `same-origin` instead (they leak nothing to GitHub or the client either way).
/// - `Origin`, from browsers without Fetch Metadata: it must be the issuer's origin (`null`,
///   sent by sandboxed frames and `data:` pages, is refused).
///
/// A request with neither is not from a browser that could be tricked into posting it: the
/// CSRF token bound to the session cookie is what stops a forgery there.
pub fn check_origin(state: &AppState, headers: &axum::http::HeaderMap) -> Result<(), PageError> {
    let refused = || PageError::forbidden("This form was submitted from another site.");
    if let Some(site) = headers.get("sec-fetch-site") {
        return if site.as_bytes() == b"same-origin" {
            Ok(())
        } else {
            Err(refused())
        };
    }
    match headers.get(header::ORIGIN) {
        None => Ok(()),
        Some(origin) if origin.as_bytes() == state.settings.issuer_origin.as_bytes() => Ok(()),
        Some(_) => Err(refused()),
    }
}

/// The pending authorization one of our forms names (`request`), taken (single use) when the
/// form comes from the browser it was shown to: a same-site post ([`check_origin`]), that
/// browser's session cookie, the CSRF token bound to both, and the stage it was shown at.
pub async fn take_form_pending(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    request: &str,
    csrf: &str,
    stage: Stage,
) -> Result<(PendingAuthorization, Session), PageError> {
    check_origin(state, headers)?;
    let session = state
        .sessions
        .from_headers(headers, state.now())
        .ok_or_else(|| {
            PageError::forbidden("Your session has expired, or this browser does not keep cookies.")
        })?;
    let refused = || PageError::forbidden("This form is not valid for this browser.");
    if !state.sessions.check_csrf(csrf, request, &session.bid) {
        return Err(refused());
    }
    let pending = state
        .store
        .take_pending(&digest(request))
        .await?
        .ok_or_else(|| {
            PageError::bad_request(
                "Request expired",
                "This authorization request has expired or was already answered.",
            )
        })?;
    if pending.stage != stage || pending.browser != digest(&session.bid) {
        return Err(refused());
    }
    Ok((pending, session))
}

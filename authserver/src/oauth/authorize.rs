//! The `/authorize` request (RFC 6749 §4.1.1, OAuth 2.1 §4.1.1, RFC 7636 §4.3, RFC 8707 §2):
//! parsing and validation, in the order that decides *how* an error may be reported.
//!
//! Until the client and its redirect URI are known good, an error is a page shown to the user
//! (RFC 6749 §4.1.2.1): redirecting would make us an open redirector. After that, errors go
//! back to the client's redirect URI with `state` and `iss` (RFC 9207).

use std::collections::HashMap;

use mcp_auth_proto::oauth_error::ErrorCode;

use super::client::Client;
use super::pkce::is_valid_s256_challenge;
use super::redirect_uri::find_match;
use super::scope::resolve_requested;
use crate::settings::Settings;

/// Longest `state` echoed back.
const MAX_STATE_LEN: usize = 2048;

/// Query parameters, keeping repeats so they can be refused (RFC 6749 §3.1).
#[derive(Debug, Default)]
pub struct Params(HashMap<String, Vec<String>>);

/// A parameter given more than once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repeated(pub String);

impl Params {
    pub fn parse(query: &str) -> Self {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            map.entry(name.into_owned())
                .or_default()
                .push(value.into_owned());
        }
        Self(map)
    }

    /// The one value of `name` (empty values count as absent).
    pub fn single(&self, name: &str) -> Result<Option<&str>, Repeated> {
        match self.0.get(name).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([value]) => Ok(Some(value.as_str()).filter(|v| !v.is_empty())),
            Some(_) => Err(Repeated(name.to_owned())),
        }
    }
}

/// Where and how to answer the client (known good from here on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientReply {
    pub redirect_uri: String,
    pub redirect_uri_explicit: bool,
    pub state: Option<String>,
}

/// How an invalid request is reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    /// Before the redirect URI is trusted: shown as a page.
    Page(String),
    /// Sent back to the client's redirect URI.
    Redirect {
        reply: ClientReply,
        error: &'static str,
        description: String,
    },
}

/// `prompt` (OpenID Connect Core §3.1.2.1), as far as it applies here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// A valid authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizeRequest {
    pub reply: ClientReply,
    pub code_challenge: String,
    pub resource: String,
    pub scopes: Vec<String>,
    pub prompt: Prompt,
}

/// Step 1: the client and redirect URI. `client_id` must be resolved by the caller first
/// (see [`client_id`]); this checks the redirect URI and the client's `state`.
pub fn client_reply(params: &Params, client: &Client) -> Result<ClientReply, AuthorizeError> {
    let page = |m: &str| AuthorizeError::Page(m.to_owned());
    let requested = params
        .single("redirect_uri")
        .map_err(|_| page("redirect_uri is given more than once."))?;
    let (redirect_uri, explicit) = match requested {
        Some(requested) => {
            if find_match(&client.redirect_uris, requested).is_none() {
                return Err(page(
                    "The redirect_uri is not registered for this client. The request may have been tampered with.",
                ));
            }
            (requested.to_owned(), true)
        }
        None => match client.redirect_uris.as_slice() {
            [only] => (only.as_str().to_owned(), false),
            _ => {
                return Err(page(
                    "redirect_uri is required: this client has registered several.",
                ));
            }
        },
    };
    let state = params
        .single("state")
        .map_err(|_| page("state is given more than once."))?
        .map(str::to_owned);
    if state.as_ref().is_some_and(|s| s.len() > MAX_STATE_LEN) {
        return Err(page("state is too long."));
    }
    Ok(ClientReply {
        redirect_uri,
        redirect_uri_explicit: explicit,
        state,
    })
}

/// The `client_id`, or a page error.
pub fn client_id(params: &Params) -> Result<&str, AuthorizeError> {
    match params.single("client_id") {
        Ok(Some(id)) => Ok(id),
        Ok(None) => Err(AuthorizeError::Page("client_id is missing.".to_owned())),
        Err(_) => Err(AuthorizeError::Page(
            "client_id is given more than once.".to_owned(),
        )),
    }
}

/// Step 2: everything else, reported to the client.
pub fn validate(
    params: &Params,
    reply: ClientReply,
    settings: &Settings,
) -> Result<AuthorizeRequest, AuthorizeError> {
    let fail = |error: ErrorCode, description: &str| AuthorizeError::Redirect {
        reply: reply.clone(),
        error: error.as_str(),
        description: description.to_owned(),
    };
    let single = |name: &str| {
        params.single(name).map_err(|Repeated(name)| {
            fail(
                ErrorCode::InvalidRequest,
                &format!("{name} is given more than once"),
            )
        })
    };

    match single("response_type")? {
        Some("code") => {}
        Some(_) => {
            return Err(fail(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ));
        }
        None => return Err(fail(ErrorCode::InvalidRequest, "response_type is required")),
    }
    match single("response_mode")? {
        None | Some("query") => {}
        Some(_) => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "only response_mode=query is supported",
            ));
        }
    }
    let code_challenge = single("code_challenge")?.ok_or_else(|| {
        fail(
            ErrorCode::InvalidRequest,
            "code_challenge is required (PKCE, OAuth 2.1 §4.1.1)",
        )
    })?;
    if single("code_challenge_method")? != Some("S256") {
        return Err(fail(
            ErrorCode::InvalidRequest,
            "code_challenge_method must be S256",
        ));
    }
    if !is_valid_s256_challenge(code_challenge) {
        return Err(fail(
            ErrorCode::InvalidRequest,
            "code_challenge is not a base64url SHA-256",
        ));
    }
    let resource = params.single("resource").map_err(|_| {
        fail(
            ErrorCode::InvalidTarget,
            "one resource per request: this server issues tokens for a single audience",
        )
    })?;
    let service = resource
        .and_then(|r| settings.service_by_resource(r))
        .ok_or_else(|| {
            fail(
                ErrorCode::InvalidTarget,
                "resource is missing or not a resource of this server (RFC 8707)",
            )
        })?;
    let scopes = resolve_requested(single("scope")?, &service.scopes)
        .map_err(|problem| fail(ErrorCode::InvalidScope, &problem))?;
    let mut prompt = Prompt::default();
    for value in single("prompt")?.unwrap_or_default().split(' ') {
        match value {
            "none" => prompt.none = true,
            "login" | "select_account" => prompt.login = true,
            "consent" => prompt.consent = true,
            _ => {}
        }
    }
    if prompt.none && (prompt.login || prompt.consent) {
        return Err(fail(
            ErrorCode::InvalidRequest,
            "prompt=none cannot be combined with other values",
        ));
    }
    Ok(AuthorizeRequest {
        reply,
        code_challenge: code_challenge.to_owned(),
        resource: service.resource.clone(),
        scopes,
        prompt,
    })
}

#[cfg(test)]
mod tests;

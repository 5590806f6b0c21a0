//! Clients: validation of RFC 7591 metadata (registration and Client ID Metadata Documents),
//! the stored client record, and the resolved view the other endpoints use.

use mcp_auth_proto::registration::{ClientInformation, ClientMetadata};
use mcp_auth_proto::scope::{Scope, split_scope_param};
use serde::{Deserialize, Serialize};

use super::redirect_uri::RedirectUri;

/// Most redirect URIs one client may register.
pub const MAX_REDIRECT_URIS: usize = 20;
const MAX_NAME_LEN: usize = 200;
const MAX_URI_LEN: usize = 2048;
const MAX_CONTACTS: usize = 10;
const MAX_CONTACT_LEN: usize = 320;
const MAX_SCOPE_LEN: usize = 1024;

/// Client authentication at the token endpoint (RFC 7591 §2, RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// A public client: no secret (native apps, MCP clients).
    None,
    ClientSecretBasic,
    ClientSecretPost,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::None => "none",
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
        }
    }

    pub fn is_confidential(self) -> bool {
        self != AuthMethod::None
    }
}

/// Where a client's metadata comes from; decides the defaults and what is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataSource {
    /// RFC 7591 registration: `token_endpoint_auth_method` defaults to `client_secret_basic`.
    Registration,
    /// A Client ID Metadata Document: public, so no shared secret, default `none`.
    MetadataDocument,
}

/// Why client metadata was refused (RFC 7591 §3.2.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("{0}")]
    InvalidRedirectUri(String),
    #[error("{0}")]
    InvalidClientMetadata(String),
}

/// Validated metadata: the normalised document (every default filled in) and its parts.
#[derive(Debug, Clone)]
pub struct ValidMetadata {
    pub metadata: ClientMetadata,
    pub redirect_uris: Vec<RedirectUri>,
    pub auth_method: AuthMethod,
}

fn invalid(problem: impl Into<String>) -> MetadataError {
    MetadataError::InvalidClientMetadata(problem.into())
}

/// Validates and normalises client metadata.
///
/// Redirect URIs must be https, or http on loopback (AS-13), whatever the `application_type`
/// (which is checked, and inferred when absent: `native` when a redirect URI is loopback).
/// Only the authorization code flow exists here, so `grant_types` must include
/// `authorization_code` (default) and may add `refresh_token`; `response_types` is `code`.
pub fn validate(
    mut m: ClientMetadata,
    source: MetadataSource,
) -> Result<ValidMetadata, MetadataError> {
    if m.redirect_uris.is_empty() {
        return Err(MetadataError::InvalidRedirectUri(
            "redirect_uris is required".to_owned(),
        ));
    }
    if m.redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(MetadataError::InvalidRedirectUri(format!(
            "at most {MAX_REDIRECT_URIS} redirect_uris"
        )));
    }
    let redirect_uris = m
        .redirect_uris
        .iter()
        .map(|r| RedirectUri::parse(r).map_err(MetadataError::InvalidRedirectUri))
        .collect::<Result<Vec<_>, _>>()?;

    let auth_method = match (m.token_endpoint_auth_method.as_deref(), source) {
        (None, MetadataSource::Registration) => AuthMethod::ClientSecretBasic,
        (None, MetadataSource::MetadataDocument) | (Some("none"), _) => AuthMethod::None,
        (Some("client_secret_basic"), MetadataSource::Registration) => {
            AuthMethod::ClientSecretBasic
        }
        (Some("client_secret_post"), MetadataSource::Registration) => AuthMethod::ClientSecretPost,
        (Some("client_secret_basic" | "client_secret_post"), MetadataSource::MetadataDocument) => {
            return Err(invalid(
                "a client identified by a metadata document cannot use a shared secret",
            ));
        }
        (Some(other), _) => {
            return Err(invalid(format!(
                "token_endpoint_auth_method {other:?} is not supported (none, client_secret_basic, client_secret_post)"
            )));
        }
    };
    m.token_endpoint_auth_method = Some(auth_method.as_str().to_owned());

    let grant_types = m
        .grant_types
        .take()
        .unwrap_or_else(|| vec!["authorization_code".to_owned()]);
    for grant in &grant_types {
        if !matches!(grant.as_str(), "authorization_code" | "refresh_token") {
            return Err(invalid(format!(
                "grant type {grant:?} is not supported (authorization_code, refresh_token)"
            )));
        }
    }
    if !grant_types.iter().any(|g| g == "authorization_code") {
        return Err(invalid(
            "grant_types must include authorization_code, the only flow this server offers",
        ));
    }
    m.grant_types = Some(dedup(grant_types));

    let response_types = m
        .response_types
        .take()
        .unwrap_or_else(|| vec!["code".to_owned()]);
    if response_types.iter().any(|r| r != "code") || response_types.is_empty() {
        return Err(invalid("response_types must be [\"code\"]"));
    }
    m.response_types = Some(dedup(response_types));

    let application_type = match m.application_type.as_deref() {
        Some(t @ ("native" | "web")) => t.to_owned(),
        Some(other) => {
            return Err(invalid(format!(
                "application_type {other:?} is neither native nor web"
            )));
        }
        None if redirect_uris.iter().any(RedirectUri::is_loopback) => "native".to_owned(),
        None => "web".to_owned(),
    };
    m.application_type = Some(application_type);

    if let Some(name) = &m.client_name {
        check_text("client_name", name, MAX_NAME_LEN)?;
    }
    for (field, value) in [
        ("client_uri", &m.client_uri),
        ("logo_uri", &m.logo_uri),
        ("tos_uri", &m.tos_uri),
        ("policy_uri", &m.policy_uri),
    ] {
        if let Some(uri) = value {
            check_web_uri(field, uri)?;
        }
    }
    if let Some(scope) = &m.scope {
        if scope.len() > MAX_SCOPE_LEN {
            return Err(invalid("scope is too long"));
        }
        for token in split_scope_param(scope) {
            Scope::new(token).map_err(|e| invalid(format!("scope: {e}")))?;
        }
    }
    if let Some(contacts) = &m.contacts {
        if contacts.len() > MAX_CONTACTS {
            return Err(invalid(format!("at most {MAX_CONTACTS} contacts")));
        }
        for contact in contacts {
            check_text("contacts", contact, MAX_CONTACT_LEN)?;
        }
    }
    for (field, value) in [
        ("software_id", &m.software_id),
        ("software_version", &m.software_version),
    ] {
        if let Some(text) = value {
            check_text(field, text, MAX_NAME_LEN)?;
        }
    }
    Ok(ValidMetadata {
        metadata: m,
        redirect_uris,
        auth_method,
    })
}

fn dedup(values: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for v in values {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

fn check_text(field: &str, value: &str, max: usize) -> Result<(), MetadataError> {
    if value.chars().count() > max {
        return Err(invalid(format!("{field} is longer than {max} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(format!("{field} contains control characters")));
    }
    if let Some(c) = value.chars().find(|c| is_invisible_format(*c)) {
        return Err(invalid(format!(
            "{field} contains the invisible or bidirectional format character U+{:04X}",
            u32::from(c)
        )));
    }
    Ok(())
}

/// Characters that change how the text around them reads without being seen: bidirectional
/// embeddings, overrides, isolates and marks (a right-to-left override turns the rest of a
/// consent sentence backwards), zero-width characters, and other Unicode format (`Cf`)
/// characters a name has no use for.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

fn check_web_uri(field: &str, value: &str) -> Result<(), MetadataError> {
    if value.len() > MAX_URI_LEN {
        return Err(invalid(format!("{field} is too long")));
    }
    match url::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "https" | "http") && url.host().is_some() => Ok(()),
        _ => Err(invalid(format!("{field} must be an http(s) URL"))),
    }
}

/// A registered client as stored in Redis ([`mcp_auth_proto::store::KeySpace::client`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRecord {
    pub client_id: String,
    /// Normalised metadata (see [`validate`]).
    pub metadata: ClientMetadata,
    /// SHA-256 of the client secret, for confidential clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_digest: Option<String>,
    /// SHA-256 of the RFC 7592 registration access token.
    pub registration_token_digest: String,
    pub issued_at: u64,
    /// `None`: never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// False until a code is first exchanged: until then the record lives only
    /// `tokens.unused_client_registration`. Records written before this field count as used.
    #[serde(default = "used_by_default")]
    pub used: bool,
}

fn used_by_default() -> bool {
    true
}

impl ClientRecord {
    /// The RFC 7591 §3.2.1 / RFC 7592 §3 response body (secrets only when just issued).
    pub fn information(
        &self,
        registration_client_uri: String,
        client_secret: Option<String>,
        registration_access_token: Option<String>,
    ) -> ClientInformation {
        ClientInformation {
            client_id: self.client_id.clone(),
            client_secret,
            client_id_issued_at: Some(self.issued_at),
            client_secret_expires_at: self
                .secret_digest
                .as_ref()
                .map(|_| self.expires_at.unwrap_or(0)),
            registration_access_token,
            registration_client_uri: Some(registration_client_uri),
            metadata: self.metadata.clone(),
        }
    }
}

/// Where a resolved client came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    Registered,
    MetadataDocument,
}

/// A client as `/authorize`, `/token`, `/revoke` and `/introspect` see it.
#[derive(Debug, Clone)]
pub struct Client {
    pub client_id: String,
    pub kind: ClientKind,
    pub name: Option<String>,
    pub client_uri: Option<String>,
    pub redirect_uris: Vec<RedirectUri>,
    pub auth_method: AuthMethod,
    pub secret_digest: Option<String>,
    pub may_refresh: bool,
    /// A registration no code was exchanged for yet (still on its short unused lifetime).
    pub awaiting_first_use: bool,
}

impl Client {
    /// The resolved view of validated metadata.
    pub fn from_metadata(
        client_id: String,
        kind: ClientKind,
        valid: ValidMetadata,
        secret_digest: Option<String>,
    ) -> Self {
        let m = valid.metadata;
        Self {
            client_id,
            kind,
            may_refresh: m
                .grant_types
                .as_ref()
                .is_some_and(|g| g.iter().any(|g| g == "refresh_token")),
            name: m.client_name,
            client_uri: m.client_uri,
            redirect_uris: valid.redirect_uris,
            auth_method: valid.auth_method,
            secret_digest,
            awaiting_first_use: false,
        }
    }

    /// The resolved view of a stored record; `None` if the stored metadata no longer
    /// validates (then the client is treated as unknown).
    pub fn from_record(record: ClientRecord) -> Option<Self> {
        let valid = validate(record.metadata, MetadataSource::Registration).ok()?;
        let client = Self::from_metadata(
            record.client_id,
            ClientKind::Registered,
            valid,
            record.secret_digest,
        );
        Some(Self {
            awaiting_first_use: !record.used,
            ..client
        })
    }

    /// The name shown to users: the registered name, else the client id.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.client_id)
    }
}

#[cfg(test)]
mod tests;

//! What the authserver keeps in Redis between requests. Secrets are never fields: records
//! are stored *under* the digest of the secret that finds them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Where a pending authorization request is in the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Shown the consent page; stored under the digest of the request id in the form.
    Consent,
    /// Approved, with several identity providers: shown the page to choose one; stored under
    /// the digest of the choice form's request id.
    Choose,
    /// Approved and sent to the identity provider; stored under the digest of the upstream
    /// `state` (AS-16: random, single-use, ≤ 10 minutes, only after consent).
    Login,
}

/// A validated `/authorize` request waiting for consent or login (≤ 10 minutes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAuthorization {
    pub stage: Stage,
    pub client_id: String,
    pub client_name: String,
    /// The redirect URI to answer at, exactly as requested (or the only registered one).
    pub redirect_uri: String,
    /// Whether the request named `redirect_uri` (then `/token` must repeat it, RFC 6749 §4.1.3).
    pub redirect_uri_explicit: bool,
    /// The client's `state`, returned unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    pub code_challenge: String,
    pub resource: String,
    pub scopes: Vec<String>,
    /// Digest of the browser id of the session that started the request.
    pub browser: String,
    /// `prompt=login`: sign in again even with a session.
    #[serde(default)]
    pub force_login: bool,
    /// The PKCE verifier of our own request to the identity provider (stage `Login`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_verifier: Option<String>,
    /// The identity provider the user was sent to (stage `Login`): the callback exchanges
    /// the code with that one only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    pub created_at: u64,
}

/// An authorization code's grant, stored under the code's digest (single use).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeRecord {
    pub client_id: String,
    pub redirect_uri: String,
    pub redirect_uri_explicit: bool,
    pub code_challenge: String,
    pub resource: String,
    pub scopes: Vec<String>,
    pub subject: String,
    pub login: String,
    pub expires_at: u64,
}

/// A grant: one user's authorization of one client for one resource. Every token issued from
/// one code carries its id; deleting it ends refreshes, revoking it ends everything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRecord {
    pub client_id: String,
    pub subject: String,
    pub resource: String,
    pub scopes: Vec<String>,
    pub created_at: u64,
}

/// A refresh token, stored under its digest. Rotation copies it to the new token's digest
/// and marks the old one used (reuse detection).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshRecord {
    pub grant_id: String,
    pub client_id: String,
    /// The user (`sub`).
    pub sub: String,
    pub login: String,
    pub resource: String,
    pub scopes: Vec<String>,
    /// When the grant was made: revocations of its user or client at or after it end it.
    pub grant_created_at: u64,
}

/// Remembered consent of one user for one client: the scopes approved per resource, and the
/// redirect URIs the user saw on the consent page when approving.
///
/// Consent covers a redirect URI exactly (scheme, host, port, path and query): a client whose
/// metadata later gains a redirect URI, or a loopback client on another port (which may be
/// another local program), is asked again rather than handed a code silently.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRecord {
    pub resources: BTreeMap<String, Vec<String>>,
    /// Most recent last; records written before this field existed cover no redirect URI.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    pub updated_at: u64,
}

/// Redirect URIs remembered per user and client (the oldest are forgotten first).
const MAX_REMEMBERED_REDIRECT_URIS: usize = 16;

impl ConsentRecord {
    /// True when the user approved at least `scopes` for `resource`, answered at `redirect_uri`.
    pub fn covers(&self, resource: &str, scopes: &[String], redirect_uri: &str) -> bool {
        self.trusts_redirect_uri(redirect_uri)
            && self
                .resources
                .get(resource)
                .is_some_and(|approved| crate::oauth::scope::covered_by(scopes, approved))
    }

    /// True when the user approved this client with `redirect_uri` before: the one case in
    /// which an error may be redirected there without asking (RFC 9700 §4.11.2).
    pub fn trusts_redirect_uri(&self, redirect_uri: &str) -> bool {
        self.redirect_uris.iter().any(|r| r == redirect_uri)
    }

    /// Adds an approval of `scopes` for `resource`, answered at `redirect_uri`.
    pub fn approve(&mut self, resource: &str, scopes: &[String], redirect_uri: &str, now: u64) {
        let approved = self.resources.entry(resource.to_owned()).or_default();
        for scope in scopes {
            if !approved.contains(scope) {
                approved.push(scope.clone());
            }
        }
        self.redirect_uris.retain(|r| r != redirect_uri);
        self.redirect_uris.push(redirect_uri.to_owned());
        let excess = self
            .redirect_uris
            .len()
            .saturating_sub(MAX_REMEMBERED_REDIRECT_URIS);
        self.redirect_uris.drain(..excess);
        self.updated_at = now;
    }
}

/// The outcome of presenting an authorization code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeOutcome {
    /// First use: the grant it carries.
    Fresh(CodeRecord),
    /// Used before: the grant issued from the first use, to revoke.
    Replayed { grant_id: String },
    /// Unknown or expired.
    Missing,
}

/// The outcome of presenting a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// Rotated: the new token is stored with this record.
    Rotated(RefreshRecord),
    /// Rotated within the grace: the same successor, sealed under the presented token.
    RetriedWithinGrace {
        record: RefreshRecord,
        sealed_successor: String,
    },
    /// Already rotated: a replay of an old token. Revoke the grant.
    Reused(RefreshRecord),
    /// The grant, its user or its client was revoked.
    Revoked,
    /// The token belongs to another client.
    WrongClient,
    Missing,
}

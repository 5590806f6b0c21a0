//! The Redis key layout, defined once for the authserver (writer) and ext_authz (reader).
//!
//! Every key starts with the deployment's `redis.key_prefix` (e.g. `mcp-auth:`). Secrets are
//! never part of a key or value: codes, refresh tokens and registration tokens appear only as
//! [`secret_digest`]s computed by the authserver.

use serde::{Deserialize, Serialize};

/// Builds keys under one deployment's prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpace {
    prefix: String,
}

impl KeySpace {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A registered client (JSON, TTL = client lifetime).
    pub fn client(&self, client_id: &str) -> String {
        format!("{}client:{client_id}", self.prefix)
    }
    /// A pending authorization request between `/authorize` and the login callback (≤ 10 min).
    pub fn authorization_request(&self, state_digest: &str) -> String {
        format!("{}authz:{state_digest}", self.prefix)
    }
    /// An authorization code, by digest (single use, TTL = code lifetime).
    pub fn authorization_code(&self, code_digest: &str) -> String {
        format!("{}code:{code_digest}", self.prefix)
    }
    /// A refresh token, by digest.
    pub fn refresh_token(&self, token_digest: &str) -> String {
        format!("{}refresh:{token_digest}", self.prefix)
    }
    /// A grant: one user's authorization of one client for one resource.
    pub fn grant(&self, grant_id: &str) -> String {
        format!("{}grant:{grant_id}", self.prefix)
    }
    /// Remembered consent of a user for a client.
    pub fn consent(&self, subject: &str, client_id: &str) -> String {
        format!("{}consent:{subject}:{client_id}", self.prefix)
    }
    /// What the identity provider said of a user at their last login ([`UserRecord`]).
    pub fn user(&self, subject: &str) -> String {
        format!("{}user:{subject}", self.prefix)
    }
    /// Pattern matching every user record (for `SCAN`). The prefix is not escaped: ext_authz
    /// escapes it where it scans; the patterns below (built with [`match_prefix`]) are escaped.
    pub fn user_pattern(&self) -> String {
        format!("{}user:*", self.prefix)
    }
    /// Pattern matching every registered client (for `SCAN`).
    pub fn client_pattern(&self) -> String {
        match_prefix(&self.client(""))
    }
    /// Pattern matching every grant (for `SCAN`).
    pub fn grant_pattern(&self) -> String {
        match_prefix(&self.grant(""))
    }
    /// Pattern matching every refresh token record (for `SCAN`).
    pub fn refresh_token_pattern(&self) -> String {
        match_prefix(&self.refresh_token(""))
    }
    /// Pattern matching every remembered consent (for `SCAN`).
    pub fn consent_pattern(&self) -> String {
        match_prefix(&self.consent_namespace())
    }
    /// Pattern matching the remembered consents of one user, for every client (for `SCAN`).
    pub fn consent_pattern_of(&self, subject: &str) -> String {
        match_prefix(&self.consent(subject, ""))
    }
    /// What every consent key starts with (`<prefix>consent:`).
    pub fn consent_namespace(&self) -> String {
        format!("{}consent:", self.prefix)
    }
    /// A revocation ([`RevocationEvent`] JSON, TTL until nothing it covers can still be valid).
    pub fn revocation(&self, target: &RevocationTarget) -> String {
        format!("{}revoked:{}:{}", self.prefix, target.kind(), target.id())
    }
    /// Pattern matching every revocation (for `SCAN` at resync). The prefix is not escaped
    /// (see [`KeySpace::user_pattern`]).
    pub fn revocation_pattern(&self) -> String {
        format!("{}revoked:*", self.prefix)
    }
    /// What every revocation key starts with (`<prefix>revoked:`).
    pub fn revocation_namespace(&self) -> String {
        format!("{}revoked:", self.prefix)
    }
    /// A rate-limit cell: the GCRA theoretical arrival time of one client address in one
    /// bucket (milliseconds, TTL = how far ahead it is), shared by every authserver replica.
    pub fn rate_limit(&self, bucket: &str, client: &str) -> String {
        format!("{}ratelimit:{bucket}:{client}", self.prefix)
    }
    /// Pub/sub channel on which every user record is published as it is written (a login):
    /// ext_authz's allow-lists and `mcp_policy` see new orgs and teams at once.
    pub fn user_channel(&self) -> String {
        format!("{}events:users", self.prefix)
    }
    /// Pub/sub channel on which every revocation is published as it is written.
    pub fn revocation_channel(&self) -> String {
        format!("{}events:revocations", self.prefix)
    }

    /// A key relative to the prefix (`client:abc` for `<prefix>client:abc`), `None` for a key
    /// of another deployment. Backups store keys this way, so they restore under any prefix.
    pub fn relative<'k>(&self, key: &'k str) -> Option<&'k str> {
        key.strip_prefix(&self.prefix)
    }

    /// The key of a relative key (the inverse of [`KeySpace::relative`]).
    pub fn absolute(&self, relative: &str) -> String {
        format!("{}{relative}", self.prefix)
    }
}

/// A `SCAN MATCH` pattern for every key that starts with `literal` (a key built by
/// [`KeySpace`] with an empty id, `keys.user("")`): the prefix and ids are literal text, so
/// glob characters in them are escaped (under a prefix `a*:` it matches that prefix only).
pub fn match_prefix(literal: &str) -> String {
    let mut pattern = String::with_capacity(literal.len() + 1);
    for c in literal.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('*');
    pattern
}

/// What is revoked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum RevocationTarget {
    /// One access or refresh token, by its `jti`.
    Token(String),
    /// Every token of a grant (refresh-token reuse, admin).
    Grant(String),
    /// Every token of a user (`sub`).
    User(String),
    /// Every token of a client (deleted, expired, admin).
    Client(String),
}

impl RevocationTarget {
    pub fn kind(&self) -> &'static str {
        match self {
            RevocationTarget::Token(_) => "token",
            RevocationTarget::Grant(_) => "grant",
            RevocationTarget::User(_) => "user",
            RevocationTarget::Client(_) => "client",
        }
    }

    pub fn id(&self) -> &str {
        match self {
            RevocationTarget::Token(id)
            | RevocationTarget::Grant(id)
            | RevocationTarget::User(id)
            | RevocationTarget::Client(id) => id,
        }
    }
}

/// A revocation, stored at [`KeySpace::revocation`] and published on
/// [`KeySpace::revocation_channel`] as JSON.
///
/// A token is revoked by it when the token matches [`RevocationEvent::target`] and was issued
/// (`iat`) at or before `revoked_at`: a revoked user who signs in again gets working tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationEvent {
    #[serde(flatten)]
    pub target: RevocationTarget,
    /// Seconds since the Unix epoch.
    pub revoked_at: u64,
    /// After this instant no token the revocation covers can be valid; the record may go.
    pub expires_at: u64,
}

impl RevocationEvent {
    /// True when this revocation applies to a token issued at `issued_at`.
    pub fn covers_issued_at(&self, issued_at: u64) -> bool {
        issued_at <= self.revoked_at
    }
}

/// What the identity provider said of a user at their last login, for live allow-list checks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// Stable id at the identity provider (GitHub's numeric user id).
    pub subject: String,
    pub login: String,
    /// Organisation logins.
    #[serde(default)]
    pub orgs: Vec<String>,
    /// Teams as `org/team-slug`.
    #[serde(default)]
    pub teams: Vec<String>,
    /// The email address, only when the provider said it is verified (OIDC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Groups from the provider's groups claim (OIDC).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Seconds since the Unix epoch.
    pub updated_at: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocation_event_wire_format() {
        let event = RevocationEvent {
            target: RevocationTarget::Grant("g1".into()),
            revoked_at: 10,
            expires_at: 20,
        };
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"grant","id":"g1","revoked_at":10,"expires_at":20}"#
        );
        assert_eq!(
            serde_json::from_str::<RevocationEvent>(&json).unwrap(),
            event
        );
        assert_eq!(
            KeySpace::new("p:").revocation(&event.target),
            "p:revoked:grant:g1"
        );
    }

    #[test]
    fn patterns_match_one_kind_under_a_literal_prefix() {
        let keys = KeySpace::new("mcp-auth:");
        assert_eq!(keys.client_pattern(), "mcp-auth:client:*");
        assert_eq!(keys.grant_pattern(), "mcp-auth:grant:*");
        assert_eq!(keys.refresh_token_pattern(), "mcp-auth:refresh:*");
        assert_eq!(keys.consent_pattern(), "mcp-auth:consent:*");
        assert_eq!(keys.consent_pattern_of("42"), "mcp-auth:consent:42:*");
        assert_eq!(match_prefix(&keys.user("")), "mcp-auth:user:*");
        assert_eq!(
            match_prefix(&keys.revocation_namespace()),
            "mcp-auth:revoked:*"
        );
        let odd = KeySpace::new("a*[b]?\\:");
        assert_eq!(odd.client_pattern(), r"a\*\[b\]\?\\:client:*");
        assert_eq!(odd.consent_pattern_of("x*"), r"a\*\[b\]\?\\:consent:x\*:*");
    }

    #[test]
    fn relative_keys_move_between_prefixes() {
        let from = KeySpace::new("old:");
        let to = KeySpace::new("new:");
        let key = from.grant("g1");
        let relative = from.relative(&key).unwrap();
        assert_eq!(relative, "grant:g1");
        assert_eq!(to.absolute(relative), "new:grant:g1");
        assert_eq!(to.relative(&key), None);
    }

    #[test]
    fn revocation_covers_tokens_issued_up_to_it() {
        let event = RevocationEvent {
            target: RevocationTarget::User("1".into()),
            revoked_at: 100,
            expires_at: 200,
        };
        assert!(event.covers_issued_at(99));
        assert!(event.covers_issued_at(100));
        assert!(!event.covers_issued_at(101));
    }
}

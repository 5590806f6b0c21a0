//! The access token: a JWT (RFC 9068 profile) signed by the authserver, verified by the filter.

use serde::{Deserialize, Serialize};

/// `typ` header value of access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Claims of an access token (RFC 9068 §2.2, RFC 7519 §4.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    /// Issuer: the gateway's public issuer URL, byte-identical to the RFC 8414 `issuer`.
    pub iss: String,
    /// Subject: the stable user id at the identity provider (GitHub's numeric id).
    pub sub: String,
    /// Audience: the canonical URI of the one MCP resource the token is for (RFC 8707 §2).
    pub aud: Audience,
    pub exp: u64,
    pub iat: u64,
    pub nbf: u64,
    /// Token id, unique per token; revocation is keyed on it.
    pub jti: String,
    /// RFC 9068 §2.2: the client the token was issued to.
    pub client_id: String,
    /// Space-delimited granted scopes (RFC 9068 §2.2.3, RFC 6749 §3.3).
    #[serde(default)]
    pub scope: String,
    /// The user's login name at the identity provider (OIDC `preferred_username`).
    #[serde(default)]
    pub preferred_username: String,
    /// The grant (one user authorization of one client) this token descends from.
    pub grant_id: String,
}

/// RFC 7519 §4.1.3: `aud` is one string or an array of strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    /// True when `resource` is one of the audiences (exact string comparison, RFC 7519 §4.1.3).
    pub fn contains(&self, resource: &str) -> bool {
        match self {
            Audience::One(aud) => aud == resource,
            Audience::Many(auds) => auds.iter().any(|aud| aud == resource),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audience_is_one_string_or_an_array() {
        let one: Audience = serde_json::from_str(r#""https://a/mcp""#).unwrap();
        let many: Audience = serde_json::from_str(r#"["https://b/mcp","https://a/mcp"]"#).unwrap();
        assert!(one.contains("https://a/mcp"));
        assert!(many.contains("https://a/mcp"));
        assert!(!one.contains("https://a/mcp/"));
        assert!(!many.contains("https://c/mcp"));
    }
}

//! Dynamic client registration: RFC 7591 client metadata and responses, RFC 7592 management,
//! and the OAuth Client ID Metadata Document that carries the same metadata.
//!
//! Every member is optional on the wire and unknown members are ignored (RFC 7591 §2); the
//! authorization server validates and fills in defaults.

use serde::{Deserialize, Serialize};

/// RFC 7591 §2 client metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientMetadata {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirect_uris: Vec<String>,
    /// `none`, `client_secret_basic` (the RFC 7591 default) or `client_secret_post`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_types: Option<Vec<String>>,
    /// OpenID Connect Dynamic Client Registration 1.0 §2: `native` or `web`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    /// Space-delimited scopes the client may request (RFC 6749 §3.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contacts: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
}

/// RFC 7591 §3.2.1 client information response (also RFC 7592 §3 read and update responses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientInformation {
    pub client_id: String,
    /// Only in the response that issued it: stored hashed, it cannot be shown again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// Seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id_issued_at: Option<u64>,
    /// RFC 7591 §3.2.1: required when a secret exists; `0` means it never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<u64>,
    /// RFC 7592 §3: the bearer token for the management endpoint (only when issued).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_access_token: Option<String>,
    /// RFC 7592 §3: the management endpoint of this client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_client_uri: Option<String>,
    #[serde(flatten)]
    pub metadata: ClientMetadata,
}

/// RFC 7592 §2.2 update request: the full metadata plus the client's identifiers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientUpdateRequest {
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(flatten)]
    pub metadata: ClientMetadata,
}

/// An OAuth Client ID Metadata Document (draft-ietf-oauth-client-id-metadata-document §3):
/// client metadata served at the https URL that is the `client_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientIdMetadataDocument {
    /// Must equal the URL the document was fetched from, exactly.
    pub client_id: String,
    #[serde(flatten)]
    pub metadata: ClientMetadata,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_members_are_ignored_and_absent_ones_default() {
        let m: ClientMetadata = serde_json::from_str(
            r#"{"redirect_uris":["http://127.0.0.1:1/cb"],"jwks":{"keys":[]},"client_name":"x"}"#,
        )
        .unwrap();
        assert_eq!(m.redirect_uris, ["http://127.0.0.1:1/cb"]);
        assert_eq!(m.client_name.as_deref(), Some("x"));
        assert_eq!(m.grant_types, None);
    }

    #[test]
    fn information_flattens_metadata() {
        let info = ClientInformation {
            client_id: "c1".into(),
            client_secret: None,
            client_id_issued_at: Some(1),
            client_secret_expires_at: None,
            registration_access_token: Some("t".into()),
            registration_client_uri: Some("https://as/register/c1".into()),
            metadata: ClientMetadata {
                redirect_uris: vec!["https://app/cb".into()],
                token_endpoint_auth_method: Some("none".into()),
                ..ClientMetadata::default()
            },
        };
        let json = serde_json::to_value(&info).unwrap();
        assert_eq!(json["token_endpoint_auth_method"], "none");
        assert_eq!(json["redirect_uris"][0], "https://app/cb");
        assert!(json.get("client_secret").is_none());
    }
}

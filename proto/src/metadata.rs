//! Discovery documents: RFC 8414 authorization server metadata and RFC 9728 protected
//! resource metadata. Unknown members are ignored when parsing (RFC 8414 §3.2, RFC 9728 §3.2),
//! so clients of this crate can read other servers' documents too.

use serde::{Deserialize, Serialize};

/// RFC 8414 §2 authorization server metadata (also served as OpenID Connect Discovery 1.0
/// §3 at `/.well-known/openid-configuration`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationServerMetadata {
    /// RFC 8414 §2: byte-identical to the issuer clients built the metadata URL from.
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    /// RFC 7591 §3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    pub response_types_supported: Vec<String>,
    #[serde(default)]
    pub response_modes_supported: Vec<String>,
    #[serde(default)]
    pub grant_types_supported: Vec<String>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// RFC 7009 §2 / RFC 8414 §2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    #[serde(default)]
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// RFC 7662 §2 / RFC 8414 §2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    #[serde(default)]
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    /// RFC 7636 §6.2 / RFC 8414 §2: only `S256` here (OAuth 2.1 §4.1.1).
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    /// RFC 9207 §3: `iss` is sent in every authorization response.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    /// OAuth Client ID Metadata Document (draft-ietf-oauth-client-id-metadata-document §5):
    /// an https URL may be used as `client_id`.
    #[serde(default)]
    pub client_id_metadata_document_supported: bool,
    /// RFC 9728 §4: the resources this server issues tokens for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protected_resources: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_documentation: Option<String>,
}

/// RFC 9728 §2 protected resource metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtectedResourceMetadata {
    /// RFC 9728 §2: the resource identifier; equal to the URL the metadata was derived from
    /// (§3.3), and the `aud` of tokens for it (RFC 8707 §2).
    pub resource: String,
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    /// RFC 9728 §2 / RFC 6750 §2: only the `Authorization` header.
    #[serde(default)]
    pub bearer_methods_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
}

//! URL paths of the authorization server and how protected-resource metadata URLs are built.
//!
//! Envoy routes exactly these public paths to the authserver and nothing else, so an
//! endpoint that is not listed here (admin, health) is never reachable through the gateway.

/// RFC 8414 §3: authorization server metadata.
pub const AUTHORIZATION_SERVER_METADATA: &str = "/.well-known/oauth-authorization-server";
/// OpenID Connect Discovery 1.0 §4.
pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
/// RFC 9728 §3: protected resource metadata (root; path-inserted forms live below it).
pub const PROTECTED_RESOURCE_METADATA: &str = "/.well-known/oauth-protected-resource";
pub const JWKS: &str = "/jwks";
pub const AUTHORIZE: &str = "/authorize";
pub const TOKEN: &str = "/token";
/// RFC 7591 registration; RFC 7592 management lives at `/register/{client_id}`.
pub const REGISTER: &str = "/register";
pub const REVOKE: &str = "/revoke";
pub const INTROSPECT: &str = "/introspect";
/// The consent page and the login pages (GitHub callback, dev login) live under this prefix.
pub const LOGIN_PREFIX: &str = "/login";
/// Liveness of the authserver. Not routed through Envoy.
pub const HEALTH: &str = "/healthz";
/// Readiness of the authserver: Redis answers (not routed through Envoy).
pub const READY: &str = "/readyz";
/// The authserver's Prometheus metrics (not routed through Envoy).
pub const METRICS: &str = "/metrics";

/// Largest request body any authserver endpoint reads (registration metadata is the
/// biggest). Envoy refuses a larger body on the authserver's routes itself, with 413, so an
/// oversize upload never reaches (and is never cut off by) the authserver.
pub const AUTHSERVER_MAX_BODY_BYTES: usize = 16 * 1024;

/// How Envoy matches a public authserver path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathMatch {
    /// The path exactly.
    Exact(&'static str),
    /// The path, or the path followed by `/` and more segments.
    Segments(&'static str),
}

/// Every authserver path that Envoy exposes publicly.
pub const AUTHSERVER_PUBLIC_PATHS: &[PathMatch] = &[
    PathMatch::Segments(AUTHORIZATION_SERVER_METADATA),
    PathMatch::Exact(OPENID_CONFIGURATION),
    PathMatch::Segments(PROTECTED_RESOURCE_METADATA),
    PathMatch::Exact(JWKS),
    PathMatch::Exact(AUTHORIZE),
    PathMatch::Exact(TOKEN),
    PathMatch::Segments(REGISTER),
    PathMatch::Exact(REVOKE),
    PathMatch::Exact(INTROSPECT),
    PathMatch::Segments(LOGIN_PREFIX),
];

/// RFC 9728 §3.1: the metadata URL of `resource`, with the well-known segment inserted
/// between the authority and the path (`https://h/a/mcp` → `https://h/.well-known/oauth-protected-resource/a/mcp`).
///
/// `resource` must be an absolute `http`/`https` URL without query or fragment (the gateway
/// config validates that); anything else yields `None`.
pub fn protected_resource_metadata_url(resource: &str) -> Option<String> {
    let scheme_end = resource.find("://")? + 3;
    let (origin, path) = match resource[scheme_end..].find('/') {
        Some(i) => resource.split_at(scheme_end + i),
        None => (resource, ""),
    };
    if origin.len() == scheme_end || resource.contains(['?', '#']) {
        return None;
    }
    let path = path.trim_end_matches('/');
    Some(format!("{origin}{PROTECTED_RESOURCE_METADATA}{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_well_known_between_authority_and_path() {
        assert_eq!(
            protected_resource_metadata_url("http://127.0.0.1:8080/everything/mcp").as_deref(),
            Some("http://127.0.0.1:8080/.well-known/oauth-protected-resource/everything/mcp")
        );
    }

    #[test]
    fn resource_without_path_uses_the_root_document() {
        assert_eq!(
            protected_resource_metadata_url("https://time.example.com").as_deref(),
            Some("https://time.example.com/.well-known/oauth-protected-resource")
        );
        assert_eq!(
            protected_resource_metadata_url("https://time.example.com/").as_deref(),
            Some("https://time.example.com/.well-known/oauth-protected-resource")
        );
    }

    #[test]
    fn rejects_what_is_not_an_absolute_url_without_query() {
        assert_eq!(protected_resource_metadata_url("/everything/mcp"), None);
        assert_eq!(protected_resource_metadata_url("https:///x"), None);
        assert_eq!(protected_resource_metadata_url("https://h/x?y=1"), None);
        assert_eq!(protected_resource_metadata_url("https://h/x#f"), None);
    }
}

//! Which scopes a request may have: those a service offers (a request may name a narrower
//! scope than an offered one), minus `offline_access`, which is never a resource scope.

use mcp_auth_proto::scope::{Scope, split_scope_param};

/// RFC 6749 §3.3 / OIDC: asks for a refresh token. Refresh tokens are granted by
/// `grant_types`, so this is accepted and dropped.
pub const OFFLINE_ACCESS: &str = "offline_access";

/// Longest `scope` parameter accepted.
pub const MAX_SCOPE_PARAM_LEN: usize = 1024;

/// Resolves a requested `scope` parameter against a service's scopes. Absent or empty: all
/// of the service's scopes. Returns the scope tokens, deduplicated, in request order, or the
/// first unacceptable one.
pub fn resolve_requested(
    requested: Option<&str>,
    offered: &[Scope],
) -> Result<Vec<String>, String> {
    let requested = requested.unwrap_or_default();
    if requested.len() > MAX_SCOPE_PARAM_LEN {
        return Err("scope is too long".to_owned());
    }
    let mut scopes: Vec<String> = Vec::new();
    for token in split_scope_param(requested) {
        if token == OFFLINE_ACCESS {
            continue;
        }
        let scope = Scope::new(token).map_err(|e| e.to_string())?;
        if !offered.iter().any(|o| o.satisfies(scope.as_str())) {
            return Err(format!("scope {token:?} is not offered by this resource"));
        }
        if !scopes.iter().any(|s| s == token) {
            scopes.push(token.to_owned());
        }
    }
    if scopes.is_empty() {
        scopes = offered.iter().map(|s| s.as_str().to_owned()).collect();
    }
    Ok(scopes)
}

/// RFC 6749 §6: a refresh may ask for a subset of the granted scopes, never more. A
/// requested scope is covered when a granted scope satisfies it (`mcp` covers `mcp:tools`).
pub fn narrow(requested: Option<&str>, granted: &[String]) -> Result<Vec<String>, String> {
    let Some(requested) = requested.filter(|r| !r.trim().is_empty()) else {
        return Ok(granted.to_vec());
    };
    if requested.len() > MAX_SCOPE_PARAM_LEN {
        return Err("scope is too long".to_owned());
    }
    let mut scopes: Vec<String> = Vec::new();
    for token in split_scope_param(requested) {
        if token == OFFLINE_ACCESS {
            continue;
        }
        if !granted
            .iter()
            .any(|g| mcp_auth_proto::scope::scope_satisfies(g, token))
        {
            return Err(format!("scope {token:?} was not granted"));
        }
        if !scopes.iter().any(|s| s == token) {
            scopes.push(token.to_owned());
        }
    }
    if scopes.is_empty() {
        return Ok(granted.to_vec());
    }
    Ok(scopes)
}

/// True when every scope of `requested` is covered by `consented`.
pub fn covered_by(requested: &[String], consented: &[String]) -> bool {
    requested.iter().all(|r| {
        consented
            .iter()
            .any(|c| mcp_auth_proto::scope::scope_satisfies(c, r))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offered() -> Vec<Scope> {
        vec![
            Scope::new("mcp").unwrap(),
            Scope::new("files:read").unwrap(),
        ]
    }

    #[test]
    fn absent_scope_means_everything_offered() {
        assert_eq!(
            resolve_requested(None, &offered()).unwrap(),
            ["mcp", "files:read"]
        );
        assert_eq!(
            resolve_requested(Some("offline_access"), &offered()).unwrap(),
            ["mcp", "files:read"]
        );
    }

    #[test]
    fn narrower_scopes_are_accepted_unknown_ones_refused() {
        assert_eq!(
            resolve_requested(Some("mcp:tools mcp:tools offline_access"), &offered()).unwrap(),
            ["mcp:tools"]
        );
        assert!(resolve_requested(Some("admin"), &offered()).is_err());
        assert!(resolve_requested(Some("files"), &offered()).is_err());
        assert!(resolve_requested(Some("a\"b"), &offered()).is_err());
    }

    #[test]
    fn refresh_narrows_never_widens() {
        let granted = vec!["mcp".to_owned()];
        assert_eq!(narrow(None, &granted).unwrap(), ["mcp"]);
        assert_eq!(narrow(Some("mcp:tools"), &granted).unwrap(), ["mcp:tools"]);
        assert!(narrow(Some("admin"), &["mcp:tools".to_owned()]).is_err());
        assert!(narrow(Some("mcp"), &["mcp:tools".to_owned()]).is_err());
    }

    #[test]
    fn consent_covers_narrower_requests() {
        let consented = vec!["mcp".to_owned()];
        assert!(covered_by(&["mcp:tools".to_owned()], &consented));
        assert!(!covered_by(&["files:read".to_owned()], &consented));
    }
}

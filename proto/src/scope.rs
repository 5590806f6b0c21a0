//! OAuth scopes (RFC 6749 §3.3) and the hierarchy the gateway applies to them.
//!
//! A broader scope implies every narrower scope below it: `mcp` implies `mcp:tools`,
//! which implies `mcp:tools:call`. The separator is `:`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Separator between the levels of a hierarchical scope.
pub const SCOPE_LEVEL_SEPARATOR: char = ':';

/// One scope token: `1*NQCHAR` (RFC 6749 §3.3), i.e. printable ASCII without space, `"` or `\`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Scope(String);

/// Why a string is not a valid scope token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("a scope must not be empty")]
    Empty,
    #[error(
        "scope {0:?} contains a character RFC 6749 §3.3 forbids (space, '\"', '\\\\' or non-printable)"
    )]
    InvalidCharacter(String),
}

impl Scope {
    /// Parses one scope token (RFC 6749 §3.3 `scope-token`).
    pub fn new(value: impl Into<String>) -> Result<Self, ScopeError> {
        let value = value.into();
        if value.is_empty() {
            return Err(ScopeError::Empty);
        }
        if !value.bytes().all(is_nqchar) {
            return Err(ScopeError::InvalidCharacter(value));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when holding `self` grants `required`: the same scope, or a broader one
    /// (`mcp` satisfies `mcp:tools`; `mcp:tools` does not satisfy `mcp`).
    pub fn satisfies(&self, required: &str) -> bool {
        scope_satisfies(&self.0, required)
    }
}

/// String form of [`Scope::satisfies`], for hot paths that hold borrowed scope tokens.
pub fn scope_satisfies(granted: &str, required: &str) -> bool {
    match required.strip_prefix(granted) {
        Some("") => true,
        Some(rest) => rest.starts_with(SCOPE_LEVEL_SEPARATOR),
        None => false,
    }
}

/// The scopes in `required` that no scope in `granted` satisfies.
pub fn missing_scopes<'a, G, R>(granted: G, required: R) -> Vec<&'a str>
where
    G: IntoIterator<Item = &'a str> + Clone,
    R: IntoIterator<Item = &'a str>,
{
    required
        .into_iter()
        .filter(|req| !granted.clone().into_iter().any(|g| scope_satisfies(g, req)))
        .collect()
}

/// Splits an RFC 6749 §3.3 `scope` parameter (space-delimited) into its tokens.
pub fn split_scope_param(param: &str) -> impl Iterator<Item = &str> {
    param.split(' ').filter(|s| !s.is_empty())
}

fn is_nqchar(b: u8) -> bool {
    b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        Scope::new(value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broader_scope_implies_narrower() {
        assert!(scope_satisfies("mcp", "mcp"));
        assert!(scope_satisfies("mcp", "mcp:tools"));
        assert!(scope_satisfies("mcp", "mcp:tools:call"));
        assert!(scope_satisfies("mcp:tools", "mcp:tools:call"));
    }

    #[test]
    fn narrower_or_lookalike_scope_does_not_imply_broader() {
        assert!(!scope_satisfies("mcp:tools", "mcp"));
        assert!(!scope_satisfies("mc", "mcp"));
        assert!(!scope_satisfies("mcp", "mcpx"));
        assert!(!scope_satisfies("mcp:tool", "mcp:tools"));
        assert!(!scope_satisfies("", "mcp"));
    }

    #[test]
    fn missing_scopes_lists_every_unsatisfied_requirement() {
        let granted = ["mcp:tools", "profile"];
        let missing = missing_scopes(granted, ["mcp:tools:call", "mcp:resources", "mcp"]);
        assert_eq!(missing, vec!["mcp:resources", "mcp"]);
    }

    #[test]
    fn scope_tokens_follow_rfc6749() {
        assert!(Scope::new("mcp:tools").is_ok());
        assert_eq!(Scope::new(""), Err(ScopeError::Empty));
        assert!(Scope::new("a b").is_err());
        assert!(Scope::new("a\"b").is_err());
        assert!(Scope::new("a\\b").is_err());
        assert!(Scope::new("é").is_err());
    }

    #[test]
    fn split_ignores_repeated_spaces() {
        assert_eq!(
            split_scope_param(" mcp  mcp:tools ").collect::<Vec<_>>(),
            ["mcp", "mcp:tools"]
        );
    }
}

//! Environment variables, read through a trait so tests pass a map instead of mutating the
//! process environment (which is shared by every test thread).

use std::collections::HashMap;

/// A source of environment variables.
pub trait Env: Send + Sync {
    /// The variable's value; `None` when unset or empty.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl Env for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.is_empty()).cloned()
    }
}

/// Splits a comma-separated list (`ALLOWED_GITHUB_USERS=alice, bob`), dropping blanks.
pub fn comma_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_env_treats_empty_as_unset() {
        let env: HashMap<String, String> = [
            ("A".to_owned(), String::new()),
            ("B".to_owned(), "x".to_owned()),
        ]
        .into();
        assert_eq!(env.var("A"), None);
        assert_eq!(env.var("B").as_deref(), Some("x"));
        assert_eq!(env.var("C"), None);
    }

    #[test]
    fn comma_list_trims_and_drops_blanks() {
        assert_eq!(comma_list(" alice, ,bob ,"), ["alice", "bob"]);
    }
}

//! The dev login: without GitHub credentials on a loopback issuer, a "sign in as" form
//! (served at `/login/dev`) replaces GitHub. The form handler makes the user record itself.

use mcp_auth_proto::store::UserRecord;

use super::{BoxFuture, IdentityProvider, IdpError, Needs};

/// Path of the dev sign-in form.
pub const DEV_LOGIN_PATH: &str = "/login/dev";

/// The dev "provider": sends the browser to our own form.
#[derive(Debug, Clone)]
pub struct DevLogin {
    issuer: String,
}

impl DevLogin {
    pub fn new(issuer: &str) -> Self {
        Self {
            issuer: issuer.to_owned(),
        }
    }
}

impl IdentityProvider for DevLogin {
    fn id(&self) -> &str {
        "dev"
    }

    fn display_name(&self) -> &str {
        "the development login"
    }

    fn login_url<'a>(
        &'a self,
        state: &'a str,
        _code_verifier: &'a str,
        _needs: Needs,
    ) -> BoxFuture<'a, Result<String, IdpError>> {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("state", state)
            .finish();
        let url = format!("{}{DEV_LOGIN_PATH}?{query}", self.issuer);
        Box::pin(async move { Ok(url) })
    }

    fn identify<'a>(
        &'a self,
        _code: &'a str,
        _code_verifier: &'a str,
        _needs: Needs,
        _now: u64,
    ) -> BoxFuture<'a, Result<UserRecord, IdpError>> {
        Box::pin(async { Err(IdpError::Unsupported) })
    }
}

/// GitHub's login syntax: 1–39 of `[A-Za-z0-9-]`, not starting or ending with `-`.
pub fn is_valid_login(login: &str) -> bool {
    !login.is_empty()
        && login.len() <= 39
        && login
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !login.starts_with('-')
        && !login.ends_with('-')
}

/// The user record of a dev sign-in. The subject is derived from the login, so signing in
/// as the same name twice is the same user.
pub fn dev_user(login: &str, orgs: &str, teams: &str, now: u64) -> UserRecord {
    let list = |value: &str| -> Vec<String> {
        value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .take(50)
            .map(str::to_owned)
            .collect()
    };
    UserRecord {
        subject: format!("dev-{}", login.to_ascii_lowercase()),
        login: login.to_owned(),
        orgs: list(orgs),
        teams: list(teams),
        email: None,
        groups: Vec::new(),
        updated_at: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_follow_github_rules() {
        assert!(is_valid_login("octocat"));
        assert!(is_valid_login("a-b"));
        assert!(!is_valid_login(""));
        assert!(!is_valid_login("-a"));
        assert!(!is_valid_login("a b"));
        assert!(!is_valid_login(&"a".repeat(40)));
    }

    #[test]
    fn dev_users_are_stable() {
        let user = dev_user("Alice", "acme, ,other", "acme/ops", 5);
        assert_eq!(user.subject, "dev-alice");
        assert_eq!(user.orgs, ["acme", "other"]);
        assert_eq!(user.teams, ["acme/ops"]);
    }
}

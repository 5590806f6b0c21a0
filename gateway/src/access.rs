//! Allow-lists (`access:` globally, per service, and in `mcp_policy` rules' `allow`) and the
//! one rule that decides membership, which the authserver applies at login and ext_authz on
//! every request.

use serde::{Deserialize, Serialize};

/// Who may use a service: GitHub logins, organisations and teams (`org/team`), and, for users
/// of an OpenID Connect provider, verified email addresses, email domains and groups.
/// A user is allowed when any list matches. `users: ["*"]` allows every signed-in user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessList {
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub orgs: Vec<String>,
    #[serde(default)]
    pub teams: Vec<String>,
    /// Email addresses, matched against the provider's verified email only.
    #[serde(default)]
    pub emails: Vec<String>,
    /// Domains (`example.com`, exactly: not its subdomains) of a verified email.
    #[serde(default)]
    pub email_domains: Vec<String>,
    /// Groups, as the provider's groups claim names them (matched exactly).
    #[serde(default)]
    pub groups: Vec<String>,
}

/// What an allow-list knows of a user: what their identity provider said at their last
/// login (`mcp_auth_proto::store::UserRecord`), or only the token's login without one.
#[derive(Debug, Clone, Copy, Default)]
pub struct Member<'a> {
    /// Login or display name: GitHub's login; an OIDC provider's mapped login claim.
    pub login: &'a str,
    pub orgs: &'a [String],
    pub teams: &'a [String],
    /// Set only when the provider said it is verified.
    pub email: Option<&'a str>,
    pub groups: &'a [String],
}

impl<'a> Member<'a> {
    /// The user of `record`, by its login.
    pub fn of(record: &'a mcp_auth_proto::store::UserRecord) -> Self {
        Self {
            login: &record.login,
            orgs: &record.orgs,
            teams: &record.teams,
            email: record.email.as_deref(),
            groups: &record.groups,
        }
    }
}

impl AccessList {
    /// The wildcard entry in `users`.
    pub const ANYONE: &'static str = "*";

    pub fn allows_anyone(&self) -> bool {
        self.users.iter().any(|u| u == Self::ANYONE)
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && !self.names_more_than_users()
    }

    /// True when the list names anything beyond `users`: what only a user record (the
    /// identity provider's word at login) can match.
    pub fn names_more_than_users(&self) -> bool {
        !(self.orgs.is_empty()
            && self.teams.is_empty()
            && self.emails.is_empty()
            && self.email_domains.is_empty()
            && self.groups.is_empty())
    }

    /// The one membership rule, applied at login (authserver) and on every request
    /// (ext_authz): `*`, the login, an organisation or a team (ASCII case-insensitively, as
    /// GitHub treats names), the verified email or its domain (case-insensitively), or a group
    /// (exactly, as providers' group ids are). An empty list matches nobody.
    pub fn admits(&self, member: &Member<'_>) -> bool {
        let listed =
            |list: &[String], value: &str| list.iter().any(|e| e.eq_ignore_ascii_case(value));
        if self.allows_anyone() || (!member.login.is_empty() && listed(&self.users, member.login)) {
            return true;
        }
        if member.orgs.iter().any(|org| listed(&self.orgs, org))
            || member.teams.iter().any(|team| listed(&self.teams, team))
            || member
                .groups
                .iter()
                .any(|group| self.groups.contains(group))
        {
            return true;
        }
        member.email.is_some_and(|email| {
            listed(&self.emails, email)
                || email
                    .rsplit_once('@')
                    .is_some_and(|(_, domain)| listed(&self.email_domains, domain))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    #[test]
    fn every_kind_of_entry_admits_and_only_a_verified_email_counts() {
        let (orgs, teams, groups) = (
            strings(&["Acme"]),
            strings(&["acme/Ops"]),
            strings(&["mcp-users"]),
        );
        let alice = Member {
            login: "Alice",
            orgs: &orgs,
            teams: &teams,
            email: Some("alice@example.com"),
            groups: &groups,
        };
        let list = |f: &dyn Fn(&mut AccessList)| {
            let mut list = AccessList::default();
            f(&mut list);
            list
        };
        assert!(list(&|l| l.users = strings(&["*"])).admits(&alice));
        assert!(list(&|l| l.users = strings(&["alice"])).admits(&alice));
        assert!(list(&|l| l.orgs = strings(&["acme"])).admits(&alice));
        assert!(list(&|l| l.teams = strings(&["ACME/ops"])).admits(&alice));
        assert!(list(&|l| l.emails = strings(&["Alice@Example.com"])).admits(&alice));
        assert!(list(&|l| l.email_domains = strings(&["EXAMPLE.com"])).admits(&alice));
        assert!(list(&|l| l.groups = strings(&["mcp-users"])).admits(&alice));
        // Groups are ids: exact.
        assert!(!list(&|l| l.groups = strings(&["MCP-users"])).admits(&alice));
        // A subdomain is another domain.
        assert!(!list(&|l| l.email_domains = strings(&["mail.example.com"])).admits(&alice));
        assert!(!AccessList::default().admits(&alice));
        // No verified email: neither emails nor domains can match.
        let unverified = Member {
            email: None,
            ..alice
        };
        assert!(!list(&|l| l.email_domains = strings(&["example.com"])).admits(&unverified));
        assert!(!list(&|l| l.emails = strings(&["alice@example.com"])).admits(&unverified));
    }

    #[test]
    fn lists_beyond_users_need_the_user_record() {
        assert!(!AccessList::default().names_more_than_users());
        let by_domain = AccessList {
            email_domains: vec!["example.com".into()],
            ..AccessList::default()
        };
        assert!(by_domain.names_more_than_users());
        assert!(!by_domain.is_empty());
    }
}

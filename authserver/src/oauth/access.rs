//! Allow-lists: may this user use this service? The same rule ext_authz applies on every
//! request, applied here at login so a refused user never gets a token.
//!
//! A user passes when the global list matches **and**, if the service has its own list,
//! that one matches too; a list matches by [`AccessList::admits`], the rule ext_authz applies.

use mcp_auth_gateway::config::{AccessList, Member};
use mcp_auth_proto::store::UserRecord;

/// Which list refused the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Global,
    Service,
}

/// True when `list` names `user` ([`AccessList::admits`]).
pub fn list_allows(list: &AccessList, user: &UserRecord) -> bool {
    list.admits(&Member::of(user))
}

/// The global list, then the service's own.
pub fn check(
    global: &AccessList,
    service: Option<&AccessList>,
    user: &UserRecord,
) -> Result<(), Refusal> {
    if !list_allows(global, user) {
        return Err(Refusal::Global);
    }
    match service {
        Some(list) if !list_allows(list, user) => Err(Refusal::Service),
        _ => Ok(()),
    }
}

/// True when evaluating `lists` needs the user's organisations (GitHub `read:org`).
pub fn needs_orgs<'a>(lists: impl IntoIterator<Item = &'a AccessList>) -> bool {
    lists
        .into_iter()
        .any(|l| !l.allows_anyone() && !l.orgs.is_empty())
}

/// True when evaluating `lists` needs the user's teams.
pub fn needs_teams<'a>(lists: impl IntoIterator<Item = &'a AccessList>) -> bool {
    lists
        .into_iter()
        .any(|l| !l.allows_anyone() && !l.teams.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(login: &str, orgs: &[&str], teams: &[&str]) -> UserRecord {
        UserRecord {
            subject: "1".into(),
            login: login.into(),
            orgs: orgs.iter().map(|s| (*s).to_owned()).collect(),
            teams: teams.iter().map(|s| (*s).to_owned()).collect(),
            updated_at: 0,
            ..Default::default()
        }
    }

    fn list(users: &[&str], orgs: &[&str], teams: &[&str]) -> AccessList {
        AccessList {
            users: users.iter().map(|s| (*s).to_owned()).collect(),
            orgs: orgs.iter().map(|s| (*s).to_owned()).collect(),
            teams: teams.iter().map(|s| (*s).to_owned()).collect(),
            ..AccessList::default()
        }
    }

    #[test]
    fn any_list_entry_matches_case_insensitively() {
        let alice = user("Alice", &["Acme"], &["acme/Ops"]);
        assert!(list_allows(&list(&["*"], &[], &[]), &alice));
        assert!(list_allows(&list(&["alice"], &[], &[]), &alice));
        assert!(list_allows(&list(&[], &["acme"], &[]), &alice));
        assert!(list_allows(&list(&[], &[], &["ACME/ops"]), &alice));
        assert!(!list_allows(
            &list(&["bob"], &["other"], &["acme/dev"]),
            &alice
        ));
        assert!(!list_allows(&AccessList::default(), &alice));
    }

    #[test]
    fn the_service_list_narrows_the_global_one() {
        let bob = user("bob", &[], &[]);
        let anyone = list(&["*"], &[], &[]);
        assert_eq!(check(&anyone, None, &bob), Ok(()));
        assert_eq!(
            check(&anyone, Some(&list(&["alice"], &[], &[])), &bob),
            Err(Refusal::Service)
        );
        assert_eq!(
            check(&list(&["alice"], &[], &[]), Some(&anyone), &bob),
            Err(Refusal::Global)
        );
    }

    #[test]
    fn orgs_and_teams_are_fetched_only_when_needed() {
        assert!(!needs_orgs([&list(&["*"], &["acme"], &[])]));
        assert!(needs_orgs([&list(&["bob"], &["acme"], &[])]));
        assert!(needs_teams([&list(&[], &[], &["acme/ops"])]));
        assert!(!needs_teams([&list(&["bob"], &["acme"], &[])]));
    }
}

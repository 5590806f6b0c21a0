use super::*;

fn list(users: &[&str], orgs: &[&str], teams: &[&str]) -> AccessList {
    let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    AccessList {
        users: own(users),
        orgs: own(orgs),
        teams: own(teams),
        ..AccessList::default()
    }
}

fn record(login: &str, orgs: &[&str], teams: &[&str]) -> UserRecord {
    UserRecord {
        subject: "42".into(),
        login: login.into(),
        orgs: orgs.iter().map(|s| s.to_string()).collect(),
        teams: teams.iter().map(|s| s.to_string()).collect(),
        updated_at: 0,
        ..Default::default()
    }
}

fn policy(global: AccessList, service: Option<AccessList>) -> AccessPolicy {
    let rule = ServiceRule {
        access: service.as_ref().map(AccessRule::new),
        resource_metadata_url: String::new(),
        identity_headers: Default::default(),
        required_scopes: Vec::new(),
    };
    AccessPolicy {
        global: AccessRule::new(&global),
        services: [("svc".to_owned(), rule)].into(),
    }
}

#[test]
fn wildcard_allows_anyone_even_without_record_or_login() {
    let rule = AccessRule::new(&list(&["*"], &[], &[]));
    assert!(rule.allows(&User::new("", None)));
}

#[test]
fn empty_list_allows_nobody() {
    let rule = AccessRule::new(&AccessList::default());
    let rec = record("alice", &["acme"], &["acme/mcp"]);
    assert!(!rule.allows(&User::new("alice", Some(&rec))));
}

#[test]
fn users_match_login_case_insensitively() {
    let rule = AccessRule::new(&list(&["Alice"], &[], &[]));
    assert!(rule.allows(&User::new("alice", None)));
    assert!(!rule.allows(&User::new("bob", None)));
    assert!(!rule.allows(&User::new("", None)));
}

#[test]
fn record_login_replaces_token_login() {
    let rule = AccessRule::new(&list(&["alice-new"], &[], &[]));
    let rec = record("alice-new", &[], &[]);
    assert!(rule.allows(&User::new("alice-old", Some(&rec))));
    let old = AccessRule::new(&list(&["alice-old"], &[], &[]));
    assert!(!old.allows(&User::new("alice-old", Some(&rec))));
    // A record without a login falls back to the token's.
    let blank = record("", &[], &[]);
    assert!(old.allows(&User::new("alice-old", Some(&blank))));
}

#[test]
fn orgs_and_teams_match_through_the_record() {
    let rule = AccessRule::new(&list(&[], &["ACME"], &["other/mcp-users"]));
    assert!(rule.allows(&User::new("a", Some(&record("a", &["acme"], &[])))));
    assert!(rule.allows(&User::new(
        "a",
        Some(&record("a", &[], &["Other/MCP-users"]))
    )));
    assert!(!rule.allows(&User::new("a", Some(&record("a", &["evil"], &["other/x"])))));
    // Without a record orgs and teams cannot match.
    assert!(!rule.allows(&User::new("a", None)));
}

#[test]
fn unknown_service_is_refused() {
    let p = policy(list(&["*"], &[], &[]), None);
    assert_eq!(
        p.evaluate("other", &User::new("a", None)),
        AccessOutcome::UnknownService
    );
}

#[test]
fn global_list_alone_decides_when_service_has_none() {
    let p = policy(list(&["alice"], &[], &[]), None);
    assert_eq!(
        p.evaluate("svc", &User::new("alice", None)),
        AccessOutcome::Allowed
    );
    assert_eq!(
        p.evaluate("svc", &User::new("bob", None)),
        AccessOutcome::NotAllowed {
            list: ListScope::Global,
            no_user_record: false
        }
    );
}

#[test]
fn service_list_narrows_global_list() {
    let p = policy(list(&["*"], &[], &[]), Some(list(&["alice"], &[], &[])));
    assert_eq!(
        p.evaluate("svc", &User::new("alice", None)),
        AccessOutcome::Allowed
    );
    assert_eq!(
        p.evaluate("svc", &User::new("bob", None)),
        AccessOutcome::NotAllowed {
            list: ListScope::Service,
            no_user_record: false
        }
    );
}

#[test]
fn service_list_cannot_widen_global_list() {
    let p = policy(list(&["alice"], &[], &[]), Some(list(&["*"], &[], &[])));
    assert_eq!(
        p.evaluate("svc", &User::new("bob", None)),
        AccessOutcome::NotAllowed {
            list: ListScope::Global,
            no_user_record: false
        }
    );
}

#[test]
fn missing_record_is_reported_when_orgs_or_teams_would_decide() {
    let p = policy(list(&[], &["acme"], &[]), None);
    assert_eq!(
        p.evaluate("svc", &User::new("alice", None)),
        AccessOutcome::NotAllowed {
            list: ListScope::Global,
            no_user_record: true
        }
    );
    let p = policy(list(&["*"], &[], &[]), Some(list(&[], &[], &["acme/mcp"])));
    assert_eq!(
        p.evaluate("svc", &User::new("alice", None)),
        AccessOutcome::NotAllowed {
            list: ListScope::Service,
            no_user_record: true
        }
    );
    let rec = record("alice", &["acme"], &["acme/mcp"]);
    assert_eq!(
        p.evaluate("svc", &User::new("alice", Some(&rec))),
        AccessOutcome::Allowed
    );
}

use mcp_auth_proto::listing::ListKind;
use mcp_auth_proto::store::UserRecord;

use super::*;

fn policy(yaml: &str) -> McpPolicy {
    let config = GatewayConfig::from_yaml(&format!(
        "issuer: http://127.0.0.1:8080\n\
         services:\n\
         \x20 - name: a\n    upstream: {{ url: http://127.0.0.1:3001/mcp }}\n    scopes: [mcp, 'mcp:write']\n\
         \x20 - name: b\n    upstream: {{ url: http://127.0.0.1:3002/mcp }}\n\
         mcp_policy:\n{yaml}"
    ))
    .unwrap();
    McpPolicy::from_config(&config)
}

fn op(method: &str, name: Option<&str>) -> Operation {
    Operation {
        id: Some("1".into()),
        method: method.into(),
        name: name.map(str::to_owned),
    }
}

fn record(teams: &[&str]) -> UserRecord {
    UserRecord {
        subject: "1".into(),
        login: "alice".into(),
        orgs: vec![],
        teams: teams.iter().map(|t| (*t).to_owned()).collect(),
        updated_at: 0,
        ..Default::default()
    }
}

#[test]
fn the_first_matching_rule_decides() {
    let p = policy(
        "  rules:\n\
         \x20   - { name: first, methods: [tools/call], names: [get-env], allow: { users: [bob] } }\n\
         \x20   - { name: second, methods: [tools/call], names: ['get-*'], allow: { users: [alice] } }\n",
    );
    let alice = User::new("alice", None);
    let call = |name| op("tools/call", Some(name));
    assert_eq!(
        p.evaluate("a", &call("get-env"), &alice, "mcp"),
        OperationVerdict::Denied {
            rule: Some("first".into())
        }
    );
    assert_eq!(
        p.evaluate("a", &call("get-time"), &alice, "mcp"),
        OperationVerdict::Allowed {
            rule: Some("second".into())
        }
    );
    assert_eq!(
        p.evaluate("a", &call("echo"), &alice, "mcp"),
        OperationVerdict::Allowed { rule: None }
    );
}

#[test]
fn rules_cover_their_services_methods_and_names_only() {
    let p = policy(
        "  rules:\n\
         \x20   - { services: [a], methods: [resources/read], names: ['file:///secret/*'], allow: {} }\n",
    );
    let anyone = User::new("alice", None);
    let read = |uri| op("resources/read", Some(uri));
    assert!(matches!(
        p.evaluate("a", &read("file:///secret/key"), &anyone, ""),
        OperationVerdict::Denied { .. }
    ));
    assert!(matches!(
        p.evaluate("b", &read("file:///secret/key"), &anyone, ""),
        OperationVerdict::Allowed { rule: None }
    ));
    assert!(matches!(
        p.evaluate("a", &read("file:///public"), &anyone, ""),
        OperationVerdict::Allowed { rule: None }
    ));
    assert!(matches!(
        p.evaluate(
            "a",
            &op("tools/call", Some("file:///secret/key")),
            &anyone,
            ""
        ),
        OperationVerdict::Allowed { rule: None }
    ));
}

#[test]
fn default_deny_applies_to_named_operations_only() {
    let p = policy(
        "  default: deny\n  rules:\n\
         \x20   - { name: time, methods: [tools/call], names: [get_current_time] }\n",
    );
    let anyone = User::new("alice", None);
    assert!(matches!(
        p.evaluate(
            "a",
            &op("tools/call", Some("get_current_time")),
            &anyone,
            ""
        ),
        OperationVerdict::Allowed { .. }
    ));
    assert_eq!(
        p.evaluate("a", &op("tools/call", Some("other")), &anyone, ""),
        OperationVerdict::Denied { rule: None }
    );
    for method in [
        "initialize",
        "tools/list",
        "notifications/initialized",
        "ping",
    ] {
        assert!(matches!(
            p.evaluate("a", &op(method, None), &anyone, ""),
            OperationVerdict::Allowed { rule: None }
        ));
    }
    // Listings: only what a rule allows is shown.
    let v = p.visibility("a", &anyone).unwrap();
    assert!(v.shows(ListKind::Tools, "get_current_time"));
    assert!(!v.shows(ListKind::Tools, "other"));
    assert!(!v.shows(ListKind::Prompts, "any"));
}

#[test]
fn scopes_are_checked_after_identity_with_the_hierarchy() {
    let p = policy(
        "  rules:\n\
         \x20   - { name: w, services: [a], methods: [tools/call], names: [write_file], allow: { teams: [acme/dev] }, scopes: ['mcp:write'] }\n",
    );
    let dev = record(&["acme/dev"]);
    let dev = User::new("alice", Some(&dev));
    let write = op("tools/call", Some("write_file"));
    assert_eq!(
        p.evaluate("a", &write, &dev, "mcp:read"),
        OperationVerdict::NeedsScopes {
            rule: "w".into(),
            missing: vec!["mcp:write".into()]
        }
    );
    assert!(matches!(
        p.evaluate("a", &write, &dev, "mcp:write"),
        OperationVerdict::Allowed { .. }
    ));
    // A broader scope satisfies a narrower one.
    assert!(matches!(
        p.evaluate("a", &write, &dev, "mcp"),
        OperationVerdict::Allowed { .. }
    ));
    // A stranger is denied outright: stepping up would not help.
    assert!(matches!(
        p.evaluate("a", &write, &User::new("eve", None), "mcp:read"),
        OperationVerdict::Denied { .. }
    ));
    assert_eq!(p.scopes_for("a", &write), ["mcp:write".to_owned()]);
}

#[test]
fn a_whole_service_can_be_reserved_with_a_method_wildcard() {
    let p = policy("  rules:\n    - { services: [b], allow: { users: [bob] } }\n");
    let alice = User::new("alice", None);
    assert!(matches!(
        p.evaluate("b", &op("tools/list", None), &alice, ""),
        OperationVerdict::Denied { .. }
    ));
    assert!(matches!(
        p.evaluate("a", &op("tools/list", None), &alice, ""),
        OperationVerdict::Allowed { .. }
    ));
    let v = p.visibility("b", &alice).unwrap();
    for kind in ListKind::ALL {
        assert!(!v.shows(kind, "anything"));
    }
    assert_eq!(p.visibility("b", &User::new("bob", None)), None);
    assert_eq!(p.visibility("a", &alice), None);
}

#[test]
fn no_rules_means_an_open_policy() {
    let p = policy("  rules: []\n");
    assert!(p.is_open());
    assert_eq!(p.visibility("a", &User::new("x", None)), None);
}

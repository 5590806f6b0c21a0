use super::*;
use mcp_auth_gateway::GatewayConfig;

fn event(target: RevocationTarget, revoked_at: u64, expires_at: u64) -> RevocationEvent {
    RevocationEvent {
        target,
        revoked_at,
        expires_at,
    }
}

fn settings(grace: &str) -> Settings {
    let config = GatewayConfig::from_yaml(&format!(
        "issuer: http://127.0.0.1:8080\n\
         ext_authz: {{ redis_grace: {grace} }}\n\
         services:\n  - name: svc\n    upstream: {{ url: http://127.0.0.1:3001/mcp }}\n"
    ))
    .unwrap();
    Settings::from_config(&config, 1).unwrap()
}

#[test]
fn revocations_merge_into_the_wider_one() {
    let mut set = RevocationSet::default();
    set.insert(&event(RevocationTarget::Grant("g".into()), 100, 500));
    set.insert(&event(RevocationTarget::Grant("g".into()), 50, 900));
    assert_eq!(
        set.get(TargetKind::Grant, "g"),
        Some(&Revocation {
            revoked_at: 100,
            expires_at: 900
        })
    );
    assert_eq!(set.get(TargetKind::User, "g"), None);
    assert_eq!(set.len(), 1);
}

#[test]
fn prune_drops_expired_records_only() {
    let mut set = RevocationSet::default();
    set.insert(&event(RevocationTarget::Token("a".into()), 1, 10));
    set.insert(&event(RevocationTarget::Client("b".into()), 1, 20));
    assert!(set.has_expired(10));
    assert_eq!(set.prune(10), 1);
    assert!(!set.has_expired(10));
    assert!(set.get(TargetKind::Client, "b").is_some());
}

#[test]
fn unavailable_until_loaded_and_contacted() {
    let shared = Shared::new(settings("1s"));
    let now = Instant::now();
    assert_eq!(shared.view(now).unwrap_err(), Unavailable::NotLoaded);
    shared.install(StoreSnapshot::default());
    assert_eq!(shared.view(now).unwrap_err(), Unavailable::NotLoaded);
    shared.mark_contact(now);
    assert!(shared.view(now).is_ok());
}

#[test]
fn fails_closed_past_the_grace_time() {
    let shared = Shared::new(settings("1s"));
    let now = Instant::now();
    shared.install(StoreSnapshot::default());
    shared.mark_contact(now);
    // Contact times are kept to the millisecond, rounded down (towards failing closed).
    assert!(shared.is_available(now + Duration::from_millis(999)));
    assert!(matches!(
        shared.view(now + Duration::from_millis(1001)),
        Err(Unavailable::RedisLost(_))
    ));
    // Contact again: available again. An older contact never moves the clock back.
    shared.mark_contact(now + Duration::from_secs(5));
    shared.mark_contact(now);
    assert!(shared.is_available(now + Duration::from_secs(5)));
}

#[test]
fn apply_and_prune_update_the_snapshot() {
    let shared = Shared::new(settings("1s"));
    // Before the first load there is nothing to apply onto.
    shared.apply(&event(RevocationTarget::User("u".into()), 1, 10));
    assert!(shared.store().is_none());
    shared.install(StoreSnapshot::default());
    shared.apply(&event(RevocationTarget::User("u".into()), 1, 10));
    let store = shared.store().unwrap();
    assert!(store.revocations.get(TargetKind::User, "u").is_some());
    assert_eq!(shared.prune(9), 0);
    assert_eq!(shared.prune(10), 1);
    assert!(shared.store().unwrap().revocations.is_empty());
    // The reader's old snapshot is untouched.
    assert_eq!(store.revocations.len(), 1);
}

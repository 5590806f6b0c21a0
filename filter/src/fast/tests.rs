use mcp_auth_proto::claims::Audience;
use mcp_auth_proto::decisions::{Allow, Deny, HEARTBEAT_INTERVAL_MS};

use super::*;

const GRACE: u64 = 3_000;
const T0: u64 = 1_800_000_000_000;
const IAT: u64 = 1_800_000_000 - 60;

fn token(name: &str) -> Rc<VerifiedToken> {
    Rc::new(VerifiedToken {
        subject: format!("sub-{name}"),
        login: name.to_owned(),
        client_id: format!("client-{name}"),
        grant_id: format!("grant-{name}"),
        token_id: format!("jti-{name}"),
        scope: "mcp".into(),
        expires_at: IAT + 600,
        issued_at: IAT,
        audience: Audience::One("https://mcp.example.com/mcp".into()),
        handoff_claims: String::new(),
    })
}

fn key(name: &str, route: u32) -> DecisionKey {
    (TokenHash::of(name), route, TokenHash::of(""))
}

fn allow() -> Rc<Verdict> {
    Rc::new(Verdict::Allow(Allow::default()))
}

fn deny() -> Rc<Verdict> {
    Rc::new(Verdict::Deny(Deny {
        status: 401,
        ..Default::default()
    }))
}

/// A fast path whose stream is up, with `names` cached on route 0 for a minute.
fn live(names: &[&str]) -> FastPath {
    let mut fast = FastPath::new(100, GRACE);
    fast.on_message(&Invalidation::ready(), T0);
    for name in names {
        let epoch = fast.epoch();
        assert!(fast.remember(key(name, 0), token(name), allow(), 60_000, epoch, T0));
    }
    fast
}

#[test]
fn decisions_are_reused_for_their_validity_and_per_route() {
    let fast = live(&["a"]);
    assert!(fast.lookup(&key("a", 0), T0 + 59_999).is_some());
    assert!(fast.lookup(&key("a", 0), T0 + 60_000).is_none());
    assert!(fast.lookup(&key("a", 1), T0).is_none());
    assert!(fast.lookup(&key("b", 0), T0).is_none());
}

#[test]
fn denials_are_cached_too_and_zero_validity_is_not() {
    let mut fast = live(&[]);
    let epoch = fast.epoch();
    assert!(fast.remember(key("d", 0), token("d"), deny(), 1_000, epoch, T0));
    assert_eq!(fast.lookup(&key("d", 0), T0).as_deref(), Some(&*deny()));
    assert!(!fast.remember(key("z", 0), token("z"), allow(), 0, epoch, T0));
    assert!(fast.lookup(&key("z", 0), T0).is_none());
}

#[test]
fn nothing_is_cached_before_the_stream_is_ready() {
    let mut fast = FastPath::new(100, GRACE);
    let epoch = fast.epoch();
    assert!(!fast.remember(key("a", 0), token("a"), allow(), 60_000, epoch, T0));
    assert!(fast.lookup(&key("a", 0), T0).is_none());
}

#[test]
fn a_revocation_drops_exactly_the_decisions_it_covers() {
    for (kind, id, gone) in [
        (TargetKind::Token, "jti-a", true),
        (TargetKind::Grant, "grant-a", true),
        (TargetKind::User, "sub-a", true),
        (TargetKind::Client, "client-a", true),
        (TargetKind::Token, "jti-x", false),
        (TargetKind::Unspecified, "?", true),
    ] {
        let mut fast = live(&["a", "b"]);
        fast.on_message(&Invalidation::revoked(kind, id, IAT), T0 + 1);
        assert_eq!(
            fast.lookup(&key("a", 0), T0 + 1).is_none(),
            gone,
            "{kind:?} {id}"
        );
        let b_gone = kind == TargetKind::Unspecified;
        assert_eq!(fast.lookup(&key("b", 0), T0 + 1).is_none(), b_gone);
    }
}

#[test]
fn a_revocation_before_the_token_was_issued_does_not_cover_it() {
    // The user signed in again after being revoked: the new token stands.
    let mut fast = live(&["a"]);
    fast.on_message(
        &Invalidation::revoked(TargetKind::User, "sub-a", IAT - 1),
        T0,
    );
    assert!(fast.lookup(&key("a", 0), T0).is_some());
    // A token-id revocation names the token itself, whatever the time.
    fast.on_message(&Invalidation::revoked(TargetKind::Token, "jti-a", 0), T0);
    assert!(fast.lookup(&key("a", 0), T0).is_none());
}

#[test]
fn an_answer_asked_before_an_invalidation_is_not_cached() {
    let mut fast = live(&[]);
    let asked = fast.epoch();
    fast.on_message(
        &Invalidation::revoked(TargetKind::Grant, "grant-a", IAT),
        T0,
    );
    assert!(!fast.remember(key("a", 0), token("a"), allow(), 60_000, asked, T0));
    assert!(fast.lookup(&key("a", 0), T0).is_none());
}

#[test]
fn flush_all_and_a_new_ready_drop_everything() {
    let mut fast = live(&["a"]);
    fast.on_message(&Invalidation::flush_all("config reloaded"), T0);
    assert_eq!(fast.cached(), 0);
    let mut fast = live(&["a"]);
    fast.on_message(&Invalidation::ready(), T0);
    assert_eq!(fast.cached(), 0);
}

#[test]
fn a_lost_stream_keeps_decisions_for_the_grace_only_and_caches_nothing_new() {
    let mut fast = live(&["a"]);
    fast.on_stream_lost(T0 + 10);
    assert!(fast.lookup(&key("a", 0), T0 + 10 + GRACE - 1).is_some());
    assert!(fast.lookup(&key("a", 0), T0 + 10 + GRACE).is_none());
    let epoch = fast.epoch();
    assert!(!fast.remember(key("b", 0), token("b"), allow(), 60_000, epoch, T0 + 20));
    // Back: everything from before is gone, new answers are cached again.
    fast.on_message(&Invalidation::ready(), T0 + 30);
    assert!(fast.lookup(&key("a", 0), T0 + 30).is_none());
    let epoch = fast.epoch();
    assert!(fast.remember(key("b", 0), token("b"), allow(), 60_000, epoch, T0 + 30));
}

#[test]
fn a_silent_stream_is_reopened_after_missed_heartbeats() {
    let limit = u64::from(HEARTBEAT_INTERVAL_MS * MISSED_HEARTBEATS);
    let mut fast = live(&[]);
    assert!(!fast.stream_is_stuck(T0, T0 + limit));
    fast.on_message(&Invalidation::heartbeat(), T0 + limit);
    assert!(!fast.stream_is_stuck(T0, T0 + 2 * limit));
    assert!(fast.stream_is_stuck(T0, T0 + 2 * limit + 1));
}

#[test]
fn a_stream_that_never_becomes_ready_is_reopened() {
    let limit = u64::from(HEARTBEAT_INTERVAL_MS * MISSED_HEARTBEATS);
    let fast = FastPath::new(100, GRACE);
    assert!(!fast.stream_is_stuck(T0, T0 + limit));
    assert!(fast.stream_is_stuck(T0, T0 + limit + 1));
}

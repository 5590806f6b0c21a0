use std::sync::Arc;

use envoy_types::pb::envoy::service::auth::v3::attribute_context::HttpRequest;
use mcp_auth_gateway::GatewayConfig;
use mcp_auth_proto::store::{RevocationEvent, RevocationTarget, UserRecord};

use super::*;
use crate::facts::TokenFacts;
use crate::settings::Settings;
use crate::state::StoreSnapshot;

/// Access tokens live 600 s, the filter's leeway is 30 s, resync every 60 s.
const TTL: u64 = 600;
const NOW: u64 = 1_000_000;
/// A token issued 100 s ago.
const EXP: u64 = NOW - 100 + TTL;
const IAT: u64 = EXP - TTL;

fn settings(access: &str) -> Settings {
    let config = GatewayConfig::from_yaml(&format!(
        "issuer: http://127.0.0.1:8080\n\
         ext_authz: {{ resync_interval: 60s }}\n\
         filter: {{ clock_leeway: 30s }}\n\
         tokens: {{ access_token: {TTL}s }}\n\
         {access}\n\
         services:\n\
         \x20 - name: svc\n    upstream: {{ url: http://127.0.0.1:3001/mcp }}\n\
         \x20 - name: team-only\n    upstream: {{ url: http://127.0.0.1:3002/mcp }}\n\
         \x20   access: {{ teams: [acme/mcp] }}\n"
    ))
    .unwrap();
    Settings::from_config(&config, 7).unwrap()
}

fn view(access: &str, store: StoreSnapshot) -> View {
    View {
        settings: Arc::new(settings(access)),
        store: Arc::new(store),
    }
}

fn anyone() -> View {
    view("access: { users: ['*'] }", StoreSnapshot::default())
}

fn http() -> HttpRequest {
    HttpRequest {
        method: "POST".into(),
        path: "/svc/mcp".into(),
        ..Default::default()
    }
}

fn facts<'a>(http: &'a HttpRequest, service: &'a str) -> RequestFacts<'a> {
    RequestFacts {
        service: service.into(),
        token: TokenFacts {
            subject: "42".into(),
            login: "alice".into(),
            client_id: "client-1".into(),
            grant_id: "grant-1".into(),
            token_id: "jti-1".into(),
            scope: "mcp".into(),
            expires_at: EXP,
            issued_at: IAT,
        },
        request: HttpFacts {
            method: &http.method,
            path: &http.path,
            body: b"",
            http,
        },
    }
}

fn with_revocation(target: RevocationTarget, revoked_at: u64, expires_at: u64) -> StoreSnapshot {
    let mut store = StoreSnapshot::default();
    store.revocations.insert(&RevocationEvent {
        target,
        revoked_at,
        expires_at,
    });
    store
}

fn keys() -> InvalidationKeys {
    InvalidationKeys {
        token_id: "jti-1".into(),
        grant_id: "grant-1".into(),
        subject: "42".into(),
        client_id: "client-1".into(),
    }
}

const METADATA: &str = "http://127.0.0.1:8080/.well-known/oauth-protected-resource/svc/mcp";

fn revoked(kind: TargetKind) -> Verdict {
    Verdict::Unauthenticated {
        reason: Unauthenticated::Revoked(kind),
        resource_metadata: Some(METADATA.into()),
    }
}

#[test]
fn valid_token_on_open_service_is_allowed_with_identity() {
    let http = http();
    let decision = decide(Ok(&facts(&http, "svc")), &anyone(), NOW);
    assert_eq!(
        decision,
        Decision {
            verdict: Verdict::Allow(Identity {
                user_id: "42".into(),
                login: "alice".into(),
                client_id: "client-1".into(),
                scopes: "mcp".into(),
                service_headers: Default::default(),
            }),
            // Bounded by the resync interval, not the token's remaining 530 s.
            valid_for: Duration::from_secs(60),
            keys: Some(keys()),
            config_generation: 7,
        }
    );
}

#[test]
fn allow_is_cached_no_longer_than_the_token_lives() {
    let http = http();
    let decision = decide(Ok(&facts(&http, "svc")), &anyone(), EXP + 10);
    assert!(matches!(decision.verdict, Verdict::Allow(_)));
    assert_eq!(decision.valid_for, Duration::from_secs(20));
}

#[test]
fn missing_handoff_is_forbidden_and_never_cached() {
    let error = FactsError::Missing("x-mcp-auth-handoff");
    let decision = decide(Err(&error), &anyone(), NOW);
    assert_eq!(
        decision,
        Decision {
            verdict: Verdict::Forbidden(Forbidden::NoHandoff(error)),
            valid_for: Duration::ZERO,
            keys: None,
            config_generation: 7,
        }
    );
}

#[test]
fn token_past_exp_and_leeway_is_unauthenticated() {
    let http = http();
    for now in [EXP + 30, EXP + 31, u64::MAX] {
        let decision = decide(Ok(&facts(&http, "svc")), &anyone(), now);
        assert_eq!(
            decision.verdict,
            Verdict::Unauthenticated {
                reason: Unauthenticated::Expired,
                resource_metadata: Some(METADATA.into()),
            },
            "now = {now}"
        );
        assert_eq!(decision.valid_for, Duration::ZERO);
        assert_eq!(decision.keys, Some(keys()));
    }
}

#[test]
fn revoked_token_id_is_unauthenticated_whatever_its_iat() {
    let http = http();
    // revoked_at before the derived iat: a token-id record names the token itself.
    let store = with_revocation(RevocationTarget::Token("jti-1".into()), IAT - 50, EXP + 30);
    let view = view("access: { users: ['*'] }", store);
    let decision = decide(Ok(&facts(&http, "svc")), &view, NOW);
    assert_eq!(decision.verdict, revoked(TargetKind::Token));
    // Final until the token dies (exp + leeway).
    assert_eq!(decision.valid_for, Duration::from_secs(EXP + 30 - NOW));
    assert_eq!(decision.keys, Some(keys()));
}

#[test]
fn grant_user_and_client_revocations_cover_tokens_issued_until_revoked_at() {
    let http = http();
    for (target, kind) in [
        (RevocationTarget::Grant("grant-1".into()), TargetKind::Grant),
        (RevocationTarget::User("42".into()), TargetKind::User),
        (
            RevocationTarget::Client("client-1".into()),
            TargetKind::Client,
        ),
    ] {
        for (revoked_at, covered) in [(IAT, true), (IAT + 1, true), (IAT - 1, false)] {
            let store = with_revocation(target.clone(), revoked_at, NOW + 1000);
            let view = view("access: { users: ['*'] }", store);
            let decision = decide(Ok(&facts(&http, "svc")), &view, NOW);
            if covered {
                assert_eq!(
                    decision.verdict,
                    revoked(kind),
                    "{target:?} at {revoked_at}"
                );
            } else {
                assert!(
                    matches!(decision.verdict, Verdict::Allow(_)),
                    "{target:?} at {revoked_at}: a token issued after the revocation is valid"
                );
            }
        }
    }
}

#[test]
fn revocations_of_other_targets_do_not_apply() {
    let http = http();
    for target in [
        RevocationTarget::Token("jti-2".into()),
        RevocationTarget::Grant("grant-2".into()),
        RevocationTarget::User("43".into()),
        RevocationTarget::Client("client-2".into()),
        // Same id, other kind.
        RevocationTarget::User("client-1".into()),
    ] {
        let store = with_revocation(target.clone(), NOW, NOW + 1000);
        let view = view("access: { users: ['*'] }", store);
        let decision = decide(Ok(&facts(&http, "svc")), &view, NOW);
        assert!(matches!(decision.verdict, Verdict::Allow(_)), "{target:?}");
    }
}

#[test]
fn a_revoked_token_stays_refused_through_the_clock_leeway_past_its_exp() {
    // The filter accepts a token until `exp + leeway` (30 s here): a revocation must hold
    // for all of it, even if its record claims to expire at `exp`.
    let http = http();
    for target in [
        RevocationTarget::Token("jti-1".into()),
        RevocationTarget::Grant("grant-1".into()),
    ] {
        let store = with_revocation(target.clone(), IAT, EXP);
        let view = view("access: { users: ['*'] }", store);
        for now in [EXP - 1, EXP, EXP + 1, EXP + 29] {
            let decision = decide(Ok(&facts(&http, "svc")), &view, now);
            assert!(
                matches!(
                    decision.verdict,
                    Verdict::Unauthenticated {
                        reason: Unauthenticated::Revoked(_),
                        ..
                    }
                ),
                "{target:?} at exp{:+}: {:?}",
                now as i64 - EXP as i64,
                decision.verdict
            );
        }
        let after = decide(Ok(&facts(&http, "svc")), &view, EXP + 30);
        assert!(matches!(
            after.verdict,
            Verdict::Unauthenticated {
                reason: Unauthenticated::Expired,
                ..
            }
        ));
    }
}

#[test]
fn revocation_is_checked_before_the_allow_list() {
    let http = http();
    let store = with_revocation(RevocationTarget::User("42".into()), NOW, NOW + 1000);
    let view = view("access: { users: [bob] }", store);
    let decision = decide(Ok(&facts(&http, "svc")), &view, NOW);
    assert_eq!(decision.verdict, revoked(TargetKind::User));
}

#[test]
fn unknown_service_is_forbidden() {
    let http = http();
    let decision = decide(Ok(&facts(&http, "nope")), &anyone(), NOW);
    assert_eq!(
        decision.verdict,
        Verdict::Forbidden(Forbidden::UnknownService)
    );
    assert_eq!(decision.valid_for, Duration::from_secs(60));
    assert_eq!(decision.keys, Some(keys()));
}

#[test]
fn revoked_token_on_unknown_service_has_no_metadata_url() {
    let http = http();
    let store = with_revocation(RevocationTarget::Token("jti-1".into()), NOW, NOW + 1000);
    let view = view("access: { users: ['*'] }", store);
    let decision = decide(Ok(&facts(&http, "nope")), &view, NOW);
    assert_eq!(
        decision.verdict,
        Verdict::Unauthenticated {
            reason: Unauthenticated::Revoked(TargetKind::Token),
            resource_metadata: None,
        }
    );
}

#[test]
fn user_not_on_global_list_is_forbidden() {
    let http = http();
    let view = view("access: { users: [bob] }", StoreSnapshot::default());
    let decision = decide(Ok(&facts(&http, "svc")), &view, NOW);
    assert_eq!(
        decision.verdict,
        Verdict::Forbidden(Forbidden::NotAllowed {
            list: ListScope::Global,
            no_user_record: false,
        })
    );
    assert_eq!(decision.valid_for, Duration::from_secs(60));
}

#[test]
fn team_only_service_needs_a_user_record_with_the_team() {
    let http = http();
    let decision = decide(Ok(&facts(&http, "team-only")), &anyone(), NOW);
    assert_eq!(
        decision.verdict,
        Verdict::Forbidden(Forbidden::NotAllowed {
            list: ListScope::Service,
            no_user_record: true,
        })
    );

    let mut store = StoreSnapshot::default();
    let record = |teams: &[&str]| UserRecord {
        subject: "42".into(),
        login: "alice-renamed".into(),
        orgs: vec![],
        teams: teams.iter().map(|t| t.to_string()).collect(),
        updated_at: NOW,
    };
    store.users.insert("42".into(), record(&["acme/other"]));
    let v = view("access: { users: ['*'] }", store.clone());
    assert_eq!(
        decide(Ok(&facts(&http, "team-only")), &v, NOW).verdict,
        Verdict::Forbidden(Forbidden::NotAllowed {
            list: ListScope::Service,
            no_user_record: false,
        })
    );

    store.users.insert("42".into(), record(&["acme/mcp"]));
    let v = view("access: { users: ['*'] }", store);
    let decision = decide(Ok(&facts(&http, "team-only")), &v, NOW);
    // The identity carries the record's (current) login.
    assert_eq!(
        decision.verdict,
        Verdict::Allow(Identity {
            user_id: "42".into(),
            login: "alice-renamed".into(),
            client_id: "client-1".into(),
            scopes: "mcp".into(),
            service_headers: Default::default(),
        })
    );
}

#[test]
fn request_policy_lets_everything_through_for_now() {
    let http = http();
    let v = anyone();
    let facts = facts(&http, "svc");
    let rule = v.settings.access.service("svc").unwrap();
    assert_eq!(request_policy(&facts.request, rule), Ok(()));
}

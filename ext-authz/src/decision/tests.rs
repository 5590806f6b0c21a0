use std::sync::Arc;

use envoy_types::pb::envoy::service::auth::v3::attribute_context::HttpRequest;
use mcp_auth_gateway::GatewayConfig;
use mcp_auth_proto::store::{RevocationEvent, RevocationTarget, UserRecord};

use super::*;
use crate::facts::{HttpFacts, TokenFacts};
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
            body_follows: false,
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
                visibility: None,
            }),
            // Bounded by the resync interval, not the token's remaining 530 s.
            valid_for: Duration::from_secs(60),
            keys: Some(keys()),
            config_generation: 7,
            audit: None,
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
            audit: None,
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
        ..Default::default()
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
            visibility: None,
        })
    );
}

/// A view whose config has this `mcp_policy` (YAML lines) and `svc` offers `mcp:read
/// mcp:write` (`mcp` would imply `mcp:write`), requiring `mcp:read`.
fn policy_view(policy: &str, store: StoreSnapshot) -> View {
    let config = GatewayConfig::from_yaml(&format!(
        "issuer: http://127.0.0.1:8080\n\
         access: {{ users: ['*'] }}\n\
         services:\n\
         \x20 - name: svc\n    upstream: {{ url: http://127.0.0.1:3001/mcp }}\n    scopes: ['mcp:read', 'mcp:write']\n    required_scopes: ['mcp:read']\n\
         mcp_policy:\n{policy}"
    ))
    .unwrap();
    View {
        settings: Arc::new(Settings::from_config(&config, 7).unwrap()),
        store: Arc::new(store),
    }
}

const POLICY: &str = "  rules:\n\
    \x20   - { name: admins-env, services: [svc], methods: [tools/call], names: [get-env], allow: { teams: [acme/admins] } }\n\
    \x20   - { name: writes, methods: [tools/call], names: ['write_*'], scopes: ['mcp:write'] }\n";

fn post<'a>(http: &'a mut HttpRequest, body: &'a str, scope: &'a str) -> RequestFacts<'a> {
    http.headers
        .insert("content-type".into(), "application/json".into());
    let mut f = facts(http, "svc");
    f.request.body = body.as_bytes();
    f.token.scope = scope.into();
    f
}

fn admin_store() -> StoreSnapshot {
    let mut store = StoreSnapshot::default();
    store.users.insert(
        "42".into(),
        UserRecord {
            subject: "42".into(),
            login: "alice".into(),
            orgs: vec![],
            teams: vec!["acme/admins".into()],
            updated_at: NOW,
            ..Default::default()
        },
    );
    store
}

const GET_ENV: &str =
    r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"get-env"}}"#;

#[test]
fn a_tool_reserved_to_a_team_is_refused_to_others_with_a_json_rpc_error() {
    let mut http = http();
    let facts = post(&mut http, GET_ENV, "mcp");
    let decision = decide(
        Ok(&facts),
        &policy_view(POLICY, StoreSnapshot::default()),
        NOW,
    );
    assert_eq!(
        decision.verdict,
        Verdict::Refused(Refusal::Denied {
            id: Some("5".into()),
            method: "tools/call".into(),
            name: Some("get-env".into()),
        })
    );
    assert_eq!(decision.valid_for, Duration::ZERO);
    let audit = decision.audit.unwrap();
    assert_eq!(
        (audit.decision, audit.rule.as_deref()),
        ("deny", Some("admins-env"))
    );

    let decision = decide(Ok(&facts), &policy_view(POLICY, admin_store()), NOW);
    assert!(
        matches!(decision.verdict, Verdict::Allow(_)),
        "{decision:?}"
    );
    assert_eq!(decision.audit.unwrap().decision, "allow");
}

#[test]
fn a_tool_gated_by_scope_asks_for_every_scope_it_needs() {
    let mut http = http();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_file"}}"#;
    let facts = post(&mut http, body, "mcp:read");
    let v = policy_view(POLICY, StoreSnapshot::default());
    assert_eq!(
        decide(Ok(&facts), &v, NOW).verdict,
        Verdict::Refused(Refusal::InsufficientScope {
            scopes: vec!["mcp:read".into(), "mcp:write".into()],
            resource_metadata: METADATA.into(),
            method: "tools/call".into(),
            name: Some("write_file".into()),
        })
    );
    let mut http = self::http();
    let facts = post(&mut http, body, "mcp:read mcp:write");
    assert!(matches!(
        decide(Ok(&facts), &v, NOW).verdict,
        Verdict::Allow(_)
    ));
}

#[test]
fn one_denied_element_refuses_the_whole_batch() {
    let mut http = http();
    let body = format!(r#"[{{"jsonrpc":"2.0","id":1,"method":"tools/list"}},{GET_ENV}]"#);
    let facts = post(&mut http, &body, "mcp");
    let verdict = decide(
        Ok(&facts),
        &policy_view(POLICY, StoreSnapshot::default()),
        NOW,
    )
    .verdict;
    assert_eq!(
        verdict,
        Verdict::Refused(Refusal::Denied {
            id: None,
            method: "tools/call".into(),
            name: Some("get-env".into()),
        })
    );
}

#[test]
fn bodies_policy_cannot_read_are_refused_never_passed() {
    let v = policy_view(POLICY, StoreSnapshot::default());
    let refusal = |body: &str, content_type: Option<&str>, extra: &[(&str, &str)]| {
        let mut http = http();
        for (k, val) in extra {
            http.headers.insert((*k).into(), (*val).into());
        }
        let mut f = facts(&http, "svc");
        f.request.body = body.as_bytes();
        let _ = &mut f;
        let mut http2 = http.clone();
        if let Some(ct) = content_type {
            http2.headers.insert("content-type".into(), ct.into());
        }
        let mut f = facts(&http2, "svc");
        f.request.body = body.as_bytes();
        match decide(Ok(&f), &v, NOW).verdict {
            Verdict::Refused(Refusal::BadRequest { status, code, .. }) => (status, code),
            other => panic!("{body}: {other:?}"),
        }
    };
    let json = Some("application/json");
    assert_eq!(refusal("{", json, &[]), (400, -32700));
    assert_eq!(refusal("", json, &[]), (400, -32700));
    assert_eq!(
        refusal(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#,
            json,
            &[]
        ),
        (400, -32602)
    );
    assert_eq!(refusal(GET_ENV, Some("text/plain"), &[]), (415, -32600));
    assert_eq!(refusal(GET_ENV, None, &[]), (415, -32600));
    assert_eq!(
        refusal(GET_ENV, json, &[("x-envoy-auth-partial-body", "true")]),
        (413, -32600)
    );
    assert_eq!(
        refusal(
            GET_ENV,
            json,
            &[("mcp-method", "tools/call"), ("mcp-name", "echo")]
        ),
        (400, -32020)
    );
}

#[test]
fn requests_without_a_body_and_open_policies_are_not_read() {
    let v = policy_view(POLICY, StoreSnapshot::default());
    let mut http = http();
    http.method = "GET".into();
    let decision = decide(Ok(&facts(&http, "svc")), &v, NOW);
    assert!(matches!(decision.verdict, Verdict::Allow(_)));
    assert_eq!(decision.audit, None);
    // No policy at all: a body that is not even JSON passes (the MCP server answers it).
    let http = self::http();
    let mut f = facts(&http, "svc");
    f.request.body = b"{";
    assert!(matches!(
        decide(Ok(&f), &anyone(), NOW).verdict,
        Verdict::Allow(_)
    ));
}

#[test]
fn the_caller_learns_what_listings_hide_from_them() {
    let v = policy_view(POLICY, StoreSnapshot::default());
    let mut http = http();
    http.method = "GET".into();
    let Verdict::Allow(identity) = decide(Ok(&facts(&http, "svc")), &v, NOW).verdict else {
        panic!("not allowed");
    };
    let visibility =
        mcp_auth_proto::listing::Visibility::decode(identity.visibility.unwrap().as_bytes())
            .unwrap();
    use mcp_auth_proto::listing::ListKind;
    assert!(!visibility.shows(ListKind::Tools, "get-env"));
    // Gated by scope only: listed, so the client can call it and step up.
    assert!(visibility.shows(ListKind::Tools, "write_file"));
    assert!(visibility.shows(ListKind::Tools, "echo"));
    assert!(visibility.shows(ListKind::Prompts, "get-env"));
    let v = policy_view(POLICY, admin_store());
    let Verdict::Allow(identity) = decide(Ok(&facts(&http, "svc")), &v, NOW).verdict else {
        panic!("not allowed");
    };
    assert_eq!(identity.visibility, None, "an admin is shown everything");
}

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use mcp_auth_gateway::GatewayConfig;
use mcp_auth_proto::handoff::Handoff;
use mcp_auth_proto::store::{RevocationEvent, RevocationTarget};

use super::*;
use crate::settings::Settings;
use crate::state::StoreSnapshot;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn shared(store: StoreSnapshot) -> Arc<Shared> {
    let config = GatewayConfig::from_yaml(
        "issuer: http://127.0.0.1:8080\n\
         ext_authz: { resync_interval: 60s }\n\
         access: { users: ['*'] }\n\
         services:\n\
         \x20 - name: svc\n    upstream: { url: http://127.0.0.1:3001/mcp }\n",
    )
    .unwrap();
    let shared = Arc::new(Shared::new(Settings::from_config(&config, 1).unwrap()));
    shared.install(store);
    shared.mark_contact(Instant::now());
    shared
}

fn request(service: &str) -> DecideRequest {
    let iat = now() - 10;
    let handoff = Handoff {
        service: service.into(),
        subject: "42".into(),
        login: "alice".into(),
        client_id: "client-1".into(),
        grant_id: "grant-1".into(),
        token_id: "jti-1".into(),
        scope: "mcp".into(),
        expires_at: iat + 600,
        issued_at: iat,
    };
    DecideRequest {
        handoff: crate::facts::testing::signed(&handoff),
        method: "POST".into(),
        path: "/svc/mcp".into(),
        host: "gateway".into(),
        ..Default::default()
    }
}

fn decide(shared: &Arc<Shared>, request: &DecideRequest) -> DecideResponse {
    let service =
        AuthorizationService::new(shared.clone(), Arc::new(crate::facts::testing::keys()));
    let (decision, response) = service.decide(&check_request(request)).unwrap();
    decide_response(&decision, response)
}

fn header<'a>(headers: &'a [pb::Header], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name == name)
        .map(|h| h.value.as_str())
}

#[test]
fn an_allow_carries_the_identity_the_removals_and_a_lifetime() {
    let response = decide(&shared(StoreSnapshot::default()), &request("svc"));
    let Some(pb::Verdict::Allow(allow)) = &response.verdict else {
        panic!("{response:?}");
    };
    assert_eq!(header(&allow.set_headers, "x-mcp-user-id"), Some("42"));
    assert_eq!(
        header(&allow.set_headers, "x-mcp-user-login"),
        Some("alice")
    );
    assert_eq!(
        header(&allow.set_headers, "x-mcp-client-id"),
        Some("client-1")
    );
    assert!(allow.remove_headers.contains(&"authorization".to_owned()));
    assert!(allow.remove_headers.contains(&HANDOFF_HEADER.to_owned()));
    // Bounded by the resync interval (60 s), not the token's remaining life.
    assert!(
        (1..=60_000).contains(&response.valid_for_ms),
        "{}",
        response.valid_for_ms
    );
}

#[test]
fn a_revoked_token_is_denied_with_the_same_challenge_as_check() {
    let mut store = StoreSnapshot::default();
    store.revocations.insert(&RevocationEvent {
        target: RevocationTarget::Token("jti-1".into()),
        revoked_at: now(),
        expires_at: now() + 600,
    });
    let shared = shared(store);
    let request = request("svc");
    let response = decide(&shared, &request);
    let Some(pb::Verdict::Deny(deny)) = &response.verdict else {
        panic!("{response:?}");
    };
    assert_eq!(deny.status, 401);
    let challenge = header(&deny.headers, "www-authenticate").unwrap();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    // Exactly what Authorization/Check answers for the same request.
    let (_, check) = AuthorizationService::new(shared, Arc::new(crate::facts::testing::keys()))
        .decide(&check_request(&request))
        .unwrap();
    let Some(HttpResponse::DeniedResponse(denied)) = check.http_response else {
        panic!("not denied");
    };
    assert_eq!(deny.body, denied.body.into_bytes());
}

#[test]
fn a_request_without_a_usable_handoff_is_denied_and_never_reused() {
    let mut request = request("svc");
    request.handoff = "sub=1".into();
    let response = decide(&shared(StoreSnapshot::default()), &request);
    assert!(matches!(response.verdict, Some(pb::Verdict::Deny(ref d)) if d.status == 403));
    assert_eq!(response.valid_for_ms, 0);
}

#[test]
fn an_unknown_service_is_forbidden() {
    let response = decide(&shared(StoreSnapshot::default()), &request("nope"));
    assert!(matches!(response.verdict, Some(pb::Verdict::Deny(ref d)) if d.status == 403));
}

#[test]
fn changes_become_invalidations() {
    let event = RevocationEvent {
        target: RevocationTarget::User("42".into()),
        revoked_at: 7,
        expires_at: 9,
    };
    assert_eq!(
        invalidation(&Change::Revoked(event)),
        Invalidation::revoked(TargetKind::User, "42", 7)
    );
    assert_eq!(
        invalidation(&Change::Flush("config reloaded")),
        Invalidation::flush_all("config reloaded")
    );
}

#[tokio::test]
async fn revocations_and_reloads_are_announced_to_watchers() {
    let shared = shared(StoreSnapshot::default());
    let mut changes = shared.subscribe();
    let event = RevocationEvent {
        target: RevocationTarget::Grant("grant-1".into()),
        revoked_at: 7,
        expires_at: now() + 60,
    };
    shared.apply(&event);
    assert_eq!(changes.recv().await.unwrap(), Change::Revoked(event));
    // A resync that finds what the events built is not news; one that differs is.
    shared.install(StoreSnapshot::clone(&shared.store().unwrap()));
    shared.install(StoreSnapshot::default());
    assert!(matches!(changes.recv().await.unwrap(), Change::Flush(_)));
    shared.set_settings(Settings::clone(&shared.settings()));
    assert_eq!(
        changes.recv().await.unwrap(),
        Change::Flush("config reloaded")
    );
    assert!(changes.try_recv().is_err());
}

use serde_json::json;

use mcp_auth_proto::handoff::{HANDOFF_KEY_ENV, Handoff, HandoffError, HandoffKeys};

use super::*;
use crate::testing::{self, NOW, RESOURCE, TestKey, claims, mint};

const OTHER_RESOURCE: &str = "https://mcp.example.com/time/mcp";

fn config() -> Rc<Config> {
    let json = json!({
        "issuer": testing::ISSUER,
        "clock_leeway_secs": 30,
        "jwks": {"cluster": "authserver", "authority": "auth", "path": "/jwks", "refresh_secs": 300},
        "routes": [
            {
                "route": "everything",
                "resource": RESOURCE,
                "resource_metadata": "https://mcp.example.com/.well-known/oauth-protected-resource/everything/mcp",
                "required_scopes": ["mcp:tools"],
                "allowed_origins": ["https://app.example.com"]
            },
            {
                "route": "time",
                "resource": OTHER_RESOURCE,
                "resource_metadata": "https://mcp.example.com/.well-known/oauth-protected-resource/time/mcp",
                "required_scopes": []
            }
        ]
    });
    Rc::new(Config::parse(&serde_json::to_vec(&json).unwrap()).unwrap())
}

fn worker_with(keys: &[TestKey]) -> Worker {
    let worker = Worker::new(config(), 100, handoff_key());
    worker.install_keys(KeySet::parse(&testing::jwks(keys)).unwrap().keys);
    worker
}

fn worker() -> Worker {
    worker_with(&[TestKey::Ed("ed-1"), TestKey::Rsa("rsa-1")])
}

struct Req {
    route: &'static str,
    origin: Option<String>,
    authorization: Option<String>,
    path: String,
}

impl Req {
    fn bearer(token: &str) -> Self {
        Self {
            route: "everything",
            origin: None,
            authorization: Some(format!("Bearer {token}")),
            path: "/everything/mcp".into(),
        }
    }

    fn decide(&self, worker: &Worker, now: u64) -> Result<Admitted, Refused> {
        worker.decide(
            &RequestFacts {
                route_name: Some(self.route.as_bytes()),
                origin: self.origin.as_deref().map(str::as_bytes),
                authorization: self.authorization.as_deref().map(str::as_bytes),
                path: Some(self.path.as_bytes()),
            },
            now,
        )
    }
}

fn status(result: Result<Admitted, Refused>) -> u32 {
    match result {
        Ok(_) => 200,
        Err(refused) => refused.denial.status,
    }
}

fn error_code(result: Result<Admitted, Refused>) -> String {
    let refused = result.unwrap_err();
    let body: serde_json::Value = serde_json::from_str(&refused.denial.body).unwrap();
    body["error"].as_str().unwrap().to_owned()
}

/// The secret tests sign hand-offs with.
pub(super) const HANDOFF_SECRET: &str = "worker-tests-handoff-secret-of-32+bytes";

pub(super) fn handoff_key() -> HandoffKey {
    HandoffKey::from_secret(HANDOFF_KEY_ENV, HANDOFF_SECRET).unwrap()
}

fn valid_token() -> String {
    mint(&TestKey::Ed("ed-1"), &claims())
}

#[test]
fn a_valid_token_is_admitted_with_its_hand_off_value() {
    let worker = worker();
    let admitted = Req::bearer(&valid_token()).decide(&worker, NOW).unwrap();
    let value = worker.handoff_value(&admitted);
    let keys = HandoffKeys {
        current: handoff_key(),
        previous: None,
    };
    let handoff = Handoff::verify_and_decode(&keys, &value).unwrap();
    // Only the filter's secret makes the value acceptable.
    let other = HandoffKeys {
        current: HandoffKey::from_secret(HANDOFF_KEY_ENV, &HANDOFF_SECRET.repeat(2)).unwrap(),
        previous: None,
    };
    assert_eq!(
        Handoff::verify_and_decode(&other, &value),
        Err(HandoffError::BadMac)
    );
    assert_eq!(handoff.service, "everything");
    assert_eq!(handoff.subject, "12345");
    assert_eq!(handoff.login, "octocat");
    assert_eq!(handoff.client_id, "client-1");
    assert_eq!(handoff.grant_id, "grant-1");
    assert_eq!(handoff.token_id, "tok-1");
    assert_eq!(handoff.scope, "mcp:tools mcp:resources");
    assert_eq!(handoff.expires_at, NOW + 300);
    assert_eq!(handoff.issued_at, NOW - 10);
}

#[test]
fn a_route_without_policy_is_refused() {
    let mut req = Req::bearer(&valid_token());
    req.route = "authserver";
    assert_eq!(error_code(req.decide(&worker(), NOW)), "access_denied");
    assert_eq!(status(req.decide(&worker(), NOW)), 403);
    let no_route = worker().decide(&RequestFacts::default(), NOW);
    assert_eq!(status(no_route), 403);
}

#[test]
fn origin_must_be_absent_or_allowed() {
    let mut req = Req::bearer(&valid_token());
    req.origin = Some("https://app.example.com".into());
    assert_eq!(status(req.decide(&worker(), NOW)), 200);
    req.origin = Some("https://evil.example.com".into());
    assert_eq!(status(req.decide(&worker(), NOW)), 403);
    assert_eq!(error_code(req.decide(&worker(), NOW)), "access_denied");
}

#[test]
fn no_token_gets_the_bare_challenge() {
    let mut req = Req::bearer("x");
    req.authorization = None;
    let refused = req.decide(&worker(), NOW).unwrap_err();
    assert_eq!(refused.denial.status, 401);
    assert!(!refused.denial.www_authenticate.unwrap().contains("error="));
    req.authorization = Some("Basic dXNlcjpwYXNz".into());
    assert_eq!(status(req.decide(&worker(), NOW)), 401);
}

#[test]
fn two_authorization_headers_or_a_query_token_are_bad_requests() {
    let token = valid_token();
    let mut req = Req::bearer(&token);
    req.authorization = Some(format!("Bearer {token},Bearer {token}"));
    assert_eq!(status(req.decide(&worker(), NOW)), 400);
    assert_eq!(error_code(req.decide(&worker(), NOW)), "invalid_request");

    let mut req = Req::bearer(&token);
    req.path = format!("/everything/mcp?access_token={token}");
    assert_eq!(status(req.decide(&worker(), NOW)), 400);
    let refused = req.decide(&worker(), NOW).unwrap_err();
    assert!(!refused.reason.contains(&token));
}

#[test]
fn without_keys_the_answer_is_503() {
    let worker = Worker::new(config(), 100, handoff_key());
    assert!(!worker.has_keys());
    assert_eq!(
        status(Req::bearer(&valid_token()).decide(&worker, NOW)),
        503
    );
}

#[test]
fn bad_tokens_are_invalid_token() {
    let worker = worker();
    for token in [
        "garbage".to_owned(),
        mint(&TestKey::Ed("ed-1"), &{
            let mut c = claims();
            c["exp"] = (NOW - 100).into();
            c
        }),
        mint(&TestKey::Ed("ed-1"), &{
            let mut c = claims();
            c["iss"] = "https://github.com".into();
            c
        }),
    ] {
        let refused = Req::bearer(&token).decide(&worker, NOW).unwrap_err();
        assert_eq!(refused.denial.status, 401);
        assert!(
            refused
                .denial
                .www_authenticate
                .unwrap()
                .starts_with(r#"Bearer error="invalid_token""#)
        );
        assert!(!refused.reason.contains(&token));
    }
}

#[test]
fn unknown_kid_asks_for_a_key_refresh() {
    let worker = worker();
    assert!(!worker.take_key_refresh_request());
    let token = mint(&TestKey::OtherEd("ed-2", 5), &claims());
    assert_eq!(status(Req::bearer(&token).decide(&worker, NOW)), 401);
    assert!(worker.take_key_refresh_request());
    assert!(!worker.take_key_refresh_request());

    // Once the new key is installed, the token passes.
    worker.install_keys(
        KeySet::parse(&testing::jwks(&[
            TestKey::Ed("ed-1"),
            TestKey::OtherEd("ed-2", 5),
        ]))
        .unwrap()
        .keys,
    );
    assert_eq!(status(Req::bearer(&token).decide(&worker, NOW)), 200);
}

#[test]
fn missing_scope_is_403_and_broader_scope_passes() {
    let worker = worker();
    let mut narrow = claims();
    narrow["scope"] = "mcp:resources".into();
    let refused = Req::bearer(&mint(&TestKey::Ed("ed-1"), &narrow))
        .decide(&worker, NOW)
        .unwrap_err();
    assert_eq!(refused.denial.status, 403);
    assert_eq!(
        refused.denial.www_authenticate.as_deref(),
        Some(
            r#"Bearer error="insufficient_scope", scope="mcp:tools", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/everything/mcp""#
        )
    );
    let mut broad = claims();
    broad["scope"] = "mcp".into();
    assert_eq!(
        status(Req::bearer(&mint(&TestKey::Ed("ed-1"), &broad)).decide(&worker, NOW)),
        200
    );
}

#[test]
fn a_cached_token_is_still_checked_against_each_route() {
    let worker = worker();
    let token = valid_token();
    assert_eq!(status(Req::bearer(&token).decide(&worker, NOW)), 200);
    assert_eq!(worker.cached_tokens(), 1);
    let mut other = Req::bearer(&token);
    other.route = "time";
    let refused = other.decide(&worker, NOW).unwrap_err();
    assert_eq!(refused.denial.status, 401);
    assert!(refused.reason.contains("audience"));

    let mut narrow = claims();
    narrow["scope"] = "mcp:resources".into();
    narrow["aud"] = json!([RESOURCE, OTHER_RESOURCE]);
    let token = mint(&TestKey::Ed("ed-1"), &narrow);
    let mut other = Req::bearer(&token);
    other.route = "time";
    assert_eq!(status(other.decide(&worker, NOW)), 200);
    assert_eq!(
        status(Req::bearer(&token).decide(&worker, NOW)),
        403,
        "cached, still scoped"
    );
}

#[test]
fn cached_tokens_end_at_exp_and_are_then_verified_again() {
    let worker = worker();
    let token = valid_token();
    let exp = NOW + 300;
    assert_eq!(status(Req::bearer(&token).decide(&worker, NOW)), 200);
    assert_eq!(status(Req::bearer(&token).decide(&worker, exp - 1)), 200);
    // Past exp the cache no longer answers; verification still grants the leeway...
    assert_eq!(status(Req::bearer(&token).decide(&worker, exp + 10)), 200);
    // ...and no more.
    assert_eq!(status(Req::bearer(&token).decide(&worker, exp + 30)), 401);
}

#[test]
fn a_key_leaving_the_set_voids_the_tokens_it_verified() {
    let worker = worker();
    let token = valid_token();
    assert_eq!(status(Req::bearer(&token).decide(&worker, NOW)), 200);

    // A new key added: the cache stays.
    let change = worker.install_keys(
        KeySet::parse(&testing::jwks(&[
            TestKey::Ed("ed-1"),
            TestKey::Rsa("rsa-1"),
            TestKey::Ec("ec-1"),
        ]))
        .unwrap()
        .keys,
    );
    assert!(!change.cache_cleared);
    assert_eq!(worker.cached_tokens(), 1);

    // The signing key removed: the cache goes, and the token fails.
    let change = worker.install_keys(
        KeySet::parse(&testing::jwks(&[TestKey::Rsa("rsa-1")]))
            .unwrap()
            .keys,
    );
    assert!(change.cache_cleared);
    assert_eq!(worker.cached_tokens(), 0);
    assert_eq!(status(Req::bearer(&token).decide(&worker, NOW)), 401);
}

mod failures;

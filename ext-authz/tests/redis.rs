//! ext_authz against a real Redis, driven through a real tonic client over loopback.
//!
//! Revocations are written the way the authserver writes them: `SET` the revocation key
//! with a TTL, then `PUBLISH` the same JSON on the revocation channel.

// Test code: helpers outside `#[test]` fns fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/harness.rs"]
mod harness;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::service::auth::v3::CheckRequest;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use harness::*;
use mcp_auth_proto::handoff::{HANDOFF_HEADER, HANDOFF_KEY_ENV, HandoffKey};
use mcp_auth_proto::store::{KeySpace, RevocationTarget, UserRecord};
use mcp_auth_testkit::RedisServer;
use tonic_health::pb::health_check_response::ServingStatus;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_revocations_are_enforced_within_a_second() {
    let redis_server = RedisServer::start();
    let mut conn = redis(&redis_server).await;
    let ext_authz = ExtAuthz::start(&config_yaml(&redis_server.url(), "30s", "1h", "['*']")).await;
    ext_authz.wait_serving().await;
    let mut client = ext_authz.client().await;

    // Allowed: token and hand-off removed, identity set with overwrite semantics.
    let token = Token::new("jti-1");
    let response = client.check(token.request()).await.unwrap().into_inner();
    let Some(HttpResponse::OkResponse(ok)) = &response.http_response else {
        panic!("not allowed: {response:?}");
    };
    assert!(ok.headers_to_remove.iter().any(|h| h == "authorization"));
    assert!(ok.headers_to_remove.iter().any(|h| h == HANDOFF_HEADER));
    let user_id = ok
        .headers
        .iter()
        .find(|h| h.header.as_ref().unwrap().key == "x-mcp-user-id")
        .unwrap();
    assert_eq!(user_id.header.as_ref().unwrap().value, "42");
    assert_eq!(
        user_id.append_action,
        envoy_types::ext_authz::v3::pb::HeaderAppendAction::OverwriteIfExistsOrAdd as i32
    );

    // Token id revoked and published: refused within 1 s.
    revoke(
        &mut conn,
        RevocationTarget::Token("jti-1".into()),
        unix_now(),
        true,
    )
    .await;
    let took = until(
        &mut client,
        &token.request(),
        Answer::Denied(401),
        Duration::from_secs(1),
    )
    .await;
    eprintln!("token revocation enforced after {took:?}");

    // Grant revoked (refresh-token reuse): its other tokens are refused too.
    let sibling = Token::new("jti-2");
    assert_eq!(check(&mut client, sibling.request()).await, Answer::Allowed);
    revoke(
        &mut conn,
        RevocationTarget::Grant("grant-1".into()),
        unix_now(),
        true,
    )
    .await;
    until(
        &mut client,
        &sibling.request(),
        Answer::Denied(401),
        Duration::from_secs(1),
    )
    .await;

    // A user revocation covers tokens issued up to it, not the ones after it (re-login).
    let mut old = Token::new("jti-3");
    old.grant = "grant-2".into();
    old.sub = "7".into();
    let mut newer = old.clone();
    newer.jti = "jti-4".into();
    newer.exp = old.exp + 5;
    newer.iat = old.iat + 5;
    revoke(
        &mut conn,
        RevocationTarget::User("7".into()),
        unix_now(),
        true,
    )
    .await;
    until(
        &mut client,
        &old.request(),
        Answer::Denied(401),
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(check(&mut client, newer.request()).await, Answer::Allowed);

    // Client revoked.
    let mut other_client = Token::new("jti-5");
    other_client.grant = "grant-3".into();
    other_client.client = "client-2".into();
    revoke(
        &mut conn,
        RevocationTarget::Client("client-2".into()),
        unix_now(),
        true,
    )
    .await;
    until(
        &mut client,
        &other_client.request(),
        Answer::Denied(401),
        Duration::from_secs(1),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resync_picks_up_missed_events_and_user_records() {
    let redis_server = RedisServer::start();
    let mut conn = redis(&redis_server).await;
    let ext_authz = ExtAuthz::start(&config_yaml(&redis_server.url(), "30s", "1s", "['*']")).await;
    ext_authz.wait_serving().await;
    let mut client = ext_authz.client().await;

    let token = Token::new("jti-missed");
    assert_eq!(check(&mut client, token.request()).await, Answer::Allowed);
    // Written, never published: only a resync can see it.
    revoke(
        &mut conn,
        RevocationTarget::Token("jti-missed".into()),
        unix_now(),
        false,
    )
    .await;
    until(
        &mut client,
        &token.request(),
        Answer::Denied(401),
        Duration::from_secs(4),
    )
    .await;

    // The team-only service needs the user's record (written by the authserver at login).
    let mut team = Token::new("jti-team");
    team.service = "team-only";
    assert_eq!(
        check(&mut client, team.request()).await,
        Answer::Denied(403)
    );
    let record = UserRecord {
        subject: "42".into(),
        login: "alice".into(),
        orgs: vec!["acme".into()],
        teams: vec!["acme/mcp".into()],
        updated_at: unix_now(),
        ..Default::default()
    };
    let () = redis::cmd("SET")
        .arg(KeySpace::new(PREFIX).user("42"))
        .arg(serde_json::to_string(&record).unwrap())
        .query_async(&mut conn)
        .await
        .unwrap();
    until(
        &mut client,
        &team.request(),
        Answer::Allowed,
        Duration::from_secs(4),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_reconnects_and_resyncs() {
    let mut redis_server = RedisServer::start();
    let ext_authz = ExtAuthz::start(&config_yaml(&redis_server.url(), "30s", "1h", "['*']")).await;
    ext_authz.wait_serving().await;
    let mut client = ext_authz.client().await;
    let token = Token::new("jti-r1");
    assert_eq!(check(&mut client, token.request()).await, Answer::Allowed);

    redis_server.stop();
    // Within the grace time, answers come from memory.
    assert_eq!(check(&mut client, token.request()).await, Answer::Allowed);
    redis_server.restart();
    // Written while ext_authz is (re)connecting and never published: the resync after the
    // reconnect must read it (the periodic one is an hour away).
    let mut conn = redis(&redis_server).await;
    revoke(
        &mut conn,
        RevocationTarget::Token("jti-r1".into()),
        unix_now(),
        false,
    )
    .await;
    until(
        &mut client,
        &token.request(),
        Answer::Denied(401),
        Duration::from_secs(5),
    )
    .await;

    // And the subscription is back: a published event is enforced within 1 s.
    let second = Token::new("jti-r2");
    assert_eq!(check(&mut client, second.request()).await, Answer::Allowed);
    revoke(
        &mut conn,
        RevocationTarget::Token("jti-r2".into()),
        unix_now(),
        true,
    )
    .await;
    until(
        &mut client,
        &second.request(),
        Answer::Denied(401),
        Duration::from_secs(1),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_past_grace_fails_closed_never_open() {
    let mut redis_server = RedisServer::start();
    let ext_authz = ExtAuthz::start(&config_yaml(&redis_server.url(), "1s", "1h", "['*']")).await;
    ext_authz.wait_serving().await;
    let mut client = ext_authz.client().await;
    let token = Token::new("jti-g");
    assert_eq!(check(&mut client, token.request()).await, Answer::Allowed);

    redis_server.stop();
    let stopped = Instant::now();
    let mut first_error = None;
    while stopped.elapsed() < Duration::from_secs(4) {
        match check(&mut client, token.request()).await {
            Answer::Allowed => assert!(
                first_error.is_none(),
                "allowed after failing closed ({:?} after Redis stopped)",
                stopped.elapsed()
            ),
            Answer::Unavailable => {
                first_error.get_or_insert(stopped.elapsed());
            }
            other => panic!("unexpected {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The last contact was at most one ping (1 s) before the stop, the grace is 1 s.
    let first_error = first_error.expect("never failed closed");
    assert!(
        first_error <= Duration::from_millis(2500),
        "{first_error:?}"
    );
    eprintln!("failed closed {first_error:?} after Redis stopped");
    assert_eq!(ext_authz.health("").await, ServingStatus::NotServing);
    assert_eq!(
        ext_authz
            .health(mcp_auth_ext_authz::AUTHORIZATION_SERVICE)
            .await,
        ServingStatus::NotServing
    );

    // Redis back: serving again.
    redis_server.restart();
    ext_authz.wait_serving().await;
    assert_eq!(check(&mut client, token.request()).await, Answer::Allowed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_serving_until_redis_answers() {
    let mut redis_server = RedisServer::start();
    redis_server.stop();
    let ext_authz = ExtAuthz::start(&config_yaml(&redis_server.url(), "30s", "1h", "['*']")).await;
    // Give it time to try (and fail) to connect.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ext_authz.health("").await, ServingStatus::NotServing);
    let mut client = ext_authz.client().await;
    let token = Token::new("jti-s");
    assert_eq!(
        check(&mut client, token.request()).await,
        Answer::Unavailable
    );

    redis_server.restart();
    ext_authz.wait_serving().await;
    assert_eq!(check(&mut client, token.request()).await, Answer::Allowed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_lists_follow_the_config_file() {
    let redis_server = RedisServer::start();
    let url = redis_server.url();
    let ext_authz = ExtAuthz::start(&config_yaml(&url, "30s", "1h", "['*']")).await;
    ext_authz.wait_serving().await;
    let mut client = ext_authz.client().await;
    let token = Token::new("jti-c");
    assert_eq!(check(&mut client, token.request()).await, Answer::Allowed);

    // A broken file is refused and the running config kept.
    std::fs::write(&ext_authz.config_path, "issuer: [").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(check(&mut client, token.request()).await, Answer::Allowed);

    // alice removed from the allow-list: 403 with a JSON body, without a restart.
    std::fs::write(
        &ext_authz.config_path,
        config_yaml(&url, "30s", "1h", "[bob]"),
    )
    .unwrap();
    until(
        &mut client,
        &token.request(),
        Answer::Denied(403),
        Duration::from_secs(3),
    )
    .await;
    let response = client.check(token.request()).await.unwrap().into_inner();
    let Some(HttpResponse::DeniedResponse(denied)) = response.http_response else {
        panic!("not denied");
    };
    let body: serde_json::Value = serde_json::from_str(&denied.body).unwrap();
    assert_eq!(body["error"], "access_denied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_the_filters_handoff_are_denied() {
    let redis_server = RedisServer::start();
    let ext_authz = ExtAuthz::start(&config_yaml(&redis_server.url(), "30s", "1h", "['*']")).await;
    ext_authz.wait_serving().await;
    let mut client = ext_authz.client().await;

    let bare = check_request([("authorization".to_owned(), "Bearer forged".to_owned())].into());
    assert_eq!(check(&mut client, bare).await, Answer::Denied(403));
    assert_eq!(
        check(&mut client, CheckRequest::default()).await,
        Answer::Denied(403)
    );
    let mut unknown = Token::new("jti-u");
    unknown.service = "nope";
    assert_eq!(
        check(&mut client, unknown.request()).await,
        Answer::Denied(403)
    );

    // Where the filter did not run, a client's own hand-off header reaches ext_authz: with no
    // MAC, or one made with another secret, it is refused; the filter's is not.
    let token = Token::new("jti-f");
    assert_eq!(check(&mut client, token.request()).await, Answer::Allowed);
    let mut unsigned = token.request();
    let headers = &mut unsigned
        .attributes
        .as_mut()
        .and_then(|a| a.request.as_mut())
        .and_then(|r| r.http.as_mut())
        .unwrap()
        .headers;
    let value = headers.get_mut(HANDOFF_HEADER).unwrap();
    let cut = value.rfind(";mac=").unwrap();
    value.truncate(cut);
    assert_eq!(check(&mut client, unsigned).await, Answer::Denied(403));
    let foreign = HandoffKey::from_secret(HANDOFF_KEY_ENV, &HANDOFF_SECRET.repeat(2)).unwrap();
    assert_eq!(
        check(&mut client, token.request_signed_with(&foreign)).await,
        Answer::Denied(403)
    );
}

#[tokio::test]
async fn ext_authz_refuses_to_start_without_the_handoff_secret() {
    let redis_server = RedisServer::start();
    let config = config_yaml(&redis_server.url(), "30s", "1h", "['*']");
    for (env, expected) in [
        (HashMap::new(), "MCP_AUTH_HANDOFF_KEY is not set"),
        (
            HashMap::from([(HANDOFF_KEY_ENV.to_owned(), "too short".to_owned())]),
            "at least 32",
        ),
    ] {
        let error = ExtAuthz::refusal(&config, env).await;
        assert!(error.to_string().contains(expected), "{error}");
    }
}

//! `mcp_auth.v1.Decisions` (fast mode) against a real Redis, through a real tonic client:
//! revocations written the authserver's way reach a watcher within a second, a reload
//! flushes, and a watcher never outlives trustworthy state or the server.

// Test code: helpers outside `#[test]` fns fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// Shared with the Check tests, which use the rest of it.
#[allow(dead_code)]
#[path = "support/harness.rs"]
mod harness;

use std::time::{Duration, Instant};

use harness::*;
use mcp_auth_ext_authz::decisions::DecisionsClient;
use mcp_auth_proto::decisions::{
    DecideRequest, Event, Invalidation, TargetKind, Verdict, WatchRequest,
};
use mcp_auth_proto::handoff::HANDOFF_HEADER;
use mcp_auth_proto::store::RevocationTarget;
use mcp_auth_testkit::RedisServer;
use tonic::Streaming;
use tonic::transport::Channel;

fn decide_request(token: &Token) -> DecideRequest {
    let check = token.request();
    let http = check.attributes.unwrap().request.unwrap().http.unwrap();
    DecideRequest {
        handoff: http.headers[HANDOFF_HEADER].clone(),
        method: "POST".into(),
        path: "/svc/mcp".into(),
        host: "gateway".into(),
        ..Default::default()
    }
}

async fn watch(client: &mut DecisionsClient<Channel>) -> Streaming<Invalidation> {
    let mut stream = client
        .watch_invalidations(WatchRequest {
            watcher: "test".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(first, Invalidation::ready());
    stream
}

/// The next message that is not a heartbeat, within `limit`.
async fn next_event(stream: &mut Streaming<Invalidation>, limit: Duration) -> Event {
    tokio::time::timeout(limit, async {
        loop {
            let message = stream.message().await.unwrap().unwrap();
            match message.event.unwrap() {
                Event::Heartbeat(_) => continue,
                event => return event,
            }
        }
    })
    .await
    .expect("no invalidation in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_match_check_and_revocations_reach_watchers_within_a_second() {
    let redis_server = RedisServer::start();
    let mut conn = redis(&redis_server).await;
    let ext_authz = ExtAuthz::start(&config_yaml(&redis_server.url(), "30s", "1h", "['*']")).await;
    ext_authz.wait_serving().await;
    let mut client = DecisionsClient::new(ext_authz.channel().await);
    let mut stream = watch(&mut client).await;

    let token = Token::new("jti-1");
    let answer = client
        .decide(decide_request(&token))
        .await
        .unwrap()
        .into_inner();
    let Some(Verdict::Allow(allow)) = &answer.verdict else {
        panic!("{answer:?}");
    };
    assert!(allow.remove_headers.iter().any(|h| h == "authorization"));
    assert!(
        allow
            .set_headers
            .iter()
            .any(|h| h.name == "x-mcp-user-id" && h.value == "42")
    );
    assert!(answer.valid_for_ms > 0);

    let revoked_at = unix_now();
    let started = Instant::now();
    revoke(
        &mut conn,
        RevocationTarget::Grant("grant-1".into()),
        revoked_at,
        true,
    )
    .await;
    let event = next_event(&mut stream, Duration::from_secs(1)).await;
    eprintln!(
        "invalidation pushed {:?} after the revocation",
        started.elapsed()
    );
    let Event::Revoked(revoked) = event else {
        panic!("{event:?}");
    };
    assert_eq!(revoked.kind, TargetKind::Grant as i32);
    assert_eq!(revoked.id, "grant-1");
    assert_eq!(revoked.revoked_at, revoked_at);
    // And Decide, like Check, now refuses the token.
    let answer = client
        .decide(decide_request(&token))
        .await
        .unwrap()
        .into_inner();
    assert!(
        matches!(&answer.verdict, Some(Verdict::Deny(d)) if d.status == 401),
        "{answer:?}"
    );

    // A config reload voids every decision.
    let yaml = std::fs::read_to_string(&ext_authz.config_path).unwrap();
    std::fs::write(&ext_authz.config_path, yaml.replace("['*']", "['bob']")).unwrap();
    let event = next_event(&mut stream, Duration::from_secs(5)).await;
    assert!(matches!(event, Event::FlushAll(_)), "{event:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_ends_when_redis_is_lost_past_grace_and_is_refused_until_it_is_back() {
    let mut redis_server = RedisServer::start();
    let ext_authz = ExtAuthz::start(&config_yaml(&redis_server.url(), "1s", "1h", "['*']")).await;
    ext_authz.wait_serving().await;
    let mut client = DecisionsClient::new(ext_authz.channel().await);
    let mut stream = watch(&mut client).await;

    redis_server.stop();
    let ended = tokio::time::timeout(Duration::from_secs(6), async {
        loop {
            match stream.message().await {
                Ok(Some(message)) => {
                    if let Some(Event::FlushAll(_)) = message.event {
                        // Flushed first; the error follows.
                        continue;
                    }
                }
                Ok(None) => return None,
                Err(status) => return Some(status.code()),
            }
        }
    })
    .await
    .expect("the watch outlived the grace time");
    assert_eq!(ended, Some(tonic::Code::Unavailable));
    let refused = client
        .watch_invalidations(WatchRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable);
    let refused = client
        .decide(decide_request(&Token::new("jti-2")))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable);
    // Health follows within its poll interval; only then is SERVING news of the restart.
    ext_authz
        .wait_health(tonic_health::pb::health_check_response::ServingStatus::NotServing)
        .await;

    redis_server.restart();
    ext_authz.wait_serving().await;
    watch(&mut client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_ends_with_the_server() {
    let redis_server = RedisServer::start();
    let ext_authz = ExtAuthz::start(&config_yaml(&redis_server.url(), "30s", "1h", "['*']")).await;
    ext_authz.wait_serving().await;
    let mut client = DecisionsClient::new(ext_authz.channel().await);
    let mut stream = watch(&mut client).await;
    drop(ext_authz);
    let ended = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return Ok(()),
                Err(status) => return Err(status.code()),
            }
        }
    })
    .await
    .expect("the watch outlived the server");
    // Ending at all is the point (with UNAVAILABLE, or as a broken connection).
    eprintln!("the watch ended with {ended:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resync_that_finds_nothing_new_does_not_flush_watchers() {
    let redis_server = RedisServer::start();
    let mut conn = redis(&redis_server).await;
    let ext_authz = ExtAuthz::start(&config_yaml(&redis_server.url(), "30s", "1s", "['*']")).await;
    ext_authz.wait_serving().await;
    let mut client = DecisionsClient::new(ext_authz.channel().await);
    let mut stream = watch(&mut client).await;
    revoke(
        &mut conn,
        RevocationTarget::User("42".into()),
        unix_now(),
        true,
    )
    .await;
    let event = next_event(&mut stream, Duration::from_secs(1)).await;
    assert!(matches!(event, Event::Revoked(_)), "{event:?}");
    // Several resyncs (every second) read back what the event said: nothing to flush.
    let quiet = tokio::time::timeout(
        Duration::from_millis(3_500),
        next_event(&mut stream, Duration::from_secs(10)),
    )
    .await;
    assert!(quiet.is_err(), "unexpected {quiet:?}");

    // A revocation written without its event (a missed one) is found by the resync: flush.
    revoke(
        &mut conn,
        RevocationTarget::Client("client-9".into()),
        unix_now(),
        false,
    )
    .await;
    let event = next_event(&mut stream, Duration::from_secs(3)).await;
    assert!(matches!(event, Event::FlushAll(_)), "{event:?}");
}

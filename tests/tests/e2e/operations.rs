//! What an operator sees: both `/metrics` endpoints moving with a real OAuth flow and MCP
//! calls through Envoy, the authserver's readiness and ext_authz's health following Redis.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use mcp_auth_e2e::fake_github::FakeUser;
use mcp_auth_e2e::metrics::{scrape, value};
use mcp_auth_e2e::oauth::*;
use mcp_auth_e2e::poll;
use mcp_auth_e2e::stack::{Stack, StackOptions};
use reqwest::StatusCode;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Signs a registered client in and returns its tokens (`access_token`, `refresh_token`).
async fn signed_in(stack: &Stack) -> (Discovered, String, serde_json::Value) {
    let discovered = discover(stack).await;
    let client_id = register(&discovered).await;
    let back = params(&sign_in(stack, &discovered, &client_id).await);
    let (status, tokens) = exchange(&discovered, &client_id, &back["code"], VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    (discovered, client_id, tokens)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_metrics_endpoints_count_an_oauth_flow_and_its_mcp_calls() {
    let (stack, _github) =
        Stack::start_with_github(FakeUser::new(583231, "octocat"), StackOptions::default())
            .await
            .unwrap();
    let authserver_before = scrape(stack.authserver).await.unwrap();
    assert_eq!(
        value(&authserver_before, "mcp_auth_tokens_issued_total", &[]),
        0.0
    );

    let (discovered, client_id, tokens) = signed_in(&stack).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(mcp_status(&stack, access).await, StatusCode::OK);
    let (status, refreshed) = refresh(
        &discovered,
        &client_id,
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert_eq!(
        revoke(&discovered, &client_id, access).await,
        StatusCode::OK
    );
    poll::until(
        "the revoked token to be refused",
        Duration::from_secs(10),
        || async { (mcp_status(&stack, access).await == StatusCode::UNAUTHORIZED).then_some(()) },
    )
    .await
    .unwrap();

    let authserver = scrape(stack.authserver).await.unwrap();
    for (name, labels, expected) in [
        (
            "mcp_auth_client_registrations_total",
            vec![("operation", "register")],
            1.0,
        ),
        (
            "mcp_auth_logins_total",
            vec![("provider", "github"), ("outcome", "admitted")],
            1.0,
        ),
        (
            "mcp_auth_tokens_issued_total",
            vec![("grant_type", "authorization_code")],
            1.0,
        ),
        (
            "mcp_auth_tokens_issued_total",
            vec![("grant_type", "refresh_token")],
            1.0,
        ),
        (
            "mcp_auth_revocations_total",
            vec![("target", "token"), ("reason", "revoke_endpoint")],
            1.0,
        ),
        (
            "mcp_auth_http_requests_total",
            vec![
                ("endpoint", "/token"),
                ("method", "POST"),
                ("status", "200"),
            ],
            2.0,
        ),
        (
            "mcp_auth_http_request_duration_seconds_count",
            vec![("endpoint", "/token")],
            2.0,
        ),
        ("mcp_auth_redis_up", vec![], 1.0),
    ] {
        assert_eq!(
            value(&authserver, name, &labels),
            expected,
            "{name} {labels:?}\n{authserver}"
        );
    }

    let ext_authz = scrape(stack.ext_authz_metrics).await.unwrap();
    let decisions = |labels: &[(&str, &str)]| value(&ext_authz, "mcp_auth_decisions_total", labels);
    assert!(
        decisions(&[
            ("api", "check"),
            ("service", "everything"),
            ("result", "allow")
        ]) >= 1.0,
        "{ext_authz}"
    );
    assert!(
        decisions(&[("result", "unauthenticated"), ("reason", "revoked_token")]) >= 1.0,
        "{ext_authz}"
    );
    assert_eq!(
        value(
            &ext_authz,
            "mcp_auth_events_total",
            &[("kind", "revocation")]
        ),
        1.0,
        "{ext_authz}"
    );
    assert!(value(&ext_authz, "mcp_auth_resyncs_total", &[]) >= 1.0);
    assert!(value(&ext_authz, "mcp_auth_revocations_in_memory", &[]) >= 1.0);
    assert_eq!(value(&ext_authz, "mcp_auth_redis_up", &[]), 1.0);
    assert_eq!(
        value(&ext_authz, "mcp_auth_answering_from_memory", &[]),
        0.0
    );
    let lag = value(&ext_authz, "mcp_auth_event_lag_seconds", &[]);
    assert!((0.0..2.0).contains(&lag), "event lag {lag}");

    // Every metric the shipped Grafana dashboard plots exists (the filter's are Envoy stats).
    let dashboard = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/grafana/mcp-mesh-auth.json"
    ))
    .unwrap();
    let scraped = format!("{authserver}{ext_authz}");
    let mut plotted = 0;
    for (at, _) in dashboard.match_indices("mcp_auth_") {
        let name: String = dashboard[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name.starts_with("mcp_auth_filter_") {
            continue;
        }
        let family = name.trim_end_matches("_bucket").trim_end_matches("_total");
        assert!(
            scraped.contains(&format!("# TYPE {family} ")),
            "the dashboard plots {name}, which no /metrics has"
        );
        plotted += 1;
    }
    assert!(plotted >= 10, "{plotted}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_mode_counts_the_filters_decide_calls_and_their_streams() {
    let (stack, _github) = Stack::start_with_github(
        FakeUser::new(583231, "octocat"),
        StackOptions {
            fast_mode: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let (_, _, tokens) = signed_in(&stack).await;
    let access = tokens["access_token"].as_str().unwrap();
    for _ in 0..3 {
        assert_eq!(mcp_status(&stack, access).await, StatusCode::OK);
    }
    let ext_authz = scrape(stack.ext_authz_metrics).await.unwrap();
    assert!(
        value(
            &ext_authz,
            "mcp_auth_decisions_total",
            &[
                ("api", "decide"),
                ("service", "everything"),
                ("result", "allow")
            ]
        ) >= 1.0,
        "{ext_authz}"
    );
    assert_eq!(
        value(&ext_authz, "mcp_auth_decisions_total", &[("api", "check")]),
        0.0,
        "{ext_authz}"
    );
    assert!(
        value(&ext_authz, "mcp_auth_invalidation_streams", &[]) >= 1.0,
        "{ext_authz}"
    );
}

async fn grpc_status(stack: &Stack) -> Option<i32> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", stack.ext_authz))
        .ok()?
        .connect()
        .await
        .ok()?;
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: mcp_auth_ext_authz::AUTHORIZATION_SERVICE.to_owned(),
        })
        .await
        .ok()?;
    Some(answer.into_inner().status)
}

async fn readyz(stack: &Stack) -> StatusCode {
    reqwest::get(format!("http://{}/readyz", stack.authserver))
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_and_health_follow_redis_while_calls_are_answered_from_memory() {
    let (mut stack, _github) =
        Stack::start_with_github(FakeUser::new(583231, "octocat"), StackOptions::default())
            .await
            .unwrap();
    let (_, _, tokens) = signed_in(&stack).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(readyz(&stack).await, StatusCode::OK);
    let serving = ServingStatus::Serving as i32;
    poll::until("ext_authz SERVING", Duration::from_secs(10), || async {
        (grpc_status(&stack).await == Some(serving)).then_some(())
    })
    .await
    .unwrap();

    stack.redis.stop();
    assert_eq!(readyz(&stack).await, StatusCode::SERVICE_UNAVAILABLE);
    let not_serving = ServingStatus::NotServing as i32;
    poll::until("ext_authz NOT_SERVING", Duration::from_secs(10), || async {
        (grpc_status(&stack).await == Some(not_serving)).then_some(())
    })
    .await
    .unwrap();
    // Within `ext_authz.redis_grace` (30 s) the calls are still decided, from memory.
    assert_eq!(mcp_status(&stack, &access).await, StatusCode::OK);
    let ext_authz = scrape(stack.ext_authz_metrics).await.unwrap();
    assert_eq!(
        value(&ext_authz, "mcp_auth_answering_from_memory", &[]),
        1.0
    );
    assert_eq!(value(&ext_authz, "mcp_auth_redis_up", &[]), 0.0);
    assert!(value(&ext_authz, "mcp_auth_redis_silence_seconds", &[]) > 3.0);
    let authserver = scrape(stack.authserver).await.unwrap();
    assert_eq!(value(&authserver, "mcp_auth_redis_up", &[]), 0.0);

    stack.redis.restart();
    poll::until(
        "the authserver ready again",
        Duration::from_secs(10),
        || async { (readyz(&stack).await == StatusCode::OK).then_some(()) },
    )
    .await
    .unwrap();
    poll::until(
        "ext_authz SERVING again",
        Duration::from_secs(10),
        || async { (grpc_status(&stack).await == Some(serving)).then_some(()) },
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restored_into_a_flushed_redis_keeps_a_signed_in_client_working() {
    use mcp_auth_authserver::admin;
    use mcp_auth_authserver::admin::backup::RecordKind;

    let (stack, _github) =
        Stack::start_with_github(FakeUser::new(583231, "octocat"), StackOptions::default())
            .await
            .unwrap();
    let (discovered, client_id, tokens) = signed_in(&stack).await;
    assert_eq!(
        mcp_status(&stack, tokens["access_token"].as_str().unwrap()).await,
        StatusCode::OK
    );
    let clients = admin::listing::list_clients(&stack.config).await.unwrap();
    assert!(
        clients.iter().any(|c| c.record.client_id == client_id),
        "{clients:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.jsonl");
    let backup = admin::backup::backup(&stack.config, &file).await.unwrap();
    assert_eq!(backup.counts.get(&RecordKind::Client), Some(&1));
    assert_eq!(backup.counts.get(&RecordKind::RefreshToken), Some(&1));

    let mut redis = stack.redis.conn().await;
    redis::cmd("FLUSHALL")
        .query_async::<()>(&mut redis)
        .await
        .unwrap();
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    // Flushed: the client is unknown.
    let (status, lost) = refresh(&discovered, &client_id, &refresh_token).await;
    assert_ne!(status, StatusCode::OK, "{lost}");

    let report = admin::restore::restore(&stack.config, &file).await.unwrap();
    assert_eq!(report.of(RecordKind::Client).restored, 1);
    assert_eq!(report.of(RecordKind::RefreshToken).restored, 1);
    let again = admin::restore::restore(&stack.config, &file).await.unwrap();
    assert_eq!(again.of(RecordKind::Client).restored, 0);
    assert_eq!(again.of(RecordKind::Client).unchanged, 1);

    let (status, refreshed) = refresh(&discovered, &client_id, &refresh_token).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let access = refreshed["access_token"].as_str().unwrap();
    assert_eq!(mcp_status(&stack, access).await, StatusCode::OK);
    let clients = admin::listing::list_clients(&stack.config).await.unwrap();
    assert!(clients.iter().any(|c| c.record.client_id == client_id));
}

//! Rate limits, body limits, and no 500 for anything a client sends.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};

use std::collections::HashMap;

use tower::ServiceExt as _;

use crate::support::*;

async fn limited_server() -> TestServer {
    TestServer::with(
        |yaml| yaml.replace("rate_limit_per_minute: 0", "rate_limit_per_minute: 3"),
        Default::default(),
    )
    .await
}

fn register_from(ip: &str) -> Request<Body> {
    let body =
        serde_json::json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"});
    Request::post("/register")
        .header("content-type", "application/json")
        .header("x-forwarded-for", ip)
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test]
async fn registration_is_rate_limited_per_client_ip() {
    let server = limited_server().await;
    for _ in 0..3 {
        let response = server.send(register_from("203.0.113.7")).await;
        assert_eq!(response.status, StatusCode::CREATED);
    }
    let limited = server.send(register_from("203.0.113.7")).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.error(), "temporarily_unavailable");
    assert!(
        limited
            .header("retry-after")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    // Another address is not affected.
    let other = server.send(register_from("198.51.100.1")).await;
    assert_eq!(other.status, StatusCode::CREATED);
}

#[tokio::test]
async fn replicas_on_one_redis_share_the_limit() {
    let server = limited_server().await;
    let yaml = config_yaml(&server.redis.url(), &server.keys_dir, "")
        .replace("rate_limit_per_minute: 0", "rate_limit_per_minute: 3");
    let config = mcp_auth_gateway::GatewayConfig::from_yaml(&yaml).unwrap();
    let replica = mcp_auth_authserver::router(
        mcp_auth_authserver::AppState::new(config, &HashMap::new())
            .await
            .unwrap(),
    );
    for _ in 0..2 {
        assert_eq!(
            server.send(register_from("203.0.113.20")).await.status,
            StatusCode::CREATED
        );
    }
    // The third request goes to the other replica and counts against the same limit.
    let third = replica
        .clone()
        .oneshot(register_from("203.0.113.20"))
        .await
        .unwrap();
    assert_eq!(third.status(), StatusCode::CREATED);
    let fourth = replica
        .oneshot(register_from("203.0.113.20"))
        .await
        .unwrap();
    assert_eq!(fourth.status(), StatusCode::TOO_MANY_REQUESTS);
    // Nothing is left behind for an idle client: each cell expires with its credit.
    let mut conn = server.redis.conn().await;
    let ttl: i64 = redis::cmd("PTTL")
        .arg("t:ratelimit:register:203.0.113.20")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 80_000, "{ttl}");
}

#[tokio::test]
async fn ipv6_clients_share_a_limit_per_64() {
    let server = limited_server().await;
    for host in 1..=3 {
        let ip = format!("2001:db8:7:7::{host}");
        assert_eq!(
            server.send(register_from(&ip)).await.status,
            StatusCode::CREATED
        );
    }
    // Another address of the same /64: the same subscriber.
    assert_eq!(
        server
            .send(register_from("2001:db8:7:7:ffff::1"))
            .await
            .status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        server.send(register_from("2001:db8:7:8::1")).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn without_redis_limited_endpoints_fail_closed() {
    let mut server = limited_server().await;
    server.redis.stop();
    let response = server.send(register_from("203.0.113.21")).await;
    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.error(), "temporarily_unavailable");
    let client_id = "whoever";
    let page = server
        .send(
            Request::get(authorize_uri(client_id, ""))
                .header("x-forwarded-for", "203.0.113.21")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        page.text().contains("Sign-in is unavailable"),
        "{}",
        page.text()
    );
}

#[tokio::test]
async fn the_token_endpoint_is_rate_limited_per_client_ip() {
    let server = limited_server().await;
    let token = |ip: &'static str| {
        Request::post("/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-forwarded-for", ip)
            .body(Body::from(
                "grant_type=authorization_code&code=x&client_id=nobody",
            ))
            .unwrap()
    };
    for _ in 0..3 {
        assert_eq!(
            server.send(token("203.0.113.8")).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        server.send(token("203.0.113.8")).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Other endpoints are not limited.
    assert_eq!(server.get("/jwks").await.status, StatusCode::OK);
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let server = TestServer::start().await;
    let big = "a".repeat(64 * 1024);
    let response = server
        .send(
            Request::post("/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(format!(
                    "grant_type=authorization_code&code={big}"
                )))
                .unwrap(),
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(response.error(), "invalid_request");
}

#[tokio::test]
async fn no_client_input_makes_a_server_error() {
    let server = TestServer::start().await;
    let client_id = server.register_public_client().await;
    let junk_bodies = [
        "",
        "%",
        "%%%%",
        "a=%ZZ",
        "\u{0}\u{1}",
        "grant_type=refresh_token&refresh_token=%00&client_id=x",
        "token=a.b.c&client_id=x",
        "token=eyJhbGciOiJub25lIn0.e30.&client_id=x",
    ];
    let paths = [
        "/token",
        "/revoke",
        "/introspect",
        "/register",
        "/login/consent",
        "/login/dev",
    ];
    for path in paths {
        for body in junk_bodies {
            for content_type in [
                "application/x-www-form-urlencoded",
                "application/json",
                "text/plain",
            ] {
                let response = server
                    .send(
                        Request::post(path)
                            .header("content-type", content_type)
                            .body(Body::from(body))
                            .unwrap(),
                    )
                    .await;
                assert!(
                    !response.status.is_server_error(),
                    "{path} {content_type} {body:?}: {} {}",
                    response.status,
                    response.text()
                );
            }
        }
    }
    let queries = [
        "",
        "?client_id=",
        "?client_id=%FF",
        "?client_id=https%3A%2F%2F",
        "?client_id=http%3A%2F%2F127.0.0.1%2Fx",
        &format!("?client_id={client_id}&redirect_uri=%00"),
        &format!("?client_id={client_id}&redirect_uri={REDIRECT}&resource=%00&state=%FF"),
    ];
    for path in ["/authorize", "/login/callback", "/login/dev"] {
        for query in queries {
            let response = server.get(&format!("{path}{query}")).await;
            assert!(
                !response.status.is_server_error(),
                "{path}{query}: {}",
                response.status
            );
        }
    }
    for method in [Method::PUT, Method::DELETE, Method::PATCH] {
        let response = server
            .send(
                Request::builder()
                    .method(method.clone())
                    .uri("/token")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(response.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
    }
    for path in [
        "/register/%FF",
        "/register/a%2Fb",
        "/.well-known/oauth-protected-resource/%FF",
    ] {
        let response = server.get(path).await;
        assert!(
            !response.status.is_server_error(),
            "{path}: {}",
            response.status
        );
    }
}

#[tokio::test]
async fn authorize_is_rate_limited_per_client_ip_and_answers_with_a_page() {
    let server = limited_server().await;
    let client_id = server.register_public_client().await;
    let authorize_from = |ip: &str| {
        Request::get(authorize_uri(&client_id, ""))
            .header("x-forwarded-for", ip)
            .body(Body::empty())
            .unwrap()
    };
    for _ in 0..3 {
        let page = server.send(authorize_from("203.0.113.9")).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    }
    // Each of those stored a pending authorization; past the limit nothing more is stored.
    let mut conn = server.redis.conn().await;
    let pending_before: Vec<String> = redis::AsyncCommands::keys(&mut conn, "t:authz:*")
        .await
        .unwrap();
    for _ in 0..20 {
        let limited = server.send(authorize_from("203.0.113.9")).await;
        assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(limited.text().contains("Too many sign-in attempts"));
        assert!(limited.header("retry-after").is_some());
        assert_eq!(limited.header("x-frame-options"), Some("DENY"));
    }
    let pending_after: Vec<String> = redis::AsyncCommands::keys(&mut conn, "t:authz:*")
        .await
        .unwrap();
    assert_eq!(pending_before.len(), pending_after.len());
    let other = server.send(authorize_from("198.51.100.2")).await;
    assert_eq!(other.status, StatusCode::OK);
}

//! `POST /revoke` (RFC 7009) and `POST /introspect` (RFC 7662).

use axum::http::StatusCode;
use futures::StreamExt as _;
use redis::AsyncCommands as _;

use crate::support::*;

#[tokio::test]
async fn introspection_describes_the_clients_own_active_tokens() {
    let server = TestServer::start().await;
    let (client_id, tokens) = server.tokens().await;
    let access = tokens["access_token"].as_str().unwrap();
    let active = server.introspect(&client_id, access).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["client_id"], client_id.as_str());
    assert_eq!(active["scope"], "mcp");
    assert_eq!(active["username"], "alice");
    assert_eq!(active["sub"], "dev-alice");
    assert_eq!(active["aud"], RESOURCE);
    assert_eq!(active["iss"], ISSUER);
    assert_eq!(active["token_type"], "Bearer");
    let typed: mcp_auth_proto::token::IntrospectionResponse =
        serde_json::from_value(active.clone()).unwrap();
    assert!(typed.exp.unwrap() > typed.iat.unwrap());

    let refresh = server
        .introspect(&client_id, tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(refresh["active"], true);
    assert_eq!(refresh["aud"], RESOURCE);

    // Another client learns nothing; garbage is inactive; expiry is reflected.
    let other = server.register_public_client().await;
    assert_eq!(
        server.introspect(&other, access).await,
        serde_json::json!({"active": false})
    );
    assert_eq!(
        server.introspect(&client_id, "garbage").await["active"],
        false
    );
    assert_eq!(
        server.introspect(&client_id, "a.b.c").await["active"],
        false
    );
    server.clock.advance(1801);
    assert_eq!(server.introspect(&client_id, access).await["active"], false);
}

#[tokio::test]
async fn introspection_needs_client_authentication() {
    let server = TestServer::start().await;
    let response = server.post_form("/introspect", &[("token", "x")]).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(response.error(), "invalid_client");
    let (client_id, _) = server.tokens().await;
    let response = server
        .post_form("/introspect", &[("client_id", &client_id)])
        .await;
    assert_eq!(response.error(), "invalid_request");
}

#[tokio::test]
async fn revoking_an_access_token_writes_and_publishes_a_revocation() {
    let server = TestServer::start().await;
    let (client_id, tokens) = server.tokens().await;
    let access = tokens["access_token"].as_str().unwrap();
    let (_, claims) = decode_jwt(access);
    let jti = claims["jti"].as_str().unwrap();

    let mut pubsub = server.redis.client().get_async_pubsub().await.unwrap();
    pubsub.subscribe("t:events:revocations").await.unwrap();
    let response = server
        .post_form(
            "/revoke",
            &[
                ("token", access),
                ("token_type_hint", "access_token"),
                ("client_id", &client_id),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());

    let message = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        pubsub.on_message().next(),
    )
    .await
    .unwrap()
    .unwrap();
    let event: mcp_auth_proto::store::RevocationEvent =
        serde_json::from_slice(message.get_payload_bytes()).unwrap();
    assert_eq!(
        event.target,
        mcp_auth_proto::store::RevocationTarget::Token(jti.to_owned())
    );
    // Kept past `exp` for the filter's clock leeway (30 s) and a 60 s margin: the token is
    // accepted until `exp + leeway`, so must its revocation be.
    assert_eq!(event.expires_at, claims["exp"].as_u64().unwrap() + 30 + 60);
    let mut conn = server.redis.conn().await;
    let ttl: i64 = conn.ttl(format!("t:revoked:token:{jti}")).await.unwrap();
    assert!(ttl > 1790 && ttl <= 1890, "{ttl}");

    assert_eq!(server.introspect(&client_id, access).await["active"], false);
    // The refresh token (same grant) still works: only this access token was revoked.
    let refresh = server
        .refresh(&client_id, tokens["refresh_token"].as_str().unwrap(), &[])
        .await;
    assert_eq!(refresh.status, StatusCode::OK);
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_the_grant() {
    let server = TestServer::start().await;
    let (client_id, tokens) = server.tokens().await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let response = server
        .post_form("/revoke", &[("token", refresh), ("client_id", &client_id)])
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        server.refresh(&client_id, refresh, &[]).await.error(),
        "invalid_grant"
    );
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(server.introspect(&client_id, access).await["active"], false);
}

#[tokio::test]
async fn revocation_follows_rfc7009() {
    let server = TestServer::start().await;
    let (client_id, tokens) = server.tokens().await;
    // Unknown tokens: 200.
    let response = server
        .post_form(
            "/revoke",
            &[("token", "unknown"), ("client_id", &client_id)],
        )
        .await;
    assert_eq!(response.status, StatusCode::OK);
    // Another client's token: refused, and nothing is revoked.
    let other = server.register_public_client().await;
    let access = tokens["access_token"].as_str().unwrap();
    let response = server
        .post_form("/revoke", &[("token", access), ("client_id", &other)])
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(response.error(), "unauthorized_client");
    assert_eq!(server.introspect(&client_id, access).await["active"], true);
    // No client, no token.
    let response = server.post_form("/revoke", &[("token", access)]).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    let response = server
        .post_form("/revoke", &[("client_id", &client_id)])
        .await;
    assert_eq!(response.error(), "invalid_request");
}

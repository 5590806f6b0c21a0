//! Discovery documents, JWKS and health.

use axum::http::StatusCode;

use crate::support::*;

#[tokio::test]
async fn healthz_answers() {
    let server = TestServer::start().await;
    let response = server.get("/healthz").await;
    assert_eq!(response.status, StatusCode::OK);
}

#[tokio::test]
async fn authorization_server_metadata_has_every_as5_field() {
    let server = TestServer::start().await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let response = server.get_with_host(path, "evil.example.com").await;
        assert_eq!(response.status, StatusCode::OK, "{path}");
        let m = response.json();
        // The issuer is the configured one, whatever the Host header says.
        assert_eq!(m["issuer"], ISSUER);
        assert_eq!(m["authorization_endpoint"], format!("{ISSUER}/authorize"));
        assert_eq!(m["token_endpoint"], format!("{ISSUER}/token"));
        assert_eq!(m["registration_endpoint"], format!("{ISSUER}/register"));
        assert_eq!(m["revocation_endpoint"], format!("{ISSUER}/revoke"));
        assert_eq!(m["introspection_endpoint"], format!("{ISSUER}/introspect"));
        assert_eq!(m["jwks_uri"], format!("{ISSUER}/jwks"));
        assert_eq!(
            m["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(m["response_types_supported"], serde_json::json!(["code"]));
        assert_eq!(
            m["grant_types_supported"],
            serde_json::json!(["authorization_code", "refresh_token"])
        );
        let methods = m["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap();
        assert!(methods.contains(&"none".into()));
        assert!(methods.contains(&"client_secret_basic".into()));
        assert_eq!(
            m["scopes_supported"],
            serde_json::json!(["mcp", "mcp:tools"])
        );
        assert_eq!(m["authorization_response_iss_parameter_supported"], true);
        assert_eq!(m["client_id_metadata_document_supported"], true);
        // Parses as the shared wire type.
        let typed: mcp_auth_proto::metadata::AuthorizationServerMetadata =
            serde_json::from_value(m).unwrap();
        assert_eq!(typed.issuer, ISSUER);
    }
}

#[tokio::test]
async fn protected_resource_metadata_at_the_path_inserted_url() {
    let server = TestServer::start().await;
    let response = server
        .get("/.well-known/oauth-protected-resource/everything/mcp")
        .await;
    assert_eq!(response.status, StatusCode::OK);
    let m = response.json();
    assert_eq!(m["resource"], RESOURCE);
    assert_eq!(m["authorization_servers"], serde_json::json!([ISSUER]));
    assert_eq!(
        m["scopes_supported"],
        serde_json::json!(["mcp", "mcp:tools"])
    );
    assert_eq!(m["bearer_methods_supported"], serde_json::json!(["header"]));

    // The host-routed service, at its own path.
    let response = server
        .get_with_host(
            "/.well-known/oauth-protected-resource/mcp",
            "time.example.com",
        )
        .await;
    assert_eq!(response.json()["resource"], "http://time.example.com/mcp");

    let response = server
        .get("/.well-known/oauth-protected-resource/nothing/here")
        .await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    assert_eq!(response.error(), "invalid_request");
}

#[tokio::test]
async fn root_protected_resource_metadata_is_chosen_by_host() {
    let server = TestServer::start().await;
    let on_issuer = server
        .get_with_host("/.well-known/oauth-protected-resource", "127.0.0.1:8080")
        .await;
    assert_eq!(on_issuer.json()["resource"], RESOURCE);
    let on_time = server
        .get_with_host(
            "/.well-known/oauth-protected-resource",
            "TIME.example.com:80",
        )
        .await;
    assert_eq!(on_time.json()["resource"], "http://time.example.com/mcp");
    let elsewhere = server.get("/.well-known/oauth-protected-resource").await;
    assert_eq!(elsewhere.json()["resource"], RESOURCE);
}

#[tokio::test]
async fn jwks_publishes_the_persisted_signing_key() {
    let server = TestServer::start().await;
    let response = server.get("/jwks").await;
    assert_eq!(response.status, StatusCode::OK);
    let jwks = response.json();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");
    assert_eq!(key["use"], "sig");
    let kid = key["kid"].as_str().unwrap();
    assert!(server.keys_dir.join(format!("{kid}.json")).exists());
    assert!(key.get("d").is_none(), "no private member is published");
}

#[tokio::test]
async fn other_algorithms_are_configurable() {
    for (alg, kty) in [("ES256", "EC"), ("RS256", "RSA")] {
        let server = TestServer::with(
            |yaml| {
                yaml.replace(
                    "rate_limit_per_minute: 0",
                    &format!("rate_limit_per_minute: 0, signing_alg: {alg}"),
                )
            },
            Default::default(),
        )
        .await;
        let jwks = server.get("/jwks").await.json();
        assert_eq!(jwks["keys"][0]["kty"], kty, "{alg}");
        assert_eq!(jwks["keys"][0]["alg"], alg);
    }
}

#[tokio::test]
async fn unknown_paths_and_methods_are_json_errors() {
    let server = TestServer::start().await;
    let response = server.get("/nope").await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    assert_eq!(response.error(), "invalid_request");
    let response = server.post_form("/jwks", &[]).await;
    assert_eq!(response.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn api_endpoints_answer_cors_preflights() {
    let server = TestServer::start().await;
    let response = server
        .send(
            axum::http::Request::options("/.well-known/oauth-authorization-server")
                .header("origin", "http://localhost:6274")
                .header("access-control-request-method", "GET")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status, StatusCode::NO_CONTENT);
    assert_eq!(response.header("access-control-allow-origin"), Some("*"));
}

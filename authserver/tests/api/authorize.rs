//! `/authorize`, the consent page and the dev login.

use axum::http::StatusCode;

use crate::support::*;

#[tokio::test]
async fn the_full_dev_login_flow_ends_at_the_client_with_code_state_and_iss() {
    let server = TestServer::start().await;
    let client_id = server.register_public_client().await;
    let mut browser = Browser::default();

    let page = server.consent_page(&mut browser, &client_id, "").await;
    // The consent page: our own, unframeable, with a CSRF token and the session cookie.
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let cookie = page.header("set-cookie").unwrap();
    assert!(cookie.starts_with("__Host-mcp-auth-session="));
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax")
    );
    let html = page.text();
    assert!(html.contains("Test Client"));
    assert!(html.contains("everything"));
    assert!(html.contains("<code>mcp</code>"));
    assert!(html.contains("127.0.0.1"), "redirect host shown");
    assert!(
        html.contains("runs on a computer"),
        "loopback warning shown"
    );
    assert!(html.contains("Development login"));

    let done = server
        .dev_login(&mut browser, &client_id, "alice", "")
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let location = done.header("location").unwrap();
    assert!(location.starts_with(REDIRECT));
    let params = query_params(location);
    assert_eq!(params["state"], "xyz");
    assert_eq!(params["iss"], ISSUER);
    assert_eq!(params["code"].len(), 43);
    assert!(!location.contains("error"));
}

#[tokio::test]
async fn a_user_record_is_written_at_login() {
    let server = TestServer::start().await;
    let client_id = server.register_public_client().await;
    let mut browser = Browser::default();
    let page = server.consent_page(&mut browser, &client_id, "").await;
    let to_login = server.approve(&mut browser, &page).await;
    let form = browser
        .get(&server, &local_path(to_login.header("location").unwrap()))
        .await;
    let state = form_field(&form.text(), "state");
    browser
        .post(
            &server,
            "/login/dev",
            &[
                ("state", &state),
                ("login", "Alice"),
                ("orgs", "acme"),
                ("teams", "acme/ops"),
            ],
        )
        .await;
    let mut conn = server.redis.conn().await;
    let record: String = redis::AsyncCommands::get(&mut conn, "t:user:dev-alice")
        .await
        .unwrap();
    let record: mcp_auth_proto::store::UserRecord = serde_json::from_str(&record).unwrap();
    assert_eq!(record.login, "Alice");
    assert_eq!(record.orgs, ["acme"]);
    assert_eq!(record.teams, ["acme/ops"]);
}

#[tokio::test]
async fn consent_is_remembered_for_a_returning_user() {
    let server = TestServer::start().await;
    let client_id = server.register_public_client().await;
    let mut browser = Browser::default();
    server
        .dev_login(&mut browser, &client_id, "alice", "")
        .await;

    // Same browser, same client: straight back with a code, no page.
    let again = browser.get(&server, &authorize_uri(&client_id, "")).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.text());
    let params = query_params(again.header("location").unwrap());
    assert!(params.contains_key("code"));
    assert_eq!(params["iss"], ISSUER);

    // prompt=consent shows the page again, naming the signed-in user.
    let page = browser
        .get(&server, &authorize_uri(&client_id, "&prompt=consent"))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("alice"));
    // Approving as a signed-in user needs no new login.
    let done = server.approve(&mut browser, &page).await;
    assert!(done.header("location").unwrap().starts_with(REDIRECT));

    // Another client is asked for consent.
    let other = server.register_public_client().await;
    let page = browser.get(&server, &authorize_uri(&other, "")).await;
    assert_eq!(page.status, StatusCode::OK);
}

#[tokio::test]
async fn prompt_none_is_login_required_on_a_page_until_the_client_is_trusted() {
    let server = TestServer::start().await;
    let client_id = server.register_public_client().await;
    // No session: nobody has approved this client, so no redirect to its URI (RFC 9700 §4.11.2).
    let mut browser = Browser::default();
    let response = browser
        .get(&server, &authorize_uri(&client_id, "&prompt=none"))
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert!(response.header("location").is_none());
    assert!(response.text().contains("login_required"));

    // Once this browser's user approved the client at this redirect URI, prompt=none goes back
    // to it (here with a code, since the consent covers the request).
    server
        .dev_login(&mut browser, &client_id, "alice", "")
        .await;
    let again = browser
        .get(&server, &authorize_uri(&client_id, "&prompt=none"))
        .await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.text());
    assert!(query_params(again.header("location").unwrap()).contains_key("code"));
}

#[tokio::test]
async fn bad_client_or_redirect_uri_is_a_page_never_a_redirect() {
    let server = TestServer::start().await;
    let client_id = server.register_public_client().await;
    let mut browser = Browser::default();
    for uri in [
        authorize_uri("unknown-client", ""),
        authorize_uri(&client_id, "").replace("33418%2Fcallback", "33418%2Fother"),
        authorize_uri(&client_id, "").replace("127.0.0.1", "evil.example.com"),
        "/authorize".to_owned(),
        format!("{}&client_id=again", authorize_uri(&client_id, "")),
        authorize_uri("https://127.0.0.1/private-client.json", ""),
    ] {
        let response = browser.get(&server, &uri).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(response.header("location").is_none(), "{uri}");
        assert_eq!(response.header("x-frame-options"), Some("DENY"));
    }
}

/// Requests with a valid client and redirect URI but another error.
fn invalid_requests(client_id: &str) -> Vec<(String, &'static str)> {
    vec![
        (
            authorize_uri(client_id, "").replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
        (
            authorize_uri(client_id, "").replace("&code_challenge_method=S256", ""),
            "invalid_request",
        ),
        (
            authorize_uri(client_id, "").replace("everything", "nothing"),
            "invalid_target",
        ),
        (
            authorize_uri(client_id, "&resource=http%3A%2F%2Ftime.example.com%2Fmcp"),
            "invalid_target",
        ),
        (
            authorize_uri(client_id, "").replace("scope=mcp", "scope=admin"),
            "invalid_scope",
        ),
    ]
}

#[tokio::test]
async fn other_errors_are_a_page_until_the_user_approved_the_client_at_that_redirect_uri() {
    let server = TestServer::start().await;
    let client_id = server.register_public_client().await;
    // Anyone can register a client whose redirect URI is a phishing site: its errors must not
    // turn us into an open redirector.
    let mut stranger = Browser::default();
    for (uri, error) in invalid_requests(&client_id) {
        let response = stranger.get(&server, &uri).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(response.header("location").is_none(), "{uri}");
        assert!(
            response.text().contains(error),
            "{uri}: {}",
            response.text()
        );
    }

    let mut user = Browser::default();
    server.dev_login(&mut user, &client_id, "alice", "").await;
    for (uri, error) in invalid_requests(&client_id) {
        let response = user.get(&server, &uri).await;
        assert_eq!(
            response.status,
            StatusCode::SEE_OTHER,
            "{uri}: {}",
            response.text()
        );
        let location = response.header("location").unwrap();
        assert!(location.starts_with(REDIRECT), "{location}");
        let params = query_params(location);
        assert_eq!(params["error"], error, "{uri}");
        assert_eq!(params["state"], "xyz");
        assert_eq!(params["iss"], ISSUER);
    }
    // The same user, the same client, another loopback port: not the URI they approved.
    let other_port = invalid_requests(&client_id)[0].0.replace("33418", "40001");
    let response = user.get(&server, &other_port).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn remembered_consent_covers_only_the_redirect_uri_the_user_saw() {
    let server = TestServer::start().await;
    let client_id = server.register_public_client().await;
    let mut browser = Browser::default();
    server
        .dev_login(&mut browser, &client_id, "alice", "")
        .await;
    // Another port on loopback may be another local program: ask again.
    let uri = authorize_uri(&client_id, "").replace("33418", "40001");
    let page = browser.get(&server, &uri).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    assert!(
        page.text().contains("127.0.0.1:40001&#x2f;callback"),
        "{}",
        page.text()
    );
    // Approved there too, both are remembered.
    let done = server.approve(&mut browser, &page).await;
    assert!(
        done.header("location")
            .unwrap()
            .starts_with("http://127.0.0.1:40001/callback")
    );
    for port in ["33418", "40001"] {
        let uri = authorize_uri(&client_id, "").replace("33418", port);
        let again = browser.get(&server, &uri).await;
        assert_eq!(again.status, StatusCode::SEE_OTHER, "{port}");
    }
}

#[tokio::test]
async fn consent_needs_the_csrf_token_the_session_and_the_same_browser() {
    let server = TestServer::start().await;
    let client_id = server.register_public_client().await;
    let mut browser = Browser::default();
    let page = server.consent_page(&mut browser, &client_id, "").await;
    let html = page.text();
    let request = form_field(&html, "request");
    let csrf = form_field(&html, "csrf");

    // No cookie (consent skipped from elsewhere): refused.
    let mut stranger = Browser::default();
    let response = stranger
        .post(
            &server,
            "/login/consent",
            &[
                ("request", &request),
                ("csrf", &csrf),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    // Another browser's session: refused.
    let mut other = Browser::default();
    server.consent_page(&mut other, &client_id, "").await;
    let response = other
        .post(
            &server,
            "/login/consent",
            &[
                ("request", &request),
                ("csrf", &csrf),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    // Missing or wrong CSRF token: refused.
    let response = browser
        .post(
            &server,
            "/login/consent",
            &[("request", &request), ("decision", "approve")],
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    let response = browser
        .post(
            &server,
            "/login/consent",
            &[
                ("request", &request),
                ("csrf", "forged"),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    // A cross-site post: refused.
    let cookie = browser.cookie.clone().unwrap();
    let response = server
        .post_form_with(
            "/login/consent",
            &[
                ("request", &request),
                ("csrf", &csrf),
                ("decision", "approve"),
            ],
            &[("cookie", &cookie), ("origin", "https://evil.example.com")],
        )
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);

    // The right one works, once.
    let response = server.approve(&mut browser, &page).await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    let response = server.approve(&mut browser, &page).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn denying_consent_returns_access_denied() {
    let server = TestServer::start().await;
    let client_id = server.register_public_client().await;
    let mut browser = Browser::default();
    let page = server.consent_page(&mut browser, &client_id, "").await;
    let html = page.text();
    let response = browser
        .post(
            &server,
            "/login/consent",
            &[
                ("request", &form_field(&html, "request")),
                ("csrf", &form_field(&html, "csrf")),
                ("decision", "deny"),
            ],
        )
        .await;
    let params = query_params(response.header("location").unwrap());
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["state"], "xyz");
    assert_eq!(params["iss"], ISSUER);
}

#[tokio::test]
async fn the_login_state_is_single_use_and_bound_to_the_browser() {
    let server = TestServer::start().await;
    let client_id = server.register_public_client().await;
    let mut browser = Browser::default();
    let page = server.consent_page(&mut browser, &client_id, "").await;
    let to_login = server.approve(&mut browser, &page).await;
    let login_uri = local_path(to_login.header("location").unwrap());
    let state = query_params(&format!("{ISSUER}{login_uri}"))["state"].clone();

    // Another browser cannot use it.
    let mut other = Browser::default();
    server.consent_page(&mut other, &client_id, "").await;
    let response = other.get(&server, &login_uri).await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    let response = other
        .post(
            &server,
            "/login/dev",
            &[("state", &state), ("login", "mallory")],
        )
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    // That attempt consumed it: the single-use state is gone for everyone.
    let response = browser
        .post(
            &server,
            "/login/dev",
            &[("state", &state), ("login", "alice")],
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    // An invalid login name is refused before anything is consumed.
    let response = browser
        .post(
            &server,
            "/login/dev",
            &[("state", "x"), ("login", "not a login")],
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn users_off_the_allow_list_get_access_denied() {
    let server = TestServer::with(
        |yaml| {
            yaml.replace(
                r#"access: { users: ["*"] }"#,
                r#"access: { users: ["alice"], orgs: ["acme"] }"#,
            )
        },
        Default::default(),
    )
    .await;
    let client_id = server.register_public_client().await;
    let mut browser = Browser::default();
    let done = server
        .dev_login(&mut browser, &client_id, "mallory", "")
        .await;
    let params = query_params(done.header("location").unwrap());
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["iss"], ISSUER);
    assert!(!params.contains_key("code"));

    let mut browser = Browser::default();
    let done = server
        .dev_login(&mut browser, &client_id, "ALICE", "")
        .await;
    assert!(query_params(done.header("location").unwrap()).contains_key("code"));
}

#[tokio::test]
async fn the_dev_login_does_not_exist_with_github_configured() {
    let github_env = [
        ("GITHUB_CLIENT_ID".to_owned(), "id".to_owned()),
        ("GITHUB_CLIENT_SECRET".to_owned(), "secret".to_owned()),
    ]
    .into();
    let server = TestServer::with(|yaml| yaml, github_env).await;
    let response = server.get("/login/dev?state=x").await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
}

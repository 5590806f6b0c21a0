//! The GitHub login against the fake GitHub.

use std::collections::HashMap;

use axum::http::StatusCode;

use crate::fake_github::{FakeGitHub, FakeUser};
use crate::support::*;

/// Follows the redirect to the fake GitHub (which auto-approves) and returns our callback
/// path with `code` and `state`.
async fn through_github(location: &str) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client.get(location).send().await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::FOUND,
        "{:?}",
        response.text().await
    );
    let back = response.headers()["location"].to_str().unwrap().to_owned();
    local_path(&back)
}

async fn server_with(
    github: &FakeGitHub,
    access: &str,
    env_extra: &[(&str, String)],
) -> TestServer {
    let mut env: HashMap<String, String> = github.env();
    for (k, v) in env_extra {
        env.insert((*k).to_owned(), v.clone());
    }
    let access = access.to_owned();
    TestServer::with(
        move |yaml| yaml.replace(r#"access: { users: ["*"] }"#, &access),
        env,
    )
    .await
}

async fn login(server: &TestServer, client_id: &str) -> (Browser, TestResponse, String) {
    let mut browser = Browser::default();
    let page = server.consent_page(&mut browser, client_id, "").await;
    assert!(page.text().contains("GitHub"));
    let to_github = server.approve(&mut browser, &page).await;
    assert_eq!(to_github.status, StatusCode::SEE_OTHER);
    let location = to_github.header("location").unwrap().to_owned();
    let callback = through_github(&location).await;
    assert!(callback.starts_with("/login/callback?"), "{callback}");
    let done = browser.get(server, &callback).await;
    (browser, done, location)
}

#[tokio::test]
async fn github_login_issues_a_code_and_records_the_user() {
    let github = FakeGitHub::start("gh-client", "gh-secret").await.unwrap();
    github.sign_in(
        FakeUser::new(4242, "octocat")
            .in_org("acme")
            .in_team("acme/ops"),
    );
    let server = server_with(&github, r#"access: { orgs: ["acme"] }"#, &[]).await;
    let client_id = server.register_public_client().await;

    let (_, done, github_url) = login(&server, &client_id).await;
    // Our request to GitHub: PKCE, our callback, read:org (the allow-list names an org).
    let params = query_params(&github_url);
    assert_eq!(params["client_id"], "gh-client");
    assert_eq!(params["redirect_uri"], format!("{ISSUER}/login/callback"));
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["scope"], "read:org");
    assert_eq!(params["state"].len(), 43);

    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text());
    let back = query_params(done.header("location").unwrap());
    assert!(back.contains_key("code"));
    assert_eq!(back["iss"], ISSUER);
    assert_eq!(back["state"], "xyz");

    let mut conn = server.redis.conn().await;
    let record: String = redis::AsyncCommands::get(&mut conn, "t:user:4242")
        .await
        .unwrap();
    let record: mcp_auth_proto::store::UserRecord = serde_json::from_str(&record).unwrap();
    assert_eq!(record.login, "octocat");
    assert_eq!(record.orgs, ["acme"]);
    // No allow-list names a team: teams are not fetched.
    assert!(record.teams.is_empty());
    // GitHub's token never reaches Redis.
    let keys: Vec<String> = redis::AsyncCommands::keys(&mut conn, "*").await.unwrap();
    for token in github.issued_tokens() {
        for key in &keys {
            let value: redis::Value = redis::cmd("DUMP")
                .arg(key)
                .query_async(&mut conn)
                .await
                .unwrap();
            assert!(
                !format!("{value:?}").contains(&token),
                "GitHub token stored at {key}"
            );
        }
    }
}

#[tokio::test]
async fn github_users_outside_the_allowed_orgs_are_refused() {
    let github = FakeGitHub::start("gh-client", "gh-secret").await.unwrap();
    github.sign_in(FakeUser::new(7, "mallory").in_org("other"));
    let server = server_with(&github, r#"access: { orgs: ["acme"] }"#, &[]).await;
    let client_id = server.register_public_client().await;
    let (_, done, _) = login(&server, &client_id).await;
    let back = query_params(done.header("location").unwrap());
    assert_eq!(back["error"], "access_denied");
    assert_eq!(back["iss"], ISSUER);
    assert!(!back.contains_key("code"));
}

#[tokio::test]
async fn enterprise_server_api_paths_work() {
    let github = FakeGitHub::start("gh-client", "gh-secret").await.unwrap();
    github.sign_in(FakeUser::new(9, "hubber").in_team("corp/mcp"));
    let server = server_with(
        &github,
        r#"access: { teams: ["corp/mcp"] }"#,
        &[("GITHUB_API_URL", github.ghes_api_url())],
    )
    .await;
    let client_id = server.register_public_client().await;
    let (_, done, _) = login(&server, &client_id).await;
    assert!(query_params(done.header("location").unwrap()).contains_key("code"));
    assert!(github.calls().contains(&"GET /user/teams".to_owned()));
}

#[tokio::test]
async fn only_what_the_allow_lists_need_is_fetched() {
    let github = FakeGitHub::start("gh-client", "gh-secret").await.unwrap();
    github.sign_in(FakeUser::new(1, "anyone"));
    let server = server_with(&github, r#"access: { users: ["*"] }"#, &[]).await;
    let client_id = server.register_public_client().await;
    let (_, done, github_url) = login(&server, &client_id).await;
    assert!(query_params(done.header("location").unwrap()).contains_key("code"));
    assert!(!query_params(&github_url).contains_key("scope"));
    let calls = github.calls();
    assert!(
        !calls
            .iter()
            .any(|c| c.contains("orgs") || c.contains("teams")),
        "{calls:?}"
    );
}

#[tokio::test]
async fn a_github_error_or_bad_code_returns_access_denied() {
    let github = FakeGitHub::start("gh-client", "gh-secret").await.unwrap();
    github.sign_in(FakeUser::new(1, "octocat"));
    let server = server_with(&github, r#"access: { users: ["*"] }"#, &[]).await;
    let client_id = server.register_public_client().await;

    for tamper in ["error", "code"] {
        let mut browser = Browser::default();
        let page = server.consent_page(&mut browser, &client_id, "").await;
        let to_github = server.approve(&mut browser, &page).await;
        let state = query_params(to_github.header("location").unwrap())["state"].clone();
        let callback = if tamper == "error" {
            format!("/login/callback?error=access_denied&state={state}")
        } else {
            format!("/login/callback?code=forged&state={state}")
        };
        let done = browser.get(&server, &callback).await;
        let back = query_params(done.header("location").unwrap());
        assert_eq!(back["error"], "access_denied", "{tamper}");
        assert_eq!(back["iss"], ISSUER);
        // The state was single-use.
        let again = browser.get(&server, &callback).await;
        assert_eq!(again.status, StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn wrong_github_credentials_fail_the_sign_in_cleanly() {
    let github = FakeGitHub::start("gh-client", "gh-secret").await.unwrap();
    github.sign_in(FakeUser::new(1, "octocat"));
    let server = server_with(
        &github,
        r#"access: { users: ["*"] }"#,
        &[("GITHUB_CLIENT_SECRET", "wrong".to_owned())],
    )
    .await;
    let client_id = server.register_public_client().await;
    let (_, done, _) = login(&server, &client_id).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(
        query_params(done.header("location").unwrap())["error"],
        "access_denied"
    );
}

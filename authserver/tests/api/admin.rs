//! Admin revocation and key rotation, through the library and the binary.

use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use axum::http::StatusCode;
use mcp_auth_authserver::admin::{self, AdminTarget};

use crate::support::*;

const LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

#[tokio::test]
async fn revoking_a_user_by_login_ends_their_tokens_and_session() {
    let server = TestServer::start().await;
    let client_id = server.register_public_client().await;
    let mut browser = Browser::default();
    let done = server
        .dev_login(&mut browser, &client_id, "alice", "")
        .await;
    let code = query_params(done.header("location").unwrap())["code"].clone();
    let tokens = server.exchange(&client_id, &code).await.json();

    let events = admin::revoke_in(
        server.state.store(),
        LIFETIME,
        server.clock.now(),
        AdminTarget::Login("ALICE".into()),
    )
    .await
    .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].target,
        mcp_auth_proto::store::RevocationTarget::User("dev-alice".into())
    );
    assert_eq!(
        server
            .introspect(&client_id, tokens["access_token"].as_str().unwrap())
            .await["active"],
        false
    );
    let refresh = server
        .refresh(&client_id, tokens["refresh_token"].as_str().unwrap(), &[])
        .await;
    assert_eq!(refresh.error(), "invalid_grant");

    // The remembered session no longer signs the user in: the consent page comes back.
    server.clock.advance(1);
    let again = browser.get(&server, &authorize_uri(&client_id, "")).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text());
    // Signing in again afterwards gives working tokens.
    let done = server
        .dev_login(&mut browser, &client_id, "alice", "")
        .await;
    let code = query_params(done.header("location").unwrap())["code"].clone();
    let fresh = server.exchange(&client_id, &code).await.json();
    assert_eq!(
        server
            .introspect(&client_id, fresh["access_token"].as_str().unwrap())
            .await["active"],
        true
    );

    let unknown = admin::revoke_in(
        server.state.store(),
        LIFETIME,
        0,
        AdminTarget::Login("nobody".into()),
    )
    .await;
    assert!(unknown.is_err());
}

#[tokio::test]
async fn revoking_a_client_or_grant_ends_their_tokens() {
    let server = TestServer::start().await;
    let (client_id, tokens) = server.tokens().await;
    let (_, claims) = decode_jwt(tokens["access_token"].as_str().unwrap());
    admin::revoke_in(
        server.state.store(),
        LIFETIME,
        server.clock.now(),
        AdminTarget::Grant(claims["grant_id"].as_str().unwrap().into()),
    )
    .await
    .unwrap();
    assert_eq!(
        server
            .refresh(&client_id, tokens["refresh_token"].as_str().unwrap(), &[])
            .await
            .error(),
        "invalid_grant"
    );

    let (client_id, tokens) = server.tokens().await;
    admin::revoke_in(
        server.state.store(),
        LIFETIME,
        server.clock.now(),
        AdminTarget::Client(client_id.clone()),
    )
    .await
    .unwrap();
    assert_eq!(
        server
            .introspect(&client_id, tokens["access_token"].as_str().unwrap())
            .await["active"],
        false
    );
    assert_eq!(
        server
            .refresh(&client_id, tokens["refresh_token"].as_str().unwrap(), &[])
            .await
            .error(),
        "invalid_grant"
    );
}

fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mcp-auth-authserver"));
    for var in [
        "GITHUB_CLIENT_ID",
        "GITHUB_CLIENT_SECRET",
        "MCP_GATEWAY_CONFIG",
        "REDIS_URL",
    ] {
        command.env_remove(var);
    }
    command
}

#[test]
fn the_binary_exits_64_on_a_bad_config() {
    let dir = tempfile::tempdir().unwrap();
    let missing = binary()
        .args(["--config", "/nonexistent/gateway.yaml"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/gateway.yaml"));

    let path = dir.path().join("gateway.yaml");
    let yaml = config_yaml("redis://127.0.0.1:1/0", &dir.path().join("keys"), "")
        .replace(ISSUER, "https://gw.example.com")
        .replace(
            "http://127.0.0.1:8080/everything/mcp",
            "https://gw.example.com/everything/mcp",
        );
    std::fs::write(&path, yaml).unwrap();
    let public = binary().arg("--config").arg(&path).output().unwrap();
    assert_eq!(public.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&public.stderr);
    assert!(stderr.contains("GITHUB_CLIENT_ID"), "{stderr}");
}

#[test]
fn the_binary_rotates_keys_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.yaml");
    let yaml = config_yaml("redis://127.0.0.1:1/0", &dir.path().join("keys"), "")
        .replace("authserver: {", "authserver: { listen: \"127.0.0.1:0\",");
    std::fs::write(&path, yaml).unwrap();

    let mut child = binary()
        .arg("--config")
        .arg(&path)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufReader::new(stderr).lines();
    let started = lines
        .by_ref()
        .take(50)
        .map_while(Result::ok)
        .any(|line| line.contains("authserver serving"));
    assert!(started, "the authserver did not report serving");
    let keys = std::fs::read_dir(dir.path().join("keys")).unwrap().count();

    let rotate = binary()
        .args(["admin", "rotate-keys", "--alg", "ES256", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        rotate.status.success(),
        "{}",
        String::from_utf8_lossy(&rotate.stderr)
    );
    assert!(String::from_utf8_lossy(&rotate.stdout).contains("published"));
    assert_eq!(
        std::fs::read_dir(dir.path().join("keys")).unwrap().count(),
        keys + 1
    );

    let kill = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn the_binary_lists_backs_up_purges_and_restores() {
    use std::os::unix::fs::PermissionsExt as _;
    let server = TestServer::start().await;
    let (client_id, tokens) = server.tokens().await;
    let (_, claims) = decode_jwt(tokens["access_token"].as_str().unwrap());
    let grant_id = claims["grant_id"].as_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.yaml");
    std::fs::write(
        &path,
        config_yaml(&server.redis.url(), &server.keys_dir, ""),
    )
    .unwrap();
    let admin = |args: &[&str]| {
        let out = binary()
            .arg("--config")
            .arg(&path)
            .arg("admin")
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.success(), stdout, stderr)
    };

    let (ok, stdout, stderr) = admin(&["clients", "list", "--json"]);
    assert!(ok, "{stderr}");
    let clients: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(clients.as_array().unwrap().len(), 1, "{stdout}");
    assert_eq!(clients[0]["client_id"], client_id.as_str());
    assert!(clients[0]["registration_token_digest"].is_string());

    let (ok, stdout, stderr) = admin(&["clients", "show", &client_id]);
    assert!(ok, "{stderr}");
    let digest = clients[0]["registration_token_digest"].as_str().unwrap();
    assert!(
        stdout.contains(&client_id) && !stdout.contains(digest),
        "{stdout}"
    );

    let (ok, stdout, stderr) = admin(&["grants", "list", "--user", "dev-alice"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.starts_with("GRANT_ID") && stdout.contains(&grant_id),
        "{stdout}"
    );

    let (ok, stdout, stderr) = admin(&["users", "show", "dev-alice", "--json"]);
    assert!(ok, "{stderr}");
    let user: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(user["user"]["login"], "alice");
    assert_eq!(user["grants"][0]["grant_id"], grant_id.as_str());

    let backup = dir.path().join("state.jsonl");
    let (ok, stdout, stderr) = admin(&["backup", "--out", backup.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(stdout.starts_with("backed up"), "{stdout}");
    let mode = std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let (ok, stdout, stderr) = admin(&["purge", "--dry-run"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("would delete: clients 0, grants 0"),
        "{stdout}"
    );

    let (ok, stdout, stderr) = admin(&["restore", "--from", backup.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("UNCHANGED") && stdout.contains("grants"),
        "{stdout}"
    );
    // The live refresh token still works after all that.
    let refreshed = server
        .refresh(&client_id, tokens["refresh_token"].as_str().unwrap(), &[])
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.text());

    let text = std::fs::read_to_string(&backup).unwrap();
    let future = dir.path().join("future.jsonl");
    std::fs::write(&future, text.replacen("\"version\":1", "\"version\":9", 1)).unwrap();
    let (ok, _, stderr) = admin(&["restore", "--from", future.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("version 9 is not supported"), "{stderr}");

    let (ok, _, stderr) = admin(&["grants", "show", "no-such-grant"]);
    assert!(!ok);
    assert!(stderr.contains("no grant \"no-such-grant\""), "{stderr}");
}

//! Envoy terminating TLS (`listener.tls`) with a test CA made per stack: the official MCP
//! Python SDK completes the OAuth flow over https trusting that CA (and fails without it),
//! every https response carries HSTS, plain http only redirects, and a certificate replaced
//! on disk is served without a restart (file-based SDS).

// Helpers outside `#[test]` functions: a failed step should fail loudly, at the step.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use mcp_auth_e2e::fake_github::FakeUser;
use mcp_auth_e2e::poll;
use mcp_auth_e2e::stack::{Stack, StackOptions, StackTls};
use mcp_auth_e2e::tools::{python_bin, workspace_root};
use reqwest::StatusCode;

const HSTS: &str = "max-age=31536000";

async fn tls_stack() -> (Stack, mcp_auth_e2e::fake_github::FakeGitHub) {
    Stack::start_with_github(
        FakeUser::new(583231, "octocat"),
        StackOptions {
            tls: true,
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

fn tls(stack: &Stack) -> &StackTls {
    stack.tls.as_ref().expect("a TLS stack")
}

/// `tests/clients/<script>` under the SDK's Python with `args`; `ca_file` as `SSL_CERT_FILE`
/// or no `SSL_CERT_*` at all (the system's CAs). Its exit status, stdout and stderr.
async fn python(script: &str, args: &[&str], ca_file: Option<&Path>) -> (bool, String, String) {
    let mut command = tokio::process::Command::new(python_bin().unwrap());
    command
        .arg(workspace_root().join("tests/clients").join(script))
        .args(args)
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(ca_file) = ca_file {
        command.env("SSL_CERT_FILE", ca_file);
    }
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .unwrap_or_else(|_| panic!("{script} did not finish within 120 s"))
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn hsts_of(response: &reqwest::Response) -> Option<&str> {
    response
        .headers()
        .get("strict-transport-security")
        .and_then(|v| v.to_str().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_completes_the_oauth_flow_over_https_trusting_the_test_ca() {
    let (stack, _github) = tls_stack().await;
    let issuer = stack.issuer().to_owned();
    assert!(issuer.starts_with("https://127.0.0.1:"), "{issuer}");
    let client = stack.client().unwrap();

    // Discovery over https names https everywhere, and carries HSTS.
    let response = client
        .get(stack.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(hsts_of(&response), Some(HSTS));
    let metadata: serde_json::Value = response.json().await.unwrap();
    assert_eq!(metadata["issuer"], issuer.as_str());
    for endpoint in ["authorization_endpoint", "token_endpoint", "jwks_uri"] {
        let url = metadata[endpoint].as_str().unwrap();
        assert!(url.starts_with(&format!("{issuer}/")), "{endpoint}: {url}");
    }
    let prm: serde_json::Value = client
        .get(stack.url("/.well-known/oauth-protected-resource/everything/mcp"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prm["resource"], format!("{issuer}/everything/mcp").as_str());
    assert_eq!(prm["authorization_servers"][0], issuer.as_str());

    // The token filter's own answers (local replies) and Envoy's 404 carry HSTS too.
    let challenge =
        mcp_auth_e2e::oauth::post_initialize(&client, &stack.url("/everything/mcp"), None).await;
    assert_eq!(challenge.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(hsts_of(&challenge), Some(HSTS));
    let www_authenticate = challenge.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        www_authenticate.contains(&format!(
            "resource_metadata=\"{issuer}/.well-known/oauth-protected-resource/everything/mcp\""
        )),
        "{www_authenticate}"
    );
    let not_found = client.get(stack.url("/nowhere")).send().await.unwrap();
    assert_eq!(not_found.status(), StatusCode::NOT_FOUND);
    assert_eq!(hsts_of(&not_found), Some(HSTS));

    // The SDK, unmodified, trusting the test CA through SSL_CERT_FILE: discovery,
    // registration, consent, GitHub (the fake), token, tools/list, tools/call.
    let url = stack.url("/everything/mcp");
    let ca_file = tls(&stack).ca_file.clone();
    let (ok, stdout, stderr) = python("python_sdk.py", &[&url], Some(&ca_file)).await;
    assert!(ok, "the SDK failed over https:\n{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&format!("{url} ")))
        .unwrap_or_else(|| panic!("no answer from {url}:\n{stdout}\n{stderr}"));
    let mut parts = line.splitn(3, ' ');
    let (_, tools, text) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
    assert!(tools.parse::<u32>().unwrap() > 0, "{line}");
    assert!(text.contains("hello from the python sdk"), "{line}");

    // The same SDK trusting only the system's CAs refuses the gateway's certificate.
    let (ok, stdout, stderr) = python("python_sdk.py", &[&url], None).await;
    assert!(
        !ok,
        "the SDK trusted a certificate it has no CA for:\n{stdout}"
    );
    assert!(
        stderr.contains("CERTIFICATE_VERIFY_FAILED"),
        "not a certificate failure:\n{stderr}"
    );
    // And so does a Rust client with the system's CAs.
    let err = reqwest::Client::new()
        .get(stack.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    assert!(format!("{err:?}").contains("UnknownIssuer"), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_only_redirects_and_a_replaced_certificate_is_served_without_a_restart() {
    let (stack, _github) = tls_stack().await;
    let tls = tls(&stack).clone();
    let issuer = stack.issuer().to_owned();

    // Plain http: a 301 to the same URL over https at the TLS port, for any method, and
    // nothing else (no HSTS over http: RFC 6797 §7.2).
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let plain = format!("http://{}", tls.redirect);
    for (method, path) in [
        (
            reqwest::Method::GET,
            "/.well-known/oauth-authorization-server",
        ),
        (reqwest::Method::POST, "/everything/mcp?x=1"),
        (reqwest::Method::GET, "/token"),
    ] {
        let response = no_redirects
            .request(method.clone(), format!("{plain}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::MOVED_PERMANENTLY,
            "{method} {path}"
        );
        assert_eq!(
            response.headers()["location"].to_str().unwrap(),
            format!("{issuer}{path}"),
            "{method} {path}"
        );
        assert_eq!(hsts_of(&response), None, "{method} {path}");
        assert!(response.headers().get("www-authenticate").is_none());
    }
    // The TLS port answers no plaintext request.
    let err = reqwest::Client::new()
        .get(format!(
            "http://{}/.well-known/oauth-authorization-server",
            stack.envoy.address()
        ))
        .send()
        .await;
    assert!(
        err.is_err(),
        "plain http was answered on the TLS port: {err:?}"
    );

    // ALPN offers h2; TLS 1.2 is the floor.
    let port = stack.envoy.address().port().to_string();
    let ca = tls.ca_file.display().to_string();
    let (ok, stdout, stderr) = python("tls_probe.py", &["127.0.0.1", &port, &ca], None).await;
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("offer h2,http/1.1: h2 TLSv1.3\n"),
        "{stdout}"
    );
    assert!(stdout.contains("only TLSv1.2: TLSv1.2\n"), "{stdout}");
    assert!(
        stdout.contains("only TLSv1.1: refused TLSV1_ALERT_PROTOCOL_VERSION\n"),
        "{stdout}"
    );

    // A new certificate from another CA, moved into place as a Kubernetes Secret update or
    // cert-manager would: Envoy serves it from the next handshake, old connections aside.
    let trusting = |pem: &str| {
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()])
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
    };
    let (new_ca_pem, new_ca) = mcp_auth_testkit::test_ca();
    let (chain, key) = mcp_auth_testkit::issue_certificate(&new_ca, &["127.0.0.1", "localhost"]);
    let dir = tls.certificate_chain_file.parent().unwrap();
    std::fs::write(dir.join(".tls.key.new"), key).unwrap();
    std::fs::write(dir.join(".tls.crt.new"), chain).unwrap();
    std::fs::rename(dir.join(".tls.key.new"), &tls.private_key_file).unwrap();
    std::fs::rename(dir.join(".tls.crt.new"), &tls.certificate_chain_file).unwrap();
    let metadata = stack.url("/.well-known/oauth-authorization-server");
    let (new_client, old_client) = (trusting(&new_ca_pem), trusting(&tls.ca_pem));
    poll::until(
        "Envoy to serve the replaced certificate",
        Duration::from_secs(15),
        || async {
            let response = new_client.get(&metadata).send().await.ok()?;
            (response.status() == StatusCode::OK).then_some(())
        },
    )
    .await
    .unwrap();
    // Both test CAs have the same name: the old one is found, and its signature fails.
    let err = old_client.get(&metadata).send().await.unwrap_err();
    assert!(format!("{err:?}").contains("InvalidCertificate"), "{err:?}");
    assert_eq!(
        stack
            .envoy
            .stat(&format!(
                "listener.127.0.0.1_{port}.server_ssl_socket_factory.ssl_context_update_by_sds"
            ))
            .await
            .unwrap()
            .map(|n| n >= 2),
        Some(true),
        "the first certificate and its replacement came by SDS"
    );
}

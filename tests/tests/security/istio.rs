//! The filter in an Istio sidecar: the Envoy a protected workload's sidecar runs for the
//! resources `cargo xtask render-istio` generates (filter order, Istio's cluster names, the
//! CUSTOM provider's ext_authz settings, the EnvoyFilter patches; see
//! `mcp_auth_e2e::istio_sidecar`), in front of the echo server, with the stack's authserver
//! and ext_authz behind Istio's cluster names. Through it: the OAuth flow from the sidecar's
//! own challenge, the forged-token matrix of this suite, revocation within 1 s, and, where a
//! workload has the CUSTOM provider but not the WasmPlugin, a forged hand-off refused.

use std::time::Duration;

use mcp_auth_e2e::envoy::{Envoy, ReservedPort};
use mcp_auth_e2e::istio_sidecar::{Attached, IstioResources, SidecarTargets};
use mcp_auth_proto::handoff::{HANDOFF_HEADER, HANDOFF_KEY_ENV, Handoff, HandoffKey};

use super::*;

/// The gateway config of the same deployment as Istio sees it: the stack's issuer and echo
/// service, the components by their Kubernetes Service names.
fn istio_config(stack: &Stack, fast_mode: bool) -> String {
    format!(
        r#"issuer: {issuer}
mesh_mtls: true
redis: {{ url: "redis://redis.mcp-auth.svc.cluster.local:6379/0" }}
authserver:
  listen: 0.0.0.0:8081
  url: http://authserver.mcp-auth.svc.cluster.local:8081
ext_authz:
  listen: 0.0.0.0:9191
  url: http://ext-authz.mcp-auth.svc.cluster.local:9191
  mode: {mode}
access: {{ users: ["*"] }}
{policy}services:
  - name: echo
    upstream: {{ url: "http://echo.mcp.svc.cluster.local:3001/mcp" }}
"#,
        issuer = stack.issuer(),
        mode = if fast_mode { "fast" } else { "per_request" },
        policy = POLICY,
    )
}

/// The MCP policy of the stack and of the rendered resources: one tool nobody may call.
const POLICY: &str = r#"mcp_policy:
  rules:
    - { name: echo-forbidden, services: [echo], methods: [tools/call], names: [forbidden], allow: { users: [nobody-at-all] } }
"#;

/// One sidecar Envoy in front of the stack's echo server.
async fn sidecar(resources: &IstioResources, stack: &Stack, attached: Attached) -> (Envoy, String) {
    let port = ReservedPort::new().unwrap();
    let targets = SidecarTargets {
        authserver: stack.authserver,
        ext_authz: stack.ext_authz,
        workload: stack.echo.as_ref().unwrap().addr(),
    };
    let bootstrap = resources
        .sidecar_bootstrap("echo", attached, port.port(), &targets)
        .unwrap();
    let envoy = Envoy::start(&bootstrap, port).await.unwrap();
    let url = format!("{}/mcp", envoy.url());
    (envoy, url)
}

/// Waits until the sidecar's filter holds the JWKS (it answers 503 until then).
async fn wait_for_keys(url: &str) {
    mcp_auth_e2e::poll::until(
        "the sidecar's filter to hold the JWKS",
        Duration::from_secs(20),
        || async {
            let response = mcp_at(url, Some("Bearer probe"), &[]).await;
            (response.status() != StatusCode::SERVICE_UNAVAILABLE).then_some(())
        },
    )
    .await
    .unwrap();
}

async fn the_filter_in_an_istio_sidecar(fast_mode: bool) {
    let (stack, _github) = token_stack_with(fast_mode, POLICY).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.yaml");
    std::fs::write(&config, istio_config(&stack, fast_mode)).unwrap();
    let resources = IstioResources::render(&config, &dir.path().join("generated")).unwrap();
    // Per request, Istio's CUSTOM provider asks ext_authz after the filter; in fast mode the
    // filter asks it itself, and a CUSTOM check after it would refuse what it let through.
    let custom = resources.for_workload("AuthorizationPolicy", "echo");
    assert_eq!(custom.len(), usize::from(!fast_mode), "{custom:?}");
    assert_eq!(resources.for_workload("WasmPlugin", "echo").len(), 1);

    let (envoy, url) = sidecar(&resources, &stack, Attached::All).await;
    wait_for_keys(&url).await;

    // The forged-token matrix, first, while nothing has reached the echo server.
    let cases = forged_tokens(&stack, &url).await;
    assert!(cases > 40, "{cases}");

    // The OAuth flow, discovered from the sidecar's own challenge.
    let discovered = mcp_auth_e2e::oauth::discover_at(&url, stack.issuer()).await;
    assert_eq!(discovered.resource, format!("{}{ECHO}", stack.issuer()));
    let client_id = register(&discovered).await;
    let back = params(&sign_in(&stack, &discovered, &client_id).await);
    let (status, tokens) = exchange(&discovered, &client_id, &back["code"], VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let bearer = format!("Bearer {}", tokens["access_token"].as_str().unwrap());

    // Through the sidecar: identity set by the gateway, no token, no hand-off, whatever the
    // client sent.
    let forged_handoff =
        "sub=1;login=mallory;cid=c;gid=g;jti=j;scope=mcp;exp=9999999999;iat=1;svc=echo";
    let response = mcp_at(
        &url,
        Some(&bearer),
        &[
            ("x-mcp-user-login", "mallory"),
            (HANDOFF_HEADER, forged_handoff),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "{}", envoy.log());
    let seen = stack.echo.as_ref().unwrap().requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let headers = &seen[0];
    assert!(!headers.contains_key("authorization"), "{headers:?}");
    assert_eq!(headers["x-mcp-user-login"], "octocat");
    assert_eq!(headers["x-mcp-user-id"], "583231");
    assert!(
        !headers.keys().any(|k| k.starts_with("x-mcp-auth")),
        "{headers:?}"
    );
    // The EnvoyFilter's patch: header names with underscores are refused, as in our Envoy.
    let underscored = mcp_at(&url, Some(&bearer), &[("x_mcp_user_login", "mallory")]).await;
    assert_eq!(underscored.status(), StatusCode::BAD_REQUEST);
    assert_eq!(reached(&stack), 1);

    nothing_reaches_the_workload_before_the_policy_decides(&envoy, &stack, &bearer).await;

    // Revoked: refused by the sidecar within 1 s.
    assert_eq!(
        mcp_auth_e2e::oauth::revoke(&discovered, &client_id, &bearer[7..]).await,
        StatusCode::OK
    );
    mcp_auth_e2e::poll::until(
        "the sidecar to refuse the revoked token",
        Duration::from_secs(1),
        || async {
            for _ in 0..3 {
                let response = mcp_at(&url, Some(&bearer), &[]).await;
                if response.status() != StatusCode::UNAUTHORIZED {
                    return None;
                }
            }
            Some(())
        },
    )
    .await
    .unwrap();
    assert_eq!(reached(&stack), 2, "a revoked token reached the workload");

    if !fast_mode {
        forged_handoffs_where_the_filter_does_not_run(&resources, &stack).await;
    }
}

/// A `tools/call` the policy denies, its body sent in two parts a moment apart: the
/// workload's server sees nothing of it, not even its headers, while the sidecar waits for
/// the rest of the body (per request, the CUSTOM provider's request body; in fast mode, the
/// buffer filter the EnvoyFilter inserts after the WasmPlugin), then refuses it. An allowed
/// call sent the same way reaches it.
async fn nothing_reaches_the_workload_before_the_policy_decides(
    envoy: &Envoy,
    stack: &Stack,
    bearer: &str,
) {
    let call = |id: u32, name: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{name}","arguments":{{}}}}}}"#
        )
    };
    let before = reached(stack);
    let (status, body) = slow_post(envoy, bearer, &call(1, "forbidden")).await;
    assert_eq!(status, 403, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        error["error"]["message"],
        "tools/call forbidden is not allowed for you"
    );
    assert_eq!(
        reached(stack),
        before,
        "the denied call reached the workload"
    );
    let (status, body) = slow_post(envoy, bearer, &call(2, "allowed")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(reached(stack), before + 1);
}

/// POSTs `body` to the sidecar's `/mcp` over HTTP/1.1, its first half, then, 300 ms later,
/// the rest. Returns status and body.
async fn slow_post(envoy: &Envoy, bearer: &str, body: &str) -> (u16, String) {
    use tokio::io::AsyncWriteExt as _;
    let host = envoy.url().trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&host).await.unwrap();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nhost: {host}\r\nauthorization: {bearer}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let (first, rest) = body.split_at(body.len() / 2);
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stream.write_all(rest.as_bytes()).await.unwrap();
    read_response(&mut stream).await
}

/// A workload with the CUSTOM provider but no WasmPlugin: a client's own hand-off header
/// reaches ext_authz, which refuses every one the filter did not sign.
async fn forged_handoffs_where_the_filter_does_not_run(resources: &IstioResources, stack: &Stack) {
    let (_envoy, url) = sidecar(resources, stack, Attached::CustomPolicyOnly).await;
    let now = unix_now();
    let claims = Handoff {
        service: "echo".into(),
        subject: "583231".into(),
        login: "octocat".into(),
        client_id: "forged-client".into(),
        grant_id: "forged-grant".into(),
        token_id: "forged-jti".into(),
        scope: "mcp".into(),
        expires_at: now + 600,
        issued_at: now,
    }
    .encode();
    let foreign =
        HandoffKey::from_secret(HANDOFF_KEY_ENV, "a secret of some other gateway, 32+ bytes")
            .unwrap();
    let before = reached(stack);
    for (case, value) in [
        ("unsigned", claims.clone()),
        ("signed with another secret", foreign.sign(&claims)),
        (
            "with a made-up MAC",
            format!("{claims};mac={}", "A".repeat(43)),
        ),
    ] {
        let response = mcp_at(&url, Some("Bearer anything"), &[(HANDOFF_HEADER, &value)]).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{case}");
    }
    let response = mcp_at(&url, None, &[]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "no hand-off");
    assert_eq!(
        reached(stack),
        before,
        "a forged hand-off reached the server"
    );
    // The control: the hand-off the filter would have written passes.
    let genuine = HandoffKey::from_secret(HANDOFF_KEY_ENV, mcp_auth_e2e::envoy::handoff_secret())
        .unwrap()
        .sign(&claims);
    let response = mcp_at(&url, Some("Bearer anything"), &[(HANDOFF_HEADER, &genuine)]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(reached(stack), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_filter_in_an_istio_sidecar_per_request() {
    the_filter_in_an_istio_sidecar(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_filter_in_an_istio_sidecar_fast_mode() {
    the_filter_in_an_istio_sidecar(true).await;
}

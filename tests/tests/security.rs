//! Hostile clients against the running stack (real Envoy with the filter, ext_authz, the
//! authserver, Redis, the fake GitHub), every test in both ext_authz modes (per request and
//! fast). Every case asserts the exact status and error, and for the MCP endpoint that
//! nothing reached the MCP server: the target service is a header-recording upstream that
//! counts what it receives.
//!
//! The authorization-flow attacks that need a whole sign-in (skipped consent, CSRF, changed
//! redirect URI, code replay, wrong verifier, refresh-token replay, users off the
//! allow-list) live with the flow itself in `e2e/authserver.rs` and `e2e/ext_authz.rs`.

// Helpers outside `#[test]` functions: a failed step should fail loudly, at the step.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_auth_e2e::fake_github::{FakeGitHub, FakeUser};
use mcp_auth_e2e::oauth::{
    Browser, CHALLENGE, INITIALIZE, REDIRECT, VERIFIER, discover, exchange, form, params, register,
    sign_in,
};
use mcp_auth_e2e::stack::{Stack, StackOptions, unix_now};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

const ECHO: &str = "/echo/mcp";

#[path = "security/istio.rs"]
mod istio;

fn reached(stack: &Stack) -> usize {
    stack.echo.as_ref().unwrap().requests().len()
}

/// Claims of a valid token for `resource`, to be spoiled one at a time.
fn claims(stack: &Stack, resource: &str) -> Value {
    let now = unix_now();
    json!({
        "iss": stack.issuer(), "sub": "583231", "aud": resource,
        "exp": now + 600, "iat": now, "nbf": now, "jti": format!("sec-{now}"),
        "client_id": "sec-client", "scope": "mcp", "preferred_username": "octocat",
        "grant_id": "sec-grant",
    })
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// HMAC-SHA256 (RFC 2104), for tokens "signed" with the public key as a shared secret.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// A token with `header` and `claims` and the signature segment `signature`.
fn jws(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header),
        b64(claims),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// POSTs an MCP `initialize` to the echo service with `auth` as the Authorization header.
async fn mcp(stack: &Stack, auth: Option<&str>, extra: &[(&str, &str)]) -> reqwest::Response {
    mcp_at(&stack.url(ECHO), auth, extra).await
}

/// [`mcp`] to `url`.
async fn mcp_at(url: &str, auth: Option<&str>, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(INITIALIZE);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// Asserts `response` is `status` with `error` in its JSON body and, for 401/403, in its
/// challenge.
async fn refused(case: &str, response: reqwest::Response, status: StatusCode, error: &str) {
    assert_eq!(response.status(), status, "{case}");
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        if !error.is_empty() {
            assert!(
                challenge.contains(&format!("error=\"{error}\"")),
                "{case}: {challenge}"
            );
        }
        assert!(
            challenge.is_empty() || challenge.contains("resource_metadata="),
            "{case}: {challenge}"
        );
    }
    if !error.is_empty() {
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(body["error"], error, "{case}");
    }
}

/// A stack for the MCP-endpoint cases: `echo` records what reaches it, the keys are ES256 (so
/// a signature's high-S twin can be tried), ext_authz in `fast_mode` or per request.
async fn token_stack(fast_mode: bool) -> (Stack, FakeGitHub) {
    token_stack_with(fast_mode, "").await
}

/// [`token_stack`] with `extra_config` added to the gateway config.
async fn token_stack_with(fast_mode: bool, extra_config: &str) -> (Stack, FakeGitHub) {
    Stack::start_with_github(
        FakeUser::new(583231, "octocat"),
        StackOptions {
            header_echo: true,
            fast_mode,
            authserver_config: "signing_alg: ES256".into(),
            extra_config: extra_config.into(),
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

/// Sends `request` (a raw HTTP/1.1 request head and body, `{host}` replaced by Envoy's
/// address) as written, so paths reach Envoy without a client normalising them; returns the
/// status and the body.
async fn raw_http(stack: &Stack, request: &str) -> (u16, String) {
    use tokio::io::AsyncWriteExt as _;
    let host = stack.envoy.url().trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&host).await.unwrap();
    stream
        .write_all(request.replace("{host}", &host).as_bytes())
        .await
        .unwrap();
    read_response(&mut stream).await
}

/// Reads an HTTP/1.1 response to its end (the request said `connection: close`): its status
/// and body.
async fn read_response(stream: &mut tokio::net::TcpStream) -> (u16, String) {
    use tokio::io::AsyncReadExt as _;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {response}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A raw POST of an MCP `initialize` to `path`, with `auth` as its Authorization header.
fn raw_post(path: &str, auth: Option<&str>) -> String {
    let auth = auth.map_or_else(String::new, |auth| format!("authorization: {auth}\r\n"));
    format!(
        "POST {path} HTTP/1.1\r\nhost: {{host}}\r\n{auth}content-type: application/json\r\naccept: application/json, text/event-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{INITIALIZE}",
        INITIALIZE.len()
    )
}

/// POSTs an MCP `initialize` to the echo service with raw header values.
async fn mcp_bytes(stack: &Stack, headers: &[(&str, &[u8])]) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(stack.url(ECHO))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(INITIALIZE);
    for (name, value) in headers {
        request = request.header(
            *name,
            reqwest::header::HeaderValue::from_bytes(value).unwrap(),
        );
    }
    request.send().await.unwrap()
}

/// Tokens that are forged, spoiled or not ours: 401 `invalid_token`, every one.
/// Every forged or misused token, sent to `target` (the echo service through our Envoy, or
/// through an Istio sidecar), is refused and none reaches the echo server.
async fn forged_tokens(stack: &Stack, target: &str) -> usize {
    let echo_resource = format!("{}{ECHO}", stack.issuer());
    let other_resource = format!("{}/everything/mcp", stack.issuer());
    let jwks: Value = reqwest::get(stack.url("/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(key["alg"], "ES256");
    let kid = key["kid"].as_str().unwrap();
    let good = claims(stack, &echo_resource);
    let good_text = good.to_string();
    let now = unix_now();
    let spoiled = |field: &str, value: Value| {
        stack
            .forge_token(&spoiled_claims(&good, field, value))
            .unwrap()
    };
    let without = |field: &str| {
        let mut c = good.clone();
        c.as_object_mut().unwrap().remove(field);
        stack.forge_token(&c).unwrap()
    };
    let signed = |header: Value, payload: &[u8]| stack.forge_jws(&header, payload).unwrap();
    let valid = stack.forge_token(&good).unwrap();
    let (valid_input, valid_signature) = valid.rsplit_once('.').unwrap();
    let real_signature = URL_SAFE_NO_PAD.decode(valid_signature).unwrap();
    let with_signature =
        |signature: &[u8]| format!("{valid_input}.{}", URL_SAFE_NO_PAD.encode(signature));
    let ecdsa = p256::ecdsa::Signature::from_slice(&real_signature).unwrap();
    let high_s = {
        let (r, s) = ecdsa.split_scalars();
        p256::ecdsa::Signature::from_scalars(r, -*s).unwrap()
    };
    assert!(high_s.normalize_s().is_some());
    let hs256_header = json!({"alg": "HS256", "typ": "at+jwt", "kid": kid});
    let hs256_input = format!("{}.{}", b64(&hs256_header), b64(&good));
    let hs256 = format!(
        "{hs256_input}.{}",
        URL_SAFE_NO_PAD.encode(hmac_sha256(
            key["x"].as_str().unwrap_or_default().as_bytes(),
            hs256_input.as_bytes()
        ))
    );
    let header_with = |extra: Value| {
        let mut header = json!({"alg": key["alg"], "typ": "at+jwt", "kid": kid});
        for (k, v) in extra.as_object().unwrap() {
            header[k] = v.clone();
        }
        header
    };
    let at_jwt = json!({"typ": "at+jwt"});
    let body_of = |text: &str| text[1..text.len() - 1].to_owned();
    let oversize = spoiled_claims(&good, "pad", json!("p".repeat(9 * 1024)));

    let invalid_tokens: Vec<(&str, String)> = vec![
        (
            "alg none",
            jws(&json!({"alg": "none", "typ": "at+jwt"}), &good, b""),
        ),
        (
            "alg none, kid of a real key",
            jws(&json!({"alg": "none", "kid": kid}), &good, b""),
        ),
        (
            "alg NONE",
            jws(&json!({"alg": "NONE", "typ": "at+jwt"}), &good, b""),
        ),
        ("HS256 with the public key as secret", hs256),
        (
            "RS256 on the EC key's kid",
            jws(
                &header_with(json!({"alg": "RS256"})),
                &good,
                &real_signature,
            ),
        ),
        (
            "EdDSA on the EC key's kid",
            jws(
                &header_with(json!({"alg": "EdDSA"})),
                &good,
                &real_signature,
            ),
        ),
        (
            "unknown kid",
            jws(
                &header_with(json!({"kid": "no-such-key"})),
                &good,
                &real_signature,
            ),
        ),
        (
            "kid that is not a string",
            signed(json!({"typ": "at+jwt", "kid": 1}), good_text.as_bytes()),
        ),
        (
            "path traversal kid",
            jws(
                &header_with(json!({"kid": "../../../../etc/passwd"})),
                &good,
                &real_signature,
            ),
        ),
        (
            "oversized kid",
            jws(
                &header_with(json!({"kid": "k".repeat(4096)})),
                &good,
                &real_signature,
            ),
        ),
        (
            "jku pointing elsewhere",
            jws(
                &header_with(json!({"jku": "https://evil.example/jwks"})),
                &good,
                &real_signature,
            ),
        ),
        (
            "embedded jwk",
            jws(&header_with(json!({"jwk": key})), &good, &real_signature),
        ),
        (
            "x5u pointing elsewhere",
            jws(
                &header_with(json!({"x5u": "https://evil.example/cert"})),
                &good,
                &real_signature,
            ),
        ),
        (
            "payload swapped under a real signature",
            jws(
                &header_with(json!({})),
                &spoiled_claims(&good, "sub", json!("1")),
                &real_signature,
            ),
        ),
        // Explicit typing (RFC 9068 §4, RFC 8725 §3.11) and critical headers (RFC 7515 §4.1.11).
        (
            "typ JWT",
            signed(json!({"typ": "JWT"}), good_text.as_bytes()),
        ),
        ("no typ", signed(json!({}), good_text.as_bytes())),
        (
            "typ application/jwt",
            signed(json!({"typ": "application/jwt"}), good_text.as_bytes()),
        ),
        (
            "crit naming an extension",
            signed(
                json!({"typ": "at+jwt", "crit": ["urn:x:ext"], "urn:x:ext": true}),
                good_text.as_bytes(),
            ),
        ),
        (
            "empty crit",
            signed(json!({"typ": "at+jwt", "crit": []}), good_text.as_bytes()),
        ),
        // The signature itself.
        (
            "ES256 high-S twin of a valid signature",
            with_signature(&high_s.to_bytes()),
        ),
        (
            "DER-encoded ES256 signature",
            with_signature(ecdsa.to_der().as_bytes()),
        ),
        (
            "signature one byte short",
            with_signature(&real_signature[..63]),
        ),
        (
            "signature one byte long",
            with_signature(&[&real_signature[..], &[0]].concat()),
        ),
        ("empty signature", format!("{valid_input}.")),
        ("signature with base64 padding", format!("{valid}==")),
        // Claims.
        ("expired", spoiled("exp", json!(now - 3600))),
        ("not yet valid", spoiled("nbf", json!(now + 3600))),
        ("no exp", without("exp")),
        (
            "exp as a string",
            spoiled("exp", json!((now + 600).to_string())),
        ),
        ("exp as a float", spoiled("exp", json!(now as f64 + 600.5))),
        ("no jti", without("jti")),
        (
            "wrong issuer",
            spoiled("iss", json!("https://evil.example")),
        ),
        (
            "issuer with a trailing slash",
            spoiled("iss", json!(format!("{}/", stack.issuer()))),
        ),
        (
            "issuer in upper case",
            spoiled("iss", json!(stack.issuer().to_uppercase())),
        ),
        (
            "wrong audience",
            spoiled("aud", json!("https://evil.example/mcp")),
        ),
        (
            "token of another service",
            spoiled("aud", json!(other_resource)),
        ),
        ("no audience", spoiled("aud", Value::Null)),
        (
            "aud array without this service",
            spoiled("aud", json!([other_resource, "https://evil.example/mcp"])),
        ),
        ("empty aud array", spoiled("aud", json!([]))),
        (
            "aud array with a near miss",
            spoiled("aud", json!([format!("{echo_resource}/")])),
        ),
        ("aud as a number", spoiled("aud", json!(1))),
        (
            "duplicate aud, this service last",
            signed(
                at_jwt.clone(),
                format!("{{\"aud\":{:?},{}}}", other_resource, body_of(&good_text)).as_bytes(),
            ),
        ),
        (
            "duplicate aud, this service first",
            signed(
                at_jwt.clone(),
                format!("{{{},\"aud\":{:?}}}", body_of(&good_text), other_resource).as_bytes(),
            ),
        ),
        (
            "duplicate sub",
            signed(
                at_jwt.clone(),
                format!("{{{},\"sub\":\"1\"}}", body_of(&good_text)).as_bytes(),
            ),
        ),
        (
            "claims that are not an object",
            signed(at_jwt.clone(), b"[1,2,3]"),
        ),
        (
            "claims that are not UTF-8",
            signed(at_jwt.clone(), b"{\"sub\":\"\xff\xfe\"}"),
        ),
        (
            "over 8 KiB, validly signed",
            stack.forge_token(&oversize).unwrap(),
        ),
        ("empty subject", spoiled("sub", json!(""))),
        ("empty client_id", spoiled("client_id", json!(""))),
        (
            "subject with CR LF (header injection)",
            spoiled("sub", json!("1\r\nx-mcp-user-id: 0")),
        ),
        (
            "login with a newline",
            spoiled("preferred_username", json!("octocat\nadmin")),
        ),
        (
            "scope with a control character",
            spoiled("scope", json!("mcp\u{7}")),
        ),
        // Shapes.
        ("not a JWT", "garbage".to_owned()),
        ("two segments", "a.b".to_owned()),
        (
            "five segments (JWE form)",
            format!("{valid}.{valid_signature}.x"),
        ),
        (
            "header that is not JSON",
            format!("bm90IGpzb24.{}", valid.split_once('.').unwrap().1),
        ),
    ];
    let count = invalid_tokens.len();
    for (case, token) in invalid_tokens {
        let response = mcp_at(target, Some(&format!("Bearer {token}")), &[]).await;
        refused(case, response, StatusCode::UNAUTHORIZED, "invalid_token").await;
    }
    assert_eq!(reached(stack), 0, "after {count} forged tokens");
    count
}

/// Credentials and headers that are malformed or forged, with and without a valid token.
async fn malformed_requests(stack: &Stack) -> usize {
    let echo_resource = format!("{}{ECHO}", stack.issuer());
    let valid = stack.forge_token(&claims(stack, &echo_resource)).unwrap();
    let bearer = format!("Bearer {valid}");
    let mut count = 0;

    // Malformed credentials: RFC 6750 §3.1 invalid_request.
    let two = reqwest::Client::new()
        .post(stack.url(ECHO))
        .header("authorization", &bearer)
        .header("authorization", &bearer)
        .body(INITIALIZE)
        .send()
        .await
        .unwrap();
    refused(
        "two Authorization headers",
        two,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    let query = reqwest::Client::new()
        .post(stack.url(&format!("{ECHO}?access_token={valid}")))
        .body(INITIALIZE)
        .send()
        .await
        .unwrap();
    refused(
        "token in the query string",
        query,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    count += 2;
    for (case, auth, status, error) in [
        // Characters outside RFC 6750's b64token syntax: a malformed header, not a bad token.
        (
            "token outside b64token syntax",
            b"Bearer !!.!!.!!".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "a token followed by junk",
            format!("{bearer} extra").into_bytes(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "Bearer without a token",
            b"Bearer ".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "Authorization that is not UTF-8",
            b"Bearer \xff\xfe.\xfd".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        // No bearer token at all: a challenge without an error code (RFC 6750 §3.1).
        (
            "Basic credentials",
            b"Basic b2N0b2NhdDpwYXNz".to_vec(),
            StatusCode::UNAUTHORIZED,
            "",
        ),
    ] {
        let response = mcp_bytes(stack, &[("authorization", &auth)]).await;
        refused(case, response, status, error).await;
        count += 1;
    }

    // A forged hand-off header without a token is not a token.
    let handoff = mcp(
        stack,
        None,
        &[(
            "x-mcp-auth-handoff",
            "sub=1;login=root;cid=c;gid=g;jti=j;scope=mcp;exp=9999999999;iat=1;svc=echo",
        )],
    )
    .await;
    refused(
        "forged hand-off, no token",
        handoff,
        StatusCode::UNAUTHORIZED,
        "",
    )
    .await;
    count += 1;
    // Underscored twins of reserved headers would slip past the removal of the dashed names.
    for name in ["x_mcp_auth_handoff", "x_mcp_user_id", "x_user_id"] {
        let response = mcp(stack, Some(&bearer), &[(name, "0")]).await;
        refused(name, response, StatusCode::BAD_REQUEST, "").await;
        count += 1;
    }
    // Browser Origins that are not allowed (DNS rebinding), even with a valid token.
    for (case, origin) in [
        ("disallowed Origin", &b"https://evil.example"[..]),
        ("Origin null", b"null"),
        ("the issuer on another port", b"http://127.0.0.1:1"),
        ("Origin that is not UTF-8", b"https://\xffevil.example"),
    ] {
        let response = mcp_bytes(
            stack,
            &[("authorization", bearer.as_bytes()), ("origin", origin)],
        )
        .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{case}");
        count += 1;
    }
    // Headers far over Envoy's limit.
    let huge = "x".repeat(64 * 1024);
    let oversize = mcp(stack, Some(&bearer), &[("x-filler", &huge)]).await;
    assert_eq!(
        oversize.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "oversize headers"
    );
    count += 1;
    assert_eq!(reached(stack), 0, "malformed requests reached the server");
    count
}

/// Paths that try to leave a service's route (dot segments, encoded dots and slashes) for
/// another service or the authserver: Envoy normalises or refuses them, and the token is
/// then checked for the route the request really takes.
async fn hostile_paths(stack: &Stack) -> usize {
    let everything = format!("{}/everything/mcp", stack.issuer());
    let token = stack.forge_token(&claims(stack, &everything)).unwrap();
    let bearer = format!("Bearer {token}");
    let cases: Vec<(&str, String, u16)> = vec![
        (
            "dot segments to another service",
            raw_post("/everything/mcp/../../echo/mcp", Some(&bearer)),
            401,
        ),
        (
            "encoded dot segments to another service",
            raw_post("/everything/mcp/%2e%2e/%2e%2e/echo/mcp", Some(&bearer)),
            401,
        ),
        (
            "upper-case encoded dot segments",
            raw_post("/everything/mcp/%2E%2E/%2E%2E/echo/mcp", Some(&bearer)),
            401,
        ),
        (
            "encoded slashes",
            raw_post("/everything/mcp/..%2f..%2fecho/mcp", Some(&bearer)),
            400,
        ),
        (
            "an encoded slash in the route",
            raw_post("/echo%2Fmcp", Some(&bearer)),
            400,
        ),
        (
            "a leading double slash",
            raw_post("//echo/mcp", Some(&bearer)),
            401,
        ),
        (
            "a double slash inside",
            raw_post("/echo//mcp", Some(&bearer)),
            401,
        ),
        (
            "a single-dot segment",
            raw_post("/echo/./mcp", Some(&bearer)),
            401,
        ),
        (
            "a trailing slash",
            raw_post("/echo/mcp/", Some(&bearer)),
            401,
        ),
        ("a backslash", raw_post("/echo\\mcp", Some(&bearer)), 401),
        (
            "dot segments from the authserver",
            raw_post("/token/../echo/mcp", None),
            401,
        ),
        (
            "dot segments from the well-known documents",
            raw_post("/.well-known/oauth-protected-resource/../../echo/mcp", None),
            401,
        ),
        (
            "absolute-form target on another host",
            raw_post("http://evil.example/echo/mcp", Some(&bearer)),
            401,
        ),
        (
            "an encoded NUL",
            raw_post("/echo/mcp%00", Some(&bearer)),
            400,
        ),
        (
            "a fragment in the target",
            raw_post("/echo/mcp#x", Some(&bearer)),
            400,
        ),
    ];
    let count = cases.len();
    for (case, request, status) in cases {
        let (got, body) = raw_http(stack, &request).await;
        assert_eq!(got, status, "{case}: {body}");
    }
    // Into the token endpoint from an MCP path: the authserver answers as at /token itself.
    let form = "grant_type=authorization_code&code=x&client_id=nobody";
    for (case, path) in [
        ("dot segments into /token", "/everything/mcp/../../token"),
        (
            "encoded dot segments into /token",
            "/echo/mcp/%2e%2e/%2e%2e/token",
        ),
    ] {
        let request = format!(
            "POST {path} HTTP/1.1\r\nhost: {{host}}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{form}",
            form.len()
        );
        let (status, body) = raw_http(stack, &request).await;
        assert_eq!(status, 401, "{case}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        assert_eq!(body["error"], "invalid_client", "{case}");
    }
    assert_eq!(reached(stack), 0, "a hostile path reached the echo service");
    count + 2
}

/// Hardening 8 through Envoy: the same invalid signature a hundred times is refused every
/// time (the filter remembers it instead of verifying again) and never reaches the server.
async fn an_invalid_signature_flood(stack: &Stack) -> usize {
    let resource = format!("{}{ECHO}", stack.issuer());
    let token = stack.forge_token(&claims(stack, &resource)).unwrap();
    let (input, _) = token.rsplit_once('.').unwrap();
    let forged = format!("Bearer {input}.{}", URL_SAFE_NO_PAD.encode([7u8; 64]));
    for _ in 0..100 {
        let response = mcp(stack, Some(&forged), &[]).await;
        refused(
            "invalid signature flood",
            response,
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        )
        .await;
    }
    assert_eq!(reached(stack), 0);
    1
}

/// Every hostile request at the MCP endpoint in one ext_authz mode; then the valid token
/// passes, carrying the gateway's identity and nothing the client claimed.
async fn hostile_mcp_requests_never_reach_the_mcp_server(fast_mode: bool) {
    let (stack, _github) = token_stack(fast_mode).await;
    let cases = forged_tokens(&stack, &stack.url(ECHO)).await
        + malformed_requests(&stack).await
        + hostile_paths(&stack).await
        + an_invalid_signature_flood(&stack).await;
    eprintln!("{cases} hostile requests at the MCP endpoint refused");

    let echo_resource = format!("{}{ECHO}", stack.issuer());
    let valid = stack.forge_token(&claims(&stack, &echo_resource)).unwrap();
    let response = mcp(
        &stack,
        Some(&format!("Bearer {valid}")),
        &[
            ("x-mcp-user-id", "0"),
            ("x-mcp-user-login", "root"),
            ("x-mcp-scopes", "admin"),
            (
                "x-mcp-auth-handoff",
                "sub=0;login=root;cid=c;gid=g;jti=j;scope=admin;exp=9999999999;iat=1;svc=echo",
            ),
            ("x-mcp-auth-sub", "0"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let seen = stack.echo.as_ref().unwrap().requests();
    assert_eq!(seen.len(), 1, "only the valid request reached the server");
    let headers = seen.last().unwrap();
    assert_eq!(headers["x-mcp-user-id"], "583231");
    assert_eq!(headers["x-mcp-user-login"], "octocat");
    assert_eq!(headers["x-mcp-scopes"], "mcp");
    assert!(!headers.contains_key("authorization"), "{headers:?}");
    assert!(
        !headers.keys().any(|k| k.starts_with("x-mcp-auth")),
        "{headers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_mcp_requests_never_reach_the_mcp_server_per_request() {
    hostile_mcp_requests_never_reach_the_mcp_server(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_mcp_requests_never_reach_the_mcp_server_fast_mode() {
    hostile_mcp_requests_never_reach_the_mcp_server(true).await;
}

fn spoiled_claims(claims: &Value, field: &str, value: Value) -> Value {
    let mut c = claims.clone();
    c[field] = value;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_registrations_and_authorization_requests_are_refused_per_request() {
    hostile_registrations_and_authorization_requests_are_refused(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_registrations_and_authorization_requests_are_refused_fast_mode() {
    hostile_registrations_and_authorization_requests_are_refused(true).await;
}

async fn hostile_registrations_and_authorization_requests_are_refused(fast_mode: bool) {
    let (stack, _github) = hardening_stack(fast_mode, "").await;
    let discovered = discover(&stack).await;
    let endpoint = discovered.metadata["registration_endpoint"]
        .as_str()
        .unwrap()
        .to_owned();
    let http = reqwest::Client::new();
    let register_with = |metadata: Value| {
        let http = http.clone();
        let endpoint = endpoint.clone();
        async move { http.post(&endpoint).json(&metadata).send().await.unwrap() }
    };
    for (case, metadata, error) in [
        (
            "javascript: redirect URI",
            json!({"redirect_uris": ["javascript:alert(1)"]}),
            "invalid_redirect_uri",
        ),
        (
            "http redirect URI on a public host",
            json!({"redirect_uris": ["http://evil.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            "redirect URI with a fragment",
            json!({"redirect_uris": ["https://app.example/cb#frag"]}),
            "invalid_redirect_uri",
        ),
        (
            "data: redirect URI",
            json!({"redirect_uris": ["data:text/html,hi"]}),
            "invalid_redirect_uri",
        ),
        (
            "no redirect URI",
            json!({"redirect_uris": []}),
            "invalid_redirect_uri",
        ),
        (
            "unsupported authentication method",
            json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
        ),
        (
            "implicit grant",
            json!({"redirect_uris": [REDIRECT], "grant_types": ["implicit"]}),
            "invalid_client_metadata",
        ),
        (
            "token response type",
            json!({"redirect_uris": [REDIRECT], "response_types": ["token"]}),
            "invalid_client_metadata",
        ),
    ] {
        let response = register_with(metadata).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{case}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], error, "{case}");
    }

    // Oversize bodies: refused before they are parsed, never a 500.
    // Four times the authserver's 16 KiB limit.
    let big = "x".repeat(64 * 1024);
    let response = http
        .post(&endpoint)
        .header("content-type", "application/json")
        .body(format!("{{\"client_name\":\"{big}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "oversize registration"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request", "oversize registration");
    let token_endpoint = discovered.metadata["token_endpoint"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = http
        .post(&token_endpoint)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=authorization_code&code={big}"))
        .send()
        .await
        .unwrap();
    // Envoy refuses it before the authserver (which would stop reading mid-upload and reset
    // the connection), with an OAuth error.
    assert_eq!(
        response.status(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "oversize token request"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request", "oversize token request");
    // Basic credentials whose halves hold a raw `&` or a second colon (RFC 6749 §2.3.1:
    // each half is form-encoded): no client, whatever the split.
    for (case, credentials) in [
        ("a raw & in the secret", "nobody:sec&ret"),
        ("a second colon", "nobody:a:b"),
        ("a broken escape", "nobody:%zz"),
    ] {
        let response = http
            .post(&token_endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .header(
                "authorization",
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(credentials)
                ),
            )
            .body(form(&[("grant_type", "authorization_code"), ("code", "x")]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{case}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client", "{case}");
    }
    // GET on the token endpoint.
    let response = http.get(&token_endpoint).send().await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::METHOD_NOT_ALLOWED,
        "GET /token"
    );
    // Unsupported grant types.
    for grant in ["password", "client_credentials", "implicit"] {
        let response = http
            .post(&token_endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("grant_type", grant), ("client_id", "x")]))
            .send()
            .await
            .unwrap();
        assert!(
            matches!(
                response.status(),
                StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED
            ),
            "{grant}: {}",
            response.status()
        );
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error"] == "unsupported_grant_type" || body["error"] == "invalid_client",
            "{grant}: {body}"
        );
    }

    // Authorization requests a client (or an attacker crafting a link) can get wrong.
    let client_id = register(&discovered).await;
    let authorize = |pairs: Vec<(&str, String)>| {
        let mut url = reqwest::Url::parse(
            discovered.metadata["authorization_endpoint"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        url.query_pairs_mut()
            .extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())));
        url.to_string()
    };
    let base = |skip: &str, replace: Option<(&'static str, &str)>| {
        let mut pairs: Vec<(&str, String)> = vec![
            ("response_type", "code".into()),
            ("client_id", client_id.clone()),
            ("redirect_uri", REDIRECT.into()),
            ("state", "s".into()),
            ("code_challenge", CHALLENGE.into()),
            ("code_challenge_method", "S256".into()),
            ("resource", discovered.resource.clone()),
        ];
        pairs.retain(|(k, _)| *k != skip);
        if let Some((key, value)) = replace {
            pairs.retain(|(k, _)| *k != key);
            pairs.push((key, value.to_owned()));
        }
        authorize(pairs)
    };
    // Redirect URIs that are not the client's: an error page, never a redirect.
    for (case, uri) in [
        ("unregistered redirect URI", "http://127.0.0.1:33418/other"),
        ("redirect to another host", "https://evil.example/callback"),
        ("javascript: redirect", "javascript:alert(1)"),
    ] {
        let response = Browser::new()
            .get(&base("", Some(("redirect_uri", uri))))
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{case}");
        assert!(response.headers().get("location").is_none(), "{case}");
    }
    let unknown_client = Browser::new()
        .get(&base("", Some(("client_id", "no-such-client"))))
        .await;
    assert_eq!(
        unknown_client.status(),
        StatusCode::BAD_REQUEST,
        "unknown client"
    );
    assert!(unknown_client.headers().get("location").is_none());
    // Errors a valid client gets back at its redirect URI, with iss (RFC 9207).
    for (case, url, error) in [
        (
            "plain PKCE",
            base("", Some(("code_challenge_method", "plain"))),
            "invalid_request",
        ),
        ("no PKCE", base("code_challenge", None), "invalid_request"),
        ("no resource", base("resource", None), "invalid_target"),
        (
            "unknown resource",
            base("", Some(("resource", "https://evil.example/mcp"))),
            "invalid_target",
        ),
        (
            "token response type",
            base("", Some(("response_type", "token"))),
            "unsupported_response_type",
        ),
        (
            "scope the service does not offer",
            base("", Some(("scope", "admin"))),
            "invalid_scope",
        ),
    ] {
        // Nobody approved this client yet: the error is our page, never a redirect to its
        // registered URI (which anyone can point at a phishing site; RFC 9700 §4.11.2).
        let response = Browser::new().get(&url).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{case}");
        assert!(response.headers().get("location").is_none(), "{case}");
        let page = response.text().await.unwrap();
        assert!(page.contains(error), "{case}: {page}");
    }

    // A Client ID Metadata Document on a private address is never fetched.
    for cimd in [
        "https://127.0.0.1/client.json",
        "https://10.0.0.1/client.json",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/client.json",
        "http://app.example/client.json",
    ] {
        let response = Browser::new()
            .get(&base("", Some(("client_id", cimd))))
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "CIMD {cimd}");
        assert!(response.headers().get("location").is_none(), "CIMD {cimd}");
    }

    // Introspection and revocation need the client; another client's token is not theirs.
    let back = params(&sign_in(&stack, &discovered, &client_id).await);
    let (status, tokens) = exchange(&discovered, &client_id, &back["code"], VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    let introspection = discovered.metadata["introspection_endpoint"]
        .as_str()
        .unwrap();
    let anonymous = http
        .post(introspection)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("token", access)]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        anonymous.status(),
        StatusCode::UNAUTHORIZED,
        "anonymous introspection"
    );
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    let other_client = register(&discovered).await;
    let revoke = http
        .post(discovered.metadata["revocation_endpoint"].as_str().unwrap())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("token", access), ("client_id", &other_client)]))
        .send()
        .await
        .unwrap();
    assert!(
        !revoke.status().is_server_error(),
        "revocation by another client: {}",
        revoke.status()
    );
    // ... but the token was not revoked by a client it does not belong to.
    let still = reqwest::Client::new()
        .post(stack.url("/everything/mcp"))
        .bearer_auth(access)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(INITIALIZE)
        .send()
        .await
        .unwrap();
    assert_eq!(
        still.status(),
        StatusCode::OK,
        "another client revoked the token"
    );
}

/// A stack for the hardening cases: the `echo` service records what reaches it and reads the
/// seed's identity headers; `ext_authz` in `fast_mode` or per request.
async fn hardening_stack(fast_mode: bool, extra_config: &str) -> (Stack, FakeGitHub) {
    Stack::start_with_github(
        FakeUser::new(583231, "octocat"),
        StackOptions {
            header_echo: true,
            echo_config: "    identity_headers: { x-user-id: user_id, x-user-name: login }\n"
                .into(),
            extra_config: extra_config.into(),
            fast_mode,
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

/// A signed-in client of the echo service: its access token and client id.
async fn echo_token(stack: &Stack) -> (String, String, mcp_auth_e2e::oauth::Discovered) {
    let discovered = mcp_auth_e2e::oauth::discover_at(&stack.url(ECHO), stack.issuer()).await;
    let client_id = register(&discovered).await;
    let back = params(&sign_in(stack, &discovered, &client_id).await);
    let (status, tokens) = exchange(&discovered, &client_id, &back["code"], VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    (access, client_id, discovered)
}

/// Hardening 1: a token revoked shortly before its `exp` stays refused afterwards, while the
/// filter would still accept its signature for the clock leeway (30 s).
async fn a_revoked_token_stays_refused_past_its_exp(fast_mode: bool) {
    let (stack, _github) = hardening_stack(fast_mode, "tokens: { access_token: 3s }").await;
    let (access, client_id, discovered) = echo_token(&stack).await;
    let exp = {
        let payload = access.split('.').nth(1).unwrap();
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        claims["exp"].as_u64().unwrap()
    };
    assert_eq!(
        mcp(&stack, Some(&format!("Bearer {access}")), &[])
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        mcp_auth_e2e::oauth::revoke(&discovered, &client_id, &access).await,
        StatusCode::OK
    );
    // Past `exp`, inside the leeway: once the revocation record was gone, the token passed.
    mcp_auth_e2e::poll::until(
        "the token's exp to pass",
        std::time::Duration::from_secs(10),
        || async { (unix_now() > exp + 1).then_some(()) },
    )
    .await
    .unwrap();
    let before = reached(&stack);
    for _ in 0..3 {
        let response = mcp(&stack, Some(&format!("Bearer {access}")), &[]).await;
        refused(
            "revoked, past exp, inside the leeway",
            response,
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        )
        .await;
    }
    assert_eq!(
        reached(&stack),
        before,
        "a revoked token reached the MCP server"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_stays_refused_past_its_exp_per_request() {
    a_revoked_token_stays_refused_past_its_exp(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_stays_refused_past_its_exp_fast_mode() {
    a_revoked_token_stays_refused_past_its_exp(true).await;
}

/// Hardening 12: identity headers MCP servers already trust (the seed's ForwardAuth
/// `X-User-*`, `X-Forwarded-User`, `Remote-User`…) never pass from the client; a service that
/// reads the seed's headers gets them from the gateway.
async fn identity_headers_servers_trust_are_set_by_the_gateway_only(fast_mode: bool) {
    let (stack, _github) = hardening_stack(fast_mode, "").await;
    let (access, _, _) = echo_token(&stack).await;
    let forged = [
        ("x-user-id", "1"),
        ("x-user-name", "admin"),
        ("x-user-email", "admin@example.com"),
        ("x-forwarded-user", "admin"),
        ("x-forwarded-email", "admin@example.com"),
        ("x-forwarded-groups", "admins"),
        ("x-auth-request-user", "admin"),
        ("remote-user", "admin"),
        ("x-remote-user", "admin"),
        ("x-mcp-user-id", "1"),
        ("x-mcp-user-login", "admin"),
    ];
    let response = mcp(&stack, Some(&format!("Bearer {access}")), &forged).await;
    assert_eq!(response.status(), StatusCode::OK);
    let seen = stack.echo.as_ref().unwrap().requests();
    let headers = seen.last().unwrap();
    assert_eq!(headers["x-user-id"], "583231", "{headers:?}");
    assert_eq!(headers["x-user-name"], "octocat", "{headers:?}");
    assert_eq!(headers["x-mcp-user-id"], "583231", "{headers:?}");
    assert_eq!(headers["x-mcp-user-login"], "octocat", "{headers:?}");
    for (name, _) in &forged[2..9] {
        assert!(
            !headers.contains_key(*name),
            "{name} reached the server: {headers:?}"
        );
    }
    assert!(!headers.contains_key("authorization"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_headers_servers_trust_are_set_by_the_gateway_only_per_request() {
    identity_headers_servers_trust_are_set_by_the_gateway_only(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_headers_servers_trust_are_set_by_the_gateway_only_fast_mode() {
    identity_headers_servers_trust_are_set_by_the_gateway_only(true).await;
}

/// Hardening 3 and 5: a flood of `/authorize` (each would store a pending authorization in
/// Redis) is cut off per client address after the burst, with a page, before anything is
/// stored — though every request claims another address in `X-Forwarded-For`, which Envoy
/// (no trusted hops) does not let the authserver believe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorize_flood_is_rate_limited_before_it_fills_redis_per_request() {
    an_authorize_flood_is_rate_limited_before_it_fills_redis(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorize_flood_is_rate_limited_before_it_fills_redis_fast_mode() {
    an_authorize_flood_is_rate_limited_before_it_fills_redis(true).await;
}

async fn an_authorize_flood_is_rate_limited_before_it_fills_redis(fast_mode: bool) {
    let (stack, _github) = hardening_stack(fast_mode, "").await;
    let discovered = discover(&stack).await;
    let client_id = register(&discovered).await;
    let url = mcp_auth_e2e::oauth::authorize_url(&discovered, &client_id, &discovered.resource);
    let (mut stored, mut limited) = (0u64, 0);
    let started = std::time::Instant::now();
    let http = Browser::new().http;
    for i in 0..300u32 {
        let forged = format!("203.0.{}.{}", i / 250, i % 250 + 1);
        let response = http
            .get(&url)
            .header("x-forwarded-for", forged)
            .send()
            .await
            .unwrap();
        match response.status() {
            StatusCode::OK => stored += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(response.headers().contains_key("retry-after"));
                limited += 1;
            }
            other => panic!("authorize flood: {other}"),
        }
    }
    // The default limit: 120 a minute per address (two a second), a minute's burst.
    let refilled = 2 * started.elapsed().as_secs() + 2;
    assert!(
        stored <= 120 + refilled,
        "{stored} pending authorizations stored in {:?}",
        started.elapsed()
    );
    assert!(limited > 0 && limited + stored == 300);
}

/// The consent page of a fresh browser for `client_id`, approved: the browser (holding its
/// session cookie) and the URL of the GitHub authorization it was sent to.
async fn approved(
    discovered: &mcp_auth_e2e::oauth::Discovered,
    client_id: &str,
) -> (Browser, String) {
    use mcp_auth_e2e::oauth::{form_field, html_attribute, location};
    let mut browser = Browser::new();
    let page = browser
        .get(&mcp_auth_e2e::oauth::authorize_url(
            discovered,
            client_id,
            &discovered.resource,
        ))
        .await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    let approve = browser
        .post_form(
            &html_attribute(&html, "action"),
            &[
                ("request", &form_field(&html, "request")),
                ("csrf", &form_field(&html, "csrf")),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(approve.status(), StatusCode::SEE_OTHER);
    let github = location(&approve);
    (browser, github)
}

/// `cookie` (`name=BASE64URL(json).MAC`) with `field` of its JSON changed and the MAC kept.
fn tampered(cookie: &str, field: &str, value: Value) -> String {
    let (name, value_part) = cookie.split_once('=').unwrap();
    let (payload, mac) = value_part.split_once('.').unwrap();
    let mut session: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    session[field] = value;
    format!("{name}={}.{mac}", b64(&session))
}

/// Asserts that a sign-in step was refused with a page: a 4xx, and no redirect anywhere
/// (least of all to the client with a code).
async fn refused_page(case: &str, response: reqwest::Response, status: StatusCode) {
    assert_eq!(response.status(), status, "{case}");
    assert!(response.headers().get("location").is_none(), "{case}");
}

/// Sign-ins an attacker tampers with: a forged session cookie at consent or at the GitHub
/// callback, another browser's cookie, no cookie, a GitHub `state` past its 10 minutes; and
/// one authorization code exchanged by many requests at once.
async fn hostile_sign_ins_are_refused(fast_mode: bool) {
    use mcp_auth_e2e::oauth::{form_field, html_attribute};
    let (stack, github) = hardening_stack(fast_mode, "").await;
    let discovered = discover(&stack).await;
    let client_id = register(&discovered).await;

    // At consent: a cookie whose browser id was changed, or that belongs to another browser,
    // does not carry this consent page's CSRF token.
    for (case, edit) in [
        (
            "consent with a tampered browser id",
            Some(("bid", json!("attacker"))),
        ),
        ("consent with another browser's cookie", None),
    ] {
        let mut browser = Browser::new();
        let url = mcp_auth_e2e::oauth::authorize_url(&discovered, &client_id, &discovered.resource);
        let html = browser.get(&url).await.text().await.unwrap();
        let cookie = browser.cookie.clone().unwrap();
        browser.cookie = Some(match &edit {
            Some((field, value)) => tampered(&cookie, field, value.clone()),
            None => {
                let mut other = Browser::new();
                other.get(&url).await;
                other.cookie.unwrap()
            }
        });
        let response = browser
            .post_form(
                &html_attribute(&html, "action"),
                &[
                    ("request", &form_field(&html, "request")),
                    ("csrf", &form_field(&html, "csrf")),
                    ("decision", "approve"),
                ],
            )
            .await;
        refused_page(case, response, StatusCode::FORBIDDEN).await;
    }

    // At the callback: the cookie must be the one that started this sign-in, unchanged.
    let callback_of = |github_url: &str| {
        let state = params(github_url)["state"].clone();
        format!(
            "{}/login/callback?code=fake-code&state={state}",
            stack.issuer()
        )
    };
    for (case, edit) in [
        (
            "callback with a tampered browser id",
            Some(("bid", json!("attacker"))),
        ),
        (
            "callback with a forged signed-in user",
            Some(("sub", json!("1"))),
        ),
        ("callback without the cookie", None),
    ] {
        let (mut browser, github_url) = approved(&discovered, &client_id).await;
        let cookie = browser.cookie.clone().unwrap();
        browser.cookie = edit.map(|(field, value)| tampered(&cookie, field, value));
        let response = browser.get(&callback_of(&github_url)).await;
        refused_page(case, response, StatusCode::FORBIDDEN).await;
    }

    // The GitHub `state` lives at most 10 minutes: past that, the callback is refused.
    let (mut browser, github_url) = approved(&discovered, &client_id).await;
    let state = params(&github_url)["state"].clone();
    let key = mcp_auth_proto::store::KeySpace::new("e2e:")
        .authorization_request(&mcp_auth_authserver::secret::digest(&state));
    let mut redis = stack.redis.conn().await;
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!((1..=600).contains(&ttl), "the state lives {ttl} s");
    let _: i64 = redis::cmd("PEXPIRE")
        .arg(&key)
        .arg(1)
        .query_async(&mut redis)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let at_github = browser.get(&github_url).await;
    let response = browser
        .get(&mcp_auth_e2e::oauth::location(&at_github))
        .await;
    refused_page(
        "a GitHub state past 10 minutes",
        response,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let _ = github;

    // One code, eight exchanges at once: exactly one gets tokens; the replays revoke them.
    let back = params(&sign_in(&stack, &discovered, &client_id).await);
    let exchanges = (0..8).map(|_| exchange(&discovered, &client_id, &back["code"], VERIFIER));
    let results = futures::future::join_all(exchanges).await;
    let winners: Vec<&Value> = results
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for (status, body) in results
        .iter()
        .filter(|(status, _)| *status != StatusCode::OK)
    {
        assert_eq!(*status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], "invalid_grant", "{body}");
    }
    let access = winners[0]["access_token"].as_str().unwrap();
    mcp_auth_e2e::poll::until(
        "the replayed code's tokens to be revoked",
        std::time::Duration::from_secs(1),
        || async {
            (mcp_auth_e2e::oauth::mcp_status(&stack, access).await == StatusCode::UNAUTHORIZED)
                .then_some(())
        },
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_sign_ins_are_refused_per_request() {
    hostile_sign_ins_are_refused(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_sign_ins_are_refused_fast_mode() {
    hostile_sign_ins_are_refused(true).await;
}

/// No component logs a credential: the in-process authserver and ext_authz at `trace`, Envoy
/// at `info` with its access log and the filter at `debug`, through a whole sign-in, MCP calls,
/// a forged token, a refresh, introspection and revocation.
async fn no_log_line_holds_a_secret(fast_mode: bool) {
    mcp_auth_e2e::log_capture::install();
    let (stack, github) = Stack::start_with_github(
        FakeUser::new(583231, "octocat"),
        StackOptions {
            header_echo: true,
            fast_mode,
            verbose_logs: true,
            extra_config: "tokens: { refresh_reuse_grace: 0s }".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let discovered = mcp_auth_e2e::oauth::discover_at(&stack.url(ECHO), stack.issuer()).await;
    let client_id = register(&discovered).await;
    let back = params(&sign_in(&stack, &discovered, &client_id).await);
    let code = back["code"].clone();
    let (status, first) = exchange(&discovered, &client_id, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let access = first["access_token"].as_str().unwrap().to_owned();
    let refresh = first["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(
        mcp(&stack, Some(&format!("Bearer {access}")), &[])
            .await
            .status(),
        StatusCode::OK
    );
    let (input, _) = access.rsplit_once('.').unwrap();
    let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode([9u8; 64]));
    let response = mcp(&stack, Some(&format!("Bearer {forged}")), &[]).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (status, second) = mcp_auth_e2e::oauth::refresh(&discovered, &client_id, &refresh).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let access2 = second["access_token"].as_str().unwrap().to_owned();
    let refresh2 = second["refresh_token"].as_str().unwrap().to_owned();
    // The old refresh token again: a replay, which revokes the grant (and is logged).
    let (status, _) = mcp_auth_e2e::oauth::refresh(&discovered, &client_id, &refresh).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    mcp_auth_e2e::oauth::introspect(&discovered, &client_id, &access2).await;
    mcp_auth_e2e::oauth::revoke(&discovered, &client_id, &refresh2).await;
    let response = mcp(&stack, Some(&format!("Bearer {access2}")), &[]).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // The check can fail: the components did log this flow (Envoy flushes its access log
    // about once a second).
    mcp_auth_e2e::poll::until(
        "Envoy's access log of the token request",
        std::time::Duration::from_secs(5),
        || async { stack.envoy.log().contains("\"POST /token ").then_some(()) },
    )
    .await
    .unwrap_or_else(|_| {
        panic!(
            "{}",
            stack
                .envoy
                .log()
                .lines()
                .rev()
                .take(40)
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    let logs = format!(
        "{}\n{}",
        mcp_auth_e2e::log_capture::contents(),
        stack.envoy.log()
    );
    for needle in [
        "tokens issued",
        "refresh token reused",
        "refused: invalid token",
    ] {
        assert!(logs.contains(needle), "nothing logged about {needle}");
    }
    let mut secrets: Vec<(&str, String)> = vec![
        ("authorization code", code),
        ("PKCE verifier", VERIFIER.to_owned()),
        ("refresh token", refresh),
        ("rotated refresh token", refresh2),
    ];
    for (name, jwt) in [
        ("access token", &access),
        ("refreshed access token", &access2),
        ("forged token", &forged),
    ] {
        secrets.push((name, jwt.clone()));
        secrets.push((name, jwt.rsplit('.').next().unwrap().to_owned()));
    }
    for token in github.issued_tokens() {
        secrets.push(("GitHub access token", token));
    }
    for (name, secret) in secrets {
        assert!(!logs.contains(&secret), "a log line holds the {name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_log_line_holds_a_secret_per_request() {
    no_log_line_holds_a_secret(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_log_line_holds_a_secret_fast_mode() {
    no_log_line_holds_a_secret(true).await;
}

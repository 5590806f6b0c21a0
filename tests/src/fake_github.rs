//! A fake GitHub for tests: GitHub's real paths and JSON on a loopback port.
//!
//! - `GET /login/oauth/authorize` auto-approves, as GitHub does for an OAuth app the user
//!   already authorized: it redirects (302) straight back to `redirect_uri` with `code` and
//!   `state`, as the user signed in with [`FakeGitHub::sign_in`].
//! - `POST /login/oauth/access_token` answers JSON with `Accept: application/json` and
//!   form-encoded otherwise, errors included with status 200 (`bad_verification_code`,
//!   `incorrect_client_credentials`, ...), as GitHub does. It checks the client credentials,
//!   single use of the code, `redirect_uri`, and PKCE S256.
//! - `GET /user`, `/user/orgs`, `/user/teams` (`per_page`/`page` pagination, `Bearer` or
//!   `token` authorization, a `User-Agent` required), also under `/api/v3` as on GitHub
//!   Enterprise Server.
//!
//! Point the authserver at it with [`FakeGitHub::env`]. It is a plain HTTP/1.1 server on
//! tokio (one request per connection), so it needs nothing beyond what the harness has; the
//! task stops when the handle is dropped.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use reqwest::Url;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// A GitHub account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeUser {
    pub id: u64,
    pub login: String,
    pub orgs: Vec<String>,
    /// `org/team-slug`.
    pub teams: Vec<String>,
}

impl FakeUser {
    pub fn new(id: u64, login: &str) -> Self {
        Self {
            id,
            login: login.to_owned(),
            orgs: Vec::new(),
            teams: Vec::new(),
        }
    }

    pub fn in_org(mut self, org: &str) -> Self {
        self.orgs.push(org.to_owned());
        self
    }

    pub fn in_team(mut self, org_slash_team: &str) -> Self {
        self.teams.push(org_slash_team.to_owned());
        self
    }
}

struct PendingCode {
    user: FakeUser,
    redirect_uri: String,
    code_challenge: Option<String>,
}

#[derive(Default)]
struct Shared {
    client_id: String,
    client_secret: String,
    signed_in: Mutex<Option<FakeUser>>,
    codes: Mutex<HashMap<String, PendingCode>>,
    tokens: Mutex<HashMap<String, FakeUser>>,
    calls: Mutex<Vec<String>>,
    counter: Mutex<u64>,
}

impl Shared {
    fn next(&self, prefix: &str) -> String {
        let mut counter = self.counter.lock().unwrap_or_else(|e| e.into_inner());
        *counter += 1;
        let noise = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        format!("{prefix}_{noise:08x}{:08x}", *counter)
    }
}

/// The running fake.
pub struct FakeGitHub {
    /// `http://127.0.0.1:<port>`: the web base URL, and the API base URL on github.com's layout.
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeGitHub {
    /// Starts a fake GitHub with one OAuth app.
    pub async fn start(client_id: &str, client_secret: &str) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            ..Shared::default()
        });
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let serving = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(handle(stream, serving.clone()));
            }
        });
        Ok(Self { url, shared, task })
    }

    /// The user signed in at GitHub in "the browser": authorize requests approve as them.
    pub fn sign_in(&self, user: FakeUser) {
        *self
            .shared
            .signed_in
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(user);
    }

    /// The API base URL on GitHub Enterprise Server's layout.
    pub fn ghes_api_url(&self) -> String {
        format!("{}/api/v3", self.url)
    }

    /// `GITHUB_*` variables pointing at this fake (github.com layout).
    pub fn env(&self) -> HashMap<String, String> {
        [
            ("GITHUB_URL", self.url.clone()),
            ("GITHUB_API_URL", self.url.clone()),
            ("GITHUB_CLIENT_ID", self.shared.client_id.clone()),
            ("GITHUB_CLIENT_SECRET", self.shared.client_secret.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// `METHOD /path` of every request served, in order (queries omitted).
    pub fn calls(&self) -> Vec<String> {
        self.shared
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Every access token this fake issued.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.shared
            .tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }
}

/// A parsed request.
struct Request {
    method: String,
    url: Url,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// A response to write.
struct Response {
    status: u16,
    content_type: &'static str,
    location: Option<String>,
    body: String,
}

impl Response {
    fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            content_type: "application/json; charset=utf-8",
            location: None,
            body: body.to_string(),
        }
    }

    fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            content_type: "text/html; charset=utf-8",
            location: None,
            body: body.to_owned(),
        }
    }
}

async fn handle(mut stream: TcpStream, shared: Arc<Shared>) {
    let response = match read_request(&mut stream).await {
        Some(request) => route(&shared, request),
        None => Response::text(400, "bad request"),
    };
    let reason = match response.status {
        200 => "OK",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        _ => "Not Found",
    };
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n",
        response.status,
        response.content_type,
        response.body.len()
    );
    if let Some(location) = &response.location {
        head.push_str(&format!("location: {location}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(response.body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?.to_owned();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length.min(64 * 1024) {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let url = Url::parse(&format!("http://fake{target}")).ok()?;
    Some(Request {
        method,
        url,
        headers,
        body,
    })
}

fn route(shared: &Shared, request: Request) -> Response {
    let path = request.url.path().to_owned();
    let api_path = path.strip_prefix("/api/v3").unwrap_or(&path).to_owned();
    shared
        .calls
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(format!("{} {api_path}", request.method));
    match (request.method.as_str(), path.as_str()) {
        ("GET", "/login/oauth/authorize") => authorize(shared, &request),
        ("POST", "/login/oauth/access_token") => access_token(shared, &request),
        ("GET", _) if api_path == "/user" => with_user(shared, &request, |user| {
            Response::json(
                200,
                json!({
                    "login": user.login,
                    "id": user.id,
                    "node_id": format!("MDQ6VXNlcj{}", user.id),
                    "type": "User",
                    "site_admin": false,
                    "name": null,
                }),
            )
        }),
        ("GET", _) if api_path == "/user/orgs" => with_user(shared, &request, |user| {
            let all: Vec<Value> = user
                .orgs
                .iter()
                .enumerate()
                .map(|(i, login)| json!({"login": login, "id": 1000 + i, "description": null}))
                .collect();
            Response::json(200, Value::Array(paginate(&all, &request.url)))
        }),
        ("GET", _) if api_path == "/user/teams" => with_user(shared, &request, |user| {
            let all: Vec<Value> = user
                .teams
                .iter()
                .enumerate()
                .filter_map(|(i, team)| team.split_once('/').map(|(org, slug)| (i, org, slug)))
                .map(|(i, org, slug)| {
                    json!({
                        "id": 2000 + i,
                        "slug": slug,
                        "name": slug,
                        "organization": {"login": org, "id": 1000 + i},
                    })
                })
                .collect();
            Response::json(200, Value::Array(paginate(&all, &request.url)))
        }),
        _ => Response::json(404, json!({"message": "Not Found"})),
    }
}

fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn authorize(shared: &Shared, request: &Request) -> Response {
    let url = &request.url;
    if param(url, "client_id").as_deref() != Some(shared.client_id.as_str()) {
        return Response::text(404, "Not Found");
    }
    let Some(user) = shared
        .signed_in
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
    else {
        return Response::text(200, "<html>Sign in to GitHub</html>");
    };
    let Some(redirect_uri) = param(url, "redirect_uri") else {
        return Response::text(400, "this fake needs redirect_uri");
    };
    let challenge = param(url, "code_challenge");
    if challenge.is_some() && param(url, "code_challenge_method").as_deref() != Some("S256") {
        return Response::text(400, "only S256");
    }
    let Ok(mut back) = Url::parse(&redirect_uri) else {
        return Response::text(400, "bad redirect_uri");
    };
    let code = shared.next("code");
    shared
        .codes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(
            code.clone(),
            PendingCode {
                user,
                redirect_uri,
                code_challenge: challenge,
            },
        );
    back.query_pairs_mut().append_pair("code", &code);
    if let Some(state) = param(url, "state") {
        back.query_pairs_mut().append_pair("state", &state);
    }
    Response {
        status: 302,
        content_type: "text/html; charset=utf-8",
        location: Some(back.into()),
        body: String::new(),
    }
}

fn access_token(shared: &Shared, request: &Request) -> Response {
    let form = Url::parse(&format!(
        "http://fake/?{}",
        String::from_utf8_lossy(&request.body)
    ))
    .ok();
    let field = |name: &str| form.as_ref().and_then(|f| param(f, name));
    let wants_json = request
        .headers
        .get("accept")
        .is_some_and(|v| v.contains("application/json"));
    let reply = |pairs: Vec<(&str, String)>| -> Response {
        if wants_json {
            let map: serde_json::Map<String, Value> = pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), Value::String(v)))
                .collect();
            Response::json(200, Value::Object(map))
        } else {
            // The query serializer of `Url` is the form-urlencoded one GitHub's body uses.
            let body = Url::parse("http://fake/")
                .map(|mut url| {
                    url.query_pairs_mut().extend_pairs(pairs);
                    url.query().unwrap_or_default().to_owned()
                })
                .unwrap_or_default();
            Response {
                status: 200,
                content_type: "application/x-www-form-urlencoded",
                location: None,
                body,
            }
        }
    };
    let error = |code: &str, description: &str| {
        reply(vec![
            ("error", code.to_owned()),
            ("error_description", description.to_owned()),
            (
                "error_uri",
                "https://docs.github.com/apps/troubleshooting".to_owned(),
            ),
        ])
    };
    if field("client_id").as_deref() != Some(shared.client_id.as_str())
        || field("client_secret").as_deref() != Some(shared.client_secret.as_str())
    {
        return error(
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
        );
    }
    let pending = field("code").and_then(|c| {
        shared
            .codes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&c)
    });
    let Some(pending) = pending else {
        return error(
            "bad_verification_code",
            "The code passed is incorrect or expired.",
        );
    };
    if field("redirect_uri").is_some_and(|r| r != pending.redirect_uri) {
        return error(
            "redirect_uri_mismatch",
            "The redirect_uri MUST match the registered callback URL for this application.",
        );
    }
    if let Some(challenge) = &pending.code_challenge {
        let verifier = field("code_verifier").unwrap_or_default();
        if base64url(&sha256(verifier.as_bytes())) != *challenge {
            return error(
                "invalid_grant",
                "The code_verifier does not match the code_challenge.",
            );
        }
    }
    let token = shared.next("gho");
    shared
        .tokens
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(token.clone(), pending.user);
    reply(vec![
        ("access_token", token),
        ("token_type", "bearer".to_owned()),
        ("scope", "read:org".to_owned()),
    ])
}

fn with_user(
    shared: &Shared,
    request: &Request,
    answer: impl FnOnce(&FakeUser) -> Response,
) -> Response {
    if !request.headers.contains_key("user-agent") {
        // GitHub refuses API requests without a User-Agent.
        return Response::text(403, "Request forbidden by administrative rules.");
    }
    let token = request
        .headers
        .get("authorization")
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("token "))
        })
        .unwrap_or_default();
    let user = shared
        .tokens
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(token)
        .cloned();
    match user {
        Some(user) => answer(&user),
        None => Response::json(
            401,
            json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"}),
        ),
    }
}

fn paginate(items: &[Value], url: &Url) -> Vec<Value> {
    let number = |name: &str, default: usize| {
        param(url, name)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(default)
    };
    let per_page = number("per_page", 30).clamp(1, 100);
    let page = number("page", 1).max(1);
    items
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .cloned()
        .collect()
}

/// base64url without padding (RFC 4648 §5).
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// SHA-256 (FIPS 180-4), for the PKCE check: the harness has no crypto crate, and a fake
/// that skipped the check would let a broken verifier pass.
fn sha256(message: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut data = message.to_vec();
    data.push(0x80);
    while data.len() % 64 != 56 {
        data.push(0);
    }
    data.extend_from_slice(&((message.len() as u64) * 8).to_be_bytes());
    for block in data.chunks(64) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let mut v = h;
        for i in 0..64 {
            let s1 = v[4].rotate_right(6) ^ v[4].rotate_right(11) ^ v[4].rotate_right(25);
            let ch = (v[4] & v[5]) ^ (!v[4] & v[6]);
            let t1 = v[7]
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = v[0].rotate_right(2) ^ v[0].rotate_right(13) ^ v[0].rotate_right(22);
            let maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
            let t2 = s0.wrapping_add(maj);
            v = [
                t1.wrapping_add(t2),
                v[0],
                v[1],
                v[2],
                v[3].wrapping_add(t1),
                v[4],
                v[5],
                v[6],
            ];
        }
        for (state, value) in h.iter_mut().zip(v) {
            *state = state.wrapping_add(value);
        }
    }
    let mut out = [0u8; 32];
    for (i, word) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&word.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_of_the_rfc7636_example() {
        assert_eq!(
            base64url(&sha256(b"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(
            base64url(&sha256(b"")),
            "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
        );
    }
}

//! Drives an in-process ext_authz with a real tonic client, and writes Redis like the
//! authserver does.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest, CheckResponse};
use mcp_auth_proto::handoff::{HANDOFF_HEADER, HANDOFF_KEY_ENV, Handoff, HandoffKey};
use mcp_auth_proto::store::{KeySpace, RevocationEvent, RevocationTarget};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use mcp_auth_testkit::RedisServer;

pub const PREFIX: &str = "test:";
/// The hand-off secret the filter and this ext_authz share.
pub const HANDOFF_SECRET: &str = "ext-authz-integration-tests-handoff-secret";
/// `tokens.access_token` in the test config.
pub const TTL: u64 = 600;

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn config_yaml(redis_url: &str, grace: &str, resync: &str, global_users: &str) -> String {
    format!(
        "issuer: http://127.0.0.1:8080\n\
         redis: {{ url: \"{redis_url}\", key_prefix: \"{PREFIX}\" }}\n\
         ext_authz: {{ redis_grace: {grace}, resync_interval: {resync} }}\n\
         tokens: {{ access_token: {TTL}s }}\n\
         access: {{ users: {global_users} }}\n\
         services:\n\
         \x20 - name: svc\n    upstream: {{ url: http://127.0.0.1:3001/mcp }}\n\
         \x20 - name: team-only\n    upstream: {{ url: http://127.0.0.1:3002/mcp }}\n\
         \x20   access: {{ teams: [acme/mcp] }}\n"
    )
}

/// `config` in a `gateway.yaml` of a new temporary directory (removed when it is dropped).
fn config_file(config: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.yaml");
    std::fs::write(&path, config).unwrap();
    (dir, path)
}

/// An in-process ext_authz on 127.0.0.1:0, stopped on drop.
pub struct ExtAuthz {
    addr: SocketAddr,
    pub config_path: PathBuf,
    _dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<Result<(), mcp_auth_ext_authz::ServeError>>,
}

impl ExtAuthz {
    pub async fn start(config: &str) -> Self {
        let env = HashMap::from([(HANDOFF_KEY_ENV.to_owned(), HANDOFF_SECRET.to_owned())]);
        let (dir, config_path) = config_file(config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(mcp_auth_ext_authz::serve(
            config_path.clone(),
            Arc::new(env),
            listener,
            std::future::pending(),
        ));
        Self {
            addr,
            config_path,
            _dir: dir,
            task,
        }
    }

    /// Why an ext_authz with `config` and `env` as its whole environment refuses to start
    /// (it must stop by itself within 5 s).
    pub async fn refusal(
        config: &str,
        env: HashMap<String, String>,
    ) -> mcp_auth_ext_authz::ServeError {
        let (_dir, config_path) = config_file(config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let served =
            mcp_auth_ext_authz::serve(config_path, Arc::new(env), listener, std::future::pending());
        tokio::time::timeout(Duration::from_secs(5), served)
            .await
            .expect("ext_authz started, although it should have refused")
            .expect_err("serve ended without an error")
    }

    pub async fn channel(&self) -> Channel {
        tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub async fn client(&self) -> AuthorizationClient<Channel> {
        AuthorizationClient::new(self.channel().await)
    }

    pub async fn health(&self, service: &str) -> ServingStatus {
        let response = HealthClient::new(self.channel().await)
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap();
        ServingStatus::try_from(response.into_inner().status).unwrap()
    }

    pub async fn wait_serving(&self) {
        self.wait_health(ServingStatus::Serving).await;
    }

    /// Waits until both health services report `status` (the health task polls the state,
    /// so it lags a change by up to its interval).
    pub async fn wait_health(&self, status: ServingStatus) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.health("").await != status {
            assert!(
                Instant::now() < deadline,
                "ext_authz never became {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            self.health(mcp_auth_ext_authz::AUTHORIZATION_SERVICE).await,
            status
        );
    }
}

impl Drop for ExtAuthz {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A token as the filter hands it on.
#[derive(Clone)]
pub struct Token {
    pub service: &'static str,
    pub jti: String,
    pub grant: String,
    pub sub: String,
    pub client: String,
    pub exp: u64,
    pub iat: u64,
}

impl Token {
    /// Issued now.
    pub fn new(jti: &str) -> Self {
        Self {
            service: "svc",
            jti: jti.into(),
            grant: "grant-1".into(),
            sub: "42".into(),
            client: "client-1".into(),
            exp: unix_now() + TTL,
            iat: unix_now(),
        }
    }

    /// The Check Envoy sends for this token's request after the filter admitted it.
    pub fn request(&self) -> CheckRequest {
        let key = HandoffKey::from_secret(HANDOFF_KEY_ENV, HANDOFF_SECRET).unwrap();
        self.request_signed_with(&key)
    }

    /// [`Token::request`] with the hand-off signed with `key`.
    pub fn request_signed_with(&self, key: &HandoffKey) -> CheckRequest {
        let handoff = Handoff {
            service: self.service.into(),
            subject: self.sub.as_str().into(),
            login: "alice".into(),
            client_id: self.client.as_str().into(),
            grant_id: self.grant.as_str().into(),
            token_id: self.jti.as_str().into(),
            scope: "mcp".into(),
            expires_at: self.exp,
            issued_at: self.iat,
        };
        let mut headers = HashMap::new();
        headers.insert(HANDOFF_HEADER.to_owned(), key.sign(&handoff.encode()));
        headers.insert("authorization".into(), "Bearer secret".into());
        // A client-sent identity header: must be overwritten.
        headers.insert("x-mcp-user-id".into(), "admin".into());
        check_request(headers)
    }
}

pub fn check_request(headers: HashMap<String, String>) -> CheckRequest {
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                http: Some(HttpRequest {
                    method: "POST".into(),
                    path: "/svc/mcp".into(),
                    headers,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    Allowed,
    Denied(u32),
    Unavailable,
}

pub async fn check(client: &mut AuthorizationClient<Channel>, request: CheckRequest) -> Answer {
    match client.check(request).await {
        Ok(response) => answer(&response.into_inner()),
        Err(status) => {
            assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
            Answer::Unavailable
        }
    }
}

pub fn answer(response: &CheckResponse) -> Answer {
    let code = response.status.as_ref().map_or(-1, |s| s.code);
    match &response.http_response {
        Some(HttpResponse::OkResponse(_)) => {
            assert_eq!(code, 0);
            Answer::Allowed
        }
        Some(HttpResponse::DeniedResponse(denied)) => {
            assert_ne!(code, 0, "a denied response must not carry status OK");
            Answer::Denied(denied.status.as_ref().map_or(0, |s| s.code as u32))
        }
        other => panic!("unexpected http_response {other:?}"),
    }
}

/// Polls `check` until it gives `want`, within `limit`; returns how long it took.
pub async fn until(
    client: &mut AuthorizationClient<Channel>,
    request: &CheckRequest,
    want: Answer,
    limit: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        let got = check(client, request.clone()).await;
        if got == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "still {got:?} after {limit:?}, wanted {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub async fn redis(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Writes a revocation like the authserver: the key with a TTL, then (optionally) the event.
pub async fn revoke(
    conn: &mut redis::aio::MultiplexedConnection,
    target: RevocationTarget,
    revoked_at: u64,
    publish: bool,
) {
    let keys = KeySpace::new(PREFIX);
    let event = RevocationEvent {
        target,
        revoked_at,
        expires_at: unix_now() + TTL + 60,
    };
    let json = serde_json::to_string(&event).unwrap();
    let () = redis::cmd("SET")
        .arg(keys.revocation(&event.target))
        .arg(&json)
        .arg("EX")
        .arg(TTL + 60)
        .query_async(conn)
        .await
        .unwrap();
    if publish {
        let _: i64 = redis::cmd("PUBLISH")
            .arg(keys.revocation_channel())
            .arg(&json)
            .query_async(conn)
            .await
            .unwrap();
    }
}

//! The whole gateway for one test: Redis, the authserver and ext_authz in-process, an MCP
//! server, and Envoy with the filter, all from one gateway config written for the test.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use mcp_auth_gateway::GatewayConfig;
use mcp_auth_gateway::env::Env;
use mcp_auth_gateway::envoy::{RenderOptions, render};
use tokio::task::JoinHandle;

use crate::RedisServer;
use crate::envoy::{Envoy, ReservedPort};
use crate::fake_github::{FakeGitHub, FakeUser};
use crate::header_echo::HeaderEcho;
use crate::mcp_server::McpServer;
use crate::{poll, tools};

/// What a test changes about the default stack.
#[derive(Debug, Clone, Default)]
pub struct StackOptions {
    /// Environment the authserver and ext_authz see (GitHub settings, allow-lists).
    pub env: HashMap<String, String>,
    /// Also run a second service, `echo` at `/echo/mcp`, whose upstream is a [`HeaderEcho`]
    /// that records what reaches it.
    pub header_echo: bool,
    /// More settings of the `echo` service, as YAML lines indented by four spaces.
    pub echo_config: String,
    /// Start Envoy before the authserver (which then runs only after
    /// [`Stack::start_authserver`]), as when the authserver is down while Envoy starts.
    pub authserver_later: bool,
    /// A path for the issuer (`/auth` → `http://127.0.0.1:<port>/auth`).
    pub issuer_path: String,
    /// More `services:` entries, as YAML list items indented by two spaces.
    pub extra_services: String,
    /// More top-level gateway config (e.g. `tokens:` or `filter:` settings), as YAML.
    pub extra_config: String,
    /// Run ext_authz in fast mode (`ext_authz.mode: fast`, a 1 s `stream_loss_grace`).
    pub fast_mode: bool,
    /// Envoy worker threads (each with its own filter VM); 0 means 1.
    pub envoy_workers: u32,
    /// More `listener:` settings, as YAML flow-mapping entries (`max_connections: 4`).
    pub listener_config: String,
    /// More `authserver:` settings, as YAML flow-mapping entries (`signing_alg: ES256`).
    pub authserver_config: String,
    /// Envoy writes its access log and logs at `info`, the filter at `debug`.
    pub verbose_logs: bool,
}

/// `, entries` for a YAML flow mapping, or nothing.
fn more_entries(entries: &str) -> String {
    if entries.is_empty() {
        String::new()
    } else {
        format!(", {entries}")
    }
}

fn spawn_ext_authz(
    config_path: &std::path::Path,
    env: &Arc<dyn Env>,
    listener: tokio::net::TcpListener,
) -> JoinHandle<()> {
    let (path, env) = (config_path.to_owned(), Arc::clone(env));
    tokio::spawn(async move {
        if let Err(err) =
            mcp_auth_ext_authz::serve(path, env, listener, std::future::pending()).await
        {
            eprintln!("ext-authz stopped: {err}");
        }
    })
}

/// A running stack. Dropping it stops everything.
pub struct Stack {
    pub envoy: Envoy,
    pub config: GatewayConfig,
    pub config_path: PathBuf,
    pub authserver: SocketAddr,
    pub ext_authz: SocketAddr,
    pub upstream: McpServer,
    /// The `echo` service's upstream, when [`StackOptions::header_echo`] asked for it.
    pub echo: Option<HeaderEcho>,
    pub redis: RedisServer,
    /// Envoy's worker threads.
    envoy_workers: u32,
    env: Arc<dyn Env>,
    authserver_task: Option<JoinHandle<()>>,
    ext_authz_task: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Stack {
    pub async fn start() -> Result<Self> {
        Self::start_with(StackOptions::default()).await
    }

    /// A stack whose users sign in at a fake GitHub, where `user` is signed in; the fake's
    /// settings join `options.env` (which wins where both set a variable).
    pub async fn start_with_github(
        user: FakeUser,
        mut options: StackOptions,
    ) -> Result<(Self, FakeGitHub)> {
        let github = FakeGitHub::start("e2e-github-app", "e2e-github-secret").await?;
        github.sign_in(user);
        let mut env = github.env();
        env.extend(std::mem::take(&mut options.env));
        options.env = env;
        Ok((Self::start_with(options).await?, github))
    }

    pub async fn start_with(options: StackOptions) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let redis = RedisServer::start();
        let upstream = McpServer::everything().await?;
        let echo = if options.header_echo {
            Some(HeaderEcho::start().await?)
        } else {
            None
        };
        let echo_service = echo.as_ref().map_or_else(String::new, |echo| {
            format!(
                "  - name: echo\n    upstream: {{ url: \"{}\" }}\n{}",
                echo.url(),
                options.echo_config
            )
        });
        let port = ReservedPort::new()?;
        let authserver_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let ext_authz_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let authserver = authserver_listener.local_addr()?;
        let ext_authz = ext_authz_listener.local_addr()?;

        let yaml = format!(
            r#"issuer: http://127.0.0.1:{port}{issuer_path}
listener: {{ address: "127.0.0.1:{port}"{listener_config} }}
admin: {{ address: "127.0.0.1:0" }}
redis: {{ url: "{redis}", key_prefix: "e2e:" }}
authserver: {{ listen: "{authserver}", keys_dir: "{keys}"{authserver_config} }}
ext_authz: {{ listen: "{ext_authz}"{ext_authz_mode} }}
access: {{ users: ["*"] }}
{extra_config}
services:
  - name: everything
    upstream: {{ url: "{upstream}" }}
{echo_service}{extra_services}"#,
            port = port.port(),
            redis = redis.url(),
            keys = dir.path().join("keys").display(),
            upstream = upstream.url(),
            issuer_path = options.issuer_path,
            extra_config = options.extra_config,
            ext_authz_mode = if options.fast_mode {
                ", mode: fast, stream_loss_grace: 1s"
            } else {
                ""
            },
            extra_services = options.extra_services,
            listener_config = more_entries(&options.listener_config),
            authserver_config = more_entries(&options.authserver_config),
        );
        let config_path = dir.path().join("gateway.yaml");
        std::fs::write(&config_path, &yaml)?;
        let env: Arc<dyn Env> = Arc::new(options.env.clone());
        let config = GatewayConfig::load_with_env(&config_path, &*env)?;

        let authserver_task = if options.authserver_later {
            // Free the port now; start_authserver binds it again.
            drop(authserver_listener);
            None
        } else {
            Some(spawn_authserver(&config, &env, authserver_listener).await?)
        };
        let ext_authz_task = spawn_ext_authz(&config_path, &env, ext_authz_listener);

        let bootstrap = render(
            &config,
            &RenderOptions {
                wasm_path: tools::filter_wasm()?,
                access_log: options.verbose_logs,
            },
        )
        .context("rendering the Envoy bootstrap")?;
        let envoy = Envoy::start_logging(
            &bootstrap,
            port,
            options.envoy_workers.max(1),
            options.verbose_logs,
        )
        .await?;
        let stack = Self {
            envoy,
            config,
            config_path,
            authserver,
            ext_authz,
            upstream,
            echo,
            redis,
            envoy_workers: options.envoy_workers.max(1),
            env,
            authserver_task,
            ext_authz_task,
            _dir: dir,
        };
        if stack.authserver_task.is_some() {
            stack.wait_for_keys().await?;
        }
        Ok(stack)
    }

    /// Starts the authserver of a stack made with [`StackOptions::authserver_later`].
    pub async fn start_authserver(&mut self) -> Result<()> {
        let listener = tokio::net::TcpListener::bind(self.authserver).await?;
        self.authserver_task = Some(spawn_authserver(&self.config, &self.env, listener).await?);
        Ok(())
    }

    /// Waits until the filter holds the authserver's keys.
    pub async fn wait_for_keys(&self) -> Result<()> {
        let (envoy, config) = (&self.envoy, &self.config);
        // A new connection per probe, which the kernel spreads over Envoy's workers: each
        // worker's filter VM picks the keys up on its own tick.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()?;
        // Envoy is ready before the filter's first JWKS fetch lands (it answers 503 until
        // then, failing closed): wait until a token is judged rather than refused for keys,
        // on enough connections in a row that every worker has answered.
        let probe = format!(
            "{}{}",
            envoy.url(),
            config.services.first().map_or("/", |s| s.path.as_str())
        );
        let in_a_row = 16 * self.envoy_workers;
        poll::until(
            "the filter to hold the JWKS",
            Duration::from_secs(20),
            || async {
                for _ in 0..in_a_row {
                    let response = client.post(&probe).bearer_auth("probe").send().await.ok()?;
                    if response.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
                        return None;
                    }
                }
                Some(())
            },
        )
        .await?;
        Ok(())
    }

    /// Stops ext_authz (its task ends and its listener closes), as if the service went down.
    pub fn stop_ext_authz(&mut self) {
        self.ext_authz_task.abort();
    }

    /// Starts ext_authz again on its address, after [`Stack::stop_ext_authz`].
    pub async fn restart_ext_authz(&mut self) -> Result<()> {
        self.ext_authz_task.abort();
        let listener = tokio::net::TcpListener::bind(self.ext_authz).await?;
        self.ext_authz_task = spawn_ext_authz(&self.config_path, &self.env, listener);
        Ok(())
    }

    /// The authserver's signing-key directory (what `admin rotate-keys` works on).
    pub fn keys_dir(&self) -> PathBuf {
        self.config.authserver.keys_dir.clone()
    }

    /// Signs `claims` as an access token with the authserver's current signing key: how a
    /// test makes tokens the authserver would never issue (expired, foreign audience…).
    pub fn forge_token(&self, claims: &serde_json::Value) -> Result<String> {
        let now = unix_now();
        let keys = mcp_auth_authserver::keys::KeyStore::open(
            &self.keys_dir(),
            self.config.authserver.signing_alg,
            mcp_auth_authserver::keys::KeyTiming::from_config(&self.config),
            now,
        )?;
        Ok(keys.ring().sign_access_token(claims, now)?)
    }

    /// A JWS of `payload` (raw bytes, so duplicate keys and non-UTF-8 survive) under `header`, signed
    /// with the authserver's active key; `alg` and `kid` are that key's unless `header` sets
    /// them.
    pub fn forge_jws(&self, header: &serde_json::Value, payload: &[u8]) -> Result<String> {
        use base64::Engine as _;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let now = unix_now();
        let store = mcp_auth_authserver::keys::KeyStore::open(
            &self.keys_dir(),
            self.config.authserver.signing_alg,
            mcp_auth_authserver::keys::KeyTiming::from_config(&self.config),
            now,
        )?;
        let ring = store.ring();
        let key = ring.signing_key(now).context("no active signing key")?;
        let mut header = header.clone();
        let fields = header
            .as_object_mut()
            .context("the header is not an object")?;
        fields
            .entry("alg")
            .or_insert(mcp_auth_authserver::keys::alg_name(key.alg()).into());
        fields.entry("kid").or_insert(key.kid.clone().into());
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let signature = key.sign(input.as_bytes())?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }

    /// The issuer: Envoy's public URL.
    pub fn issuer(&self) -> &str {
        self.config.issuer_str()
    }

    /// `<issuer><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.envoy.url())
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(task) = &self.authserver_task {
            task.abort();
        }
        self.ext_authz_task.abort();
    }
}

/// Serves the authserver in-process on `listener` and waits until it is healthy.
async fn spawn_authserver(
    config: &GatewayConfig,
    env: &Arc<dyn Env>,
    listener: tokio::net::TcpListener,
) -> Result<JoinHandle<()>> {
    let address = listener.local_addr()?;
    let (config, env) = (config.clone(), Arc::clone(env));
    let task = tokio::spawn(async move {
        if let Err(err) =
            mcp_auth_authserver::serve(config, env, listener, std::future::pending()).await
        {
            eprintln!("authserver stopped: {err}");
        }
    });
    let health = format!("http://{address}/healthz");
    poll::until_ok("authserver /healthz", &health, Duration::from_secs(20)).await?;
    Ok(task)
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

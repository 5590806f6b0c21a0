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
use mcp_auth_gateway::envoy::{RenderOptions, TLS_SDS_FILE, render, render_tls_sds};
use mcp_auth_proto::handoff::HANDOFF_KEY_ENV;
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
    /// Envoy terminates TLS (`listener.tls`) with a certificate for `127.0.0.1` and
    /// `localhost` from a CA made for this stack, the issuer is `https://`, and a plain-http
    /// listener redirects to it ([`Stack::tls`]).
    pub tls: bool,
}

/// The TLS of a stack started with [`StackOptions::tls`].
#[derive(Debug, Clone)]
pub struct StackTls {
    /// The test CA's certificate (PEM), which the stack's clients trust.
    pub ca_pem: String,
    /// The same, as a file (`SSL_CERT_FILE` for a child process).
    pub ca_file: PathBuf,
    /// The listener's certificate chain and key, as `listener.tls` names them.
    pub certificate_chain_file: PathBuf,
    pub private_key_file: PathBuf,
    /// The plain-http listener that redirects to https.
    pub redirect: SocketAddr,
}

/// A test CA and the listener certificate it signed, as files.
struct TestCertificates {
    ca_pem: String,
    ca_file: PathBuf,
    chain_file: PathBuf,
    key_file: PathBuf,
}

impl TestCertificates {
    /// A fresh CA and a certificate for `127.0.0.1` and `localhost`, written into `dir`.
    fn write(dir: &std::path::Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let (ca_pem, ca) = mcp_auth_testkit::test_ca();
        let (chain, key) = mcp_auth_testkit::issue_certificate(&ca, &["127.0.0.1", "localhost"]);
        let certificates = Self {
            ca_file: dir.join("ca.crt"),
            chain_file: dir.join("tls.crt"),
            key_file: dir.join("tls.key"),
            ca_pem,
        };
        std::fs::write(&certificates.ca_file, &certificates.ca_pem)?;
        std::fs::write(&certificates.chain_file, chain)?;
        std::fs::write(&certificates.key_file, key)?;
        Ok(certificates)
    }
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
    listeners: mcp_auth_ext_authz::Listeners,
) -> JoinHandle<()> {
    let (path, env) = (config_path.to_owned(), Arc::clone(env));
    tokio::spawn(async move {
        if let Err(err) =
            mcp_auth_ext_authz::serve(path, env, listeners, std::future::pending()).await
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
    /// Where ext_authz serves its metrics (`GET /metrics`).
    pub ext_authz_metrics: SocketAddr,
    pub upstream: McpServer,
    /// The `echo` service's upstream, when [`StackOptions::header_echo`] asked for it.
    pub echo: Option<HeaderEcho>,
    pub redis: RedisServer,
    /// The listener's TLS, when [`StackOptions::tls`] asked for it.
    pub tls: Option<StackTls>,
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
        let ext_authz_metrics_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let ext_authz_metrics = ext_authz_metrics_listener.local_addr()?;

        let certificates = if options.tls {
            Some(TestCertificates::write(&dir.path().join("tls"))?)
        } else {
            None
        };
        // The redirect listener on port 0: the stack reads its port back from Envoy.
        let listener_tls = certificates.as_ref().map_or_else(String::new, |c| {
            format!(
                ", tls: {{ certificate_chain_file: \"{}\", private_key_file: \"{}\", http_redirect_address: \"127.0.0.1:0\" }}",
                c.chain_file.display(),
                c.key_file.display()
            )
        });
        let yaml = format!(
            r#"issuer: {scheme}://127.0.0.1:{port}{issuer_path}
listener: {{ address: "127.0.0.1:{port}"{listener_config}{listener_tls} }}
admin: {{ address: "127.0.0.1:0" }}
redis: {{ url: "{redis}", key_prefix: "e2e:" }}
authserver: {{ listen: "{authserver}", keys_dir: "{keys}"{authserver_config} }}
ext_authz: {{ listen: "{ext_authz}", metrics_listen: "{ext_authz_metrics}"{ext_authz_mode} }}
access: {{ users: ["*"] }}
{extra_config}
services:
  - name: everything
    upstream: {{ url: "{upstream}" }}
{echo_service}{extra_services}"#,
            scheme = if options.tls { "https" } else { "http" },
            port = port.port(),
            redis = redis.url(),
            keys = dir.path().join("keys").display(),
            upstream = upstream.url(),
            issuer_path = options.issuer_path,
            extra_config = options.extra_config,
            ext_authz_mode = if options.fast_mode {
                ", mode: fast, stream_loss_grace: 1s"
            } else {
                ", mode: per_request"
            },
            extra_services = options.extra_services,
            listener_config = more_entries(&options.listener_config),
            authserver_config = more_entries(&options.authserver_config),
        );
        let config_path = dir.path().join("gateway.yaml");
        std::fs::write(&config_path, &yaml)?;
        // The secret every Envoy of this process gets (Envoy::start).
        let mut env = options.env.clone();
        env.insert(
            HANDOFF_KEY_ENV.to_owned(),
            crate::envoy::handoff_secret().to_owned(),
        );
        let env: Arc<dyn Env> = Arc::new(env);
        let config = GatewayConfig::load_with_env(&config_path, &*env)?;

        let authserver_task = if options.authserver_later {
            // Free the port now; start_authserver binds it again.
            drop(authserver_listener);
            None
        } else {
            Some(spawn_authserver(&config, &env, authserver_listener).await?)
        };
        let ext_authz_task = spawn_ext_authz(
            &config_path,
            &env,
            mcp_auth_ext_authz::Listeners {
                grpc: ext_authz_listener,
                metrics: Some(ext_authz_metrics_listener),
            },
        );

        config.check_listener_files()?;
        let tls_sds_path = dir.path().join(TLS_SDS_FILE);
        if let Some(sds) = render_tls_sds(&config)? {
            std::fs::write(&tls_sds_path, sds)?;
        }
        let bootstrap = render(
            &config,
            &RenderOptions {
                wasm_path: tools::filter_wasm()?,
                access_log: options.verbose_logs,
                tls_sds_path: Some(tls_sds_path),
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
        let tls = match certificates {
            Some(c) => Some(StackTls {
                ca_pem: c.ca_pem,
                ca_file: c.ca_file,
                certificate_chain_file: c.chain_file,
                private_key_file: c.key_file,
                redirect: envoy.listener_address("mcp_gateway_http_redirect").await?,
            }),
            None => None,
        };
        let stack = Self {
            envoy,
            config,
            config_path,
            authserver,
            ext_authz,
            ext_authz_metrics,
            upstream,
            echo,
            redis,
            tls,
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
        // A new connection per probe, which the kernel spreads over Envoy's workers: each
        // worker's filter VM picks the keys up on its own tick.
        let client = self.client_builder()?.pool_max_idle_per_host(0).build()?;
        // Envoy is ready before the filter's first JWKS fetch lands (it answers 503 until
        // then, failing closed): wait until a token is judged rather than refused for keys,
        // on enough connections in a row that every worker has answered.
        let probe = self.url(
            self.config
                .services
                .first()
                .map_or("/", |s| s.path.as_str()),
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
        let listeners = mcp_auth_ext_authz::Listeners {
            grpc: tokio::net::TcpListener::bind(self.ext_authz).await?,
            metrics: Some(tokio::net::TcpListener::bind(self.ext_authz_metrics).await?),
        };
        self.ext_authz_task = spawn_ext_authz(&self.config_path, &self.env, listeners);
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

    /// `<path>` at the issuer's origin: Envoy's public URL (`https://` with
    /// [`StackOptions::tls`]).
    pub fn url(&self, path: &str) -> String {
        format!(
            "{}{path}",
            self.config.issuer.origin().ascii_serialization()
        )
    }

    /// An HTTP client for this stack: it trusts the stack's test CA, and only it, when
    /// Envoy terminates TLS.
    pub fn client(&self) -> Result<reqwest::Client> {
        Ok(self.client_builder()?.build()?)
    }

    fn client_builder(&self) -> Result<reqwest::ClientBuilder> {
        let builder = reqwest::Client::builder();
        Ok(match &self.tls {
            Some(tls) => {
                builder.tls_certs_only([reqwest::Certificate::from_pem(tls.ca_pem.as_bytes())?])
            }
            None => builder,
        })
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

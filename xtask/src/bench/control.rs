//! The bench's control plane: Redis, the fake GitHub, the authserver and ext_authz as the
//! release binaries (so their CPU and memory are their own), and one Envoy rendered from the
//! bench gateway config, through which a real client obtains real tokens. A second ext_authz
//! serves the same config plus an `mcp_policy` ([`super::policy::CONFIG`]) to the policy
//! scenarios alone, so the other scenarios measure what they always did.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use mcp_auth_e2e::RedisServer;
use mcp_auth_e2e::envoy::{Envoy, ReservedPort};
use mcp_auth_e2e::fake_github::{FakeGitHub, FakeUser};
use mcp_auth_e2e::oauth::{self, Discovered};
use mcp_auth_e2e::poll;
use mcp_auth_gateway::GatewayConfig;
use mcp_auth_gateway::envoy::{RenderOptions, render};

use super::policy;
use super::scenarios::SERVICE;

/// A child process killed on drop.
pub struct Service {
    child: Child,
}

impl Service {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Tokens of one signed-in client.
pub struct Session {
    pub discovered: Discovered,
    pub client_id: String,
    pub access_token: String,
    pub refresh_token: String,
}

pub struct ControlPlane {
    pub config: GatewayConfig,
    /// The bootstrap the product renders for `config`, which the scenarios start from.
    pub rendered: String,
    /// The same config rendered with `ext_authz.mode: fast`.
    pub rendered_fast: String,
    /// The config with the policy, in fast mode: its Envoys ask [`Self::policy_ext_authz`].
    pub rendered_policy_fast: String,
    pub gateway: Envoy,
    pub authserver: Service,
    pub ext_authz: Service,
    /// ext_authz reading the config with the policy (same Redis, keys and issuer).
    pub policy_ext_authz: Service,
    pub redis: RedisServer,
    _github: FakeGitHub,
    _dir: tempfile::TempDir,
}

impl ControlPlane {
    /// Starts everything; `bin_dir` holds the release binaries, `wasm` is the filter.
    pub async fn start(bin_dir: &Path, wasm: &Path) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let redis = RedisServer::start();
        let github = FakeGitHub::start("bench-github-app", "bench-github-secret").await?;
        github.sign_in(FakeUser::new(583231, "octocat"));
        let port = ReservedPort::new()?;
        let authserver_addr = free_port()?;
        let keys = dir.path().join("keys");
        let yaml = |ext_authz: SocketAddr, extra: &str| {
            bench_config(
                &ConfigParams {
                    port: port.port(),
                    redis: &redis.url(),
                    authserver: authserver_addr,
                    ext_authz,
                    keys: &keys,
                },
                extra,
            )
        };
        let env = github.env();
        let write = |name: &str, yaml: String| -> Result<(PathBuf, GatewayConfig)> {
            let path = dir.path().join(name);
            std::fs::write(&path, yaml)?;
            let config = GatewayConfig::load_with_env(&path, &env)
                .with_context(|| format!("the bench config {name}"))?;
            Ok((path, config))
        };
        let (config_path, config) = write("gateway.yaml", yaml(free_port()?, ""))?;
        let (policy_path, policy_config) =
            write("gateway-policy.yaml", yaml(free_port()?, policy::CONFIG))?;
        let spawn = |binary: &str, config_path: &Path| -> Result<Service> {
            let child = Command::new(bin_dir.join(binary))
                .arg("--config")
                .arg(config_path)
                .envs(&env)
                .env(
                    mcp_auth_proto::handoff::HANDOFF_KEY_ENV,
                    mcp_auth_e2e::envoy::handoff_secret(),
                )
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .with_context(|| format!("starting {}", bin_dir.join(binary).display()))?;
            Ok(Service { child })
        };
        let authserver = spawn("mcp-auth-authserver", &config_path)?;
        let ext_authz = spawn("mcp-auth-ext-authz", &config_path)?;
        let policy_ext_authz = spawn("mcp-auth-ext-authz", &policy_path)?;
        let health = format!("http://{authserver_addr}/healthz");
        poll::until(
            "the authserver to serve",
            Duration::from_secs(30),
            || async {
                let response = reqwest::get(&health).await.ok()?;
                response.status().is_success().then_some(())
            },
        )
        .await?;
        let options = RenderOptions {
            wasm_path: wasm.to_owned(),
            access_log: false,
            tls_sds_path: None,
        };
        let rendered = render(&config, &options)?;
        let render_fast = |config: &GatewayConfig| {
            let mut fast = config.clone();
            fast.ext_authz.mode = mcp_auth_gateway::config::ExtAuthzMode::Fast;
            render(&fast, &options)
        };
        let rendered_fast = render_fast(&config)?;
        let rendered_policy_fast = render_fast(&policy_config)?;
        let gateway = Envoy::start(&rendered, port).await?;
        let plane = Self {
            config,
            rendered,
            rendered_fast,
            rendered_policy_fast,
            gateway,
            authserver,
            ext_authz,
            policy_ext_authz,
            redis,
            _github: github,
            _dir: dir,
        };
        let probe = plane.mcp_url(&plane.gateway);
        poll::until(
            "the filter to hold the JWKS",
            Duration::from_secs(20),
            || async {
                let response = reqwest::Client::new()
                    .post(&probe)
                    .bearer_auth("probe")
                    .send()
                    .await
                    .ok()?;
                (response.status() != reqwest::StatusCode::SERVICE_UNAVAILABLE).then_some(())
            },
        )
        .await?;
        Ok(plane)
    }

    pub fn issuer(&self) -> &str {
        self.config.issuer_str()
    }

    /// The canonical resource of the bench service (the `aud` of its tokens).
    pub fn resource(&self) -> Result<&str> {
        self.config
            .services
            .first()
            .map(|s| s.resource.as_str())
            .context("the bench config has a service")
    }

    /// The MCP endpoint of the bench service on `envoy`.
    pub fn mcp_url(&self, envoy: &Envoy) -> String {
        format!("{}/{SERVICE}/mcp", envoy.url())
    }

    /// A real client's whole flow: discovery, registration, consent, GitHub, token.
    pub async fn sign_in(&self) -> Result<Session> {
        let discovered = oauth::discover_at(&self.mcp_url(&self.gateway), self.issuer()).await;
        let client_id = oauth::register(&discovered).await;
        let back =
            oauth::params(&oauth::sign_in_at(self.issuer(), &discovered, &client_id, "mcp").await);
        let code = back.get("code").context("no code in the redirect")?;
        let (status, tokens) =
            oauth::exchange(&discovered, &client_id, code, oauth::VERIFIER).await;
        if !status.is_success() {
            bail!("token exchange failed: {tokens}");
        }
        let field = |name: &str| -> Result<String> {
            tokens[name]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("no {name} in {tokens}"))
        };
        Ok(Session {
            access_token: field("access_token")?,
            refresh_token: field("refresh_token")?,
            discovered,
            client_id,
        })
    }

    /// Rotates the session's refresh token for a new access token.
    pub async fn refresh(&self, session: &mut Session) -> Result<()> {
        let (status, tokens) = oauth::token(
            &session.discovered,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &session.refresh_token),
                ("client_id", &session.client_id),
            ],
        )
        .await;
        if !status.is_success() {
            bail!("refresh failed: {tokens}");
        }
        session.access_token = tokens["access_token"]
            .as_str()
            .context("access_token")?
            .into();
        session.refresh_token = tokens["refresh_token"]
            .as_str()
            .context("refresh_token")?
            .into();
        Ok(())
    }

    /// RFC 7009 revocation of the session's access token.
    pub async fn revoke(&self, session: &Session) -> Result<()> {
        let endpoint = session.discovered.metadata["revocation_endpoint"]
            .as_str()
            .context("revocation_endpoint")?;
        let response = reqwest::Client::new()
            .post(endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(oauth::form(&[
                ("token", &session.access_token),
                ("client_id", &session.client_id),
            ]))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("revocation failed: {}", response.status());
        }
        Ok(())
    }

    /// The authserver's JWKS document.
    pub async fn jwks(&self) -> Result<String> {
        let url = format!("http://{}/jwks", self.config.authserver.listen);
        Ok(reqwest::get(url).await?.error_for_status()?.text().await?)
    }

    /// Server-side processes whose CPU a request costs, besides the scenario's Envoy.
    pub fn service_pids(&self) -> Vec<u32> {
        vec![
            self.authserver.pid(),
            self.ext_authz.pid(),
            self.policy_ext_authz.pid(),
            self.redis.pid(),
        ]
    }
}

/// Where the bench gateway config puts things.
struct ConfigParams<'a> {
    port: u16,
    redis: &'a str,
    authserver: SocketAddr,
    ext_authz: SocketAddr,
    keys: &'a Path,
}

/// The bench gateway config: one service, everyone allowed; `extra` continues its
/// `services:` list (and may add sections after it).
fn bench_config(p: &ConfigParams<'_>, extra: &str) -> String {
    format!(
        r#"issuer: http://127.0.0.1:{port}
listener: {{ address: "127.0.0.1:{port}" }}
admin: {{ address: "127.0.0.1:0" }}
redis: {{ url: "{redis}", key_prefix: "bench:" }}
authserver: {{ listen: "{authserver}", keys_dir: "{keys}", rate_limit_per_minute: 0 }}
ext_authz: {{ listen: "{ext_authz}", mode: per_request }}
access: {{ users: ["*"] }}
services:
  - name: {SERVICE}
    upstream: {{ url: "http://127.0.0.1:9/mcp" }}
{extra}"#,
        port = p.port,
        redis = p.redis,
        authserver = p.authserver,
        ext_authz = p.ext_authz,
        keys = p.keys.display(),
    )
}

/// A loopback address free now (bound, then released).
fn free_port() -> Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// `target/release` of the workspace at `root`.
pub fn release_dir(root: &Path) -> PathBuf {
    root.join("target/release")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::bench::scenarios::{self, Inputs, Kind};

    /// Both bench configs load (the policy one validated as ext_authz will), render in fast
    /// mode, and give every scenario a bootstrap.
    #[test]
    fn the_bench_configs_load_and_every_scenario_has_a_bootstrap() {
        let dir = tempfile::tempdir().unwrap();
        let params = ConfigParams {
            port: 10_000,
            redis: "redis://127.0.0.1:6379",
            authserver: "127.0.0.1:10001".parse().unwrap(),
            ext_authz: "127.0.0.1:10002".parse().unwrap(),
            keys: &dir.path().join("keys"),
        };
        let env: HashMap<String, String> = [
            ("GITHUB_CLIENT_ID", "id"),
            ("GITHUB_CLIENT_SECRET", "secret"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let options = RenderOptions {
            wasm_path: "/filter.wasm".into(),
            access_log: false,
            tls_sds_path: None,
        };
        let mut rendered = Vec::new();
        for (name, extra) in [("plain.yaml", ""), ("policy.yaml", policy::CONFIG)] {
            let path = dir.path().join(name);
            std::fs::write(&path, bench_config(&params, extra)).unwrap();
            let mut config = GatewayConfig::load_with_env(&path, &env).unwrap();
            let per_request = render(&config, &options).unwrap();
            config.ext_authz.mode = mcp_auth_gateway::config::ExtAuthzMode::Fast;
            rendered.push((per_request, render(&config, &options).unwrap()));
        }
        let inputs = Inputs {
            rendered: &rendered[0].0,
            rendered_fast: &rendered[0].1,
            rendered_policy_fast: &rendered[1].1,
            noop_wasm: Path::new("/noop.wasm"),
            issuer: "http://127.0.0.1:10000",
            resource: "http://127.0.0.1:10000/everything/mcp",
            jwks: "{}",
            side_jwks: "{}",
        };
        for kind in [
            Kind::Plain,
            Kind::EmptyWasm,
            Kind::FullChainFast,
            Kind::EmptyWasmCall,
            Kind::PolicyCallFast,
            Kind::PlainList,
            Kind::EmptyWasmList,
            Kind::PolicyListFiltered,
        ] {
            let bootstrap = scenarios::bootstrap(kind, &inputs, 10_003, 10_004).unwrap();
            let listed = bootstrap.contains("Bench tool");
            assert_eq!(
                listed,
                kind.workload() == scenarios::Workload::List,
                "{kind:?}"
            );
            // Every scenario answers after the whole body, so none pays for reconnections.
            assert_eq!(
                bootstrap.matches("mcp_auth.policy_body").count(),
                1,
                "{kind:?}"
            );
        }
    }
}

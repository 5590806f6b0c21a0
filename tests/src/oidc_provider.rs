//! A real OpenID provider for the end-to-end tests: npm `oidc-provider` (OpenID Certified),
//! run by `tests/oidc/provider.mjs` with the accounts a test gives it. Its login form
//! (`devInteractions`) signs in as the account typed in; an account with an `attack` gets a
//! spoiled ID token in its token response (signed with the provider's own key, a key it
//! never published, or none), as a hostile or broken provider would send. It can rotate its
//! signing key while running, and keep every claim but `sub` out of its ID tokens (userinfo
//! only).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::catalogue::free_port;
use crate::stack::{Stack, StackOptions};
use crate::tools;

/// The id of the provider [`stack_with_provider`] configures.
pub const PROVIDER_ID: &str = "op";

/// What a test's provider and our config of it are like.
#[derive(Debug, Clone, Default)]
pub struct ProviderSetup {
    /// Its accounts: login → claims (`attack` optional).
    pub accounts: Value,
    /// More entries of our `op` config (YAML flow-mapping entries, e.g.
    /// `, hosted_domain: example.com`).
    pub extra: String,
    /// More providers of ours at the same OP and client, as (id, more entries): the same
    /// accounts seen through another config.
    pub also: Vec<(String, String)>,
    /// Its ID tokens carry `sub` alone; every other claim is only at its userinfo endpoint.
    pub conform_id_token_claims: bool,
}

/// A stack whose users sign in at a fresh provider with `accounts`, its config entry given
/// `extra` (YAML flow-mapping entries, e.g. `, hosted_domain: example.com`).
pub async fn stack_with_provider(
    options: StackOptions,
    accounts: Value,
    extra: &str,
) -> Result<(Stack, OidcProvider)> {
    let setup = ProviderSetup {
        accounts,
        extra: extra.to_owned(),
        ..ProviderSetup::default()
    };
    stack_with(options, setup).await
}

/// A stack whose users sign in at a fresh provider made from `setup`; started in the order a
/// first sign-in right away needs: Envoy (so the issuer is known), the provider (whose
/// client's redirect URI names it), then the authserver (which discovers the provider).
pub async fn stack_with(
    options: StackOptions,
    setup: ProviderSetup,
) -> Result<(Stack, OidcProvider)> {
    let port = free_port()?;
    let mut options = configure(options, port, &setup);
    options.authserver_later = true;
    let mut stack = Stack::start_with(options).await?;
    let provider = OidcProvider::start(port, &callback_of(&stack), &setup).await?;
    stack.start_authserver().await?;
    stack.wait_for_keys().await?;
    Ok((stack, provider))
}

/// A whole stack, authserver included, whose provider is not running yet (as when it is
/// down while the authserver starts): [`ProviderLauncher::start`] brings it up.
pub async fn stack_before_provider(
    options: StackOptions,
    setup: ProviderSetup,
) -> Result<(Stack, ProviderLauncher)> {
    let port = free_port()?;
    let stack = Stack::start_with(configure(options, port, &setup)).await?;
    let launcher = ProviderLauncher {
        port,
        redirect_uri: callback_of(&stack),
        setup,
    };
    Ok((stack, launcher))
}

/// A provider configured in a stack but not started.
#[derive(Debug)]
pub struct ProviderLauncher {
    port: u16,
    redirect_uri: String,
    setup: ProviderSetup,
}

impl ProviderLauncher {
    /// The issuer the stack expects it at.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts it, at the issuer the stack expects.
    pub async fn start(self) -> Result<OidcProvider> {
        OidcProvider::start(self.port, &self.redirect_uri, &self.setup).await
    }
}

fn callback_of(stack: &Stack) -> String {
    format!("{}/login/oidc/callback", stack.issuer())
}

/// `options` with our config of the provider at `port` (and of its `also` twins).
fn configure(mut options: StackOptions, port: u16, setup: &ProviderSetup) -> StackOptions {
    let issuer = format!("http://127.0.0.1:{port}");
    let ours = std::iter::once((PROVIDER_ID, "Test OP".to_owned(), setup.extra.as_str())).chain(
        setup
            .also
            .iter()
            .map(|(id, extra)| (id.as_str(), format!("Test OP ({id})"), extra.as_str())),
    );
    let mut entries = Vec::new();
    for (id, name, extra) in ours {
        entries.push(format!(
            "{{ id: {id}, display_name: {name}, issuer: '{issuer}', client_id: {CLIENT_ID}, \
             scopes: [openid, email, profile, groups], claims: {{ groups: groups }}{extra} }}"
        ));
        options.env.insert(
            format!(
                "OIDC_{}_CLIENT_SECRET",
                id.to_ascii_uppercase().replace('-', "_")
            ),
            CLIENT_SECRET.into(),
        );
    }
    let entry = format!("oidc_providers: [{}]", entries.join(", "));
    options.authserver_config = if options.authserver_config.is_empty() {
        entry
    } else {
        format!("{}, {entry}", options.authserver_config)
    };
    options
}

const CLIENT_ID: &str = "mcp-gateway";
const CLIENT_SECRET: &str = "oidc-e2e-client-secret";

/// The running provider; killed on drop.
pub struct OidcProvider {
    /// `http://127.0.0.1:<port>`: its issuer.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    _config: tempfile::NamedTempFile,
    child: Child,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

impl OidcProvider {
    /// Starts the provider of `setup` on `port` with one confidential client whose redirect
    /// URI is `redirect_uri`.
    pub async fn start(port: u16, redirect_uri: &str, setup: &ProviderSetup) -> Result<Self> {
        let issuer = format!("http://127.0.0.1:{port}");
        let (client_id, client_secret) = (CLIENT_ID.to_owned(), CLIENT_SECRET.to_owned());
        let config = json!({
            "issuer": issuer,
            "port": port,
            "clients": [{
                "client_id": client_id,
                "client_secret": client_secret,
                "redirect_uris": [redirect_uri],
            }],
            "accounts": setup.accounts,
            "conform_id_token_claims": setup.conform_id_token_claims,
        });
        let file = tempfile::NamedTempFile::new()?;
        std::fs::write(file.path(), serde_json::to_vec(&config)?)?;
        let mut child = Command::new(tools::node_bin()?)
            .arg(script())
            .arg(file.path())
            .env("MCP_AUTH_NPM_PREFIX", tools::npm_prefix())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting oidc-provider")?;
        let stdout = child.stdout.take().context("oidc-provider stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await? {
                if line.trim() == "listening" {
                    return Ok::<_, std::io::Error>(true);
                }
            }
            Ok(false)
        })
        .await;
        match ready {
            Ok(Ok(true)) => {}
            other => bail!("oidc-provider did not start: {other:?}"),
        }
        Ok(Self {
            issuer,
            client_id,
            client_secret,
            _config: file,
            child,
        })
    }
}

impl OidcProvider {
    /// Rotates its signing key (`POST /admin/rotate`): ID tokens are signed with a new kid,
    /// which its JWKS then publishes alone. The new kid.
    pub async fn rotate_signing_key(&self) -> Result<String> {
        let answer: Value = reqwest::Client::new()
            .post(format!("{}/admin/rotate", self.issuer))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        answer["kid"]
            .as_str()
            .map(str::to_owned)
            .context("the provider named no new kid")
    }

    /// The kids its JWKS publishes now.
    pub async fn published_kids(&self) -> Result<Vec<String>> {
        let jwks: Value = reqwest::get(format!("{}/jwks", self.issuer))
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(jwks["keys"]
            .as_array()
            .context("a JWKS without keys")?
            .iter()
            .filter_map(|k| k["kid"].as_str().map(str::to_owned))
            .collect())
    }
}

fn script() -> PathBuf {
    tools::workspace_root().join("tests/oidc/provider.mjs")
}

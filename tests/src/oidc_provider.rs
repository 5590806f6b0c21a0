//! A real OpenID provider for the end-to-end tests: npm `oidc-provider` (OpenID Certified),
//! run by `tests/oidc/provider.mjs` with the accounts a test gives it. Its login form
//! (`devInteractions`) signs in as the account typed in; an account with an `attack` gets a
//! spoiled ID token in its token response (signed with the provider's own key, a key it
//! never published, or none), as a hostile or broken provider would send.

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

/// A stack whose users sign in at a fresh provider with `accounts`, its config entry given
/// `extra` (YAML flow-mapping entries, e.g. `, hosted_domain: example.com`); started in the
/// order discovery needs: Envoy (so the issuer is known), the provider (whose client's
/// redirect URI names it), then the authserver (which discovers the provider).
pub async fn stack_with_provider(
    mut options: StackOptions,
    accounts: Value,
    extra: &str,
) -> Result<(Stack, OidcProvider)> {
    let port = free_port()?;
    let issuer = format!("http://127.0.0.1:{port}");
    let entry = format!(
        "oidc_providers: [{{ id: {PROVIDER_ID}, display_name: Test OP, issuer: '{issuer}', \
         client_id: {CLIENT_ID}, scopes: [openid, email, profile, groups], \
         claims: {{ groups: groups }}{extra} }}]"
    );
    options.authserver_config = if options.authserver_config.is_empty() {
        entry
    } else {
        format!("{}, {entry}", options.authserver_config)
    };
    options.env.insert(
        format!("OIDC_{}_CLIENT_SECRET", PROVIDER_ID.to_ascii_uppercase()),
        CLIENT_SECRET.into(),
    );
    options.authserver_later = true;
    let mut stack = Stack::start_with(options).await?;
    let provider = OidcProvider::start(
        port,
        &format!("{}/login/oidc/callback", stack.issuer()),
        accounts,
    )
    .await?;
    stack.start_authserver().await?;
    stack.wait_for_keys().await?;
    Ok((stack, provider))
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
    /// Starts the provider on `port` with one confidential client whose redirect URI is
    /// `redirect_uri`, and `accounts` (login → claims, `attack` optional).
    pub async fn start(port: u16, redirect_uri: &str, accounts: Value) -> Result<Self> {
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
            "accounts": accounts,
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

fn script() -> PathBuf {
    tools::workspace_root().join("tests/oidc/provider.mjs")
}

//! A real browser for the pages people use: headless Debian Chromium driven by npm
//! `playwright-core` through `tests/browser/driver.mjs`, one command at a time.
//!
//! HTTP clients do not send what browsers send (`Origin`, `Sec-Fetch-*`, cookies under their
//! `SameSite` and `Secure` rules, referrer policy): a consent page that works with `reqwest`
//! can still refuse every real user. Tests of those pages go through this handle. Screenshots
//! (desktop and a 390×844 phone) are kept under `target/browser-artifacts/<name>/`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::tools;

/// How long one browser command may take (navigations through the whole flow included).
const COMMAND_DEADLINE: Duration = Duration::from_secs(60);

/// The page as the browser shows it after a command.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PageState {
    pub url: String,
    /// Status of the main document's last response (0 before any).
    pub status: u16,
    /// Its response headers, lower-cased names.
    pub headers: BTreeMap<String, String>,
    pub title: String,
    /// The body's rendered text (`innerText`).
    pub text: String,
    /// Every form POST the browser made, with the headers it sent.
    pub form_posts: Vec<FormPost>,
    /// Every document URL the browser requested, in order, each hop of a redirect chain
    /// included (the URLs a user could go back to or copy).
    #[serde(default)]
    pub navigations: Vec<String>,
}

/// A form submission as the browser sent it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FormPost {
    pub url: String,
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct Answer {
    ok: bool,
    #[serde(default)]
    value: Value,
    #[serde(default)]
    error: String,
    state: PageState,
}

/// One browser (one profile, one tab). Dropping it kills the browser.
pub struct Chromium {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    artifacts: PathBuf,
    /// The page after the last command.
    pub page: PageState,
}

impl Chromium {
    /// Starts a browser whose screenshots go to `target/browser-artifacts/<name>/`.
    pub async fn start(name: &str) -> Result<Self> {
        let chromium = tools::chromium_bin()?;
        let node = tools::node_bin()?;
        let prefix = tools::npm_prefix();
        if !prefix
            .join("node_modules/playwright-core/package.json")
            .is_file()
        {
            bail!(
                "playwright-core is not installed in {}; run `cargo xtask install`",
                prefix.display()
            );
        }
        let artifacts = artifacts_dir().join(name);
        let mut child = Command::new(node)
            .arg(tools::workspace_root().join("tests/browser/driver.mjs"))
            .env("MCP_AUTH_CHROMIUM", chromium)
            .env("MCP_AUTH_NPM_PREFIX", &prefix)
            .env("MCP_AUTH_BROWSER_ARTIFACTS", &artifacts)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting the browser driver")?;
        let stdin = child.stdin.take().context("driver stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("driver stdout")?).lines();
        let mut browser = Self {
            child,
            stdin,
            stdout,
            artifacts,
            page: PageState::default(),
        };
        browser.command(json!({"op": "state"})).await?;
        Ok(browser)
    }

    async fn command(&mut self, command: Value) -> Result<Value> {
        let line = format!("{command}\n");
        self.stdin.write_all(line.as_bytes()).await?;
        self.stdin.flush().await?;
        let answer = tokio::time::timeout(COMMAND_DEADLINE, self.stdout.next_line())
            .await
            .with_context(|| format!("the browser did not answer {command} within 60 s"))??
            .with_context(|| format!("the browser driver exited during {command}"))?;
        let answer: Answer = serde_json::from_str(&answer)
            .with_context(|| format!("the browser driver said {answer}"))?;
        self.page = answer.state;
        if !answer.ok {
            bail!(
                "browser: {command} failed at {}: {}\npage text: {}",
                self.page.url,
                answer.error,
                self.page.text
            );
        }
        Ok(answer.value)
    }

    /// Navigates to `url`, following redirects as the browser does.
    pub async fn goto(&mut self, url: &str) -> Result<&PageState> {
        self.command(json!({"op": "goto", "url": url})).await?;
        Ok(&self.page)
    }

    /// Clicks `selector` and waits for the page it leads to.
    pub async fn click(&mut self, selector: &str) -> Result<&PageState> {
        self.command(json!({"op": "click", "selector": selector}))
            .await?;
        Ok(&self.page)
    }

    /// Clicks `selector` where the click should not leave the page (e.g. a form the
    /// browser refuses to submit).
    pub async fn click_in_place(&mut self, selector: &str) -> Result<&PageState> {
        self.command(json!({"op": "click", "selector": selector, "navigates": false}))
            .await?;
        Ok(&self.page)
    }

    /// Types `value` into the field `selector`.
    pub async fn fill(&mut self, selector: &str, value: &str) -> Result<()> {
        self.command(json!({"op": "fill", "selector": selector, "value": value}))
            .await?;
        Ok(())
    }

    /// Evaluates a JavaScript expression in the page.
    pub async fn eval(&mut self, expression: &str) -> Result<Value> {
        self.command(json!({"op": "eval", "expression": expression}))
            .await
    }

    /// Saves `<name>-desktop.png` and `<name>-phone.png` of the page.
    pub async fn screenshot(&mut self, name: &str) -> Result<PathBuf> {
        self.command(json!({"op": "screenshot", "name": name}))
            .await?;
        Ok(self.artifacts.join(format!("{name}-desktop.png")))
    }

    /// Waits until the page's URL contains `part` (a navigation the page starts itself).
    pub async fn wait_for_url(&mut self, part: &str) -> Result<&PageState> {
        self.command(json!({"op": "wait_url", "contains": part}))
            .await?;
        Ok(&self.page)
    }

    /// Waits until an element matching `selector` (Playwright syntax) is visible.
    pub async fn wait_for(&mut self, selector: &str) -> Result<&PageState> {
        self.command(json!({"op": "wait_selector", "selector": selector}))
            .await?;
        Ok(&self.page)
    }

    /// Switches to a 390×844 phone viewport (`true`) or back to the desktop one.
    pub async fn phone_viewport(&mut self, phone: bool) -> Result<()> {
        self.command(json!({"op": "viewport", "phone": phone}))
            .await?;
        Ok(())
    }

    /// Serves `html` for every URL under `prefix` (an origin the tests do not run): another
    /// site, as far as the browser can tell.
    pub async fn serve(&mut self, prefix: &str, html: &str) -> Result<()> {
        self.command(json!({"op": "serve", "prefix": prefix, "html": html}))
            .await?;
        Ok(())
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Where every browser test keeps its screenshots.
pub fn artifacts_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| tools::workspace_root().join("target"))
        .join("browser-artifacts")
}

//! Live config: the allow-lists and identity headers follow the gateway config file without a
//! restart. The file is re-read on `SIGHUP` and whenever its bytes change (checked every
//! second, which also catches editors that replace the file and mounted ConfigMaps that
//! swap a symlink). A file that fails to load is logged and the running config kept.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mcp_auth_gateway::env::Env;
use mcp_auth_gateway::{ConfigError, GatewayConfig};

use crate::settings::{Settings, SettingsError};
use crate::state::Shared;

/// How often the file is compared with what was last loaded.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Why a config file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigLoadError {
    #[error(transparent)]
    Gateway(#[from] ConfigError),
    #[error(transparent)]
    Settings(#[from] SettingsError),
}

/// Reads and validates the gateway config for ext_authz: the gateway crate's checks, the
/// environment overrides (`ALLOWED_GITHUB_*`, `REDIS_URL`), then ext_authz's own.
pub fn load_config(path: &Path, env: &dyn Env) -> Result<GatewayConfig, ConfigLoadError> {
    let config = GatewayConfig::load_with_env(path, env)?;
    Settings::from_config(&config, 0)?;
    Ok(config)
}

/// Where the config comes from.
#[derive(Clone)]
pub struct ConfigSource {
    path: PathBuf,
    env: Arc<dyn Env>,
}

impl std::fmt::Debug for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigSource")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl ConfigSource {
    pub fn new(path: PathBuf, env: Arc<dyn Env>) -> Self {
        Self { path, env }
    }

    /// The config file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads the config as settings of `generation`.
    pub fn load(&self, generation: u64) -> Result<Settings, ConfigLoadError> {
        let config = GatewayConfig::load_with_env(&self.path, self.env.as_ref())?;
        Ok(Settings::from_config(&config, generation)?)
    }

    /// The file's current bytes; `None` when it cannot be read (the load reports why).
    async fn contents(&self) -> Option<Vec<u8>> {
        tokio::fs::read(&self.path).await.ok()
    }

    /// Reloads on `SIGHUP` and on change until the task is aborted. `loaded` is what the
    /// running settings were loaded from.
    pub async fn watch(self, shared: Arc<Shared>, mut loaded: Option<Vec<u8>>) {
        let mut hangups = hangup_signals();
        let mut ticks = tokio::time::interval(POLL_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let forced = tokio::select! {
                _ = ticks.tick() => false,
                Some(()) = next_hangup(&mut hangups) => true,
            };
            let contents = self.contents().await;
            if !forced && contents == loaded {
                continue;
            }
            // Remember what was seen even if it fails, so a bad file is reported once.
            loaded = contents;
            self.reload(&shared);
        }
    }

    fn reload(&self, shared: &Shared) {
        let current = shared.settings();
        match self.load(current.generation + 1) {
            Ok(settings) => {
                if settings.redis != current.redis {
                    tracing::warn!("redis settings changed: that takes a restart of ext_authz");
                }
                tracing::info!(
                    path = %self.path.display(),
                    generation = settings.generation,
                    "gateway config reloaded"
                );
                shared.set_settings(Settings {
                    redis: current.redis.clone(),
                    ..settings
                });
            }
            Err(error) => tracing::error!(
                path = %self.path.display(),
                %error,
                "gateway config not reloaded; keeping the running one"
            ),
        }
    }
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = Option<()>;

#[cfg(unix)]
fn hangup_signals() -> Hangups {
    use tokio::signal::unix::{SignalKind, signal};
    signal(SignalKind::hangup())
        .inspect_err(|error| tracing::warn!(%error, "cannot listen for SIGHUP; polling only"))
        .ok()
}

#[cfg(not(unix))]
fn hangup_signals() -> Hangups {
    None
}

/// The next `SIGHUP`; pends forever when there is no signal stream.
async fn next_hangup(hangups: &mut Hangups) -> Option<()> {
    #[cfg(unix)]
    if let Some(signals) = hangups {
        return signals.recv().await;
    }
    let _ = hangups;
    std::future::pending().await
}

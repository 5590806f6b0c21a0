//! The state every handler shares: settings, keys, the store. Cheap to clone (`Arc`s).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use mcp_auth_gateway::GatewayConfig;
use mcp_auth_gateway::env::Env;

use crate::clients::cimd::CimdResolver;
use crate::idp::dev::DevLogin;
use crate::idp::github::GitHub;
use crate::idp::oidc::Oidc;
use crate::idp::{IdentityProvider, Needs};
use crate::keys::{KeyStore, KeyTiming};
use crate::metrics::Metrics;
use crate::oauth::access;
use crate::serve::ServeError;
use crate::session::SessionKeys;
use crate::settings::{IdentityProviderSettings, Settings};
use crate::store::Store;

/// Seconds since the Unix epoch. Injectable so tests can move time.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Shared state of the authorization server.
#[derive(Clone)]
pub struct AppState {
    pub(crate) settings: Arc<Settings>,
    pub(crate) keys: Arc<KeyStore>,
    pub(crate) store: Store,
    pub(crate) documents: Arc<CimdResolver>,
    pub(crate) sessions: Arc<SessionKeys>,
    /// Every provider users may sign in with (at least one; the dev login alone when none is
    /// configured), in the order the choice page lists them.
    pub(crate) idps: Arc<[Arc<dyn IdentityProvider>]>,
    /// What every login must fetch so the user record serves every allow-list.
    pub(crate) needs: Needs,
    /// `None` when `authserver.rate_limit_per_minute` is 0.
    pub(crate) limiter: Option<Arc<crate::ratelimit::RateLimiter>>,
    pub(crate) metrics: Arc<Metrics>,
    clock: Clock,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("issuer", &self.settings.issuer)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Resolves `config` and `env` (`GITHUB_*`, `OIDC_*`), loads or creates the signing keys
    /// under `authserver.keys_dir`, starts discovering the OpenID providers (in the
    /// background: a provider may come up after the authserver) and prepares the Redis
    /// connection (made lazily: Redis may come up after the authserver too).
    pub async fn new(config: GatewayConfig, env: &dyn Env) -> Result<Self, ServeError> {
        let settings = Settings::from_config(&config, env)?;
        let now = system_now();
        let timing = KeyTiming {
            publish_delay: settings.key_publish_delay,
            retention: settings.key_retention,
        };
        let (dir, alg) = (settings.keys_dir.clone(), settings.signing_alg);
        let provided = settings.provided_key.clone();
        let (keys, session_key) = tokio::task::spawn_blocking(move || {
            if let Some(key) = &provided {
                match key.import(&dir, now, timing.publish_delay)? {
                    Some(kid) => {
                        tracing::info!(%kid, alg = ?key.alg, "imported the provided signing key")
                    }
                    None => tracing::debug!("the provided signing key is already in keys_dir"),
                }
            }
            let keys = KeyStore::open(&dir, alg, timing, now)?;
            Ok::<_, crate::keys::KeyError>((keys, crate::keys::session_key(&dir)?))
        })
        .await
        .map_err(|e| ServeError::Io(std::io::Error::other(e)))??;
        let mut idps: Vec<Arc<dyn IdentityProvider>> = Vec::new();
        for provider in &settings.identity_providers {
            idps.push(match provider {
                IdentityProviderSettings::GitHub(github) => Arc::new(
                    GitHub::new(github.clone(), &settings.issuer)
                        .map_err(|e| ServeError::Io(std::io::Error::other(e)))?,
                ),
                IdentityProviderSettings::Oidc {
                    provider,
                    client_secret,
                } => Arc::new(
                    Oidc::new(
                        (**provider).clone(),
                        client_secret.clone(),
                        &settings.issuer,
                    )
                    .map_err(ServeError::Oidc)?,
                ),
                IdentityProviderSettings::Dev => Arc::new(DevLogin::new(&settings.issuer)),
            });
        }
        let lists = || {
            std::iter::once(&settings.global_access)
                .chain(settings.services.iter().filter_map(|s| s.access.as_ref()))
                .chain(&settings.policy_access)
        };
        let needs = Needs {
            orgs: access::needs_orgs(lists()),
            teams: access::needs_teams(lists()),
        };
        let store = Store::new(&settings.redis).map_err(ServeError::RedisUrl)?;
        if settings.is_dev_login() {
            tracing::warn!(
                issuer = %settings.issuer,
                "DEV LOGIN: no GITHUB_CLIENT_ID/GITHUB_CLIENT_SECRET; anyone reaching this \
                 authserver can sign in as any user name. For local development only."
            );
        }
        let documents =
            CimdResolver::new().map_err(|e| ServeError::Io(std::io::Error::other(e)))?;
        Ok(Self {
            limiter: crate::ratelimit::RateLimiter::new(&settings).map(Arc::new),
            settings: Arc::new(settings),
            keys: Arc::new(keys),
            store,
            documents: Arc::new(documents),
            sessions: Arc::new(SessionKeys::new(&session_key)),
            idps: idps.into(),
            needs,
            metrics: Arc::new(Metrics::new()),
            clock: Arc::new(system_now),
        })
    }

    /// Replaces the clock (tests).
    #[doc(hidden)]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Lets Client ID Metadata Documents be fetched from `http://` loopback URLs (tests that
    /// serve documents locally). Never reachable from config or environment.
    #[doc(hidden)]
    pub fn allowing_loopback_metadata_documents(mut self) -> Self {
        if let Ok(documents) = CimdResolver::allowing_loopback_http() {
            self.documents = Arc::new(documents);
        }
        self
    }

    /// Replaces the identity provider (tests: a fake GitHub at a local URL is configured
    /// through `GITHUB_*` instead; this is for providers that are not GitHub at all).
    #[doc(hidden)]
    pub fn with_identity_provider(mut self, idp: Arc<dyn IdentityProvider>) -> Self {
        self.idps = Arc::from([idp]);
        self
    }

    /// The provider named `id`; `None` names the only one (a pending authorization stored
    /// before providers had ids).
    pub(crate) fn idp(&self, id: Option<&str>) -> Option<&Arc<dyn IdentityProvider>> {
        match id {
            Some(id) => self.idps.iter().find(|p| p.id() == id),
            None if self.idps.len() == 1 => self.idps.first(),
            None => None,
        }
    }

    /// Now, in seconds since the Unix epoch.
    pub fn now(&self) -> u64 {
        (self.clock)()
    }

    /// The configured issuer (RFC 8414 §2).
    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    /// The Redis store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// This server's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The signing keys (shared with the reload task).
    pub fn key_store(&self) -> Arc<KeyStore> {
        self.keys.clone()
    }
}

/// The system clock in seconds since the Unix epoch.
pub fn system_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

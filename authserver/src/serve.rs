//! Wiring for a real server: state, the key reload task, the HTTP server, graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mcp_auth_gateway::GatewayConfig;
use mcp_auth_gateway::env::Env;
use tokio::net::TcpListener;

use crate::keys::KeyError;
use crate::settings::SettingsError;
use crate::state::AppState;
use crate::store::StoreError;

/// Longest time between two reads of the key directory (for rotations).
const KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(10);

/// Why the authserver could not start, or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The config or environment cannot run an authserver (exit 64 in the binary).
    #[error("{0}")]
    Settings(#[from] SettingsError),
    #[error("{0}")]
    Keys(#[from] KeyError),
    #[error("gateway config: `redis.url`: {0}")]
    RedisUrl(#[source] StoreError),
    #[error("HTTP server: {0}")]
    Io(#[from] std::io::Error),
    /// An OpenID provider's config cannot work (its discovery failing is not an error:
    /// it is retried in the background).
    #[error("{0}")]
    Oidc(#[from] crate::idp::oidc::OidcSetupError),
}

impl ServeError {
    /// True when the config or environment is at fault (the binary exits 64).
    pub fn is_config_error(&self) -> bool {
        matches!(
            self,
            ServeError::Settings(_)
                | ServeError::RedisUrl(_)
                | ServeError::Oidc(crate::idp::oidc::OidcSetupError::Config { .. })
        )
    }
}

/// Serves the authorization server on `listener` until `shutdown` completes, then finishes
/// the requests in flight.
///
/// `env` supplies `GITHUB_CLIENT_ID`, `GITHUB_CLIENT_SECRET`, `GITHUB_URL` and
/// `GITHUB_API_URL`; without credentials the dev login runs, on a loopback issuer only.
pub async fn serve(
    config: GatewayConfig,
    env: Arc<dyn Env>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    // Pick up a rotation (another instance, `admin rotate-keys`) at least as fast as the
    // filters refresh their JWKS.
    let reload_interval = KEY_RELOAD_INTERVAL.min(config.filter.jwks_refresh);
    let state = AppState::new(config, &*env).await?;
    let reload = AbortOnDrop(tokio::spawn(state.key_store().watch(reload_interval)));
    let address = listener.local_addr().ok();
    tracing::info!(?address, issuer = %state.issuer(), "authserver serving");
    let app = crate::routes::router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    drop(reload);
    tracing::info!("authserver stopped");
    Ok(())
}

/// Aborts a background task when dropped, so no task outlives `serve`.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

//! Wiring: config, state, the Redis task, the reloader, health, and the gRPC server.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use envoy_types::ext_authz::v3::pb::AuthorizationServer;
use mcp_auth_gateway::env::Env;
use mcp_auth_proto::handoff::{HandoffKeyError, HandoffKeys};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::server::NamedService;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::decisions::{DecisionsServer, DecisionsService};
use crate::reload::{ConfigLoadError, ConfigSource};
use crate::service::AuthorizationService;
use crate::state::Shared;
use crate::store::{Store, StoreError};

/// How often the health status is brought in line with the state.
const HEALTH_INTERVAL: Duration = Duration::from_millis(200);

/// The gRPC service name Envoy checks (`envoy.service.auth.v3.Authorization`).
pub const AUTHORIZATION_SERVICE: &str =
    <AuthorizationServer<AuthorizationService> as NamedService>::NAME;

/// Why [`serve`] could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigLoadError),
    #[error("gateway config: `redis.url`: {0}")]
    RedisUrl(#[source] StoreError),
    #[error(transparent)]
    HandoffKey(#[from] HandoffKeyError),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Where [`serve`] answers: gRPC, and optionally the Prometheus metrics (`GET /metrics`,
/// plain HTTP; the binary binds `ext_authz.metrics_listen`).
#[derive(Debug)]
pub struct Listeners {
    pub grpc: TcpListener,
    pub metrics: Option<TcpListener>,
}

impl From<TcpListener> for Listeners {
    /// gRPC only.
    fn from(grpc: TcpListener) -> Self {
        Self {
            grpc,
            metrics: None,
        }
    }
}

/// Serves ext_authz on `listeners` until `shutdown` completes.
///
/// Loads the gateway config from `config_path` (with `env` overrides) and the hand-off
/// secrets from `env` ([`HandoffKeys::from_env`]), and follows the config: on
/// `SIGHUP` and on file change it is reloaded, a bad new file being logged and the old config
/// kept. Serves `envoy.service.auth.v3.Authorization`, `mcp_auth.v1.Decisions` (fast mode)
/// and the standard gRPC health service,
/// whose `""` and `envoy.service.auth.v3.Authorization` entries are `NOT_SERVING` until the
/// state has been loaded from Redis and again whenever Redis has been silent for
/// [`crate::state::REDIS_LOST_AFTER`] (Checks are still answered from memory until
/// `ext_authz.redis_grace`, then `UNAVAILABLE`), `SERVING` otherwise. Redis being down at
/// start is not an error: Checks answer `UNAVAILABLE` until it comes up.
pub async fn serve(
    config_path: PathBuf,
    env: Arc<dyn Env>,
    listeners: impl Into<Listeners>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let Listeners {
        grpc: listener,
        metrics,
    } = listeners.into();
    let handoff_keys = Arc::new(HandoffKeys::from_env(|name| env.var(name))?);
    let source = ConfigSource::new(config_path, env);
    let loaded_from = tokio::fs::read(source.path()).await.ok();
    let settings = source.load(1)?;
    let store = {
        let redis = settings.redis.clone();
        let shared = Arc::new(Shared::new(settings));
        Store::new(&redis, shared).map_err(ServeError::RedisUrl)?
    };
    let shared = store.shared();

    let (reporter, health_service) = tonic_health::server::health_reporter();
    set_health(&reporter, ServingStatus::NotServing).await;

    let mut tasks = vec![
        tokio::spawn(store.run()),
        tokio::spawn(source.watch(shared.clone(), loaded_from)),
        tokio::spawn(track_health(shared.clone(), reporter)),
    ];
    if let Some(metrics) = metrics {
        tracing::info!(address = ?metrics.local_addr().ok(), "metrics served");
        tasks.push(tokio::spawn(serve_metrics(metrics, shared.clone())));
    }
    let _tasks = AbortOnDrop(tasks);

    // Dropped or signalled when the server stops: invalidation streams end first, so they
    // neither outlive it nor hold up its graceful shutdown.
    let (closing, closing_watch) = tokio::sync::watch::channel(());
    let shutdown = async move {
        shutdown.await;
        let _ = closing.send(());
    };
    let address = listener.local_addr().ok();
    tracing::info!(?address, "ext_authz serving");
    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(AuthorizationServer::new(AuthorizationService::new(
            shared.clone(),
            handoff_keys.clone(),
        )))
        .add_service(DecisionsServer::new(DecisionsService::new(
            shared,
            handoff_keys,
            closing_watch,
        )))
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await?;
    tracing::info!("ext_authz stopped");
    Ok(())
}

/// `GET /metrics` on `listener`, until aborted.
async fn serve_metrics(listener: TcpListener, shared: Arc<Shared>) {
    use axum::routing::get;
    let app = axum::Router::new().route(
        mcp_auth_telemetry::metrics::METRICS_PATH,
        get(move || {
            let shared = shared.clone();
            async move {
                let registry = shared.metrics.registry(&shared, Instant::now());
                mcp_auth_telemetry::metrics::render(registry)
            }
        }),
    );
    if let Err(error) = axum::serve(listener, app).await {
        tracing::error!(%error, "the metrics server stopped");
    }
}

async fn set_health(reporter: &HealthReporter, status: ServingStatus) {
    for service in ["", AUTHORIZATION_SERVICE] {
        reporter.set_service_status(service, status).await;
    }
}

/// Keeps the health service in line with [`Shared::is_serving`].
async fn track_health(shared: Arc<Shared>, reporter: HealthReporter) {
    let mut serving = false;
    let mut ticks = tokio::time::interval(HEALTH_INTERVAL);
    loop {
        ticks.tick().await;
        let available = shared.is_serving(Instant::now());
        if available != serving {
            serving = available;
            let status = if available {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            tracing::info!(?status, "health changed");
            set_health(&reporter, status).await;
        }
    }
}

/// Background tasks that must not outlive the server, even when `serve` is dropped.
struct AbortOnDrop(Vec<JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

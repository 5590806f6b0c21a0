//! `mcp-auth-ext-authz --config <gateway.yaml>`: binds `ext_authz.listen` and serves.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use mcp_auth_ext_authz::{Listeners, ServeError, load_config, serve};
use mcp_auth_gateway::env::ProcessEnv;
use mcp_auth_telemetry::logs::{LOG_FORMAT_ENV, LogFormat};

/// Exit status for a bad config (sysexits `EX_USAGE`).
const EXIT_BAD_CONFIG: u8 = 64;

/// Envoy ext_authz service of mcp-mesh-auth: revocation, allow-lists, identity headers.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The gateway config file.
    #[arg(long, env = "MCP_GATEWAY_CONFIG")]
    config: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    {
        use tracing_subscriber::Layer as _;
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::util::SubscriberInitExt as _;
        // Logs to stderr (RUST_LOG, default info; LOG_FORMAT text or json); mcp_policy's
        // audit lines to stdout, as bare JSON lines (mcp_auth_ext_authz::audit).
        let log_format = std::env::var(LOG_FORMAT_ENV).ok();
        let format = match LogFormat::from_value(log_format.as_deref()) {
            Ok(format) => format,
            Err(error) => return bad_config(&error),
        };
        let logs = mcp_auth_telemetry::logs::stderr_layer(format).with_filter(
            tracing_subscriber::filter::filter_fn(mcp_auth_ext_authz::audit::is_not_audit),
        );
        tracing_subscriber::registry()
            .with(logs)
            .with(mcp_auth_ext_authz::audit::layer(std::io::stdout))
            .init();
    }

    let config = match load_config(&args.config, &ProcessEnv) {
        Ok(config) => config,
        Err(error) => return bad_config(&error),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("mcp-auth-ext-authz: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let listen = (config.ext_authz.listen, config.ext_authz.metrics_listen);
    match runtime.block_on(run(args.config, listen)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => match error.downcast_ref::<ServeError>() {
            Some(ServeError::Config(_) | ServeError::RedisUrl(_) | ServeError::HandoffKey(_)) => {
                bad_config(&error)
            }
            _ => {
                eprintln!("mcp-auth-ext-authz: {error:#}");
                ExitCode::FAILURE
            }
        },
    }
}

async fn run(
    config: PathBuf,
    (listen, metrics_listen): (SocketAddr, SocketAddr),
) -> anyhow::Result<()> {
    let grpc = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot bind ext_authz.listen {listen}"))?;
    let metrics = tokio::net::TcpListener::bind(metrics_listen)
        .await
        .with_context(|| format!("cannot bind ext_authz.metrics_listen {metrics_listen}"))?;
    serve(
        config,
        Arc::new(ProcessEnv),
        Listeners {
            grpc,
            metrics: Some(metrics),
        },
        mcp_auth_gateway::shutdown::shutdown_signal(),
    )
    .await?;
    Ok(())
}

fn bad_config(error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("mcp-auth-ext-authz: {error}");
    ExitCode::from(EXIT_BAD_CONFIG)
}

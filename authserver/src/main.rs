//! `mcp-auth-authserver --config <gateway.yaml>`: binds `authserver.listen` and serves.
//! `mcp-auth-authserver --config <gateway.yaml> admin …`: revocation and key rotation
//! against the same Redis and key directory (no admin endpoint exists).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use mcp_auth_authserver::admin::{self, AdminTarget};
use mcp_auth_authserver::{ServeError, serve};
use mcp_auth_gateway::GatewayConfig;
use mcp_auth_gateway::config::SigningAlg;
use mcp_auth_gateway::env::ProcessEnv;

/// Exit status for a bad config (sysexits `EX_USAGE`).
const EXIT_BAD_CONFIG: u8 = 64;

/// OAuth 2.1 authorization server of mcp-mesh-auth.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The gateway config file.
    #[arg(
        long,
        env = "MCP_GATEWAY_CONFIG",
        default_value = "gateway.yaml",
        global = true
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Administration against the config's Redis and key directory.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Revoke every token of a user, client or grant issued until now (ext_authz is told at
    /// once; refresh tokens stop working).
    Revoke(RevokeArgs),
    /// Publish a new signing key. Running authservers pick it up within seconds and sign with
    /// it once the filter has had time to fetch it; the old key stays published until the
    /// tokens it signed have expired.
    RotateKeys {
        /// Algorithm of the new key (default: `authserver.signing_alg`).
        #[arg(long, value_enum)]
        alg: Option<Alg>,
    },
}

#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
struct RevokeArgs {
    /// A user's stable id (`sub`, GitHub's numeric id).
    #[arg(long)]
    user: Option<String>,
    /// A user's login name (every user record with it).
    #[arg(long)]
    login: Option<String>,
    /// A client id.
    #[arg(long)]
    client: Option<String>,
    /// A grant id (`grant_id` claim).
    #[arg(long)]
    grant: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Alg {
    #[value(name = "EdDSA")]
    EdDsa,
    #[value(name = "ES256")]
    Es256,
    #[value(name = "RS256")]
    Rs256,
}

impl From<Alg> for SigningAlg {
    fn from(alg: Alg) -> Self {
        match alg {
            Alg::EdDsa => SigningAlg::EdDSA,
            Alg::Es256 => SigningAlg::ES256,
            Alg::Rs256 => SigningAlg::RS256,
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let config = match GatewayConfig::load_with_env(&args.config, &ProcessEnv) {
        Ok(config) => config,
        Err(error) => return bad_config(&error),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("mcp-auth-authserver: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = match args.command {
        None => runtime.block_on(run(config)),
        Some(Command::Admin(command)) => runtime.block_on(run_admin(config, command)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => match error.downcast_ref::<ServeError>() {
            Some(serve_error) if serve_error.is_config_error() => bad_config(&error),
            _ => {
                eprintln!("mcp-auth-authserver: {error:#}");
                ExitCode::FAILURE
            }
        },
    }
}

async fn run(config: GatewayConfig) -> anyhow::Result<()> {
    let listen = config.authserver.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot bind authserver.listen {listen}"))?;
    serve(
        config,
        Arc::new(ProcessEnv),
        listener,
        mcp_auth_gateway::shutdown::shutdown_signal(),
    )
    .await?;
    Ok(())
}

async fn run_admin(config: GatewayConfig, command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::Revoke(args) => {
            let target = match (args.user, args.login, args.client, args.grant) {
                (Some(sub), ..) => AdminTarget::User(sub),
                (_, Some(login), ..) => AdminTarget::Login(login),
                (_, _, Some(client), _) => AdminTarget::Client(client),
                (_, _, _, Some(grant)) => AdminTarget::Grant(grant),
                _ => anyhow::bail!("name what to revoke: --user, --login, --client or --grant"),
            };
            for event in admin::revoke(&config, target).await? {
                println!(
                    "revoked {} {} (tokens issued until {}; record kept until {})",
                    event.target.kind(),
                    event.target.id(),
                    event.revoked_at,
                    event.expires_at
                );
            }
        }
        AdminCommand::RotateKeys { alg } => {
            let rotation = admin::rotate_keys(&config, alg.map(SigningAlg::from))?;
            println!(
                "new {:?} key {} published; it signs from {} (Unix time)",
                rotation.alg, rotation.kid, rotation.activates_at
            );
            for kid in rotation.removed {
                println!("removed retired key {kid}");
            }
        }
    }
    Ok(())
}

fn bad_config(error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("mcp-auth-authserver: {error}");
    ExitCode::from(EXIT_BAD_CONFIG)
}

//! `mcp-auth-authserver --config <gateway.yaml>`: binds `authserver.listen` and serves.
//! `mcp-auth-authserver --config <gateway.yaml> admin …`: revocation, key rotation, listing,
//! purge, backup and restore against the same Redis and key directory (no admin endpoint
//! exists).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use mcp_auth_authserver::admin::listing::{self, GrantFilter};
use mcp_auth_authserver::admin::{self, AdminTarget, output};
use mcp_auth_authserver::{ServeError, serve};
use mcp_auth_gateway::GatewayConfig;
use mcp_auth_gateway::config::SigningAlg;
use mcp_auth_gateway::env::ProcessEnv;
use mcp_auth_telemetry::logs::{LOG_FORMAT_ENV, LogFormat};

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
    /// Registered clients (RFC 7591).
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Grants: one user's authorization of one client for one resource.
    #[command(subcommand)]
    Grants(GrantsCommand),
    /// Users as the identity provider described them at their last login.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Delete state that can no longer be used but would stay in Redis (expired clients,
    /// grants no refresh token names, refresh tokens and consents whose grant or client is
    /// gone, revocations past their expiry).
    Purge {
        /// Show what would be deleted, delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write clients, grants, refresh tokens, consents, users, revocations and the signing
    /// keys to FILE (JSON lines, mode 0600: it holds the private keys).
    Backup {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Restore a backup (creates what is missing, never overwrites; validates the whole
    /// file first).
    Restore {
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
    },
}

/// `--json`: one JSON document instead of a table.
#[derive(Debug, clap::Args)]
struct Format {
    /// Print one JSON document (an array for list, an object for show).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum ClientsCommand {
    /// Every registered client.
    List(Format),
    /// One client (its secret and registration token are never shown).
    Show {
        client_id: String,
        #[command(flatten)]
        format: Format,
    },
}

#[derive(Debug, Subcommand)]
enum GrantsCommand {
    /// Every grant, or a user's or client's.
    List {
        #[command(flatten)]
        format: Format,
        /// Only this user's (`sub`).
        #[arg(long, value_name = "SUB")]
        user: Option<String>,
        /// Only this client's.
        #[arg(long, value_name = "ID")]
        client: Option<String>,
    },
    /// One grant and how many refresh tokens name it.
    Show {
        grant_id: String,
        #[command(flatten)]
        format: Format,
    },
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Every user record.
    List(Format),
    /// One user (`sub`) with their grants and consents.
    Show {
        subject: String,
        #[command(flatten)]
        format: Format,
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
    let log_format = std::env::var(LOG_FORMAT_ENV).ok();
    match LogFormat::from_value(log_format.as_deref()) {
        Ok(format) => mcp_auth_telemetry::logs::init(format),
        Err(error) => return bad_config(&error),
    }

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
        AdminCommand::Clients(ClientsCommand::List(format)) => {
            let clients = listing::list_clients(&config).await?;
            print(format, &clients, |now| output::clients_table(&clients, now))?;
        }
        AdminCommand::Clients(ClientsCommand::Show { client_id, format }) => {
            let client = listing::show_client(&config, &client_id).await?;
            print(format, &client, |now| output::client_block(&client, now))?;
        }
        AdminCommand::Grants(GrantsCommand::List {
            format,
            user,
            client,
        }) => {
            let filter = GrantFilter {
                subject: user,
                client_id: client,
            };
            let grants = listing::list_grants(&config, &filter).await?;
            print(format, &grants, |now| output::grants_table(&grants, now))?;
        }
        AdminCommand::Grants(GrantsCommand::Show { grant_id, format }) => {
            let grant = listing::show_grant(&config, &grant_id).await?;
            print(format, &grant, |now| output::grant_block(&grant, now))?;
        }
        AdminCommand::Users(UsersCommand::List(format)) => {
            let users = listing::list_users(&config).await?;
            print(format, &users, |now| output::users_table(&users, now))?;
        }
        AdminCommand::Users(UsersCommand::Show { subject, format }) => {
            let user = listing::show_user(&config, &subject).await?;
            print(format, &user, |now| output::user_block(&user, now))?;
        }
        AdminCommand::Purge { dry_run } => {
            let report = admin::purge::purge(&config, dry_run).await?;
            print!("{}", output::purge_report(&report));
        }
        AdminCommand::Backup { out } => {
            let backup = admin::backup::backup(&config, &out).await?;
            print!("{}", output::backup_summary(&backup, &out));
        }
        AdminCommand::Restore { from } => {
            let report = admin::restore::restore(&config, &from).await?;
            print!("{}", output::restore_summary(&report));
        }
    }
    Ok(())
}

/// Prints `value` as JSON with `--json`, else as `human` renders it at the current time.
fn print<T: serde::Serialize + ?Sized>(
    format: Format,
    value: &T,
    human: impl FnOnce(u64) -> String,
) -> anyhow::Result<()> {
    if format.json {
        print!("{}", output::json(value)?);
    } else {
        print!("{}", human(mcp_auth_authserver::system_now()));
    }
    Ok(())
}

fn bad_config(error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("mcp-auth-authserver: {error}");
    ExitCode::from(EXIT_BAD_CONFIG)
}

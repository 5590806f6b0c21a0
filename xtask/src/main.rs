//! Developer tasks of mcp-mesh-auth, run as `cargo xtask <task>`.

mod bench;
mod check;
mod envoy_config;
mod process;
mod supervise;
mod tools;
mod up;
mod wasm;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mcp_auth_gateway::env::ProcessEnv;

#[derive(Parser)]
#[command(about = "Developer tasks of mcp-mesh-auth")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what the project needs (apt packages, Envoy, Node >= 22, npm packages); idempotent.
    Install,
    /// Build the filter for wasm32 and print the path of the .wasm.
    BuildWasm,
    /// Render the Envoy bootstrap of a gateway config.
    RenderEnvoy {
        #[arg(long, default_value = envoy_config::DEFAULT_CONFIG)]
        config: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Render every gateway config in envoy/ and check each with `envoy --mode validate`.
    ValidateEnvoy,
    /// Build and run the whole stack on this machine until Ctrl-C.
    Up {
        #[arg(long, default_value = envoy_config::DEFAULT_CONFIG)]
        config: PathBuf,
        #[arg(long)]
        release: bool,
    },
    /// Every check: fmt, clippy (host and wasm), wasm build, Envoy validation, unit and end-to-end tests.
    Test,
    /// Measure the gateway against its anchors (plain Envoy, an empty wasm filter, native
    /// jwt_authn, ext_authz per request) in one run; writes target/bench/results.json and
    /// docs/benchmarks.{md,svg}. Needs wrk and 2 CPUs.
    Bench {
        /// Fewer, shorter rounds (under 5 minutes); writes results.json only, not docs/.
        #[arg(long)]
        quick: bool,
        /// Only these scenarios (comma-separated names), besides the two baselines.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
    },
    /// Print the environment the end-to-end tests read, as shell `export` lines, to run one
    /// test by hand: `eval "$(cargo xtask test-env)"; cargo test -p mcp-auth-e2e --test e2e NAME`.
    TestEnv,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let tools = tools::Tools::new()?;
    match cli.task {
        Task::Install => tools.install(),
        Task::BuildWasm => {
            let wasm = wasm::build(&tools.root)?;
            println!("{}", wasm.display());
            Ok(())
        }
        Task::RenderEnvoy { config, out } => {
            let effective = tools
                .root
                .join("target/envoy-render/gateway.effective.yaml");
            let (_, config) =
                envoy_config::write_effective_config(&config, &effective, &ProcessEnv)?;
            envoy_config::render_to(&config, &wasm::wasm_path(&tools.root), &out)?;
            println!("{}", out.display());
            Ok(())
        }
        Task::ValidateEnvoy => {
            let wasm = wasm::build(&tools.root)?;
            envoy_config::validate_all(&tools.root, &tools.envoy_bin()?, &wasm)
        }
        Task::Up { config, release } => {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(up::up(&tools, &up::UpOptions { config, release }))
        }
        Task::Test => check::test(&tools),
        Task::Bench { quick, only } => bench::bench(&tools, &bench::BenchOptions { quick, only }),
        Task::TestEnv => {
            for (name, value) in tools.test_env(&wasm::wasm_path(&tools.root))? {
                println!("export {name}='{}'", value.replace('\'', r"'\''"));
            }
            Ok(())
        }
    }
}

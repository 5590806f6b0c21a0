//! Developer tasks of mcp-mesh-auth, run as `cargo xtask <task>`.

mod bench;
mod check;
mod envoy_config;
mod images;
mod manifests;
mod process;
mod status;
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
        /// Where Envoy finds the filter's .wasm (default: this checkout's build).
        #[arg(long)]
        wasm: Option<PathBuf>,
    },
    /// Render every gateway config in envoy/ and check each with `envoy --mode validate`.
    ValidateEnvoy,
    /// Render the Istio resources (WasmPlugin, EnvoyFilter, CUSTOM AuthorizationPolicy,
    /// VirtualService, PeerAuthentication, the mesh config's extension provider) and the
    /// gateway ConfigMap of a gateway config.
    RenderIstio {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// The filter as Istio loads it: `oci://REGISTRY/REPO:TAG` or `file:///PATH`.
        #[arg(long)]
        wasm_url: Option<String>,
        /// SHA-256 of the .wasm, pinned in every WasmPlugin.
        #[arg(long)]
        wasm_sha256: Option<String>,
        /// Pod label whose value is the MCP workload's Kubernetes Service name.
        #[arg(long)]
        workload_label: Option<String>,
        /// `namespace/name` of the Istio Gateway clients come in through.
        #[arg(long)]
        ingress_gateway: Option<String>,
    },
    /// Regenerate what deploy/k8s/ derives from deploy/k8s/gateway.yaml.
    RenderManifests,
    /// Check deploy/k8s/ offline: derived files fresh, every overlay built by `kubectl
    /// kustomize`, core kinds against Kubernetes' schemas, Istio kinds against Istio's.
    ValidateManifests,
    /// Build and run the whole stack on this machine until Ctrl-C.
    Up {
        #[arg(long, default_value = envoy_config::DEFAULT_CONFIG)]
        config: PathBuf,
        #[arg(long)]
        release: bool,
    },
    /// Every component of the stack `up` runs (or of CONFIG) in one table: Redis, the
    /// authserver, ext_authz, Envoy and each MCP server; non-zero exit if one is down.
    Status {
        #[arg(long, default_value = ".data/gateway.yaml")]
        config: PathBuf,
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
    /// Build every container image (authserver, ext-authz, Envoy with the filter, the filter
    /// as an Istio Wasm OCI image and as target/images/plugin.wasm, Redis, the demo MCP
    /// server) with podman or docker.
    Images {
        /// Tag of every image, besides the workspace version.
        #[arg(long, default_value = "latest")]
        tag: String,
    },
    /// Write what the compose stack runs from: the effective gateway config (with
    /// `MCP_<NAME>_ENABLED` applied) and its Envoy bootstrap, from the config and `.env`.
    ComposeConfig {
        #[arg(long, default_value = images::COMPOSE_GATEWAY)]
        config: PathBuf,
        #[arg(long, default_value = images::COMPOSE_ENV)]
        env_file: PathBuf,
        #[arg(long, default_value = images::COMPOSE_RENDERED)]
        out: PathBuf,
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
        Task::RenderEnvoy { config, out, wasm } => {
            let effective = tools
                .root
                .join("target/envoy-render/gateway.effective.yaml");
            let (_, config) =
                envoy_config::write_effective_config(&config, &effective, &ProcessEnv)?;
            let wasm = wasm.unwrap_or_else(|| wasm::wasm_path(&tools.root));
            envoy_config::render_to(&config, &wasm, &out, None)?;
            println!("{}", out.display());
            Ok(())
        }
        Task::ValidateEnvoy => {
            let wasm = wasm::build(&tools.root)?;
            envoy_config::validate_all(&tools.root, &tools.envoy_bin()?, &wasm)
        }
        Task::RenderIstio {
            config,
            out,
            wasm_url,
            wasm_sha256,
            workload_label,
            ingress_gateway,
        } => {
            let defaults = manifests::IstioOptions::default();
            let options = manifests::IstioOptions {
                wasm_url: wasm_url.unwrap_or(defaults.wasm_url),
                wasm_sha256,
                workload_label: workload_label.unwrap_or(defaults.workload_label),
                ingress_gateway: ingress_gateway.unwrap_or(defaults.ingress_gateway),
            };
            manifests::render_istio(&config, &out, &options)
        }
        Task::RenderManifests => manifests::render_manifests(&tools.root),
        Task::ValidateManifests => {
            let wasm = wasm::wasm_path(&tools.root);
            let envoy = tools.envoy_bin().ok();
            let with_envoy = envoy.as_deref().filter(|_| wasm.is_file());
            manifests::validate_manifests(&tools, with_envoy.map(|e| (e, wasm.as_path())))
        }
        Task::Up { config, release } => {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(up::up(&tools, &up::UpOptions { config, release }))
        }
        Task::Status { config } => {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(status::status(&tools.root.join(config)))
        }
        Task::Test => check::test(&tools),
        Task::Bench { quick, only } => bench::bench(&tools, &bench::BenchOptions { quick, only }),
        Task::Images { tag } => images::build(&tools, &images::ImagesOptions { tag }),
        Task::ComposeConfig {
            config,
            env_file,
            out,
        } => images::compose_config(
            &tools,
            &images::ComposeConfigOptions {
                config,
                env_file,
                out,
            },
        ),
        Task::TestEnv => {
            for (name, value) in tools.test_env(&wasm::wasm_path(&tools.root))? {
                println!("export {name}='{}'", value.replace('\'', r"'\''"));
            }
            Ok(())
        }
    }
}

//! `cargo xtask bench`: the gateway against its anchors, in one run.
//!
//! Every scenario is an Envoy (`--concurrency 1`) started from the bootstrap the product
//! renders, answering the MCP route itself, with only the filters under test
//! ([`scenarios`]). All server-side processes (Envoys, authserver, ext_authz, Redis) are
//! pinned to CPU 0 and wrk to CPU 1. Scenarios run interleaved, round after round, and each
//! round's ratios to plain Envoy are taken within the round. It is a benchmark, not a test:
//! nothing fails on a number, only on a scenario that does not answer 200 (or, for the
//! `mcp_policy` scenarios, whose policy is not in force: [`policy::check`]).

mod control;
mod forge;
mod handoff_mac;
mod policy;
mod procstat;
mod report;
mod scenarios;
mod seed;
mod wrk;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mcp_auth_e2e::envoy::{Envoy, ReservedPort};

use crate::process::run;
use crate::tools::Tools;
use crate::wasm;
use control::ControlPlane;
use report::{Report, Summary, median};
use scenarios::Kind;

/// CPU of the servers; the load generator gets [`LOAD_CPU`].
const SERVER_CPU: usize = 0;
const LOAD_CPU: usize = 1;

/// Options of `cargo xtask bench`.
pub struct BenchOptions {
    /// Fewer, shorter rounds: the whole run in under 5 minutes.
    pub quick: bool,
    /// Run only these scenarios (plus plain Envoy and the empty wasm filter, the ratios'
    /// bases); empty: all.
    pub only: Vec<String>,
}

struct Plan {
    rounds: usize,
    warmup: Duration,
    measure: Duration,
    revocations: usize,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                rounds: 3,
                warmup: Duration::from_secs(1),
                measure: Duration::from_secs(3),
                revocations: 5,
            }
        } else {
            Self {
                rounds: 8,
                warmup: Duration::from_secs(1),
                measure: Duration::from_secs(6),
                revocations: 15,
            }
        }
    }
}

fn describe(kind: Kind) -> &'static str {
    match kind {
        Kind::Plain => "plain Envoy, direct response",
        Kind::EmptyWasm => "+ a no-op proxy-wasm filter",
        Kind::JwtAuthn { cached: false } => "+ native jwt_authn, no JWT cache",
        Kind::JwtAuthn { cached: true } => "+ native jwt_authn with jwt_cache_config",
        Kind::FilterOnly => "+ our filter, valid token (cached)",
        Kind::FilterUncached { .. } => "+ our filter, cache off: a signature per request",
        Kind::FullChainPerRequest => "+ our filter + ext_authz per request",
        Kind::FullChainFast => "+ our filter asking ext_authz on a cache miss (fast mode)",
        Kind::EmptyWasmCall => "a ~1 KiB tools/call, + a no-op proxy-wasm filter",
        Kind::PolicyCallFast => {
            "the same tools/call decided by mcp_policy (4 rules), fast mode, cached"
        }
        Kind::PlainList => "a tools/list answered with 50 tools (one SSE event), plain Envoy",
        Kind::EmptyWasmList => "the same 50-tool list, + a no-op proxy-wasm filter",
        Kind::PolicyListFiltered => {
            "the same list through the fast chain, 10 tools hidden by mcp_policy"
        }
        Kind::SeedVerify => "the seed's Python verify endpoint alone (RS256 + Redis), no proxy",
    }
}

pub fn bench(tools: &Tools, options: &BenchOptions) -> Result<()> {
    tools.install()?;
    for (tool, package) in crate::tools::BENCH_PACKAGES {
        if crate::tools::which(tool).is_none() {
            bail!("{tool} is not installed: apt-get install {package}");
        }
    }
    let root = &tools.root;
    run(std::process::Command::new("cargo").current_dir(root).args([
        "build",
        "--release",
        "-p",
        "mcp-auth-authserver",
        "-p",
        "mcp-auth-ext-authz",
    ]))?;
    let filter_wasm = wasm::build(root)?;
    let noop_wasm = wasm::build_package(root, wasm::NOOP_FILTER_PACKAGE)?;
    let seed_python = tools.install_seed()?;
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    if cpus < 2 {
        bail!("the bench needs 2 CPUs: one for the servers, one for the load generator");
    }
    // Described before pinning, which narrows what this process sees.
    let machine = machine();
    pin_to_cpu(SERVER_CPU)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime.block_on(measure(&Setup {
        root,
        filter_wasm: &filter_wasm,
        noop_wasm: &noop_wasm,
        seed_python: &seed_python,
        machine,
        only: &options.only,
        plan: Plan::new(options.quick),
        mode: if options.quick { "quick" } else { "full" },
    }))?;
    println!("\n{}\n{}", report.table(), report.findings());
    let json = root.join("target/bench/results.json");
    // A partial (`--only`) or quick run must not replace the published page, which the
    // README quotes.
    let docs = (options.only.is_empty() && !options.quick).then(|| root.join("docs"));
    report.write(&json, docs.as_deref())?;
    match docs {
        Some(_) => println!(
            "wrote {}, docs/benchmarks.md and docs/benchmarks.svg",
            json.display()
        ),
        None => println!("wrote {}", json.display()),
    }
    Ok(())
}

/// Pins this process, and so every child it starts, to `cpu`.
fn pin_to_cpu(cpu: usize) -> Result<()> {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu)?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)?;
    Ok(())
}

/// What serves a scenario: one of our Envoys, or the seed's Python service.
enum Server {
    Envoy { envoy: Envoy, _side: ReservedPort },
    Seed(seed::Seed),
}

impl Server {
    fn pid(&self) -> u32 {
        match self {
            Server::Envoy { envoy, .. } => envoy.pid(),
            Server::Seed(seed) => seed.pid(),
        }
    }

    fn log(&self) -> String {
        match self {
            Server::Envoy { envoy, .. } => envoy.log(),
            Server::Seed(_) => String::new(),
        }
    }
}

struct Running {
    kind: Kind,
    server: Server,
    script: PathBuf,
    url: String,
    rps: Vec<f64>,
    p50: Vec<f64>,
    p99: Vec<f64>,
    cpu_us: Vec<f64>,
    vs_plain: Vec<f64>,
    vs_empty: Vec<f64>,
    /// Per-round ratio to [`Kind::anchor`], when the scenario has one.
    vs_anchor: Vec<f64>,
}

/// What one bench run is made of.
struct Setup<'a> {
    root: &'a Path,
    filter_wasm: &'a Path,
    noop_wasm: &'a Path,
    seed_python: &'a Path,
    machine: String,
    only: &'a [String],
    plan: Plan,
    mode: &'static str,
}

async fn measure(setup: &Setup<'_>) -> Result<Report> {
    let Setup {
        root,
        filter_wasm,
        noop_wasm,
        seed_python,
        only,
        mode,
        ..
    } = *setup;
    let plan = &setup.plan;
    let plane = ControlPlane::start(&control::release_dir(root), filter_wasm).await?;
    let session = plane.sign_in().await?;
    let jwks = plane.jwks().await?;
    let now = unix_now();
    let forged = forge::tokens(plane.issuer(), plane.resource()?, now)?;
    let dir = tempfile::tempdir()?;
    // Scenarios that could not be measured, with the reason.
    let mut missing: Vec<(String, String)> = Vec::new();

    let mut kinds = vec![
        Kind::Plain,
        Kind::EmptyWasm,
        Kind::JwtAuthn { cached: false },
        Kind::JwtAuthn { cached: true },
        Kind::FilterOnly,
        Kind::FullChainPerRequest,
        Kind::FullChainFast,
        Kind::EmptyWasmCall,
        Kind::PolicyCallFast,
        Kind::PlainList,
        Kind::EmptyWasmList,
        Kind::PolicyListFiltered,
    ];
    kinds.extend(
        forge::ALGS
            .iter()
            .map(|(_, alg)| Kind::FilterUncached { alg }),
    );
    if !only.is_empty() {
        let chosen = |k: &Kind| only.iter().any(|o| *o == k.name());
        let anchors: Vec<Kind> = kinds
            .iter()
            .filter(|k| chosen(k))
            .flat_map(|k| k.anchors().iter().copied())
            .collect();
        kinds.retain(|k| {
            matches!(k, Kind::Plain | Kind::EmptyWasm) || chosen(k) || anchors.contains(k)
        });
    }
    let inputs = scenarios::Inputs {
        rendered_fast: &plane.rendered_fast,
        rendered: &plane.rendered,
        rendered_policy_fast: &plane.rendered_policy_fast,
        noop_wasm,
        issuer: plane.issuer(),
        resource: plane.resource()?,
        jwks: &jwks,
        side_jwks: &forged.jwks,
    };
    let mut running = Vec::new();
    for kind in kinds {
        let port = ReservedPort::new()?;
        let side = ReservedPort::new()?;
        let bootstrap = scenarios::bootstrap(kind, &inputs, port.port(), side.port())?;
        let envoy = Envoy::start(&bootstrap, port)
            .await
            .with_context(|| format!("starting the {} Envoy", kind.name()))?;
        let token = match kind {
            Kind::FilterUncached { alg } => forged
                .tokens
                .iter()
                .find(|(name, _)| *name == alg)
                .map(|(_, t)| t.clone())
                .context("forged token")?,
            _ => session.access_token.clone(),
        };
        let script = dir.path().join(format!("{}.lua", kind.name()));
        let body = kind.workload().request_body();
        std::fs::write(
            &script,
            wrk::script(Some(&format!("Bearer {token}")), &body),
        )?;
        let url = plane.mcp_url(&envoy);
        let ready = async {
            check_answers(&url, &token, &body, &envoy, kind).await?;
            if let Some(expect) = expectation(kind) {
                policy::check(&url, &token, expect).await.with_context(|| {
                    format!("scenario {}\nEnvoy log:\n{}", kind.name(), envoy.log())
                })?;
            }
            anyhow::Ok(())
        };
        if let Err(err) = ready.await {
            // A policy scenario that misbehaves is reported as not measured rather than
            // ending the run: the other scenarios still count.
            if expectation(kind).is_none() {
                return Err(err);
            }
            eprintln!("{} is not measured: {err:#}", kind.name());
            let reason = format!("{err:#}");
            let first = reason.lines().next().unwrap_or_default().to_owned();
            missing.push((kind.name(), first));
            continue;
        }
        running.push(Running {
            kind,
            server: Server::Envoy { envoy, _side: side },
            script,
            url,
            rps: Vec::new(),
            p50: Vec::new(),
            p99: Vec::new(),
            cpu_us: Vec::new(),
            vs_plain: Vec::new(),
            vs_empty: Vec::new(),
            vs_anchor: Vec::new(),
        });
    }

    if only.is_empty() || only.iter().any(|o| o == "seed_verify") {
        match seed::start(root, seed_python, &plane.redis.url()).await {
            Ok(seed) => {
                let script = dir.path().join("seed_verify.lua");
                std::fs::write(
                    &script,
                    wrk::script(Some(&format!("Bearer {}", seed.token)), wrk::LIST_BODY),
                )?;
                running.push(Running {
                    kind: Kind::SeedVerify,
                    url: seed.url.clone(),
                    server: Server::Seed(seed),
                    script,
                    rps: Vec::new(),
                    p50: Vec::new(),
                    p99: Vec::new(),
                    cpu_us: Vec::new(),
                    vs_plain: Vec::new(),
                    vs_empty: Vec::new(),
                    vs_anchor: Vec::new(),
                });
            }
            Err(err) => missing.push(("seed_verify".into(), format!("{err:#}"))),
        }
    }

    let service_pids = plane.service_pids();
    for round in 0..plan.rounds {
        println!("round {}/{}", round + 1, plan.rounds);
        // Rotate the order each round so no scenario always follows the same one.
        let order: Vec<usize> = (0..running.len())
            .map(|i| (i + round) % running.len())
            .collect();
        for &i in &order {
            let scenario = &mut running[i];
            let spec = |duration| wrk::LoadSpec {
                url: &scenario.url,
                script: &scenario.script,
                duration,
                connections: 64,
                cpu: LOAD_CPU,
            };
            tokio::task::block_in_place(|| wrk::run(&spec(plan.warmup)))?;
            let mut pids = service_pids.clone();
            pids.push(scenario.server.pid());
            let before = procstat::cpu_time_of(&pids)?;
            let load = tokio::task::block_in_place(|| wrk::run(&spec(plan.measure)))
                .with_context(|| format!("{}\n{}", scenario.kind.name(), scenario.server.log()))?;
            let cpu = procstat::cpu_time_of(&pids)?.saturating_sub(before);
            scenario.rps.push(load.rps);
            scenario.p50.push(load.p50_ms);
            scenario.p99.push(load.p99_ms);
            scenario
                .cpu_us
                .push(cpu.as_secs_f64() * 1e6 / load.requests.max(1) as f64);
            println!(
                "  {:<26} {:>9.0} req/s  p50 {:.3} ms  p99 {:.3} ms",
                scenario.kind.name(),
                load.rps,
                load.p50_ms,
                load.p99_ms
            );
        }
        let rps_of = |kind: Kind| {
            running
                .iter()
                .find(|s| s.kind == kind)
                .and_then(|s| s.rps.last().copied())
        };
        let (plain, empty) = (
            rps_of(Kind::Plain).unwrap_or(f64::NAN),
            rps_of(Kind::EmptyWasm).unwrap_or(f64::NAN),
        );
        let anchors: Vec<Option<f64>> = running
            .iter()
            .map(|s| s.kind.anchor().and_then(rps_of))
            .collect();
        for (scenario, anchor) in running.iter_mut().zip(anchors) {
            let rps = scenario.rps.last().copied().unwrap_or(f64::NAN);
            scenario.vs_plain.push(rps / plain);
            scenario.vs_empty.push(rps / empty);
            if let Some(anchor) = anchor {
                scenario.vs_anchor.push(rps / anchor);
            }
        }
    }

    let mut report = Report {
        machine: setup.machine.clone(),
        mode,
        ..Default::default()
    };
    report.moderate_load = moderate_load(&running, plan)?;
    let mut revocation_urls = vec![plane.mcp_url(&plane.gateway)];
    revocation_urls.extend(
        running
            .iter()
            .filter(|s| matches!(s.kind, Kind::FullChainPerRequest | Kind::FullChainFast))
            .map(|s| s.url.clone()),
    );
    report.revocation_propagation_ms =
        revocation_times(&plane, &revocation_urls, plan.revocations).await?;
    let plain_rss = running
        .iter()
        .find(|s| s.kind == Kind::Plain)
        .map(|s| procstat::rss_bytes(s.server.pid()))
        .transpose()?
        .unwrap_or(0);
    for scenario in &mut running {
        let rss = procstat::rss_bytes(scenario.server.pid())?;
        if scenario.kind == Kind::FilterOnly {
            report.memory.push((
                "Filter VM linear memory (the filter's own gauge, one VM)".into(),
                match &scenario.server {
                    Server::Envoy { envoy, .. } => vm_memory(envoy).await?,
                    Server::Seed(_) => 0,
                },
            ));
            report.memory.push((
                "Envoy RSS with the filter − plain Envoy (V8 runtime and every VM included)".into(),
                rss.saturating_sub(plain_rss),
            ));
        }
        let what = match scenario.server {
            Server::Envoy { .. } => "Envoy RSS",
            Server::Seed(_) => "Python RSS",
        };
        report
            .memory
            .push((format!("{what}, {}", scenario.kind.name()), rss));
        report.scenarios.push(Summary {
            name: scenario.kind.name(),
            description: describe(scenario.kind),
            runs: scenario.rps.len(),
            rps: median(&mut scenario.rps),
            p50_ms: median(&mut scenario.p50),
            p99_ms: median(&mut scenario.p99),
            cpu_per_req_us: median(&mut scenario.cpu_us),
            vs_plain: median(&mut scenario.vs_plain),
            vs_empty_wasm: median(&mut scenario.vs_empty),
            anchor: scenario
                .kind
                .anchor()
                .map(|anchor| (anchor.name(), median(&mut scenario.vs_anchor))),
        });
    }
    report.memory.push((
        "ext_authz RSS".into(),
        procstat::rss_bytes(plane.ext_authz.pid())?,
    ));
    report.memory.push((
        "authserver RSS".into(),
        procstat::rss_bytes(plane.authserver.pid())?,
    ));
    report.wasm_bytes = std::fs::metadata(filter_wasm)?.len();
    report.handoff_mac = Some(handoff_mac::measure()?);
    report.missing = missing;
    drop(running);
    drop(plane);
    if only.is_empty() {
        let (exchange, refresh) = token_endpoint(root)?;
        report.token_exchange_rps = Some(exchange);
        report.token_refresh_rps = Some(refresh);
    }
    Ok(report)
}

/// The filter's `mcp_auth_filter_vm_memory_bytes` gauge, from Envoy's admin stats.
async fn vm_memory(envoy: &Envoy) -> Result<u64> {
    let url = format!(
        "http://{}/stats?filter=mcp_auth_filter_vm_memory_bytes",
        envoy.admin()
    );
    let text = reqwest::get(url).await?.text().await?;
    text.lines()
        .find_map(|l| l.split_once(": "))
        .and_then(|(_, v)| v.trim().parse().ok())
        .with_context(|| format!("no VM memory gauge in Envoy's stats: {text:?}"))
}

/// Connections of the moderate-load pass: few enough that requests do not queue behind
/// each other on the one Envoy worker, so latency shows the filters' own cost.
const MODERATE_CONNECTIONS: u32 = 4;

/// p50/p99 of plain Envoy, the filter and the whole chain at moderate load, interleaved
/// over the plan's rounds (medians).
fn moderate_load(running: &[Running], plan: &Plan) -> Result<Vec<(String, f64, f64)>> {
    let chosen: Vec<&Running> = running
        .iter()
        .filter(|s| {
            matches!(
                s.kind,
                Kind::Plain
                    | Kind::FilterOnly
                    | Kind::FullChainPerRequest
                    | Kind::FullChainFast
                    | Kind::PlainList
                    | Kind::EmptyWasmList
                    | Kind::PolicyListFiltered
            )
        })
        .collect();
    let mut samples: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); chosen.len()];
    println!("moderate load ({MODERATE_CONNECTIONS} connections)");
    for _ in 0..plan.rounds.min(4) {
        for (scenario, (p50, p99)) in chosen.iter().zip(samples.iter_mut()) {
            let load = tokio::task::block_in_place(|| {
                wrk::run(&wrk::LoadSpec {
                    url: &scenario.url,
                    script: &scenario.script,
                    duration: plan.measure,
                    connections: MODERATE_CONNECTIONS,
                    cpu: LOAD_CPU,
                })
            })?;
            p50.push(load.p50_ms);
            p99.push(load.p99_ms);
        }
    }
    Ok(chosen
        .iter()
        .zip(samples.iter_mut())
        .map(|(s, (p50, p99))| (s.kind.name(), median(p50), median(p99)))
        .collect())
}

/// What [`policy::check`] must find at a scenario before it is measured.
fn expectation(kind: Kind) -> Option<policy::Expect> {
    match kind {
        Kind::PolicyCallFast => Some(policy::Expect::PolicyDecidesCalls),
        Kind::PlainList | Kind::EmptyWasmList => Some(policy::Expect::WholeList),
        Kind::PolicyListFiltered => Some(policy::Expect::FilteredList),
        _ => None,
    }
}

/// A scenario must let the token and its request `body` through (200); anything else
/// would measure a refusal.
async fn check_answers(
    url: &str,
    token: &str,
    body: &str,
    envoy: &Envoy,
    kind: Kind,
) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let response = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?
            .post(url)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_owned())
            .send()
            .await?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        // The filter answers 503 until its first JWKS fetch lands.
        if status != reqwest::StatusCode::SERVICE_UNAVAILABLE || Instant::now() > deadline {
            let body = response.text().await.unwrap_or_default();
            bail!(
                "scenario {} answers {status} {body}\nEnvoy log:\n{}",
                kind.name(),
                envoy.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `/revoke` → the first refused request at every one of `urls`, `times` over.
async fn revocation_times(plane: &ControlPlane, urls: &[String], times: usize) -> Result<Vec<f64>> {
    let mut session = plane.sign_in().await?;
    let client = reqwest::Client::new();
    let status = |url: &str, token: &str| {
        client
            .post(url)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
            .send()
    };
    let mut out = Vec::new();
    for _ in 0..times {
        plane.refresh(&mut session).await?;
        // Let through = neither 401 nor 403 (the gateway Envoy has no upstream here: 503).
        for url in urls {
            let code = status(url, &session.access_token).await?.status();
            if code == reqwest::StatusCode::UNAUTHORIZED || code == reqwest::StatusCode::FORBIDDEN {
                bail!("a fresh token is refused ({code}) at {url}");
            }
        }
        let started = Instant::now();
        plane.revoke(&session).await?;
        for url in urls {
            loop {
                let code = status(url, &session.access_token).await?.status();
                if code == reqwest::StatusCode::UNAUTHORIZED {
                    break;
                }
                if started.elapsed() > Duration::from_secs(10) {
                    bail!("a revoked token is still accepted at {url} after 10 s");
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        out.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(out)
}

/// `cargo bench -p mcp-auth-authserver --bench token`: code exchanges and refreshes per
/// second on one core.
fn token_endpoint(root: &Path) -> Result<(f64, f64)> {
    let output = std::process::Command::new("cargo")
        .current_dir(root)
        .args([
            "bench",
            "-q",
            "-p",
            "mcp-auth-authserver",
            "--bench",
            "token",
        ])
        .output()
        .context("running the /token bench")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "the /token bench failed: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let rate = |label: &str| -> Result<f64> {
        text.lines()
            .find(|l| l.contains(label))
            .and_then(|l| l.split(':').nth(1))
            .and_then(|v| v.trim().trim_end_matches("/s").trim().parse().ok())
            .with_context(|| format!("no {label} rate in: {text}"))
    };
    Ok((
        rate("authorization_code exchanges")?,
        rate("refresh_token rotations")?,
    ))
}

fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    format!("{model}, {cpus} CPUs visible")
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

//! The bench's output: one table on stdout, `target/bench/results.json`, and
//! `docs/benchmarks.md` with its chart `docs/benchmarks.svg`.

mod ceiling;
mod goals;

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use serde_json::{Value, json};

/// One scenario, summarised over its rounds (medians).
#[derive(Debug, Clone)]
pub struct Summary {
    pub name: String,
    pub description: &'static str,
    pub runs: usize,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub cpu_per_req_us: f64,
    /// Median of the per-round ratios to plain Envoy.
    pub vs_plain: f64,
    /// Median of the per-round ratios to the empty wasm filter.
    pub vs_empty_wasm: f64,
    /// The anchor of the scenario's own workload and the median of the per-round ratios
    /// to it.
    pub anchor: Option<(String, f64)>,
}

/// Everything one `cargo xtask bench` measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub machine: String,
    pub mode: &'static str,
    pub scenarios: Vec<Summary>,
    /// Scenarios the suite names but could not run, with the reason.
    pub missing: Vec<(String, String)>,
    pub revocation_propagation_ms: Vec<f64>,
    pub token_exchange_rps: Option<f64>,
    pub token_refresh_rps: Option<f64>,
    /// `(what, bytes)`.
    pub memory: Vec<(String, u64)>,
    pub wasm_bytes: u64,
    /// The hand-off MAC, timed natively.
    pub handoff_mac: Option<super::handoff_mac::MacCost>,
    /// `(scenario, p50 ms, p99 ms)` at moderate load.
    pub moderate_load: Vec<(String, f64, f64)>,
}

pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

impl Report {
    fn find(&self, name: &str) -> Option<&Summary> {
        self.scenarios.iter().find(|s| s.name == name)
    }

    pub fn json(&self) -> Value {
        let mut scenarios = serde_json::Map::new();
        for s in &self.scenarios {
            let mut entry = json!({
                "rps": s.rps.round(),
                "p50_ms": round3(s.p50_ms),
                "p99_ms": round3(s.p99_ms),
                "cpu_per_req_us": round3(s.cpu_per_req_us),
                "server_cpu_busy": round3(s.busy()),
                "runs": s.runs,
                "ratio_to_plain_envoy": round3(s.vs_plain),
                "ratio_to_empty_wasm": round3(s.vs_empty_wasm),
            });
            if let Some((anchor, ratio)) = &s.anchor {
                entry["anchor"] = json!(anchor);
                entry["ratio_to_anchor"] = json!(round3(*ratio));
            }
            scenarios.insert(s.name.clone(), entry);
        }
        let ceiling = self.load_ceiling();
        for (name, reason) in &self.missing {
            scenarios.insert(name.clone(), json!({"missing": reason}));
        }
        let mut revocation = self.revocation_propagation_ms.clone();
        json!({
            "machine": self.machine,
            "mode": self.mode,
            "scenarios": scenarios,
            "revocation_propagation_ms": round3(median(&mut revocation)),
            "revocation_propagation_ms_max": revocation.last().copied().map(round3),
            "token_endpoint_rps": self.token_refresh_rps.map(f64::round),
            "token_endpoint_code_exchange_rps": self.token_exchange_rps.map(f64::round),
            "memory_bytes": self.memory.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "filter_wasm_bytes": self.wasm_bytes,
            "handoff_mac": self.handoff_mac.map(|m| json!({
                "bytes": m.bytes,
                "sign_ns": m.sign_ns.round(),
                "verify_ns": m.verify_ns.round(),
            })),
            "moderate_load": self.moderate_load.iter().map(|(name, p50, p99)| {
                (name.clone(), json!({"p50_ms": round3(*p50), "p99_ms": round3(*p99)}))
            }).collect::<serde_json::Map<_, _>>(),
            "load_generator_bound": {
                "bound": ceiling.is_some(),
                "ceiling_rps": ceiling.map(|c| c.rps.round()),
                "busiest_server_cpu": ceiling.map(|c| round3(c.busiest)),
            },
            "goals": self.goals_json(),
        })
    }

    /// The table, in Markdown (also what stdout shows).
    pub fn table(&self) -> String {
        let mut out = String::new();
        out.push_str("| scenario | req/s (median) | ÷ plain Envoy | ÷ empty wasm | p50 ms | p99 ms | server CPU µs/req | runs |\n");
        out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
        for s in &self.scenarios {
            let _ = writeln!(
                out,
                "| `{}` — {} | {:.0} | {:.2} | {:.2} | {:.3} | {:.3} | {:.1} | {} |",
                s.name,
                s.description,
                s.rps,
                s.vs_plain,
                s.vs_empty_wasm,
                s.p50_ms,
                s.p99_ms,
                s.cpu_per_req_us,
                s.runs
            );
        }
        for (name, reason) in &self.missing {
            let _ = writeln!(out, "| `{name}` | not measured: {reason} | | | | | | |");
        }
        out
    }

    /// The derived figures the issues ask for, one per line.
    pub fn findings(&self) -> String {
        let mut out = String::new();
        if let Some(line) = self.ceiling_finding() {
            let _ = writeln!(out, "{line}");
        }
        let ratio =
            |a: &str, b: &str| -> Option<f64> { Some(self.find(a)?.rps / self.find(b)?.rps) };
        if let Some(v) = self.filter_vs_empty() {
            let _ = writeln!(
                out,
                "- Our filter, valid cached token ÷ empty wasm filter: {} (goal ≥ 0.95×).",
                v.describe()
            );
        }
        if let Some(r) = ratio("filter_only", "jwt_authn_native") {
            let _ = writeln!(
                out,
                "- Our filter ÷ native `jwt_authn` without its cache: **{r:.2}×** (goal ≥ 1.5×)."
            );
        }
        if let Some(r) = ratio("filter_only", "jwt_authn_native_cached") {
            let _ = writeln!(
                out,
                "- Our filter ÷ native `jwt_authn` with `jwt_cache_config`: **{r:.2}×**."
            );
        }
        if let Some(s) = self.find("full_chain_per_request") {
            let _ = writeln!(
                out,
                "- Whole chain (filter + ext_authz per request) ÷ plain Envoy: **{:.2}×**; ÷ filter alone: **{:.2}×**.",
                s.vs_plain,
                ratio("full_chain_per_request", "filter_only").unwrap_or(f64::NAN)
            );
            if let Some(f) = self.find("filter_only") {
                let _ = writeln!(
                    out,
                    "- The per-request ext_authz hop costs ≈ **{:.0} µs** of server CPU per request and adds {:.3} ms at p50, {:.3} ms at p99.",
                    s.cpu_per_req_us - f.cpu_per_req_us,
                    s.p50_ms - f.p50_ms,
                    s.p99_ms - f.p99_ms
                );
            }
        }
        if let (Some(fast), Some(v)) = (self.find("full_chain_fast"), self.fast_vs_empty()) {
            let _ = writeln!(
                out,
                "- Whole chain in fast mode (ext_authz asked on a cache miss only) ÷ Envoy with an empty wasm filter: {} (goal ≥ 0.9×); ÷ plain Envoy: **{:.2}×**; ÷ the chain per request: **{:.2}×**.",
                v.describe(),
                fast.vs_plain,
                ratio("full_chain_fast", "full_chain_per_request").unwrap_or(f64::NAN)
            );
            if let Some(seed) = self.find("seed_verify") {
                let _ = writeln!(
                    out,
                    "- Fast mode ÷ the seed's verify endpoint: **{:.1}×** (goal ≥ 20×; {:.0} µs vs {:.0} µs of server CPU per request).",
                    ratio("full_chain_fast", "seed_verify").unwrap_or(f64::NAN),
                    fast.cpu_per_req_us,
                    seed.cpu_per_req_us
                );
            }
        }
        self.policy_findings(&mut out);
        if let Some(seed) = self.find("seed_verify") {
            let _ = writeln!(
                out,
                "- Against the seed's verify endpoint ({:.0} req/s, {:.0} µs CPU per request, no proxy in front): the whole chain per request is **{:.1}×**, our filter alone **{:.1}×**.",
                seed.rps,
                seed.cpu_per_req_us,
                ratio("full_chain_per_request", "seed_verify").unwrap_or(f64::NAN),
                ratio("filter_only", "seed_verify").unwrap_or(f64::NAN)
            );
        }
        if let (Some(plain), Some(filter)) = (self.find("plain_envoy"), self.find("filter_only")) {
            for alg in ["eddsa", "es256", "rs256"] {
                if let Some(u) = self.find(&format!("filter_uncached_{alg}")) {
                    let _ = writeln!(
                        out,
                        "- Uncached (first-use) verification, {alg}: ≈ **{:.0} µs** of CPU per request over the cached filter ({:.0} req/s, {:.2}× plain Envoy).",
                        u.cpu_per_req_us - filter.cpu_per_req_us,
                        u.rps,
                        u.rps / plain.rps
                    );
                }
            }
        }
        if let Some(mac) = self.handoff_mac {
            let share = self
                .find("full_chain_per_request")
                .map_or_else(String::new, |s| {
                    format!(
                        ", {:.1} % of the per-request chain's {:.0} µs",
                        (mac.sign_ns + mac.verify_ns) / 10.0 / s.cpu_per_req_us,
                        s.cpu_per_req_us
                    )
                });
            let _ = writeln!(
                out,
                "- Hand-off MAC (keyed BLAKE3 over a {}-byte hand-off, native, one core): sign **{:.2} µs**, verify **{:.2} µs**{share}. Per request in per-request mode (the filter signs, inside V8, and ext_authz verifies); once each per cache miss in fast mode.",
                mac.bytes,
                mac.sign_ns / 1000.0,
                mac.verify_ns / 1000.0,
            );
        }
        let plain_moderate = self
            .moderate_load
            .iter()
            .find(|(name, ..)| name == "plain_envoy");
        if let Some((_, plain_p50, plain_p99)) = plain_moderate {
            // The list scenarios have their own baseline (policy findings).
            for (name, p50, p99) in self.moderate_load.iter().filter(|(n, ..)| {
                n != "plain_envoy" && Self::moderate_baseline(n).0 == "plain_envoy"
            }) {
                let _ = writeln!(
                    out,
                    "- At moderate load (4 connections), `{name}` adds {:.3} ms at p50 and **{:.3} ms at p99** over plain Envoy (goal ≤ 0.5 ms at p99).",
                    p50 - plain_p50,
                    p99 - plain_p99
                );
            }
        }
        let mut revocation = self.revocation_propagation_ms.clone();
        if !revocation.is_empty() {
            let n = revocation.len();
            let med = median(&mut revocation);
            let _ = writeln!(
                out,
                "- Revocation: `/revoke` → first refused request at every Envoy: median **{med:.0} ms**, max {:.0} ms over {n} (goal ≤ 1 s).",
                revocation.last().copied().unwrap_or(f64::NAN)
            );
        }
        if let (Some(x), Some(r)) = (self.token_exchange_rps, self.token_refresh_rps) {
            let _ = writeln!(
                out,
                "- `/token` on one core: {x:.0} code exchanges/s, {r:.0} refreshes/s (goal ≥ 2,000/s)."
            );
        }
        let _ = writeln!(
            out,
            "- Filter `.wasm`: {:.0} KiB (goal ≤ 1 MiB).",
            self.wasm_bytes as f64 / 1024.0
        );
        for (what, bytes) in &self.memory {
            let _ = writeln!(out, "- {what}: {:.1} MiB", mib(*bytes));
        }
        out
    }

    /// Writes the JSON and, given `docs_dir`, the Markdown page and the chart.
    pub fn write(&self, json_path: &Path, docs_dir: Option<&Path>) -> Result<()> {
        if let Some(parent) = json_path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(json_path, serde_json::to_string_pretty(&self.json())?)?;
        let Some(docs_dir) = docs_dir else {
            return Ok(());
        };
        std::fs::create_dir_all(docs_dir)?;
        std::fs::write(docs_dir.join("benchmarks.svg"), self.chart())?;
        let page = format!(
            "# Benchmarks\n\n\
             Written by `cargo xtask bench` ({mode}) on {machine}. Envoy 1.40 with `--concurrency 1`, \
             pinned with every server-side process to CPU 0; wrk (`-t2 -c64`, POST with a small JSON-RPC body) \
             pinned to CPU 1; loopback only; scenarios interleaved round by round, ratios taken within \
             each round, medians reported. Every scenario answers the MCP route with a direct 200 once the \
             whole request body is in (a buffer filter, as the fast chain has, where no filter reads \
             the body: an answer sent before the body makes Envoy close the connection), so only the \
             filters differ; the `mcp_policy` scenarios send a ~1 KiB `tools/call` or are \
             answered with a 50-tool list, and are compared with the anchors of the same request. The machine is shared and noisy: compare ratios, not absolute numbers.\n\n\
             ![requests per second relative to plain Envoy](benchmarks.svg)\n\n{table}\n{findings}",
            mode = self.mode,
            machine = self.machine,
            table = self.table(),
            findings = self.findings(),
        );
        std::fs::write(docs_dir.join("benchmarks.md"), page)?;
        Ok(())
    }

    /// A horizontal bar chart of each scenario's throughput relative to plain Envoy.
    pub fn chart(&self) -> String {
        let (bar_h, gap, left, width) = (22.0, 8.0, 250.0, 420.0);
        let top = 40.0;
        let height = top + (bar_h + gap) * self.scenarios.len() as f64 + 30.0;
        let max = self
            .scenarios
            .iter()
            .map(|s| s.vs_plain)
            .fold(1.0_f64, f64::max);
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
             <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
             <text x=\"10\" y=\"22\" font-size=\"14\" font-weight=\"bold\">Requests/s relative to plain Envoy (median of per-round ratios)</text>\n",
            w = left + width + 80.0
        );
        for (i, s) in self.scenarios.iter().enumerate() {
            let y = top + (bar_h + gap) * i as f64;
            let len = (s.vs_plain / max * width).max(1.0);
            let colour = match s.name.as_str() {
                "plain_envoy"
                | "empty_wasm"
                | "empty_wasm_tools_call"
                | "plain_envoy_list"
                | "empty_wasm_list" => "#9e9e9e",
                n if n.starts_with("jwt_authn") => "#f39c12",
                _ => "#2e86c1",
            };
            let _ = writeln!(
                svg,
                "<text x=\"{tx}\" y=\"{ty}\" text-anchor=\"end\">{name}</text>\
                 <rect x=\"{left}\" y=\"{y}\" width=\"{len:.1}\" height=\"{bar_h}\" fill=\"{colour}\"/>\
                 <text x=\"{vx:.1}\" y=\"{ty}\">{ratio:.2}× ({rps:.0}/s)</text>",
                tx = left - 8.0,
                ty = y + bar_h * 0.7,
                name = s.name,
                vx = left + len + 6.0,
                ratio = s.vs_plain,
                rps = s.rps,
            );
        }
        svg.push_str("</svg>\n");
        svg
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// A scenario's summary for the report's tests, to be varied field by field: 3 runs at
/// 1,000 req/s, p50 1 ms, p99 2 ms, 50 µs of CPU per request, every ratio 1, no anchor.
#[cfg(test)]
impl Summary {
    fn sample(name: &str) -> Self {
        Summary {
            name: name.to_owned(),
            description: "d",
            runs: 3,
            rps: 1_000.0,
            p50_ms: 1.0,
            p99_ms: 2.0,
            cpu_per_req_us: 50.0,
            vs_plain: 1.0,
            vs_empty_wasm: 1.0,
            anchor: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(name: &str, rps: f64, vs_plain: f64) -> Summary {
        Summary {
            rps,
            vs_plain,
            ..Summary::sample(name)
        }
    }

    #[test]
    fn median_of_even_and_odd_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }

    #[test]
    fn json_has_the_issue_format_and_names_missing_scenarios() {
        let report = Report {
            machine: "m".into(),
            mode: "quick",
            scenarios: vec![summary("plain_envoy", 100.0, 1.0)],
            missing: vec![("full_chain_fast".into(), "not built".into())],
            revocation_propagation_ms: vec![30.0, 10.0, 20.0],
            token_refresh_rps: Some(5000.4),
            ..Default::default()
        };
        let json = report.json();
        assert_eq!(json["scenarios"]["plain_envoy"]["rps"], 100.0);
        assert_eq!(json["scenarios"]["plain_envoy"]["runs"], 3);
        assert_eq!(json["scenarios"]["full_chain_fast"]["missing"], "not built");
        assert_eq!(json["revocation_propagation_ms"], 20.0);
        assert_eq!(json["token_endpoint_rps"], 5000.0);
    }

    #[test]
    fn chart_has_one_bar_per_scenario() {
        let report = Report {
            scenarios: vec![summary("a", 1.0, 1.0), summary("b", 1.0, 0.5)],
            ..Default::default()
        };
        assert_eq!(report.chart().matches("<rect x=").count(), 2);
    }
}

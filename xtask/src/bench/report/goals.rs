//! The goals the issues set, as figures: the findings of the `mcp_policy` scenarios (issue
//! 13) and every ratio goal in `results.json`, each with the figure that counts
//! ([`super::ceiling`]: req/s, or CPU per request when the load generator capped req/s).

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use super::ceiling::Versus;
use super::{Report, round3};

/// Our filter, valid cached token, ÷ the empty wasm filter.
const FILTER_GOAL: f64 = 0.95;
/// The fast chain ÷ the empty wasm filter.
const FAST_GOAL: f64 = 0.9;
/// The fast chain deciding a `tools/call` by policy ÷ the empty wasm filter on that request.
const POLICY_CALL_GOAL: f64 = 0.85;
/// p99 that filtering a 50-tool list may add at moderate load.
const POLICY_LIST_P99_GOAL_MS: f64 = 0.3;

impl Report {
    /// `name` against `base` with the per-round ratio where one was taken.
    fn versus_per_round(&self, name: &str, base: &str) -> Option<Versus> {
        let s = self.find(name)?;
        let per_round = match &s.anchor {
            Some((anchor, ratio)) if anchor == base => Some(*ratio),
            _ if base == "empty_wasm" => Some(s.vs_empty_wasm),
            _ if base == "plain_envoy" => Some(s.vs_plain),
            _ => None,
        };
        self.versus(name, base, per_round)
    }

    pub(super) fn filter_vs_empty(&self) -> Option<Versus> {
        self.versus_per_round("filter_only", "empty_wasm")
    }

    pub(super) fn fast_vs_empty(&self) -> Option<Versus> {
        self.versus_per_round("full_chain_fast", "empty_wasm")
    }

    fn policy_call(&self) -> Option<Versus> {
        self.versus_per_round("policy_call_fast", "empty_wasm_tools_call")
    }

    /// `(p50, p99)` that `name` adds over `base` at moderate load.
    pub(super) fn moderate_added(&self, name: &str, base: &str) -> Option<(f64, f64)> {
        let find = |n: &str| self.moderate_load.iter().find(|(m, ..)| m == n);
        let ((_, p50, p99), (_, b50, b99)) = (find(name)?, find(base)?);
        Some((p50 - b50, p99 - b99))
    }

    /// The plain-Envoy baseline and the p99 goal of a moderate-load scenario.
    pub(super) fn moderate_baseline(name: &str) -> (&'static str, Option<f64>) {
        match name {
            "policy_list_filtered" => ("plain_envoy_list", Some(POLICY_LIST_P99_GOAL_MS)),
            "empty_wasm_list" => ("plain_envoy_list", None),
            _ => ("plain_envoy", Some(0.5)),
        }
    }

    /// The `mcp_policy` scenarios' lines.
    pub(super) fn policy_findings(&self, out: &mut String) {
        if let (Some(v), Some(call), Some(empty)) = (
            self.policy_call(),
            self.find("policy_call_fast"),
            self.find("empty_wasm_tools_call"),
        ) {
            let _ = write!(
                out,
                "- Fast chain deciding a ~1 KiB `tools/call` by `mcp_policy` ÷ the empty wasm filter on the same request: {} (goal ≥ {POLICY_CALL_GOAL}×); server CPU **{:.0} µs** vs {:.0} µs per request",
                v.describe(),
                call.cpu_per_req_us,
                empty.cpu_per_req_us
            );
            match self.find("full_chain_fast") {
                Some(fast) => {
                    let _ = writeln!(
                        out,
                        " ({:+.0} µs over the fast chain on a small `tools/list`).",
                        call.cpu_per_req_us - fast.cpu_per_req_us
                    );
                }
                None => out.push_str(".\n"),
            }
        }
        if let Some(list) = self.find("policy_list_filtered") {
            let (base, goal) = Self::moderate_baseline(&list.name);
            if let Some((p50, p99)) = self.moderate_added(&list.name, base) {
                let _ = write!(
                    out,
                    "- Filtering a 50-tool `tools/list` answer (one SSE event) for the caller in the fast chain, at moderate load (4 connections): adds {p50:.3} ms at p50 and **{p99:.3} ms at p99** over plain Envoy answering the same list (goal ≤ {} ms)",
                    goal.unwrap_or(f64::NAN)
                );
                match self.moderate_added(&list.name, "empty_wasm_list") {
                    Some((_, over_empty)) => {
                        let _ = writeln!(
                            out,
                            "; {over_empty:.3} ms at p99 over the empty wasm filter."
                        );
                    }
                    None => out.push_str(".\n"),
                }
            }
            let cpu = |name: &str| self.find(name).map_or(f64::NAN, |s| s.cpu_per_req_us);
            let _ = writeln!(
                out,
                "- The filtered list costs **{:.0} µs** of server CPU per request, plain Envoy {:.0} µs and the empty wasm filter {:.0} µs on the same list; by throughput under load, ÷ plain Envoy: {}.",
                list.cpu_per_req_us,
                cpu("plain_envoy_list"),
                cpu("empty_wasm_list"),
                self.versus_per_round(&list.name, "plain_envoy_list")
                    .map_or_else(|| "n/a".to_owned(), |v| v.describe())
            );
        }
    }

    /// `goals` of results.json: each goal's figure, what it is a ratio of, and whether it
    /// is met.
    pub(super) fn goals_json(&self) -> Value {
        let mut goals = Map::new();
        let ratio = |v: Versus, min: f64| {
            json!({
                "value": round3(v.figure()),
                "by": v.by(),
                "rps_ratio": round3(v.rps_ratio),
                "cpu_ratio": round3(v.cpu_ratio),
                "goal_min": min,
                "met": v.figure() >= min,
            })
        };
        for (key, versus, min) in [
            (
                "filter_only_vs_empty_wasm",
                self.filter_vs_empty(),
                FILTER_GOAL,
            ),
            (
                "full_chain_fast_vs_empty_wasm",
                self.fast_vs_empty(),
                FAST_GOAL,
            ),
            (
                "policy_call_fast_vs_empty_wasm_tools_call",
                self.policy_call(),
                POLICY_CALL_GOAL,
            ),
        ] {
            if let Some(v) = versus {
                goals.insert(key.into(), ratio(v, min));
            }
        }
        if let Some((_, p99)) = self.moderate_added("policy_list_filtered", "plain_envoy_list") {
            goals.insert(
                "policy_list_filtered_p99_added_ms".into(),
                json!({
                    "value": round3(p99),
                    "over": "plain_envoy_list",
                    "goal_max": POLICY_LIST_P99_GOAL_MS,
                    "met": p99 <= POLICY_LIST_P99_GOAL_MS,
                }),
            );
        }
        Value::Object(goals)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Summary;
    use super::*;

    fn scenario(name: &str, rps: f64, cpu: f64, anchor: Option<(&str, f64)>) -> Summary {
        Summary {
            rps,
            cpu_per_req_us: cpu,
            anchor: anchor.map(|(a, r)| (a.to_owned(), r)),
            ..Summary::sample(name)
        }
    }

    #[test]
    fn policy_goals_use_their_own_anchors() {
        let report = Report {
            scenarios: vec![
                scenario("plain_envoy", 12_000.0, 79.0, None),
                scenario("empty_wasm_tools_call", 8_000.0, 118.0, None),
                scenario(
                    "policy_call_fast",
                    7_000.0,
                    135.0,
                    Some(("empty_wasm_tools_call", 0.87)),
                ),
                scenario("plain_envoy_list", 10_000.0, 95.0, None),
                scenario(
                    "policy_list_filtered",
                    6_000.0,
                    160.0,
                    Some(("plain_envoy_list", 0.6)),
                ),
            ],
            moderate_load: vec![
                ("plain_envoy_list".into(), 0.2, 0.4),
                ("policy_list_filtered".into(), 0.35, 0.6),
            ],
            ..Default::default()
        };
        let goals = report.goals_json();
        let call = &goals["policy_call_fast_vs_empty_wasm_tools_call"];
        assert_eq!(call["value"], 0.87);
        assert_eq!(call["by"], "rps");
        assert_eq!(call["met"], true);
        let list = &goals["policy_list_filtered_p99_added_ms"];
        assert_eq!(list["value"], 0.2);
        assert_eq!(list["met"], true);
        let mut findings = String::new();
        report.policy_findings(&mut findings);
        assert!(findings.contains("**0.87×**"), "{findings}");
        assert!(findings.contains("**0.200 ms at p99**"), "{findings}");
    }
}

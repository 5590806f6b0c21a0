//! When the load generator, not the server, sets the pace.
//!
//! wrk has one core and the servers the other. When scenarios that cost the server different
//! CPU per request all reach about the same req/s, or the server still had CPU to spare at
//! that rate, the ceiling is wrk's: their req/s ratios read ≈ 1 whatever the filters cost.
//! What a saturated server would do is then told by the CPU per request (throughput at
//! saturation is its inverse, so `b`'s CPU ÷ `a`'s reads like `a`'s req/s ÷ `b`'s), and that
//! is the figure the report counts.

use super::{Report, Summary};

/// Scenarios within this fraction below the highest req/s share its ceiling.
pub const BAND: f64 = 0.10;
/// Under this fraction of its core busy, the server had CPU to spare.
pub const SPARE: f64 = 0.85;

/// The run's load-generator ceiling, when every scenario reached it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadCeiling {
    pub rps: f64,
    /// The highest share of the server core any of them kept busy.
    pub busiest: f64,
    pub scenarios: usize,
}

/// `a` against `b`: by req/s, and by server CPU per request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Versus {
    pub rps_ratio: f64,
    /// `b`'s CPU per request ÷ `a`'s.
    pub cpu_ratio: f64,
    /// The load generator capped both: [`Self::cpu_ratio`] is the figure that counts.
    pub capped: bool,
}

impl Versus {
    /// The figure that counts.
    pub fn figure(&self) -> f64 {
        if self.capped {
            self.cpu_ratio
        } else {
            self.rps_ratio
        }
    }

    /// What the figure is a ratio of, for results.json.
    pub fn by(&self) -> &'static str {
        if self.capped { "cpu_per_req" } else { "rps" }
    }

    /// The figure in bold, then the other one.
    pub fn describe(&self) -> String {
        if self.capped {
            format!(
                "**{:.2}×** by server CPU per request (the load generator capped req/s, which read {:.2}×)",
                self.cpu_ratio, self.rps_ratio
            )
        } else {
            format!(
                "**{:.2}×** (by server CPU per request: {:.2}×)",
                self.rps_ratio, self.cpu_ratio
            )
        }
    }
}

impl Summary {
    /// Share of the server core the scenario kept busy (every server process is on it).
    pub fn busy(&self) -> f64 {
        self.rps * self.cpu_per_req_us / 1e6
    }
}

/// True when `set` was capped by the load generator at `ceiling` req/s: every one within
/// [`BAND`] of it, and either the server had CPU to spare or their CPU per request differs
/// by more than their req/s do (a saturated server slows in proportion to its work).
fn capped(set: &[&Summary], ceiling: f64) -> bool {
    if set.len() < 2 || !ceiling.is_finite() || ceiling <= 0.0 {
        return false;
    }
    let spread = |values: &mut dyn Iterator<Item = f64>| {
        let (lo, hi) = values.fold((f64::INFINITY, 0.0_f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        hi / lo
    };
    let near = set.iter().all(|s| s.rps >= (1.0 - BAND) * ceiling);
    let busiest = set.iter().map(|s| s.busy()).fold(0.0, f64::max);
    let rps_spread = spread(&mut set.iter().map(|s| s.rps));
    let cpu_spread = spread(&mut set.iter().map(|s| s.cpu_per_req_us));
    near && (busiest < SPARE || cpu_spread > rps_spread * (1.0 + BAND))
}

impl Report {
    /// The scenarios served by an Envoy under load (not the seed's Python service).
    fn envoy_scenarios(&self) -> Vec<&Summary> {
        self.scenarios
            .iter()
            .filter(|s| s.name != "seed_verify" && s.rps.is_finite())
            .collect()
    }

    fn ceiling_rps(&self) -> f64 {
        self.envoy_scenarios()
            .iter()
            .map(|s| s.rps)
            .fold(f64::NAN, f64::max)
    }

    /// `Some` when every scenario of the run sat at the load generator's ceiling.
    pub fn load_ceiling(&self) -> Option<LoadCeiling> {
        let all = self.envoy_scenarios();
        let rps = self.ceiling_rps();
        capped(&all, rps).then(|| LoadCeiling {
            rps,
            busiest: all.iter().map(|s| s.busy()).fold(0.0, f64::max),
            scenarios: all.len(),
        })
    }

    /// `a` against `b`; `rps_ratio`, when given, is the median of per-round ratios.
    pub fn versus(&self, a: &str, b: &str, rps_ratio: Option<f64>) -> Option<Versus> {
        let (sa, sb) = (self.find(a)?, self.find(b)?);
        Some(Versus {
            rps_ratio: rps_ratio.unwrap_or(sa.rps / sb.rps),
            cpu_ratio: sb.cpu_per_req_us / sa.cpu_per_req_us,
            capped: self.load_ceiling().is_some() || capped(&[sa, sb], self.ceiling_rps()),
        })
    }

    /// The finding that says the load generator was the bottleneck, if it was.
    pub fn ceiling_finding(&self) -> Option<String> {
        let ceiling = self.load_ceiling()?;
        Some(format!(
            "- **The load generator, not the server, is the bottleneck**: all {} scenarios within {:.0} % of {:.0} req/s, the server core at most {:.0} % busy or their CPU per request differing more than their req/s. The CPU-per-request ratios are the figures that count.",
            ceiling.scenarios,
            BAND * 100.0,
            ceiling.rps,
            ceiling.busiest * 100.0
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(name: &str, rps: f64, cpu: f64) -> Summary {
        Summary {
            rps,
            cpu_per_req_us: cpu,
            ..Summary::sample(name)
        }
    }

    fn report(scenarios: Vec<Summary>) -> Report {
        Report {
            scenarios,
            ..Default::default()
        }
    }

    #[test]
    fn one_ceiling_with_spare_cpu_is_the_load_generator() {
        // 10,000 req/s at 40 and 60 µs: the server was at most 60 % busy.
        let r = report(vec![
            scenario("plain_envoy", 10_000.0, 40.0),
            scenario("empty_wasm", 9_800.0, 60.0),
        ]);
        assert!(r.load_ceiling().is_some());
        let v = r.versus("empty_wasm", "plain_envoy", None).unwrap();
        assert!(v.capped);
        assert!((v.figure() - 40.0 / 60.0).abs() < 1e-9);
        assert!(r.ceiling_finding().unwrap().contains("bottleneck"));
    }

    #[test]
    fn a_saturated_server_is_measured_by_req_per_second() {
        // Busy ≈ 95 % and req/s falling with the work: the server is the limit.
        let r = report(vec![
            scenario("plain_envoy", 12_000.0, 79.0),
            scenario("empty_wasm", 9_000.0, 106.0),
            scenario("filter_only", 8_900.0, 108.0),
        ]);
        assert!(r.load_ceiling().is_none());
        let v = r.versus("filter_only", "empty_wasm", Some(0.96)).unwrap();
        assert!(!v.capped);
        assert_eq!(v.figure(), 0.96);
        assert_eq!(v.by(), "rps");
    }

    #[test]
    fn two_scenarios_at_the_ceiling_count_by_cpu_even_when_others_are_slower() {
        // The uncached scenario is slow, so not all are at one ceiling; the pair is.
        let r = report(vec![
            scenario("plain_envoy", 10_000.0, 40.0),
            scenario("empty_wasm", 9_900.0, 50.0),
            scenario("filter_uncached_rs256", 1_100.0, 850.0),
        ]);
        assert!(r.load_ceiling().is_none());
        assert!(r.versus("empty_wasm", "plain_envoy", None).unwrap().capped);
        assert!(
            !r.versus("filter_uncached_rs256", "plain_envoy", None)
                .unwrap()
                .capped
        );
    }
}

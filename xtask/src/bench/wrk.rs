//! One load run with wrk, pinned to its own core, and what it printed.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// What one wrk run measured.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub requests: u64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// How to load one URL.
pub struct LoadSpec<'a> {
    pub url: &'a str,
    /// The Lua script that shapes the request (method, headers, body).
    pub script: &'a Path,
    pub duration: Duration,
    pub connections: u32,
    /// CPU the load generator is pinned to (the servers run on the others).
    pub cpu: usize,
}

/// The JSON-RPC body most scenarios send: a small `tools/list`.
pub const LIST_BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;

/// A wrk script sending `POST` with the JSON-RPC `body` and `authorization`.
pub fn script(authorization: Option<&str>, body: &str) -> String {
    let auth = authorization.map_or_else(String::new, |value| {
        format!("wrk.headers[\"Authorization\"] = \"{value}\"\n")
    });
    // A Lua long bracket: the body is taken as written, quotes and backslashes included.
    format!(
        "wrk.method = \"POST\"\n\
         wrk.body = [==[{body}]==]\n\
         wrk.headers[\"Content-Type\"] = \"application/json\"\n\
         wrk.headers[\"Accept\"] = \"application/json, text/event-stream\"\n\
         {auth}"
    )
}

/// Runs wrk and parses its report. Any non-2xx answer fails the run: a benchmark of
/// refusals measures nothing.
pub fn run(spec: &LoadSpec<'_>) -> Result<Load> {
    let output = Command::new("taskset")
        .args(["-c", &spec.cpu.to_string(), "wrk", "-t2"])
        .arg(format!("-c{}", spec.connections))
        .arg(format!("-d{}s", spec.duration.as_secs().max(1)))
        .arg("--latency")
        .arg("-s")
        .arg(spec.script)
        .arg(spec.url)
        .output()
        .context("running wrk (apt-get install wrk; taskset is in util-linux)")?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!(
            "wrk failed: {}{}",
            text,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    parse(&text)
}

/// Parses wrk's `--latency` report.
pub fn parse(text: &str) -> Result<Load> {
    if let Some(line) = text
        .lines()
        .find(|l| l.contains("Non-2xx or 3xx responses"))
    {
        bail!("the server refused requests ({}):\n{text}", line.trim());
    }
    let requests = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .with_context(|| format!("no request count in wrk's report:\n{text}"))?;
    let rps = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .with_context(|| format!("no Requests/sec in wrk's report:\n{text}"))?;
    let percentile = |p: &str| -> Result<f64> {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(p))
            .and_then(|v| milliseconds(v.trim()))
            .with_context(|| format!("no {p} latency in wrk's report:\n{text}"))
    };
    Ok(Load {
        requests,
        rps,
        p50_ms: percentile("50%")?,
        p99_ms: percentile("99%")?,
    })
}

/// `512.00us`, `1.23ms`, `2.00s` → milliseconds.
fn milliseconds(value: &str) -> Option<f64> {
    let split = value.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().ok()?;
    match unit {
        "us" => Some(number / 1000.0),
        "ms" => Some(number),
        "s" => Some(number * 1000.0),
        "m" => Some(number * 60_000.0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "Running 3s test @ http://127.0.0.1:1/everything/mcp
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.10ms  512.00us  12.00ms   90.00%
    Req/Sec    10.30k   400.00    11.00k    70.00%
  Latency Distribution
     50%  812.00us
     75%    3.20ms
     90%    3.50ms
     99%    1.02s
  61800 requests in 3.00s, 5.00MB read
Requests/sec:  20600.12
Transfer/sec:      1.67MB
";

    #[test]
    fn parses_a_latency_report() {
        let load = parse(REPORT).unwrap();
        assert_eq!(load.requests, 61_800);
        assert!((load.rps - 20_600.12).abs() < 1e-9);
        assert!((load.p50_ms - 0.812).abs() < 1e-9);
        assert!((load.p99_ms - 1020.0).abs() < 1e-9);
    }

    #[test]
    fn refusals_fail_the_run() {
        let refused = REPORT.replace(
            "Requests/sec",
            "  Non-2xx or 3xx responses: 12\nRequests/sec",
        );
        assert!(parse(&refused).is_err());
    }

    #[test]
    fn the_script_carries_the_token_when_given() {
        assert!(script(Some("Bearer abc"), LIST_BODY).contains("\"Bearer abc\""));
        assert!(!script(None, LIST_BODY).contains("Authorization"));
        assert!(script(None, LIST_BODY).contains(&format!("[==[{LIST_BODY}]==]")));
    }
}

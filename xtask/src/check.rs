//! `cargo xtask test`: every check the project has, in CI order, with a summary.
//!
//! Nothing is skipped: a missing tool is installed first, and a tool that cannot be installed
//! fails the run with the command that installs it.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::envoy_config::validate_all;
use crate::process::run;
use crate::tools::Tools;
use crate::wasm;

struct Step {
    name: &'static str,
    outcome: Result<()>,
    took: Duration,
}

pub fn test(tools: &Tools) -> Result<()> {
    let root = tools.root.clone();
    let mut steps: Vec<Step> = Vec::new();
    let mut step = |name: &'static str, f: &mut dyn FnMut() -> Result<()>| {
        println!("\n==> {name}");
        let started = Instant::now();
        let outcome = f();
        if let Err(err) = &outcome {
            println!("!! {name} failed: {err:#}");
        }
        let ok = outcome.is_ok();
        steps.push(Step {
            name,
            outcome,
            took: started.elapsed(),
        });
        ok
    };
    let cargo = |args: &[&str]| {
        let mut command = Command::new("cargo");
        command.current_dir(&root).args(args);
        command
    };

    let installed = step("install toolchain", &mut || tools.install());
    step("cargo fmt --check", &mut || {
        run(&mut cargo(&["fmt", "--all", "--check"]))
    });
    step("clippy (host)", &mut || {
        run(&mut cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))
    });
    if installed {
        step("clippy (filter, wasm32)", &mut || wasm::clippy(&root));
    }
    let wasm_path = wasm::wasm_path(&root);
    let built = installed
        && step("wasm build (filter)", &mut || {
            wasm::build(&root).map(|_| ())
        });
    if built {
        step("envoy --mode validate", &mut || {
            validate_all(&root, &tools.envoy_bin()?, &wasm_path)
        });
        step("kubernetes/istio manifests", &mut || {
            crate::manifests::validate_manifests(tools, Some((&tools.envoy_bin()?, &wasm_path)))
        });
        // The compose test (tests/tests/compose.rs) runs these images.
        step("container images", &mut || {
            crate::images::build(
                tools,
                &crate::images::ImagesOptions {
                    tag: "latest".into(),
                },
            )
        });
        step("cargo test (unit + end-to-end)", &mut || {
            let mut command = cargo(&["test", "--workspace", "--no-fail-fast"]);
            command.envs(tools.test_env(&wasm_path)?);
            run(&mut command)
        });
    }

    println!("\nSummary");
    let mut failed = 0;
    for s in &steps {
        let status = if s.outcome.is_ok() { "ok" } else { "FAILED" };
        failed += usize::from(s.outcome.is_err());
        println!(
            "  {:<34} {:<7} {:>7.1}s",
            s.name,
            status,
            s.took.as_secs_f64()
        );
    }
    if !built {
        println!("  (the wasm build did not run or failed: validate and tests were not run)");
        failed += 1;
    }
    if failed > 0 {
        bail!("{failed} step(s) failed");
    }
    println!("all checks passed");
    Ok(())
}

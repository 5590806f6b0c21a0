//! The gateway config a run uses, the Envoy bootstrap rendered from it, and its validation
//! by Envoy itself (`--mode validate` loads the wasm filter and runs its `on_configure`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use mcp_auth_gateway::GatewayConfig;
use mcp_auth_gateway::config::ExtAuthzMode;
use mcp_auth_gateway::env::{Env, ProcessEnv};
use mcp_auth_gateway::envoy::{RenderOptions, render};

use crate::process::output_of;

/// The gateway config `cargo xtask up` runs unless told otherwise.
pub const DEFAULT_CONFIG: &str = "envoy/gateway.example.yaml";

/// Writes the config every component of a local run reads: `source` with the
/// `MCP_<NAME>_ENABLED` switches applied, validated. Returns its path and the parsed config.
pub fn write_effective_config(
    source: &Path,
    out: &Path,
    env: &dyn Env,
) -> Result<(PathBuf, GatewayConfig)> {
    let text = std::fs::read_to_string(source)
        .with_context(|| format!("cannot read {}", source.display()))?;
    let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text)
        .with_context(|| format!("{} is not YAML", source.display()))?;
    if let Some(services) = doc.get_mut("services").and_then(|s| s.as_sequence_mut()) {
        for service in services {
            let Some(name) = service
                .get("name")
                .and_then(|n| n.as_str())
                .map(str::to_owned)
            else {
                continue;
            };
            let var = enabled_var(&name);
            if let Some(value) = env.var(&var) {
                let enabled = match value.to_ascii_lowercase().as_str() {
                    "1" | "true" | "yes" | "on" => true,
                    "0" | "false" | "no" | "off" => false,
                    other => anyhow::bail!("{var}={other:?}: expected true or false"),
                };
                if let Some(map) = service.as_mapping_mut() {
                    map.insert("enabled".into(), enabled.into());
                }
            }
        }
    }
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(out, serde_yaml_ng::to_string(&doc)?)?;
    let config = GatewayConfig::load_with_env(out, env)?;
    Ok((out.to_path_buf(), config))
}

/// `MCP_<NAME>_ENABLED` for a service name (`mcp-time` → `MCP_MCP_TIME_ENABLED`).
pub fn enabled_var(service: &str) -> String {
    format!(
        "MCP_{}_ENABLED",
        service.to_ascii_uppercase().replace('-', "_")
    )
}

/// Renders the Envoy bootstrap of `config` to `out`.
pub fn render_to(config: &GatewayConfig, wasm: &Path, out: &Path) -> Result<()> {
    let yaml = render(
        config,
        &RenderOptions {
            wasm_path: wasm.to_path_buf(),
            access_log: true,
        },
    )?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(out, yaml).with_context(|| format!("cannot write {}", out.display()))
}

/// Renders and validates every config the project ships, plus the one `up` uses.
pub fn validate_all(root: &Path, envoy: &Path, wasm: &Path) -> Result<()> {
    let out_dir = root.join("target/envoy-validate");
    let mut sources: Vec<PathBuf> = std::fs::read_dir(root.join("envoy"))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("gateway") && n.ends_with(".yaml"))
        })
        .collect();
    sources.sort();
    let mut checked = 0;
    for source in &sources {
        let stem = source
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("gateway");
        let (_, config) = write_effective_config(
            source,
            &out_dir.join(format!("{stem}.effective.yaml")),
            &ProcessEnv,
        )?;
        // Each config as written, and in the other ext_authz mode: both must be valid.
        let mut other = config.clone();
        other.ext_authz.mode = match config.ext_authz.mode {
            ExtAuthzMode::PerRequest => ExtAuthzMode::Fast,
            ExtAuthzMode::Fast => ExtAuthzMode::PerRequest,
        };
        for (config, suffix) in [(&config, ""), (&other, ".other-mode")] {
            let bootstrap = out_dir.join(format!("{stem}{suffix}.envoy.yaml"));
            render_to(config, wasm, &bootstrap)?;
            validate(envoy, &bootstrap)?;
            println!(
                "envoy --mode validate: {} OK (from {}, ext_authz mode {:?})",
                bootstrap.display(),
                source.display(),
                config.ext_authz.mode
            );
            checked += 1;
        }
    }
    anyhow::ensure!(checked > 0, "no gateway config found under envoy/");
    Ok(())
}

/// `envoy --mode validate -c <bootstrap>`.
pub fn validate(envoy: &Path, bootstrap: &Path) -> Result<()> {
    output_of(
        Command::new(envoy)
            .args(["--mode", "validate", "--log-level", "warn", "-c"])
            .arg(bootstrap),
    )
    .with_context(|| format!("Envoy refused {}", bootstrap.display()))
    .map(|_| ())
}

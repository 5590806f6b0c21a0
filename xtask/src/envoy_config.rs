//! The gateway config a run uses, the Envoy bootstrap rendered from it, and its validation
//! by Envoy itself (`--mode validate` loads the wasm filter and runs its `on_configure`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use mcp_auth_gateway::GatewayConfig;
use mcp_auth_gateway::config::ExtAuthzMode;
use mcp_auth_gateway::env::{Env, ProcessEnv};
use mcp_auth_gateway::envoy::{RenderOptions, TLS_SDS_FILE, render, render_tls_sds};

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

/// Renders the Envoy bootstrap of `config` to `out` and, with `listener.tls`, the
/// certificate's SDS document beside it ([`TLS_SDS_FILE`]). Envoy is to load the filter from
/// `wasm` and the SDS document from `envoy_dir` (default: where it is written here).
pub fn render_to(
    config: &GatewayConfig,
    wasm: &Path,
    out: &Path,
    envoy_dir: Option<&Path>,
) -> Result<()> {
    let dir = match out.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let sds_path = match envoy_dir {
        Some(envoy_dir) => envoy_dir.join(TLS_SDS_FILE),
        None => std::path::absolute(dir.join(TLS_SDS_FILE))?,
    };
    let yaml = render(
        config,
        &RenderOptions {
            wasm_path: wasm.to_path_buf(),
            access_log: true,
            tls_sds_path: Some(sds_path),
        },
    )?;
    std::fs::write(out, yaml).with_context(|| format!("cannot write {}", out.display()))?;
    if let Some(sds) = render_tls_sds(config)? {
        let path = dir.join(TLS_SDS_FILE);
        std::fs::write(&path, sds).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Renders and validates every config the project ships, plus the one `up` uses, and the
/// example config terminating TLS ([`tls_variant`]).
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
            render_to(config, wasm, &bootstrap, None)?;
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

    let example = root.join(DEFAULT_CONFIG);
    let tls = tls_variant(&example, &out_dir.join("tls"))?;
    let bootstrap = out_dir.join("tls/gateway.example.tls.envoy.yaml");
    render_to(&tls, wasm, &bootstrap, None)?;
    validate(envoy, &bootstrap)?;
    println!(
        "envoy --mode validate: {} OK (from {} with listener.tls and its http redirect)",
        bootstrap.display(),
        example.display()
    );
    Ok(())
}

/// `source` terminating TLS itself: an https issuer on `localhost:8443`, a certificate made
/// here (Envoy's validate mode does not read it, but the files are checked as before a real
/// start), HSTS and the http → https redirect on `127.0.0.1:8080`.
fn tls_variant(source: &Path, dir: &Path) -> Result<GatewayConfig> {
    std::fs::create_dir_all(dir)?;
    let (_, config) =
        write_effective_config(source, &dir.join("gateway.effective.yaml"), &ProcessEnv)?;
    let (ca, issuer) = mcp_auth_testkit::test_ca();
    let (chain, key) = mcp_auth_testkit::issue_certificate(&issuer, &["localhost"]);
    let chain_file = std::path::absolute(dir.join("tls.crt"))?;
    let key_file = std::path::absolute(dir.join("tls.key"))?;
    std::fs::write(&chain_file, format!("{chain}{ca}"))?;
    std::fs::write(&key_file, key)?;
    let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&config.to_yaml()?)?;
    doc["issuer"] = "https://localhost:8443".into();
    doc["listener"]["address"] = "127.0.0.1:8443".into();
    doc["listener"]["tls"] = serde_yaml_ng::to_value(serde_json::json!({
        "certificate_chain_file": chain_file,
        "private_key_file": key_file,
        "http_redirect_address": "127.0.0.1:8080",
    }))?;
    // Resources were resolved from the http issuer; let them follow the https one.
    if let Some(services) = doc["services"].as_sequence_mut() {
        for service in services {
            if let Some(map) = service.as_mapping_mut() {
                map.remove("resource");
            }
        }
    }
    let tls = GatewayConfig::from_yaml(&serde_yaml_ng::to_string(&doc)?)?;
    tls.check_listener_files()?;
    Ok(tls)
}

/// `envoy --mode validate -c <bootstrap>`. The filter's `on_configure` runs, so its VM gets
/// a hand-off secret (a throwaway one: nothing is signed).
pub fn validate(envoy: &Path, bootstrap: &Path) -> Result<()> {
    output_of(
        Command::new(envoy)
            .env(
                mcp_auth_proto::handoff::HANDOFF_KEY_ENV,
                "validate-only-secret-that-signs-nothing",
            )
            .args(["--mode", "validate", "--log-level", "warn", "-c"])
            .arg(bootstrap),
    )
    .with_context(|| format!("Envoy refused {}", bootstrap.display()))
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// The example config with `vars` as the environment, as `cargo xtask up` loads it.
    fn example_with(vars: &[(&str, &str)]) -> Result<Vec<String>> {
        let dir = tempfile::tempdir()?;
        let env: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let source = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(DEFAULT_CONFIG);
        let (_, config) = write_effective_config(&source, &dir.path().join("gateway.yaml"), &env)?;
        Ok(config.services.into_iter().map(|s| s.name).collect())
    }

    #[test]
    fn enabled_switches_apply_to_the_example_catalogue() {
        let default = example_with(&[]).unwrap();
        assert!(default.iter().any(|s| s == "tmux"), "{default:?}");
        assert!(!default.iter().any(|s| s == "playwright"), "{default:?}");
        let on = example_with(&[("MCP_PLAYWRIGHT_ENABLED", "true")]).unwrap();
        assert_eq!(on.len(), default.len() + 1, "{on:?}");
        assert!(on.iter().any(|s| s == "playwright"), "{on:?}");
        // Services that policy rules name can be switched off all the same.
        let off = example_with(&[
            ("MCP_TMUX_ENABLED", "false"),
            ("MCP_EVERYTHING_ENABLED", "off"),
            ("MCP_FILESYSTEM_ENABLED", "0"),
            ("MCP_FETCHS_ENABLED", "no"),
        ])
        .unwrap();
        for name in ["tmux", "everything", "filesystem", "fetchs"] {
            assert!(!off.iter().any(|s| s == name), "{name}: {off:?}");
        }
        let err = example_with(&[("MCP_FETCHS_ENABLED", "maybe")]).unwrap_err();
        assert!(err.to_string().contains("MCP_FETCHS_ENABLED"), "{err}");
    }
}

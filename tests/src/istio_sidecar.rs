//! The Envoy an Istio sidecar runs for a protected MCP workload, built from what
//! `cargo xtask render-istio` generates: no cluster, no istiod, so this module does istiod's
//! part of the translation for the resources we ship, the way istiod does it.
//!
//! - The `WasmPlugin` becomes an `envoy.filters.http.wasm` filter first in the inbound HTTP
//!   chain (phase `AUTHN`): its `pluginConfig` as the plugin configuration (JSON in a
//!   `StringValue`), `vmConfig.env` with `valueFrom: HOST` as
//!   `environment_variables.host_env_keys`, `failStrategy: FAIL_CLOSE` as `fail_open: false`;
//!   the module from a local file, as Istio's agent serves a pulled `oci://` image.
//! - An `AuthorizationPolicy` with `action: CUSTOM` becomes Istio's pair of filters: an RBAC
//!   filter with shadow rules only (stat prefix `istio_ext_authz_`), which marks the request
//!   with `istio_ext_authz_shadow_effective_policy_id` when a rule matches, and the
//!   `envoy.filters.http.ext_authz` filter, enabled by that metadata, with the settings of the
//!   mesh config's `envoyExtAuthzGrpc` provider (timeout, fail open, status on error, request
//!   body).
//! - The `EnvoyFilter` patches apply as istiod applies them: `HTTP_ROUTE` `MERGE` into the
//!   inbound route named `default`, `NETWORK_FILTER` `MERGE` into the inbound HTTP connection
//!   manager, `HTTP_FILTER` `INSERT_BEFORE` in its HTTP filter chain.
//! - Clusters carry Istio's names (`outbound|PORT||HOST`, `inbound|PORT||`) and point at the
//!   test's loopback processes; the listener stands for the sidecar's inbound port.
//!
//! What is not here: Istio's own filters (`istio.metadata_exchange`, `istio_authn`,
//! `istio.stats`), which are not in upstream Envoy, and the mutual TLS between sidecars.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::tools;

/// What `render-istio` generated, as parsed documents.
pub struct IstioResources {
    pub documents: Vec<Value>,
}

/// Where the sidecar's clusters lead.
pub struct SidecarTargets {
    pub authserver: SocketAddr,
    pub ext_authz: SocketAddr,
    /// The workload's MCP server (the inbound cluster).
    pub workload: SocketAddr,
}

/// Which of the generated resources select the workload's pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attached {
    /// Everything generated for it (the WasmPlugin, and the CUSTOM policy where there is one).
    All,
    /// The CUSTOM policy alone: a workload that has the ext_authz provider but not the
    /// WasmPlugin, where a client's own hand-off header reaches ext_authz.
    CustomPolicyOnly,
}

impl IstioResources {
    /// Runs `cargo xtask render-istio` on `config` (the filter at `wasm_url`) and reads back
    /// every generated file.
    pub fn render(config: &Path, out: &Path) -> Result<Self> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = std::process::Command::new(cargo)
            .current_dir(tools::workspace_root())
            .args(["xtask", "render-istio", "--config"])
            .arg(config)
            .arg("--out")
            .arg(out)
            .args(["--wasm-url", "file:///var/lib/mcp-auth/filter.wasm"])
            .status()
            .context("running cargo xtask render-istio")?;
        if !status.success() {
            bail!("cargo xtask render-istio failed: {status}");
        }
        let mut documents = Vec::new();
        for entry in std::fs::read_dir(out)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let text = std::fs::read_to_string(&path)?;
                for document in serde_yaml_ng::Deserializer::from_str(&text) {
                    let value: Value = serde::Deserialize::deserialize(document)
                        .with_context(|| format!("in {}", path.display()))?;
                    if value.is_object() {
                        documents.push(value);
                    }
                }
            }
        }
        Ok(Self { documents })
    }

    /// The resources of `kind` that select pods labelled `app: <workload>`.
    pub fn for_workload(&self, kind: &str, workload: &str) -> Vec<&Value> {
        self.documents
            .iter()
            .filter(|d| d["kind"] == kind)
            .filter(|d| {
                let spec = &d["spec"];
                spec["selector"]["matchLabels"]["app"] == workload
                    || spec["workloadSelector"]["labels"]["app"] == workload
            })
            .collect()
    }

    fn extension_provider(&self, name: &str) -> Result<&Value> {
        self.documents
            .iter()
            .filter(|d| d["kind"] == "IstioOperator")
            .flat_map(|d| {
                d["spec"]["meshConfig"]["extensionProviders"]
                    .as_array()
                    .into_iter()
                    .flatten()
            })
            .find(|p| p["name"] == name)
            .with_context(|| format!("no extension provider {name:?} in the mesh config"))
    }

    /// The bootstrap of the sidecar of `workload`, whose inbound port is `port`.
    pub fn sidecar_bootstrap(
        &self,
        workload: &str,
        attached: Attached,
        port: u16,
        targets: &SidecarTargets,
    ) -> Result<String> {
        let mut filters = Vec::new();
        // The outbound clusters the filters name, with the process each stands for.
        let mut outbound: Vec<(String, SocketAddr, bool)> = Vec::new();
        if attached == Attached::All {
            for plugin in self.for_workload("WasmPlugin", workload) {
                filters.push(wasm_filter(plugin)?);
                let config = &plugin["spec"]["pluginConfig"];
                outbound.push((
                    name_of(&config["jwks"]["cluster"])?,
                    targets.authserver,
                    false,
                ));
                if config["decisions"].is_object() {
                    let cluster = name_of(&config["decisions"]["cluster"])?;
                    outbound.push((cluster, targets.ext_authz, true));
                }
            }
        }
        for policy in self.for_workload("AuthorizationPolicy", workload) {
            if policy["spec"]["action"] != "CUSTOM" {
                continue;
            }
            let name = policy["spec"]["provider"]["name"]
                .as_str()
                .context("a CUSTOM policy without a provider")?;
            let provider = &self.extension_provider(name)?["envoyExtAuthzGrpc"];
            let (custom, cluster) = custom_filters(policy, provider)?;
            filters.extend(custom);
            outbound.push((cluster, targets.ext_authz, true));
        }
        filters.push(json!({
            "name": "envoy.filters.http.router",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
            },
        }));

        let inbound_cluster = format!("inbound|{}||", targets.workload.port());
        let mut route = json!({
            "name": "default",
            "match": { "prefix": "/" },
            "route": { "cluster": &inbound_cluster, "timeout": "0s" },
        });
        let mut manager = json!({
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": format!("inbound_0.0.0.0_{}", targets.workload.port()),
            // What Istio sets on an inbound HTTP connection manager.
            "normalize_path": true,
            "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
            "use_remote_address": false,
            "forward_client_cert_details": "APPEND_FORWARD",
            "server_name": "istio-envoy",
            "http_filters": filters,
        });
        for patch in self.for_workload("EnvoyFilter", workload) {
            apply_envoy_filter(patch, &mut route, &mut manager)?;
        }
        manager["route_config"] = json!({
            "name": &inbound_cluster,
            "validate_clusters": false,
            "virtual_hosts": [{
                "name": format!("inbound|http|{}", targets.workload.port()),
                "domains": ["*"],
                "routes": [route],
            }],
        });

        let mut clusters = vec![cluster(&inbound_cluster, targets.workload, false)];
        // The WasmPlugin and the CUSTOM provider name the same ext-authz cluster: once.
        outbound.sort();
        outbound.dedup();
        for (name, address, http2) in &outbound {
            clusters.push(cluster(name, *address, *http2));
        }
        let bootstrap = json!({
            "admin": { "address": socket("127.0.0.1".parse()?, 0) },
            "static_resources": {
                "listeners": [{
                    "name": "virtualInbound",
                    "address": socket("127.0.0.1".parse()?, port),
                    "enable_reuse_port": true,
                    "filter_chains": [{
                        "filters": [{
                            "name": "envoy.filters.network.http_connection_manager",
                            "typed_config": manager,
                        }],
                    }],
                }],
                "clusters": clusters,
            },
        });
        Ok(serde_json::to_string_pretty(&bootstrap)?)
    }
}

fn name_of(cluster: &Value) -> Result<String> {
    cluster
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("not a cluster name: {cluster}"))
}

fn socket(ip: std::net::IpAddr, port: u16) -> Value {
    json!({ "socket_address": { "address": ip.to_string(), "port_value": port } })
}

fn cluster(name: &str, address: SocketAddr, http2: bool) -> Value {
    let mut cluster = json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{ "lb_endpoints": [{ "endpoint": {
                "address": socket(address.ip(), address.port()),
            } }] }],
        },
    });
    if http2 {
        cluster["typed_extension_protocol_options"] = json!({
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": { "http2_protocol_options": {} },
            },
        });
    }
    cluster
}

/// istiod's translation of a WasmPlugin (phase AUTHN) into the wasm HTTP filter.
fn wasm_filter(plugin: &Value) -> Result<Value> {
    let spec = &plugin["spec"];
    if spec["phase"] != "AUTHN" || spec["type"] != "HTTP" {
        bail!("the sidecar simulation knows HTTP plugins in phase AUTHN: {spec}");
    }
    let mut host_env_keys = Vec::new();
    let mut key_values = serde_json::Map::new();
    for env in spec["vmConfig"]["env"].as_array().into_iter().flatten() {
        let name = env["name"]
            .as_str()
            .context("vmConfig.env without a name")?;
        match env["valueFrom"].as_str().unwrap_or("INLINE") {
            "HOST" => host_env_keys.push(json!(name)),
            _ => {
                key_values.insert(name.to_owned(), env["value"].clone());
            }
        }
    }
    let name = format!(
        "{}.{}",
        plugin["metadata"]["namespace"].as_str().unwrap_or_default(),
        plugin["metadata"]["name"].as_str().unwrap_or_default()
    );
    Ok(json!({
        "name": name,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": name,
                "fail_open": spec["failStrategy"] == "FAIL_OPEN",
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": serde_json::to_string(&spec["pluginConfig"])?,
                },
                "vm_config": {
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": { "local": { "filename": tools::filter_wasm()?.display().to_string() } },
                    "environment_variables": {
                        "host_env_keys": host_env_keys,
                        "key_values": key_values,
                    },
                },
            },
        },
    }))
}

/// istiod's translation of a CUSTOM AuthorizationPolicy and its `envoyExtAuthzGrpc` provider:
/// the filters, and the outbound cluster they call.
fn custom_filters(policy: &Value, provider: &Value) -> Result<(Vec<Value>, String)> {
    if policy["spec"]["rules"] != json!([{}]) {
        bail!("the sidecar simulation knows CUSTOM policies whose one rule matches everything");
    }
    let namespace = policy["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = policy["metadata"]["name"].as_str().unwrap_or_default();
    let shadow = json!({
        format!("istio-ext-authz-ns[{namespace}]-policy[{name}]-rule[0]"): {
            "permissions": [{ "any": true }],
            "principals": [{ "any": true }],
        },
    });
    let service = provider["service"].as_str().context("provider.service")?;
    let port = provider["port"].as_u64().context("provider.port")?;
    let cluster = format!("outbound|{port}||{service}");
    let status_on_error: u32 = provider["statusOnError"]
        .as_str()
        .unwrap_or("403")
        .parse()
        .context("provider.statusOnError")?;
    let mut ext_authz = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
        "grpc_service": {
            // istiod sets the authority to the provider's Service hostname.
            "envoy_grpc": {
                "cluster_name": &cluster,
                "authority": service,
            },
            "timeout": provider["timeout"].as_str().unwrap_or("600s"),
        },
        "transport_api_version": "V3",
        "failure_mode_allow": provider["failOpen"].as_bool().unwrap_or(false),
        "status_on_error": { "code": status_on_error },
        "filter_enabled_metadata": {
            "filter": "envoy.filters.http.rbac",
            "path": [{ "key": "istio_ext_authz_shadow_effective_policy_id" }],
            "value": { "string_match": { "prefix": "istio-ext-authz" } },
        },
    });
    let body = &provider["includeRequestBodyInCheck"];
    if body.is_object() {
        ext_authz["with_request_body"] = json!({
            "max_request_bytes": body["maxRequestBytes"],
            "allow_partial_message": body["allowPartialMessage"].as_bool().unwrap_or(false),
            "pack_as_bytes": body["packAsBytes"].as_bool().unwrap_or(false),
        });
    }
    Ok((
        vec![
            json!({
                "name": "envoy.filters.http.rbac",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
                    "shadow_rules": { "action": "ALLOW", "policies": shadow },
                    "shadow_rules_stat_prefix": "istio_ext_authz_",
                },
            }),
            json!({ "name": "envoy.filters.http.ext_authz", "typed_config": ext_authz }),
        ],
        cluster,
    ))
}

/// An EnvoyFilter's patches on the inbound route and connection manager.
fn apply_envoy_filter(filter: &Value, route: &mut Value, manager: &mut Value) -> Result<()> {
    for patch in filter["spec"]["configPatches"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if patch["match"]["context"] != "SIDECAR_INBOUND" {
            bail!("the sidecar simulation knows SIDECAR_INBOUND patches: {patch}");
        }
        let value = &patch["patch"]["value"];
        match (
            patch["applyTo"].as_str(),
            patch["patch"]["operation"].as_str(),
        ) {
            (Some("HTTP_ROUTE"), Some("MERGE")) => {
                let wanted = &patch["match"]["routeConfiguration"]["vhost"]["route"]["name"];
                if wanted.is_null() || *wanted == route["name"] {
                    merge(route, value);
                }
            }
            (Some("NETWORK_FILTER"), Some("MERGE")) => merge(manager, &value["typed_config"]),
            (Some("HTTP_FILTER"), Some("INSERT_BEFORE")) => {
                let before =
                    &patch["match"]["listener"]["filterChain"]["filter"]["subFilter"]["name"];
                let filters = manager["http_filters"]
                    .as_array_mut()
                    .context("the connection manager has no HTTP filters")?;
                let at = filters
                    .iter()
                    .position(|filter| filter["name"] == *before)
                    .with_context(|| format!("no HTTP filter {before} to insert before"))?;
                filters.insert(at, value.clone());
            }
            (apply_to, operation) => {
                bail!("the sidecar simulation does not apply {apply_to:?} {operation:?} patches")
            }
        }
    }
    Ok(())
}

/// Protobuf merge semantics on JSON: messages merge field by field, repeated fields append,
/// anything else replaces.
fn merge(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(into), Value::Object(from)) => {
            for (key, value) in from {
                merge(into.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        (Value::Array(into), Value::Array(from)) => into.extend(from.iter().cloned()),
        (into, from) => *into = from.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_is_field_by_field_and_appends_lists() {
        let mut into = json!({ "a": { "b": 1, "c": 2 }, "d": [1] });
        merge(&mut into, &json!({ "a": { "c": 3 }, "d": [2], "e": "x" }));
        assert_eq!(
            into,
            json!({ "a": { "b": 1, "c": 3 }, "d": [1, 2], "e": "x" })
        );
    }
}

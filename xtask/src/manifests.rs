//! Kubernetes and Istio manifests: what `deploy/k8s/` derives from a gateway config, and its
//! offline validation.
//!
//! - `render-istio` turns a gateway config into the resources an Istio mesh needs: per
//!   protected MCP workload a `WasmPlugin` (phase AUTHN, the filter's plugin config with
//!   Istio's cluster names `outbound|PORT||HOST`), the `EnvoyFilter` that names the sidecar's
//!   inbound route after the service (Istio calls every inbound route `default`, and the
//!   filter finds its policy by route name, and which makes the inbound listener refuse header
//!   names with underscores, as our own Envoy does) and, in per-request mode, an
//!   `AuthorizationPolicy` `action: CUSTOM` (in fast mode the filter asks ext-authz itself and
//!   removes the hand-off, so a CUSTOM check after it could only refuse); the ingress `VirtualService`; `PeerAuthentication` STRICT; the mesh config's
//!   `extensionProviders` entry; the gateway ConfigMap.
//! - `render-manifests` writes every derived file `deploy/k8s/` checks in (from
//!   `deploy/k8s/gateway.yaml`, with no environment overrides, so the result is reproducible).
//! - `validate-manifests` fails on a stale derived file, builds every overlay with
//!   `kubectl kustomize`, validates core kinds with `kubernetes-validate --strict` and Istio
//!   kinds with `@kubernetes-models/istio` (`deploy/k8s/validate-istio.mjs`), and runs
//!   `envoy --mode validate` on the Envoy overlay's bootstrap.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use mcp_auth_gateway::GatewayConfig;
use mcp_auth_gateway::config::ExtAuthzMode;
use mcp_auth_gateway::endpoint::Endpoint;
use mcp_auth_gateway::envoy::{
    POLICY_BODY_FILTER_NAME, RenderOptions, TLS_SDS_FILE, render, render_tls_sds,
};
use mcp_auth_gateway::filter_config::filter_config;
use mcp_auth_proto::handoff::HANDOFF_KEY_ENV;
use mcp_auth_proto::paths::{self, AUTHSERVER_PUBLIC_PATHS, PathMatch};
use serde_json::{Value, json};

use crate::process::{describe, output_of};
use crate::tools::Tools;

/// The gateway config of the checked-in manifests.
pub const K8S_CONFIG: &str = "deploy/k8s/gateway.yaml";
/// Where the Envoy image carries the filter (`cargo xtask images`).
pub const ENVOY_IMAGE_WASM: &str = "/etc/envoy/mcp_auth_filter.wasm";
/// The Envoy overlay's bootstrap ConfigMap, as the Envoy pods mount it.
const ENVOY_CONFIG_DIR: &str = "/etc/envoy";
/// The Envoy overlay's directory, where the bootstrap (and the SDS document of
/// `listener.tls`) are rendered.
const ENVOY_OVERLAY: &str = "deploy/k8s/overlays/envoy-gateway";
/// The overlays `validate-manifests` builds (the base is built through them, and alone).
const KUSTOMIZATIONS: &[&str] = &["base", "overlays/envoy-gateway", "overlays/istio"];
/// Kubernetes versions the core objects must be valid for: the first with gRPC probes (GA),
/// and the newest `kubernetes-validate` knows.
const KUBERNETES_VERSIONS: &[&str] = &["1.27.0", "1.37.0"];
/// Namespace of the authserver, ext-authz and Redis.
const NAMESPACE: &str = "mcp-auth";
/// The gateway ConfigMap the Deployments mount.
const GATEWAY_CONFIGMAP: &str = "mcp-auth-gateway";
/// The mesh config's name for ext-authz, which every CUSTOM policy names.
const EXT_AUTHZ_PROVIDER: &str = "mcp-auth-ext-authz";

/// What `render-istio` needs besides the gateway config.
#[derive(Debug, Clone)]
pub struct IstioOptions {
    /// `oci://…` or `file://…` of the filter (Istio's Wasm image format).
    pub wasm_url: String,
    /// SHA-256 of the .wasm, pinned in each `WasmPlugin` when given.
    pub wasm_sha256: Option<String>,
    /// Pod label whose value is the MCP workload's Kubernetes Service name.
    pub workload_label: String,
    /// `namespace/name` of the Istio `Gateway` clients come in through.
    pub ingress_gateway: String,
}

impl Default for IstioOptions {
    fn default() -> Self {
        Self {
            wasm_url: "oci://registry.example.com/mcp-mesh-auth/filter:latest".to_owned(),
            wasm_sha256: None,
            workload_label: "app".to_owned(),
            ingress_gateway: "istio-system/mcp-gateway".to_owned(),
        }
    }
}

/// One derived file: its path under the output directory and its text.
struct Rendered {
    path: PathBuf,
    text: String,
}

/// `cargo xtask render-istio`: writes the Istio resources and the gateway ConfigMap of
/// `config` into `out`.
pub fn render_istio(config: &Path, out: &Path, options: &IstioOptions) -> Result<()> {
    let source = read(config)?;
    let gateway = GatewayConfig::from_yaml(&source)?;
    let origin = format!("cargo xtask render-istio --config {}", config.display());
    write_all(out, &istio_files(&gateway, &source, options, &origin)?)
}

/// `cargo xtask render-manifests`: every derived file under `deploy/k8s/`.
pub fn render_manifests(root: &Path) -> Result<()> {
    write_all(root, &checked_in_files(root)?)
}

fn checked_in_files(root: &Path) -> Result<Vec<Rendered>> {
    let source = read(&root.join(K8S_CONFIG))?;
    let gateway = GatewayConfig::from_yaml(&source)
        .with_context(|| format!("{K8S_CONFIG} is not a valid gateway config"))?;
    let origin = "cargo xtask render-manifests".to_owned();
    let mut files = vec![
        Rendered {
            path: "deploy/k8s/base/gateway-config.yaml".into(),
            text: gateway_configmap(&source, &origin)?,
        },
        Rendered {
            path: Path::new(ENVOY_OVERLAY).join("bootstrap.yaml"),
            text: format!(
                "# Generated by `{origin}` from {K8S_CONFIG}; do not edit.\n{}",
                envoy_bootstrap(
                    &gateway,
                    Path::new(ENVOY_IMAGE_WASM),
                    &Path::new(ENVOY_CONFIG_DIR).join(TLS_SDS_FILE)
                )?
            ),
        },
    ];
    // With `listener.tls`: the certificate's SDS document, for the bootstrap ConfigMap
    // (overlays/envoy-gateway/envoy.yaml says what to add).
    if let Some(sds) = render_tls_sds(&gateway)? {
        files.push(Rendered {
            path: Path::new(ENVOY_OVERLAY).join(TLS_SDS_FILE),
            text: sds,
        });
    }
    let istio = Path::new("deploy/k8s/overlays/istio/generated");
    for file in istio_files(&gateway, &source, &IstioOptions::default(), &origin)? {
        files.push(Rendered {
            path: istio.join(file.path),
            text: file.text,
        });
    }
    Ok(files)
}

fn envoy_bootstrap(gateway: &GatewayConfig, wasm: &Path, tls_sds: &Path) -> Result<String> {
    Ok(render(
        gateway,
        &RenderOptions {
            wasm_path: wasm.to_path_buf(),
            access_log: true,
            tls_sds_path: Some(tls_sds.to_path_buf()),
        },
    )?)
}

fn istio_files(
    gateway: &GatewayConfig,
    source: &str,
    options: &IstioOptions,
    origin: &str,
) -> Result<Vec<Rendered>> {
    let workloads = gateway
        .services
        .iter()
        .enumerate()
        .map(|(i, service)| Workload::of(i, service))
        .collect::<Result<Vec<_>>>()?;
    let mut namespaces: Vec<&str> = vec![NAMESPACE];
    for workload in &workloads {
        if !namespaces.contains(&workload.namespace.as_str()) {
            namespaces.push(&workload.namespace);
        }
    }
    let ext_authz = mesh_host("ext_authz.url", gateway.ext_authz.url.as_ref())?;
    let mut plugins = Vec::new();
    let mut route_names = Vec::new();
    let mut policies = Vec::new();
    for workload in &workloads {
        plugins.push(wasm_plugin(gateway, workload, options)?);
        route_names.push(inbound_patches(gateway, workload, options));
        if gateway.ext_authz.mode == ExtAuthzMode::PerRequest {
            policies.push(custom_policy(workload, options));
        }
    }
    let peer_authentications = namespaces
        .iter()
        .map(|namespace| {
            json!({
                "apiVersion": "security.istio.io/v1",
                "kind": "PeerAuthentication",
                "metadata": { "name": "default", "namespace": namespace },
                "spec": { "mtls": { "mode": "STRICT" } },
            })
        })
        .collect::<Vec<_>>();
    let header = |what: &str| format!("{}# Generated by `{origin}`; do not edit.\n", comment(what));
    Ok(vec![
        Rendered {
            path: "gateway-config.yaml".into(),
            text: gateway_configmap(source, origin)?,
        },
        Rendered {
            path: "wasm-plugins.yaml".into(),
            text: header(
                "The token filter in each protected workload's sidecar, before Istio's authn/authz filters.",
            ) + &documents(&plugins)?,
        },
        Rendered {
            path: "envoy-filters.yaml".into(),
            text: header(
                "Istio names every sidecar inbound route `default`; the filter finds a service's policy by \
                 route name, so each protected workload's inbound route is named after its service. \
                 Header names with underscores are refused; in fast mode a buffer filter after the \
                 WasmPlugin holds each request until its body is complete, for the policy decision.",
            ) + &documents(&route_names)?,
        },
        Rendered {
            path: "authorization-policies.yaml".into(),
            text: if policies.is_empty() {
                header(
                    "None in fast mode: each WasmPlugin asks ext-authz itself (mcp_auth.v1.Decisions) and \
                     removes the hand-off, so a CUSTOM check after it would refuse every request. A \
                     workload given the CUSTOM provider anyway, without the WasmPlugin, refuses \
                     everything: ext-authz accepts no hand-off the filter did not sign.",
                )
            } else {
                header(
                    "ext-authz (the mesh config's extension provider) decides every request to a protected workload.",
                ) + &documents(&policies)?
            },
        },
        Rendered {
            path: "peer-authentications.yaml".into(),
            text: header(
                "Mutual TLS only, where the gateway's traffic runs (its config sets mesh_mtls).",
            ) + &documents(&peer_authentications)?,
        },
        Rendered {
            path: "virtual-service.yaml".into(),
            text: header(
                "Routes from the ingress gateway: the authorization server's paths and each MCP service.",
            ) + &documents(&[virtual_service(gateway, &workloads, options)?])?,
        },
        Rendered {
            path: "mesh-config.yaml".into(),
            text: if gateway.ext_authz.mode == ExtAuthzMode::PerRequest {
                header(
                    "Not applied by kustomize: merge into the mesh config (`istioctl install -f`, or the \
                     same `meshConfig.extensionProviders` entry in istiod's Helm values).",
                ) + &documents(&[mesh_config(gateway, &ext_authz)?])?
            } else {
                header(
                    "No extension provider in fast mode: no AuthorizationPolicy names one (each WasmPlugin \
                     asks ext-authz itself). Render with `ext_authz.mode: per_request` for the \
                     `envoyExtAuthzGrpc` entry.",
                )
            },
        },
    ])
}

/// A protected MCP workload: the Kubernetes Service its upstream URL names.
struct Workload<'a> {
    service: &'a mcp_auth_gateway::Service,
    /// The Kubernetes Service (and, by convention, the pods' `workload_label` value).
    name: String,
    namespace: String,
}

impl<'a> Workload<'a> {
    fn of(index: usize, service: &'a mcp_auth_gateway::Service) -> Result<Self> {
        let field = format!("services[{index}].upstream.url");
        let host = Endpoint::from_url(&service.upstream.url)
            .with_context(|| format!("{field}: not an http(s) URL with a host"))?
            .host;
        let (name, namespace) = kubernetes_service(&host).with_context(|| {
            format!(
                "{field}: {host:?} is not a Kubernetes Service hostname \
                 (NAME.NAMESPACE.svc.cluster.local), which Istio needs to select the workload"
            )
        })?;
        Ok(Self {
            service,
            name,
            namespace,
        })
    }

    fn selector(&self, options: &IstioOptions) -> Value {
        json!({ "matchLabels": { &options.workload_label: &self.name } })
    }

    fn metadata(&self, name: String) -> Value {
        json!({
            "name": name,
            "namespace": &self.namespace,
            "labels": { "app.kubernetes.io/part-of": "mcp-mesh-auth" },
        })
    }
}

/// `NAME.NAMESPACE.svc[.DOMAIN]` → (NAME, NAMESPACE).
fn kubernetes_service(host: &str) -> Option<(String, String)> {
    let labels: Vec<&str> = host.split('.').collect();
    (labels.len() >= 4 && labels[2] == "svc" && labels.iter().all(|l| !l.is_empty()))
        .then(|| (labels[0].to_owned(), labels[1].to_owned()))
}

/// The Service hostname and port of a component Istio routes to by name.
struct MeshHost {
    host: String,
    port: u16,
}

impl MeshHost {
    /// Istio's name of the outbound cluster of this host and port.
    fn cluster(&self) -> String {
        format!("outbound|{}||{}", self.port, self.host)
    }
}

fn mesh_host(field: &str, url: Option<&url::Url>) -> Result<MeshHost> {
    let url = url.with_context(|| {
        format!("{field} must be set: in Istio the filter reaches it by its Service hostname")
    })?;
    let endpoint =
        Endpoint::from_url(url).with_context(|| format!("{field}: {url} has no host"))?;
    ensure!(
        kubernetes_service(&endpoint.host).is_some(),
        "{field}: {:?} is not a full Kubernetes Service hostname (NAME.NAMESPACE.svc.cluster.local), \
         which Istio's cluster names (outbound|PORT||HOST) use",
        endpoint.host
    );
    ensure!(
        !endpoint.tls,
        "{field}: {url} is https; in Istio the sidecars' mutual TLS encrypts the hop: use http"
    );
    Ok(MeshHost {
        host: endpoint.host,
        port: endpoint.port,
    })
}

fn wasm_plugin(
    gateway: &GatewayConfig,
    workload: &Workload<'_>,
    options: &IstioOptions,
) -> Result<Value> {
    let authserver = mesh_host("authserver.url", gateway.authserver.url.as_ref())?;
    let ext_authz = mesh_host("ext_authz.url", gateway.ext_authz.url.as_ref())?;
    let mut plugin = filter_config(gateway);
    plugin.jwks.cluster = authserver.cluster();
    // No filter of ours runs before it in a sidecar: in fast mode it strips what a client
    // must not send (per request, ext-authz's CUSTOM check does).
    plugin.strip_request_headers = Some(gateway.stripped_request_headers());
    if let Some(decisions) = plugin.decisions.as_mut() {
        decisions.cluster = ext_authz.cluster();
        decisions.authority = Some(format!("{}:{}", ext_authz.host, ext_authz.port));
    }
    // This sidecar serves one service: it knows only that policy.
    plugin
        .routes
        .retain(|route| route.route == workload.service.name);
    let mut spec = json!({
        "selector": workload.selector(options),
        "url": &options.wasm_url,
        "phase": "AUTHN",
        "failStrategy": "FAIL_CLOSE",
        "type": "HTTP",
        // Requests to the workload, not the ones it sends.
        "match": [{ "mode": "SERVER" }],
        "pluginConfig": serde_json::to_value(&plugin)?,
        // The hand-off secret from the sidecar's own environment (the pod's istio-proxy
        // container, from the Secret mcp-auth-handoff: README "Deploy on Kubernetes and
        // Istio"), never in this resource, which every sidecar's config_dump prints.
        "vmConfig": {
            "env": [{ "name": HANDOFF_KEY_ENV, "valueFrom": "HOST" }],
        },
    });
    if let Some(sha256) = &options.wasm_sha256 {
        spec["sha256"] = json!(sha256);
    }
    Ok(json!({
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": "WasmPlugin",
        "metadata": workload.metadata(format!("mcp-auth-{}", workload.service.name)),
        "spec": spec,
    }))
}

/// The patches of a protected workload's inbound listener: its route named after its
/// service, header names with underscores refused, and in fast mode the buffer filter after
/// the WasmPlugin.
fn inbound_patches(
    gateway: &GatewayConfig,
    workload: &Workload<'_>,
    options: &IstioOptions,
) -> Value {
    let mut patches = json!({
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "EnvoyFilter",
        "metadata": workload.metadata(format!("mcp-auth-{}-route-name", workload.service.name)),
        "spec": {
            "workloadSelector": { "labels": { &options.workload_label: &workload.name } },
            "configPatches": [{
                "applyTo": "HTTP_ROUTE",
                "match": {
                    "context": "SIDECAR_INBOUND",
                    "routeConfiguration": { "vhost": { "route": { "name": "default" } } },
                },
                "patch": { "operation": "MERGE", "value": { "name": &workload.service.name } },
            }, {
                // As our own Envoy: `x_mcp_user_id` would reach servers that fold `_` into `-`
                // (CGI, WSGI) as the identity header the gateway sets.
                "applyTo": "NETWORK_FILTER",
                "match": {
                    "context": "SIDECAR_INBOUND",
                    "listener": { "filterChain": { "filter": {
                        "name": "envoy.filters.network.http_connection_manager",
                    } } },
                },
                "patch": { "operation": "MERGE", "value": { "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "common_http_protocol_options": {
                        "headers_with_underscores_action": "REJECT_REQUEST",
                    },
                } } },
            }],
        },
    });
    if gateway.ext_authz.mode == ExtAuthzMode::Fast {
        // As our own Envoy: the WasmPlugin decides a POST on its whole JSON-RPC body, and
        // this holds the request, headers included, until the body is complete (at most
        // mcp_policy.max_body_bytes, else 413), so nothing reaches the MCP server before the
        // decision. Per request, the CUSTOM provider's includeRequestBodyInCheck does it.
        let buffer = json!({
            "applyTo": "HTTP_FILTER",
            "match": {
                "context": "SIDECAR_INBOUND",
                "listener": { "filterChain": { "filter": {
                    "name": "envoy.filters.network.http_connection_manager",
                    "subFilter": { "name": "envoy.filters.http.router" },
                } } },
            },
            "patch": { "operation": "INSERT_BEFORE", "value": {
                "name": POLICY_BODY_FILTER_NAME,
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
                    "max_request_bytes": gateway.mcp_policy.max_body_bytes,
                },
            } },
        });
        if let Some(list) = patches["spec"]["configPatches"].as_array_mut() {
            list.push(buffer);
        }
    }
    patches
}

fn custom_policy(workload: &Workload<'_>, options: &IstioOptions) -> Value {
    json!({
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": workload.metadata(format!("mcp-auth-{}", workload.service.name)),
        "spec": {
            "selector": workload.selector(options),
            "action": "CUSTOM",
            "provider": { "name": EXT_AUTHZ_PROVIDER },
            // Every request, on every port of the workload.
            "rules": [{}],
        },
    })
}

fn mesh_config(gateway: &GatewayConfig, ext_authz: &MeshHost) -> Result<Value> {
    let timeout = gateway.ext_authz.timeout;
    Ok(json!({
        "apiVersion": "install.istio.io/v1alpha1",
        "kind": "IstioOperator",
        "metadata": { "name": "mcp-auth", "namespace": "istio-system" },
        "spec": { "meshConfig": { "extensionProviders": [{
            "name": EXT_AUTHZ_PROVIDER,
            "envoyExtAuthzGrpc": {
                "service": &ext_authz.host,
                "port": ext_authz.port,
                "timeout": format!("{}.{:03}s", timeout.as_secs(), timeout.subsec_millis()),
                // As our own Envoy: ext-authz unreachable is 503, never an allow.
                "failOpen": false,
                "statusOnError": "503",
                "includeRequestBodyInCheck": {
                    // mcp_policy reads the whole JSON-RPC body: larger is 413, as in our Envoy.
                    "maxRequestBytes": gateway.mcp_policy.max_body_bytes,
                    "allowPartialMessage": false,
                    "packAsBytes": true,
                },
            },
        }] } },
    }))
}

/// The ingress routes: the authserver's public paths (under the issuer's path, rewritten to
/// its own, as in our Envoy; the well-known documents stay at the root) and each service,
/// its route named after it.
fn virtual_service(
    gateway: &GatewayConfig,
    workloads: &[Workload<'_>],
    options: &IstioOptions,
) -> Result<Value> {
    let authserver = mesh_host("authserver.url", gateway.authserver.url.as_ref())?;
    let issuer_host = gateway
        .issuer
        .host_str()
        .context("issuer has no host")?
        .to_owned();
    let mut hosts = vec![issuer_host.clone()];
    let issuer_path = gateway.issuer.path().trim_end_matches('/');
    let destination = |host: &str, port: u16| json!([{ "destination": { "host": host, "port": { "number": port } } }]);
    let mut routes = Vec::new();
    for workload in workloads {
        let service = workload.service;
        let authority = match &service.host {
            Some(host) => {
                if !hosts.contains(host) {
                    hosts.push(host.clone());
                }
                json!({ "authority": { "exact": host } })
            }
            None => json!({}),
        };
        let upstream = Endpoint::from_url(&service.upstream.url)
            .context("upstream URL without a host (validated at load)")?;
        let upstream_path = service.upstream.url.path();
        for (suffix, uri, rewrite) in [
            (
                "",
                json!({ "exact": &service.path }),
                upstream_path.to_owned(),
            ),
            (
                "-subpaths",
                json!({ "prefix": format!("{}/", service.path) }),
                format!("{}/", upstream_path.trim_end_matches('/')),
            ),
        ] {
            let mut matched = authority.clone();
            matched["uri"] = uri;
            let mut route = json!({
                "name": format!("{}{suffix}", service.name),
                "match": [matched],
                "rewrite": { "uri": rewrite },
                "route": destination(&upstream.host, upstream.port),
            });
            if let Some(timeout) = service.upstream.timeout {
                route["timeout"] = json!(format!("{}s", timeout.as_secs().max(1)));
            }
            routes.push(route);
        }
    }
    for (i, path_match) in AUTHSERVER_PUBLIC_PATHS.iter().enumerate() {
        let (path, segments) = match *path_match {
            PathMatch::Exact(path) => (path, false),
            PathMatch::Segments(path) => (path, true),
        };
        let at_root = issuer_path.is_empty()
            || path == paths::AUTHORIZATION_SERVER_METADATA
            || path == paths::PROTECTED_RESOURCE_METADATA;
        let public = if at_root {
            path.to_owned()
        } else {
            format!("{issuer_path}{path}")
        };
        let mut matches = vec![json!({ "uri": { "exact": &public } })];
        if segments {
            matches.push(json!({ "uri": { "prefix": format!("{public}/") } }));
        }
        let mut route = json!({
            "name": format!("authserver-{i}"),
            "match": matches,
            "route": destination(&authserver.host, authserver.port),
            "timeout": "15s",
        });
        if !at_root {
            // Istio rewrites the matched part: the prefix of a prefix match, the whole path of
            // an exact one (the same here, since the exact match is the public path itself).
            route["rewrite"] = json!({ "uri": path });
        }
        routes.push(route);
    }
    Ok(json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {
            "name": "mcp-auth",
            "namespace": NAMESPACE,
            "labels": { "app.kubernetes.io/part-of": "mcp-mesh-auth" },
        },
        "spec": {
            "hosts": hosts,
            "gateways": [&options.ingress_gateway],
            "http": routes,
        },
    }))
}

/// The gateway config as the ConfigMap the Deployments mount: the source text itself
/// (comments kept; every component validates it again at start).
fn gateway_configmap(source: &str, origin: &str) -> Result<String> {
    let configmap = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": GATEWAY_CONFIGMAP,
            "namespace": NAMESPACE,
            "labels": { "app.kubernetes.io/part-of": "mcp-mesh-auth" },
        },
        "data": { "gateway.yaml": source },
    });
    Ok(format!(
        "# The gateway config every component reads.\n# Generated by `{origin}`; do not edit.\n{}",
        documents(&[configmap])?
    ))
}

/// `text` as YAML comment lines of at most about 96 characters.
fn comment(text: &str) -> String {
    let mut out = String::new();
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() + word.len() > 95 {
            out.push_str(&line);
            out.push('\n');
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
    out
}

fn documents(objects: &[Value]) -> Result<String> {
    let mut out = String::new();
    for (i, object) in objects.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&serde_yaml_ng::to_string(object)?);
    }
    Ok(out)
}

fn write_all(root: &Path, files: &[Rendered]) -> Result<()> {
    for file in files {
        let path = root.join(&file.path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, &file.text)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(())
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// `cargo xtask validate-manifests`; with Envoy and the built filter, Envoy validates the
/// Envoy overlay's bootstrap too.
pub fn validate_manifests(tools: &Tools, envoy: Option<(&Path, &Path)>) -> Result<()> {
    let root = &tools.root;
    let stale: Vec<String> = checked_in_files(root)?
        .into_iter()
        .filter(|file| {
            std::fs::read_to_string(root.join(&file.path)).ok() != Some(file.text.clone())
        })
        .map(|file| file.path.display().to_string())
        .collect();
    ensure!(
        stale.is_empty(),
        "stale (not what {K8S_CONFIG} renders to): {}; run `cargo xtask render-manifests`",
        stale.join(", ")
    );
    println!("derived manifests: up to date with {K8S_CONFIG}");

    let out = root.join("target/manifests");
    std::fs::create_dir_all(&out)?;
    let mut core = Vec::new();
    let mut istio = Vec::new();
    let kubectls = tools.kubectl_bins()?;
    for kustomization in KUSTOMIZATIONS {
        // Every kubectl builds it (the pinned one, and the machine's when it has another);
        // the first one's output is validated.
        for (nth, kubectl) in kubectls.iter().enumerate() {
            let built = output_of(
                Command::new(kubectl)
                    .arg("kustomize")
                    .arg(root.join("deploy/k8s").join(kustomization)),
            )?;
            let objects = parse_documents(&built).with_context(|| {
                format!(
                    "{} output",
                    describe(Command::new(kubectl).arg("kustomize"))
                )
            })?;
            ensure!(
                !objects.is_empty(),
                "{kustomization}: kustomize built nothing"
            );
            println!(
                "kubectl kustomize {kustomization}: {} objects ({})",
                objects.len(),
                kubectl.display()
            );
            if nth > 0 {
                continue;
            }
            for object in objects {
                let group = object["apiVersion"].as_str().unwrap_or_default();
                if group.contains("istio.io/") {
                    istio.push(object);
                } else {
                    core.push(object);
                }
            }
        }
    }
    let mesh_config = root.join("deploy/k8s/overlays/istio/generated/mesh-config.yaml");
    istio.extend(parse_documents(&read(&mesh_config)?)?);
    let per_request = per_request_istio_objects(root)?;
    println!(
        "render-istio, per-request variant: {} Istio objects",
        per_request.len()
    );
    istio.extend(per_request);

    // JSON documents: a YAML 1.2 writer leaves `yes` unquoted, which the YAML 1.1 reader of
    // kubernetes-validate takes for a boolean.
    let core_file = out.join("core.yaml");
    let mut text = String::new();
    for object in &core {
        text.push_str("---\n");
        text.push_str(&serde_json::to_string(object)?);
        text.push('\n');
    }
    std::fs::write(&core_file, text)?;
    for version in KUBERNETES_VERSIONS {
        let mut validate = Command::new(tools.kubernetes_validate_bin()?);
        validate
            .args(["--strict", "--quiet", "--kubernetes-version", version])
            .arg(&core_file);
        let result = validate
            .output()
            .with_context(|| format!("cannot run `{}`", describe(&validate)))?;
        ensure!(
            result.status.success(),
            "kubernetes-validate refused a core object ({}):\n{}{}",
            describe(&validate),
            String::from_utf8_lossy(&result.stdout),
            String::from_utf8_lossy(&result.stderr)
        );
        println!(
            "kubernetes-validate --strict: {} core objects valid for Kubernetes {version}",
            core.len()
        );
    }

    let istio_file = out.join("istio.json");
    std::fs::write(&istio_file, serde_json::to_string(&istio)?)?;
    let report = output_of(
        Command::new(tools.node_bin()?)
            .arg(root.join("deploy/k8s/validate-istio.mjs"))
            .arg(tools.npm_prefix())
            .arg(&istio_file),
    )
    .context("an Istio object does not match Istio's schema")?;
    print!("{report}");

    if let Some((envoy, wasm)) = envoy {
        let gateway = GatewayConfig::from_yaml(&read(&root.join(K8S_CONFIG))?)?;
        let bootstrap = out.join("envoy-gateway.envoy.yaml");
        let tls_sds = out.join(TLS_SDS_FILE);
        if let Some(sds) = render_tls_sds(&gateway)? {
            std::fs::write(&tls_sds, sds)?;
        }
        std::fs::write(&bootstrap, envoy_bootstrap(&gateway, wasm, &tls_sds)?)?;
        crate::envoy_config::validate(envoy, &bootstrap)?;
        println!(
            "envoy --mode validate: the envoy-gateway bootstrap OK (with {})",
            wasm.display()
        );
    }
    Ok(())
}

/// The Istio objects `render-istio` makes of the shipped config in per-request mode (the
/// CUSTOM policies and the mesh config's provider, which fast mode does without).
fn per_request_istio_objects(root: &Path) -> Result<Vec<Value>> {
    let source = read(&root.join(K8S_CONFIG))?;
    let mut gateway = GatewayConfig::from_yaml(&source)?;
    gateway.ext_authz.mode = ExtAuthzMode::PerRequest;
    let mut objects = Vec::new();
    for file in istio_files(&gateway, &source, &IstioOptions::default(), "validate")? {
        for object in parse_documents(&file.text)? {
            if object["apiVersion"]
                .as_str()
                .is_some_and(|v| v.contains("istio.io/"))
            {
                objects.push(object);
            }
        }
    }
    Ok(objects)
}

fn parse_documents(text: &str) -> Result<Vec<Value>> {
    let mut objects = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(text) {
        let value: Value = serde::Deserialize::deserialize(document)?;
        if !value.is_null() {
            if !value.is_object() {
                bail!("a YAML document that is not an object: {value}");
            }
            objects.push(value);
        }
    }
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_hostnames_name_the_workload() {
        assert_eq!(
            kubernetes_service("everything.mcp.svc.cluster.local"),
            Some(("everything".to_owned(), "mcp".to_owned()))
        );
        assert_eq!(kubernetes_service("everything"), None);
        assert_eq!(kubernetes_service("everything.mcp"), None);
        assert_eq!(kubernetes_service("a.b.example.com"), None);
    }

    #[test]
    fn the_filter_reaches_components_by_istio_cluster_names() {
        let root = Tools::new().unwrap().root;
        let source = std::fs::read_to_string(root.join(K8S_CONFIG)).unwrap();
        let gateway = GatewayConfig::from_yaml(&source).unwrap();
        let files = istio_files(&gateway, &source, &IstioOptions::default(), "test").unwrap();
        let plugins = files
            .iter()
            .find(|f| f.path.ends_with("wasm-plugins.yaml"))
            .unwrap();
        let plugin = &parse_documents(&plugins.text).unwrap()[0];
        let config = &plugin["spec"]["pluginConfig"];
        assert_eq!(
            plugin["spec"]["vmConfig"]["env"],
            json!([{ "name": "MCP_AUTH_HANDOFF_KEY", "valueFrom": "HOST" }])
        );
        assert!(!plugins.text.contains("handoff_key"), "{}", plugins.text);
        assert_eq!(
            config["jwks"]["cluster"],
            "outbound|8081||authserver.mcp-auth.svc.cluster.local"
        );
        assert_eq!(
            config["decisions"]["cluster"],
            "outbound|9191||ext-authz.mcp-auth.svc.cluster.local"
        );
        assert_eq!(
            config["decisions"]["authority"],
            "ext-authz.mcp-auth.svc.cluster.local:9191"
        );
        assert_eq!(plugin["spec"]["phase"], "AUTHN");
        assert_eq!(config["routes"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn fast_mode_buffers_after_the_plugin_and_per_request_names_the_provider() {
        let root = Tools::new().unwrap().root;
        let source = std::fs::read_to_string(root.join(K8S_CONFIG)).unwrap();
        let mut gateway = GatewayConfig::from_yaml(&source).unwrap();
        for mode in [ExtAuthzMode::Fast, ExtAuthzMode::PerRequest] {
            gateway.ext_authz.mode = mode;
            let files = istio_files(&gateway, &source, &IstioOptions::default(), "test").unwrap();
            let objects = |name: &str| {
                let file = files.iter().find(|f| f.path.ends_with(name)).unwrap();
                parse_documents(&file.text).unwrap()
            };
            let patches = objects("envoy-filters.yaml")[0]["spec"]["configPatches"].clone();
            let buffers: Vec<&Value> = patches
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["applyTo"] == "HTTP_FILTER")
                .collect();
            let fast = mode == ExtAuthzMode::Fast;
            assert_eq!(buffers.len(), usize::from(fast), "{mode:?}");
            if fast {
                let buffer = buffers[0];
                assert_eq!(buffer["patch"]["operation"], "INSERT_BEFORE");
                assert_eq!(
                    buffer["match"]["listener"]["filterChain"]["filter"]["subFilter"]["name"],
                    "envoy.filters.http.router"
                );
                assert_eq!(
                    buffer["patch"]["value"]["typed_config"]["max_request_bytes"],
                    gateway.mcp_policy.max_body_bytes
                );
            }
            assert_eq!(objects("mesh-config.yaml").len(), usize::from(!fast));
            assert_eq!(
                objects("authorization-policies.yaml").len(),
                usize::from(!fast) * gateway.services.len()
            );
        }
    }

    #[test]
    fn a_short_upstream_host_is_refused_with_the_field() {
        let root = Tools::new().unwrap().root;
        let source = std::fs::read_to_string(root.join(K8S_CONFIG))
            .unwrap()
            .replace("everything.mcp.svc.cluster.local", "everything");
        let gateway = GatewayConfig::from_yaml(&source).unwrap();
        let err = istio_files(&gateway, &source, &IstioOptions::default(), "test")
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("services[0].upstream.url"),
            "{err}"
        );
    }
}

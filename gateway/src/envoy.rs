//! Renders the Envoy bootstrap for a gateway config from the template in `envoy/`.
//!
//! The Rust side computes every value (clusters, routes, the filter's plugin config); the
//! template only lays them out, so the YAML structure is readable in one place and the
//! values come from the one validated [`GatewayConfig`].

use std::path::PathBuf;

use mcp_auth_proto::paths::{self, AUTHSERVER_PUBLIC_PATHS, PathMatch};
use serde::Serialize;

use crate::GatewayConfig;
use crate::config::ExtAuthzMode;
use crate::endpoint::Endpoint;
use crate::filter_config::filter_config;

/// The bootstrap template.
pub const TEMPLATE: &str = include_str!("../../envoy/envoy.yaml.j2");
/// Envoy cluster of the authserver (the filter fetches the JWKS through it too).
pub const AUTHSERVER_CLUSTER: &str = "mcp_authserver";
/// Envoy cluster of the ext_authz gRPC service.
pub const EXT_AUTHZ_CLUSTER: &str = "mcp_ext_authz";
/// Name of the token-verifying wasm filter in the HTTP filter chain.
pub const WASM_FILTER_NAME: &str = "mcp_auth.token_filter";
/// Name of the CORS filter, which answers browser preflights before any token is asked for.
pub const CORS_FILTER_NAME: &str = "envoy.filters.http.cors";
/// Name of the filter that strips client-sent identity headers (and, in fast mode, the
/// reserved `x-mcp-auth*` namespace) before the token filter.
pub const STRIP_RESERVED_FILTER_NAME: &str = "mcp_auth.strip_reserved_headers";
/// Request headers a browser MCP client may send (streamable HTTP and its auth).
const CORS_ALLOW_HEADERS: &str = "authorization, content-type, accept, last-event-id, mcp-protocol-version, mcp-session-id, mcp-method, mcp-name";
/// Response headers a browser MCP client must be able to read.
const CORS_EXPOSE_HEADERS: &str = "mcp-session-id, mcp-protocol-version, www-authenticate";
/// Name of the buffer filter that bounds request bodies on the authserver's routes.
pub const AUTHSERVER_BODY_FILTER_NAME: &str = "mcp_auth.authserver_body_limit";
/// Name of the buffer filter that holds fast-mode requests until their body is complete.
pub const POLICY_BODY_FILTER_NAME: &str = "mcp_auth.policy_body";
/// Name of the ext_authz filter in the HTTP filter chain.
pub const EXT_AUTHZ_FILTER_NAME: &str = "envoy.filters.http.ext_authz";
/// Name of the filter that sets `Strict-Transport-Security` on every https response.
pub const HSTS_FILTER_NAME: &str = "mcp_auth.hsts";
/// The SDS secret that holds the listener's certificate.
pub const TLS_SECRET_NAME: &str = "mcp_gateway_certificate";
/// File name of the listener certificate's SDS document ([`render_tls_sds`]), written beside
/// the bootstrap by the tools that render both.
pub const TLS_SDS_FILE: &str = "listener-tls-sds.yaml";

/// What the bootstrap needs besides the gateway config.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    /// The filter's `.wasm` file.
    pub wasm_path: PathBuf,
    /// Write an access log (without query strings or credentials) to stdout.
    pub access_log: bool,
    /// Where Envoy reads the listener certificate's SDS document ([`render_tls_sds`]);
    /// required when `listener.tls` is set, ignored otherwise.
    pub tls_sds_path: Option<PathBuf>,
}

/// Why rendering failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot serialise the filter config: {0}")]
    FilterConfig(#[from] serde_json::Error),
    #[error("cannot render the Envoy template: {0}")]
    Template(#[from] minijinja::Error),
    #[error("cannot serialise the listener certificate's SDS document: {0}")]
    Sds(#[from] serde_yaml_ng::Error),
    #[error("listener.tls needs RenderOptions::tls_sds_path, where Envoy reads its SDS document")]
    NoSdsPath,
}

#[derive(Serialize)]
struct Context {
    listener: ListenerContext,
    overload: OverloadContext,
    admin: SocketContext,
    access_log: bool,
    wasm_path: String,
    /// The environment variable the filter's VM reads its hand-off secret from.
    handoff_key_env: &'static str,
    wasm_filter_name: &'static str,
    cors_filter_name: &'static str,
    cors_allow_headers: &'static str,
    cors_expose_headers: &'static str,
    ext_authz_filter_name: &'static str,
    /// Envoy's ext_authz filter is in the chain (per-request mode); in fast mode the token
    /// filter asks ext_authz itself.
    ext_authz_per_request: bool,
    strip_reserved_filter_name: &'static str,
    reserved_header_prefix: &'static str,
    /// Removed from every request before the token filter ([`GatewayConfig::stripped_request_headers`]).
    stripped_headers: Vec<String>,
    filter_config_json: String,
    ext_authz_cluster: &'static str,
    ext_authz_timeout: String,
    ext_authz_max_body_bytes: u32,
    authserver_cluster: &'static str,
    authserver_body_filter_name: &'static str,
    policy_body_filter_name: &'static str,
    authserver_max_body_bytes: usize,
    authserver_routes: Vec<PathContext>,
    virtual_hosts: Vec<VirtualHostContext>,
    clusters: Vec<ClusterContext>,
}

#[derive(Serialize)]
struct ListenerContext {
    address: String,
    port: u16,
    xff_num_trusted_hops: u32,
    tls: Option<TlsContext>,
}

/// The listener's TLS (`listener.tls`).
#[derive(Serialize)]
struct TlsContext {
    /// The SDS document naming the certificate files ([`render_tls_sds`]).
    sds_path: String,
    secret_name: &'static str,
    min_version: &'static str,
    hsts_filter_name: &'static str,
    /// The whole `Strict-Transport-Security` value.
    hsts: String,
    redirect: Option<RedirectContext>,
}

/// The plain-http listener that only redirects to https.
#[derive(Serialize)]
struct RedirectContext {
    address: String,
    port: u16,
    /// The public https port (the issuer's), which every redirect names.
    https_port: u16,
}

/// Envoy's overload manager budgets.
#[derive(Serialize)]
struct OverloadContext {
    max_heap_bytes: u64,
    max_connections: u64,
}

#[derive(Serialize)]
struct SocketContext {
    address: String,
    port: u16,
}

#[derive(Serialize)]
struct PathContext {
    /// The Envoy `RouteMatch` field: `path` or `path_separated_prefix`.
    kind: &'static str,
    /// The public path: the authserver's own, under the issuer's path when it has one.
    value: String,
    /// The authserver's own path, when the public one differs (Envoy `prefix_rewrite`).
    rewrite: Option<&'static str>,
}

#[derive(Serialize)]
struct VirtualHostContext {
    name: String,
    domains: Vec<String>,
    services: Vec<ServiceRouteContext>,
}

#[derive(Serialize)]
struct ServiceRouteContext {
    name: String,
    path: String,
    cluster: String,
    prefix_rewrite: String,
    host_rewrite: String,
    timeout: String,
    /// Browser origins allowed to call the service (CORS); empty: no CORS policy.
    allowed_origins: Vec<String>,
}

#[derive(Serialize)]
struct ClusterContext {
    name: String,
    discovery: &'static str,
    endpoint: Endpoint,
    http2: bool,
}

/// Renders the Envoy bootstrap YAML for `config`.
pub fn render(config: &GatewayConfig, options: &RenderOptions) -> Result<String, RenderError> {
    let context = Context {
        listener: ListenerContext {
            address: config.listener.address.ip().to_string(),
            port: config.listener.address.port(),
            xff_num_trusted_hops: config.listener.xff_num_trusted_hops,
            tls: tls_context(config, options)?,
        },
        overload: OverloadContext {
            max_heap_bytes: config.listener.max_heap_bytes,
            max_connections: config.listener.max_connections,
        },
        admin: socket(config.admin.address),
        access_log: options.access_log,
        wasm_path: options.wasm_path.display().to_string(),
        handoff_key_env: mcp_auth_proto::handoff::HANDOFF_KEY_ENV,
        wasm_filter_name: WASM_FILTER_NAME,
        cors_filter_name: CORS_FILTER_NAME,
        cors_allow_headers: CORS_ALLOW_HEADERS,
        cors_expose_headers: CORS_EXPOSE_HEADERS,
        ext_authz_filter_name: EXT_AUTHZ_FILTER_NAME,
        ext_authz_per_request: config.ext_authz.mode == ExtAuthzMode::PerRequest,
        strip_reserved_filter_name: STRIP_RESERVED_FILTER_NAME,
        reserved_header_prefix: mcp_auth_proto::handoff::RESERVED_PREFIX,
        stripped_headers: config.stripped_request_headers(),
        filter_config_json: serde_json::to_string(&filter_config(config))?,
        ext_authz_cluster: EXT_AUTHZ_CLUSTER,
        ext_authz_timeout: seconds(config.ext_authz.timeout),
        ext_authz_max_body_bytes: config.mcp_policy.max_body_bytes,
        authserver_cluster: AUTHSERVER_CLUSTER,
        authserver_body_filter_name: AUTHSERVER_BODY_FILTER_NAME,
        policy_body_filter_name: POLICY_BODY_FILTER_NAME,
        authserver_max_body_bytes: paths::AUTHSERVER_MAX_BODY_BYTES,
        authserver_routes: authserver_routes(config),
        virtual_hosts: virtual_hosts(config),
        clusters: clusters(config),
    };
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_template("envoy.yaml", TEMPLATE)?;
    Ok(env.get_template("envoy.yaml")?.render(context)?)
}

fn tls_context(
    config: &GatewayConfig,
    options: &RenderOptions,
) -> Result<Option<TlsContext>, RenderError> {
    let Some(tls) = &config.listener.tls else {
        return Ok(None);
    };
    let sds_path = options
        .tls_sds_path
        .as_ref()
        .ok_or(RenderError::NoSdsPath)?;
    let mut hsts = format!("max-age={}", tls.hsts_max_age.as_secs());
    if tls.hsts_include_subdomains {
        hsts.push_str("; includeSubDomains");
    }
    Ok(Some(TlsContext {
        sds_path: sds_path.display().to_string(),
        secret_name: TLS_SECRET_NAME,
        min_version: tls.min_version.envoy_name(),
        hsts_filter_name: HSTS_FILTER_NAME,
        hsts,
        redirect: tls.http_redirect_address.map(|addr| RedirectContext {
            address: addr.ip().to_string(),
            port: addr.port(),
            // Validated at load: the issuer is https, so it has a port or 443.
            https_port: config.issuer.port_or_known_default().unwrap_or(443),
        }),
    }))
}

/// The listener certificate's SDS document, for the file the bootstrap's
/// [`RenderOptions::tls_sds_path`] names; `None` without `listener.tls`.
///
/// File-based SDS rather than the certificate inline in the listener: Envoy reads a
/// `DownstreamTlsContext`'s own files once, at start, but watches the files of a secret it
/// got by SDS and serves a replaced pair from the next handshake on. It watches the files'
/// directories for moves (a Kubernetes Secret's `..data` swap, cert-manager, `mv`), not for
/// writes in place; a pair that does not match is refused and the previous one kept.
pub fn render_tls_sds(config: &GatewayConfig) -> Result<Option<String>, RenderError> {
    let Some(tls) = &config.listener.tls else {
        return Ok(None);
    };
    let document = serde_json::json!({
        "resources": [{
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
            "name": TLS_SECRET_NAME,
            "tls_certificate": {
                "certificate_chain": { "filename": tls.certificate_chain_file.display().to_string() },
                "private_key": { "filename": tls.private_key_file.display().to_string() },
            },
        }],
    });
    Ok(Some(format!(
        "# Generated from the gateway config by mcp-mesh-auth (listener.tls). Do not edit: \
         edit the gateway config.\n# The listener's certificate by file-based SDS: Envoy \
         serves a replaced certificate and key without a restart.\n{}",
        serde_yaml_ng::to_string(&document)?
    )))
}

fn socket(addr: std::net::SocketAddr) -> SocketContext {
    SocketContext {
        address: addr.ip().to_string(),
        port: addr.port(),
    }
}

fn seconds(d: std::time::Duration) -> String {
    format!("{}.{:03}s", d.as_secs(), d.subsec_millis())
}

/// The authserver's public paths. An issuer with a path (`https://h/auth`) has its endpoints
/// under that path (`/auth/token`, OIDC's `/auth/.well-known/openid-configuration`), which
/// Envoy rewrites to the authserver's own paths; the RFC 8414 and RFC 9728 well-known
/// documents stay at the root, where their path-inserted URLs live.
fn authserver_routes(config: &GatewayConfig) -> Vec<PathContext> {
    let issuer_path = config.issuer.path().trim_end_matches('/');
    AUTHSERVER_PUBLIC_PATHS
        .iter()
        .map(|m| {
            let (kind, path) = match *m {
                PathMatch::Exact(path) => ("path", path),
                PathMatch::Segments(path) => ("path_separated_prefix", path),
            };
            let at_root = issuer_path.is_empty()
                || path == paths::AUTHORIZATION_SERVER_METADATA
                || path == paths::PROTECTED_RESOURCE_METADATA;
            if at_root {
                PathContext {
                    kind,
                    value: path.to_owned(),
                    rewrite: None,
                }
            } else {
                PathContext {
                    kind,
                    value: format!("{issuer_path}{path}"),
                    rewrite: Some(path),
                }
            }
        })
        .collect()
}

/// The issuer's virtual host takes every path-routed service; each distinct service `host`
/// gets a virtual host of its own. Every virtual host also routes the authserver's paths, so
/// protected-resource metadata is served on the host and path of its resource.
fn virtual_hosts(config: &GatewayConfig) -> Vec<VirtualHostContext> {
    let mut hosts: Vec<VirtualHostContext> = vec![VirtualHostContext {
        name: "gateway".to_owned(),
        domains: vec!["*".to_owned()],
        services: Vec::new(),
    }];
    for service in &config.services {
        let route = service_route(service);
        match &service.host {
            None => hosts[0].services.push(route),
            Some(host) => match hosts.iter_mut().find(|vh| vh.domains.first() == Some(host)) {
                Some(vh) => vh.services.push(route),
                None => hosts.push(VirtualHostContext {
                    name: format!("host_{}", host.replace(['.', ':', '-'], "_")),
                    domains: vec![host.clone(), format!("{host}:*")],
                    services: vec![route],
                }),
            },
        }
    }
    // Envoy picks the most specific domain match, but keep the wildcard host last for readers.
    hosts.rotate_left(1);
    hosts
}

fn service_route(service: &crate::Service) -> ServiceRouteContext {
    let upstream = &service.upstream.url;
    let host_rewrite = Endpoint::from_url(upstream)
        .map(|e| e.authority())
        .unwrap_or_default();
    ServiceRouteContext {
        name: service.name.clone(),
        path: service.path.clone(),
        cluster: service.cluster_name(),
        prefix_rewrite: upstream.path().to_owned(),
        host_rewrite,
        timeout: service
            .upstream
            .timeout
            .map(seconds)
            .unwrap_or_else(|| "0s".to_owned()),
        allowed_origins: service.allowed_origins.clone(),
    }
}

fn clusters(config: &GatewayConfig) -> Vec<ClusterContext> {
    let mut clusters = vec![
        cluster(
            AUTHSERVER_CLUSTER.to_owned(),
            config.authserver_endpoint(),
            false,
        ),
        cluster(
            EXT_AUTHZ_CLUSTER.to_owned(),
            config.ext_authz_endpoint(),
            true,
        ),
    ];
    for service in &config.services {
        // Validated at load: every upstream URL has a host.
        if let Some(endpoint) = Endpoint::from_url(&service.upstream.url) {
            clusters.push(cluster(service.cluster_name(), endpoint, false));
        }
    }
    clusters
}

fn cluster(name: String, endpoint: Endpoint, http2: bool) -> ClusterContext {
    let discovery = if endpoint.is_ip() {
        "STATIC"
    } else {
        "STRICT_DNS"
    };
    ClusterContext {
        name,
        discovery,
        endpoint,
        http2,
    }
}

//! The Envoy bootstraps under test. Every scenario starts from the bootstrap the product
//! renders for the bench's gateway config (same listener and HTTP connection manager
//! settings), answers the MCP route with a direct `200` instead of an upstream, and keeps
//! only the HTTP filters it measures — so the scenarios differ in their filters alone.
//! Those of one [`Workload`] send the same request and get the same answer; a policy
//! scenario is compared with the anchors of its own workload. Every one answers after the
//! whole request body ([`hold_until_body_is_whole`]).

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// Names of the HTTP filters in the rendered bootstrap (gateway/src/envoy.rs).
const CORS: &str = "envoy.filters.http.cors";
const TOKEN_FILTER: &str = "mcp_auth.token_filter";
const STRIP_RESERVED: &str = "mcp_auth.strip_reserved_headers";
/// Fast mode's buffer filter: holds a POST until its body is whole, for the body decision.
const POLICY_BODY: &str = "mcp_auth.policy_body";
const EXT_AUTHZ: &str = "envoy.filters.http.ext_authz";
const ROUTER: &str = "envoy.filters.http.router";
/// The bench's one MCP service (its Envoy route name).
pub const SERVICE: &str = "everything";
/// Cluster and listener of the side JWKS document of the uncached scenarios.
const SIDE_JWKS: &str = "bench_jwks";

/// What a scenario runs in front of the direct response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// No filter at all.
    Plain,
    /// The no-op proxy-wasm filter: the floor cost of any wasm filter.
    EmptyWasm,
    /// Envoy's native `jwt_authn` with the authserver's JWKS inline.
    JwtAuthn { cached: bool },
    /// Our token filter alone, as rendered.
    FilterOnly,
    /// Our token filter with its cache off (every request verifies a signature),
    /// against a JWKS served by the same Envoy.
    FilterUncached { alg: &'static str },
    /// The whole rendered chain: CORS, our token filter, ext_authz → our service (the
    /// route's upstream replaced by the direct response).
    FullChainPerRequest,
    /// The fast mode: CORS and our token filter, which asks ext_authz
    /// (`mcp_auth.v1.Decisions`) only on a cache miss and follows its invalidation stream.
    FullChainFast,
    /// The no-op wasm filter, on the policy call's request ([`Workload::PolicyCall`]).
    EmptyWasmCall,
    /// The fast chain under `mcp_policy` deciding a ~1 KiB `tools/call` by its body (the
    /// decision cached per token, route and operations).
    PolicyCallFast,
    /// Plain Envoy answering `tools/list` with 50 tools ([`Workload::List`]).
    PlainList,
    /// The no-op wasm filter on the same list.
    EmptyWasmList,
    /// The fast chain under `mcp_policy` filtering the 50-tool answer for the caller.
    PolicyListFiltered,
    /// Not an Envoy: the seed gateway's verify endpoint alone ([`super::seed`]).
    SeedVerify,
}

impl Kind {
    pub fn name(self) -> String {
        match self {
            Kind::Plain => "plain_envoy".into(),
            Kind::EmptyWasm => "empty_wasm".into(),
            Kind::JwtAuthn { cached: false } => "jwt_authn_native".into(),
            Kind::JwtAuthn { cached: true } => "jwt_authn_native_cached".into(),
            Kind::FilterOnly => "filter_only".into(),
            Kind::FilterUncached { alg } => format!("filter_uncached_{}", alg.to_lowercase()),
            Kind::FullChainPerRequest => "full_chain_per_request".into(),
            Kind::FullChainFast => "full_chain_fast".into(),
            Kind::EmptyWasmCall => "empty_wasm_tools_call".into(),
            Kind::PolicyCallFast => "policy_call_fast".into(),
            Kind::PlainList => "plain_envoy_list".into(),
            Kind::EmptyWasmList => "empty_wasm_list".into(),
            Kind::PolicyListFiltered => "policy_list_filtered".into(),
            Kind::SeedVerify => "seed_verify".into(),
        }
    }

    /// What the scenario is sent and answers.
    pub fn workload(self) -> Workload {
        match self {
            Kind::EmptyWasmCall | Kind::PolicyCallFast => Workload::PolicyCall,
            Kind::PlainList | Kind::EmptyWasmList | Kind::PolicyListFiltered => Workload::List,
            _ => Workload::Small,
        }
    }

    /// The scenario its per-round ratio is taken to, when it is not plain Envoy or the
    /// empty wasm filter: the anchor of the same workload.
    pub fn anchor(self) -> Option<Kind> {
        match self {
            Kind::PolicyCallFast => Some(Kind::EmptyWasmCall),
            Kind::PolicyListFiltered => Some(Kind::PlainList),
            _ => None,
        }
    }

    /// Scenarios that run whenever this one does (`--only`): its workload's anchors.
    pub fn anchors(self) -> &'static [Kind] {
        match self {
            Kind::PolicyCallFast => &[Kind::EmptyWasmCall],
            Kind::PolicyListFiltered => &[Kind::PlainList, Kind::EmptyWasmList],
            _ => &[],
        }
    }
}

/// The request a scenario is loaded with, and what its route answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// A small `tools/list`, answered with an empty result.
    Small,
    /// A ~1 KiB `tools/call` ([`super::policy::call_body`]), answered with an empty result.
    PolicyCall,
    /// A `tools/list` answered with [`super::policy::LISTED`] tools (one SSE event).
    List,
}

impl Workload {
    /// The JSON-RPC body of the load's POST.
    pub fn request_body(self) -> String {
        match self {
            Workload::Small | Workload::List => super::wrk::LIST_BODY.to_owned(),
            Workload::PolicyCall => super::policy::call_body(),
        }
    }
}

/// What the bootstraps are made from.
pub struct Inputs<'a> {
    /// The product's rendered bootstrap for the bench gateway config.
    pub rendered: &'a str,
    pub noop_wasm: &'a std::path::Path,
    pub issuer: &'a str,
    pub resource: &'a str,
    /// The authserver's JWKS document (inlined into `jwt_authn`).
    pub jwks: &'a str,
    /// The JWKS of the uncached scenarios' keys.
    pub side_jwks: &'a str,
    /// The product's rendered bootstrap for the same config with `ext_authz.mode: fast`.
    pub rendered_fast: &'a str,
    /// The same in fast mode with `mcp_policy` ([`super::policy::CONFIG`]).
    pub rendered_policy_fast: &'a str,
}

/// The bootstrap of `kind` listening on `port`; `side_port` serves the side JWKS.
pub fn bootstrap(kind: Kind, inputs: &Inputs<'_>, port: u16, side_port: u16) -> Result<String> {
    let rendered = match kind {
        Kind::FullChainFast => inputs.rendered_fast,
        Kind::PolicyCallFast | Kind::PolicyListFiltered => inputs.rendered_policy_fast,
        _ => inputs.rendered,
    };
    let mut doc: Value = serde_yaml_ng::from_str(rendered).context("rendered bootstrap")?;
    doc["admin"]["address"]["socket_address"]["port_value"] = json!(0);
    let listener = &mut doc["static_resources"]["listeners"][0];
    listener["address"]["socket_address"]["port_value"] = json!(port);
    answer_directly(hcm(listener)?, kind.workload())?;

    let filters = hcm(listener)?["http_filters"]
        .as_array_mut()
        .context("http_filters")?;
    let keep = |names: &[&str], filters: &mut Vec<Value>| {
        filters.retain(|f| names.contains(&f["name"].as_str().unwrap_or_default()));
    };
    match kind {
        Kind::Plain | Kind::PlainList => keep(&[ROUTER], filters),
        Kind::EmptyWasm | Kind::EmptyWasmCall | Kind::EmptyWasmList => {
            keep(&[TOKEN_FILTER, ROUTER], filters);
            let wasm = &mut filters[0]["typed_config"]["config"];
            wasm["configuration"]["value"] = json!("");
            wasm["name"] = json!("noop");
            wasm["root_id"] = json!("noop");
            wasm["vm_config"]["vm_id"] = json!("noop");
            wasm["vm_config"]["code"]["local"]["filename"] =
                json!(inputs.noop_wasm.display().to_string());
        }
        Kind::JwtAuthn { cached } => {
            keep(&[ROUTER], filters);
            filters.insert(0, jwt_authn(inputs, cached));
        }
        Kind::FilterOnly => keep(&[TOKEN_FILTER, ROUTER], filters),
        Kind::FilterUncached { .. } => {
            keep(&[TOKEN_FILTER, ROUTER], filters);
            edit_filter_config(filters, |config| {
                config["token_cache_entries"] = json!(0);
                config["jwks"]["cluster"] = json!(SIDE_JWKS);
                config["jwks"]["authority"] = json!(SIDE_JWKS);
            })?;
            add_side_jwks(&mut doc, inputs.side_jwks, side_port)?;
        }
        Kind::FullChainPerRequest => keep(&[CORS, TOKEN_FILTER, EXT_AUTHZ, ROUTER], filters),
        // As `ext_authz.mode: fast` renders it: no ext_authz filter; the reserved headers
        // stripped natively; the token filter asks the same ext_authz cluster; the buffer
        // holds a POST until the filter has decided its body (without it the direct
        // response would answer on the headers, before any body decision).
        Kind::FullChainFast | Kind::PolicyCallFast | Kind::PolicyListFiltered => keep(
            &[CORS, STRIP_RESERVED, TOKEN_FILTER, POLICY_BODY, ROUTER],
            filters,
        ),
        Kind::SeedVerify => bail!("the seed scenario has no Envoy"),
    }
    let listener = &mut doc["static_resources"]["listeners"][0];
    let filters = hcm(listener)?["http_filters"]
        .as_array_mut()
        .context("http_filters")?;
    hold_until_body_is_whole(filters, inputs.rendered_fast)?;
    Ok(serde_yaml_ng::to_string(&doc)?)
}

/// Every scenario answers after the whole request, as the fast chain must (its buffer
/// filter) and the per-request chain does (ext_authz reads the body): a direct response
/// sent on the headers alone, before the body, makes Envoy close the HTTP/1.1 connection,
/// and the reconnections would make the scenarios without a buffer look dearer than they
/// are. So those get the rendered fast chain's buffer filter before the router.
fn hold_until_body_is_whole(filters: &mut Vec<Value>, rendered_fast: &str) -> Result<()> {
    let reads_body = |f: &Value| f["name"] == POLICY_BODY || f["name"] == EXT_AUTHZ;
    if filters.iter().any(reads_body) {
        return Ok(());
    }
    let fast: Value = serde_yaml_ng::from_str(rendered_fast).context("rendered bootstrap")?;
    let buffer =
        fast["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
            ["http_filters"]
            .as_array()
            .and_then(|filters| filters.iter().find(|f| f["name"] == POLICY_BODY))
            .context("the fast chain's buffer filter")?
            .clone();
    let router = filters
        .iter()
        .position(|f| f["name"] == ROUTER)
        .context("the router filter")?;
    filters.insert(router, buffer);
    Ok(())
}

/// Changes the token filter's plugin configuration (JSON inside the bootstrap's YAML).
fn edit_filter_config(filters: &mut [Value], edit: impl FnOnce(&mut Value)) -> Result<()> {
    let filter = filters
        .iter_mut()
        .find(|f| f["name"] == TOKEN_FILTER)
        .context("token filter")?;
    let value = &mut filter["typed_config"]["config"]["configuration"]["value"];
    let mut config: Value = serde_json::from_str(value.as_str().context("filter configuration")?)?;
    edit(&mut config);
    *value = json!(config.to_string());
    Ok(())
}

/// The HTTP connection manager of a listener.
fn hcm(listener: &mut Value) -> Result<&mut Value> {
    let config = &mut listener["filter_chains"][0]["filters"][0]["typed_config"];
    if config.is_null() {
        bail!("the rendered listener has no HTTP connection manager");
    }
    Ok(config)
}

/// The service's route answers `200` itself: no upstream, so only the filters are measured.
fn answer_directly(hcm: &mut Value, workload: Workload) -> Result<()> {
    let body = match workload {
        Workload::Small | Workload::PolicyCall => {
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}".to_owned()
        }
        Workload::List => super::policy::list_answer(),
    };
    // Envoy refuses inline bodies over 4 KiB unless the route table allows more.
    hcm["route_config"]["max_direct_response_body_size_bytes"] = json!(body.len().max(4096));
    let routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
        .as_array_mut()
        .context("routes")?;
    let route = routes
        .iter_mut()
        .find(|r| r["name"] == SERVICE)
        .context("the service route")?;
    let object = route.as_object_mut().context("route")?;
    object.remove("route");
    object.insert(
        "direct_response".into(),
        json!({"status": 200, "body": {"inline_string": body}}),
    );
    if workload == Workload::List {
        // What an MCP server answers a list with; the listing filter reads only JSON and SSE.
        object.insert(
            "response_headers_to_add".into(),
            json!([{
                "header": {"key": "content-type", "value": super::policy::LIST_CONTENT_TYPE},
                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
            }]),
        );
    }
    Ok(())
}

/// Envoy's `jwt_authn` requiring a token of our issuer and resource on every path.
fn jwt_authn(inputs: &Inputs<'_>, cached: bool) -> Value {
    let mut provider = json!({
        "issuer": inputs.issuer,
        "audiences": [inputs.resource],
        "local_jwks": {"inline_string": inputs.jwks},
        "forward": true,
    });
    if cached {
        provider["jwt_cache_config"] = json!({"jwt_cache_size": 1000});
    }
    json!({
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {"mcp": provider},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "mcp"}}],
        },
    })
}

/// A second listener on `port` serving `jwks` at `/jwks`, and the cluster that reaches it.
fn add_side_jwks(doc: &mut Value, jwks: &str, port: u16) -> Result<()> {
    let resources = &mut doc["static_resources"];
    resources["listeners"]
        .as_array_mut()
        .context("listeners")?
        .push(json!({
            "name": SIDE_JWKS,
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
            "enable_reuse_port": true,
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": SIDE_JWKS,
                    "route_config": {"virtual_hosts": [{
                        "name": SIDE_JWKS,
                        "domains": ["*"],
                        "routes": [{
                            "match": {"path": "/jwks"},
                            "direct_response": {"status": 200, "body": {"inline_string": jwks}},
                        }],
                    }]},
                    "http_filters": [{
                        "name": ROUTER,
                        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
                    }],
                },
            }]}],
        }));
    resources["clusters"]
        .as_array_mut()
        .context("clusters")?
        .push(json!({
            "name": SIDE_JWKS,
            "type": "STATIC",
            "connect_timeout": "1s",
            "load_assignment": {"cluster_name": SIDE_JWKS, "endpoints": [{"lb_endpoints": [{
                "endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}},
            }]}]},
        }));
    Ok(())
}

//! `listener.tls`: what is refused at load, what Envoy is given, and the file checks made
//! before Envoy starts.

use std::path::Path;

use serde_yaml_ng::Value;

use crate::GatewayConfig;
use crate::envoy::{
    HSTS_FILTER_NAME, RenderError, RenderOptions, TLS_SECRET_NAME, render, render_tls_sds,
};

/// A TLS gateway on `https://gw.example.com:8443` whose `listener.tls` has `tls_fields`
/// besides its certificate files.
fn tls_config(tls_fields: &str) -> String {
    format!(
        r#"issuer: https://gw.example.com:8443
listener:
  address: 0.0.0.0:8443
  tls:
    certificate_chain_file: /etc/mcp-auth/tls/tls.crt
    private_key_file: /etc/mcp-auth/tls/tls.key
{tls_fields}
services:
  - name: everything
    upstream: {{ url: "http://127.0.0.1:3001/mcp" }}
"#
    )
}

fn error_of(yaml: &str) -> String {
    GatewayConfig::from_yaml(yaml).unwrap_err().to_string()
}

fn options() -> RenderOptions {
    RenderOptions {
        wasm_path: "/x/filter.wasm".into(),
        access_log: false,
        tls_sds_path: Some("/etc/envoy/listener-tls-sds.yaml".into()),
    }
}

fn bootstrap(config: &GatewayConfig) -> Value {
    serde_yaml_ng::from_str(&render(config, &options()).unwrap()).unwrap()
}

fn listener<'a>(doc: &'a Value, name: &str) -> Option<&'a Value> {
    doc["static_resources"]["listeners"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|l| l["name"].as_str() == Some(name))
}

fn http_filter_names(listener: &Value) -> Vec<String> {
    listener["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn defaults_make_an_https_gateway_with_hsts_for_a_year_and_no_redirect() {
    let config = GatewayConfig::from_yaml(&tls_config("")).unwrap();
    assert_eq!(
        config.services[0].resource,
        "https://gw.example.com:8443/everything/mcp"
    );
    let doc = bootstrap(&config);
    assert_eq!(doc["node"]["id"].as_str(), Some("mcp-mesh-auth"));
    let gateway = listener(&doc, "mcp_gateway").unwrap();
    let tls = &gateway["filter_chains"][0]["transport_socket"]["typed_config"];
    assert_eq!(
        tls["@type"].as_str(),
        Some("type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext")
    );
    let common = &tls["common_tls_context"];
    assert_eq!(
        common["tls_params"]["tls_minimum_protocol_version"].as_str(),
        Some("TLSv1_2")
    );
    assert_eq!(
        common["alpn_protocols"],
        serde_yaml_ng::from_str::<Value>("[h2, http/1.1]").unwrap()
    );
    let sds = &common["tls_certificate_sds_secret_configs"][0];
    assert_eq!(sds["name"].as_str(), Some(TLS_SECRET_NAME));
    assert_eq!(
        sds["sds_config"]["path_config_source"]["path"].as_str(),
        Some("/etc/envoy/listener-tls-sds.yaml")
    );
    // HSTS first in the chain, so that it encodes last: every local reply passes it.
    let names = http_filter_names(gateway);
    assert_eq!(names[0], HSTS_FILTER_NAME, "{names:?}");
    let hsts = &gateway["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"][0]["typed_config"]
        ["mutations"]["response_mutations"][0]["append"];
    assert_eq!(
        hsts["header"]["key"].as_str(),
        Some("strict-transport-security")
    );
    assert_eq!(hsts["header"]["value"].as_str(), Some("max-age=31536000"));
    assert!(listener(&doc, "mcp_gateway_http_redirect").is_none());
}

#[test]
fn the_redirect_listener_only_redirects_to_the_issuers_https_port() {
    let config = GatewayConfig::from_yaml(&tls_config(
        "    http_redirect_address: 0.0.0.0:8080\n    hsts_max_age: 1d\n    hsts_include_subdomains: true\n    min_version: TLSv1_3",
    ))
    .unwrap();
    let doc = bootstrap(&config);
    let redirect = listener(&doc, "mcp_gateway_http_redirect").unwrap();
    assert_eq!(
        redirect["address"]["socket_address"]["port_value"].as_u64(),
        Some(8080)
    );
    assert!(
        redirect["filter_chains"][0]["transport_socket"].is_null(),
        "plain http"
    );
    let hcm = &redirect["filter_chains"][0]["filters"][0]["typed_config"];
    let routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
        .as_sequence()
        .unwrap();
    assert_eq!(routes.len(), 1, "one route: the redirect");
    assert_eq!(
        routes[0]["redirect"]["https_redirect"].as_bool(),
        Some(true)
    );
    assert_eq!(routes[0]["redirect"]["port_redirect"].as_u64(), Some(8443));
    // Nothing but the router: no token filter, no authserver, no HSTS over http.
    assert_eq!(http_filter_names(redirect), ["envoy.filters.http.router"]);
    let gateway = listener(&doc, "mcp_gateway").unwrap();
    let common =
        &gateway["filter_chains"][0]["transport_socket"]["typed_config"]["common_tls_context"];
    assert_eq!(
        common["tls_params"]["tls_minimum_protocol_version"].as_str(),
        Some("TLSv1_3")
    );
    let text = serde_json::to_string(gateway).unwrap();
    assert!(
        text.contains("\"value\":\"max-age=86400; includeSubDomains\""),
        "{text}"
    );

    // The default https port when the issuer names none.
    let config = GatewayConfig::from_yaml(
        &tls_config("    http_redirect_address: 0.0.0.0:8080")
            .replace("https://gw.example.com:8443", "https://gw.example.com"),
    )
    .unwrap();
    let doc = bootstrap(&config);
    let redirect = listener(&doc, "mcp_gateway_http_redirect").unwrap();
    let route = &redirect["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]["virtual_hosts"]
        [0]["routes"][0];
    assert_eq!(route["redirect"]["port_redirect"].as_u64(), Some(443));
}

#[test]
fn the_sds_document_names_the_certificate_files() {
    let config = GatewayConfig::from_yaml(&tls_config("")).unwrap();
    let sds: Value = serde_yaml_ng::from_str(&render_tls_sds(&config).unwrap().unwrap()).unwrap();
    let secret = &sds["resources"][0];
    assert_eq!(
        secret["@type"].as_str(),
        Some("type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret")
    );
    assert_eq!(secret["name"].as_str(), Some(TLS_SECRET_NAME));
    let certificate = &secret["tls_certificate"];
    assert_eq!(
        certificate["certificate_chain"]["filename"].as_str(),
        Some("/etc/mcp-auth/tls/tls.crt")
    );
    assert_eq!(
        certificate["private_key"]["filename"].as_str(),
        Some("/etc/mcp-auth/tls/tls.key")
    );
}

#[test]
fn a_tls_bootstrap_needs_the_path_of_its_sds_document() {
    let config = GatewayConfig::from_yaml(&tls_config("")).unwrap();
    let err = render(
        &config,
        &RenderOptions {
            tls_sds_path: None,
            ..options()
        },
    )
    .unwrap_err();
    assert!(matches!(err, RenderError::NoSdsPath), "{err}");
}

#[test]
fn without_tls_nothing_of_it_is_rendered() {
    let config = GatewayConfig::from_yaml(
        "issuer: http://127.0.0.1:8080\nservices:\n  - name: everything\n    upstream: { url: \"http://127.0.0.1:3001/mcp\" }\n",
    )
    .unwrap();
    assert!(render_tls_sds(&config).unwrap().is_none());
    let yaml = render(&config, &options()).unwrap();
    for absent in [
        "transport_sockets.tls.v3.DownstreamTlsContext",
        "strict-transport-security",
        "https_redirect",
        "node:",
    ] {
        assert!(!yaml.contains(absent), "{absent}");
    }
}

#[test]
fn tls_settings_are_checked_and_name_their_field() {
    let cases = [
        (
            tls_config("").replace("https://gw.example.com:8443", "http://127.0.0.1:8443"),
            "`issuer`",
        ),
        (
            tls_config("").replace("/etc/mcp-auth/tls/tls.crt", "tls/tls.crt"),
            "`listener.tls.certificate_chain_file`",
        ),
        (
            tls_config("").replace("/etc/mcp-auth/tls/tls.key", "tls.key"),
            "`listener.tls.private_key_file`",
        ),
        (
            tls_config("    http_redirect_address: 127.0.0.1:8443"),
            "`listener.tls.http_redirect_address`",
        ),
        (
            tls_config("    min_version: TLSv1_1"),
            "listener.tls.min_version",
        ),
        (
            tls_config("    hsts_max_age: forever"),
            "listener.tls.hsts_max_age",
        ),
        (
            tls_config("") + "    resource: http://gw.example.com:8443/everything/mcp\n",
            "`services[0].resource`",
        ),
        (
            tls_config("").replace("    private_key_file: /etc/mcp-auth/tls/tls.key\n", ""),
            "listener.tls",
        ),
    ];
    for (yaml, field) in cases {
        let err = error_of(&yaml);
        assert!(err.contains(field), "expected {field} in: {err}\n{yaml}");
    }
}

#[test]
fn a_tls_config_survives_its_own_yaml() {
    let config =
        GatewayConfig::from_yaml(&tls_config("    http_redirect_address: 0.0.0.0:8080")).unwrap();
    let again = GatewayConfig::from_yaml(&config.to_yaml().unwrap()).unwrap();
    assert_eq!(config, again);
}

#[test]
fn certificate_files_are_checked_before_envoy_starts() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("tls.crt");
    let key = dir.path().join("tls.key");
    let config_for = |cert: &Path, key: &Path| {
        GatewayConfig::from_yaml(
            &tls_config("")
                .replace("/etc/mcp-auth/tls/tls.crt", &cert.display().to_string())
                .replace("/etc/mcp-auth/tls/tls.key", &key.display().to_string()),
        )
        .unwrap()
    };
    let config = config_for(&cert, &key);
    let err = config.check_listener_files().unwrap_err().to_string();
    assert!(
        err.contains("`listener.tls.certificate_chain_file`") && err.contains("cannot read"),
        "{err}"
    );
    std::fs::write(
        &cert,
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    std::fs::write(&key, "not a key").unwrap();
    let err = config.check_listener_files().unwrap_err().to_string();
    assert!(
        err.contains("`listener.tls.private_key_file`") && err.contains("not a PEM private key"),
        "{err}"
    );
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    config.check_listener_files().unwrap();
    // Checked as given: a key where the chain should be is refused.
    let err = config_for(&key, &key)
        .check_listener_files()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`listener.tls.certificate_chain_file`")
            && err.contains("not a PEM certificate chain"),
        "{err}"
    );
    // Without TLS there is nothing to check.
    GatewayConfig::from_yaml(
        "issuer: http://127.0.0.1:8080\nservices:\n  - name: everything\n    upstream: { url: \"http://127.0.0.1:3001/mcp\" }\n",
    )
    .unwrap()
    .check_listener_files()
    .unwrap();
}

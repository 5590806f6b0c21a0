use super::*;
use crate::envoy::{RenderOptions, render};
use crate::filter_config::filter_config;

mod tls;

const MINIMAL: &str = r#"
issuer: http://127.0.0.1:8080
services:
  - name: everything
    upstream: { url: "http://127.0.0.1:3001/mcp" }
"#;

fn error_of(yaml: &str) -> String {
    GatewayConfig::from_yaml(yaml).unwrap_err().to_string()
}

fn with_service(fields: &str) -> String {
    format!(
        "issuer: http://127.0.0.1:8080\nservices:\n  - name: everything\n    upstream: {{ url: \"http://127.0.0.1:3001/mcp\" }}\n{fields}"
    )
}

#[test]
fn example_config_is_valid() {
    let config =
        GatewayConfig::from_yaml(include_str!("../../envoy/gateway.example.yaml")).unwrap();
    assert_eq!(config.issuer_str(), "http://127.0.0.1:8080");
    let names: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "everything",
            "echo-stateful",
            "echo-stateless",
            "fetchs",
            "memory",
            "filesystem",
            "sequential-thinking",
            "time",
            "fetch",
            "tmux"
        ],
        "the catalogue, in config order (playwright is off by default)"
    );
    assert!(
        include_str!("../../envoy/gateway.example.yaml")
            .contains("- name: playwright\n    enabled: false\n"),
        "playwright is in the example, switched off"
    );
}

#[test]
fn defaults_are_resolved_from_the_issuer() {
    let config = GatewayConfig::from_yaml(MINIMAL).unwrap();
    let service = &config.services[0];
    assert_eq!(service.path, "/everything/mcp");
    assert_eq!(service.resource, "http://127.0.0.1:8080/everything/mcp");
    assert_eq!(
        service.resource_metadata_url(),
        "http://127.0.0.1:8080/.well-known/oauth-protected-resource/everything/mcp"
    );
    assert_eq!(
        service
            .required_scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>(),
        ["mcp"]
    );
    assert_eq!(config.authserver_endpoint().authority(), "127.0.0.1:8081");
}

#[test]
fn host_routed_service_gets_its_own_resource() {
    let config = GatewayConfig::from_yaml(
        &with_service("    host: time.mcp.example.com\n    path: /mcp\n")
            .replace("http://127.0.0.1:8080", "https://gw.example.com"),
    )
    .unwrap();
    assert_eq!(
        config.services[0].resource,
        "https://time.mcp.example.com/mcp"
    );
}

#[test]
fn unknown_field_is_refused_by_name() {
    let err = error_of(&with_service("    scopez: [mcp]\n"));
    assert!(
        err.contains("services[0]") && err.contains("scopez"),
        "{err}"
    );
}

#[test]
fn bad_values_name_their_field() {
    let cases = [
        (MINIMAL.replace("http://127.0.0.1:8080", "http://gw.example.com"), "`issuer`"),
        (MINIMAL.replace("http://127.0.0.1:8080", "https://gw.example.com/auth/"), "`issuer`"),
        (with_service("    path: /token\n"), "services[0].path"),
        (with_service("    path: /everything/mcp/\n"), "services[0].path"),
        (with_service("    path: /.well-known/x\n"), "services[0].path"),
        (with_service("    scopes: [offline_access]\n"), "services[0].scopes"),
        (with_service("    scopes: [mcp:tools]\n    required_scopes: [mcp]\n"), "services[0].required_scopes[0]"),
        (with_service("    scope_descriptions: { admin: \"x\" }\n"), "services[0].scope_descriptions.admin"),
        (with_service("    scope_descriptions: { mcp: \"\" }\n"), "services[0].scope_descriptions.mcp"),
        (with_service("    allowed_origins: [\"https://app.example.com/\"]\n"), "services[0].allowed_origins[0]"),
        (with_service("    resource: https://a.example.com/mcp#x\n"), "services[0].resource"),
        (with_service("    access: { teams: [justateam] }\n"), "services[0].access.teams[0]"),
        (MINIMAL.replace("upstream: { url: \"http://127.0.0.1:3001/mcp\" }", "upstream: { url: \"http://10.0.0.1:3001/mcp\", transport: stdio, run: { command: x } }"), "services[0].upstream.url"),
        (MINIMAL.replace("upstream: { url: \"http://127.0.0.1:3001/mcp\" }", "upstream: { url: \"http://127.0.0.1:3001/mcp\", transport: stdio }"), "services[0].upstream.run"),
        (MINIMAL.replace("- name: everything", "- name: Every_Thing"), "services[0].name"),
        (format!("{MINIMAL}admin: {{ address: \"0.0.0.0:9901\" }}\n"), "admin.address"),
        (format!("{MINIMAL}filter: {{ clock_leeway: 61s }}\n"), "filter.clock_leeway"),
        (format!("{MINIMAL}tokens: {{ authorization_code: 11m }}\n"), "tokens.authorization_code"),
        (format!("{MINIMAL}tokens: {{ refresh_reuse_grace: 61s }}\n"), "tokens.refresh_reuse_grace"),
        (format!("{MINIMAL}listener: {{ xff_num_trusted_hops: 11 }}\n"), "listener.xff_num_trusted_hops"),
        (format!("{MINIMAL}authserver: {{ url: \"http://10.0.0.5:8081\" }}\n"), "authserver.url"),
        (format!("{MINIMAL}ext_authz: {{ url: \"http://ext-authz:9191\" }}\n"), "ext_authz.url"),
        (format!("{MINIMAL}listener: {{ max_connections: 0 }}\n"), "listener.max_connections"),
        (format!("{MINIMAL}ext_authz: {{ listen: \"127.0.0.1:9191\", metrics_listen: \"127.0.0.1:9191\" }}\n"), "ext_authz.metrics_listen"),
        (format!("{MINIMAL}listener: {{ max_heap_bytes: 1000 }}\n"), "listener.max_heap_bytes"),
        (format!("{MINIMAL}authserver: {{ trusted_proxies: [\"10.0.0.0/33\"] }}\n"), "authserver.trusted_proxies"),
        (format!("{MINIMAL}redis: {{ url: \"http://x\" }}\n"), "redis.url"),
        (format!("{MINIMAL}redis: {{ url: \"redis://r:6379\", tls_ca_file: ca.pem }}\n"), "redis.tls_ca_file"),
        (format!("{MINIMAL}redis: {{ url: \"rediss://r:6380\", tls_cert_file: c.pem }}\n"), "redis.tls_key_file"),
        (format!("{MINIMAL}  - name: everything\n    upstream: {{ url: \"http://127.0.0.1:3002/mcp\" }}\n"), "services[1].name"),
        ("issuer: http://127.0.0.1:8080\nservices: []\n".to_owned(), "`services`"),
    ];
    for (yaml, field) in cases {
        let err = error_of(&yaml);
        assert!(
            err.contains(field),
            "expected {field} in: {err}\n--- yaml ---\n{yaml}"
        );
    }
}

#[test]
fn duplicate_path_on_one_host_is_refused() {
    let yaml = format!(
        "{MINIMAL}  - name: other\n    path: /everything/mcp\n    upstream: {{ url: \"http://127.0.0.1:3002/mcp\" }}\n"
    );
    assert!(error_of(&yaml).contains("services[1].path"));
}

#[test]
fn yaml_round_trip_keeps_the_config() {
    let config =
        GatewayConfig::from_yaml(include_str!("../../envoy/gateway.example.yaml")).unwrap();
    let again = GatewayConfig::from_yaml(&config.to_yaml().unwrap()).unwrap();
    assert_eq!(config, again);
}

#[test]
fn filter_config_comes_from_the_same_service_entry() {
    let config = GatewayConfig::from_yaml(MINIMAL).unwrap();
    let filter = filter_config(&config);
    assert_eq!(filter.issuer, "http://127.0.0.1:8080");
    assert_eq!(filter.jwks.path, "/jwks");
    assert_eq!(filter.routes[0].route, "everything");
    assert_eq!(filter.routes[0].resource, config.services[0].resource);
    assert_eq!(
        filter.routes[0].resource_metadata,
        config.services[0].resource_metadata_url()
    );
}

#[test]
fn rendered_bootstrap_is_yaml_with_every_route_and_cluster() {
    let config = GatewayConfig::from_yaml(
        &MINIMAL.replace("services:", "ext_authz: { mode: per_request }\nservices:"),
    )
    .unwrap();
    let yaml = render(
        &config,
        &RenderOptions {
            wasm_path: "/x/filter.wasm".into(),
            access_log: true,
            tls_sds_path: None,
        },
    )
    .unwrap();
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml).unwrap();
    let text = serde_json::to_string(&doc).unwrap();
    for needle in [
        "\"path_separated_prefix\":\"/everything/mcp\"",
        "\"prefix_rewrite\":\"/mcp\"",
        "\"cluster_name\":\"mcp_ext_authz\"",
        "\"failure_mode_allow\":false",
        "\"path\":\"/token\"",
        "\"path_separated_prefix\":\"/.well-known/oauth-protected-resource\"",
        "\"filename\":\"/x/filter.wasm\"",
    ] {
        assert!(text.contains(needle), "missing {needle}");
    }
    // The filter config travels as a JSON string that the filter parses back.
    let filters = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]
        .as_sequence()
        .unwrap();
    let wasm = filters
        .iter()
        .find(|f| f["name"].as_str() == Some(crate::envoy::WASM_FILTER_NAME))
        .unwrap();
    let value = wasm["typed_config"]["config"]["configuration"]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let parsed: mcp_auth_proto::filter_config::FilterConfig = serde_json::from_str(&value).unwrap();
    assert_eq!(parsed, filter_config(&config));
}

#[test]
fn fast_mode_leaves_envoys_ext_authz_filter_out_and_tells_the_token_filter_where_to_ask() {
    let per_request = GatewayConfig::from_yaml(
        &MINIMAL.replace("services:", "ext_authz: { mode: per_request }\nservices:"),
    )
    .unwrap();
    assert_eq!(filter_config(&per_request).decisions, None);
    // Fast mode is the default.
    let default = GatewayConfig::from_yaml(MINIMAL).unwrap();
    assert_eq!(default.ext_authz.mode, crate::config::ExtAuthzMode::Fast);
    let fast = GatewayConfig::from_yaml(&MINIMAL.replace(
        "services:",
        "ext_authz: { mode: fast, stream_loss_grace: 2s, timeout: 300ms }\nservices:",
    ))
    .unwrap();
    let decisions = filter_config(&fast).decisions.unwrap();
    assert_eq!(decisions.cluster, crate::envoy::EXT_AUTHZ_CLUSTER);
    assert_eq!(decisions.timeout_ms, 300);
    assert_eq!(decisions.stream_loss_grace_ms, 2_000);
    let options = RenderOptions {
        wasm_path: "/x/filter.wasm".into(),
        access_log: false,
        tls_sds_path: None,
    };
    let names = |config: &GatewayConfig| -> Vec<String> {
        let doc: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&render(config, &options).unwrap()).unwrap();
        doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
            ["http_filters"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(names(&per_request).contains(&crate::envoy::EXT_AUTHZ_FILTER_NAME.to_owned()));
    let fast_names = names(&fast);
    assert!(!fast_names.contains(&crate::envoy::EXT_AUTHZ_FILTER_NAME.to_owned()));
    assert!(fast_names.contains(&crate::envoy::WASM_FILTER_NAME.to_owned()));
    // The ext_authz cluster stays: the token filter calls it.
    assert!(
        render(&fast, &options)
            .unwrap()
            .contains(crate::envoy::EXT_AUTHZ_CLUSTER)
    );
}

#[test]
fn a_stream_loss_grace_over_a_minute_is_refused() {
    let err = GatewayConfig::from_yaml(&MINIMAL.replace(
        "services:",
        "ext_authz: { stream_loss_grace: 61s }\nservices:",
    ))
    .unwrap_err();
    assert!(
        err.to_string().contains("ext_authz.stream_loss_grace"),
        "{err}"
    );
}

#[test]
fn environment_overrides_the_global_allow_list_and_redis() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.yaml");
    std::fs::write(&path, MINIMAL).unwrap();
    let env: std::collections::HashMap<String, String> = [
        ("ALLOWED_GITHUB_USERS".to_owned(), "alice, bob".to_owned()),
        ("ALLOWED_GITHUB_TEAMS".to_owned(), "acme/mcp".to_owned()),
        (
            "REDIS_URL".to_owned(),
            "redis://127.0.0.1:7000/2".to_owned(),
        ),
    ]
    .into();
    let config = GatewayConfig::load_with_env(&path, &env).unwrap();
    assert_eq!(config.access.users, ["alice", "bob"]);
    assert_eq!(config.access.teams, ["acme/mcp"]);
    assert_eq!(config.redis.url, "redis://127.0.0.1:7000/2");

    // One variable replaces the whole allow-list: the file's other lists do not widen it.
    let open_file = dir.path().join("open.yaml");
    std::fs::write(
        &open_file,
        format!("{MINIMAL}\naccess:\n  users: [\"*\"]\n  orgs: [acme]\n"),
    )
    .unwrap();
    let groups_only: std::collections::HashMap<String, String> =
        [("ALLOWED_GROUPS".to_owned(), "admins".to_owned())].into();
    let config = GatewayConfig::load_with_env(&open_file, &groups_only).unwrap();
    assert_eq!(config.access.groups, ["admins"]);
    assert!(config.access.users.is_empty(), "{:?}", config.access.users);
    assert!(config.access.orgs.is_empty(), "{:?}", config.access.orgs);
    // Without any of them, the file's list stands.
    let none = std::collections::HashMap::<String, String>::new();
    let config = GatewayConfig::load_with_env(&open_file, &none).unwrap();
    assert_eq!(config.access.users, ["*"]);

    let bad: std::collections::HashMap<String, String> =
        [("ALLOWED_GITHUB_TEAMS".to_owned(), "acme".to_owned())].into();
    let err = GatewayConfig::load_with_env(&path, &bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("access.teams[0]"), "{err}");
}

#[test]
fn allowed_origins_become_a_cors_policy_on_the_service_route() {
    let config = GatewayConfig::from_yaml(&with_service(
        "    allowed_origins: [\"https://app.example.com\"]\n",
    ))
    .unwrap();
    let yaml = render(
        &config,
        &RenderOptions {
            wasm_path: "/x/filter.wasm".into(),
            access_log: false,
            tls_sds_path: None,
        },
    )
    .unwrap();
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml).unwrap();
    let routes = &doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["route_config"]["virtual_hosts"][0]["routes"];
    let cors = &routes[0]["typed_per_filter_config"]["envoy.filters.http.cors"];
    assert_eq!(
        cors["allow_origin_string_match"][0]["exact"].as_str(),
        Some("https://app.example.com")
    );
    assert!(
        cors["expose_headers"]
            .as_str()
            .unwrap()
            .contains("www-authenticate")
    );
}

#[test]
fn an_issuer_path_prefixes_the_authserver_endpoints_but_not_the_well_known_documents() {
    let config = GatewayConfig::from_yaml(&MINIMAL.replace(
        "issuer: http://127.0.0.1:8080",
        "issuer: http://127.0.0.1:8080/auth",
    ))
    .unwrap();
    let yaml = render(
        &config,
        &RenderOptions {
            wasm_path: "/x/filter.wasm".into(),
            access_log: false,
            tls_sds_path: None,
        },
    )
    .unwrap();
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml).unwrap();
    let text = serde_json::to_string(&doc).unwrap();
    for needle in [
        r#""name":"authserver:/auth/token","match":{"path":"/auth/token"}"#,
        r#""prefix_rewrite":"/token""#,
        r#""path":"/auth/.well-known/openid-configuration""#,
        r#""path_separated_prefix":"/auth/login""#,
        r#""path_separated_prefix":"/.well-known/oauth-authorization-server""#,
        r#""path_separated_prefix":"/.well-known/oauth-protected-resource""#,
    ] {
        assert!(text.contains(needle), "{needle} missing from {text}");
    }
    assert!(!text.contains(r#""path":"/token""#));
}

#[test]
fn a_stdio_service_runs_under_the_wrapper_and_an_http_one_as_written() {
    let config = GatewayConfig::from_yaml(
        r#"
issuer: http://127.0.0.1:8080
services:
  - name: fetch
    upstream:
      url: http://127.0.0.1:3105/mcp
      transport: stdio
      run: { command: mcp-server-fetch, args: [--ignore-robots-txt], env: { A: "1" } }
  - name: echo
    upstream:
      url: http://127.0.0.1:3002/mcp
      run: { command: mcp-echo, args: [--port, "3002"] }
  - name: remote
    upstream: { url: "https://mcp.example.com/mcp" }
"#,
    )
    .unwrap();
    let specs: Vec<_> = config
        .services
        .iter()
        .map(crate::wrap::process_spec)
        .collect();
    let fetch = specs[0].as_ref().unwrap();
    assert_eq!(fetch.program, "mcp-streamablehttp-proxy");
    assert_eq!(
        fetch.args,
        [
            "--host",
            "127.0.0.1",
            "--port",
            "3105",
            "--log-level",
            "warning",
            "--",
            "mcp-server-fetch",
            "--ignore-robots-txt"
        ]
    );
    assert_eq!(fetch.env["A"], "1");
    let echo = specs[1].as_ref().unwrap();
    assert_eq!(echo.program, "mcp-echo");
    assert_eq!(echo.args, ["--port", "3002"]);
    assert!(specs[2].is_none());
}

#[test]
fn a_stdio_service_must_be_wrapped_on_loopback_at_mcp() {
    for url in ["http://10.0.0.1:3105/mcp", "http://127.0.0.1:3105/other"] {
        let yaml = format!(
            "issuer: http://127.0.0.1:8080\nservices:\n  - name: t\n    upstream:\n      url: {url}\n      transport: stdio\n      run: {{ command: x }}\n"
        );
        let err = GatewayConfig::from_yaml(&yaml).unwrap_err().to_string();
        assert!(err.contains("services[0].upstream.url"), "{err}");
    }
}

#[test]
fn plain_http_off_loopback_is_allowed_only_inside_a_mesh() {
    for extra in [
        "authserver: { url: \"https://auth.internal:8443\" }\n",
        "authserver: { url: \"http://127.0.0.1:8081\" }\n",
        "authserver: { url: \"http://authserver:8081\" }\nmesh_mtls: true\n",
        "ext_authz: { url: \"http://ext-authz:9191\" }\nmesh_mtls: true\n",
    ] {
        let yaml = format!("{MINIMAL}{extra}");
        assert!(GatewayConfig::from_yaml(&yaml).is_ok(), "{extra}");
    }
}

#[test]
fn a_policy_rule_may_name_a_switched_off_service_but_not_an_unknown_one() {
    let policy = "mcp_policy:\n  rules:\n    - { services: [tmux], methods: [tools/call], allow: { teams: [acme/admins] } }\n";
    let off = format!(
        "{MINIMAL}  - name: tmux\n    enabled: false\n    upstream: {{ url: \"http://127.0.0.1:3106/mcp\" }}\n{policy}"
    );
    let config = GatewayConfig::from_yaml(&off).unwrap();
    assert!(config.service("tmux").is_none());
    let err = error_of(&format!("{MINIMAL}{policy}"));
    assert!(
        err.contains("mcp_policy.rules[0].services[0]") && err.contains("\"tmux\""),
        "{err}"
    );
}

use super::*;

const VALID: &str = r#"{
    "issuer": "https://auth.example.com",
    "jwks": {"cluster": "authserver", "authority": "auth.example.com", "path": "/jwks", "refresh_secs": 300},
    "routes": [{
        "route": "everything",
        "resource": "https://mcp.example.com/everything/mcp",
        "resource_metadata": "https://mcp.example.com/.well-known/oauth-protected-resource/everything/mcp",
        "required_scopes": ["mcp:tools", "mcp:resources"],
        "allowed_origins": ["https://app.example.com"]
    }]
}"#;

fn with(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut value: serde_json::Value = serde_json::from_str(VALID).unwrap();
    edit(&mut value);
    serde_json::to_vec(&value).unwrap()
}

#[test]
fn parses_a_valid_config_with_defaults() {
    let config = Config::parse(VALID.as_bytes()).unwrap();
    assert_eq!(config.issuer, "https://auth.example.com");
    assert_eq!(config.clock_leeway_secs, 30);
    assert_eq!(config.jwks.timeout_ms, 5_000);
    let route = config.route("everything").unwrap();
    assert_eq!(route.scope_param, "mcp:tools mcp:resources");
    assert!(config.route("authserver").is_none());
}

#[test]
fn unknown_fields_are_rejected_naming_the_field() {
    let err =
        Config::parse(&with(|v| v["routes"][0]["required_scope"] = "mcp".into())).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("routes[0]"), "{text}");
    assert!(text.contains("unknown field `required_scope`"), "{text}");

    let err = Config::parse(&with(|v| v["leeway"] = 5.into())).unwrap_err();
    assert!(err.to_string().contains("unknown field `leeway`"), "{err}");

    let err = Config::parse(&with(|v| v["jwks"]["refresh"] = 5.into())).unwrap_err();
    assert!(err.to_string().contains("jwks"), "{err}");
    assert!(err.to_string().contains("`refresh`"), "{err}");
}

#[test]
fn type_errors_name_the_field() {
    let err = Config::parse(&with(|v| v["jwks"]["refresh_secs"] = "soon".into())).unwrap_err();
    assert!(
        matches!(&err, ConfigError::Json { path, .. } if path == "jwks.refresh_secs"),
        "{err}"
    );
    let err = Config::parse(&with(|v| {
        v["routes"][0]["required_scopes"][1] = "a b".into()
    }))
    .unwrap_err();
    assert!(
        matches!(&err, ConfigError::Json { path, .. } if path == "routes[0].required_scopes[1]"),
        "{err}"
    );
}

#[test]
fn leeway_is_bounded() {
    assert!(Config::parse(&with(|v| v["clock_leeway_secs"] = 60.into())).is_ok());
    let err = Config::parse(&with(|v| v["clock_leeway_secs"] = 61.into())).unwrap_err();
    assert!(matches!(&err, ConfigError::Invalid { field, .. } if field == "clock_leeway_secs"));
}

#[test]
fn semantic_errors_name_the_field() {
    type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;
    let cases: [(&str, Edit); 6] = [
        ("issuer", Box::new(|v| v["issuer"] = "".into())),
        ("jwks.path", Box::new(|v| v["jwks"]["path"] = "jwks".into())),
        (
            "jwks.refresh_secs",
            Box::new(|v| v["jwks"]["refresh_secs"] = 0.into()),
        ),
        ("routes", Box::new(|v| v["routes"] = serde_json::json!([]))),
        (
            "routes[0].resource_metadata",
            Box::new(|v| {
                v["routes"][0]["resource_metadata"] = "https://x/\r\nset-cookie: a".into()
            }),
        ),
        (
            "routes[1].route",
            Box::new(|v| {
                let first = v["routes"][0].clone();
                v["routes"].as_array_mut().unwrap().push(first);
            }),
        ),
    ];
    for (expected, edit) in cases {
        let err = Config::parse(&with(edit)).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Invalid { field, .. } if field == expected),
            "{expected}: {err}"
        );
    }
}

#[test]
fn empty_or_trailing_garbage_is_rejected() {
    assert!(matches!(Config::parse(b"  "), Err(ConfigError::Empty)));
    assert!(Config::parse(format!("{VALID} x").as_bytes()).is_err());
}

#[test]
fn origin_absent_or_listed() {
    let config = Config::parse(VALID.as_bytes()).unwrap();
    let route = config.route("everything").unwrap();
    assert!(route.allows_origin(None));
    assert!(route.allows_origin(Some("https://app.example.com")));
    assert!(!route.allows_origin(Some("https://evil.example.com")));
    assert!(!route.allows_origin(Some("null")));
}

#[test]
fn fast_mode_names_its_cluster_as_an_encoded_grpc_service() {
    let config = Config::parse(VALID.as_bytes()).unwrap();
    assert!(config.decisions.is_none());
    let config = Config::parse(&with(|v| {
        v["decisions"] = serde_json::json!({
            "cluster": "mcp_ext_authz", "timeout_ms": 250, "stream_loss_grace_ms": 3000
        });
    }))
    .unwrap();
    let decisions = config.decisions.unwrap();
    assert_eq!(
        decisions.upstream.as_bytes(),
        EnvoyGrpcService::encode_for_cluster("mcp_ext_authz")
    );
    assert_eq!(decisions.timeout_ms, 250);
    assert_eq!(decisions.stream_loss_grace_ms, 3_000);

    for (field, value) in [("cluster", serde_json::json!("")), ("timeout_ms", 0.into())] {
        let err = Config::parse(&with(|v| {
            v["decisions"] = serde_json::json!({
                "cluster": "c", "timeout_ms": 250, "stream_loss_grace_ms": 3000
            });
            v["decisions"][field] = value;
        }))
        .unwrap_err();
        assert!(
            err.to_string().contains(&format!("decisions.{field}")),
            "{err}"
        );
    }
}

use super::*;

fn metadata(json: serde_json::Value) -> ClientMetadata {
    serde_json::from_value(json).unwrap()
}

#[test]
fn defaults_follow_rfc7591() {
    let v = validate(
        metadata(serde_json::json!({"redirect_uris": ["https://app.example.com/cb"]})),
        MetadataSource::Registration,
    )
    .unwrap();
    assert_eq!(v.auth_method, AuthMethod::ClientSecretBasic);
    assert_eq!(v.metadata.grant_types.unwrap(), ["authorization_code"]);
    assert_eq!(v.metadata.response_types.unwrap(), ["code"]);
    assert_eq!(v.metadata.application_type.as_deref(), Some("web"));
}

#[test]
fn a_typical_mcp_client_registers() {
    let v = validate(
        metadata(serde_json::json!({
            "redirect_uris": ["http://localhost:3030/callback"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "client_name": "MCP Inspector",
            "scope": "mcp"
        })),
        MetadataSource::Registration,
    )
    .unwrap();
    assert_eq!(v.auth_method, AuthMethod::None);
    assert_eq!(v.metadata.application_type.as_deref(), Some("native"));
    let client = Client::from_metadata("c".into(), ClientKind::Registered, v, None);
    assert!(client.may_refresh);
    assert_eq!(client.display_name(), "MCP Inspector");
}

#[test]
fn bad_metadata_names_the_problem() {
    let cases = [
        (serde_json::json!({}), "redirect_uris"),
        (
            serde_json::json!({"redirect_uris": ["http://evil.example.com/cb"]}),
            "loopback",
        ),
        (
            serde_json::json!({"redirect_uris": ["https://a/cb"], "grant_types": ["client_credentials"]}),
            "client_credentials",
        ),
        (
            serde_json::json!({"redirect_uris": ["https://a/cb"], "grant_types": ["refresh_token"]}),
            "authorization_code",
        ),
        (
            serde_json::json!({"redirect_uris": ["https://a/cb"], "response_types": ["token"]}),
            "response_types",
        ),
        (
            serde_json::json!({"redirect_uris": ["https://a/cb"], "token_endpoint_auth_method": "private_key_jwt"}),
            "private_key_jwt",
        ),
        (
            serde_json::json!({"redirect_uris": ["https://a/cb"], "application_type": "service"}),
            "application_type",
        ),
        (
            serde_json::json!({"redirect_uris": ["https://a/cb"], "client_name": "x".repeat(201)}),
            "client_name",
        ),
        (
            serde_json::json!({"redirect_uris": ["https://a/cb"], "client_uri": "javascript:x"}),
            "client_uri",
        ),
        (
            // A right-to-left override would turn the consent sentence after the name around.
            serde_json::json!({"redirect_uris": ["https://a/cb"], "client_name": "Safe\u{202E}ppa live"}),
            "U+202E",
        ),
        (
            serde_json::json!({"redirect_uris": ["https://a/cb"], "client_name": "Claude\u{2066}x"}),
            "U+2066",
        ),
        (
            serde_json::json!({"redirect_uris": ["https://a/cb"], "client_name": "a\u{200B}b"}),
            "U+200B",
        ),
        (
            serde_json::json!({"redirect_uris": ["https://a/cb"], "software_id": "x\u{200F}"}),
            "U+200F",
        ),
        (
            serde_json::json!({"redirect_uris": ["https://a/cb"], "scope": "a\"b"}),
            "scope",
        ),
    ];
    for (json, needle) in cases {
        let err = validate(metadata(json.clone()), MetadataSource::Registration).unwrap_err();
        assert!(err.to_string().contains(needle), "{json}: {err}");
    }
}

#[test]
fn metadata_documents_are_public_clients() {
    let v = validate(
        metadata(serde_json::json!({"redirect_uris": ["https://a/cb"]})),
        MetadataSource::MetadataDocument,
    )
    .unwrap();
    assert_eq!(v.auth_method, AuthMethod::None);
    assert!(validate(
        metadata(serde_json::json!({"redirect_uris": ["https://a/cb"], "token_endpoint_auth_method": "client_secret_post"})),
        MetadataSource::MetadataDocument,
    )
    .is_err());
}

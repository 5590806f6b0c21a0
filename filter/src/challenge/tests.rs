use super::*;
use crate::config::Config;

const METADATA: &str =
    "https://mcp.example.com/.well-known/oauth-protected-resource/everything/mcp";

fn config(scopes: &str, metadata: &str) -> Config {
    Config::parse(
        format!(
            r#"{{
            "issuer": "https://auth.example.com",
            "jwks": {{"cluster": "authserver", "authority": "auth", "path": "/jwks", "refresh_secs": 300}},
            "routes": [{{
                "route": "everything",
                "resource": "https://mcp.example.com/everything/mcp",
                "resource_metadata": {metadata},
                "required_scopes": {scopes}
            }}]
        }}"#
        )
        .as_bytes(),
    )
    .unwrap()
}

fn with_route<T>(scopes: &str, f: impl FnOnce(&Route) -> T) -> T {
    let config = config(scopes, &format!("{METADATA:?}"));
    f(config.route("everything").unwrap())
}

fn json(denial: &Denial) -> serde_json::Value {
    serde_json::from_str(&denial.body).unwrap()
}

#[test]
fn missing_token_challenge_has_no_error_attribute() {
    let denial = with_route(r#"["mcp:tools", "mcp:resources"]"#, missing_token);
    assert_eq!(denial.status, 401);
    assert_eq!(
        denial.www_authenticate.as_deref(),
        Some(
            r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/everything/mcp", scope="mcp:tools mcp:resources""#
        )
    );
    assert_eq!(json(&denial)["error"], "invalid_request");
    assert_eq!(
        denial.headers(),
        vec![
            ("content-type", "application/json"),
            ("cache-control", "no-store"),
            (
                "www-authenticate",
                denial.www_authenticate.as_deref().unwrap()
            ),
        ]
    );
}

#[test]
fn no_required_scopes_means_no_scope_attribute() {
    let denial = with_route("[]", missing_token);
    assert_eq!(
        denial.www_authenticate.as_deref(),
        Some(&*format!(r#"Bearer resource_metadata="{METADATA}""#))
    );
}

#[test]
fn invalid_token_challenge() {
    let denial = with_route(r#"["mcp:tools"]"#, |route| {
        invalid_token(route, "The access token expired")
    });
    assert_eq!(denial.status, 401);
    assert_eq!(
        denial.www_authenticate.as_deref(),
        Some(&*format!(
            r#"Bearer error="invalid_token", error_description="The access token expired", resource_metadata="{METADATA}", scope="mcp:tools""#
        ))
    );
    assert_eq!(
        json(&denial),
        serde_json::json!({"error": "invalid_token", "error_description": "The access token expired"})
    );
}

#[test]
fn insufficient_scope_challenge_lists_all_needed_scopes() {
    let denial = with_route(r#"["mcp:tools", "mcp:resources"]"#, |route| {
        insufficient_scope(route, "Missing scope mcp:resources")
    });
    assert_eq!(denial.status, 403);
    assert_eq!(
        denial.www_authenticate.as_deref(),
        Some(&*format!(
            r#"Bearer error="insufficient_scope", scope="mcp:tools mcp:resources", resource_metadata="{METADATA}""#
        ))
    );
    assert_eq!(json(&denial)["error"], "insufficient_scope");
}

#[test]
fn invalid_request_is_a_400() {
    let denial = with_route(r#"["mcp"]"#, |route| {
        invalid_request(route, "Send exactly one Authorization header")
    });
    assert_eq!(denial.status, 400);
    assert!(
        denial
            .www_authenticate
            .as_deref()
            .unwrap()
            .starts_with(r#"Bearer error="invalid_request", error_description="Send exactly one Authorization header", "#)
    );
}

#[test]
fn quoted_values_are_escaped() {
    let config = config("[]", r#""https://h/a\"b\\c""#);
    let denial = invalid_token(config.route("everything").unwrap(), r#"say "hi" \ bye"#);
    assert_eq!(
        denial.www_authenticate.as_deref(),
        Some(
            r#"Bearer error="invalid_token", error_description="say ?hi? ? bye", resource_metadata="https://h/a\"b\\c""#
        )
    );
    assert_eq!(json(&denial)["error_description"], r#"say "hi" \ bye"#);
}

#[test]
fn plain_denials() {
    for (denial, status, code) in [
        (origin_not_allowed(), 403, "access_denied"),
        (no_policy(), 403, "access_denied"),
        (keys_unavailable(), 503, "temporarily_unavailable"),
        (not_configured(), 500, "server_error"),
    ] {
        assert_eq!(denial.status, status);
        assert_eq!(denial.www_authenticate, None);
        assert_eq!(json(&denial)["error"], code);
        assert!(denial.headers().contains(&("cache-control", "no-store")));
    }
    assert!(keys_unavailable().headers().contains(&("retry-after", "5")));
}

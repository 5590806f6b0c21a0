use std::collections::HashMap;

use mcp_auth_gateway::GatewayConfig;

use super::*;
use crate::oauth::client::{ClientKind, MetadataSource, validate as validate_metadata};

fn settings() -> Settings {
    let config = GatewayConfig::from_yaml(
        "issuer: http://127.0.0.1:8080\nservices:\n  - name: everything\n    upstream: { url: \"http://127.0.0.1:3001/mcp\" }\n",
    )
    .unwrap();
    Settings::from_config(&config, &HashMap::<String, String>::new()).unwrap()
}

fn make_client(redirects: &[&str]) -> Client {
    let metadata = serde_json::from_value(serde_json::json!({
        "redirect_uris": redirects,
        "token_endpoint_auth_method": "none"
    }))
    .unwrap();
    let valid = validate_metadata(metadata, MetadataSource::Registration).unwrap();
    Client::from_metadata("c".into(), ClientKind::Registered, valid, None)
}

const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn query(extra: &str) -> String {
    format!(
        "client_id=c&redirect_uri=http%3A%2F%2F127.0.0.1%3A5000%2Fcb&state=xyz&response_type=code\
         &code_challenge={CHALLENGE}&code_challenge_method=S256\
         &resource=http%3A%2F%2F127.0.0.1%3A8080%2Feverything%2Fmcp{extra}"
    )
}

fn run(query: &str) -> Result<AuthorizeRequest, AuthorizeError> {
    let params = Params::parse(query);
    let client = make_client(&["http://127.0.0.1/cb"]);
    let reply = client_reply(&params, &client)?;
    validate(&params, reply, &settings())
}

fn redirect_error(query: &str) -> &'static str {
    match run(query) {
        Err(AuthorizeError::Redirect { error, reply, .. }) => {
            assert_eq!(reply.state.as_deref(), Some("xyz"));
            error
        }
        other => panic!("expected a redirect error, got {other:?}"),
    }
}

#[test]
fn a_typical_request_is_valid() {
    let request = run(&query("&scope=mcp%20offline_access")).unwrap();
    assert_eq!(request.resource, "http://127.0.0.1:8080/everything/mcp");
    assert_eq!(request.scopes, ["mcp"]);
    assert_eq!(request.reply.redirect_uri, "http://127.0.0.1:5000/cb");
    assert!(request.reply.redirect_uri_explicit);
}

#[test]
fn bad_client_or_redirect_uri_is_a_page() {
    let params =
        Params::parse(&query("").replace("127.0.0.1%3A5000%2Fcb", "evil.example.com%2Fcb"));
    let client = make_client(&["http://127.0.0.1/cb"]);
    assert!(matches!(
        client_reply(&params, &client),
        Err(AuthorizeError::Page(_))
    ));
    let params = Params::parse("client_id=a&client_id=b");
    assert!(matches!(client_id(&params), Err(AuthorizeError::Page(_))));
    assert!(matches!(
        client_id(&Params::parse("")),
        Err(AuthorizeError::Page(_))
    ));
    // No redirect_uri with several registered: a page.
    let params = Params::parse("client_id=c");
    let two = make_client(&["http://127.0.0.1/a", "http://127.0.0.1/b"]);
    assert!(matches!(
        client_reply(&params, &two),
        Err(AuthorizeError::Page(_))
    ));
    // With one registered, it is implied.
    let one = make_client(&["http://127.0.0.1/a"]);
    let reply = client_reply(&params, &one).unwrap();
    assert_eq!(reply.redirect_uri, "http://127.0.0.1/a");
    assert!(!reply.redirect_uri_explicit);
}

#[test]
fn other_errors_go_back_to_the_client() {
    assert_eq!(
        redirect_error(&query("").replace("response_type=code", "response_type=token")),
        "unsupported_response_type"
    );
    assert_eq!(
        redirect_error(&query("").replace("&code_challenge_method=S256", "")),
        "invalid_request"
    );
    assert_eq!(
        redirect_error(
            &query("").replace("code_challenge_method=S256", "code_challenge_method=plain")
        ),
        "invalid_request"
    );
    assert_eq!(
        redirect_error(&query("").replace(CHALLENGE, "short")),
        "invalid_request"
    );
    assert_eq!(
        redirect_error(&query("&resource=http%3A%2F%2Fother")),
        "invalid_target"
    );
    assert_eq!(
        redirect_error(&query("").replace("everything", "nothing")),
        "invalid_target"
    );
    assert_eq!(redirect_error(&query("&scope=admin")), "invalid_scope");
    assert_eq!(
        redirect_error(&query("&scope=mcp&scope=mcp")),
        "invalid_request"
    );
    assert_eq!(
        redirect_error(&query("&prompt=none%20consent")),
        "invalid_request"
    );
    assert_eq!(
        redirect_error(&query("&response_mode=fragment")),
        "invalid_request"
    );
    let no_resource = query("").split("&resource=").next().unwrap().to_owned();
    assert_eq!(redirect_error(&no_resource), "invalid_target");
}

#[test]
fn prompt_values_are_read() {
    let request = run(&query("&prompt=consent%20login")).unwrap();
    assert!(request.prompt.consent && request.prompt.login && !request.prompt.none);
}

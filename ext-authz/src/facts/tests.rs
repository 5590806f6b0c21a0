use super::*;
use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue};
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::Request;
use mcp_auth_proto::headers::HANDOFF_HEADERS;

fn check(http: HttpRequest) -> CheckRequest {
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                http: Some(http),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

fn full_headers() -> Vec<(&'static str, &'static str)> {
    vec![
        (HANDOFF_SUBJECT, "42"),
        (HANDOFF_LOGIN, "alice"),
        (HANDOFF_CLIENT_ID, "c1"),
        (HANDOFF_GRANT_ID, "g1"),
        (HANDOFF_TOKEN_ID, "t1"),
        (HANDOFF_SCOPE, "mcp"),
        (HANDOFF_EXPIRES_AT, "1000"),
        (HANDOFF_ISSUED_AT, "400"),
        (HANDOFF_SERVICE, "svc"),
    ]
}

fn with_map(headers: &[(&str, &str)]) -> CheckRequest {
    check(HttpRequest {
        method: "POST".into(),
        path: "/svc/mcp".into(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    })
}

#[test]
fn reads_every_handoff_header() {
    let req = with_map(&full_headers());
    let facts = RequestFacts::from_check(&req).unwrap();
    assert_eq!(facts.service, "svc");
    assert_eq!(
        facts.token,
        TokenFacts {
            subject: "42",
            login: "alice",
            client_id: "c1",
            grant_id: "g1",
            token_id: "t1",
            scope: "mcp",
            expires_at: 1000,
            issued_at: 400,
        }
    );
    assert_eq!(facts.request.method, "POST");
    assert_eq!(facts.request.path, "/svc/mcp");
}

#[test]
fn login_and_scope_may_be_absent() {
    let headers: Vec<_> = full_headers()
        .into_iter()
        .filter(|(k, _)| *k != HANDOFF_LOGIN && *k != HANDOFF_SCOPE)
        .collect();
    let req = with_map(&headers);
    let facts = RequestFacts::from_check(&req).unwrap();
    assert_eq!((facts.token.login, facts.token.scope), ("", ""));
}

#[test]
fn every_required_header_is_required() {
    for required in HANDOFF_HEADERS
        .iter()
        .filter(|h| **h != HANDOFF_LOGIN && **h != HANDOFF_SCOPE)
    {
        let missing: Vec<_> = full_headers()
            .into_iter()
            .filter(|(k, _)| k != required)
            .collect();
        assert_eq!(
            RequestFacts::from_check(&with_map(&missing)).unwrap_err(),
            FactsError::Missing(required)
        );
        let empty: Vec<_> = full_headers()
            .into_iter()
            .map(|(k, v)| (k, if k == *required { "" } else { v }))
            .collect();
        assert_eq!(
            RequestFacts::from_check(&with_map(&empty)).unwrap_err(),
            FactsError::Missing(required)
        );
    }
}

#[test]
fn malformed_expiry_is_refused() {
    let headers: Vec<_> = full_headers()
        .into_iter()
        .map(|(k, v)| (k, if k == HANDOFF_EXPIRES_AT { "soon" } else { v }))
        .collect();
    assert_eq!(
        RequestFacts::from_check(&with_map(&headers)).unwrap_err(),
        FactsError::Malformed(HANDOFF_EXPIRES_AT)
    );
}

#[test]
fn no_http_attributes_is_refused() {
    assert_eq!(
        RequestFacts::from_check(&CheckRequest::default()).unwrap_err(),
        FactsError::NoHttpRequest
    );
}

fn raw(headers: &[(&str, &str)]) -> CheckRequest {
    check(HttpRequest {
        header_map: Some(HeaderMap {
            headers: headers
                .iter()
                .map(|(k, v)| HeaderValue {
                    key: k.to_string(),
                    value: String::new(),
                    raw_value: v.as_bytes().to_vec(),
                })
                .collect(),
        }),
        raw_body: b"{}".to_vec(),
        ..Default::default()
    })
}

#[test]
fn raw_header_map_is_read_and_repeats_are_refused() {
    let req = raw(&full_headers());
    let facts = RequestFacts::from_check(&req).unwrap();
    assert_eq!(facts.token.subject, "42");
    assert_eq!(facts.request.body, b"{}");

    let mut repeated = full_headers();
    repeated.push((HANDOFF_SUBJECT, "1"));
    assert_eq!(
        RequestFacts::from_check(&raw(&repeated)).unwrap_err(),
        FactsError::Repeated(HANDOFF_SUBJECT)
    );
}

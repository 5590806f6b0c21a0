use super::*;
use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue};
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::Request;

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

fn handoff() -> Handoff<'static> {
    Handoff {
        service: "svc".into(),
        subject: "42".into(),
        login: "alice".into(),
        client_id: "c1".into(),
        grant_id: "g1".into(),
        token_id: "t1".into(),
        scope: "mcp".into(),
        expires_at: 1000,
        issued_at: 400,
    }
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
fn reads_the_handoff_header() {
    let value = handoff().encode();
    let req = with_map(&[(HANDOFF_HEADER, &value)]);
    let facts = RequestFacts::from_check(&req).unwrap();
    assert_eq!(facts.service, "svc");
    assert_eq!(
        facts.token,
        TokenFacts {
            subject: "42".into(),
            login: "alice".into(),
            client_id: "c1".into(),
            grant_id: "g1".into(),
            token_id: "t1".into(),
            scope: "mcp".into(),
            expires_at: 1000,
            issued_at: 400,
        }
    );
    assert_eq!(facts.request.method, "POST");
    assert_eq!(facts.request.path, "/svc/mcp");
}

#[test]
fn a_missing_empty_or_bad_handoff_is_refused() {
    assert_eq!(
        RequestFacts::from_check(&with_map(&[])).unwrap_err(),
        FactsError::Missing(HANDOFF_HEADER)
    );
    assert_eq!(
        RequestFacts::from_check(&with_map(&[(HANDOFF_HEADER, "")])).unwrap_err(),
        FactsError::Missing(HANDOFF_HEADER)
    );
    let without_subject = handoff().encode().replace("sub=42;", "");
    assert_eq!(
        RequestFacts::from_check(&with_map(&[(HANDOFF_HEADER, &without_subject)])).unwrap_err(),
        FactsError::Handoff(HandoffError::Missing("sub"))
    );
    // Client-sent claim headers of an older scheme mean nothing.
    assert_eq!(
        RequestFacts::from_check(&with_map(&[("x-mcp-auth-sub", "42")])).unwrap_err(),
        FactsError::Missing(HANDOFF_HEADER)
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
    let value = handoff().encode();
    let req = raw(&[(HANDOFF_HEADER, &value)]);
    let facts = RequestFacts::from_check(&req).unwrap();
    assert_eq!(facts.token.subject, "42");
    assert_eq!(facts.request.body, b"{}");

    let repeated = raw(&[(HANDOFF_HEADER, &value), (HANDOFF_HEADER, &value)]);
    assert_eq!(
        RequestFacts::from_check(&repeated).unwrap_err(),
        FactsError::Repeated(HANDOFF_HEADER)
    );
}

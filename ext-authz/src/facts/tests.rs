use super::testing::{keys, signed};
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
    let value = signed(&handoff());
    let req = with_map(&[(HANDOFF_HEADER, &value)]);
    let facts = RequestFacts::from_check(&req, &keys()).unwrap();
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
        RequestFacts::from_check(&with_map(&[]), &keys()).unwrap_err(),
        FactsError::Missing(HANDOFF_HEADER)
    );
    assert_eq!(
        RequestFacts::from_check(&with_map(&[(HANDOFF_HEADER, "")]), &keys()).unwrap_err(),
        FactsError::Missing(HANDOFF_HEADER)
    );
    let without_subject = keys()
        .current
        .sign(&handoff().encode().replace("sub=42;", ""));
    assert_eq!(
        RequestFacts::from_check(&with_map(&[(HANDOFF_HEADER, &without_subject)]), &keys())
            .unwrap_err(),
        FactsError::Handoff(HandoffError::Missing("sub"))
    );
    // Client-sent claim headers of an older scheme mean nothing.
    assert_eq!(
        RequestFacts::from_check(&with_map(&[("x-mcp-auth-sub", "42")]), &keys()).unwrap_err(),
        FactsError::Missing(HANDOFF_HEADER)
    );
}

#[test]
fn a_handoff_not_signed_by_the_filter_is_refused() {
    let unsigned = handoff().encode();
    assert_eq!(
        RequestFacts::from_check(&with_map(&[(HANDOFF_HEADER, &unsigned)]), &keys()).unwrap_err(),
        FactsError::Handoff(HandoffError::Unsigned)
    );
    let foreign = mcp_auth_proto::handoff::HandoffKey::from_secret(
        mcp_auth_proto::handoff::HANDOFF_KEY_ENV,
        "a secret the filter of this gateway does not hold",
    )
    .unwrap()
    .sign(&unsigned);
    assert_eq!(
        RequestFacts::from_check(&with_map(&[(HANDOFF_HEADER, &foreign)]), &keys()).unwrap_err(),
        FactsError::Handoff(HandoffError::BadMac)
    );
    // A signed value with one claim changed.
    let tampered = signed(&handoff()).replace("sub=42", "sub=43");
    assert_eq!(
        RequestFacts::from_check(&with_map(&[(HANDOFF_HEADER, &tampered)]), &keys()).unwrap_err(),
        FactsError::Handoff(HandoffError::BadMac)
    );
}

#[test]
fn no_http_attributes_is_refused() {
    assert_eq!(
        RequestFacts::from_check(&CheckRequest::default(), &keys()).unwrap_err(),
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
    let value = signed(&handoff());
    let req = raw(&[(HANDOFF_HEADER, &value)]);
    let facts = RequestFacts::from_check(&req, &keys()).unwrap();
    assert_eq!(facts.token.subject, "42");
    assert_eq!(facts.request.body, b"{}");

    let repeated = raw(&[(HANDOFF_HEADER, &value), (HANDOFF_HEADER, &value)]);
    assert_eq!(
        RequestFacts::from_check(&repeated, &keys()).unwrap_err(),
        FactsError::Repeated(HANDOFF_HEADER)
    );
}

use std::time::Duration;

use super::*;
use crate::decision::InvalidationKeys;
use crate::facts::FactsError;
use crate::state::TargetKind;
use mcp_auth_gateway::config::IdentityClaim;
use mcp_auth_proto::handoff::HANDOFF_HEADER;

fn decision(verdict: Verdict) -> Decision {
    Decision {
        verdict,
        valid_for: Duration::from_secs(60),
        keys: Some(InvalidationKeys {
            token_id: "t".into(),
            grant_id: "g".into(),
            subject: "s".into(),
            client_id: "c".into(),
        }),
        config_generation: 2,
        audit: None,
    }
}

fn identity(login: &str, scopes: &str) -> Identity {
    Identity {
        user_id: "42".into(),
        login: login.into(),
        client_id: "c1".into(),
        scopes: scopes.into(),
        service_headers: Default::default(),
        visibility: None,
    }
}

fn ok(response: &CheckResponse) -> &OkHttpResponse {
    match &response.http_response {
        Some(HttpResponse::OkResponse(ok)) => ok,
        other => panic!("not OK: {other:?}"),
    }
}

fn denied_of(response: &CheckResponse) -> &DeniedHttpResponse {
    match &response.http_response {
        Some(HttpResponse::DeniedResponse(denied)) => denied,
        other => panic!("not denied: {other:?}"),
    }
}

fn header_value<'a>(headers: &'a [HeaderValueOption], key: &str) -> Option<&'a str> {
    headers
        .iter()
        .filter_map(|h| h.header.as_ref())
        .find(|h| h.key == key)
        .map(|h| h.value.as_str())
}

#[test]
fn allow_overwrites_identity_and_removes_token_and_handoff() {
    let response = check_response(
        &decision(Verdict::Allow(identity("alice", "mcp mcp:tools"))),
        &IdentityHeaders::default(),
        &["x-mcp-auth-sub", HANDOFF_HEADER],
    );
    assert_eq!(response.status.as_ref().unwrap().code, 0);
    let ok = ok(&response);
    for name in ["authorization", HANDOFF_HEADER, "x-mcp-auth-sub"] {
        assert!(ok.headers_to_remove.iter().any(|h| h == name), "{name}");
    }
    for (key, value) in [
        ("x-mcp-user-id", "42"),
        ("x-mcp-user-login", "alice"),
        ("x-mcp-client-id", "c1"),
        ("x-mcp-scopes", "mcp mcp:tools"),
    ] {
        assert_eq!(header_value(&ok.headers, key), Some(value));
    }
    for h in &ok.headers {
        assert_eq!(
            h.append_action,
            i32::from(HeaderAppendAction::OverwriteIfExistsOrAdd)
        );
    }
}

#[test]
fn empty_identity_values_remove_client_copies() {
    let names = IdentityHeaders {
        user_login: "x-login".into(),
        ..Default::default()
    };
    let response = check_response(&decision(Verdict::Allow(identity("", ""))), &names, &[]);
    let ok = ok(&response);
    assert_eq!(header_value(&ok.headers, "x-login"), None);
    assert!(ok.headers_to_remove.iter().any(|h| h == "x-login"));
    assert!(ok.headers_to_remove.iter().any(|h| h == "x-mcp-scopes"));
    assert_eq!(header_value(&ok.headers, "x-mcp-user-id"), Some("42"));
}

#[test]
fn revoked_is_401_invalid_token_with_metadata() {
    let response = check_response(
        &decision(Verdict::Unauthenticated {
            reason: Unauthenticated::Revoked(TargetKind::Grant),
            resource_metadata: Some("http://gw/.well-known/oauth-protected-resource/a".into()),
        }),
        &IdentityHeaders::default(),
        &[],
    );
    assert_eq!(
        response.status.as_ref().unwrap().code,
        i32::from(tonic::Code::Unauthenticated)
    );
    let denied = denied_of(&response);
    assert_eq!(denied.status.as_ref().unwrap().code, 401);
    assert_eq!(
        header_value(&denied.headers, "www-authenticate"),
        Some(
            "Bearer error=\"invalid_token\", error_description=\"the access token has been revoked\", \
             resource_metadata=\"http://gw/.well-known/oauth-protected-resource/a\""
        )
    );
    let body: serde_json::Value = serde_json::from_str(&denied.body).unwrap();
    assert_eq!(body["error"], "invalid_token");
}

#[test]
fn expired_without_service_is_401_without_metadata() {
    let response = check_response(
        &decision(Verdict::Unauthenticated {
            reason: Unauthenticated::Expired,
            resource_metadata: None,
        }),
        &IdentityHeaders::default(),
        &[],
    );
    let denied = denied_of(&response);
    assert_eq!(
        header_value(&denied.headers, "www-authenticate"),
        Some("Bearer error=\"invalid_token\", error_description=\"the access token has expired\"")
    );
}

#[test]
fn forbidden_is_403_json_access_denied() {
    for forbidden in [
        Forbidden::NoHandoff(FactsError::NoHttpRequest),
        Forbidden::UnknownService,
        Forbidden::NotAllowed {
            list: ListScope::Global,
            no_user_record: true,
        },
        Forbidden::NotAllowed {
            list: ListScope::Service,
            no_user_record: false,
        },
    ] {
        let response = check_response(
            &decision(Verdict::Forbidden(forbidden.clone())),
            &IdentityHeaders::default(),
            &[],
        );
        assert_eq!(
            response.status.as_ref().unwrap().code,
            i32::from(tonic::Code::PermissionDenied)
        );
        let denied = denied_of(&response);
        assert_eq!(denied.status.as_ref().unwrap().code, 403, "{forbidden:?}");
        assert_eq!(
            header_value(&denied.headers, "content-type"),
            Some("application/json")
        );
        let body: serde_json::Value = serde_json::from_str(&denied.body).unwrap();
        assert_eq!(body["error"], "access_denied");
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
    }
}

#[test]
fn metadata_carries_cache_facts() {
    let response = check_response(
        &decision(Verdict::Allow(identity("a", "mcp"))),
        &IdentityHeaders::default(),
        &[],
    );
    let meta = response.dynamic_metadata.unwrap();
    let Some(Value {
        kind: Some(Kind::StructValue(inner)),
    }) = meta.fields.get(METADATA_NAMESPACE)
    else {
        panic!("no {METADATA_NAMESPACE} struct");
    };
    assert_eq!(
        inner.fields["valid_for_ms"].kind,
        Some(Kind::NumberValue(60_000.0))
    );
    assert_eq!(
        inner.fields["grant_id"].kind,
        Some(Kind::StringValue("g".into()))
    );
}

#[test]
fn a_service_gets_its_own_identity_headers_and_client_copies_of_stripped_ones_are_removed() {
    let mut caller = identity("alice", "mcp");
    caller.service_headers = [
        ("x-user-id".to_owned(), IdentityClaim::UserId),
        ("x-user-name".to_owned(), IdentityClaim::Login),
    ]
    .into();
    // The client sent its own x-user-id (replaced by ours) and x-forwarded-user (removed).
    let response = check_response(
        &decision(Verdict::Allow(caller)),
        &IdentityHeaders::default(),
        &["x-forwarded-user", "x-user-id"],
    );
    let ok = ok(&response);
    assert_eq!(header_value(&ok.headers, "x-user-id"), Some("42"));
    assert_eq!(header_value(&ok.headers, "x-user-name"), Some("alice"));
    assert!(
        ok.headers_to_remove
            .contains(&"x-forwarded-user".to_owned())
    );
    assert!(
        !ok.headers_to_remove.contains(&"x-user-id".to_owned()),
        "a header we set is overwritten, not removed: {:?}",
        ok.headers_to_remove
    );
}

#[test]
fn refusals_by_mcp_policy_answer_in_json_rpc_or_with_a_step_up_challenge() {
    let denied = check_response(
        &decision(Verdict::Refused(Refusal::Denied {
            id: Some("5".into()),
            method: "tools/call".into(),
            name: Some("get-env".into()),
        })),
        &IdentityHeaders::default(),
        &[],
    );
    let denied = denied_of(&denied);
    assert_eq!(denied.status.as_ref().unwrap().code, 403);
    let body: serde_json::Value = serde_json::from_str(&denied.body).unwrap();
    assert_eq!(body["id"], 5);
    assert_eq!(body["error"]["code"], -32003);
    assert_eq!(
        body["error"]["message"],
        "tools/call get-env is not allowed for you"
    );

    let step_up = check_response(
        &decision(Verdict::Refused(Refusal::InsufficientScope {
            scopes: vec!["mcp".into(), "mcp:write".into()],
            resource_metadata: "https://gw/.well-known/oauth-protected-resource/fs/mcp".into(),
            method: "tools/call".into(),
            name: Some("write_file".into()),
        })),
        &IdentityHeaders::default(),
        &[],
    );
    let step_up = denied_of(&step_up);
    assert_eq!(step_up.status.as_ref().unwrap().code, 403);
    let challenge = header_value(&step_up.headers, "www-authenticate").unwrap();
    assert!(
        challenge.starts_with("Bearer error=\"insufficient_scope\", scope=\"mcp mcp:write\""),
        "{challenge}"
    );
    assert!(
        challenge.ends_with(
            "resource_metadata=\"https://gw/.well-known/oauth-protected-resource/fs/mcp\""
        ),
        "{challenge}"
    );

    for (status, expected) in [(400, 400), (413, 413), (415, 415)] {
        let bad = check_response(
            &decision(Verdict::Refused(Refusal::BadRequest {
                status,
                code: -32020,
                message: "mcp-name does not match the body".into(),
            })),
            &IdentityHeaders::default(),
            &[],
        );
        let bad = denied_of(&bad);
        assert_eq!(bad.status.as_ref().unwrap().code, expected);
        let body: serde_json::Value = serde_json::from_str(&bad.body).unwrap();
        assert_eq!(body["id"], serde_json::Value::Null);
        assert_eq!(body["error"]["code"], -32020);
    }
}

#[test]
fn what_listings_hide_travels_on_the_response_for_the_filter() {
    let mut caller = identity("alice", "mcp");
    caller.visibility = Some("{\"k\":[]}".into());
    let response = check_response(
        &decision(Verdict::Allow(caller)),
        &IdentityHeaders::default(),
        &[],
    );
    let added = &ok(&response).response_headers_to_add;
    assert_eq!(header_value(added, VISIBILITY_HEADER), Some("{\"k\":[]}"));
    let response = check_response(
        &decision(Verdict::Allow(identity("alice", "mcp"))),
        &IdentityHeaders::default(),
        &[],
    );
    assert!(ok(&response).response_headers_to_add.is_empty());
}

use super::*;

fn ops(body: &str) -> Result<Operations, BodyError> {
    operations(body.as_bytes())
}

#[test]
fn a_request_names_its_method_and_what_it_acts_on() {
    let parsed =
        ops(r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"get-env","arguments":{}}}"#)
            .unwrap();
    assert_eq!(
        parsed,
        Operations {
            batch: false,
            operations: vec![Operation {
                id: Some("7".into()),
                method: "tools/call".into(),
                name: Some("get-env".into()),
            }],
        }
    );
    let read =
        ops(r#"{"jsonrpc":"2.0","id":"a","method":"resources/read","params":{"uri":"file:///x"}}"#)
            .unwrap();
    assert_eq!(read.operations[0].name.as_deref(), Some("file:///x"));
    assert_eq!(read.operations[0].id.as_deref(), Some("\"a\""));
    let list = ops(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).unwrap();
    assert_eq!(list.operations[0].name, None);
    let note = ops(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
    assert_eq!(note.operations[0].id, None);
}

#[test]
fn a_batch_lists_every_request_and_skips_responses() {
    let parsed = ops(
        r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}},
        {"jsonrpc":"2.0","id":9,"result":{}},
        {"jsonrpc":"2.0","method":"notifications/progress","params":{}}]"#,
    )
    .unwrap();
    assert!(parsed.batch);
    let methods: Vec<&str> = parsed
        .operations
        .iter()
        .map(|o| o.method.as_str())
        .collect();
    assert_eq!(methods, ["tools/call", "notifications/progress"]);
    assert_eq!(
        parsed.cache_key(),
        "tools/call\u{1f}a\u{1e}notifications/progress\u{1f}"
    );
}

#[test]
fn bodies_that_could_be_read_two_ways_are_refused() {
    for (body, error) in [
        ("\u{0}", BodyError::NotJson),
        ("{", BodyError::NotJson),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"} trailing"#,
            BodyError::NotJson,
        ),
        ("[]", BodyError::EmptyBatch),
        (
            "[1]",
            BodyError::NotJsonRpc("not an object, or a member twice or mistyped"),
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"ping","params":{"name":"a"}}"#,
            BodyError::NotJsonRpc("not an object, or a member twice or mistyped"),
        ),
        (
            r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
            BodyError::NotJsonRpc("jsonrpc is not \"2.0\""),
        ),
        (
            r#"{"jsonrpc":"2.0","id":1}"#,
            BodyError::NotJsonRpc("no method, result or error"),
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#,
            BodyError::MissingName {
                method: "tools/call".into(),
                param: "name",
            },
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":7}}"#,
            BodyError::MissingName {
                method: "tools/call".into(),
                param: "name",
            },
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}"#,
            BodyError::MissingName {
                method: "tools/call".into(),
                param: "name",
            },
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/read"}"#,
            BodyError::MissingName {
                method: "resources/read".into(),
                param: "uri",
            },
        ),
    ] {
        assert_eq!(ops(body), Err(error), "{body}");
    }
    assert_eq!(operations(b"{\"a\":\"\xff\"}"), Err(BodyError::NotUtf8));
    assert_eq!(BodyError::NotJson.code(), -32700);
}

#[test]
fn routing_headers_must_name_the_body_exactly() {
    let call =
        ops(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"héllo"}}"#).unwrap();
    let encoded = format!("=?base64?{}?=", {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode("héllo")
    });
    assert_eq!(check_routing_headers(&call, None, None), Ok(()));
    assert_eq!(
        check_routing_headers(&call, Some(b"tools/call"), Some(encoded.as_bytes())),
        Ok(())
    );
    for (method, name, header) in [
        (
            Some(&b"tools/list"[..]),
            Some(encoded.as_bytes()),
            MCP_METHOD_HEADER,
        ),
        (Some(b"tools/call"), Some(b"other"), MCP_NAME_HEADER),
        (Some(b"tools/call"), None, MCP_NAME_HEADER),
    ] {
        assert_eq!(
            check_routing_headers(&call, method, name),
            Err(HeaderMismatch::Differs { header }),
        );
    }
    assert_eq!(
        check_routing_headers(&call, Some(b"tools/call"), Some("héllo".as_bytes())),
        Err(HeaderMismatch::Malformed {
            header: MCP_NAME_HEADER
        })
    );
    let list = ops(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).unwrap();
    assert_eq!(
        check_routing_headers(&list, Some(b"tools/list"), None),
        Ok(())
    );
    assert_eq!(
        check_routing_headers(&list, Some(b"tools/list"), Some(b"x")),
        Err(HeaderMismatch::Differs {
            header: MCP_NAME_HEADER
        })
    );
}

#[test]
fn globs_match_names_and_uri_prefixes() {
    for (pattern, name, expected) in [
        ("get-env", "get-env", true),
        ("get-env", "get-env2", false),
        ("get-*", "get-env", true),
        ("*", "", true),
        ("*_file", "write_file", true),
        ("*_file", "write_files", false),
        ("file:///srv/*", "file:///srv/a/b", true),
        ("file:///srv/*", "file:///srv", false),
        ("a?c", "abc", true),
        ("a?c", "ac", false),
        ("*a*b*", "xxaxxbxx", true),
        ("é*", "éa", true),
        ("a?c", "aéc", true),
        ("a??c", "aéc", false),
        ("*é", "ééé", true),
        ("*éa", "éééa", true),
        ("*ab", "aab", true),
        ("a*", "b", false),
        ("", "", true),
        ("", "a", false),
        ("**", "日本", true),
        ("日*語", "日本語", true),
    ] {
        assert_eq!(glob_match(pattern, name), expected, "{pattern} ~ {name}");
    }
}

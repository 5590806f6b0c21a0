use mcp_auth_proto::listing::{KindVisibility, ListKind};
use serde_json::{Value, json};

use super::*;

const LIMIT: usize = 1 << 20;

/// Hides `kind` items matching `hidden`; everything else shown.
fn hiding(kind: ListKind, hidden: &[&str]) -> Visibility {
    Visibility {
        kinds: vec![KindVisibility {
            kind,
            default: true,
            rules: hidden.iter().map(|p| ((*p).to_owned(), false)).collect(),
        }],
    }
}

fn no_admin() -> Visibility {
    hiding(ListKind::Tools, &["admin_*"])
}

fn tools(names: &[&str]) -> Value {
    let tools: Vec<Value> = names
        .iter()
        .map(|n| json!({"name": n, "inputSchema": {"type": "object"}}))
        .collect();
    json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": tools, "nextCursor": "c2"}})
}

fn names(message: &Value, kind: ListKind) -> Vec<String> {
    message["result"][kind.array()]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item[kind.name_field()].as_str().unwrap().to_owned())
        .collect()
}

/// Runs a whole body through a fresh filter in the given chunks; the last one is `end`.
fn run(framing: Framing, visibility: Visibility, chunks: &[&[u8]]) -> (Vec<u8>, usize) {
    let mut filter = ListFilter::new(framing, visibility, LIMIT);
    let mut out = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        out.extend(filter.push(chunk, i + 1 == chunks.len()).unwrap());
    }
    (out, filter.hidden())
}

fn json_body(body: &[u8], visibility: Visibility) -> (Vec<u8>, usize) {
    run(Framing::Json, visibility, &[body])
}

fn sse(body: &[u8], visibility: Visibility) -> (Vec<u8>, usize) {
    run(Framing::EventStream, visibility, &[body])
}

/// The messages of an SSE body (its data lines, LF-terminated events).
fn sse_messages(body: &[u8]) -> Vec<Value> {
    String::from_utf8(body.to_vec())
        .unwrap()
        .split("\n\n")
        .filter_map(|event| event.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|data| serde_json::from_str(data).unwrap())
        .collect()
}

#[test]
fn framing_reads_the_media_type_only() {
    assert_eq!(framing(b"application/json"), Some(Framing::Json));
    assert_eq!(
        framing(b"Application/JSON; charset=utf-8"),
        Some(Framing::Json)
    );
    assert_eq!(
        framing(b" text/event-stream ;charset=UTF-8"),
        Some(Framing::EventStream)
    );
    assert_eq!(framing(b"text/plain"), None);
    assert_eq!(framing(b"application/json-seq"), None);
    assert_eq!(framing(b""), None);
}

#[test]
fn hidden_tools_are_removed_from_a_json_response() {
    let body = tools(&["search", "admin_drop", "fetch", "admin_ban"]).to_string();
    let (out, hidden) = json_body(body.as_bytes(), no_admin());
    let out: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(names(&out, ListKind::Tools), ["search", "fetch"]);
    assert_eq!(hidden, 2);
    assert_eq!(out["id"], 1);
    assert_eq!(out["result"]["nextCursor"], "c2");
    assert_eq!(
        out["result"]["tools"][0]["inputSchema"],
        json!({"type": "object"})
    );
}

#[test]
fn a_json_response_with_nothing_hidden_keeps_its_bytes() {
    let body = serde_json::to_vec_pretty(&tools(&["search", "fetch"])).unwrap();
    assert_eq!(json_body(&body, no_admin()), (body, 0));
}

#[test]
fn kept_items_are_copied_as_sent() {
    let body = br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[ {"name":"a", "x" : 1.50e0},{"name":"admin_b"} ]}}"#;
    let (out, _) = json_body(body, no_admin());
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a", "x" : 1.50e0}]}}"#
    );
}

#[test]
fn json_is_held_to_the_end_of_the_body() {
    let body = tools(&["a", "admin_b"]).to_string();
    let (head, tail) = body.as_bytes().split_at(10);
    let mut filter = ListFilter::new(Framing::Json, no_admin(), LIMIT);
    assert!(filter.push(head, false).unwrap().is_empty());
    let out: Value = serde_json::from_slice(&filter.push(tail, true).unwrap()).unwrap();
    assert_eq!(names(&out, ListKind::Tools), ["a"]);
}

#[test]
fn hidden_tools_are_removed_from_an_sse_response() {
    let message = tools(&["admin_x", "search"]).to_string();
    let body = format!(": hi\nid: 7\nevent: message\ndata: {message}\nretry: 100\n\n");
    let (out, hidden) = sse(body.as_bytes(), no_admin());
    let out = String::from_utf8(out).unwrap();
    let data = out.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
    let rest: Vec<&str> = out
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with("data"))
        .collect();
    assert_eq!(rest, [": hi", "id: 7", "event: message", "retry: 100"]);
    assert!(out.ends_with("retry: 100\n\n"));
    let data: Value = serde_json::from_str(data).unwrap();
    assert_eq!(names(&data, ListKind::Tools), ["search"]);
    assert_eq!(hidden, 1);
}

#[test]
fn an_event_over_several_data_lines_becomes_one() {
    let pretty = serde_json::to_string_pretty(&tools(&["admin_x", "search"])).unwrap();
    let data: String = pretty.lines().map(|l| format!("data:{l}\n")).collect();
    let body = format!("id: 1\n{data}\n");
    let (out, _) = sse(body.as_bytes(), no_admin());
    let out = String::from_utf8(out).unwrap();
    assert_eq!(out.lines().filter(|l| l.starts_with("data")).count(), 1);
    assert!(out.starts_with("id: 1\ndata: {"));
    assert_eq!(
        names(&sse_messages(out.as_bytes())[0], ListKind::Tools),
        ["search"]
    );
}

/// A stream with every kind of event, its line endings `eol`.
fn mixed_stream(eol: &str) -> String {
    let events = [
        "retry: 3000".to_owned(),
        r#"data: {"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#.to_owned(),
        format!("id: 1{eol}data: {}", tools(&["admin_a", "b", "admin_c"])),
        format!(
            ": keep-alive{eol}data: {}",
            json!({"jsonrpc":"2.0","id":2,"result":{"content":[]}})
        ),
        format!("data: {}", tools(&["b"])),
        "data: not json".to_owned(),
    ];
    events.iter().map(|e| format!("{e}{eol}{eol}")).collect()
}

#[test]
fn an_sse_stream_split_anywhere_filters_the_same() {
    for eol in ["\n", "\r\n", "\r"] {
        let body = mixed_stream(eol);
        let body = body.as_bytes();
        let (whole, hidden) = sse(body, no_admin());
        assert_eq!(hidden, 2, "{eol:?}");
        for at in 0..=body.len() {
            let (a, b) = body.split_at(at);
            assert_eq!(
                run(Framing::EventStream, no_admin(), &[a, b]),
                (whole.clone(), 2),
                "{eol:?} at {at}"
            );
        }
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(
            run(Framing::EventStream, no_admin(), &bytes),
            (whole.clone(), 2),
            "{eol:?} bytewise"
        );
    }
}

#[test]
fn crlf_and_cr_streams_keep_their_line_endings() {
    for eol in ["\r\n", "\r"] {
        let body = mixed_stream(eol);
        let (out, _) = sse(body.as_bytes(), no_admin());
        let out = String::from_utf8(out).unwrap();
        let expected = format!(
            "id: 1{eol}data: {}{eol}{eol}",
            json!({"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"b","inputSchema":{"type":"object"}}],"nextCursor":"c2"}})
        );
        assert!(out.contains(&expected), "{eol:?}: {out}");
        // Everything but the rewritten event is byte for byte.
        let original = format!(
            "id: 1{eol}data: {}{eol}{eol}",
            tools(&["admin_a", "b", "admin_c"])
        );
        assert_eq!(out.replace(&expected, ""), body.replace(&original, ""));
    }
}

#[test]
fn events_leave_as_soon_as_they_are_complete() {
    let list = tools(&["admin_a", "b"]).to_string();
    let mut filter = ListFilter::new(Framing::EventStream, no_admin(), LIMIT);
    // One event and the start of the next: only the first leaves.
    let out = filter
        .push(
            b"data: {\"jsonrpc\":\"2.0\",\"method\":\"ping\"}\n\ndata: ",
            false,
        )
        .unwrap();
    assert_eq!(out, b"data: {\"jsonrpc\":\"2.0\",\"method\":\"ping\"}\n\n");
    // A CR ends the blank line at once, without waiting for a possible LF.
    let out = filter
        .push(format!("{list}\r\r").as_bytes(), false)
        .unwrap();
    assert_eq!(
        names(&sse_messages(&out.replace_crs())[0], ListKind::Tools),
        ["b"]
    );
    // The LF of a CRLF split after its CR passes on alone, as the end of that event.
    assert_eq!(filter.push(b"\n", false).unwrap(), b"\n");
    assert_eq!(filter.push(b"\n", false).unwrap(), b"\n");
    assert!(filter.push(b"data: 1", false).unwrap().is_empty());
    assert_eq!(filter.push(b"\n\n", true).unwrap(), b"data: 1\n\n");
}

trait ReplaceCrs {
    fn replace_crs(&self) -> Vec<u8>;
}

impl ReplaceCrs for Vec<u8> {
    fn replace_crs(&self) -> Vec<u8> {
        self.iter()
            .map(|&b| if b == b'\r' { b'\n' } else { b })
            .collect()
    }
}

#[test]
fn notifications_and_other_results_pass_byte_for_byte() {
    let bodies = [
        r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#.to_owned(),
        r#"{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"no \"tools\" here"}}"#
            .to_owned(),
        // Parsed (it names both), but its list is not the result's own.
        r#"{"jsonrpc":"2.0","id":4,"result":{"structuredContent":{"tools":[{"name":"admin_x"}]}}}"#
            .to_owned(),
        r#"{"jsonrpc":"2.0","id":5,"result":{"tools":"admin_x"}}"#.to_owned(),
        r#"{"jsonrpc":"2.0","id":6, "result": {"prompts":[{"name":"admin_x"}]}}"#.to_owned(),
        r#""result tools""#.to_owned(),
        "not json at all".to_owned(),
        String::new(),
    ];
    for body in &bodies {
        assert_eq!(
            json_body(body.as_bytes(), no_admin()),
            (body.as_bytes().to_vec(), 0),
            "{body}"
        );
        let event = format!("event: message\r\ndata: {body}\r\n\r\n");
        assert_eq!(
            sse(event.as_bytes(), no_admin()),
            (event.into_bytes(), 0),
            "{body}"
        );
    }
    let comments = b": only a comment\n\nid: 9\n\ndata\n\n";
    assert_eq!(sse(comments, no_admin()), (comments.to_vec(), 0));
}

#[test]
fn cache_scope_becomes_private_only_when_something_was_removed() {
    let list = |names: &[&str]| {
        let mut message = tools(names);
        message["result"]["cacheScope"] = json!("public");
        message.to_string()
    };
    let (out, _) = json_body(list(&["a", "admin_b"]).as_bytes(), no_admin());
    let out: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(out["result"]["cacheScope"], "private");
    let untouched = list(&["a", "b"]);
    assert_eq!(
        json_body(untouched.as_bytes(), no_admin()).0,
        untouched.as_bytes()
    );
    // Not added where the server sent none.
    let (out, _) = json_body(tools(&["admin_b"]).to_string().as_bytes(), no_admin());
    let out: Value = serde_json::from_slice(&out).unwrap();
    assert!(out["result"].get("cacheScope").is_none());
}

#[test]
fn an_item_without_a_string_name_is_removed() {
    let body = json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": [
        {"name": "ok"}, {"title": "no name"}, {"name": 7}, {"name": null}, "ok", ["ok"], null
    ]}})
    .to_string();
    // A name given twice could be read either way.
    let body = body.replace(r#"{"name":null}"#, r#"{"name":"ok","name":"admin_x"}"#);
    let (out, hidden) = json_body(body.as_bytes(), no_admin());
    let out: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(out["result"]["tools"], json!([{"name": "ok"}]));
    assert_eq!(hidden, 6);
}

#[test]
fn escaped_names_and_keys_are_read_as_the_client_reads_them() {
    let body = br#"{"jsonrpc":"2.0","id":1,"r\u0065sult":{"t\u006fols":[{"n\u0061me":"\u0061dmin_x"},{"name":"b"}]}}"#;
    let (out, hidden) = json_body(body, no_admin());
    assert_eq!(hidden, 1);
    let out: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        out,
        json!({"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"b"}]}})
    );
}

#[test]
fn a_name_no_client_reads_exactly_is_removed() {
    // A lone surrogate: some clients read U+FFFD, some refuse, JavaScript keeps it.
    let body = br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"b\ud800"},{"name":"b"}]}}"#;
    let visibility = hiding(ListKind::Tools, &["a*"]);
    let (out, hidden) = json_body(body, visibility);
    assert_eq!(hidden, 1);
    assert_eq!(
        out,
        br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"b"}]}}"#
    );
}

#[test]
fn whitespace_and_keys_outside_the_list_are_kept_as_sent() {
    let body = b"{ \"jsonrpc\" : \"2.0\",\n \"id\":1, \"result\": {\"tools\" : [ {\"name\":\"admin_a\"} , {\"name\":\"b\"} ] , \"x\\u0079\":1 } }";
    let (out, hidden) = json_body(body, no_admin());
    assert_eq!(hidden, 1);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "{ \"jsonrpc\" : \"2.0\",\n \"id\":1, \"result\": {\"tools\" : [{\"name\":\"b\"}] , \"x\\u0079\":1 } }"
    );
}

#[test]
fn a_list_that_is_not_readable_json_is_an_error() {
    let body = br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a","x":NaN}]}}"#;
    let mut filter = ListFilter::new(Framing::Json, no_admin(), LIMIT);
    assert_eq!(filter.push(body, true), Err(ListFilterError::Unreadable));
    let mut filter = ListFilter::new(Framing::EventStream, no_admin(), LIMIT);
    let event = [b"data: ".as_slice(), body, b"\n\n"].concat();
    assert_eq!(filter.push(&event, false), Err(ListFilterError::Unreadable));
    assert_eq!(
        filter.push(b"data: 1\n\n", true),
        Err(ListFilterError::Unreadable)
    );
}

#[test]
fn a_batch_is_filtered_message_by_message() {
    let batch = json!([
        tools(&["admin_a", "b"]),
        {"jsonrpc": "2.0", "method": "notifications/message", "params": {"tools": []}},
        {"jsonrpc": "2.0", "id": 2, "error": {"code": -1, "message": "x"}},
        tools(&["c", "admin_d"]),
    ]);
    let (out, hidden) = json_body(batch.to_string().as_bytes(), no_admin());
    let out: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(hidden, 2);
    assert_eq!(names(&out[0], ListKind::Tools), ["b"]);
    assert_eq!(out[1], batch[1]);
    assert_eq!(out[2], batch[2]);
    assert_eq!(names(&out[3], ListKind::Tools), ["c"]);
    let (out, hidden) = sse(format!("data: {batch}\n\n").as_bytes(), no_admin());
    assert_eq!(hidden, 2);
    assert_eq!(names(&sse_messages(&out)[0][3], ListKind::Tools), ["c"]);
}

#[test]
fn a_list_of_ten_thousand_tools() {
    let all: Vec<String> = (0..10_000)
        .map(|i| {
            if i % 2 == 0 {
                format!("tool_{i}")
            } else {
                format!("admin_{i}")
            }
        })
        .collect();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let body = tools(&all).to_string();
    let (out, hidden) = json_body(body.as_bytes(), no_admin());
    assert_eq!(hidden, 5_000);
    let out: Value = serde_json::from_slice(&out).unwrap();
    let kept = names(&out, ListKind::Tools);
    assert_eq!(kept.len(), 5_000);
    assert!(kept.iter().all(|n| n.starts_with("tool_")));
    // As SSE, in 16 KiB chunks.
    let stream = format!("data: {body}\n\n");
    let chunks: Vec<&[u8]> = stream.as_bytes().chunks(16 * 1024).collect();
    let (out, hidden) = run(Framing::EventStream, no_admin(), &chunks);
    assert_eq!(hidden, 5_000);
    assert_eq!(names(&sse_messages(&out)[0], ListKind::Tools), kept);
}

#[test]
fn a_json_body_over_the_buffer_is_too_large() {
    let mut filter = ListFilter::new(Framing::Json, no_admin(), 100);
    assert!(filter.push(&[b' '; 60], false).unwrap().is_empty());
    assert_eq!(
        filter.push(&[b' '; 41], true),
        Err(ListFilterError::TooLarge { limit: 100 })
    );
    // And stays refused.
    assert_eq!(
        filter.push(b"{}", true),
        Err(ListFilterError::TooLarge { limit: 100 })
    );
    let mut filter = ListFilter::new(Framing::Json, no_admin(), 100);
    assert_eq!(filter.push(&[b' '; 100], true).unwrap(), [b' '; 100]);
}

#[test]
fn an_sse_tail_over_the_buffer_is_too_large() {
    // Complete events flow however much of them there is; only the incomplete tail counts.
    let mut filter = ListFilter::new(Framing::EventStream, no_admin(), 64);
    let event = format!("data: {}\n\n", "x".repeat(50));
    for _ in 0..10 {
        assert_eq!(
            filter.push(event.as_bytes(), false).unwrap(),
            event.as_bytes()
        );
    }
    assert!(filter.push(&[b'y'; 64], false).unwrap().is_empty());
    assert_eq!(
        filter.push(b"y", false),
        Err(ListFilterError::TooLarge { limit: 64 })
    );
}

#[test]
fn a_visibility_that_shows_everything_passes_everything() {
    let all_shown = Visibility {
        kinds: vec![KindVisibility {
            kind: ListKind::Tools,
            default: true,
            rules: vec![("admin_*".into(), true)],
        }],
    };
    for visibility in [Visibility::default(), all_shown] {
        for framing in [Framing::Json, Framing::EventStream] {
            let mut filter = ListFilter::new(framing, visibility.clone(), 4);
            let body = tools(&["admin_a"]).to_string();
            // Not held, not parsed, not bounded.
            assert_eq!(
                filter.push(body.as_bytes(), false).unwrap(),
                body.as_bytes()
            );
            assert_eq!(
                filter.push(b"{\"result\":{\"tools\":[", true).unwrap(),
                b"{\"result\":{\"tools\":["
            );
            assert_eq!(filter.hidden(), 0);
        }
    }
}

#[test]
fn nothing_hides_every_item_of_every_kind() {
    for kind in ListKind::ALL {
        let item = json!({kind.name_field(): "x"});
        let body = json!({"jsonrpc": "2.0", "id": 1, "result": {kind.array(): [item]}}).to_string();
        let (out, hidden) = json_body(body.as_bytes(), Visibility::nothing());
        assert_eq!(hidden, 1, "{kind:?}");
        let out: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(out["result"][kind.array()], json!([]));
    }
}

#[test]
fn resources_are_matched_by_uri_glob() {
    let visibility = hiding(ListKind::Resources, &["file:///secret/*"]);
    let body = json!({"jsonrpc": "2.0", "id": 1, "result": {"resources": [
        {"uri": "file:///srv/a.txt", "name": "a"},
        {"uri": "file:///secret/deep/key.pem", "name": "key"},
        {"name": "no uri"},
    ], "resourceTemplates": [{"uriTemplate": "file:///secret/{x}"}]}})
    .to_string();
    let (out, hidden) = json_body(body.as_bytes(), visibility);
    assert_eq!(hidden, 2);
    let out: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(names(&out, ListKind::Resources), ["file:///srv/a.txt"]);
    // Another kind: untouched.
    assert_eq!(
        names(&out, ListKind::ResourceTemplates),
        ["file:///secret/{x}"]
    );
}

#[test]
fn resource_templates_are_matched_by_uri_template() {
    let visibility = hiding(ListKind::ResourceTemplates, &["db://*"]);
    let body = json!({"jsonrpc": "2.0", "id": 1, "result": {"resourceTemplates": [
        {"uriTemplate": "db://{table}", "name": "table"},
        {"uriTemplate": "file:///{path}", "name": "db://looks-hidden-by-name"},
        {"uri": "db://not-a-template"},
    ]}})
    .to_string();
    let (out, hidden) = sse(format!("data: {body}\n\n").as_bytes(), visibility);
    assert_eq!(hidden, 2);
    assert_eq!(
        names(&sse_messages(&out)[0], ListKind::ResourceTemplates),
        ["file:///{path}"]
    );
}

#[test]
fn a_stream_starting_with_a_bom_keeps_it() {
    let body = format!("\u{feff}data: {}\n\n", tools(&["admin_a", "b"]));
    let (out, hidden) = sse(body.as_bytes(), no_admin());
    assert_eq!(hidden, 1);
    assert!(out.starts_with("\u{feff}data: {".as_bytes()));
    assert_eq!(names(&sse_messages(&out[3..])[0], ListKind::Tools), ["b"]);
}

#[test]
fn an_event_the_stream_ends_inside_is_filtered_too() {
    let body = format!("id: 4\ndata: {}", tools(&["admin_a", "b"]));
    let (out, hidden) = sse(body.as_bytes(), no_admin());
    assert_eq!(hidden, 1);
    let out = String::from_utf8(out).unwrap();
    assert!(out.starts_with("id: 4\ndata: {") && !out.ends_with('\n'));
    let data: Value = serde_json::from_str(out.strip_prefix("id: 4\ndata: ").unwrap()).unwrap();
    assert_eq!(names(&data, ListKind::Tools), ["b"]);
}

#[test]
fn a_bom_alone_on_the_first_line_is_a_blank_line() {
    let body = format!("\u{feff}\ndata: {}\n\n", tools(&["admin_a", "b"]));
    let body = body.as_bytes();
    let (whole, hidden) = sse(body, no_admin());
    assert_eq!(hidden, 1);
    assert!(whole.starts_with("\u{feff}\ndata: {".as_bytes()));
    for at in 0..=body.len() {
        let (a, b) = body.split_at(at);
        assert_eq!(
            run(Framing::EventStream, no_admin(), &[a, b]),
            (whole.clone(), 1),
            "at {at}"
        );
    }
}

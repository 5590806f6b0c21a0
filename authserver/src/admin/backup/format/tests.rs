use super::*;
use crate::keys::{KeyFile, SigningKey};

const GRANT: &str = r#"{"client_id":"c1","subject":"1001","resource":"https://gw.example.com/mcp","scopes":["mcp"],"created_at":1}"#;

fn header(records: usize) -> String {
    format!(
        r#"{{"format":"mcp-mesh-auth-backup","version":1,"created_at":"1970-01-01T00:00:00.000Z","created_at_ms":0,"key_prefix":"p:","records":{records}}}"#
    )
}

fn file(lines: &[&str]) -> String {
    let mut text = header(lines.len());
    for line in lines {
        text.push('\n');
        text.push_str(line);
    }
    text.push('\n');
    text
}

#[allow(clippy::panic)] // test support: a wrong answer fails the test
fn problem(text: &str) -> (usize, String) {
    match parse(text) {
        Err(FormatError::Malformed { line, problem }) => (line, problem),
        other => panic!("not refused as malformed: {other:?}"),
    }
}

fn grant_line(key_suffix: &str, ttl: &str) -> String {
    format!(r#"{{"kind":"grant","key_suffix":"{key_suffix}","ttl_ms":{ttl},"value":{GRANT}}}"#)
}

#[test]
fn lines_round_trip_byte_for_byte() {
    let records = vec![
        Record::Redis {
            kind: RecordKind::Grant,
            key_suffix: "grant:g1".into(),
            ttl_ms: Some(5000),
            value: StoredValue::String(GRANT.into()),
        },
        Record::Redis {
            kind: RecordKind::Grant,
            key_suffix: "grant:g2".into(),
            ttl_ms: None,
            value: StoredValue::String(GRANT.into()),
        },
        Record::Redis {
            kind: RecordKind::RefreshToken,
            key_suffix: "refresh:d1".into(),
            ttl_ms: Some(1),
            value: StoredValue::Hash(vec![
                ("data".into(), r#"{"grant_id":"g1","client_id":"c1","sub":"1001","login":"o","resource":"r","scopes":[],"grant_created_at":1}"#.into()),
                ("rotated".into(), "17".into()),
                ("successor".into(), "sealed".into()),
            ]),
        },
    ];
    let lines: Vec<String> = records.iter().map(|r| write_line(r).unwrap()).collect();
    assert_eq!(lines[0], grant_line("grant:g1", "5000"));
    assert_eq!(lines[1], grant_line("grant:g2", "null"));
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let parsed = parse(&file(&refs)).unwrap();
    assert_eq!(parsed.records, records);
    assert_eq!(parsed.header.key_prefix, "p:");
}

#[test]
fn stored_json_on_several_lines_is_compacted() {
    let pretty =
        serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(GRANT).unwrap())
            .unwrap();
    let line = write_line(&Record::Redis {
        kind: RecordKind::Grant,
        key_suffix: "grant:g1".into(),
        ttl_ms: None,
        value: StoredValue::String(pretty),
    })
    .unwrap();
    assert!(!line.contains('\n'));
    assert!(parse(&file(&[&line])).is_ok());
}

#[test]
fn records_that_do_not_belong_where_they_are_are_refused() {
    // A TTL must be given (null for none), so a hand-edited file cannot make state eternal.
    let no_ttl = format!(r#"{{"kind":"grant","key_suffix":"grant:g","value":{GRANT}}}"#);
    assert_eq!(problem(&file(&[&grant_line("grant:a", "1"), &no_ttl])).0, 3);
    // The key of another kind.
    let (line, why) = problem(&file(&[&grant_line("client:g", "1")]));
    assert_eq!(line, 2);
    assert!(why.contains("grant:<id>"), "{why}");
    // A value that is not the kind's record.
    let (_, why) = problem(&file(&[
        r#"{"kind":"user","key_suffix":"user:1","ttl_ms":1,"value":{"x":1}}"#,
    ]));
    assert!(why.contains("not a user record"), "{why}");
    // A record under another record's key.
    let user = r#"{"kind":"user","key_suffix":"user:2","ttl_ms":1,"value":{"subject":"1","login":"o","updated_at":1}}"#;
    let (_, why) = problem(&file(&[user]));
    assert!(why.contains("belongs at \"user:1\""), "{why}");
    // Unknown kinds and fields.
    assert_eq!(
        problem(&file(&[
            r#"{"kind":"code","key_suffix":"code:x","ttl_ms":1,"value":{}}"#
        ]))
        .0,
        2
    );
    let extra =
        format!(r#"{{"kind":"grant","key_suffix":"grant:g","ttl_ms":1,"value":{GRANT},"more":1}}"#);
    assert_eq!(problem(&file(&[&extra])).0, 2);
    // The same key twice.
    let (line, why) = problem(&file(&[
        &grant_line("grant:g", "1"),
        &grant_line("grant:g", "2"),
    ]));
    assert_eq!(line, 3);
    assert!(why.contains("twice"), "{why}");
    // A refresh token that is not a hash of its fields.
    let refresh =
        r#"{"kind":"refresh_token","key_suffix":"refresh:d","ttl_ms":1,"value":{"grant_id":"g"}}"#;
    assert!(problem(&file(&[refresh])).1.contains("refresh token hash"));
}

#[test]
fn signing_keys_must_be_loadable_and_named_by_their_kid() {
    let (key, der) = SigningKey::generate(mcp_auth_gateway::config::SigningAlg::EdDSA).unwrap();
    let kid = key.thumbprint();
    let contents =
        serde_json::to_string_pretty(&KeyFile::new(kid.clone(), key.alg(), 1, 1, &der)).unwrap();
    let good = Record::SigningKey {
        file: format!("{kid}.json"),
        contents: contents.clone(),
    };
    let line = write_line(&good).unwrap();
    assert_eq!(parse(&file(&[&line])).unwrap().records, vec![good]);
    for name in ["../x.json".to_owned(), "other.json".to_owned(), kid.clone()] {
        let bad = Record::SigningKey {
            file: name.clone(),
            contents: contents.clone(),
        };
        assert!(write_line(&bad).is_err(), "{name}");
    }
    let broken = contents.replace(
        &KeyFile::new(kid.clone(), key.alg(), 1, 1, &der).pkcs8,
        "AAAA",
    );
    let bad = Record::SigningKey {
        file: format!("{kid}.json"),
        contents: broken,
    };
    assert!(write_line(&bad).is_err());
}

#[test]
fn headers_of_other_formats_versions_and_counts_are_refused() {
    assert!(matches!(parse(""), Err(FormatError::UnknownFormat)));
    assert!(matches!(
        parse("{\"version\":1}\n"),
        Err(FormatError::UnknownFormat)
    ));
    let v2 = header(0).replace("\"version\":1", "\"version\":2");
    assert!(matches!(parse(&v2), Err(FormatError::UnsupportedVersion(v)) if v == "2"));
    let announced_more = header(2) + "\n" + &grant_line("grant:g", "1") + "\n";
    assert!(matches!(
        parse(&announced_more),
        Err(FormatError::Count {
            announced: 2,
            found: 1
        })
    ));
    // An empty line is not a record.
    let gap = header(1) + "\n\n" + &grant_line("grant:g", "1") + "\n";
    assert_eq!(problem(&gap).0, 2);
}

use super::*;

fn accepts(text: &str) -> bool {
    let mut reader = Reader::new(text);
    reader.skip_value().and_then(|()| reader.finish()).is_ok()
}

fn decode(text: &str) -> Decoded<'_> {
    let mut reader = Reader::new(text);
    assert_eq!(reader.peek(), Some(b'"'));
    let decoded = reader.string().unwrap();
    reader.finish().unwrap();
    decoded
}

/// Texts at the edges of RFC 8259's grammar, valid and not.
const CASES: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "10",
    "01",
    "-",
    "1.",
    ".1",
    "1.5",
    "1e5",
    "1E+5",
    "1e-5",
    "1e",
    "1e+",
    "-01",
    "1.5e3",
    "0.0",
    "00",
    "+1",
    "1_0",
    "true",
    "false",
    "null",
    "tru",
    "nul",
    "True",
    "\"\"",
    "\"a\"",
    "\"\\\"\"",
    "\"\\\\\"",
    "\"\\/\"",
    "\"\\b\\f\\n\\r\\t\"",
    "\"\\x\"",
    "\"\\u0041\"",
    "\"\\u004\"",
    "\"\\u00zz\"",
    "\"\\ud83d\\ude00\"",
    "\"\\ud83d\"",
    "\"\\ude00\"",
    "\"\t\"",
    "\"\u{1}\"",
    "\"é\"",
    "\"unterminated",
    "[]",
    "[1]",
    "[1,]",
    "[,1]",
    "[1 2]",
    "[[[]]]",
    "{}",
    "{\"a\":1}",
    "{\"a\":1,}",
    "{\"a\"}",
    "{\"a\":}",
    "{a:1}",
    "{\"a\":1 \"b\":2}",
    "{\"a\":1,\"a\":2}",
    " {\"a\" : [ 1 , { } ] } ",
    "[1]x",
    "",
    " ",
    "{\"a\":1}}",
    "[\"a\",{\"b\":[null,true,false,-1.5e-3]}]",
    "\u{feff}1",
    "//1",
    "[1]//",
    "{\"a\":1}\n",
    "[\"\\u0000\"]",
    "1 2",
];

#[test]
fn accepts_exactly_what_serde_json_accepts() {
    for text in CASES {
        let strict = serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
        // serde_json refuses lone surrogates; they are valid JSON grammar (RFC 8259 §8.2),
        // which the reader steps over and reports inexact when it decodes them.
        let lone = text.contains("\\ud83d\"") || text.contains("\\ude00\"");
        if !lone {
            assert_eq!(accepts(text), strict, "{text:?}");
        }
    }
}

/// Deterministic mutations of a realistic message: every one is judged as serde_json does.
#[test]
fn mutated_messages_are_judged_as_serde_json_judges_them() {
    let base = r#"{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"a\u0062c","inputSchema":{"type":"object","properties":{"x":{"type":"number","minimum":-1.5e3}}}},{"name":"d","annotations":{"readOnlyHint":true}}],"nextCursor":null}}"#;
    let alphabet = b"{}[]:,\"\\ 0123456789-+.eEtrufalsn\tu\n";
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..20_000 {
        let mut bytes = base.as_bytes().to_vec();
        for _ in 0..1 + next() % 3 {
            let at = (next() % bytes.len() as u64) as usize;
            let byte = alphabet[(next() % alphabet.len() as u64) as usize];
            match next() % 3 {
                0 => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ => {
                    bytes.remove(at);
                }
            }
        }
        let Ok(text) = String::from_utf8(bytes) else {
            continue;
        };
        let strict = serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok();
        if text.contains("\\ud") {
            continue;
        }
        assert_eq!(accepts(&text), strict, "{text}");
    }
}

#[test]
fn strings_decode_as_a_client_reads_them() {
    assert_eq!(decode("\"plain\"").text, Cow::Borrowed("plain"));
    assert!(matches!(decode("\"plain\"").text, Cow::Borrowed(_)));
    assert_eq!(decode(r#""n\u0061me""#).text, "name");
    assert_eq!(decode(r#""a\"b\\c\/d\n""#).text, "a\"b\\c/d\n");
    assert_eq!(decode(r#""\ud83d\ude00!""#).text, "😀!");
    assert_eq!(decode(r#""é\u00e9""#).text, "éé");
    assert!(decode(r#""\ud83d\ude00""#).exact);
    let lone = decode(r#""get\ud83d-env""#);
    assert_eq!(lone.text, "get\u{fffd}-env");
    assert!(!lone.exact);
    assert!(!decode(r#""\ude00""#).exact);
}

#[test]
fn values_report_where_they_start_and_end() {
    let text = r#"{ "a" : [ 1 , {"b":2} ] , "c":"d" }"#;
    let mut reader = Reader::new(text);
    let mut spans = Vec::new();
    reader
        .object(|reader, key| {
            if key.text == "a" {
                reader.array(|reader| {
                    let start = reader.pos();
                    reader.skip_value()?;
                    spans.push(&text[start..reader.pos()]);
                    Ok(())
                })
            } else {
                reader.skip_value()
            }
        })
        .unwrap();
    reader.finish().unwrap();
    assert_eq!(spans, ["1", r#"{"b":2}"#]);
}

#[test]
fn nesting_is_bounded() {
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    assert!(accepts(&deep(MAX_DEPTH)));
    assert!(!accepts(&deep(MAX_DEPTH + 1)));
    assert!(!accepts(&"[".repeat(100_000)));
}

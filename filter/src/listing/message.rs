//! One JSON-RPC message (or batch) with the items its caller may not see removed: the
//! byte test that spares the parse, and the parse that keeps everything it does not remove
//! exactly as sent (members and kept items are copied, never re-encoded).

use std::borrow::Cow;
use std::fmt;

use mcp_auth_proto::listing::{ListKind, Visibility};
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::ListFilterError;

/// What is hidden from this caller, with the byte patterns that tell a message might hold it.
pub(super) struct Policy {
    visibility: Visibility,
    /// The kinds that hide something, and `"<array>"` for each.
    hiding: Vec<(ListKind, Vec<u8>)>,
}

impl Policy {
    /// `None` when nothing is hidden.
    pub(super) fn new(visibility: Visibility) -> Option<Self> {
        if visibility.shows_everything() {
            return None;
        }
        let hiding = ListKind::ALL
            .into_iter()
            .filter(|kind| {
                visibility.kinds.iter().any(|k| {
                    k.kind == *kind && !(k.default && k.rules.iter().all(|(_, shown)| *shown))
                })
            })
            .map(|kind| (kind, format!("\"{}\"", kind.array()).into_bytes()))
            .collect();
        Some(Self { visibility, hiding })
    }

    /// False only when `bytes` cannot hold a result array of a hiding kind.
    pub(super) fn may_hold_list(&self, bytes: &[u8]) -> bool {
        escaped_letter(bytes)
            || (contains(bytes, b"\"result\"")
                && self
                    .hiding
                    .iter()
                    .any(|(_, needle)| contains(bytes, needle)))
    }

    /// One message or a batch with hidden items removed, and how many; `None` when nothing
    /// was removed.
    pub(super) fn filter_message(
        &self,
        text: &str,
    ) -> Result<Option<(String, usize)>, ListFilterError> {
        match text
            .trim_start_matches([' ', '\t', '\r', '\n'])
            .as_bytes()
            .first()
        {
            Some(b'{') => self.filter_response(text),
            Some(b'[') => {
                let messages: Vec<&RawValue> = parse(text)?;
                let mut parts: Vec<Cow<'_, str>> = Vec::with_capacity(messages.len());
                let mut removed = 0;
                for message in &messages {
                    let filtered = match message.get().as_bytes().first() {
                        Some(b'{') => self.filter_response(message.get())?,
                        _ => None,
                    };
                    parts.push(match filtered {
                        Some((filtered, n)) => {
                            removed += n;
                            Cow::Owned(filtered)
                        }
                        None => Cow::Borrowed(message.get()),
                    });
                }
                Ok((removed > 0).then(|| (format!("[{}]", parts.join(",")), removed)))
            }
            // Valid JSON that is no message passes; anything else may be a list misread.
            _ => parse::<IgnoredAny>(text).map(|_| None),
        }
    }

    /// A JSON-RPC object: every `result` member filtered.
    fn filter_response(&self, text: &str) -> Result<Option<(String, usize)>, ListFilterError> {
        let Members(members) = parse(text)?;
        let mut values = unchanged(&members);
        let mut removed = 0;
        for ((key, value), slot) in members.iter().zip(&mut values) {
            if key.0 == "result"
                && value.get().starts_with('{')
                && let Some((filtered, n)) = self.filter_result(value.get())?
            {
                *slot = Cow::Owned(filtered);
                removed += n;
            }
        }
        Ok((removed > 0).then(|| (object(&members, &values), removed)))
    }

    /// A result object: every list array of a hiding kind filtered.
    fn filter_result(&self, text: &str) -> Result<Option<(String, usize)>, ListFilterError> {
        let Members(members) = parse(text)?;
        let mut values = unchanged(&members);
        let mut removed = 0;
        for ((key, value), slot) in members.iter().zip(&mut values) {
            let Some((kind, _)) = self.hiding.iter().find(|(kind, _)| kind.array() == key.0) else {
                continue;
            };
            if !value.get().starts_with('[') {
                continue;
            }
            let items: Vec<&RawValue> = parse(value.get())?;
            let kept: Vec<&str> = items
                .iter()
                .filter(|item| self.shows(*kind, item))
                .map(|item| item.get())
                .collect();
            if kept.len() < items.len() {
                removed += items.len() - kept.len();
                *slot = Cow::Owned(format!("[{}]", kept.join(",")));
            }
        }
        if removed == 0 {
            return Ok(None);
        }
        for ((key, _), slot) in members.iter().zip(&mut values) {
            if key.0 == "cacheScope" {
                *slot = Cow::Borrowed("\"private\"");
            }
        }
        Ok(Some((object(&members, &values), removed)))
    }

    /// Whether an item is shown: an object with exactly one string name field the
    /// visibility shows.
    fn shows(&self, kind: ListKind, item: &RawValue) -> bool {
        if !item.get().starts_with('{') {
            return false;
        }
        let Ok(Members(members)) = parse(item.get()) else {
            return false;
        };
        let mut names = members.iter().filter(|(key, _)| key.0 == kind.name_field());
        let (Some((_, name)), None) = (names.next(), names.next()) else {
            return false;
        };
        match parse::<Text<'_>>(name.get()) {
            Ok(name) => self.visibility.shows(kind, &name.0),
            Err(_) => false,
        }
    }
}

fn parse<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, ListFilterError> {
    serde_json::from_str(text).map_err(|_| ListFilterError::Unreadable)
}

/// An object from its members' keys and (raw JSON) values.
/// Each member's value as it is: what [`object`] writes back for members left alone.
fn unchanged<'a>(members: &[(Text<'_>, &'a RawValue)]) -> Vec<Cow<'a, str>> {
    members
        .iter()
        .map(|(_, v)| Cow::Borrowed(v.get()))
        .collect()
}

fn object(members: &[(Text<'_>, &RawValue)], values: &[Cow<'_, str>]) -> String {
    let mut out = String::from("{");
    for (i, ((key, _), value)) in members.iter().zip(values).enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_string(&mut out, &key.0);
        out.push(':');
        out.push_str(value);
    }
    out.push('}');
    out
}

/// RFC 8259 §7: quotes, backslashes and control characters escaped.
fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some(&first) = needle.first() else {
        return true;
    };
    let mut rest = haystack;
    while let Some(at) = rest.iter().position(|&b| b == first) {
        if rest[at..].starts_with(needle) {
            return true;
        }
        rest = &rest[at + 1..];
    }
    false
}

/// Whether `bytes` hold `\u0040`–`\u007f`: how an escaped ASCII letter is spelled. Encoders
/// escape non-ASCII (`\u00e9`) and HTML characters (`\u003c`), never letters.
fn escaped_letter(bytes: &[u8]) -> bool {
    bytes
        .windows(6)
        .any(|w| w.starts_with(b"\\u00") && matches!(w[4], b'4'..=b'7') && w[5].is_ascii_hexdigit())
}

/// A JSON string, borrowed from the input unless it holds escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// An object's members in order, duplicates kept (every one is filtered), values unparsed.
struct Members<'a>(Vec<(Text<'a>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(member) = map.next_entry::<Text<'de>, &'de RawValue>()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

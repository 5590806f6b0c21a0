//! One JSON-RPC message (or batch) with the items its caller may not see removed: the
//! byte test that spares the parse, and the one-pass read that keeps everything it does not
//! remove exactly as sent (kept items, members, keys and whitespace are copied, never
//! re-encoded).

use mcp_auth_proto::listing::{ListKind, Visibility};

use super::ListFilterError;
use super::reader::{Malformed, Reader};

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
    /// was removed. One pass: the reader descends into `result` members and their lists and
    /// steps over everything else; the output is the input with the rewritten spans
    /// replaced, every other byte as sent.
    pub(super) fn filter_message(
        &self,
        text: &str,
    ) -> Result<Option<(String, usize)>, ListFilterError> {
        let mut reader = Reader::new(text);
        let mut edits = Edits::default();
        let read = match reader.peek() {
            Some(b'{') => self.response(&mut reader, &mut edits),
            Some(b'[') => reader.array(|reader| match reader.peek() {
                Some(b'{') => self.response(reader, &mut edits),
                _ => reader.skip_value(),
            }),
            // Valid JSON that is no message passes; anything else may be a list misread.
            _ => reader.skip_value(),
        };
        read.and_then(|()| reader.finish())
            .map_err(|Malformed| ListFilterError::Unreadable)?;
        let removed = edits.removed;
        Ok((removed > 0).then(|| (edits.apply(text), removed)))
    }

    /// A JSON-RPC object: every `result` member filtered.
    fn response(&self, reader: &mut Reader<'_>, edits: &mut Edits) -> Result<(), Malformed> {
        reader.object(|reader, key| {
            if key.text == "result" && reader.peek() == Some(b'{') {
                self.result(reader, edits)
            } else {
                reader.skip_value()
            }
        })
    }

    /// A result object: every list array of a hiding kind filtered; its `cacheScope` made
    /// `"private"` when something was removed.
    fn result(&self, reader: &mut Reader<'_>, edits: &mut Edits) -> Result<(), Malformed> {
        let removed_before = edits.removed;
        let mut cache_scopes = Vec::new();
        reader.object(|reader, key| {
            let kind = self
                .hiding
                .iter()
                .find(|(kind, _)| kind.array() == key.text)
                .map(|(kind, _)| *kind);
            match kind {
                Some(kind) if reader.peek() == Some(b'[') => self.list(reader, kind, edits),
                _ if key.text == "cacheScope" => {
                    let start = reader.pos();
                    reader.skip_value()?;
                    cache_scopes.push((start, reader.pos()));
                    Ok(())
                }
                _ => reader.skip_value(),
            }
        })?;
        if edits.removed > removed_before {
            for (start, end) in cache_scopes {
                edits.spans.push((start, end, Replacement::Private));
            }
        }
        Ok(())
    }

    /// A list array: replaced by its shown items when some are hidden.
    fn list(
        &self,
        reader: &mut Reader<'_>,
        kind: ListKind,
        edits: &mut Edits,
    ) -> Result<(), Malformed> {
        let start = reader.pos();
        let mut kept = Vec::new();
        let mut hidden = 0;
        reader.array(|reader| {
            let item_start = reader.pos();
            if self.item_shown(reader, kind)? {
                kept.push((item_start, reader.pos()));
            } else {
                hidden += 1;
            }
            Ok(())
        })?;
        if hidden > 0 {
            edits.removed += hidden;
            edits
                .spans
                .push((start, reader.pos(), Replacement::Items(kept)));
        }
        Ok(())
    }

    /// Whether an item is shown: an object with exactly one name field, a string the client
    /// reads as we do, that the visibility shows.
    fn item_shown(&self, reader: &mut Reader<'_>, kind: ListKind) -> Result<bool, Malformed> {
        if reader.peek() != Some(b'{') {
            reader.skip_value()?;
            return Ok(false);
        }
        let mut names = 0;
        let mut shown = false;
        reader.object(|reader, key| {
            if key.text != kind.name_field() {
                return reader.skip_value();
            }
            names += 1;
            if reader.peek() == Some(b'"') {
                let name = reader.string()?;
                shown = name.exact && self.visibility.shows(kind, &name.text);
                Ok(())
            } else {
                shown = false;
                reader.skip_value()
            }
        })?;
        Ok(names == 1 && shown)
    }
}

/// What replaces a span of the message.
enum Replacement {
    /// A list array: only these items (spans of the message), in order.
    Items(Vec<(usize, usize)>),
    /// A `cacheScope` value.
    Private,
}

/// The rewrites of one message, and how many items they remove.
#[derive(Default)]
struct Edits {
    spans: Vec<(usize, usize, Replacement)>,
    removed: usize,
}

impl Edits {
    /// `text` with every span replaced (spans never overlap: each is a distinct member's
    /// value).
    fn apply(mut self, text: &str) -> String {
        self.spans.sort_by_key(|(start, _, _)| *start);
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        for (start, end, replacement) in &self.spans {
            out.push_str(&text[copied..*start]);
            match replacement {
                Replacement::Items(items) => {
                    out.push('[');
                    for (i, (from, to)) in items.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push_str(&text[*from..*to]);
                    }
                    out.push(']');
                }
                Replacement::Private => out.push_str("\"private\""),
            }
            copied = *end;
        }
        out.push_str(&text[copied..]);
        out
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

/// Whether `bytes` hold `\u0040`–`\u007f`: how an escaped ASCII letter is spelled. Encoders
/// escape non-ASCII (`\u00e9`) and HTML characters (`\u003c`), never letters.
fn escaped_letter(bytes: &[u8]) -> bool {
    memchr::memmem::find_iter(bytes, b"\\u00").any(|at| {
        matches!(bytes.get(at + 4), Some(b'4'..=b'7'))
            && bytes.get(at + 5).is_some_and(u8::is_ascii_hexdigit)
    })
}

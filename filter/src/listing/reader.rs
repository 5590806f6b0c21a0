//! A validating JSON reader (RFC 8259) that walks a message once, in place: the list filter
//! descends into the members it rewrites and steps over everything else, learning each
//! value's byte span as it goes. One pass over the bytes, where parsing every level with
//! `serde_json` into raw values read the items four times (message, result, array, item).
//!
//! - Strict: it accepts exactly the grammar of RFC 8259 §2–§7 (no trailing commas, no
//!   comments, no leading zeros, control characters escaped), and nests at most
//!   [`MAX_DEPTH`] deep (`serde_json`'s limit). Input is `&str`, so UTF-8 is already valid.
//! - Keys and the strings the caller asks for are decoded as a client decodes them
//!   (`\u0061` is `a`, surrogate pairs joined); a lone surrogate decodes to U+FFFD and is
//!   reported as inexact, so no rule can match a name a client would read differently.

use std::borrow::Cow;

/// How deep arrays and objects may nest.
pub(super) const MAX_DEPTH: usize = 128;

/// The text is not JSON (or nests deeper than [`MAX_DEPTH`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Malformed;

/// A decoded JSON string; `exact` is false when a lone surrogate had to be replaced.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Decoded<'a> {
    pub text: Cow<'a, str>,
    pub exact: bool,
}

/// A cursor over one JSON text.
pub(super) struct Reader<'a> {
    text: &'a str,
    pos: usize,
    depth: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Self {
            text,
            pos: 0,
            depth: 0,
        }
    }

    /// Byte offset of the cursor.
    pub(super) fn pos(&self) -> usize {
        self.pos
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes().get(self.pos) {
            self.pos += 1;
        }
    }

    /// The next byte after whitespace (the cursor moves past the whitespace).
    pub(super) fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.bytes().get(self.pos).copied()
    }

    fn expect(&mut self, byte: u8) -> Result<(), Malformed> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(Malformed)
        }
    }

    /// Only whitespace is left.
    pub(super) fn finish(&mut self) -> Result<(), Malformed> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(Malformed),
        }
    }

    /// Steps over one value of any kind.
    pub(super) fn skip_value(&mut self) -> Result<(), Malformed> {
        match self.peek().ok_or(Malformed)? {
            b'{' => self.object(|reader, _| reader.skip_value()),
            b'[' => self.array(Reader::skip_value),
            b'"' => self.skip_string(),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err(Malformed),
        }
    }

    /// An object at the cursor: `member` is called with each key (decoded) and must read the
    /// member's value, with [`Reader::skip_value`] or deeper.
    pub(super) fn object(
        &mut self,
        mut member: impl FnMut(&mut Self, Decoded<'a>) -> Result<(), Malformed>,
    ) -> Result<(), Malformed> {
        self.container(b'{', b'}', |reader| {
            if reader.peek() != Some(b'"') {
                return Err(Malformed);
            }
            let key = reader.string()?;
            reader.expect(b':')?;
            reader.skip_whitespace();
            member(reader, key)
        })
    }

    /// An array at the cursor: `element` is called at the start of each element (whitespace
    /// skipped, so [`Reader::pos`] is where it begins) and must read it.
    pub(super) fn array(
        &mut self,
        element: impl FnMut(&mut Self) -> Result<(), Malformed>,
    ) -> Result<(), Malformed> {
        self.container(b'[', b']', element)
    }

    /// `open`, comma-separated entries each read by `entry` (called after whitespace),
    /// `close`; no trailing comma; at most [`MAX_DEPTH`] containers deep.
    fn container(
        &mut self,
        open: u8,
        close: u8,
        mut entry: impl FnMut(&mut Self) -> Result<(), Malformed>,
    ) -> Result<(), Malformed> {
        self.expect(open)?;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Malformed);
        }
        if self.peek() != Some(close) {
            loop {
                self.skip_whitespace();
                entry(self)?;
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(byte) if byte == close => break,
                    _ => return Err(Malformed),
                }
            }
        }
        self.pos += 1;
        self.depth -= 1;
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), Malformed> {
        if self.bytes()[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(Malformed)
        }
    }

    /// RFC 8259 §6: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Result<(), Malformed> {
        let bytes = self.bytes();
        let digits = |at: usize| {
            bytes[at..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count()
        };
        let mut at = self.pos;
        if bytes.get(at) == Some(&b'-') {
            at += 1;
        }
        match bytes.get(at) {
            Some(b'0') => at += 1,
            Some(b'1'..=b'9') => at += digits(at),
            _ => return Err(Malformed),
        }
        if bytes.get(at) == Some(&b'.') {
            let n = digits(at + 1);
            if n == 0 {
                return Err(Malformed);
            }
            at += 1 + n;
        }
        if let Some(b'e' | b'E') = bytes.get(at) {
            at += 1;
            if let Some(b'+' | b'-') = bytes.get(at) {
                at += 1;
            }
            let n = digits(at);
            if n == 0 {
                return Err(Malformed);
            }
            at += n;
        }
        self.pos = at;
        Ok(())
    }

    /// Steps over a string at the cursor, checking its escapes.
    fn skip_string(&mut self) -> Result<(), Malformed> {
        self.scan_string(|_| Ok(())).map(|_| ())
    }

    /// The string at the cursor, decoded (borrowed when it holds no escape).
    pub(super) fn string(&mut self) -> Result<Decoded<'a>, Malformed> {
        let start = self.pos + 1;
        let mut decoded: Option<String> = None;
        let mut exact = true;
        let text = self.text;
        let end = self.scan_string(|escape| {
            let out = decoded.get_or_insert_with(String::new);
            match escape {
                Escape::Run(from, to) => out.push_str(&text[from..to]),
                Escape::Char(c) => out.push(c),
                Escape::LoneSurrogate => {
                    out.push('\u{fffd}');
                    exact = false;
                }
            }
            Ok(())
        })?;
        let text = match decoded {
            None => Cow::Borrowed(&text[start..end]),
            Some(out) => Cow::Owned(out),
        };
        Ok(Decoded { text, exact })
    }
}

/// What [`Reader::scan_string`] reports for each escape: the plain run before it, then
/// the character it stands for.
enum Escape {
    Run(usize, usize),
    Char(char),
    LoneSurrogate,
}

impl Reader<'_> {
    /// Scans a string from its opening quote to past its closing one; returns the offset of
    /// the closing quote. A string with escapes is reported piece by piece: each plain run,
    /// each escape, and the last run.
    fn scan_string(
        &mut self,
        mut on_escape: impl FnMut(Escape) -> Result<(), Malformed>,
    ) -> Result<usize, Malformed> {
        let bytes = self.text.as_bytes();
        let mut at = self.pos + 1;
        let mut run_start = at;
        let mut escaped = false;
        loop {
            let Some(&byte) = bytes.get(at) else {
                return Err(Malformed);
            };
            match byte {
                b'"' => {
                    if escaped {
                        on_escape(Escape::Run(run_start, at))?;
                    }
                    self.pos = at + 1;
                    return Ok(at);
                }
                b'\\' => {
                    escaped = true;
                    on_escape(Escape::Run(run_start, at))?;
                    let (escape, len) = unescape(bytes, at)?;
                    on_escape(escape)?;
                    at += len;
                    run_start = at;
                }
                0..=0x1f => return Err(Malformed),
                _ => at += 1,
            }
        }
    }
}

/// The escape at `bytes[at]` (a backslash) and its length.
fn unescape(bytes: &[u8], at: usize) -> Result<(Escape, usize), Malformed> {
    let simple = |c| Ok((Escape::Char(c), 2));
    match bytes.get(at + 1) {
        Some(b'"') => simple('"'),
        Some(b'\\') => simple('\\'),
        Some(b'/') => simple('/'),
        Some(b'b') => simple('\u{8}'),
        Some(b'f') => simple('\u{c}'),
        Some(b'n') => simple('\n'),
        Some(b'r') => simple('\r'),
        Some(b't') => simple('\t'),
        Some(b'u') => {
            let high = hex4(bytes, at + 2)?;
            if (0xd800..0xdc00).contains(&high) {
                // A high surrogate: joined with a low one that follows, else alone.
                if bytes.get(at + 6) == Some(&b'\\') && bytes.get(at + 7) == Some(&b'u') {
                    let low = hex4(bytes, at + 8)?;
                    if (0xdc00..0xe000).contains(&low) {
                        let code = 0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00);
                        let c = char::from_u32(code).ok_or(Malformed)?;
                        return Ok((Escape::Char(c), 12));
                    }
                }
                return Ok((Escape::LoneSurrogate, 6));
            }
            match char::from_u32(high) {
                Some(c) => Ok((Escape::Char(c), 6)),
                None => Ok((Escape::LoneSurrogate, 6)),
            }
        }
        _ => Err(Malformed),
    }
}

fn hex4(bytes: &[u8], at: usize) -> Result<u32, Malformed> {
    let digits = bytes.get(at..at + 4).ok_or(Malformed)?;
    digits.iter().try_fold(0u32, |acc, &b| {
        let digit = char::from(b).to_digit(16).ok_or(Malformed)?;
        Ok(acc * 16 + digit)
    })
}

#[cfg(test)]
mod tests;

//! Removes the tools, prompts and resources a caller may not see from `*/list` results as the
//! response streams back (`mcp_auth_proto::listing` says who decides what is shown).
//!
//! - Fail closed. An item without a string name is removed; a message that may hold a list
//!   but is not JSON the filter can read, and a body or SSE event larger than the buffer, are
//!   errors (the caller answers 502 or ends the stream) rather than unfiltered data.
//! - Cheap when nothing can be hidden: a [`Visibility`] that shows everything passes bytes
//!   through untouched, and a message is parsed only when its bytes hold `"result"` and the
//!   array name of a kind that hides something, or an ASCII letter written as a `\u00XX`
//!   escape (which could spell either). A message's JSON is never re-encoded item by item:
//!   kept items, and every member the filter does not rewrite, are copied as sent.
//! - `application/json` is one message or a batch, buffered to the end. `text/event-stream`
//!   is cut into events (WHATWG HTML §9.2.6: lines end in CRLF, LF or CR; a blank line ends
//!   an event; `data` lines joined by LF are its message) and each event leaves as soon as its
//!   blank line arrives, so a long-lived stream is never held back. A rewritten event keeps
//!   its other lines and carries its data as one `data:` line; every other event passes byte
//!   for byte.
//! - A CR at the end of a chunk ends its line; an LF opening the next chunk belongs to the
//!   same line ending (CRLF) and is not a blank line.
//! - An item removed from a result that carries `cacheScope` makes it `"private"` (MCP
//!   2026-07-28): the list is now this caller's, not the server's.

use std::borrow::Cow;

use mcp_auth_proto::listing::Visibility;

use message::Policy;

mod message;
mod reader;

/// How a response body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `application/json`: one JSON-RPC message or a batch.
    Json,
    /// `text/event-stream`: server-sent events, one JSON-RPC message per event.
    EventStream,
}

/// The framing of a response by its `Content-Type` (parameters and case ignored); `None` for
/// any other type, which MCP clients do not read as JSON-RPC and the filter leaves alone.
pub fn framing(content_type: &[u8]) -> Option<Framing> {
    let essence = content_type.split(|&b| b == b';').next()?.trim_ascii();
    if essence.eq_ignore_ascii_case(b"application/json") {
        Some(Framing::Json)
    } else if essence.eq_ignore_ascii_case(b"text/event-stream") {
        Some(Framing::EventStream)
    } else {
        None
    }
}

/// Why a response cannot be passed on filtered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListFilterError {
    /// The JSON body, or one incomplete SSE event, outgrew the buffer.
    #[error("the response needs more than the {limit}-byte list filter buffer")]
    TooLarge { limit: usize },
    /// A message that may hold a list is not JSON (or not UTF-8).
    #[error("a response message that may hold a list is not readable JSON")]
    Unreadable,
}

const CR: u8 = b'\r';
const LF: u8 = b'\n';
const BOM: &[u8] = "\u{feff}".as_bytes();

/// Filters one response body, chunk by chunk.
pub struct ListFilter {
    framing: Framing,
    policy: Option<Policy>,
    max_buffer: usize,
    /// Json: the body so far. EventStream: the incomplete event.
    buffer: Vec<u8>,
    /// EventStream: how far `buffer` has been scanned, where its current line starts, and
    /// whether the last byte scanned was a CR (an LF next is part of that line ending).
    scanned: usize,
    line_start: usize,
    after_cr: bool,
    /// EventStream: no event has been completed yet (only the first may start with a BOM).
    first_event: bool,
    hidden: usize,
    failed: Option<ListFilterError>,
}

impl ListFilter {
    /// A filter for a body of `framing` shown to a caller with `visibility`, buffering at
    /// most `max_buffer` bytes (the whole body for Json, the incomplete event for SSE).
    pub fn new(framing: Framing, visibility: Visibility, max_buffer: usize) -> Self {
        Self {
            framing,
            policy: Policy::new(visibility),
            max_buffer,
            buffer: Vec::new(),
            scanned: 0,
            line_start: 0,
            after_cr: false,
            first_event: true,
            hidden: 0,
            failed: None,
        }
    }

    /// Feeds the next chunk of the body (`end`: the last one); returns the bytes to send on
    /// now. After an error every call returns that error again.
    pub fn push(&mut self, chunk: &[u8], end: bool) -> Result<Vec<u8>, ListFilterError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        if self.policy.is_none() {
            return Ok(chunk.to_vec());
        }
        let result = match self.framing {
            Framing::Json => self.push_json(chunk, end),
            Framing::EventStream => self.push_events(chunk, end),
        };
        if let Err(error) = &result {
            self.failed = Some(error.clone());
            self.buffer = Vec::new();
        }
        result
    }

    /// Items removed so far.
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    fn push_json(&mut self, chunk: &[u8], end: bool) -> Result<Vec<u8>, ListFilterError> {
        if self.buffer.len().saturating_add(chunk.len()) > self.max_buffer {
            return Err(ListFilterError::TooLarge {
                limit: self.max_buffer,
            });
        }
        self.buffer.extend_from_slice(chunk);
        if !end {
            return Ok(Vec::new());
        }
        let body = std::mem::take(&mut self.buffer);
        let Some(policy) = &self.policy else {
            return Ok(body);
        };
        // A UTF-8 BOM is dropped by fetch's JSON reading; keep it, filter what follows.
        let (bom, json) = match body.strip_prefix(BOM) {
            Some(rest) => (BOM, rest),
            None => (&[][..], &body[..]),
        };
        if !policy.may_hold_list(json) {
            return Ok(body);
        }
        let text = std::str::from_utf8(json).map_err(|_| ListFilterError::Unreadable)?;
        match policy.filter_message(text)? {
            None => Ok(body),
            Some((filtered, removed)) => {
                self.hidden += removed;
                Ok([bom, filtered.as_bytes()].concat())
            }
        }
    }

    fn push_events(&mut self, chunk: &[u8], end: bool) -> Result<Vec<u8>, ListFilterError> {
        let mut out = Vec::with_capacity(chunk.len());
        self.buffer.extend_from_slice(chunk);
        // Where the event being scanned starts in `buffer`.
        let mut event_start = 0;
        let mut i = self.scanned;
        while i < self.buffer.len() {
            if std::mem::take(&mut self.after_cr) && self.buffer[i] == LF {
                i += 1;
                self.line_start = i;
                if event_start + 1 == i {
                    // The rest of the CRLF that ended the event before: already sent.
                    out.push(LF);
                    event_start = i;
                }
                continue;
            }
            // Straight to the next line ending.
            let Some(at) = memchr::memchr2(CR, LF, &self.buffer[i..]) else {
                break;
            };
            let byte = self.buffer[i + at];
            i += at + 1;
            // The BOM that may open a stream is no part of its first line.
            let blank = self.line_start + 1 == i
                || (self.first_event
                    && self.line_start == 0
                    && i == BOM.len() + 1
                    && self.buffer.starts_with(BOM));
            self.after_cr = byte == CR;
            if blank && byte == CR && self.buffer.get(i) == Some(&LF) {
                i += 1;
                self.after_cr = false;
            }
            self.line_start = i;
            if blank {
                self.event(event_start, i, &mut out)?;
                event_start = i;
            }
        }
        if end {
            // An event the stream ended inside is not dispatched by a conforming client;
            // filtered all the same, for those that do.
            if event_start < self.buffer.len() {
                self.event(event_start, self.buffer.len(), &mut out)?;
            }
            self.buffer.clear();
            self.scanned = 0;
            self.line_start = 0;
            self.after_cr = false;
            self.first_event = true;
            return Ok(out);
        }
        self.buffer.drain(..event_start);
        self.scanned = self.buffer.len();
        self.line_start -= event_start;
        if self.buffer.len() > self.max_buffer {
            return Err(ListFilterError::TooLarge {
                limit: self.max_buffer,
            });
        }
        Ok(out)
    }

    /// Sends on the event `buffer[start..end]`, filtered.
    fn event(
        &mut self,
        start: usize,
        end: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), ListFilterError> {
        let raw = &self.buffer[start..end];
        let first = std::mem::replace(&mut self.first_event, false);
        let Some(policy) = &self.policy else {
            out.extend_from_slice(raw);
            return Ok(());
        };
        if !policy.may_hold_list(raw) {
            out.extend_from_slice(raw);
            return Ok(());
        }
        let (bom, body) = match raw.strip_prefix(BOM) {
            Some(rest) if first => (BOM, rest),
            _ => (&[][..], raw),
        };
        let lines = lines(body);
        // Borrowed for the usual event of one data line.
        let mut data: Option<Cow<'_, [u8]>> = None;
        for (line, _) in &lines {
            if let Some(value) = data_value(line) {
                match &mut data {
                    Some(data) => {
                        let data = data.to_mut();
                        data.push(LF);
                        data.extend_from_slice(value);
                    }
                    None => data = Some(Cow::Borrowed(value)),
                }
            }
        }
        // No data line: a comment or a retry/id change, never dispatched as a message.
        let Some(data) = data else {
            out.extend_from_slice(raw);
            return Ok(());
        };
        let message = String::from_utf8_lossy(&data);
        let Some((filtered, removed)) = policy.filter_message(&message)? else {
            out.extend_from_slice(raw);
            return Ok(());
        };
        self.hidden += removed;
        out.extend_from_slice(bom);
        let mut data_written = false;
        for (line, ending) in &lines {
            if data_value(line).is_none() {
                out.extend_from_slice(line);
            } else if !std::mem::replace(&mut data_written, true) {
                out.extend_from_slice(b"data: ");
                // Line breaks in valid JSON are whitespace between tokens (and come only
                // from joined data lines: one line's value holds none).
                if memchr::memchr2(CR, LF, filtered.as_bytes()).is_some() {
                    out.extend(
                        filtered
                            .bytes()
                            .map(|b| if b == CR || b == LF { b' ' } else { b }),
                    );
                } else {
                    out.extend_from_slice(filtered.as_bytes());
                }
            } else {
                continue;
            }
            out.extend_from_slice(ending);
        }
        Ok(())
    }
}

/// The lines of an event, each with its line ending (empty for a last line without one).
fn lines(event: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut lines = Vec::new();
    let mut rest = event;
    while !rest.is_empty() {
        let Some(at) = memchr::memchr2(CR, LF, rest) else {
            lines.push((rest, &[][..]));
            break;
        };
        let ending = if rest[at] == CR && rest.get(at + 1) == Some(&LF) {
            2
        } else {
            1
        };
        lines.push((&rest[..at], &rest[at..at + ending]));
        rest = &rest[at + ending..];
    }
    lines
}

/// The value of a `data` field line (one leading space dropped), `None` for any other line.
fn data_value(line: &[u8]) -> Option<&[u8]> {
    let value = line.strip_prefix(b"data")?;
    if value.is_empty() {
        return Some(value);
    }
    let value = value.strip_prefix(b":")?;
    Some(value.strip_prefix(b" ").unwrap_or(value))
}

#[cfg(test)]
mod tests;

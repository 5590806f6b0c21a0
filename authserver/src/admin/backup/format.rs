//! The backup file, line by line (the format is described in [`super`]): writing a line,
//! and reading and validating a whole file before anything is restored.

use std::collections::HashSet;

use mcp_auth_proto::store::KeySpace;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

/// The header's `format`.
pub const FORMAT: &str = "mcp-mesh-auth-backup";
/// The header's `version`: the only one this build reads and writes.
pub const VERSION: u64 = 1;

/// Why a backup file cannot be restored. Found before anything is written.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("line 1: not an mcp-mesh-auth backup (the header's `format` must be {FORMAT:?})")]
    UnknownFormat,
    #[error(
        "line 1: backup format version {0} is not supported (this build reads version {VERSION})"
    )]
    UnsupportedVersion(String),
    #[error("line {line}: {problem}")]
    Malformed { line: usize, problem: String },
    #[error("the header announces {announced} records but the file holds {found}: truncated?")]
    Count { announced: usize, found: usize },
}

/// The first line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub format: String,
    pub version: u64,
    /// RFC 3339 UTC, for people.
    pub created_at: String,
    /// Unix milliseconds: every record's `ttl_ms` counts from here.
    pub created_at_ms: u64,
    /// The prefix the keys were read under (a restore uses its own config's).
    pub key_prefix: String,
    /// How many record lines follow.
    pub records: usize,
}

/// What a record line holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    SigningKey,
    Revocation,
    Client,
    User,
    Grant,
    RefreshToken,
    Consent,
}

impl RecordKind {
    /// In restore order: keys, then revocations first (a restored grant is never live
    /// without its revocation), then what others point to before what points to it.
    pub const ALL: [RecordKind; 7] = [
        RecordKind::SigningKey,
        RecordKind::Revocation,
        RecordKind::Client,
        RecordKind::User,
        RecordKind::Grant,
        RecordKind::RefreshToken,
        RecordKind::Consent,
    ];

    pub fn plural(self) -> &'static str {
        match self {
            RecordKind::SigningKey => "signing keys",
            RecordKind::Revocation => "revocations",
            RecordKind::Client => "clients",
            RecordKind::User => "users",
            RecordKind::Grant => "grants",
            RecordKind::RefreshToken => "refresh tokens",
            RecordKind::Consent => "consents",
        }
    }

    /// What the relative keys of this kind start with (`None` for key files).
    pub fn namespace(self) -> Option<String> {
        let keys = KeySpace::new("");
        match self {
            RecordKind::SigningKey => None,
            RecordKind::Revocation => Some(keys.revocation_namespace()),
            RecordKind::Client => Some(keys.client("")),
            RecordKind::User => Some(keys.user("")),
            RecordKind::Grant => Some(keys.grant("")),
            RecordKind::RefreshToken => Some(keys.refresh_token("")),
            RecordKind::Consent => Some(keys.consent_namespace()),
        }
    }
}

/// A Redis value as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredValue {
    /// A JSON string record.
    String(String),
    /// A hash (refresh tokens): field and value pairs.
    Hash(Vec<(String, String)>),
}

/// A validated record line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Redis {
        kind: RecordKind,
        key_suffix: String,
        /// Remaining TTL at the header's `created_at_ms`; `None`: no TTL.
        ttl_ms: Option<u64>,
        value: StoredValue,
    },
    SigningKey {
        file: String,
        /// The key file's text, byte for byte.
        contents: String,
    },
}

impl Record {
    pub fn kind(&self) -> RecordKind {
        match self {
            Record::Redis { kind, .. } => *kind,
            Record::SigningKey { .. } => RecordKind::SigningKey,
        }
    }
}

/// The value of a refresh token line: its hash, `data` embedded as JSON.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshValue<'a> {
    #[serde(borrow)]
    data: &'a RawValue,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rotated: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    successor: Option<String>,
}

/// One record line as it is written and read.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line<'a> {
    kind: RecordKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_suffix: Option<String>,
    /// Absent: not given (an error for Redis records); `null`: no TTL.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    ttl_ms: Option<Option<u64>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    value: Option<&'a RawValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    contents: Option<String>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// Embeds stored JSON text in a line: as is when it is one line (what the authserver
/// writes), compacted otherwise.
fn embed(json: &str) -> Result<Box<RawValue>, String> {
    if !json.contains(['\n', '\r']) {
        return RawValue::from_string(json.to_owned()).map_err(|e| e.to_string());
    }
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    RawValue::from_string(value.to_string()).map_err(|e| e.to_string())
}

/// The text of one record line (no newline); fails when the record would not validate on
/// restore, so a backup never writes a file that cannot be restored.
pub fn write_line(record: &Record) -> Result<String, String> {
    validate(record)?;
    let line = match record {
        Record::Redis {
            kind,
            key_suffix,
            ttl_ms,
            value,
        } => {
            let embedded = match value {
                StoredValue::String(json) => embed(json)?,
                StoredValue::Hash(fields) => {
                    let field = |name: &str| fields.iter().find(|(f, _)| f == name).map(|(_, v)| v);
                    let data = embed(field("data").ok_or("a refresh token without data")?)?;
                    let hash = RefreshValue {
                        data: &data,
                        rotated: field("rotated").cloned(),
                        successor: field("successor").cloned(),
                    };
                    let text = serde_json::to_string(&hash).map_err(|e| e.to_string())?;
                    RawValue::from_string(text).map_err(|e| e.to_string())?
                }
            };
            serde_json::to_string(&Line {
                kind: *kind,
                key_suffix: Some(key_suffix.clone()),
                ttl_ms: Some(*ttl_ms),
                value: Some(&embedded),
                file: None,
                contents: None,
            })
        }
        Record::SigningKey { file, contents } => serde_json::to_string(&Line {
            kind: RecordKind::SigningKey,
            key_suffix: None,
            ttl_ms: None,
            value: None,
            file: Some(file.clone()),
            contents: Some(contents.clone()),
        }),
    };
    line.map_err(|e| e.to_string())
}

/// A backup file read and validated whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupFile {
    pub header: Header,
    pub records: Vec<Record>,
}

/// Reads a whole backup file: the header first (an unknown format or version is refused
/// before any record is looked at), then every record, each validated; a key or file that
/// appears twice, and a record count that differs from the header's, are refused too.
pub fn parse(text: &str) -> Result<BackupFile, FormatError> {
    let mut lines = text.strip_suffix('\n').unwrap_or(text).split('\n');
    let header = parse_header(lines.next().unwrap_or_default())?;
    let mut records = Vec::with_capacity(header.records);
    let mut seen = HashSet::new();
    for (index, line) in lines.enumerate() {
        let number = index + 2;
        let malformed = |problem: String| FormatError::Malformed {
            line: number,
            problem,
        };
        let record = parse_line(line).map_err(malformed)?;
        let id = match &record {
            Record::Redis { key_suffix, .. } => format!("key {key_suffix}"),
            Record::SigningKey { file, .. } => format!("file {file}"),
        };
        if !seen.insert(id.clone()) {
            return Err(malformed(format!("{id} appears twice")));
        }
        records.push(record);
    }
    if records.len() != header.records {
        return Err(FormatError::Count {
            announced: header.records,
            found: records.len(),
        });
    }
    Ok(BackupFile { header, records })
}

fn parse_header(line: &str) -> Result<Header, FormatError> {
    let probe: serde_json::Value =
        serde_json::from_str(line).map_err(|_| FormatError::UnknownFormat)?;
    if probe.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
        return Err(FormatError::UnknownFormat);
    }
    match probe.get("version") {
        Some(v) if v.as_u64() == Some(VERSION) => {}
        Some(v) => return Err(FormatError::UnsupportedVersion(v.to_string())),
        None => return Err(FormatError::UnsupportedVersion("(none)".to_owned())),
    }
    serde_json::from_value(probe).map_err(|e| FormatError::Malformed {
        line: 1,
        problem: format!("header: {e}"),
    })
}

fn parse_line(line: &str) -> Result<Record, String> {
    let line: Line<'_> = serde_json::from_str(line).map_err(|e| format!("not a record: {e}"))?;
    let record = match line {
        Line {
            kind: RecordKind::SigningKey,
            key_suffix: None,
            ttl_ms: None,
            value: None,
            file: Some(file),
            contents: Some(contents),
        } => Record::SigningKey { file, contents },
        Line {
            kind: RecordKind::SigningKey,
            ..
        } => return Err("a signing_key line has `file` and `contents` only".to_owned()),
        Line {
            kind,
            key_suffix: Some(key_suffix),
            ttl_ms: Some(ttl_ms),
            value: Some(value),
            file: None,
            contents: None,
        } => {
            let value = if kind == RecordKind::RefreshToken {
                let hash: RefreshValue<'_> = serde_json::from_str(value.get())
                    .map_err(|e| format!("not a refresh token hash: {e}"))?;
                let mut fields = vec![("data".to_owned(), hash.data.get().to_owned())];
                fields.extend(hash.rotated.map(|v| ("rotated".to_owned(), v)));
                fields.extend(hash.successor.map(|v| ("successor".to_owned(), v)));
                StoredValue::Hash(fields)
            } else {
                StoredValue::String(value.get().to_owned())
            };
            Record::Redis {
                kind,
                key_suffix,
                ttl_ms,
                value,
            }
        }
        Line { .. } => {
            return Err(
                "a Redis record has `key_suffix`, `ttl_ms` (null: no TTL) and `value` only"
                    .to_owned(),
            );
        }
    };
    validate(&record)?;
    Ok(record)
}

mod validate;

pub use validate::validate;

#[cfg(test)]
mod tests;

//! `admin restore --from FILE`: writes a backup ([`super::backup`]) back into the config's
//! Redis (under its own `redis.key_prefix`) and key directory.
//!
//! - Nothing is written until the whole file is read and validated: an unknown `format` or
//!   `version`, a malformed line (named by its number), a truncated file, or a key file whose
//!   kid exists in the key directory with other contents is refused with nothing changed.
//! - Idempotent and never destructive: a record is created only where its key does not
//!   exist. An existing identical record counts as unchanged; an existing different one is
//!   kept as it is and counted (live state is never made older: a refresh token rotated
//!   since the backup stays rotated).
//! - TTLs: a record gets what was left of its TTL at backup time minus the time since; one
//!   whose TTL has run out since is skipped and counted as expired.
//! - Signing keys are written 0600 into `authserver.keys_dir` (0700), atomically.
//! - Order: keys, revocations, clients, users, grants, refresh tokens, consents, so that an
//!   interrupted restore never leaves a grant without its revocation (run it again).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mcp_auth_gateway::GatewayConfig;
use serde::Serialize;

use super::backup::format::{self, FormatError, Record, RecordKind, StoredValue};
use super::{AdminError, now_ms, store_for};
use crate::keys::KeyFile;
use crate::keys::file::{KeyFileError, ensure_dir, write_private};
use crate::store::{Store, StoreError};

/// Why a restore failed.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}; nothing was restored")]
    Format(#[from] FormatError),
    #[error(
        "authserver.keys_dir already holds a different key {file}; nothing was restored \
         (move it away to restore the backup's)"
    )]
    KeyConflict { file: String },
    #[error("authserver.keys_dir: {0}")]
    KeyFile(#[from] KeyFileError),
}

/// What happened to the records of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RestoreCounts {
    /// Written.
    pub restored: usize,
    /// Already there, identical.
    pub unchanged: usize,
    /// Already there with another value, left as it is.
    pub kept: usize,
    /// Skipped: the TTL ran out since the backup.
    pub expired: usize,
}

/// What a restore did, per kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RestoreReport {
    pub counts: BTreeMap<RecordKind, RestoreCounts>,
}

impl RestoreReport {
    pub fn of(&self, kind: RecordKind) -> RestoreCounts {
        self.counts.get(&kind).copied().unwrap_or_default()
    }

    fn entry(&mut self, kind: RecordKind) -> &mut RestoreCounts {
        self.counts.entry(kind).or_default()
    }
}

/// Restores the backup at `from` into `config`'s Redis and key directory.
pub async fn restore(config: &GatewayConfig, from: &Path) -> Result<RestoreReport, RestoreError> {
    let text = std::fs::read_to_string(from).map_err(|source| RestoreError::Read {
        path: from.to_owned(),
        source,
    })?;
    // Validated before connecting: a bad file is refused even with Redis down.
    let backup = format::parse(&text)?;
    let store = store_for(config)?;
    restore_parsed(&store, &config.authserver.keys_dir, backup, now_ms()).await
}

/// [`restore`] of the file `text` on `store` and `keys_dir` at `now_ms`.
pub async fn restore_in(
    store: &Store,
    keys_dir: &Path,
    text: &str,
    now_ms: u64,
) -> Result<RestoreReport, RestoreError> {
    restore_parsed(store, keys_dir, format::parse(text)?, now_ms).await
}

/// Whether a key file would be new (`true`) or is there already, identical (`false`).
fn key_file_is_new(dir: &Path, file: &str, contents: &str) -> Result<bool, RestoreError> {
    let path = dir.join(file);
    let existing = match std::fs::read_to_string(&path) {
        Ok(existing) => existing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(source) => return Err(KeyFileError::Io { path, source }.into()),
    };
    let same = existing == contents
        || matches!(
            (
                serde_json::from_str::<KeyFile>(&existing),
                serde_json::from_str::<KeyFile>(contents),
            ),
            (Ok(a), Ok(b)) if a == b
        );
    if same {
        Ok(false)
    } else {
        Err(RestoreError::KeyConflict {
            file: file.to_owned(),
        })
    }
}

async fn restore_parsed(
    store: &Store,
    keys_dir: &Path,
    backup: format::BackupFile,
    now_ms: u64,
) -> Result<RestoreReport, RestoreError> {
    let mut report = RestoreReport::default();
    let mut new_keys = Vec::new();
    for record in &backup.records {
        if let Record::SigningKey { file, contents } = record {
            if key_file_is_new(keys_dir, file, contents)? {
                new_keys.push((file, contents));
            } else {
                report.entry(RecordKind::SigningKey).unchanged += 1;
            }
        }
    }
    if !new_keys.is_empty() {
        ensure_dir(keys_dir)?;
    }
    for (file, contents) in new_keys {
        write_private(keys_dir, file, contents.as_bytes())?;
        report.entry(RecordKind::SigningKey).restored += 1;
    }

    let elapsed = now_ms.saturating_sub(backup.header.created_at_ms);
    for kind in RecordKind::ALL {
        for record in backup.records.iter().filter(|r| r.kind() == kind) {
            let Record::Redis {
                key_suffix,
                ttl_ms,
                value,
                ..
            } = record
            else {
                continue;
            };
            let counts = report.entry(kind);
            let ttl = match ttl_ms.map(|ttl| ttl.checked_sub(elapsed).filter(|t| *t > 0)) {
                Some(None) => {
                    counts.expired += 1;
                    continue;
                }
                Some(Some(ttl)) => Some(ttl),
                None => None,
            };
            let key = store.keys().absolute(key_suffix);
            if create(store, &key, value, ttl).await? {
                counts.restored += 1;
            } else if existing_equals(store, &key, value).await? {
                counts.unchanged += 1;
            } else {
                counts.kept += 1;
            }
        }
    }
    Ok(report)
}

/// Creates `key` unless it exists; true when written.
async fn create(
    store: &Store,
    key: &str,
    value: &StoredValue,
    ttl_ms: Option<u64>,
) -> Result<bool, StoreError> {
    match value {
        StoredValue::String(json) => store.create_string(key, json, ttl_ms).await,
        StoredValue::Hash(fields) => {
            let fields: Vec<(&str, &str)> = fields
                .iter()
                .map(|(f, v)| (f.as_str(), v.as_str()))
                .collect();
            store.create_hash(key, &fields, ttl_ms).await
        }
    }
}

/// True when `key` holds `value` (JSON compared as JSON, so key order does not matter).
async fn existing_equals(
    store: &Store,
    key: &str,
    value: &StoredValue,
) -> Result<bool, StoreError> {
    let keys = [key.to_owned()];
    let same_json = |a: &str, b: &str| {
        a == b
            || matches!(
                (
                    serde_json::from_str::<serde_json::Value>(a),
                    serde_json::from_str::<serde_json::Value>(b),
                ),
                (Ok(x), Ok(y)) if x == y
            )
    };
    Ok(match value {
        StoredValue::String(json) => store
            .read_strings(&keys)
            .await?
            .first()
            .is_some_and(|stored| same_json(&stored.value, json)),
        StoredValue::Hash(fields) => {
            let field = |name: &str| {
                fields
                    .iter()
                    .find(|(f, _)| f == name)
                    .map(|(_, v)| v.as_str())
            };
            store
                .read_refresh_tokens(&keys)
                .await?
                .first()
                .is_some_and(|t| {
                    field("data").is_some_and(|data| same_json(&t.data, data))
                        && t.rotated.as_deref() == field("rotated")
                        && t.successor.as_deref() == field("successor")
                })
        }
    })
}

#[cfg(test)]
mod tests;

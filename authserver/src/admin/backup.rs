//! `admin backup --out FILE`: clients, grants, refresh tokens, consents, users, revocations
//! and the signing keys, as versioned JSON lines (restored by [`super::restore`]).
//!
//! # Format (version 1)
//!
//! One JSON object per line. The first is the header:
//!
//! ```json
//! {"format":"mcp-mesh-auth-backup","version":1,"created_at":"2026-01-02T03:04:05.678Z",
//!  "created_at_ms":1767323045678,"key_prefix":"mcp-auth:","records":3}
//! ```
//!
//! then `records` lines, one per record (shown wrapped here):
//!
//! ```json
//! {"kind":"client","key_suffix":"client:abc","ttl_ms":7775990000,"value":{"client_id":"abc",…}}
//! {"kind":"refresh_token","key_suffix":"refresh:<digest>","ttl_ms":2591990000,
//!  "value":{"data":{"grant_id":"g1",…},"rotated":"1767323000","successor":"…"}}
//! {"kind":"signing_key","file":"<kid>.json","contents":"{\n  \"kid\": …}"}
//! ```
//!
//! - `kind`: `client`, `grant`, `refresh_token`, `consent`, `user`, `revocation` (Redis
//!   records) or `signing_key` (a file of `authserver.keys_dir`).
//! - `key_suffix`: the Redis key without `redis.key_prefix`, so a backup restores under
//!   any prefix.
//! - `ttl_ms`: the key's remaining TTL at the header's `created_at_ms`, `null` for none. A
//!   restore subtracts the time since, so expiring state stays expiring.
//! - `value`: the stored JSON record, embedded as stored; a refresh token is a hash, so its
//!   value holds its `data` record and, once rotated, `rotated` and `successor` as stored.
//! - `contents`: a key file's text, byte for byte (it holds a private key: the backup is
//!   written with mode 0600).
//!
//! Secrets are kept as stored: Redis holds digests of codes, refresh and registration
//! tokens and client secrets, never the secrets; the signing keys are the files themselves.
//! Codes and pending sign-ins (≤ 10 minutes) and rate-limit cells are not backed up, nor the
//! cookie key `session.key` (a new one only signs browsers out of the consent pages).
//!
//! # Consistency
//!
//! Redis offers no cheap snapshot of a key space short of `BGSAVE`, so a backup of a live
//! deployment reads kind by kind, one `SCAN` page at a time, each page's values and TTLs in
//! one `MULTI`. What the file guarantees:
//! - every record is whole, and its TTL is the one it had with that value;
//! - kinds are read referrers first (refresh tokens, grants, consents, users, clients): what
//!   a record points to is read after it, so it is in the file unless it was deleted
//!   meanwhile (a grant and its first refresh token are written in one `MULTI`);
//! - no record is in the file without the revocations written before it was read: the
//!   backup subscribes to the revocation channel before reading anything and adds every
//!   revocation published while it reads to the ones it scans last. A restore never revives
//!   a grant, user or client that was revoked when the backup read it;
//! - every line validates as the restore will validate it, and records are independent, so
//!   a write during the backup never makes the file unrestorable. At worst a refresh token
//!   rotated during the backup is restored unrotated without its successor: the client
//!   signs in again.
//!
//! The file is written to a temporary file beside FILE, then renamed over it.

pub mod format;

use std::collections::{BTreeMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use mcp_auth_gateway::GatewayConfig;
use mcp_auth_proto::store::match_prefix;
use serde::Serialize;

pub use self::format::RecordKind;
use self::format::{FORMAT, Header, Record, StoredValue, VERSION};
use super::{AdminError, now_ms, store_for};
use crate::store::inventory::SCAN_COUNT;
use crate::store::{Store, StoreError};

/// Why a backup failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{key}: {problem}; nothing was written")]
    Unrestorable { key: String, problem: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A backup in memory: the file's lines and how many records of each kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    pub header: Header,
    /// Every line, header first, without newlines.
    pub lines: Vec<String>,
    pub counts: BTreeMap<RecordKind, usize>,
}

impl Backup {
    /// The file's text.
    pub fn text(&self) -> String {
        let mut text = String::new();
        for line in &self.lines {
            text.push_str(line);
            text.push('\n');
        }
        text
    }
}

/// Backs up `config`'s Redis and key directory into `out` (see the module doc).
pub async fn backup(config: &GatewayConfig, out: &Path) -> Result<Backup, BackupError> {
    let store = store_for(config)?;
    let backup = backup_in(&store, &config.authserver.keys_dir, now_ms()).await?;
    write_private_atomically(out, backup.text().as_bytes())?;
    Ok(backup)
}

/// Collects records into lines.
struct Collector {
    started_ms: u64,
    lines: Vec<String>,
    counts: BTreeMap<RecordKind, usize>,
}

impl Collector {
    fn add(&mut self, key: &str, record: &Record) -> Result<(), BackupError> {
        let line = format::write_line(record).map_err(|problem| BackupError::Unrestorable {
            key: key.to_owned(),
            problem,
        })?;
        self.lines.push(line);
        *self.counts.entry(record.kind()).or_default() += 1;
        Ok(())
    }

    /// A TTL read at `read_ms` as one counted from the start of the backup.
    fn ttl_at_start(&self, ttl_ms: Option<u64>, read_ms: u64) -> Option<u64> {
        ttl_ms.map(|ttl| ttl.saturating_add(read_ms.saturating_sub(self.started_ms)))
    }

    /// Reads the string records of `kind` at `keys` (one `MULTI`).
    async fn strings(
        &mut self,
        store: &Store,
        kind: RecordKind,
        keys: &[String],
    ) -> Result<(), BackupError> {
        let read_ms = now_ms();
        for stored in store.read_strings(keys).await? {
            let record = Record::Redis {
                kind,
                key_suffix: relative(store, &stored.key),
                ttl_ms: self.ttl_at_start(stored.ttl_ms, read_ms),
                value: StoredValue::String(stored.value),
            };
            self.add(&stored.key, &record)?;
        }
        Ok(())
    }
}

fn relative(store: &Store, key: &str) -> String {
    store.keys().relative(key).unwrap_or(key).to_owned()
}

/// [`backup`] on `store` and `keys_dir`, in memory; `started_ms` is the header's
/// `created_at_ms` (now).
pub async fn backup_in(
    store: &Store,
    keys_dir: &Path,
    started_ms: u64,
) -> Result<Backup, BackupError> {
    let keys = store.keys();
    let mut revocations = store.follow_revocations().await?;
    let mut out = Collector {
        started_ms,
        lines: Vec::new(),
        counts: BTreeMap::new(),
    };

    let mut scan = store.scan(keys.refresh_token_pattern());
    while let Some(page) = scan.next_page().await? {
        let read_ms = now_ms();
        for token in store.read_refresh_tokens(&page).await? {
            let mut fields = vec![("data".to_owned(), token.data)];
            fields.extend(token.rotated.map(|v| ("rotated".to_owned(), v)));
            fields.extend(token.successor.map(|v| ("successor".to_owned(), v)));
            let record = Record::Redis {
                kind: RecordKind::RefreshToken,
                key_suffix: relative(store, &token.key),
                ttl_ms: out.ttl_at_start(token.ttl_ms, read_ms),
                value: StoredValue::Hash(fields),
            };
            out.add(&token.key, &record)?;
        }
    }
    for (kind, pattern) in [
        (RecordKind::Grant, keys.grant_pattern()),
        (RecordKind::Consent, keys.consent_pattern()),
        (RecordKind::User, match_prefix(&keys.user(""))),
        (RecordKind::Client, keys.client_pattern()),
    ] {
        let mut scan = store.scan(pattern);
        while let Some(page) = scan.next_page().await? {
            out.strings(store, kind, &page).await?;
        }
    }

    // Last: every revocation there is now, and every one published since the subscription.
    let mut revocation_keys: Vec<String> = store
        .scan_all(match_prefix(&keys.revocation_namespace()))
        .await?;
    let mut seen: HashSet<String> = revocation_keys.iter().cloned().collect();
    for event in revocations.published().await? {
        let key = keys.revocation(&event.target);
        if seen.insert(key.clone()) {
            revocation_keys.push(key);
        }
    }
    for chunk in revocation_keys.chunks(SCAN_COUNT) {
        out.strings(store, RecordKind::Revocation, chunk).await?;
    }

    for (file, contents) in read_key_files(keys_dir)? {
        let record = Record::SigningKey { file, contents };
        out.add(&keys_dir.display().to_string(), &record)?;
    }

    let header = Header {
        format: FORMAT.to_owned(),
        version: VERSION,
        created_at: rfc3339_ms(started_ms),
        created_at_ms: started_ms,
        key_prefix: keys.prefix().to_owned(),
        records: out.lines.len(),
    };
    let mut lines = Vec::with_capacity(out.lines.len() + 1);
    lines.push(to_line(&header)?);
    lines.append(&mut out.lines);
    Ok(Backup {
        header,
        lines,
        counts: out.counts,
    })
}

fn to_line<T: Serialize>(value: &T) -> Result<String, BackupError> {
    serde_json::to_string(value).map_err(|e| BackupError::Unrestorable {
        key: "header".to_owned(),
        problem: e.to_string(),
    })
}

fn rfc3339_ms(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(
            || ms.to_string(),
            |at| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        )
}

/// The signing key files of `dir` (`*.json`, as the key store reads them), by name, as
/// text. A missing directory has none.
fn read_key_files(dir: &Path) -> Result<Vec<(String, String)>, BackupError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(dir)(e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(io_error(dir))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !name.ends_with(".json") || name.starts_with('.') {
            continue;
        }
        let contents = std::fs::read_to_string(&path).map_err(io_error(&path))?;
        files.push((name.to_owned(), contents));
    }
    files.sort();
    Ok(files)
}

/// Writes `contents` to `path` readable by the owner only (0600), atomically: a temporary
/// file beside it, synced, then renamed over it. A failure leaves `path` as it was.
pub fn write_private_atomically(path: &Path, contents: &[u8]) -> Result<(), BackupError> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "backup".to_owned());
    let tmp = dir.join(format!(".{name}.{}.tmp", crate::secret::random_token(6)));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    written.map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        BackupError::Io {
            path: path.to_owned(),
            source,
        }
    })
}

#[cfg(test)]
mod tests;

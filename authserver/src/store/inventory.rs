//! Reading whole kinds of records, for the admin commands (listing, purge, backup).
//!
//! Keys are found with `SCAN … MATCH … COUNT` (never `KEYS`, which blocks Redis for the whole
//! key space), one page per round trip. The values and TTLs of one page are read in one
//! `MULTI`, so a record and its TTL agree. A key that vanished between `SCAN` and the read
//! (expired, deleted) is left out. `SCAN` may return a key twice; [`Scan`] drops repeats.

use std::collections::HashSet;
use std::time::Duration;

use futures::{FutureExt as _, StreamExt as _};
use mcp_auth_proto::store::RevocationEvent;

use super::{Store, StoreError, parse_json};

/// Keys asked for per `SCAN` round trip (a hint to Redis, not a bound).
pub const SCAN_COUNT: usize = 500;

/// How long opening or confirming the revocation subscription may take.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(5);

/// One string record (JSON) with its remaining TTL, read together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredString {
    pub key: String,
    pub value: String,
    /// Milliseconds; `None`: the key has no TTL.
    pub ttl_ms: Option<u64>,
}

/// One refresh token record (a hash) with its remaining TTL, read together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRefresh {
    pub key: String,
    /// The [`super::RefreshRecord`] JSON.
    pub data: String,
    /// When it was rotated (Unix seconds, as text), if it was.
    pub rotated: Option<String>,
    /// Its successor sealed under it (for a retry within the grace), if rotated.
    pub successor: Option<String>,
    /// Milliseconds; `None`: the key has no TTL.
    pub ttl_ms: Option<u64>,
}

/// The fields of a refresh token hash, in the order [`Store::read_refresh_tokens`] reads them.
pub const REFRESH_FIELDS: [&str; 3] = ["data", "rotated", "successor"];

/// An iteration over the keys matching one pattern, a page at a time.
#[derive(Debug)]
pub struct Scan<'s> {
    store: &'s Store,
    pattern: String,
    cursor: u64,
    done: bool,
    seen: HashSet<String>,
}

impl Scan<'_> {
    /// The next page of keys not returned before; `None` once the iteration is complete.
    /// A page may be empty while the iteration goes on.
    pub async fn next_page(&mut self) -> Result<Option<Vec<String>>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(self.cursor)
            .arg("MATCH")
            .arg(&self.pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT)
            .query_async(&mut self.store.conn())
            .await?;
        self.cursor = next;
        self.done = next == 0;
        Ok(Some(
            keys.into_iter()
                .filter(|key| self.seen.insert(key.clone()))
                .collect(),
        ))
    }
}

/// Converts a `PTTL` answer: `-1` no TTL, `-2` no key.
fn ttl_of(pttl: i64) -> Option<Option<u64>> {
    match pttl {
        -2 => None,
        ms if ms < 0 => Some(None),
        ms => Some(Some(ms.unsigned_abs())),
    }
}

/// Whole kinds of records.
impl Store {
    /// Starts a `SCAN` over `pattern` (escaped, e.g. [`mcp_auth_proto::store::KeySpace::client_pattern`]).
    pub fn scan(&self, pattern: impl Into<String>) -> Scan<'_> {
        Scan {
            store: self,
            pattern: pattern.into(),
            cursor: 0,
            done: false,
            seen: HashSet::new(),
        }
    }

    /// Every key matching `pattern`.
    pub async fn scan_all(&self, pattern: impl Into<String>) -> Result<Vec<String>, StoreError> {
        let mut scan = self.scan(pattern);
        let mut keys = Vec::new();
        while let Some(page) = scan.next_page().await? {
            keys.extend(page);
        }
        Ok(keys)
    }

    /// The string values and TTLs of `keys`, in one `MULTI` (`GET` and `PTTL` per key);
    /// keys that no longer exist are left out.
    pub async fn read_strings(&self, keys: &[String]) -> Result<Vec<StoredString>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for key in keys {
            pipe.get(key).pttl(key);
        }
        let replies: Vec<(Option<String>, i64)> = pipe.query_async(&mut self.conn()).await?;
        Ok(keys
            .iter()
            .zip(replies)
            .filter_map(|(key, (value, pttl))| {
                Some(StoredString {
                    key: key.clone(),
                    value: value?,
                    ttl_ms: ttl_of(pttl)?,
                })
            })
            .collect())
    }

    /// The refresh token hashes and TTLs of `keys`, in one `MULTI` (`HMGET` of
    /// [`REFRESH_FIELDS`] and `PTTL` per key); keys that no longer exist are left out.
    pub async fn read_refresh_tokens(
        &self,
        keys: &[String],
    ) -> Result<Vec<StoredRefresh>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for key in keys {
            pipe.cmd("HMGET")
                .arg(key)
                .arg(&REFRESH_FIELDS[..])
                .pttl(key);
        }
        type Fields = (Option<String>, Option<String>, Option<String>);
        let replies: Vec<(Fields, i64)> = pipe.query_async(&mut self.conn()).await?;
        Ok(keys
            .iter()
            .zip(replies)
            .filter_map(|(key, ((data, rotated, successor), pttl))| {
                Some(StoredRefresh {
                    key: key.clone(),
                    data: data?,
                    rotated,
                    successor,
                    ttl_ms: ttl_of(pttl)?,
                })
            })
            .collect())
    }

    /// Subscribes to the revocation channel: from when this returns, every revocation
    /// written is in [`RevocationFollower::published`] (a backup adds them to what it scanned,
    /// so one written while it reads is never missed).
    pub async fn follow_revocations(&self) -> Result<RevocationFollower, StoreError> {
        let channel = self.keys.revocation_channel();
        let subscribe = async {
            let mut pubsub = self.client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, StoreError>(pubsub)
        };
        let pubsub = tokio::time::timeout(SUBSCRIBE_TIMEOUT, subscribe)
            .await
            .map_err(|_| timed_out("SUBSCRIBE"))??;
        Ok(RevocationFollower { pubsub, channel })
    }
}

fn timed_out(what: &str) -> StoreError {
    StoreError::Redis(redis::RedisError::from((
        redis::ErrorKind::Io,
        "timed out",
        what.to_owned(),
    )))
}

/// A subscription to the revocation channel (see [`Store::follow_revocations`]).
pub struct RevocationFollower {
    pubsub: redis::aio::PubSub,
    channel: String,
}

impl std::fmt::Debug for RevocationFollower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationFollower")
            .field("channel", &self.channel)
            .finish()
    }
}

impl RevocationFollower {
    /// Every revocation published since the subscription (or the last call), up to now: a
    /// `PING` on the subscription's connection is answered after every message published
    /// before it, and messages are queued before that answer is handed over.
    pub async fn published(&mut self) -> Result<Vec<RevocationEvent>, StoreError> {
        tokio::time::timeout(SUBSCRIBE_TIMEOUT, self.pubsub.ping::<redis::Value>())
            .await
            .map_err(|_| timed_out("PING"))??;
        let mut events = Vec::new();
        let mut messages = self.pubsub.on_message();
        while let Some(Some(message)) = messages.next().now_or_never() {
            let payload: String = message.get_payload()?;
            events.push(parse_json(&self.channel, &payload)?);
        }
        Ok(events)
    }
}

//! Keeps [`Shared`]'s store snapshot current from Redis, so no Check waits for Redis.
//!
//! One task runs sessions back to back. A session connects (a command connection and a
//! dedicated pub/sub connection), subscribes to the revocation channel **first**, then loads
//! everything (`SCAN` + `MGET` of the revocation and user keys) and installs it: an event
//! published during the load is then either in the load or in the subscription, never lost.
//! It then applies events as they arrive, pings every second (the "Redis answered" clock the
//! grace time runs on), drops expired revocations, and reloads everything every
//! `ext_authz.resync_interval`. Any failure ends the session; the next one starts with a full
//! load, since events published while disconnected are gone.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use mcp_auth_proto::store::{KeySpace, RevocationEvent, UserRecord};
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;

use crate::state::{Shared, StoreSnapshot};

/// How long one Redis command (or connecting) may take before the session is given up.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// Liveness ping period; also how often expired revocations are dropped.
const PING_INTERVAL: Duration = Duration::from_secs(1);
/// Reconnect backoff bounds: quick first retry, and never slower than the ping period so a
/// restarted Redis is picked up within about a second.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// `SCAN ... COUNT` hint per round trip.
const SCAN_BATCH: usize = 500;

/// Why a Redis session ended.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Client(#[from] mcp_auth_gateway::redis_client::RedisClientError),
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the revocation subscription was closed")]
    SubscriptionClosed,
}

/// The Redis-backed state loader and event consumer.
#[derive(Debug, Clone)]
pub struct Store {
    client: redis::Client,
    keys: KeySpace,
    shared: Arc<Shared>,
}

impl Store {
    /// A store for the Redis at `url` under `key_prefix`; fails only on a malformed URL.
    pub fn new(
        config: &mcp_auth_gateway::config::RedisConfig,
        shared: Arc<Shared>,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            client: mcp_auth_gateway::redis_client::client(config)?,
            keys: KeySpace::new(config.key_prefix.as_str()),
            shared,
        })
    }

    /// The state this store keeps current.
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Runs sessions forever (the caller aborts the task to stop it).
    pub async fn run(self) {
        let mut backoff = MIN_BACKOFF;
        let mut failures: u64 = 0;
        loop {
            let started = Instant::now();
            let error = self.session().await;
            // A session that ran a while was healthy: retry quickly.
            if started.elapsed() > MAX_BACKOFF {
                backoff = MIN_BACKOFF;
                failures = 0;
            }
            // Once a second while Redis is down: say it at the start, then now and then.
            if failures.is_multiple_of(60) {
                tracing::warn!(%error, failures, "Redis session ended; reconnecting");
            } else {
                tracing::debug!(%error, failures, "Redis still unreachable");
            }
            failures += 1;
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// One connected session; returns why it ended.
    async fn session(&self) -> StoreError {
        match self.session_inner().await {
            Ok(never) => match never {},
            Err(error) => error,
        }
    }

    async fn session_inner(&self) -> Result<std::convert::Infallible, StoreError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT));
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let mut pubsub = timed(self.client.get_async_pubsub()).await?;
        let channel = self.keys.revocation_channel();
        let users = self.keys.user_channel();
        timed(pubsub.subscribe(&[&channel, &users])).await?;
        let (mut sink, mut events) = pubsub.split();

        self.resync(&mut conn).await?;
        tracing::info!(%channel, "subscribed to revocation events");
        let mut ticks = tokio::time::interval(PING_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Measured in tick times, so a 2 s interval means every second tick, not every third.
        let mut last_resync = tokio::time::Instant::now();
        loop {
            tokio::select! {
                message = events.next() => {
                    let message = message.ok_or(StoreError::SubscriptionClosed)?;
                    self.shared.mark_contact(Instant::now());
                    if message.get_channel_name() == users {
                        self.apply_user(message.get_payload_bytes());
                    } else {
                        self.apply(message.get_payload_bytes());
                    }
                }
                tick = ticks.tick() => {
                    redis::cmd("PING").query_async::<redis::Value>(&mut conn).await?;
                    // The subscription's own connection can die alone; ask it too.
                    timed(sink.ping::<redis::Value>()).await?;
                    self.shared.mark_contact(Instant::now());
                    let pruned = self.shared.prune(unix_now());
                    if pruned > 0 {
                        tracing::debug!(pruned, "dropped expired revocations");
                    }
                    if tick.duration_since(last_resync) >= self.shared.settings().resync_interval {
                        self.resync(&mut conn).await?;
                        last_resync = tick;
                    }
                }
            }
        }
    }

    /// Loads everything and installs it.
    async fn resync(&self, conn: &mut MultiplexedConnection) -> Result<(), StoreError> {
        let started = Instant::now();
        let snapshot = load(conn, &self.keys, unix_now()).await?;
        tracing::debug!(
            revocations = snapshot.revocations.len(),
            users = snapshot.users.len(),
            took_ms = started.elapsed().as_millis() as u64,
            "state loaded from Redis"
        );
        self.shared.install(snapshot);
        self.shared.mark_contact(Instant::now());
        self.shared.metrics.resynced();
        Ok(())
    }

    fn apply_user(&self, payload: &[u8]) {
        match serde_json::from_slice::<UserRecord>(payload) {
            Ok(record) => {
                tracing::debug!(subject = %record.subject, "user record received");
                self.shared.apply_user(record);
                self.shared.metrics.event("user", None);
            }
            Err(error) => tracing::warn!(%error, "ignoring malformed user event"),
        }
    }

    fn apply(&self, payload: &[u8]) {
        match serde_json::from_slice::<RevocationEvent>(payload) {
            Ok(event) => {
                tracing::info!(
                    kind = event.target.kind(),
                    id = event.target.id(),
                    revoked_at = event.revoked_at,
                    "revocation received"
                );
                self.shared.apply(&event);
                let lag = unix_now_secs_f64() - event.revoked_at as f64;
                self.shared.metrics.event("revocation", Some(lag.max(0.0)));
            }
            // A bad event must not stop the others; the next resync reads the key anyway.
            Err(error) => tracing::warn!(%error, "ignoring malformed revocation event"),
        }
    }
}

/// Now in (fractional) seconds since the Unix epoch: revocation events carry whole seconds.
fn unix_now_secs_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Reads every revocation and user record under `keys` into a snapshot, dropping
/// revocations already expired at `now`.
pub async fn load(
    conn: &mut MultiplexedConnection,
    keys: &KeySpace,
    now: u64,
) -> Result<StoreSnapshot, StoreError> {
    let mut snapshot = StoreSnapshot::default();
    for (key, value) in scan_values(conn, keys, &keys.revocation_pattern()).await? {
        match serde_json::from_slice::<RevocationEvent>(&value) {
            Ok(event) => snapshot.revocations.insert(&event),
            Err(error) => tracing::warn!(%key, %error, "ignoring malformed revocation record"),
        }
    }
    snapshot.revocations.prune(now);
    let user_prefix = keys.user("");
    for (key, value) in scan_values(conn, keys, &keys.user_pattern()).await? {
        let Some(subject) = key.strip_prefix(&user_prefix) else {
            continue;
        };
        match serde_json::from_slice::<UserRecord>(&value) {
            // Keyed by the subject in the key name: that is what the authserver looked up.
            Ok(record) => {
                snapshot.users.insert(subject.to_owned(), record);
            }
            Err(error) => tracing::warn!(%key, %error, "ignoring malformed user record"),
        }
    }
    Ok(snapshot)
}

/// `SCAN`s `pattern` and `MGET`s the string values of what it finds (keys gone in between,
/// or of another type, are skipped).
async fn scan_values(
    conn: &mut MultiplexedConnection,
    keys: &KeySpace,
    pattern: &str,
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    // The deployment prefix is literal text, not a glob.
    let pattern = match pattern.strip_prefix(keys.prefix()) {
        Some(rest) => format!("{}{rest}", glob_escape(keys.prefix())),
        None => pattern.to_owned(),
    };
    let mut found = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, names): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(SCAN_BATCH)
            .query_async(conn)
            .await?;
        if !names.is_empty() {
            let values: Vec<Option<Vec<u8>>> =
                redis::cmd("MGET").arg(&names).query_async(conn).await?;
            found.extend(
                names
                    .into_iter()
                    .zip(values)
                    .filter_map(|(name, value)| Some((name, value?))),
            );
        }
        if next == 0 {
            return Ok(found);
        }
        cursor = next;
    }
}

fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

async fn timed<T>(
    future: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, StoreError> {
    Ok(tokio::time::timeout(COMMAND_TIMEOUT, future)
        .await
        .map_err(|_| StoreError::Timeout(COMMAND_TIMEOUT))??)
}

fn unix_now() -> u64 {
    // A clock before 1970 prunes nothing rather than everything.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_in_the_prefix_are_escaped() {
        assert_eq!(glob_escape("mcp-auth:"), "mcp-auth:");
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}

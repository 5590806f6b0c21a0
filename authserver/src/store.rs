//! Redis persistence: clients, pending authorizations, codes, grants, refresh tokens,
//! consents, user records and revocations, under the key layout of
//! [`mcp_auth_proto::store::KeySpace`].
//!
//! Secrets never reach Redis: codes, refresh tokens and registration tokens are stored under
//! (and as) their SHA-256 digests. Operations that must be atomic (single-use codes, refresh
//! rotation) are Lua scripts, one round trip each.

use std::time::Duration;

use mcp_auth_proto::store::KeySpace;
use redis::AsyncCommands as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::Serialize;
use serde::de::DeserializeOwned;

mod clients;
mod grants;
pub mod inventory;
pub mod maintenance;
mod ratelimit;
pub mod records;
mod revocations;
mod users;

pub use grants::Rotation;
pub use records::{
    CodeOutcome, CodeRecord, ConsentRecord, GrantRecord, PendingAuthorization, RefreshOutcome,
    RefreshRecord, Stage,
};

/// How long one Redis command or connection attempt may take.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a Redis operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Client(#[from] mcp_auth_gateway::redis_client::RedisClientError),
    #[error("Redis holds a record that does not parse at {key}: {problem}")]
    Corrupt { key: String, problem: String },
}

/// The Redis-backed store. Cheap to clone: the connection is multiplexed and reconnects by
/// itself, so a Redis restart costs the requests in flight, not the process.
#[derive(Clone)]
pub struct Store {
    conn: ConnectionManager,
    /// For the connections a multiplexed one cannot be: a subscription (admin backup).
    client: redis::Client,
    keys: KeySpace,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("keys", &self.keys).finish()
    }
}

impl Store {
    /// A store for the Redis `config` names. Connects lazily: Redis being down at start is not an
    /// error, requests fail with 503 until it is up.
    pub fn new(config: &mcp_auth_gateway::config::RedisConfig) -> Result<Self, StoreError> {
        let client = mcp_auth_gateway::redis_client::client(config)?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        Ok(Self {
            conn: client.get_connection_manager_lazy(manager)?,
            client,
            keys: KeySpace::new(config.key_prefix.as_str()),
        })
    }

    pub fn keys(&self) -> &KeySpace {
        &self.keys
    }

    /// `PING`: true when Redis answers.
    pub async fn ping(&self) -> bool {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .is_ok()
    }
}

/// Generic JSON records.
impl Store {
    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// `GET key` as JSON.
    async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        let value: Option<String> = self.conn().get(key).await?;
        value.map(|v| parse_json(key, &v)).transpose()
    }

    /// `SET key json [EX ttl]`; `ttl_secs == None` keeps it forever.
    async fn set_json<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        ttl_secs: Option<u64>,
    ) -> Result<(), StoreError> {
        let json = to_json(key, value)?;
        let mut conn = self.conn();
        match ttl_secs {
            Some(ttl) => conn.set_ex::<_, _, ()>(key, json, ttl.max(1)).await?,
            None => conn.set::<_, _, ()>(key, json).await?,
        }
        Ok(())
    }
}

pub(crate) fn parse_json<T: DeserializeOwned>(key: &str, value: &str) -> Result<T, StoreError> {
    serde_json::from_str(value).map_err(|e| StoreError::Corrupt {
        key: key.to_owned(),
        problem: e.to_string(),
    })
}

pub(crate) fn to_json<T: Serialize>(key: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt {
        key: key.to_owned(),
        problem: e.to_string(),
    })
}

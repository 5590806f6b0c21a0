//! Redis persistence: clients, pending authorizations, codes, grants, refresh tokens,
//! consents, user records and revocations, under the key layout of
//! [`mcp_auth_proto::store::KeySpace`].
//!
//! Secrets never reach Redis: codes, refresh tokens and registration tokens are stored under
//! (and as) their SHA-256 digests. Operations that must be atomic (single-use codes, refresh
//! rotation) are Lua scripts, one round trip each.

use std::sync::LazyLock;
use std::time::Duration;

use mcp_auth_proto::store::{KeySpace, RevocationEvent, RevocationTarget, UserRecord};
use redis::AsyncCommands as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::oauth::client::ClientRecord;

pub mod records;

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
    #[error("Redis holds a record that does not parse at {key}: {problem}")]
    Corrupt { key: String, problem: String },
}

/// The Redis-backed store. Cheap to clone: the connection is multiplexed and reconnects by
/// itself, so a Redis restart costs the requests in flight, not the process.
#[derive(Clone)]
pub struct Store {
    conn: ConnectionManager,
    keys: KeySpace,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("keys", &self.keys).finish()
    }
}

impl Store {
    /// A store for the Redis at `url`. Connects lazily: Redis being down at start is not an
    /// error, requests fail with 503 until it is up.
    pub fn new(url: &str, key_prefix: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        Ok(Self {
            conn: client.get_connection_manager_lazy(config)?,
            keys: KeySpace::new(key_prefix),
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

/// Marks a code used and returns its record, atomically: a code is exchanged at most once.
/// A replay returns the grant issued at first use, so the caller can revoke it.
const CONSUME_CODE: &str = r"
local data = redis.call('HGET', KEYS[1], 'data')
if not data then return false end
local used = redis.call('HGET', KEYS[1], 'grant')
if used then return {'replayed', used} end
redis.call('HSET', KEYS[1], 'grant', ARGV[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return {'fresh', data}
";

/// Rotates a refresh token atomically: checks it belongs to the client, was not rotated
/// before (reuse detection), and that its grant exists and neither the grant, its user nor
/// its client was revoked since the grant was made; then marks it rotated, stores the new
/// token with the same record, and extends the grant.
/// The user's record is kept as long as the grant, so ext_authz keeps seeing their
/// organisations and teams while the grant lives.
/// ARGV: client id, new token TTL, the key prefixes of grants and of grant, user and client
/// revocations, the key prefix of user records (all from `KeySpace`, so the layout is
/// defined once), and the user record TTL.
const ROTATE_REFRESH: &str = r"
local data = redis.call('HGET', KEYS[1], 'data')
if not data then return false end
local rec = cjson.decode(data)
if rec.client_id ~= ARGV[1] then return {'wrong_client', data} end
if redis.call('HEXISTS', KEYS[1], 'rotated') == 1 then return {'reused', data} end
local grant_key = ARGV[3] .. rec.grant_id
if redis.call('EXISTS', grant_key) == 0 then return {'revoked', data} end
local created = tonumber(rec.grant_created_at)
for _, key in ipairs({ARGV[4] .. rec.grant_id, ARGV[5] .. rec.sub, ARGV[6] .. rec.client_id}) do
  local event = redis.call('GET', key)
  if event and tonumber(cjson.decode(event).revoked_at) >= created then
    return {'revoked', data}
  end
end
redis.call('HSET', KEYS[1], 'rotated', '1')
redis.call('HSET', KEYS[2], 'data', data)
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[2]))
redis.call('EXPIRE', grant_key, tonumber(ARGV[2]))
redis.call('EXPIRE', ARGV[7] .. rec.sub, tonumber(ARGV[8]))
return {'rotated', data}
";

/// Scripts are hashed once; `EVALSHA` then sends only the hash (redis-rs falls back to
/// `EVAL` when Redis does not know it yet, e.g. after a restart).
static CONSUME_CODE_SCRIPT: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(CONSUME_CODE));
static ROTATE_REFRESH_SCRIPT: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(ROTATE_REFRESH));

/// How long a used code is kept to recognise a replay.
const USED_CODE_TTL_SECS: u64 = 600;

/// Authorization requests, codes, grants, refresh tokens.
impl Store {
    /// Stores a pending authorization under `id_digest` for `ttl_secs`.
    pub async fn put_pending(
        &self,
        id_digest: &str,
        pending: &PendingAuthorization,
        ttl_secs: u64,
    ) -> Result<(), StoreError> {
        self.set_json(
            &self.keys.authorization_request(id_digest),
            pending,
            Some(ttl_secs),
        )
        .await
    }

    /// Reads a pending authorization without consuming it.
    pub async fn pending(
        &self,
        id_digest: &str,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        self.get_json(&self.keys.authorization_request(id_digest))
            .await
    }

    /// Takes a pending authorization (`GETDEL`): each is used once.
    pub async fn take_pending(
        &self,
        id_digest: &str,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        let key = self.keys.authorization_request(id_digest);
        let value: Option<String> = redis::cmd("GETDEL")
            .arg(&key)
            .query_async(&mut self.conn())
            .await?;
        value.map(|v| parse_json(&key, &v)).transpose()
    }

    /// Stores an authorization code's record under its digest until it expires.
    pub async fn put_code(
        &self,
        code_digest: &str,
        record: &CodeRecord,
        ttl_secs: u64,
    ) -> Result<(), StoreError> {
        let key = self.keys.authorization_code(code_digest);
        let json = to_json(&key, record)?;
        redis::pipe()
            .atomic()
            .hset(&key, "data", json)
            .ignore()
            .expire(&key, ttl_secs.max(1) as i64)
            .ignore()
            .query_async::<()>(&mut self.conn())
            .await?;
        Ok(())
    }

    /// Consumes a code (see [`CONSUME_CODE`]); `grant_id` is recorded as the grant it made.
    pub async fn consume_code(
        &self,
        code_digest: &str,
        grant_id: &str,
    ) -> Result<CodeOutcome, StoreError> {
        let key = self.keys.authorization_code(code_digest);
        let result: Option<(String, String)> = CONSUME_CODE_SCRIPT
            .key(&key)
            .arg(grant_id)
            .arg(USED_CODE_TTL_SECS)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(match result {
            None => CodeOutcome::Missing,
            Some((kind, value)) if kind == "replayed" => CodeOutcome::Replayed { grant_id: value },
            Some((_, data)) => CodeOutcome::Fresh(parse_json(&key, &data)?),
        })
    }

    /// Records a grant and, when given, its first refresh token, atomically.
    pub async fn issue_grant(
        &self,
        grant_id: &str,
        grant: &GrantRecord,
        refresh: Option<(&str, &RefreshRecord)>,
        ttl_secs: u64,
    ) -> Result<(), StoreError> {
        let grant_key = self.keys.grant(grant_id);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .set_ex(&grant_key, to_json(&grant_key, grant)?, ttl_secs.max(1))
            .ignore();
        if let Some((digest, record)) = refresh {
            let key = self.keys.refresh_token(digest);
            pipe.hset(&key, "data", to_json(&key, record)?)
                .ignore()
                .expire(&key, ttl_secs.max(1) as i64)
                .ignore();
        }
        pipe.query_async::<()>(&mut self.conn()).await?;
        Ok(())
    }

    /// The record of a refresh token, if it exists and was not rotated.
    pub async fn refresh_token(
        &self,
        digest: &str,
    ) -> Result<Option<(RefreshRecord, bool)>, StoreError> {
        let key = self.keys.refresh_token(digest);
        let (data, rotated): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(&key)
            .arg("data")
            .arg("rotated")
            .query_async(&mut self.conn())
            .await?;
        data.map(|d| parse_json(&key, &d).map(|r| (r, rotated.is_some())))
            .transpose()
    }

    /// Rotates refresh token `old_digest` to `new_digest` for `client_id` (see [`ROTATE_REFRESH`]).
    pub async fn rotate_refresh(
        &self,
        old_digest: &str,
        new_digest: &str,
        client_id: &str,
        ttl_secs: u64,
        user_ttl_secs: u64,
    ) -> Result<RefreshOutcome, StoreError> {
        let key = self.keys.refresh_token(old_digest);
        let result: Option<(String, String)> = ROTATE_REFRESH_SCRIPT
            .key(&key)
            .key(self.keys.refresh_token(new_digest))
            .arg(client_id)
            .arg(ttl_secs.max(1))
            .arg(self.keys.grant(""))
            .arg(
                self.keys
                    .revocation(&RevocationTarget::Grant(String::new())),
            )
            .arg(self.keys.revocation(&RevocationTarget::User(String::new())))
            .arg(
                self.keys
                    .revocation(&RevocationTarget::Client(String::new())),
            )
            .arg(self.keys.user(""))
            .arg(user_ttl_secs.max(1))
            .invoke_async(&mut self.conn())
            .await?;
        let Some((kind, data)) = result else {
            return Ok(RefreshOutcome::Missing);
        };
        Ok(match kind.as_str() {
            "rotated" => RefreshOutcome::Rotated(parse_json(&key, &data)?),
            "reused" => RefreshOutcome::Reused(parse_json(&key, &data)?),
            "wrong_client" => RefreshOutcome::WrongClient,
            _ => RefreshOutcome::Revoked,
        })
    }

    /// Deletes a refresh token.
    pub async fn delete_refresh_token(&self, digest: &str) -> Result<(), StoreError> {
        self.conn()
            .del::<_, ()>(self.keys.refresh_token(digest))
            .await?;
        Ok(())
    }

    pub async fn grant(&self, grant_id: &str) -> Result<Option<GrantRecord>, StoreError> {
        self.get_json(&self.keys.grant(grant_id)).await
    }
}

/// Users and their consents.
impl Store {
    pub async fn consent(
        &self,
        subject: &str,
        client_id: &str,
    ) -> Result<Option<ConsentRecord>, StoreError> {
        self.get_json(&self.keys.consent(subject, client_id)).await
    }

    pub async fn put_consent(
        &self,
        subject: &str,
        client_id: &str,
        consent: &ConsentRecord,
        ttl_secs: u64,
    ) -> Result<(), StoreError> {
        self.set_json(
            &self.keys.consent(subject, client_id),
            consent,
            Some(ttl_secs),
        )
        .await
    }

    pub async fn user(&self, subject: &str) -> Result<Option<UserRecord>, StoreError> {
        self.get_json(&self.keys.user(subject)).await
    }

    /// Writes what the identity provider said of a user (read by ext_authz for live
    /// allow-list checks).
    pub async fn put_user(&self, user: &UserRecord, ttl_secs: u64) -> Result<(), StoreError> {
        self.set_json(&self.keys.user(&user.subject), user, Some(ttl_secs))
            .await
    }

    /// The subjects of every user record whose login is `login` (case-insensitive).
    pub async fn subjects_by_login(&self, login: &str) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn();
        let keys: Vec<String> = {
            let mut iter = conn
                .scan_match::<_, String>(self.keys.user_pattern())
                .await?;
            let mut keys = Vec::new();
            while let Some(key) = futures::StreamExt::next(&mut iter).await {
                keys.push(key?);
            }
            keys
        };
        let mut subjects = Vec::new();
        for key in keys {
            if let Some(user) = self.get_json::<UserRecord>(&key).await?
                && user.login.eq_ignore_ascii_case(login)
            {
                subjects.push(user.subject);
            }
        }
        Ok(subjects)
    }
}

/// Registered clients (RFC 7591), kept until their expiry.
impl Store {
    /// Stores `record`, expiring with the client (or never).
    pub async fn put_client(&self, record: &ClientRecord, now: u64) -> Result<(), StoreError> {
        let ttl = record.expires_at.map(|at| at.saturating_sub(now));
        self.set_json(&self.keys.client(&record.client_id), record, ttl)
            .await
    }

    pub async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        self.get_json(&self.keys.client(client_id)).await
    }

    /// Deletes a client; true when it existed.
    pub async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
        let removed: u64 = self.conn().del(self.keys.client(client_id)).await?;
        Ok(removed > 0)
    }
}

/// Revocations (read by ext_authz) and the events announcing them.
impl Store {
    /// Writes `event` at its key with a TTL until `expires_at` and publishes it, atomically
    /// (`MULTI`); a grant revocation also deletes the grant, ending its refresh tokens.
    pub async fn revoke(&self, event: &RevocationEvent, now: u64) -> Result<(), StoreError> {
        let key = self.keys.revocation(&event.target);
        let json = to_json(&key, event)?;
        let ttl = event.expires_at.saturating_sub(now).max(1);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .set_ex(&key, &json, ttl)
            .ignore()
            .publish(self.keys.revocation_channel(), &json)
            .ignore();
        if let RevocationTarget::Grant(grant_id) = &event.target {
            pipe.del(self.keys.grant(grant_id)).ignore();
        }
        pipe.query_async::<()>(&mut self.conn()).await?;
        Ok(())
    }

    /// The revocations that could cover a token of this `jti`, grant, user and client.
    pub async fn revocations_for(
        &self,
        targets: &[RevocationTarget],
    ) -> Result<Vec<RevocationEvent>, StoreError> {
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = targets.iter().map(|t| self.keys.revocation(t)).collect();
        let values: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut self.conn())
            .await?;
        keys.iter()
            .zip(values)
            .filter_map(|(key, value)| value.map(|v| parse_json(key, &v)))
            .collect()
    }
}

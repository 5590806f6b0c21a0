//! Pending authorizations, single-use codes, grants and rotating refresh tokens.

use std::sync::LazyLock;

use mcp_auth_proto::store::RevocationTarget;
use redis::AsyncCommands as _;

use super::records::{
    CodeOutcome, CodeRecord, GrantRecord, PendingAuthorization, RefreshOutcome, RefreshRecord,
};
use super::{Store, StoreError, parse_json, to_json};

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
/// its client was revoked since the grant was made; then marks it rotated (when, and its
/// successor sealed under the old token), stores the new token with the same record, and
/// extends the grant.
/// A token rotated no more than the grace ago is not reuse: it returns the sealed successor
/// of that rotation (the grant still checked), so a retry gets the same new token.
/// The user's record is kept as long as the grant, so ext_authz keeps seeing their
/// organisations and teams while the grant lives.
/// ARGV: client id, new token TTL, the key prefixes of grants and of grant, user and client
/// revocations, the key prefix of user records (all from `KeySpace`, so the layout is
/// defined once), the user record TTL, now, the grace in seconds, and the sealed successor.
const ROTATE_REFRESH: &str = r"
local data = redis.call('HGET', KEYS[1], 'data')
if not data then return false end
local rec = cjson.decode(data)
if rec.client_id ~= ARGV[1] then return {'wrong_client', data} end
local rotation = redis.call('HMGET', KEYS[1], 'rotated', 'successor')
if rotation[1] then
  local at = tonumber(rotation[1])
  local grace = tonumber(ARGV[10])
  if not (rotation[2] and at and grace > 0 and tonumber(ARGV[9]) - at <= grace) then
    return {'reused', data}
  end
end
local grant_key = ARGV[3] .. rec.grant_id
if redis.call('EXISTS', grant_key) == 0 then return {'revoked', data} end
local created = tonumber(rec.grant_created_at)
for _, key in ipairs({ARGV[4] .. rec.grant_id, ARGV[5] .. rec.sub, ARGV[6] .. rec.client_id}) do
  local event = redis.call('GET', key)
  if event and tonumber(cjson.decode(event).revoked_at) >= created then
    return {'revoked', data}
  end
end
if rotation[1] then return {'grace', data, rotation[2]} end
redis.call('HSET', KEYS[1], 'rotated', ARGV[9], 'successor', ARGV[11])
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

/// One refresh-token rotation: what [`Store::rotate_refresh`] needs.
#[derive(Debug)]
pub struct Rotation<'a> {
    pub old_digest: &'a str,
    pub new_digest: &'a str,
    /// The new token sealed under the old one ([`crate::secret::Secret::seal_under`]).
    pub sealed_successor: &'a str,
    pub client_id: &'a str,
    pub ttl_secs: u64,
    pub user_ttl_secs: u64,
    pub now: u64,
    pub grace_secs: u64,
}

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

    /// Consumes a code (see the `CONSUME_CODE` script); `grant_id` is recorded as the grant it made.
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

    /// Rotates refresh token `old_digest` to `new_digest` for `client_id` (see the
    /// `ROTATE_REFRESH` script), keeping `sealed_successor` (the new token sealed under the old)
    /// for a retry within `grace_secs`.
    pub async fn rotate_refresh(
        &self,
        rotation: &Rotation<'_>,
    ) -> Result<RefreshOutcome, StoreError> {
        let key = self.keys.refresh_token(rotation.old_digest);
        let result: Option<Vec<String>> = ROTATE_REFRESH_SCRIPT
            .key(&key)
            .key(self.keys.refresh_token(rotation.new_digest))
            .arg(rotation.client_id)
            .arg(rotation.ttl_secs.max(1))
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
            .arg(rotation.user_ttl_secs.max(1))
            .arg(rotation.now)
            .arg(rotation.grace_secs)
            .arg(rotation.sealed_successor)
            .invoke_async(&mut self.conn())
            .await?;
        // The script answers `{kind, data}` or, within the grace, `{'grace', data, successor}`.
        let Some(mut reply) = result else {
            return Ok(RefreshOutcome::Missing);
        };
        let successor = (reply.len() > 2).then(|| reply.swap_remove(2));
        let (Some(kind), Some(data)) = (reply.first(), reply.get(1)) else {
            return Err(StoreError::Corrupt {
                key,
                problem: "the rotation script answered an unexpected shape".into(),
            });
        };
        let (kind, data) = (kind.clone(), data.clone());
        Ok(match kind.as_str() {
            "rotated" => RefreshOutcome::Rotated(parse_json(&key, &data)?),
            "grace" => RefreshOutcome::RetriedWithinGrace {
                record: parse_json(&key, &data)?,
                sealed_successor: successor.unwrap_or_default(),
            },
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

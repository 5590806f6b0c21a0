//! Conditional deletes (admin purge) and create-only writes (admin restore).
//!
//! A purge decides from records it read a moment ago; each delete re-checks, atomically in
//! Lua, the fact it was decided on, so a record rewritten or revived in between survives.
//! A restore never overwrites: a key that exists keeps its value and TTL.

use std::sync::LazyLock;

use super::{Store, StoreError};

/// Deletes `KEYS[1]` if its value is still `ARGV[1]`.
const DELETE_IF_UNCHANGED: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Deletes `KEYS[1]` unless one of the keys in `ARGV` exists.
const DELETE_UNLESS_ANY_EXISTS: &str = r"
for _, key in ipairs(ARGV) do
  if redis.call('EXISTS', key) == 1 then return 0 end
end
return redis.call('DEL', KEYS[1])
";

/// Deletes `KEYS[1]` unless its TTL was extended since it was `ARGV[1]` ms (`-1`: no TTL).
const DELETE_UNLESS_EXTENDED: &str = r"
local seen = tonumber(ARGV[1])
local now = redis.call('PTTL', KEYS[1])
if now == -2 then return 0 end
if seen == -1 then
  if now ~= -1 then return 0 end
elseif now == -1 or now > seen then
  return 0
end
return redis.call('DEL', KEYS[1])
";

/// Creates the hash `KEYS[1]` from the field/value pairs `ARGV[2..]` with a TTL of `ARGV[1]`
/// ms (`0`: none), unless it exists.
const CREATE_HASH: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
local ttl = tonumber(ARGV[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
";

static DELETE_IF_UNCHANGED_SCRIPT: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(DELETE_IF_UNCHANGED));
static DELETE_UNLESS_ANY_EXISTS_SCRIPT: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(DELETE_UNLESS_ANY_EXISTS));
static DELETE_UNLESS_EXTENDED_SCRIPT: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(DELETE_UNLESS_EXTENDED));
static CREATE_HASH_SCRIPT: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(CREATE_HASH));

/// Purge and restore.
impl Store {
    /// Deletes `key` if its value is still `expected`; true when it did.
    pub async fn delete_if_unchanged(&self, key: &str, expected: &str) -> Result<bool, StoreError> {
        let removed: u64 = DELETE_IF_UNCHANGED_SCRIPT
            .key(key)
            .arg(expected)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(removed > 0)
    }

    /// Deletes `key` unless one of `others` exists (a record whose grant or client is gone:
    /// ids are random, so neither comes back); true when it did.
    pub async fn delete_unless_any_exists(
        &self,
        key: &str,
        others: &[String],
    ) -> Result<bool, StoreError> {
        let removed: u64 = DELETE_UNLESS_ANY_EXISTS_SCRIPT
            .key(key)
            .arg(others)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(removed > 0)
    }

    /// Deletes `key` unless its TTL grew since it was read as `seen_ttl_ms` (a refresh
    /// rotation extends its grant's TTL); true when it did.
    pub async fn delete_unless_extended(
        &self,
        key: &str,
        seen_ttl_ms: Option<u64>,
    ) -> Result<bool, StoreError> {
        let seen = seen_ttl_ms.map_or(-1, |ms| i64::try_from(ms).unwrap_or(i64::MAX));
        let removed: u64 = DELETE_UNLESS_EXTENDED_SCRIPT
            .key(key)
            .arg(seen)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(removed > 0)
    }

    /// Writes a string record unless `key` exists (`SET … NX [PX ttl]`); true when written.
    pub async fn create_string(
        &self,
        key: &str,
        value: &str,
        ttl_ms: Option<u64>,
    ) -> Result<bool, StoreError> {
        let mut set = redis::cmd("SET");
        set.arg(key).arg(value).arg("NX");
        if let Some(ttl) = ttl_ms {
            set.arg("PX").arg(ttl.max(1));
        }
        let written: Option<String> = set.query_async(&mut self.conn()).await?;
        Ok(written.is_some())
    }

    /// Writes a hash of `fields` unless `key` exists, with a TTL of `ttl_ms` (or none), in
    /// one script; true when written.
    pub async fn create_hash(
        &self,
        key: &str,
        fields: &[(&str, &str)],
        ttl_ms: Option<u64>,
    ) -> Result<bool, StoreError> {
        let mut invocation = CREATE_HASH_SCRIPT.key(key);
        invocation.arg(ttl_ms.map_or(0, |ttl| ttl.max(1)));
        for (field, value) in fields {
            invocation.arg(*field).arg(*value);
        }
        let written: u64 = invocation.invoke_async(&mut self.conn()).await?;
        Ok(written > 0)
    }
}

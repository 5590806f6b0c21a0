//! The shared rate-limit cells (GCRA in one Lua script, so every replica counts together).

use std::sync::LazyLock;
use std::time::Duration;

use super::{Store, StoreError};

/// GCRA on one key: the theoretical arrival time (TAT, ms) of the next request. A request is
/// over the limit when the TAT is more than the burst ahead of now; otherwise it moves the TAT
/// one interval on. Redis's own clock (`TIME`) is the one clock of every replica; the key
/// lives only as long as it is ahead of now, so idle clients leave nothing behind.
/// ARGV: interval (ms), burst (ms). Returns 0 when allowed, else the wait in ms.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local ahead = tat - now
if ahead > burst then return ahead - burst end
redis.call('SET', KEYS[1], tat + interval, 'PX', ahead + interval)
return 0
";

static GCRA_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(GCRA));

impl Store {
    /// Counts one request of `client` against `bucket` (`interval` per request, `burst` of
    /// credit); `Some(wait)` when it is over the limit.
    pub async fn rate_limit(
        &self,
        bucket: &str,
        client: &str,
        interval: Duration,
        burst: Duration,
    ) -> Result<Option<Duration>, StoreError> {
        let wait_ms: u64 = GCRA_SCRIPT
            .key(self.keys.rate_limit(bucket, client))
            .arg(interval.as_millis().max(1) as u64)
            .arg(burst.as_millis() as u64)
            .invoke_async(&mut self.conn())
            .await?;
        Ok((wait_ms > 0).then(|| Duration::from_millis(wait_ms)))
    }
}

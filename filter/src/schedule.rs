//! When to fetch the JWKS, agreed between the worker VMs through one shared-data record.
//!
//! Every worker ticks; the first whose tick finds the fetch due claims it by a
//! compare-and-swap on the record, so the authserver sees one fetch per interval, not one
//! per worker. The record holds the last attempt and when the next one is due.

/// Early fetches for an unknown `kid` happen at most this often (all workers together).
pub const EARLY_FETCH_MIN_INTERVAL_MS: u64 = 10_000;
/// Retry interval while no keys are known at all.
pub const RETRY_WITHOUT_KEYS_MS: u64 = 2_000;
/// Retry interval after a failed refresh while the last good keys stay in use.
pub const RETRY_WITH_KEYS_MS: u64 = 10_000;
/// A claim whose fetch never reported back is given up after its timeout plus this.
const CLAIM_SLACK_MS: u64 = 1_000;

/// The shared fetch record: milliseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FetchSchedule {
    pub last_attempt_ms: u64,
    pub next_due_ms: u64,
}

impl FetchSchedule {
    /// Reads the shared-data value; an absent or unreadable record means "due now".
    pub fn decode(bytes: Option<&[u8]>) -> Self {
        let field = |range: std::ops::Range<usize>| {
            bytes
                .and_then(|b| b.get(range))
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, u64::from_be_bytes)
        };
        Self {
            last_attempt_ms: field(0..8),
            next_due_ms: field(8..16),
        }
    }

    pub fn encode(&self) -> [u8; 16] {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.last_attempt_ms.to_be_bytes());
        bytes[8..].copy_from_slice(&self.next_due_ms.to_be_bytes());
        bytes
    }

    /// Whether a fetch should start now: it is due, or a token named an unknown key and the
    /// last attempt is old enough.
    pub fn is_due(&self, now_ms: u64, early_fetch_wanted: bool) -> bool {
        now_ms >= self.next_due_ms
            || (early_fetch_wanted
                && now_ms
                    >= self
                        .last_attempt_ms
                        .saturating_add(EARLY_FETCH_MIN_INTERVAL_MS))
    }

    /// The record a worker writes to claim a fetch that times out after `timeout_ms`.
    pub fn claimed(now_ms: u64, timeout_ms: u64) -> Self {
        Self {
            last_attempt_ms: now_ms,
            next_due_ms: now_ms
                .saturating_add(timeout_ms)
                .saturating_add(CLAIM_SLACK_MS),
        }
    }

    /// The record after a fetch attempted at `self.last_attempt_ms` ended at `now_ms`.
    pub fn after(self, now_ms: u64, outcome: FetchOutcome, refresh_ms: u64) -> Self {
        let wait = match outcome {
            FetchOutcome::Success => refresh_ms,
            FetchOutcome::FailedWithKeys => refresh_ms.min(RETRY_WITH_KEYS_MS),
            FetchOutcome::FailedWithoutKeys => RETRY_WITHOUT_KEYS_MS,
        };
        Self {
            last_attempt_ms: self.last_attempt_ms,
            next_due_ms: now_ms.saturating_add(wait),
        }
    }
}

/// How a fetch ended, as far as the schedule cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchOutcome {
    Success,
    FailedWithKeys,
    FailedWithoutKeys,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absent_or_short_record_is_due_now() {
        assert_eq!(FetchSchedule::decode(None), FetchSchedule::default());
        assert_eq!(
            FetchSchedule::decode(Some(b"short")),
            FetchSchedule::default()
        );
        assert!(FetchSchedule::decode(None).is_due(1, false));
    }

    #[test]
    fn the_record_round_trips() {
        let schedule = FetchSchedule {
            last_attempt_ms: 1_700_000_000_123,
            next_due_ms: 1_700_000_300_123,
        };
        assert_eq!(FetchSchedule::decode(Some(&schedule.encode())), schedule);
    }

    #[test]
    fn a_claim_blocks_others_until_its_timeout() {
        let claim = FetchSchedule::claimed(1_000_000, 5_000);
        assert!(!claim.is_due(1_000_000, false));
        assert!(!claim.is_due(1_005_999, false));
        assert!(claim.is_due(1_006_000, false));
    }

    #[test]
    fn refreshes_follow_the_outcome() {
        let claim = FetchSchedule::claimed(0, 5_000);
        let refresh = 300_000;
        let ok = claim.after(100, FetchOutcome::Success, refresh);
        assert_eq!(ok.next_due_ms, 300_100);
        assert_eq!(ok.last_attempt_ms, 0);
        assert_eq!(
            claim
                .after(100, FetchOutcome::FailedWithKeys, refresh)
                .next_due_ms,
            10_100
        );
        assert_eq!(
            claim
                .after(100, FetchOutcome::FailedWithKeys, 3_000)
                .next_due_ms,
            3_100
        );
        assert_eq!(
            claim
                .after(100, FetchOutcome::FailedWithoutKeys, refresh)
                .next_due_ms,
            2_100
        );
    }

    #[test]
    fn early_fetches_are_rate_limited() {
        let schedule = FetchSchedule {
            last_attempt_ms: 100_000,
            next_due_ms: 400_000,
        };
        assert!(!schedule.is_due(105_000, false));
        assert!(!schedule.is_due(105_000, true));
        assert!(!schedule.is_due(109_999, true));
        assert!(schedule.is_due(110_000, true));
        assert!(!schedule.is_due(110_000, false));
    }
}

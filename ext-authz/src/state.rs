//! The in-memory state every Check reads: revocations, user records and the compiled config.
//!
//! Checks never wait for Redis: they read immutable snapshots behind [`ArcSwap`]s, which the
//! store task ([`crate::store`]) and the config reloader replace whole. Readers therefore see
//! either the old or the new state, never a half-applied one, and never take a lock.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};
use mcp_auth_proto::store::{RevocationEvent, RevocationTarget, UserRecord};
use tokio::sync::broadcast;

use crate::metrics::Metrics;
use crate::settings::Settings;

/// What a revocation record covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetKind {
    Token,
    Grant,
    User,
    Client,
}

impl TargetKind {
    /// The kind as written in Redis keys and events.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Token => "token",
            TargetKind::Grant => "grant",
            TargetKind::User => "user",
            TargetKind::Client => "client",
        }
    }
}

/// One revocation as kept in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revocation {
    /// Tokens issued at or before this instant (Unix seconds) are revoked.
    pub revoked_at: u64,
    /// After this instant nothing the record covers can still be valid; it may be dropped.
    pub expires_at: u64,
}

/// Revocations by target, one map per kind so a lookup borrows the id instead of building a key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevocationSet {
    tokens: HashMap<String, Revocation>,
    grants: HashMap<String, Revocation>,
    users: HashMap<String, Revocation>,
    clients: HashMap<String, Revocation>,
}

impl RevocationSet {
    /// Adds `event`. Two revocations of one target merge into the wider one (latest
    /// `revoked_at`, latest `expires_at`): a later revocation covers everything an earlier
    /// one did, and replaying an old event never shrinks what is revoked.
    pub fn insert(&mut self, event: &RevocationEvent) {
        let (map, id) = match &event.target {
            RevocationTarget::Token(id) => (&mut self.tokens, id),
            RevocationTarget::Grant(id) => (&mut self.grants, id),
            RevocationTarget::User(id) => (&mut self.users, id),
            RevocationTarget::Client(id) => (&mut self.clients, id),
        };
        let new = Revocation {
            revoked_at: event.revoked_at,
            expires_at: event.expires_at,
        };
        map.entry(id.clone())
            .and_modify(|old| {
                old.revoked_at = old.revoked_at.max(new.revoked_at);
                old.expires_at = old.expires_at.max(new.expires_at);
            })
            .or_insert(new);
    }

    /// The revocation of `id` as a `kind`, if any (expired ones included: callers compare).
    pub fn get(&self, kind: TargetKind, id: &str) -> Option<&Revocation> {
        self.map(kind).get(id)
    }

    /// Drops every record whose `expires_at` has passed; returns how many went.
    pub fn prune(&mut self, now: u64) -> usize {
        let before = self.len();
        for map in [
            &mut self.tokens,
            &mut self.grants,
            &mut self.users,
            &mut self.clients,
        ] {
            map.retain(|_, r| r.expires_at > now);
        }
        before - self.len()
    }

    /// True when some record has expired at `now`.
    pub fn has_expired(&self, now: u64) -> bool {
        [&self.tokens, &self.grants, &self.users, &self.clients]
            .iter()
            .any(|map| map.values().any(|r| r.expires_at <= now))
    }

    pub fn len(&self) -> usize {
        self.tokens.len() + self.grants.len() + self.users.len() + self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn map(&self, kind: TargetKind) -> &HashMap<String, Revocation> {
        match kind {
            TargetKind::Token => &self.tokens,
            TargetKind::Grant => &self.grants,
            TargetKind::User => &self.users,
            TargetKind::Client => &self.clients,
        }
    }
}

/// Everything loaded from Redis, as of one resync plus the events applied since.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreSnapshot {
    pub revocations: RevocationSet,
    /// User records by subject.
    pub users: HashMap<String, UserRecord>,
}

/// Why no Check can be answered right now (infrastructure, not a deny).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    #[error("no state has been loaded from Redis yet")]
    NotLoaded,
    #[error("Redis has not answered for {0:?}, past the grace time")]
    RedisLost(Duration),
}

/// What one Check reads: consistent snapshots of the config and the store.
#[derive(Debug, Clone)]
pub struct View {
    pub settings: Arc<Settings>,
    pub store: Arc<StoreSnapshot>,
}

/// A change of the state that voids decisions made before it (pushed to fast-mode filters,
/// [`crate::decisions`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// One more revocation.
    Revoked(RevocationEvent),
    /// A user record changed (a login): decisions about this subject are void.
    UserChanged(String),
    /// Anything else: a config reload, a resync that found what events had not said.
    Flush(&'static str),
}

/// Changes buffered per slow watcher before it is told to flush everything instead.
const CHANGE_BUFFER: usize = 4_096;

/// The state shared by the gRPC service, the store task and the config reloader.
#[derive(Debug)]
pub struct Shared {
    settings: ArcSwap<Settings>,
    changes: broadcast::Sender<Change>,
    store: ArcSwapOption<StoreSnapshot>,
    /// Reference for [`Shared::last_contact`]; `Instant`s cannot be stored atomically.
    epoch: Instant,
    /// Milliseconds after `epoch` at which Redis last answered, plus one; 0 = never.
    last_contact: AtomicU64,
    /// This process' metrics.
    pub metrics: Metrics,
}

/// Redis silent for longer than this (three missed pings) counts as lost: the decisions
/// then come from memory, and the health service says so.
pub const REDIS_LOST_AFTER: Duration = Duration::from_secs(3);

impl Shared {
    /// New state with no store snapshot: every Check is [`Unavailable::NotLoaded`] until the
    /// first resync.
    pub fn new(settings: Settings) -> Self {
        Self {
            settings: ArcSwap::from_pointee(settings),
            changes: broadcast::channel(CHANGE_BUFFER).0,
            store: ArcSwapOption::empty(),
            epoch: Instant::now(),
            last_contact: AtomicU64::new(0),
            metrics: Metrics::new(),
        }
    }

    /// The current compiled config.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.load_full()
    }

    /// Replaces the compiled config (reload).
    pub fn set_settings(&self, settings: Settings) {
        self.settings.store(Arc::new(settings));
        self.announce(Change::Flush("config reloaded"));
    }

    /// Every change from now on, in order.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    fn announce(&self, change: Change) {
        // An error only means nobody is watching.
        let _ = self.changes.send(change);
    }

    /// The state to answer a Check at `now`, or why there is none.
    pub fn view(&self, now: Instant) -> Result<View, Unavailable> {
        let settings = self.settings.load_full();
        let store = self.store.load_full().ok_or(Unavailable::NotLoaded)?;
        let silent = self.silence(now).ok_or(Unavailable::NotLoaded)?;
        // Past the grace time the revocations in memory may be missing recent ones: fail
        // closed and let Envoy's failure mode deny.
        if silent > settings.redis_grace {
            return Err(Unavailable::RedisLost(silent));
        }
        Ok(View { settings, store })
    }

    /// True when a Check at `now` would be answered.
    pub fn is_available(&self, now: Instant) -> bool {
        self.view(now).is_ok()
    }

    /// True when Redis answered within [`REDIS_LOST_AFTER`] of `now`.
    pub fn redis_answers(&self, now: Instant) -> bool {
        self.silence(now).is_some_and(|s| s <= REDIS_LOST_AFTER)
    }

    /// The health service's view: answering, and from a state Redis keeps current (not
    /// from memory past a Redis loss, which is still answered until the grace time ends).
    pub fn is_serving(&self, now: Instant) -> bool {
        self.is_available(now) && self.redis_answers(now)
    }

    /// Records that Redis answered at `at`.
    pub fn mark_contact(&self, at: Instant) {
        let ms = at.saturating_duration_since(self.epoch).as_millis();
        let ms = u64::try_from(ms).unwrap_or(u64::MAX - 1) + 1;
        self.last_contact.fetch_max(ms, Ordering::Relaxed);
    }

    /// How long Redis has been silent at `now`; `None` if it never answered.
    pub fn silence(&self, now: Instant) -> Option<Duration> {
        match self.last_contact.load(Ordering::Relaxed) {
            0 => None,
            ms => {
                let last = self.epoch + Duration::from_millis(ms - 1);
                Some(now.saturating_duration_since(last))
            }
        }
    }

    /// Installs a freshly loaded snapshot (start, resync, reconnect).
    /// When it differs from what events had built, decisions made on the old one are void.
    pub fn install(&self, snapshot: StoreSnapshot) {
        let snapshot = Arc::new(snapshot);
        let previous = self.store.swap(Some(Arc::clone(&snapshot)));
        if previous.is_some_and(|previous| *previous != *snapshot) {
            self.announce(Change::Flush("state resynced from Redis"));
        }
    }

    /// The current store snapshot, if one was loaded.
    pub fn store(&self) -> Option<Arc<StoreSnapshot>> {
        self.store.load_full()
    }

    /// Applies one revocation event on top of the current snapshot. Events before the first
    /// load are dropped: the load that follows reads them from their keys.
    pub fn apply(&self, event: &RevocationEvent) {
        self.update(|snapshot| snapshot.revocations.insert(event));
        self.announce(Change::Revoked(event.clone()));
    }

    /// Applies a user record written at a login (new orgs and teams count at once).
    pub fn apply_user(&self, record: UserRecord) {
        let subject = record.subject.clone();
        self.update(|snapshot| {
            snapshot
                .users
                .insert(record.subject.clone(), record.clone());
        });
        self.announce(Change::UserChanged(subject));
    }

    /// Drops revocations that expired at `now` (copying the snapshot only when one did).
    pub fn prune(&self, now: u64) -> usize {
        let expired = self
            .store
            .load()
            .as_ref()
            .is_some_and(|s| s.revocations.has_expired(now));
        if !expired {
            return 0;
        }
        let mut pruned = 0;
        self.update(|snapshot| pruned = snapshot.revocations.prune(now));
        pruned
    }

    /// Copy-on-write update. Only the store task writes, so there is no lost update to
    /// retry; `rcu` keeps it correct should that change.
    fn update(&self, mut change: impl FnMut(&mut StoreSnapshot)) {
        self.store.rcu(|current| {
            current.as_ref().map(|snapshot| {
                let mut next = StoreSnapshot::clone(snapshot);
                change(&mut next);
                Arc::new(next)
            })
        });
    }
}

#[cfg(test)]
mod tests;

//! `admin purge`: deletes state that can no longer be used but that Redis would keep until
//! its TTL (often the refresh-token lifetime), or forever when a key lost its TTL.
//!
//! Per kind, what is dead:
//! - **client**: its `expires_at` has passed (`/authorize` and `/token` treat it as unknown);
//! - **grant**: its client is gone (a registered id with no record; ids are random, so it
//!   never comes back; a metadata-document client, an https URL, is never stored and never
//!   gone), or no refresh token record names it and it is older than an access token's
//!   lifetime plus leeway (only a refresh reads a grant; a grant of a client without refresh
//!   tokens is left to its TTL, which is that lifetime);
//! - **refresh token**: its grant is gone (the rotation script refuses it; reuse detection
//!   would revoke a grant that no longer exists);
//! - **consent**: its client is gone (the user would be asked again anyway);
//! - **revocation**: its `expires_at` has passed (nothing it covers can still be valid).
//!
//! Users, codes, pending sign-ins and rate-limit cells are left alone: each has a TTL no
//! longer than its use (a user record is extended with every refresh, and ext_authz reads it
//! for access tokens no record lists).
//!
//! Never deleting something usable: each delete re-checks atomically, in Lua, the fact it was
//! decided on ([`crate::store::maintenance`]): a record rewritten since it was read stays; a
//! record whose grant or client exists at delete time stays; and a grant stays if its TTL
//! grew since it was read, which every refresh rotation does. Grants are read before refresh
//! tokens: a refresh token that exists all along is seen by the `SCAN`, and one made during
//! the purge (a rotation) extends its grant's TTL.

use std::collections::HashSet;
use std::time::Duration;

use mcp_auth_gateway::GatewayConfig;
use mcp_auth_proto::store::{RevocationEvent, match_prefix};
use serde::Serialize;

use super::{AdminError, store_for};
use crate::clients::cimd::looks_like_metadata_url;
use crate::oauth::client::ClientRecord;
use crate::state::system_now;
use crate::store::inventory::StoredString;
use crate::store::{GrantRecord, RefreshRecord, Store, StoreError, parse_json};

/// The kinds of record a purge deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PurgeKind {
    Client,
    Grant,
    RefreshToken,
    Consent,
    Revocation,
}

impl PurgeKind {
    pub const ALL: [PurgeKind; 5] = [
        PurgeKind::Client,
        PurgeKind::Grant,
        PurgeKind::RefreshToken,
        PurgeKind::Consent,
        PurgeKind::Revocation,
    ];

    /// Plural, for the summary.
    pub fn plural(self) -> &'static str {
        match self {
            PurgeKind::Client => "clients",
            PurgeKind::Grant => "grants",
            PurgeKind::RefreshToken => "refresh tokens",
            PurgeKind::Consent => "consents",
            PurgeKind::Revocation => "revocations",
        }
    }
}

/// One record deleted (or, in a dry run, that would be).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Purged {
    pub kind: PurgeKind,
    /// The key relative to `redis.key_prefix`.
    pub key: String,
    pub reason: &'static str,
}

/// What a purge deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    pub dry_run: bool,
    pub purged: Vec<Purged>,
}

impl PurgeReport {
    pub fn count(&self, kind: PurgeKind) -> usize {
        self.purged.iter().filter(|p| p.kind == kind).count()
    }
}

/// What a purge needs besides the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurgePolicy {
    /// Unix seconds.
    pub now: u64,
    /// A grant no refresh token names is dead only once it is older than this (an access
    /// token's lifetime plus the clock leeway).
    pub grant_min_age: Duration,
}

impl PurgePolicy {
    pub fn from_config(config: &GatewayConfig, now: u64) -> Self {
        Self {
            now,
            grant_min_age: config.tokens.access_token + config.filter.clock_leeway,
        }
    }
}

/// Deletes dead state (see the module doc); with `dry_run`, only reports it.
pub async fn purge(config: &GatewayConfig, dry_run: bool) -> Result<PurgeReport, AdminError> {
    let policy = PurgePolicy::from_config(config, system_now());
    purge_in(&store_for(config)?, policy, dry_run).await
}

/// Records that parse, and the keys of those that do not.
struct Parsed<T> {
    records: Vec<(StoredString, T)>,
    unreadable: Vec<String>,
}

/// Reads every record matching `pattern`. One that does not parse is logged and left
/// alone (a purge never deletes what it cannot read), and still counts as existing.
async fn read_parsed<T: serde::de::DeserializeOwned>(
    store: &Store,
    pattern: String,
) -> Result<Parsed<T>, StoreError> {
    let mut scan = store.scan(pattern);
    let mut parsed = Parsed {
        records: Vec::new(),
        unreadable: Vec::new(),
    };
    while let Some(page) = scan.next_page().await? {
        for stored in store.read_strings(&page).await? {
            match parse_json::<T>(&stored.key, &stored.value) {
                Ok(record) => parsed.records.push((stored, record)),
                Err(error) => {
                    tracing::warn!(%error, "purge: leaving a record it cannot read");
                    parsed.unreadable.push(stored.key);
                }
            }
        }
    }
    Ok(parsed)
}

/// One purge run: what it read and what it deleted.
struct Run<'s> {
    store: &'s Store,
    dry_run: bool,
    /// Registered clients that are not expired.
    live_clients: HashSet<String>,
    report: PurgeReport,
}

impl Run<'_> {
    /// Records `key` as purged when `deleted` (a dry run deletes nothing and records all).
    async fn purge(
        &mut self,
        kind: PurgeKind,
        key: &str,
        reason: &'static str,
        delete: impl Future<Output = Result<bool, StoreError>>,
    ) -> Result<bool, StoreError> {
        let deleted = self.dry_run || delete.await?;
        if deleted {
            let key = self.store.keys().relative(key).unwrap_or(key).to_owned();
            self.report.purged.push(Purged { kind, key, reason });
        }
        Ok(deleted)
    }

    /// True when `client_id` names a registered client that no longer exists.
    fn client_gone(&self, client_id: &str) -> bool {
        !looks_like_metadata_url(client_id) && !self.live_clients.contains(client_id)
    }
}

/// [`purge`] on `store`.
pub async fn purge_in(
    store: &Store,
    policy: PurgePolicy,
    dry_run: bool,
) -> Result<PurgeReport, AdminError> {
    let keys = store.keys();
    let mut run = Run {
        store,
        dry_run,
        live_clients: HashSet::new(),
        report: PurgeReport {
            dry_run,
            purged: Vec::new(),
        },
    };
    let clients = read_parsed::<ClientRecord>(store, keys.client_pattern()).await?;
    let grants = read_parsed::<GrantRecord>(store, keys.grant_pattern()).await?;
    let mut tokens = Vec::new();
    let mut named_grants = HashSet::new();
    let mut scan = store.scan(keys.refresh_token_pattern());
    while let Some(page) = scan.next_page().await? {
        for token in store.read_refresh_tokens(&page).await? {
            match parse_json::<RefreshRecord>(&token.key, &token.data) {
                Ok(record) => {
                    named_grants.insert(record.grant_id.clone());
                    tokens.push((token.key, record));
                }
                Err(error) => tracing::warn!(%error, "purge: leaving a record it cannot read"),
            }
        }
    }

    let client_namespace = keys.client("");
    for key in &clients.unreadable {
        let id = key.strip_prefix(&client_namespace).unwrap_or_default();
        run.live_clients.insert(id.to_owned());
    }
    for (stored, client) in clients.records {
        if client.expires_at.is_some_and(|at| at <= policy.now) {
            let deleted = run
                .purge(
                    PurgeKind::Client,
                    &stored.key,
                    "past its expires_at",
                    store.delete_if_unchanged(&stored.key, &stored.value),
                )
                .await?;
            if deleted {
                continue;
            }
        }
        run.live_clients.insert(client.client_id);
    }

    let grant_namespace = keys.grant("");
    let mut live_grants: HashSet<String> = grants
        .unreadable
        .iter()
        .map(|key| {
            key.strip_prefix(&grant_namespace)
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let min_age = policy.grant_min_age.as_secs();
    for (stored, grant) in grants.records {
        let grant_id = stored
            .key
            .strip_prefix(&grant_namespace)
            .unwrap_or_default();
        let deleted = if run.client_gone(&grant.client_id) {
            let client_key = [keys.client(&grant.client_id)];
            let delete = store.delete_unless_any_exists(&stored.key, &client_key);
            run.purge(PurgeKind::Grant, &stored.key, "its client is gone", delete)
                .await?
        } else if !named_grants.contains(grant_id)
            && grant.created_at.saturating_add(min_age) <= policy.now
        {
            let delete = store.delete_unless_extended(&stored.key, stored.ttl_ms);
            run.purge(
                PurgeKind::Grant,
                &stored.key,
                "no refresh token names it",
                delete,
            )
            .await?
        } else {
            false
        };
        if !deleted {
            live_grants.insert(grant_id.to_owned());
        }
    }

    for (key, token) in tokens {
        if !live_grants.contains(&token.grant_id) {
            let grant_key = [keys.grant(&token.grant_id)];
            let delete = store.delete_unless_any_exists(&key, &grant_key);
            run.purge(PurgeKind::RefreshToken, &key, "its grant is gone", delete)
                .await?;
        }
    }

    purge_consents(&mut run).await?;

    let revocations = match_prefix(&keys.revocation_namespace());
    for (stored, event) in read_parsed::<RevocationEvent>(store, revocations)
        .await?
        .records
    {
        if event.expires_at <= policy.now {
            let delete = store.delete_if_unchanged(&stored.key, &stored.value);
            run.purge(
                PurgeKind::Revocation,
                &stored.key,
                "past its expires_at",
                delete,
            )
            .await?;
        }
    }
    Ok(run.report)
}

/// Consents of clients that are gone. A consent key is `consent:<subject>:<client id>`, and
/// both may hold `:`; so every split is tried, and the consent stays if any could be a
/// client that exists.
async fn purge_consents(run: &mut Run<'_>) -> Result<(), StoreError> {
    let store = run.store;
    let namespace = store.keys().consent_namespace();
    for key in store.scan_all(store.keys().consent_pattern()).await? {
        let rest = key.strip_prefix(&namespace).unwrap_or_default();
        let candidates: Vec<&str> = rest
            .match_indices(':')
            .map(|(i, _)| &rest[i + 1..])
            .collect();
        if candidates.is_empty() || !candidates.iter().all(|c| run.client_gone(c)) {
            continue;
        }
        let client_keys: Vec<String> = candidates.iter().map(|c| store.keys().client(c)).collect();
        let delete = store.delete_unless_any_exists(&key, &client_keys);
        run.purge(PurgeKind::Consent, &key, "its client is gone", delete)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;

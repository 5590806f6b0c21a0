//! `admin clients|grants|users list|show`: what Redis holds, read with `SCAN` over the
//! deployment's prefix.
//!
//! The entries serialize as the `--json` output: each stored record as stored (its field
//! names, Unix-second timestamps) plus `ttl_secs`, the remaining lifetime of its Redis key
//! (`null`: none). Records hold no secret: a client's secret and registration access token
//! are kept as SHA-256 digests, in fields named `secret_digest` and
//! `registration_token_digest`; the human output shows neither.

use std::collections::BTreeMap;

use mcp_auth_gateway::GatewayConfig;
use mcp_auth_proto::store::UserRecord;
use serde::Serialize;

use super::{AdminError, store_for};
use crate::oauth::client::ClientRecord;
use crate::store::inventory::StoredString;
use crate::store::{ConsentRecord, GrantRecord, RefreshRecord, Store, StoreError, parse_json};

/// A registered client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientEntry {
    #[serde(flatten)]
    pub record: ClientRecord,
    /// Seconds until Redis drops the record; `None`: never.
    pub ttl_secs: Option<u64>,
}

/// A grant: one user's authorization of one client for one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantEntry {
    pub grant_id: String,
    #[serde(flatten)]
    pub record: GrantRecord,
    pub ttl_secs: Option<u64>,
}

/// A grant and the refresh tokens that name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantDetail {
    #[serde(flatten)]
    pub grant: GrantEntry,
    pub refresh_tokens: RefreshTokenCounts,
}

/// Refresh token records of one grant (a rotated one is kept for reuse detection).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RefreshTokenCounts {
    pub active: usize,
    pub rotated: usize,
}

/// A user record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserEntry {
    #[serde(flatten)]
    pub record: UserRecord,
    pub ttl_secs: Option<u64>,
}

/// A user's remembered consent for one client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsentEntry {
    pub client_id: String,
    #[serde(flatten)]
    pub record: ConsentRecord,
    pub ttl_secs: Option<u64>,
}

/// A user: their record (gone when it expired), grants and consents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserDetail {
    pub subject: String,
    pub user: Option<UserEntry>,
    pub grants: Vec<GrantEntry>,
    pub consents: Vec<ConsentEntry>,
}

/// Which grants to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantFilter {
    /// Only this user's (`sub`).
    pub subject: Option<String>,
    pub client_id: Option<String>,
}

impl GrantFilter {
    fn admits(&self, grant: &GrantRecord) -> bool {
        self.subject.as_ref().is_none_or(|s| *s == grant.subject)
            && self
                .client_id
                .as_ref()
                .is_none_or(|c| *c == grant.client_id)
    }
}

fn secs(ttl_ms: Option<u64>) -> Option<u64> {
    ttl_ms.map(|ms| ms.div_ceil(1000))
}

/// Every string record matching `pattern`, read a `SCAN` page at a time.
async fn read_all(store: &Store, pattern: String) -> Result<Vec<StoredString>, StoreError> {
    let mut scan = store.scan(pattern);
    let mut records = Vec::new();
    while let Some(page) = scan.next_page().await? {
        records.extend(store.read_strings(&page).await?);
    }
    Ok(records)
}

/// The id a key holds after its kind's namespace (`<prefix>grant:` for grants).
fn id_after<'k>(key: &'k str, namespace: &str) -> &'k str {
    key.strip_prefix(namespace).unwrap_or(key)
}

/// Every registered client, oldest first.
pub async fn list_clients(config: &GatewayConfig) -> Result<Vec<ClientEntry>, AdminError> {
    list_clients_in(&store_for(config)?).await
}

/// [`list_clients`] on `store`.
pub async fn list_clients_in(store: &Store) -> Result<Vec<ClientEntry>, AdminError> {
    let mut clients = read_all(store, store.keys().client_pattern())
        .await?
        .into_iter()
        .map(|stored| {
            Ok(ClientEntry {
                record: parse_json(&stored.key, &stored.value)?,
                ttl_secs: secs(stored.ttl_ms),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    clients.sort_by(|a, b| {
        (a.record.issued_at, &a.record.client_id).cmp(&(b.record.issued_at, &b.record.client_id))
    });
    Ok(clients)
}

/// One registered client.
pub async fn show_client(
    config: &GatewayConfig,
    client_id: &str,
) -> Result<ClientEntry, AdminError> {
    show_client_in(&store_for(config)?, client_id).await
}

/// [`show_client`] on `store`.
pub async fn show_client_in(store: &Store, client_id: &str) -> Result<ClientEntry, AdminError> {
    let key = store.keys().client(client_id);
    let stored = store.read_strings(&[key]).await?.pop();
    let stored = stored.ok_or_else(|| AdminError::not_found("client", client_id))?;
    Ok(ClientEntry {
        record: parse_json(&stored.key, &stored.value)?,
        ttl_secs: secs(stored.ttl_ms),
    })
}

fn grant_entry(store: &Store, stored: &StoredString) -> Result<GrantEntry, StoreError> {
    Ok(GrantEntry {
        grant_id: id_after(&stored.key, &store.keys().grant("")).to_owned(),
        record: parse_json(&stored.key, &stored.value)?,
        ttl_secs: secs(stored.ttl_ms),
    })
}

/// The grants `filter` admits, oldest first.
pub async fn list_grants(
    config: &GatewayConfig,
    filter: &GrantFilter,
) -> Result<Vec<GrantEntry>, AdminError> {
    list_grants_in(&store_for(config)?, filter).await
}

/// [`list_grants`] on `store`.
pub async fn list_grants_in(
    store: &Store,
    filter: &GrantFilter,
) -> Result<Vec<GrantEntry>, AdminError> {
    let mut grants = Vec::new();
    for stored in read_all(store, store.keys().grant_pattern()).await? {
        let grant = grant_entry(store, &stored)?;
        if filter.admits(&grant.record) {
            grants.push(grant);
        }
    }
    grants.sort_by(|a, b| {
        (a.record.created_at, &a.grant_id).cmp(&(b.record.created_at, &b.grant_id))
    });
    Ok(grants)
}

/// One grant, with a count of the refresh tokens naming it (a scan of every refresh token).
pub async fn show_grant(config: &GatewayConfig, grant_id: &str) -> Result<GrantDetail, AdminError> {
    show_grant_in(&store_for(config)?, grant_id).await
}

/// [`show_grant`] on `store`.
pub async fn show_grant_in(store: &Store, grant_id: &str) -> Result<GrantDetail, AdminError> {
    let stored = store.read_strings(&[store.keys().grant(grant_id)]).await?;
    let stored = stored
        .first()
        .ok_or_else(|| AdminError::not_found("grant", grant_id))?;
    let grant = grant_entry(store, stored)?;
    let mut refresh_tokens = RefreshTokenCounts::default();
    let mut scan = store.scan(store.keys().refresh_token_pattern());
    while let Some(page) = scan.next_page().await? {
        for token in store.read_refresh_tokens(&page).await? {
            let record: RefreshRecord = parse_json(&token.key, &token.data)?;
            if record.grant_id != grant_id {
                continue;
            }
            match token.rotated {
                Some(_) => refresh_tokens.rotated += 1,
                None => refresh_tokens.active += 1,
            }
        }
    }
    Ok(GrantDetail {
        grant,
        refresh_tokens,
    })
}

/// Every user record, by login.
pub async fn list_users(config: &GatewayConfig) -> Result<Vec<UserEntry>, AdminError> {
    list_users_in(&store_for(config)?).await
}

/// [`list_users`] on `store`.
pub async fn list_users_in(store: &Store) -> Result<Vec<UserEntry>, AdminError> {
    let pattern = mcp_auth_proto::store::match_prefix(&store.keys().user(""));
    let mut users = read_all(store, pattern)
        .await?
        .into_iter()
        .map(|stored| {
            Ok(UserEntry {
                record: parse_json(&stored.key, &stored.value)?,
                ttl_secs: secs(stored.ttl_ms),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    users.sort_by(|a, b| {
        (a.record.login.to_lowercase(), &a.record.subject)
            .cmp(&(b.record.login.to_lowercase(), &b.record.subject))
    });
    Ok(users)
}

/// One user (`sub`): their record, grants and consents; not found when none exists.
pub async fn show_user(config: &GatewayConfig, subject: &str) -> Result<UserDetail, AdminError> {
    show_user_in(&store_for(config)?, subject).await
}

/// [`show_user`] on `store`.
pub async fn show_user_in(store: &Store, subject: &str) -> Result<UserDetail, AdminError> {
    let keys = store.keys();
    let user = match store.read_strings(&[keys.user(subject)]).await?.pop() {
        Some(stored) => Some(UserEntry {
            record: parse_json(&stored.key, &stored.value)?,
            ttl_secs: secs(stored.ttl_ms),
        }),
        None => None,
    };
    let filter = GrantFilter {
        subject: Some(subject.to_owned()),
        client_id: None,
    };
    let grants = list_grants_in(store, &filter).await?;
    let namespace = keys.consent(subject, "");
    let mut consents: BTreeMap<String, ConsentEntry> = BTreeMap::new();
    for stored in read_all(store, keys.consent_pattern_of(subject)).await? {
        let client_id = id_after(&stored.key, &namespace).to_owned();
        consents.insert(
            client_id.clone(),
            ConsentEntry {
                client_id,
                record: parse_json(&stored.key, &stored.value)?,
                ttl_secs: secs(stored.ttl_ms),
            },
        );
    }
    if user.is_none() && grants.is_empty() && consents.is_empty() {
        return Err(AdminError::not_found("user", subject));
    }
    Ok(UserDetail {
        subject: subject.to_owned(),
        user,
        grants,
        consents: consents.into_values().collect(),
    })
}

#[cfg(test)]
mod tests;

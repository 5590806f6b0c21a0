//! Resolving a `client_id` to a client: a registered client from Redis, or, for an https
//! URL, a Client ID Metadata Document fetched from it (AS-8).

pub mod cimd;

use crate::oauth::client::Client;
use crate::settings::Settings;
use crate::store::{Store, StoreError};

/// Longest `client_id` looked up (registered ids are 22 characters; URLs are bounded by CIMD).
pub const MAX_CLIENT_ID_LEN: usize = 2048;

/// Why a client could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("unknown client")]
    Unknown,
    #[error("client metadata document: {0}")]
    MetadataDocument(#[from] cimd::CimdError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Looks up `client_id`: an https URL is a metadata document, anything else a registration.
pub async fn resolve(
    store: &Store,
    documents: &cimd::CimdResolver,
    client_id: &str,
    now: u64,
) -> Result<Client, ClientError> {
    if client_id.is_empty() || client_id.len() > MAX_CLIENT_ID_LEN {
        return Err(ClientError::Unknown);
    }
    if cimd::looks_like_metadata_url(client_id) {
        return Ok(documents.resolve(client_id).await?);
    }
    let record = store.client(client_id).await?.ok_or(ClientError::Unknown)?;
    if record.expires_at.is_some_and(|at| at <= now) {
        return Err(ClientError::Unknown);
    }
    Client::from_record(record).ok_or(ClientError::Unknown)
}

/// Records that `client` was used (a code was exchanged): a registration's short unused
/// lifetime (`tokens.unused_client_registration`) becomes its full one. Touches Redis only
/// for the first use (`Client::awaiting_first_use`, read when the client was resolved).
pub async fn mark_used(
    store: &Store,
    settings: &Settings,
    client: &Client,
    now: u64,
) -> Result<(), StoreError> {
    if !client.awaiting_first_use {
        return Ok(());
    }
    let Some(mut record) = store.client(&client.client_id).await? else {
        return Ok(());
    };
    if record.used {
        return Ok(());
    }
    record.used = true;
    record.expires_at = settings.client_ttl.map(|ttl| now + ttl.as_secs());
    store.put_client(&record, now).await
}

//! Registered clients (RFC 7591), kept until their expiry.

use redis::AsyncCommands as _;

use super::{Store, StoreError};
use crate::oauth::client::ClientRecord;

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

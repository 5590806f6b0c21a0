//! Revocations, read by ext_authz, and the events announcing them.

use mcp_auth_proto::store::{RevocationEvent, RevocationTarget};

use super::{Store, StoreError, parse_json, to_json};

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

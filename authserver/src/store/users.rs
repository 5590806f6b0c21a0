//! User records (read by ext_authz for live allow-lists) and remembered consents.

use mcp_auth_proto::store::UserRecord;
use redis::AsyncCommands as _;

use super::records::ConsentRecord;
use super::{Store, StoreError};

/// Users and their consents.
impl Store {
    pub async fn consent(
        &self,
        subject: &str,
        client_id: &str,
    ) -> Result<Option<ConsentRecord>, StoreError> {
        self.get_json(&self.keys.consent(subject, client_id)).await
    }

    pub async fn put_consent(
        &self,
        subject: &str,
        client_id: &str,
        consent: &ConsentRecord,
        ttl_secs: u64,
    ) -> Result<(), StoreError> {
        self.set_json(
            &self.keys.consent(subject, client_id),
            consent,
            Some(ttl_secs),
        )
        .await
    }

    pub async fn user(&self, subject: &str) -> Result<Option<UserRecord>, StoreError> {
        self.get_json(&self.keys.user(subject)).await
    }

    /// Writes what the identity provider said of a user (read by ext_authz for live
    /// allow-list checks).
    pub async fn put_user(&self, user: &UserRecord, ttl_secs: u64) -> Result<(), StoreError> {
        self.set_json(&self.keys.user(&user.subject), user, Some(ttl_secs))
            .await?;
        // Written first, then announced: a reader that misses the event reads the key at
        // its next resync.
        let payload = super::to_json(&self.keys.user_channel(), user)?;
        let mut conn = self.conn();
        redis::cmd("PUBLISH")
            .arg(self.keys.user_channel())
            .arg(payload)
            .query_async::<i64>(&mut conn)
            .await?;
        Ok(())
    }

    /// The subjects of every user record whose login is `login` (case-insensitive).
    pub async fn subjects_by_login(&self, login: &str) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn();
        let keys: Vec<String> = {
            let mut iter = conn
                .scan_match::<_, String>(self.keys.user_pattern())
                .await?;
            let mut keys = Vec::new();
            while let Some(key) = futures::StreamExt::next(&mut iter).await {
                keys.push(key?);
            }
            keys
        };
        let mut subjects = Vec::new();
        for key in keys {
            if let Some(user) = self.get_json::<UserRecord>(&key).await?
                && user.login.eq_ignore_ascii_case(login)
            {
                subjects.push(user.subject);
            }
        }
        Ok(subjects)
    }
}

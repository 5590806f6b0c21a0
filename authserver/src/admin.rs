//! Admin commands, run by the binary against the same gateway config (`mcp-auth-authserver
//! admin …`). They talk to Redis and the key directory directly, so no admin endpoint exists
//! to protect:
//! - revocation by user, login, client or grant, and signing key rotation (here);
//! - [`listing`]: clients, grants and users, listed and shown;
//! - [`purge`]: deletes what can no longer be used but would outlive its use in Redis;
//! - [`backup`] and [`restore`]: the state and the signing keys as versioned JSON lines.
//!
//! Each has a function taking the [`GatewayConfig`] and an `_in` variant taking a [`Store`]
//! (and the time), for tests. [`output`] renders the results for people.

use std::time::Duration;

use mcp_auth_gateway::GatewayConfig;
use mcp_auth_gateway::config::SigningAlg;
use mcp_auth_proto::store::{RevocationEvent, RevocationTarget};

use crate::keys::{KeyError, KeyTiming, Rotation};
use crate::state::system_now;
use crate::store::{Store, StoreError};

pub mod backup;
pub mod listing;
pub mod output;
pub mod purge;
pub mod restore;
#[cfg(test)]
mod test_support;

/// Why an admin command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("gateway config: `redis.url`: {0}")]
    RedisUrl(StoreError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("no user with login {0:?} has signed in")]
    UnknownLogin(String),
    #[error("no {kind} {id:?} in Redis")]
    NotFound { kind: &'static str, id: String },
}

impl AdminError {
    fn not_found(kind: &'static str, id: &str) -> Self {
        Self::NotFound {
            kind,
            id: id.to_owned(),
        }
    }
}

/// The store of `config`'s Redis.
fn store_for(config: &GatewayConfig) -> Result<Store, AdminError> {
    Store::new(&config.redis).map_err(AdminError::RedisUrl)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Whose tokens to revoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminTarget {
    /// A user by stable id (`sub`, GitHub's numeric id).
    User(String),
    /// A user by login name, looked up in the user records.
    Login(String),
    Client(String),
    Grant(String),
}

/// Revokes every token of `target` issued until now; returns the revocations written (and
/// published to ext_authz).
pub async fn revoke(
    config: &GatewayConfig,
    target: AdminTarget,
) -> Result<Vec<RevocationEvent>, AdminError> {
    let store = store_for(config)?;
    // As `revocation::longest_lifetime`: the longest token plus the filter's clock leeway.
    let lifetime =
        config.tokens.access_token.max(config.tokens.refresh_token) + config.filter.clock_leeway;
    revoke_in(&store, lifetime, system_now(), target).await
}

/// [`revoke`] with an explicit store, lifetime and time.
pub async fn revoke_in(
    store: &Store,
    lifetime: Duration,
    now: u64,
    target: AdminTarget,
) -> Result<Vec<RevocationEvent>, AdminError> {
    let targets = match target {
        AdminTarget::User(sub) => vec![RevocationTarget::User(sub)],
        AdminTarget::Client(id) => vec![RevocationTarget::Client(id)],
        AdminTarget::Grant(id) => vec![RevocationTarget::Grant(id)],
        AdminTarget::Login(login) => {
            let subjects = store.subjects_by_login(&login).await?;
            if subjects.is_empty() {
                return Err(AdminError::UnknownLogin(login));
            }
            subjects.into_iter().map(RevocationTarget::User).collect()
        }
    };
    let mut events = Vec::with_capacity(targets.len());
    for target in targets {
        events.push(crate::revocation::revoke_for(store, lifetime, now, target).await?);
    }
    Ok(events)
}

/// Writes a new signing key (of `alg`, default the config's) that every running authserver
/// publishes within seconds and signs with after the publish delay; deletes retired keys.
pub fn rotate_keys(config: &GatewayConfig, alg: Option<SigningAlg>) -> Result<Rotation, KeyError> {
    crate::keys::rotate(
        &config.authserver.keys_dir,
        alg.unwrap_or(config.authserver.signing_alg),
        KeyTiming::from_config(config),
        system_now(),
    )
}

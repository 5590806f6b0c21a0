//! Signing keys and the JWKS (RFC 7517): generated on first start, persisted under
//! `authserver.keys_dir`, reloaded from there, rotated without downtime.
//!
//! Rotation is driven by timestamps in the key files, so every authserver sharing the
//! directory agrees without talking to each other:
//! - the key that signs at `now` is the one with the latest `activates_at <= now`;
//! - a new key is written with `activates_at = now + publish delay` (the filter's JWKS
//!   refresh interval plus a margin), so it is in every verifier's JWKS before it signs;
//! - a superseded key stays published for the retention time (the access-token lifetime plus
//!   leeway) after its successor activated, so every token it signed expires first.

pub(crate) mod file;
pub mod jws;
pub mod provided;
pub mod signing;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_auth_gateway::config::SigningAlg;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use file::{KeyFile, KeyFileError};
pub use provided::{ProvidedKey, ProvidedKeyError};
pub use signing::{Jwk, JwkSet, SigningKey, SigningKeyError, alg_name};

/// Name of the HMAC key file for cookies and CSRF tokens (not a signing key: no `.json`).
const SESSION_KEY_FILE: &str = "session.key";

/// Why keys could not be loaded, created or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("authserver.keys_dir: {0}")]
    File(#[from] KeyFileError),
    #[error("authserver.keys_dir: key {kid}: {source}")]
    Key {
        kid: String,
        source: SigningKeyError,
    },
    #[error("authserver.keys_dir: key file {kid}.json: {problem}")]
    Corrupt { kid: String, problem: String },
    #[error("no signing key is active")]
    NoActiveKey,
    #[error("signing failed: {0}")]
    Sign(#[from] SigningKeyError),
}

/// Why a token we are asked about is not one of ours, or no longer valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("not a compact JWS")]
    Malformed,
    #[error("unknown key or algorithm")]
    UnknownKey,
    #[error("bad signature")]
    Signature,
    #[error("the claims are not ours")]
    Claims,
}

/// One loaded key.
#[derive(Debug)]
pub struct LoadedKey {
    pub kid: String,
    pub created_at: u64,
    pub activates_at: u64,
    key: SigningKey,
    jwk: Jwk,
    /// `BASE64URL(header)` of access tokens signed with this key, computed once.
    access_token_header: String,
}

impl LoadedKey {
    fn from_file(file: &KeyFile) -> Result<Self, KeyError> {
        let der = file.der().map_err(|problem| KeyError::Corrupt {
            kid: file.kid.clone(),
            problem,
        })?;
        let key = SigningKey::from_pkcs8(file.alg, &der).map_err(|source| KeyError::Key {
            kid: file.kid.clone(),
            source,
        })?;
        let access_token_header = jws::encode_header(&jws::Header {
            alg: alg_name(file.alg).to_owned(),
            typ: Some(mcp_auth_proto::claims::ACCESS_TOKEN_TYP.to_owned()),
            kid: Some(file.kid.clone()),
        });
        Ok(Self {
            jwk: key.public_jwk(&file.kid),
            kid: file.kid.clone(),
            created_at: file.created_at,
            activates_at: file.activates_at,
            key,
            access_token_header,
        })
    }

    pub fn alg(&self) -> SigningAlg {
        self.key.alg()
    }

    /// Signs `message` (a JWS signing input) with this key.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        Ok(self.key.sign(message)?)
    }
}

/// Every loaded key, ordered by activation; answers which key signs and which are published.
#[derive(Debug, Default)]
pub struct KeyRing {
    /// Sorted by `(activates_at, created_at)`.
    keys: Vec<LoadedKey>,
    retention: Duration,
}

impl KeyRing {
    fn new(mut keys: Vec<LoadedKey>, retention: Duration) -> Self {
        keys.sort_by_key(|k| (k.activates_at, k.created_at));
        Self { keys, retention }
    }

    /// The key that signs at `now`: the most recently activated one.
    pub fn signing_key(&self, now: u64) -> Option<&LoadedKey> {
        self.keys.iter().rev().find(|k| k.activates_at <= now)
    }

    /// When the key at `index` stopped signing (its successor's activation), if it has.
    fn superseded_at(&self, index: usize, now: u64) -> Option<u64> {
        self.keys
            .get(index + 1)
            .map(|next| next.activates_at)
            .filter(|at| *at <= now)
    }

    /// Keys in the JWKS at `now`: pending, signing, and superseded within the retention time.
    pub fn published(&self, now: u64) -> impl Iterator<Item = &LoadedKey> {
        self.keys
            .iter()
            .enumerate()
            .filter_map(move |(i, key)| match self.superseded_at(i, now) {
                Some(at) if now >= at.saturating_add(self.retention.as_secs()) => None,
                _ => Some(key),
            })
    }

    /// Keys neither signing nor published at `now`: safe to delete.
    pub fn retired(&self, now: u64) -> Vec<&LoadedKey> {
        let published: Vec<&str> = self.published(now).map(|k| k.kid.as_str()).collect();
        self.keys
            .iter()
            .filter(|k| !published.contains(&k.kid.as_str()))
            .collect()
    }

    /// RFC 7517 §5 JWK set of the published keys.
    pub fn jwks(&self, now: u64) -> JwkSet {
        JwkSet {
            keys: self.published(now).map(|k| k.jwk.clone()).collect(),
        }
    }

    /// True when a key of `alg` is pending (published, not yet signing) at `now`.
    fn has_pending(&self, alg: SigningAlg, now: u64) -> bool {
        self.keys
            .iter()
            .any(|k| k.activates_at > now && k.alg() == alg)
    }

    /// Signs `claims` as an access token: `typ: at+jwt`, `kid` (RFC 9068 §2.1).
    pub fn sign_access_token(&self, claims: &impl Serialize, now: u64) -> Result<String, KeyError> {
        let key = self.signing_key(now).ok_or(KeyError::NoActiveKey)?;
        let payload = serde_json::to_vec(claims).map_err(|_| KeyError::NoActiveKey)?;
        let mut token = String::with_capacity(key.access_token_header.len() + payload.len() * 2);
        token.push_str(&key.access_token_header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let signature = key.key.sign(token.as_bytes())?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
        Ok(token)
    }

    /// Verifies the signature of one of our JWTs with a published key and decodes its claims.
    /// Expiry and issuer are the caller's business.
    pub fn verify<T: DeserializeOwned>(&self, token: &str, now: u64) -> Result<T, VerifyError> {
        let jws = jws::parse(token).map_err(|_| VerifyError::Malformed)?;
        let kid = jws.header.kid.as_deref().ok_or(VerifyError::UnknownKey)?;
        let key = self
            .published(now)
            .find(|k| k.kid == kid)
            .ok_or(VerifyError::UnknownKey)?;
        // RFC 8725 §3.1: the algorithm comes from the key, never from the token.
        if jws.header.alg != alg_name(key.alg()) {
            return Err(VerifyError::UnknownKey);
        }
        if !key.key.verify(jws.signing_input.as_bytes(), &jws.signature) {
            return Err(VerifyError::Signature);
        }
        serde_json::from_slice(&jws.payload).map_err(|_| VerifyError::Claims)
    }
}

/// The key directory and the keys currently loaded from it.
#[derive(Debug)]
pub struct KeyStore {
    dir: PathBuf,
    ring: ArcSwap<KeyRing>,
    retention: Duration,
}

/// Timing of key publication and retention (from [`crate::settings::Settings`]).
#[derive(Debug, Clone, Copy)]
pub struct KeyTiming {
    pub publish_delay: Duration,
    pub retention: Duration,
}

impl KeyTiming {
    /// The timing a gateway config implies: publish for one filter JWKS refresh interval
    /// plus the clock leeway and a margin before signing; keep superseded keys for an access
    /// token lifetime plus leeway and a margin.
    pub fn from_config(config: &mcp_auth_gateway::GatewayConfig) -> Self {
        let leeway = config.filter.clock_leeway;
        Self {
            publish_delay: config.filter.jwks_refresh + leeway + Duration::from_secs(10),
            retention: config.tokens.access_token + leeway + Duration::from_secs(60),
        }
    }
}

impl KeyStore {
    /// Loads the keys in `dir`, creating the directory and a first `alg` key when there are
    /// none. When no key of `alg` exists (the config's algorithm changed), a new one is
    /// generated and published first, activating after the publish delay.
    pub fn open(
        dir: &Path,
        alg: SigningAlg,
        timing: KeyTiming,
        now: u64,
    ) -> Result<Self, KeyError> {
        file::ensure_dir(dir)?;
        let store = Self {
            dir: dir.to_owned(),
            ring: ArcSwap::from_pointee(KeyRing::default()),
            retention: timing.retention,
        };
        store.reload()?;
        let ring = store.ring();
        match ring.signing_key(now) {
            None if ring.keys.is_empty() => {
                let kid = create_key(dir, alg, now, now)?;
                tracing::info!(%kid, ?alg, dir = %dir.display(), "generated the first signing key");
            }
            None => {
                // Only pending keys (a rotation written before anything signed): sign with
                // the earliest one now rather than not at all.
                tracing::warn!("no active signing key; the earliest pending key signs");
            }
            Some(active) if active.alg() != alg && !ring.has_pending(alg, now) => {
                let at = now + timing.publish_delay.as_secs();
                let kid = create_key(dir, alg, now, at)?;
                tracing::info!(%kid, ?alg, activates_at = at, "signing_alg changed: published a new key");
            }
            Some(_) => {}
        }
        store.reload()?;
        if store.ring().signing_key(now).is_none() {
            store.activate_earliest(now)?;
        }
        Ok(store)
    }

    /// The keys as loaded now.
    pub fn ring(&self) -> Arc<KeyRing> {
        self.ring.load_full()
    }

    /// Re-reads the directory (picks up rotations by `admin rotate-keys` or other instances).
    pub fn reload(&self) -> Result<(), KeyError> {
        let keys = file::read_all(&self.dir)?
            .iter()
            .map(LoadedKey::from_file)
            .collect::<Result<Vec<_>, _>>()?;
        self.ring
            .store(Arc::new(KeyRing::new(keys, self.retention)));
        Ok(())
    }

    fn activate_earliest(&self, now: u64) -> Result<(), KeyError> {
        let mut files = file::read_all(&self.dir)?;
        files.sort_by_key(|k| k.activates_at);
        if let Some(first) = files.first_mut() {
            first.activates_at = now;
            file::write(&self.dir, first)?;
        }
        self.reload()
    }

    /// Reloads every `interval` until the task is aborted; a failed reload keeps the old keys.
    pub async fn watch(self: Arc<Self>, interval: Duration) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let store = self.clone();
            match tokio::task::spawn_blocking(move || store.reload()).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::warn!(%error, "reloading signing keys failed; keeping the loaded ones")
                }
                Err(error) => tracing::warn!(%error, "reloading signing keys failed"),
            }
        }
    }
}

/// Generates an `alg` key activating at `activates_at` and writes it to `dir`; returns its kid.
fn create_key(
    dir: &Path,
    alg: SigningAlg,
    now: u64,
    activates_at: u64,
) -> Result<String, KeyError> {
    let (key, der) = SigningKey::generate(alg)?;
    let kid = key.thumbprint();
    file::write(
        dir,
        &KeyFile::new(kid.clone(), alg, now, activates_at, &der),
    )?;
    Ok(kid)
}

/// What `admin rotate-keys` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    pub kid: String,
    pub alg: SigningAlg,
    pub activates_at: u64,
    /// Retired keys whose files were deleted.
    pub removed: Vec<String>,
}

/// Rotation: writes a new `alg` key to `dir` that activates after the publish delay, and
/// deletes the files of keys no longer published. Running authservers pick the new key up
/// on their next reload.
pub fn rotate(
    dir: &Path,
    alg: SigningAlg,
    timing: KeyTiming,
    now: u64,
) -> Result<Rotation, KeyError> {
    file::ensure_dir(dir)?;
    let activates_at = now + timing.publish_delay.as_secs();
    let kid = create_key(dir, alg, now, activates_at)?;
    let keys = file::read_all(dir)?
        .iter()
        .map(LoadedKey::from_file)
        .collect::<Result<Vec<_>, _>>()?;
    let ring = KeyRing::new(keys, timing.retention);
    let mut removed = Vec::new();
    for key in ring.retired(now) {
        file::remove(dir, &key.kid)?;
        removed.push(key.kid.clone());
    }
    Ok(Rotation {
        kid,
        alg,
        activates_at,
        removed,
    })
}

/// The 256-bit HMAC key for cookies and CSRF tokens, created in `dir` on first start so
/// sessions survive a restart.
pub fn session_key(dir: &Path) -> Result<Vec<u8>, KeyError> {
    file::ensure_dir(dir)?;
    let encoded = file::read_or_create(dir, SESSION_KEY_FILE, || {
        crate::secret::random_token(32).into_bytes()
    })?;
    let text = String::from_utf8_lossy(&encoded);
    URL_SAFE_NO_PAD
        .decode(text.trim())
        .ok()
        .filter(|k| k.len() >= 32)
        .ok_or_else(|| KeyError::Corrupt {
            kid: SESSION_KEY_FILE.to_owned(),
            problem: "not 32 base64url-encoded bytes".to_owned(),
        })
}

#[cfg(test)]
mod tests;

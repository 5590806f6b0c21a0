//! A signing key the operator provides instead of one the authserver generates: a PKCS#8
//! PEM document (`-----BEGIN PRIVATE KEY-----`, what `openssl genpkey` writes) in
//! `MCP_AUTH_SIGNING_KEY`, or in the file `MCP_AUTH_SIGNING_KEY_FILE` names (a mounted
//! Kubernetes Secret, say). Its algorithm follows from the key: Ed25519 → EdDSA, P-256 →
//! ES256, RSA → RS256.
//!
//! The key is imported into `authserver.keys_dir` under its RFC 7638 thumbprint, so it
//! joins the normal rotation: into an empty directory it signs at once; next to other keys
//! it is published first and signs after the publish delay, and the keys it supersedes stay
//! published until their tokens have expired. Changing the variable is a rotation.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mcp_auth_gateway::config::SigningAlg;
use mcp_auth_gateway::env::Env;

use super::file::{self, KeyFile};
use super::{KeyError, SigningKey};

/// The PEM document itself.
pub const SIGNING_KEY_VAR: &str = "MCP_AUTH_SIGNING_KEY";
/// A path to the PEM document.
pub const SIGNING_KEY_FILE_VAR: &str = "MCP_AUTH_SIGNING_KEY_FILE";

const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";

/// Why the provided key cannot be used. Each names the variable.
#[derive(Debug, thiserror::Error)]
pub enum ProvidedKeyError {
    #[error("{SIGNING_KEY_VAR} and {SIGNING_KEY_FILE_VAR} are both set: set one")]
    Both,
    #[error("{SIGNING_KEY_FILE_VAR}: {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{var}: not a PEM `PRIVATE KEY` (PKCS#8) document")]
    NotPem { var: &'static str },
    #[error("{var}: not an Ed25519, P-256 or RSA private key in PKCS#8")]
    Unsupported { var: &'static str },
}

/// A private key given by the operator.
#[derive(Clone)]
pub struct ProvidedKey {
    pub alg: SigningAlg,
    der: Vec<u8>,
}

impl std::fmt::Debug for ProvidedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProvidedKey")
            .field("alg", &self.alg)
            .field("der", &"[redacted]")
            .finish()
    }
}

impl ProvidedKey {
    /// The key `env` provides, if any.
    pub fn from_env(env: &dyn Env) -> Result<Option<Self>, ProvidedKeyError> {
        match (env.var(SIGNING_KEY_VAR), env.var(SIGNING_KEY_FILE_VAR)) {
            (None, None) => Ok(None),
            (Some(_), Some(_)) => Err(ProvidedKeyError::Both),
            (Some(pem), None) => Self::from_pem(&pem, SIGNING_KEY_VAR).map(Some),
            (None, Some(path)) => {
                let path = PathBuf::from(path);
                let pem = std::fs::read_to_string(&path)
                    .map_err(|source| ProvidedKeyError::Read { path, source })?;
                Self::from_pem(&pem, SIGNING_KEY_FILE_VAR).map(Some)
            }
        }
    }

    /// Parses a PKCS#8 PEM document; `var` names where it came from in errors.
    pub fn from_pem(pem: &str, var: &'static str) -> Result<Self, ProvidedKeyError> {
        let body = pem
            .split_once(PEM_BEGIN)
            .and_then(|(_, rest)| rest.split_once(PEM_END))
            .map(|(body, _)| body)
            .ok_or(ProvidedKeyError::NotPem { var })?;
        let base64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        let der = STANDARD
            .decode(base64)
            .map_err(|_| ProvidedKeyError::NotPem { var })?;
        [SigningAlg::EdDSA, SigningAlg::ES256, SigningAlg::RS256]
            .into_iter()
            .find(|alg| SigningKey::from_pkcs8(*alg, &der).is_ok())
            .map(|alg| Self { alg, der })
            .ok_or(ProvidedKeyError::Unsupported { var })
    }

    /// The key's id: its RFC 7638 thumbprint, as for generated keys.
    pub fn kid(&self) -> Result<String, KeyError> {
        Ok(SigningKey::from_pkcs8(self.alg, &self.der)?.thumbprint())
    }

    /// Writes the key into `dir` unless it is already there. It activates at `now` when
    /// `dir` holds no key yet, else at `now + publish_delay` (published before it signs).
    /// Returns the kid when the key was new.
    pub fn import(
        &self,
        dir: &Path,
        now: u64,
        publish_delay: std::time::Duration,
    ) -> Result<Option<String>, KeyError> {
        file::ensure_dir(dir)?;
        let existing = file::read_all(dir)?;
        let kid = self.kid()?;
        if existing.iter().any(|k| k.kid == kid) {
            return Ok(None);
        }
        let activates_at = if existing.is_empty() {
            now
        } else {
            now + publish_delay.as_secs()
        };
        file::write(
            dir,
            &KeyFile::new(kid.clone(), self.alg, now, activates_at, &self.der),
        )?;
        Ok(Some(kid))
    }
}

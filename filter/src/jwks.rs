//! The authserver's signing keys: a JWK Set (RFC 7517 §5) parsed once per worker and per
//! version into ready-to-use verifying keys.
//!
//! Only the three signature algorithms the authserver may use are accepted, each bound to its
//! key type (RFC 7518 §3.1, RFC 8037 §3.1): RS256 ↔ `kty` RSA, ES256 ↔ `kty` EC `crv` P-256,
//! EdDSA ↔ `kty` OKP `crv` Ed25519. A key that is malformed, of another type, or not meant for
//! signatures is skipped, so one odd key does not hide the good ones.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::signature::Verifier as _;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

/// A JWKS larger than this is refused (the authserver publishes a handful of keys).
pub const MAX_JWKS_BYTES: usize = 64 * 1024;
/// At most this many keys are used from one JWKS.
pub const MAX_KEYS: usize = 16;
/// RFC 7518 §3.3: RSA keys of at least 2048 bits.
const MIN_RSA_BITS: usize = 2048;

/// A JWS signature algorithm the filter accepts (RFC 7518 §3.1, RFC 8037 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Rs256,
    Es256,
    EdDsa,
}

impl Algorithm {
    /// The accepted algorithm named by a JWS `alg`; `none`, HS* and everything else is `None`.
    pub fn from_jws(alg: &str) -> Option<Self> {
        match alg {
            "RS256" => Some(Self::Rs256),
            "ES256" => Some(Self::Es256),
            "EdDSA" => Some(Self::EdDsa),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }
}

/// Why a JWKS document as a whole was refused (the last good keys stay in use).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    #[error("the JWKS is larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    #[error("the JWKS is not a JSON object with a `keys` array: {0}")]
    NotAJwks(String),
    #[error("the JWKS holds no usable signing key ({skipped} skipped)")]
    NoUsableKeys { skipped: usize },
}

/// Why one key of a JWKS was skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not a JWK object")]
    NotAnObject,
    #[error("`use` is not `sig`")]
    NotForSignatures,
    #[error("`key_ops` does not allow `verify`")]
    NoVerifyOperation,
    #[error("unsupported key type or curve")]
    Unsupported,
    #[error("`alg` {0:?} does not fit the key type")]
    AlgorithmMismatch(String),
    #[error("missing or malformed member `{0}`")]
    BadMember(&'static str),
    #[error("RSA modulus shorter than {MIN_RSA_BITS} bits")]
    RsaTooSmall,
    #[error("invalid public key")]
    InvalidKey,
}

/// One verifying key.
#[derive(Debug, Clone)]
pub struct Jwk {
    kid: Option<String>,
    alg: Algorithm,
    key: VerifyingKey,
    /// SHA-256 over the key id and material: tells whether two key sets share this key.
    identity: [u8; 32],
}

#[derive(Debug, Clone)]
enum VerifyingKey {
    Rsa(Box<rsa::pkcs1v15::VerifyingKey<Sha256>>),
    P256(p256::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// The usable keys of one JWKS document.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<Jwk>,
}

/// A key set together with the keys that were skipped and why (for the log).
#[derive(Debug)]
pub struct ParsedJwks {
    pub keys: KeySet,
    pub skipped: Vec<(Option<String>, KeyError)>,
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    key_ops: Option<Vec<String>>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

impl KeySet {
    /// Parses a JWKS document, skipping keys that cannot be used (listed in the result).
    pub fn parse(json: &[u8]) -> Result<ParsedJwks, JwksError> {
        if json.len() > MAX_JWKS_BYTES {
            return Err(JwksError::TooLarge);
        }
        let raw: RawJwks =
            serde_json::from_slice(json).map_err(|err| JwksError::NotAJwks(err.to_string()))?;
        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        for value in raw.keys {
            let kid = value
                .get("kid")
                .and_then(|kid| kid.as_str())
                .map(str::to_owned);
            if keys.len() == MAX_KEYS {
                skipped.push((kid, KeyError::Unsupported));
                continue;
            }
            match Jwk::from_value(value) {
                Ok(key) => keys.push(key),
                Err(err) => skipped.push((kid, err)),
            }
        }
        if keys.is_empty() {
            return Err(JwksError::NoUsableKeys {
                skipped: skipped.len(),
            });
        }
        Ok(ParsedJwks {
            keys: KeySet { keys },
            skipped,
        })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Jwk> {
        self.keys.iter()
    }

    /// True when every key of `older` is still in this set: then a token verified with
    /// `older` would still verify with this one.
    pub fn contains_all_of(&self, older: &KeySet) -> bool {
        older
            .keys
            .iter()
            .all(|old| self.keys.iter().any(|new| new.identity == old.identity))
    }

    /// True when both sets hold the same keys in the same order: then every token verifies,
    /// or fails, the same way with either (a refetch of an unchanged JWKS).
    pub fn same_keys_as(&self, other: &KeySet) -> bool {
        self.keys.len() == other.keys.len()
            && self
                .keys
                .iter()
                .zip(&other.keys)
                .all(|(this, that)| this.identity == that.identity)
    }
}

impl Jwk {
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// Verifies a JWS signature over `signing_input` (RFC 7515 §5.2 step 8).
    pub fn verify(&self, signing_input: &[u8], signature: &[u8]) -> bool {
        match &self.key {
            VerifyingKey::Rsa(key) => rsa::pkcs1v15::Signature::try_from(signature)
                .is_ok_and(|sig| key.verify(signing_input, &sig).is_ok()),
            // RFC 7518 §3.4: R || S, 32 bytes each, not DER. A high S (n - s of a valid
            // low S) is refused: the authserver issues low S only, so a token has one form.
            VerifyingKey::P256(key) => {
                p256::ecdsa::Signature::from_slice(signature).is_ok_and(|sig| {
                    sig.normalize_s().is_none() && key.verify(signing_input, &sig).is_ok()
                })
            }
            VerifyingKey::Ed25519(key) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify_strict(signing_input, &sig).is_ok()),
        }
    }

    fn from_value(value: serde_json::Value) -> Result<Self, KeyError> {
        let raw: RawJwk = serde_json::from_value(value).map_err(|_| KeyError::NotAnObject)?;
        if raw.use_.as_deref().is_some_and(|u| u != "sig") {
            return Err(KeyError::NotForSignatures);
        }
        if let Some(ops) = &raw.key_ops
            && !ops.iter().any(|op| op == "verify")
        {
            return Err(KeyError::NoVerifyOperation);
        }
        let mut identity = Sha256::new();
        identity.update(raw.kid.as_deref().unwrap_or("").as_bytes());
        let (alg, key) = match (raw.kty.as_str(), raw.crv.as_deref()) {
            ("RSA", _) => {
                let n = member("n", raw.n.as_deref())?;
                let e = member("e", raw.e.as_deref())?;
                identity.update([0, b'R']);
                identity.update(&n);
                identity.update([0]);
                identity.update(&e);
                (Algorithm::Rs256, rsa_key(&n, &e)?)
            }
            ("EC", Some("P-256")) => {
                let x = member("x", raw.x.as_deref())?;
                let y = member("y", raw.y.as_deref())?;
                if x.len() != 32 || y.len() != 32 {
                    return Err(KeyError::InvalidKey);
                }
                let mut sec1 = Vec::with_capacity(65);
                sec1.push(0x04);
                sec1.extend_from_slice(&x);
                sec1.extend_from_slice(&y);
                identity.update([0, b'E']);
                identity.update(&sec1);
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                    .map_err(|_| KeyError::InvalidKey)?;
                (Algorithm::Es256, VerifyingKey::P256(key))
            }
            ("OKP", Some("Ed25519")) => {
                let x = member("x", raw.x.as_deref())?;
                let x: [u8; 32] = x.as_slice().try_into().map_err(|_| KeyError::InvalidKey)?;
                identity.update([0, b'O']);
                identity.update(x);
                let key = ed25519_dalek::VerifyingKey::from_bytes(&x)
                    .map_err(|_| KeyError::InvalidKey)?;
                if key.is_weak() {
                    return Err(KeyError::InvalidKey);
                }
                (Algorithm::EdDsa, VerifyingKey::Ed25519(key))
            }
            _ => return Err(KeyError::Unsupported),
        };
        if let Some(declared) = raw.alg
            && declared != alg.as_str()
        {
            return Err(KeyError::AlgorithmMismatch(declared));
        }
        Ok(Self {
            kid: raw.kid,
            alg,
            key,
            identity: identity.finalize().into(),
        })
    }
}

fn member(name: &'static str, value: Option<&str>) -> Result<Vec<u8>, KeyError> {
    let value = value.ok_or(KeyError::BadMember(name))?;
    URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|_| KeyError::BadMember(name))
}

fn rsa_key(n: &[u8], e: &[u8]) -> Result<VerifyingKey, KeyError> {
    use rsa::traits::PublicKeyParts as _;
    let key = rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(n),
        rsa::BigUint::from_bytes_be(e),
    )
    .map_err(|_| KeyError::InvalidKey)?;
    if key.n().bits() < MIN_RSA_BITS {
        return Err(KeyError::RsaTooSmall);
    }
    Ok(VerifyingKey::Rsa(Box::new(rsa::pkcs1v15::VerifyingKey::<
        Sha256,
    >::new(key))))
}

#[cfg(test)]
pub(crate) mod tests;

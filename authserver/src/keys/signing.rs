//! One signing key pair of any supported algorithm: generation, PKCS#8 persistence form,
//! signing, verification and its public JWK (RFC 7517, RFC 7518 §6, RFC 8037 §2).

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair,
    UnparsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_auth_gateway::config::SigningAlg;
use serde::{Deserialize, Serialize};

/// Why a key could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    #[error("generating a {0:?} key failed")]
    Generate(SigningAlg),
    #[error("the PKCS#8 document is not a valid {0:?} private key")]
    Rejected(SigningAlg),
    #[error("signing failed")]
    Sign,
}

/// A private key of one of the algorithms of [`SigningAlg`].
pub enum SigningKey {
    EdDsa(Ed25519KeyPair),
    Es256(EcdsaKeyPair),
    Rs256(RsaKeyPair),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({:?}, [redacted])", self.alg())
    }
}

/// A public key in JWK form (RFC 7517 §4; RFC 7518 §6.2–6.3; RFC 8037 §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub key_use: String,
}

/// RFC 7517 §5: `{"keys": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

/// The JWS `alg` value of an algorithm (RFC 7518 §3.1, RFC 8037 §3.1).
pub fn alg_name(alg: SigningAlg) -> &'static str {
    match alg {
        SigningAlg::EdDSA => "EdDSA",
        SigningAlg::ES256 => "ES256",
        SigningAlg::RS256 => "RS256",
    }
}

impl SigningKey {
    /// A fresh key; returns it with its PKCS#8 v1 DER encoding, the form it is persisted in.
    pub fn generate(alg: SigningAlg) -> Result<(Self, Vec<u8>), SigningKeyError> {
        let failed = |_| SigningKeyError::Generate(alg);
        let pkcs8 = match alg {
            SigningAlg::EdDSA => Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(failed)?
                .as_ref()
                .to_vec(),
            SigningAlg::ES256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                    .map_err(failed)?
                    .as_ref()
                    .to_vec()
            }
            SigningAlg::RS256 => {
                let key = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).map_err(failed)?;
                key.as_der().map_err(failed)?.as_ref().to_vec()
            }
        };
        Ok((Self::from_pkcs8(alg, &pkcs8)?, pkcs8))
    }

    /// Parses a PKCS#8 DER private key of `alg`.
    pub fn from_pkcs8(alg: SigningAlg, der: &[u8]) -> Result<Self, SigningKeyError> {
        let rejected = |_| SigningKeyError::Rejected(alg);
        Ok(match alg {
            SigningAlg::EdDSA => SigningKey::EdDsa(
                Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(rejected)?,
            ),
            SigningAlg::ES256 => SigningKey::Es256(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(rejected)?,
            ),
            SigningAlg::RS256 => SigningKey::Rs256(RsaKeyPair::from_pkcs8(der).map_err(rejected)?),
        })
    }

    pub fn alg(&self) -> SigningAlg {
        match self {
            SigningKey::EdDsa(_) => SigningAlg::EdDSA,
            SigningKey::Es256(_) => SigningAlg::ES256,
            SigningKey::Rs256(_) => SigningAlg::RS256,
        }
    }

    /// The JWS signature of `message` (RFC 7515 §5.1; ES256 as fixed-width `r || s`, RFC 7518 §3.4).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningKeyError> {
        match self {
            SigningKey::EdDsa(key) => Ok(key.sign(message).as_ref().to_vec()),
            SigningKey::Es256(key) => {
                let sig = key
                    .sign(&SystemRandom::new(), message)
                    .map_err(|_| SigningKeyError::Sign)?;
                // (r, n - s) verifies as well as (r, s): only the low-S form is issued, and
                // the filter refuses the other, so a token has exactly one valid encoding.
                let sig = p256::ecdsa::Signature::from_slice(sig.as_ref())
                    .map_err(|_| SigningKeyError::Sign)?;
                Ok(sig.normalize_s().unwrap_or(sig).to_bytes().to_vec())
            }
            SigningKey::Rs256(key) => {
                let mut sig = vec![0u8; key.public_modulus_len()];
                key.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut sig,
                )
                .map_err(|_| SigningKeyError::Sign)?;
                Ok(sig)
            }
        }
    }

    /// True when `sig` is a valid signature of `message` by this key.
    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        match self {
            SigningKey::EdDsa(key) => {
                UnparsedPublicKey::new(&signature::ED25519, key.public_key().as_ref())
                    .verify(message, sig)
                    .is_ok()
            }
            SigningKey::Es256(key) => UnparsedPublicKey::new(
                &signature::ECDSA_P256_SHA256_FIXED,
                key.public_key().as_ref(),
            )
            .verify(message, sig)
            .is_ok(),
            SigningKey::Rs256(key) => UnparsedPublicKey::new(
                &signature::RSA_PKCS1_2048_8192_SHA256,
                key.public_key().as_ref(),
            )
            .verify(message, sig)
            .is_ok(),
        }
    }

    /// The public JWK members of this key, without `kid` (see [`SigningKey::thumbprint`]).
    fn public_members(&self) -> Jwk {
        let b64 = |bytes: &[u8]| Some(URL_SAFE_NO_PAD.encode(bytes));
        let mut jwk = Jwk {
            kty: String::new(),
            crv: None,
            x: None,
            y: None,
            n: None,
            e: None,
            kid: String::new(),
            alg: alg_name(self.alg()).to_owned(),
            key_use: "sig".to_owned(),
        };
        match self {
            SigningKey::EdDsa(key) => {
                jwk.kty = "OKP".into();
                jwk.crv = Some("Ed25519".into());
                jwk.x = b64(key.public_key().as_ref());
            }
            SigningKey::Es256(key) => {
                // Uncompressed SEC1 point: 0x04 || x (32 bytes) || y (32 bytes).
                let point = key.public_key().as_ref();
                jwk.kty = "EC".into();
                jwk.crv = Some("P-256".into());
                jwk.x = point.get(1..33).and_then(b64);
                jwk.y = point.get(33..65).and_then(b64);
            }
            SigningKey::Rs256(key) => {
                let public = key.public_key();
                jwk.kty = "RSA".into();
                jwk.n = b64(public.modulus().big_endian_without_leading_zero());
                jwk.e = b64(public.exponent().big_endian_without_leading_zero());
            }
        }
        jwk
    }

    /// RFC 7638 JWK thumbprint (SHA-256, base64url): the key's `kid`.
    pub fn thumbprint(&self) -> String {
        let jwk = self.public_members();
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        // RFC 7638 §3.2: the required members only, lexicographic order, no whitespace.
        let canonical = match self {
            SigningKey::EdDsa(_) => format!(
                r#"{{"crv":"{}","kty":"{}","x":"{}"}}"#,
                opt(&jwk.crv),
                jwk.kty,
                opt(&jwk.x)
            ),
            SigningKey::Es256(_) => format!(
                r#"{{"crv":"{}","kty":"{}","x":"{}","y":"{}"}}"#,
                opt(&jwk.crv),
                jwk.kty,
                opt(&jwk.x),
                opt(&jwk.y)
            ),
            SigningKey::Rs256(_) => format!(
                r#"{{"e":"{}","kty":"{}","n":"{}"}}"#,
                opt(&jwk.e),
                jwk.kty,
                opt(&jwk.n)
            ),
        };
        crate::secret::digest(&canonical)
    }

    /// The public JWK with its `kid`.
    pub fn public_jwk(&self, kid: &str) -> Jwk {
        Jwk {
            kid: kid.to_owned(),
            ..self.public_members()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_signs_and_verifies_and_round_trips_pkcs8() {
        for alg in [SigningAlg::EdDSA, SigningAlg::ES256, SigningAlg::RS256] {
            let (key, der) = SigningKey::generate(alg).unwrap();
            let sig = key.sign(b"message").unwrap();
            assert!(key.verify(b"message", &sig), "{alg:?}");
            assert!(!key.verify(b"other", &sig), "{alg:?}");
            let reloaded = SigningKey::from_pkcs8(alg, &der).unwrap();
            assert_eq!(reloaded.thumbprint(), key.thumbprint());
            assert!(reloaded.verify(b"message", &sig));
            let jwk = key.public_jwk("k");
            assert_eq!(jwk.alg, alg_name(alg));
            assert_eq!(jwk.key_use, "sig");
        }
    }

    #[test]
    fn signature_sizes_follow_rfc7518() {
        let (ed, _) = SigningKey::generate(SigningAlg::EdDSA).unwrap();
        assert_eq!(ed.sign(b"m").unwrap().len(), 64);
        let (ec, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
        assert_eq!(ec.sign(b"m").unwrap().len(), 64);
        let jwk = ec.public_jwk("k");
        assert_eq!(jwk.x.unwrap().len(), 43);
        assert_eq!(jwk.y.unwrap().len(), 43);
        let (rsa, _) = SigningKey::generate(SigningAlg::RS256).unwrap();
        assert_eq!(rsa.sign(b"m").unwrap().len(), 256);
        assert_eq!(rsa.public_jwk("k").e.as_deref(), Some("AQAB"));
    }

    #[test]
    fn rfc7638_thumbprint_of_the_rfc_example() {
        // RFC 8037 Appendix A.3: thumbprint of the Ed25519 example key.
        let canonical =
            r#"{"crv":"Ed25519","kty":"OKP","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
        assert_eq!(
            crate::secret::digest(canonical),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn wrong_algorithm_is_rejected() {
        let (_, der) = SigningKey::generate(SigningAlg::EdDSA).unwrap();
        assert!(SigningKey::from_pkcs8(SigningAlg::ES256, &der).is_err());
    }
}

//! Secrets as newtypes: their `Debug` never prints them, comparison is constant-time, and what
//! is stored is a digest, never the secret.

use std::fmt;

use aws_lc_rs::aead;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq as _;

/// A secret string (client secret, code, refresh token, registration token, IdP credentials).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// A fresh random secret: 256 bits, base64url without padding (43 characters).
    pub fn generate() -> Self {
        Self(random_token(32))
    }

    /// The secret itself, for the one place that must send it (a response, an upstream call).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What is stored instead of the secret: SHA-256, base64url. Plain SHA-256 suffices
    /// because every secret we hash is 256 random bits, not a password.
    pub fn digest(&self) -> String {
        digest(&self.0)
    }

    /// True when `stored` is this secret's digest, compared in constant time.
    pub fn matches_digest(&self, stored: &str) -> bool {
        constant_time_eq(self.digest().as_bytes(), stored.as_bytes())
    }

    /// This secret encrypted so that only a holder of `key` can read it back: AES-256-GCM
    /// under SHA-256 of a domain label and `key` (never the plain digest, which is what is
    /// stored). A rotated refresh token keeps its successor this way, so the successor can be
    /// handed out again to whoever presents the old token, while Redis holds neither.
    /// `None` only if AES-GCM refuses, which it does for messages over 64 GiB.
    pub fn seal_under(&self, key: &Secret) -> Option<String> {
        let mut nonce = [0u8; aead::NONCE_LEN];
        fill_random(&mut nonce);
        let mut sealed = self.0.as_bytes().to_vec();
        sealing_key(key)?
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::empty(),
                &mut sealed,
            )
            .ok()?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Some(URL_SAFE_NO_PAD.encode(out))
    }

    /// The secret [`Secret::seal_under`] sealed under `key`; `None` for any other key or a
    /// damaged value.
    pub fn open_sealed(sealed: &str, key: &Secret) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if bytes.len() < aead::NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(aead::NONCE_LEN);
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut in_out = ciphertext.to_vec();
        let plain = sealing_key(key)?
            .open_in_place(nonce, aead::Aad::empty(), &mut in_out)
            .ok()?;
        String::from_utf8(plain.to_vec()).ok().map(Self)
    }
}

/// The AES-256-GCM key [`Secret::seal_under`] derives from `key`.
fn sealing_key(key: &Secret) -> Option<aead::LessSafeKey> {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    context.update(b"mcp-auth sealed secret v1\0");
    context.update(key.0.as_bytes());
    let derived = context.finish();
    // SHA-256 output is exactly AES-256's key length: this never fails.
    let unbound = aead::UnboundKey::new(&aead::AES_256_GCM, derived.as_ref()).ok()?;
    Some(aead::LessSafeKey::new(unbound))
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// SHA-256 of `value`, base64url without padding.
pub fn digest(value: &str) -> String {
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, value.as_bytes());
    URL_SAFE_NO_PAD.encode(hash.as_ref())
}

/// `bytes` random bytes from the system CSPRNG, base64url without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    fill_random(&mut buf);
    URL_SAFE_NO_PAD.encode(&buf)
}

/// Fills `buf` from the system CSPRNG.
fn fill_random(buf: &mut [u8]) {
    // aws-lc's DRBG fails only when the OS entropy source does; nothing sensible can run then.
    if aws_lc_rs::rand::fill(buf).is_err() {
        tracing::error!("the system random number generator failed");
        std::process::abort();
    }
}

/// Constant-time equality of two byte strings (lengths are not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "Secret([redacted])");
    }

    #[test]
    fn digest_matches_only_its_secret() {
        let secret = Secret::generate();
        assert_eq!(secret.expose().len(), 43);
        let stored = secret.digest();
        assert!(secret.matches_digest(&stored));
        assert!(!Secret::generate().matches_digest(&stored));
        assert!(!secret.matches_digest(""));
    }

    #[test]
    fn a_sealed_secret_opens_only_with_its_key() {
        let (secret, key) = (Secret::generate(), Secret::generate());
        let sealed = secret.seal_under(&key).unwrap();
        assert!(!sealed.contains(secret.expose()));
        assert_eq!(Secret::open_sealed(&sealed, &key), Some(secret.clone()));
        assert_eq!(Secret::open_sealed(&sealed, &Secret::generate()), None);
        assert_eq!(Secret::open_sealed("AAAA", &key), None);
        assert_eq!(Secret::open_sealed("not base64!", &key), None);
        assert_ne!(
            secret.seal_under(&key).unwrap(),
            sealed,
            "a fresh nonce each time"
        );
    }

    #[test]
    fn tokens_are_random() {
        assert_ne!(random_token(16), random_token(16));
        assert_eq!(random_token(16).len(), 22);
    }
}

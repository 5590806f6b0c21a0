//! Secrets as newtypes: their `Debug` never prints them, comparison is constant-time, and what
//! is stored is a digest, never the secret.

use std::fmt;

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
    // aws-lc's DRBG fails only when the OS entropy source does; nothing sensible can run then.
    if aws_lc_rs::rand::fill(&mut buf).is_err() {
        tracing::error!("the system random number generator failed");
        std::process::abort();
    }
    URL_SAFE_NO_PAD.encode(&buf)
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
    fn tokens_are_random() {
        assert_ne!(random_token(16), random_token(16));
        assert_eq!(random_token(16).len(), 22);
    }
}

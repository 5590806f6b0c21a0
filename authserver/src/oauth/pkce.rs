//! PKCE (RFC 7636), `S256` only (OAuth 2.1 §4.1.1: `plain` is not supported).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::secret::constant_time_eq;

/// A `code_verifier` (RFC 7636 §4.1). Not `Clone`, and `Debug` is redacted (oauth2-rs).
pub struct CodeVerifier(String);

impl std::fmt::Debug for CodeVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeVerifier([redacted])")
    }
}

impl CodeVerifier {
    /// RFC 7636 §4.1: 43 to 128 characters of `[A-Za-z0-9-._~]`.
    pub fn parse(value: String) -> Option<Self> {
        let ok = (43..=128).contains(&value.len()) && value.bytes().all(is_unreserved);
        ok.then_some(Self(value))
    }

    /// True when `BASE64URL(SHA256(verifier)) == challenge` (RFC 7636 §4.6), in constant time.
    pub fn verifies(&self, challenge: &str) -> bool {
        let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, self.0.as_bytes());
        let computed = URL_SAFE_NO_PAD.encode(hash.as_ref());
        constant_time_eq(computed.as_bytes(), challenge.as_bytes())
    }
}

/// RFC 7636 §4.2 with S256: a `code_challenge` is the base64url of a SHA-256, 43 characters.
pub fn is_valid_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_example() {
        let verifier =
            CodeVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_owned()).unwrap();
        assert!(verifier.verifies("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!verifier.verifies("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"));
        assert!(is_valid_s256_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
    }

    #[test]
    fn malformed_values_are_refused() {
        assert!(CodeVerifier::parse("short".to_owned()).is_none());
        assert!(CodeVerifier::parse("a".repeat(129)).is_none());
        assert!(CodeVerifier::parse(format!("{}!", "a".repeat(43))).is_none());
        assert!(!is_valid_s256_challenge("plain-challenge"));
        assert!(!is_valid_s256_challenge(&"a".repeat(44)));
        assert!(!is_valid_s256_challenge(&format!("{}=", "a".repeat(42))));
    }

    #[test]
    fn verifier_debug_is_redacted() {
        let verifier = CodeVerifier::parse("a".repeat(43)).unwrap();
        assert_eq!(format!("{verifier:?}"), "CodeVerifier([redacted])");
    }
}

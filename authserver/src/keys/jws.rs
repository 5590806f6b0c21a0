//! JWS compact serialization (RFC 7515 §7.1), just what access tokens need.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// The protected header of our tokens (RFC 7515 §4.1, RFC 9068 §2.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
}

/// A compact JWS split into its parts, not yet verified.
#[derive(Debug)]
pub struct Compact<'a> {
    pub header: Header,
    /// `BASE64URL(header) || '.' || BASE64URL(payload)`: what the signature covers.
    pub signing_input: &'a str,
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
}

/// Why a string is not a compact JWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    #[error("not three base64url parts")]
    Malformed,
    #[error("the header is not valid JSON")]
    Header,
}

/// `BASE64URL(UTF8(header))`.
pub fn encode_header(header: &Header) -> String {
    // Serialising a struct of strings cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).unwrap_or_default())
}

/// Splits and decodes a compact JWS.
pub fn parse(token: &str) -> Result<Compact<'_>, JwsError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed);
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| JwsError::Malformed)
    };
    let (header, payload, signature) = (decode(h)?, decode(p)?, decode(s)?);
    Ok(Compact {
        header: serde_json::from_slice(&header).map_err(|_| JwsError::Header)?,
        signing_input: &token[..h.len() + 1 + p.len()],
        payload,
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_three_parts() {
        let header = encode_header(&Header {
            alg: "EdDSA".into(),
            typ: Some("at+jwt".into()),
            kid: Some("k".into()),
        });
        let token = format!("{header}.e30.AAAA");
        let jws = parse(&token).unwrap();
        assert_eq!(jws.header.kid.as_deref(), Some("k"));
        assert_eq!(jws.payload, b"{}");
        assert_eq!(jws.signing_input, format!("{header}.e30"));
        assert_eq!(jws.signature, [0, 0, 0]);
    }

    #[test]
    fn rejects_what_is_not_compact() {
        assert_eq!(parse("a.b").unwrap_err(), JwsError::Malformed);
        assert_eq!(parse("a.b.c.d").unwrap_err(), JwsError::Malformed);
        assert_eq!(parse("!!.e30.AA").unwrap_err(), JwsError::Malformed);
        assert_eq!(parse("e30.e30.!!").unwrap_err(), JwsError::Malformed);
        assert_eq!(parse("bm90anNvbg.e30.AA").unwrap_err(), JwsError::Header);
    }
}

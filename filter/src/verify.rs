//! Access token verification: a JWS compact serialization (RFC 7515 §7.1) carrying an
//! RFC 9068 JWT access token, checked against the authserver's keys at a given time.
//!
//! Pure: the keys, the expectations and the clock are arguments. Two steps, so the per-worker
//! cache can hold the result of the expensive one:
//! - [`verify_access_token`]: everything intrinsic to the token (signature, `typ`, `iss`,
//!   `exp`/`nbf`), independent of the route;
//! - [`authorize_for_route`]: the cheap per-route checks (`aud`, scopes), run on every request,
//!   cached token or not.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_auth_proto::claims::{ACCESS_TOKEN_TYP, AccessTokenClaims, Audience};
use mcp_auth_proto::handoff::Handoff;
use mcp_auth_proto::scope::{Scope, missing_scopes};
use serde::Deserialize;

use crate::jwks::{Algorithm, Jwk, KeySet};

/// A longer token is refused before any decoding (ours are well under 2 KiB).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// What every token must satisfy, whatever the route.
#[derive(Debug, Clone, Copy)]
pub struct Expectations<'a> {
    /// Exact `iss` (RFC 9068 §4, RFC 8414 §2).
    pub issuer: &'a str,
    /// Allowed clock skew for `exp` and `nbf`, in seconds.
    pub clock_leeway_secs: u64,
}

/// Why a token was refused. Every variant is answered with `401 invalid_token`
/// (RFC 6750 §3.1); [`VerifyError::description`] is what the client is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("signature algorithm not allowed")]
    AlgorithmNotAllowed,
    #[error("no key with kid {kid:?} for {alg}", alg = .alg.as_str())]
    UnknownKey { kid: Option<String>, alg: Algorithm },
    #[error("several keys fit a token without kid")]
    AmbiguousKey,
    #[error("the key named by kid is not a {} key", .0.as_str())]
    AlgorithmKeyMismatch(Algorithm),
    #[error("bad signature")]
    BadSignature,
    #[error("typ is not at+jwt")]
    WrongType,
    #[error("unsupported critical header parameter")]
    UnsupportedCritical,
    #[error("claims are not an access token: {0}")]
    InvalidClaims(String),
    #[error("claim `{0}` holds a character not allowed in a header value")]
    UnsafeClaim(&'static str),
    #[error("wrong issuer")]
    WrongIssuer,
    #[error("expired")]
    Expired,
    #[error("not yet valid")]
    NotYetValid,
}

impl VerifyError {
    /// The RFC 6750 `error_description`: says what is wrong without internals.
    pub fn description(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "The access token is malformed",
            Self::AlgorithmNotAllowed => {
                "The access token uses a signature algorithm that is not accepted"
            }
            Self::UnknownKey { .. } | Self::AmbiguousKey | Self::AlgorithmKeyMismatch(_) => {
                "The access token was not signed by a known key"
            }
            Self::BadSignature => "The access token signature is invalid",
            Self::WrongType
            | Self::UnsupportedCritical
            | Self::InvalidClaims(_)
            | Self::UnsafeClaim(_) => {
                "The token is not an access token of this authorization server"
            }
            Self::WrongIssuer => "The access token was issued by another authorization server",
            Self::Expired => "The access token expired",
            Self::NotYetValid => "The access token is not valid yet",
        }
    }

    /// True when fetching the JWKS again might help (a key the filter does not know yet).
    pub fn wants_key_refresh(&self) -> bool {
        matches!(self, Self::UnknownKey { .. })
    }

    /// True when the same token fails the same way for as long as the key set and the
    /// configuration stay as they are: the answer depends on neither the clock nor a JWKS
    /// refresh that adds a key. Such failures may be remembered until the key set changes.
    /// Not [`VerifyError::UnknownKey`] (a refresh may bring the key, and it is cheap: no
    /// signature was checked), nor [`VerifyError::Expired`] and [`VerifyError::NotYetValid`].
    pub fn is_fixed_for_key_set(&self) -> bool {
        match self {
            Self::Malformed(_)
            | Self::AlgorithmNotAllowed
            | Self::AmbiguousKey
            | Self::AlgorithmKeyMismatch(_)
            | Self::BadSignature
            | Self::WrongType
            | Self::UnsupportedCritical
            | Self::InvalidClaims(_)
            | Self::UnsafeClaim(_)
            | Self::WrongIssuer => true,
            Self::UnknownKey { .. } | Self::Expired | Self::NotYetValid => false,
        }
    }
}

/// Why a verified token does not open this route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// RFC 8707 / RFC 9068 §4: the token is for another resource → `401 invalid_token`.
    #[error("the token's audience is not this route's resource")]
    WrongAudience,
    /// RFC 6750 §3.1 → `403 insufficient_scope`.
    #[error("missing scopes: {}", .0.join(" "))]
    InsufficientScope(Vec<String>),
}

/// The claims the filter hands on, as verified. Cached per worker; checked against each
/// route's audience and scopes on every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub subject: String,
    pub login: String,
    pub client_id: String,
    pub grant_id: String,
    pub token_id: String,
    /// Space-delimited granted scopes (RFC 6749 §3.3).
    pub scope: String,
    /// `exp`, seconds since the epoch.
    pub expires_at: u64,
    /// `iat`, seconds since the epoch.
    pub issued_at: u64,
    pub audience: Audience,
    /// The claims' part of the hand-off header value, encoded once per verification.
    pub handoff_claims: String,
}

#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
    crit: Option<serde::de::IgnoredAny>,
}

/// Verifies everything about `token` that does not depend on the route (RFC 7515 §5.2,
/// RFC 9068 §4, RFC 7519 §7.2), at `now` (seconds since the epoch).
///
/// The signature is checked before the payload is parsed, and before any header parameter
/// other than `alg` and `kid` is trusted.
pub fn verify_access_token(
    token: &str,
    keys: &KeySet,
    expected: &Expectations<'_>,
    now: u64,
) -> Result<VerifiedToken, VerifyError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(VerifyError::Malformed("too long"));
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::Malformed("not three dot-separated parts"));
    };
    let header = decode_part(header_b64, "header")?;
    let header: JoseHeader = serde_json::from_slice(&header)
        .map_err(|_| VerifyError::Malformed("header is not a JOSE header"))?;
    // RFC 8725 §3.1: the algorithm comes from the key, not from the token; `alg` only has to agree.
    let alg = Algorithm::from_jws(&header.alg).ok_or(VerifyError::AlgorithmNotAllowed)?;
    let key = select_key(keys, header.kid.as_deref(), alg)?;

    let signature = decode_part(signature_b64, "signature")?;
    let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
    if !key.verify(signing_input.as_bytes(), &signature) {
        return Err(VerifyError::BadSignature);
    }

    // RFC 9068 §4: the resource server MUST check `typ` (RFC 8725 §3.11: explicit typing).
    if !header.typ.as_deref().is_some_and(is_access_token_typ) {
        return Err(VerifyError::WrongType);
    }
    // RFC 7515 §4.1.11: no extension is understood, so any `crit` is unsupported.
    if header.crit.is_some() {
        return Err(VerifyError::UnsupportedCritical);
    }

    let payload = decode_part(payload_b64, "payload")?;
    let claims: AccessTokenClaims = serde_json::from_slice(&payload)
        .map_err(|err| VerifyError::InvalidClaims(err.to_string().chars().take(160).collect()))?;
    if claims.iss != expected.issuer {
        return Err(VerifyError::WrongIssuer);
    }
    if now >= claims.exp.saturating_add(expected.clock_leeway_secs) {
        return Err(VerifyError::Expired);
    }
    if now.saturating_add(expected.clock_leeway_secs) < claims.nbf {
        return Err(VerifyError::NotYetValid);
    }
    for (name, value) in [
        ("sub", &claims.sub),
        ("preferred_username", &claims.preferred_username),
        ("client_id", &claims.client_id),
        ("grant_id", &claims.grant_id),
        ("jti", &claims.jti),
        ("scope", &claims.scope),
    ] {
        if !is_header_safe(value) {
            return Err(VerifyError::UnsafeClaim(name));
        }
    }
    if claims.sub.is_empty() || claims.client_id.is_empty() || claims.jti.is_empty() {
        return Err(VerifyError::InvalidClaims(
            "sub, client_id and jti must not be empty".to_owned(),
        ));
    }

    let handoff_claims = Handoff {
        service: Cow::Borrowed(""),
        subject: Cow::Borrowed(&claims.sub),
        login: Cow::Borrowed(&claims.preferred_username),
        client_id: Cow::Borrowed(&claims.client_id),
        grant_id: Cow::Borrowed(&claims.grant_id),
        token_id: Cow::Borrowed(&claims.jti),
        scope: Cow::Borrowed(&claims.scope),
        expires_at: claims.exp,
        issued_at: claims.iat,
    }
    .encode_claims();
    Ok(VerifiedToken {
        subject: claims.sub,
        login: claims.preferred_username,
        client_id: claims.client_id,
        grant_id: claims.grant_id,
        token_id: claims.jti,
        scope: claims.scope,
        expires_at: claims.exp,
        issued_at: claims.iat,
        audience: claims.aud,
        handoff_claims,
    })
}

/// The per-route checks: `aud` contains the route's resource (RFC 9068 §4, RFC 8707), and
/// the granted scopes satisfy every required one, a broader scope implying a narrower one.
pub fn authorize_for_route(
    token: &VerifiedToken,
    resource: &str,
    required_scopes: &[Scope],
) -> Result<(), RouteError> {
    if !token.audience.contains(resource) {
        return Err(RouteError::WrongAudience);
    }
    // `split_scope_param` without its opaque type, which `missing_scopes` needs to clone.
    let granted = token.scope.split(' ').filter(|scope| !scope.is_empty());
    let missing = missing_scopes(granted, required_scopes.iter().map(Scope::as_str));
    if missing.is_empty() {
        Ok(())
    } else {
        Err(RouteError::InsufficientScope(
            missing.into_iter().map(str::to_owned).collect(),
        ))
    }
}

fn select_key<'k>(
    keys: &'k KeySet,
    kid: Option<&str>,
    alg: Algorithm,
) -> Result<&'k Jwk, VerifyError> {
    match kid {
        Some(kid) => {
            let mut named = keys.iter().filter(|key| key.kid() == Some(kid)).peekable();
            if named.peek().is_none() {
                return Err(VerifyError::UnknownKey {
                    kid: Some(truncated(kid)),
                    alg,
                });
            }
            named
                .find(|key| key.algorithm() == alg)
                .ok_or(VerifyError::AlgorithmKeyMismatch(alg))
        }
        // Without kid, only an unambiguous key of the token's algorithm is tried.
        None => {
            let mut fitting = keys.iter().filter(|key| key.algorithm() == alg);
            match (fitting.next(), fitting.next()) {
                (Some(key), None) => Ok(key),
                (None, _) => Err(VerifyError::UnknownKey { kid: None, alg }),
                (Some(_), Some(_)) => Err(VerifyError::AmbiguousKey),
            }
        }
    }
}

fn decode_part(part: &str, name: &'static str) -> Result<Vec<u8>, VerifyError> {
    if part.is_empty() {
        return Err(VerifyError::Malformed(name));
    }
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| VerifyError::Malformed(name))
}

/// RFC 9068 §4 / RFC 7515 §4.1.9: `at+jwt`, or the full media type, case-insensitively.
fn is_access_token_typ(typ: &str) -> bool {
    let typ = match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
        _ => typ,
    };
    typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYP)
}

/// Visible ASCII and spaces only: the value goes into a request header.
fn is_header_safe(value: &str) -> bool {
    value.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
}

/// A `kid` from an unverified token ends up in a log line: keep it short.
fn truncated(kid: &str) -> String {
    kid.chars().take(64).collect()
}

#[cfg(test)]
mod tests;

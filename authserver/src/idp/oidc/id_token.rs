//! The ID token of a token response, verified (OpenID Connect Core §3.1.3.7) with the
//! `openidconnect` crate, plus what that crate leaves to its user:
//!
//! - `azp`, when present, must be our client id; any audience beside ours must be listed in
//!   `trusted_audiences`;
//! - `iat` and `nbf` are checked with [`LEEWAY`], and `exp` is given the same leeway;
//! - only asymmetric algorithms are accepted (never an HMAC keyed with our client secret, nor
//!   `none`).
//!
//! A token naming a key the cached JWKS does not hold is told apart
//! ([`VerifyFailure::UnknownKey`]), so the caller can fetch the JWKS again (a rotation).

use std::time::Duration;

use mcp_auth_gateway::oidc::OidcProvider;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreRevocableToken,
    CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, Client, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet,
    IdTokenFields, Nonce, StandardErrorResponse, StandardTokenResponse, TokenResponse as _,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Clock difference tolerated on `exp`, `iat` and `nbf`.
pub const LEEWAY: Duration = Duration::from_secs(60);

/// Signature algorithms accepted: asymmetric only.
const ASYMMETRIC: &[CoreJwsSigningAlgorithm] = &[
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// Every claim beside the standard ones, as sent (groups, `hd`, `_claim_names`, …): read
/// leniently, so an odd claim never fails the parse of the whole token response.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OtherClaims {
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl AdditionalClaims for OtherClaims {}

type Fields = IdTokenFields<
    OtherClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// A provider's token response.
pub type Tokens = StandardTokenResponse<Fields, CoreTokenType>;

/// A client of a discovered provider, with its current keys.
pub type OidcClient = Client<
    OtherClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    Tokens,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Why an ID token was not accepted.
#[derive(Debug)]
pub enum VerifyFailure {
    /// The token names a key the client's JWKS does not hold.
    UnknownKey(String),
    Refused(String),
}

/// The claims of `tokens`' ID token, verified by `client` (whose JWKS is the one to trust)
/// for `provider`: signature, `iss`, `aud`/`azp`, times at `now`, `nonce`. The standard
/// claims the claims mapping reads are put beside the others, by their claim names.
pub fn verified_claims(
    client: &OidcClient,
    provider: &OidcProvider,
    tokens: &Tokens,
    nonce: &Nonce,
    now: u64,
) -> Result<Map<String, Value>, VerifyFailure> {
    let id_token = tokens.id_token().ok_or(VerifyFailure::Refused(
        "the provider sent no ID token".into(),
    ))?;
    let trusted = provider.trusted_audiences.clone();
    let leeway = LEEWAY.as_secs();
    let exp_now = now.saturating_sub(leeway) as i64;
    let verifier = client
        .id_token_verifier()
        .set_allowed_algs(ASYMMETRIC.to_vec())
        .set_other_audience_verifier_fn(move |aud| trusted.iter().any(|t| t == aud.as_str()))
        .set_time_fn(move || chrono::DateTime::from_timestamp(exp_now, 0).unwrap_or_default())
        .set_issue_time_verifier_fn(move |iat| {
            if iat.timestamp() > (now + leeway) as i64 {
                Err(format!("issued in the future ({iat})"))
            } else {
                Ok(())
            }
        });
    let claims = id_token.claims(&verifier, nonce).map_err(|e| {
        let text = e.to_string();
        if matches!(
            e,
            openidconnect::ClaimsVerificationError::SignatureVerification(
                openidconnect::SignatureVerificationError::NoMatchingKey
            )
        ) {
            VerifyFailure::UnknownKey(text)
        } else {
            VerifyFailure::Refused(text)
        }
    })?;
    if let Some(azp) = claims.authorized_party()
        && azp.as_str() != provider.client_id
    {
        return Err(VerifyFailure::Refused(format!(
            "azp {} is not our client id",
            azp.as_str()
        )));
    }
    let extra = &claims.additional_claims().rest;
    if let Some(nbf) = extra.get("nbf").and_then(Value::as_u64)
        && nbf > now + leeway
    {
        return Err(VerifyFailure::Refused(format!("not valid before {nbf}")));
    }
    let mut all = extra.clone();
    all.insert("sub".into(), Value::String(claims.subject().to_string()));
    if let Some(email) = claims.email() {
        all.insert("email".into(), Value::String(email.to_string()));
    }
    if let Some(verified) = claims.email_verified() {
        all.insert("email_verified".into(), Value::Bool(verified));
    }
    if let Some(name) = claims.preferred_username() {
        all.insert("preferred_username".into(), Value::String(name.to_string()));
    }
    if let Some(name) = claims.name().and_then(|n| n.get(None)) {
        all.insert("name".into(), Value::String(name.to_string()));
    }
    Ok(all)
}

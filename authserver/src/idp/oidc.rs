//! Login at an OpenID Connect provider (Google, Keycloak, Entra ID, Okta, Dex, …): discovery,
//! the authorization code flow with PKCE S256, `state` and `nonce`, and the ID token verified
//! with the `openidconnect` crate (signature against the provider's JWKS, `iss`, `aud`,
//! `exp`, `nonce`), plus what that crate leaves to its user:
//!
//! - `azp`, when present, must be our client id; any audience beside ours must be listed in
//!   `trusted_audiences`;
//! - `iat` and `nbf` are checked with [`LEEWAY`], and `exp` is given the same leeway;
//! - only asymmetric algorithms are accepted (never an HMAC keyed with our client secret, nor
//!   `none`);
//! - the JWKS is fetched again when a token names a key it does not hold (a rotation), at
//!   most once per [`JWKS_REFETCH_INTERVAL`], and keeps the previous set when a fetch fails.
//!
//! The nonce is derived from the PKCE verifier the pending authorization already holds
//! ([`nonce_of`]), so it is single-use with it and nothing more is stored.

pub mod claims;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use mcp_auth_gateway::oidc::OidcProvider;
use mcp_auth_proto::store::UserRecord;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType,
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken,
    EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields, IssuerUrl,
    JsonWebKeySet, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    StandardErrorResponse, StandardTokenResponse, TokenResponse as _,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{BoxFuture, IdentityProvider, IdpError, Needs};
use crate::secret::Secret;

/// Path of our callback for every OIDC provider (the pending authorization says which).
pub const CALLBACK_PATH: &str = "/login/oidc/callback";
/// Clock difference tolerated on `exp`, `iat` and `nbf`.
pub const LEEWAY: Duration = Duration::from_secs(60);
/// Least time between two JWKS fetches for an unknown key.
pub const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
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
type Tokens = StandardTokenResponse<Fields, CoreTokenType>;
type OidcClient = Client<
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

/// Why the provider could not be set up (at start: discovery).
#[derive(Debug, thiserror::Error)]
pub enum OidcSetupError {
    #[error("authserver.oidc_providers {id}: {problem}")]
    Config { id: String, problem: String },
    #[error("authserver.oidc_providers {id}: discovery at {issuer} failed: {problem}")]
    Discovery {
        id: String,
        issuer: String,
        problem: String,
    },
}

/// One configured OpenID Connect provider.
pub struct Oidc {
    config: OidcProvider,
    client_secret: Secret,
    redirect: RedirectUrl,
    metadata: CoreProviderMetadata,
    keys: Mutex<Keys>,
    http: reqwest::Client,
}

struct Keys {
    set: JsonWebKeySet<CoreJsonWebKey>,
    fetched_at: Instant,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("id", &self.config.id)
            .field("issuer", &self.config.issuer.as_str())
            .finish_non_exhaustive()
    }
}

/// The nonce of a login whose PKCE verifier is `verifier`: a domain-separated hash, never
/// equal to the code challenge (the verifier's plain SHA-256), revealing nothing of it.
pub fn nonce_of(verifier: &str) -> String {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    context.update(b"mcp-mesh-auth oidc nonce v1\0");
    context.update(verifier.as_bytes());
    base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        context.finish().as_ref(),
    )
}

impl Oidc {
    /// Discovers `config`'s provider (its metadata and JWKS) for a callback at
    /// `<issuer>/login/oidc/callback`.
    pub async fn discover(
        config: OidcProvider,
        client_secret: Secret,
        issuer: &str,
    ) -> Result<Self, OidcSetupError> {
        let setup = |problem: String| OidcSetupError::Config {
            id: config.id.clone(),
            problem,
        };
        let http = super::http::client(HTTP_TIMEOUT).map_err(|e| setup(e.to_string()))?;
        let issuer_url = IssuerUrl::new(config.issuer.as_str().trim_end_matches('/').to_owned())
            .map_err(|e| setup(e.to_string()))?;
        let metadata = {
            let send = super::http::sender(&http);
            CoreProviderMetadata::discover_async(issuer_url, &send)
                .await
                .map_err(|e| OidcSetupError::Discovery {
                    id: config.id.clone(),
                    issuer: config.issuer.to_string(),
                    problem: super::http::describe(&e),
                })?
        };
        let set = metadata.jwks().clone();
        let redirect = RedirectUrl::new(format!("{issuer}{CALLBACK_PATH}"))
            .map_err(|e| setup(e.to_string()))?;
        Ok(Self {
            redirect,
            keys: Mutex::new(Keys {
                set,
                fetched_at: Instant::now(),
            }),
            config,
            client_secret,
            metadata,
            http,
        })
    }

    /// The client for the current keys.
    fn client(&self) -> OidcClient {
        let keys = self
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .set
            .clone();
        OidcClient::from_provider_metadata(
            self.metadata.clone().set_jwks(keys),
            ClientId::new(self.config.client_id.clone()),
            Some(ClientSecret::new(self.client_secret.expose().to_owned())),
        )
        .set_redirect_uri(self.redirect.clone())
    }

    /// Fetches the JWKS again, unless it was fetched less than [`JWKS_REFETCH_INTERVAL`] ago.
    async fn refetch_keys(&self) -> Result<bool, IdpError> {
        let due = self
            .keys
            .lock()
            .map(|k| k.fetched_at.elapsed() >= JWKS_REFETCH_INTERVAL)
            .unwrap_or(false);
        if !due {
            return Ok(false);
        }
        let send = super::http::sender(&self.http);
        let set = JsonWebKeySet::fetch_async(self.metadata.jwks_uri(), &send)
            .await
            .map_err(|e| IdpError::Api(format!("JWKS: {}", super::http::describe(&e))))?;
        if let Ok(mut keys) = self.keys.lock() {
            *keys = Keys {
                set,
                fetched_at: Instant::now(),
            };
        }
        Ok(true)
    }

    async fn exchange(&self, code: &str, verifier: &str) -> Result<Tokens, IdpError> {
        let client = self.client();
        let send = super::http::sender(&self.http);
        client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| IdpError::Api(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()))
            .request_async(&send)
            .await
            .map_err(|e| IdpError::Exchange(super::http::describe_token_error(&e)))
    }

    /// The ID token's claims, verified: signature, `iss`, `aud`/`azp`, times, nonce.
    fn verified_claims(
        &self,
        tokens: &Tokens,
        nonce: &Nonce,
        now: u64,
    ) -> Result<Map<String, Value>, VerifyFailure> {
        let id_token = tokens.id_token().ok_or(VerifyFailure::Refused(
            "the provider sent no ID token".into(),
        ))?;
        let client = self.client();
        let trusted = self.config.trusted_audiences.clone();
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
            && azp.as_str() != self.config.client_id
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

    /// Claims the userinfo endpoint adds for the same subject (only when configured).
    async fn userinfo(
        &self,
        tokens: &Tokens,
        claims: &mut Map<String, Value>,
    ) -> Result<(), IdpError> {
        use openidconnect::OAuth2TokenResponse as _;
        let client = self.client();
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .map(|s| openidconnect::SubjectIdentifier::new(s.to_owned()));
        let send = super::http::sender(&self.http);
        let info: openidconnect::UserInfoClaims<OtherClaims, CoreGenderClaim> = client
            .user_info(tokens.access_token().clone(), subject)
            .map_err(|e| IdpError::Api(format!("userinfo: {e}")))?
            .request_async(&send)
            .await
            .map_err(|e| IdpError::Api(format!("userinfo: {}", super::http::describe(&e))))?;
        for (name, value) in &info.additional_claims().rest {
            claims.entry(name.clone()).or_insert_with(|| value.clone());
        }
        if !claims.contains_key("email")
            && let (Some(email), Some(true)) = (info.email(), info.email_verified())
        {
            claims.insert("email".into(), Value::String(email.to_string()));
            claims.insert("email_verified".into(), Value::Bool(true));
        }
        Ok(())
    }
}

enum VerifyFailure {
    /// The token names a key the cached JWKS does not hold.
    UnknownKey(String),
    Refused(String),
}

impl IdentityProvider for Oidc {
    fn id(&self) -> &str {
        &self.config.id
    }

    fn display_name(&self) -> &str {
        self.config.display_name()
    }

    fn login_url(&self, state: &str, code_verifier: &str, _needs: Needs) -> String {
        let client = self.client();
        // Our verifier is 43 characters (32 random bytes): within RFC 7636's 43–128, which
        // this constructor requires.
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(
            code_verifier.to_owned(),
        ));
        let (state, nonce) = (state.to_owned(), nonce_of(code_verifier));
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state),
                move || Nonce::new(nonce),
            )
            .set_pkce_challenge(challenge);
        for scope in self.config.request_scopes().into_iter().skip(1) {
            request = request.add_scope(Scope::new(scope));
        }
        if let Some(domain) = &self.config.hosted_domain {
            // Google's account chooser hint; the `hd` claim is what is enforced.
            request = request.add_extra_param("hd", domain.clone());
        }
        request.url().0.to_string()
    }

    fn identify<'a>(
        &'a self,
        code: &'a str,
        code_verifier: &'a str,
        _needs: Needs,
        now: u64,
    ) -> BoxFuture<'a, Result<UserRecord, IdpError>> {
        Box::pin(async move {
            let tokens = self.exchange(code, code_verifier).await?;
            let nonce = Nonce::new(nonce_of(code_verifier));
            let mut claims = match self.verified_claims(&tokens, &nonce, now) {
                Ok(claims) => claims,
                Err(VerifyFailure::UnknownKey(first)) => {
                    // A rotation: the provider signs with a key published since we fetched.
                    if !self.refetch_keys().await? {
                        return Err(IdpError::Exchange(format!("ID token refused: {first}")));
                    }
                    match self.verified_claims(&tokens, &nonce, now) {
                        Ok(claims) => claims,
                        Err(VerifyFailure::UnknownKey(e) | VerifyFailure::Refused(e)) => {
                            return Err(IdpError::Exchange(format!("ID token refused: {e}")));
                        }
                    }
                }
                Err(VerifyFailure::Refused(e)) => {
                    return Err(IdpError::Exchange(format!("ID token refused: {e}")));
                }
            };
            if self.config.userinfo {
                self.userinfo(&tokens, &mut claims).await?;
            }
            claims::user_record(&self.config, &claims, now)
                .map_err(|e| IdpError::Exchange(e.to_string()))
        })
    }
}

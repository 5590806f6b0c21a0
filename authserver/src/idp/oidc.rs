//! Login at an OpenID Connect provider (Google, Keycloak, Entra ID, Okta, Dex, …) with the
//! `openidconnect` crate: the authorization code flow with PKCE S256, `state` and `nonce`,
//! the ID token verified ([`id_token`]) against the provider's JWKS ([`jwks`]: refetched on
//! an unknown `kid` and when older than its max age), the userinfo endpoint when configured
//! ([`userinfo`]), and the claims mapped to our user record ([`claims`]).
//!
//! The provider is discovered in the background ([`discovery`]): the authserver starts while
//! a provider is down, retries with a bounded backoff, and meanwhile answers a sign-in at that
//! provider with [`IdpError::Unavailable`] (a page saying so), never a failed start.
//!
//! The nonce is derived from the PKCE verifier the pending authorization already holds
//! ([`nonce_of`]), so it is single-use with it and nothing more is stored.

pub mod claims;
pub mod discovery;
pub mod id_token;
pub mod jwks;
pub mod userinfo;

use std::sync::Arc;
use std::time::{Duration, Instant};

use mcp_auth_gateway::oidc::OidcProvider;
use mcp_auth_proto::store::UserRecord;
use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, JsonWebKeySet, Nonce,
    OAuth2TokenResponse as _, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
};
use serde_json::{Map, Value};

use self::discovery::{Discovered, Discovery};
use self::id_token::{OidcClient, Tokens, VerifyFailure};
use self::jwks::Refetch;
use super::{BoxFuture, IdentityProvider, IdpError, Needs};
use crate::secret::Secret;

pub use self::id_token::LEEWAY;
pub use self::jwks::{JWKS_MAX_AGE, JWKS_REFETCH_INTERVAL};

/// Path of our callback for every OIDC provider (the pending authorization says which).
pub const CALLBACK_PATH: &str = "/login/oidc/callback";
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a sign-in at an undiscovered provider waits for the discovery it wakes.
const DISCOVERY_PATIENCE: Duration = Duration::from_secs(5);

/// Why the provider cannot be configured (a bad config: the authserver does not start).
#[derive(Debug, thiserror::Error)]
pub enum OidcSetupError {
    #[error("authserver.oidc_providers {id}: {problem}")]
    Config { id: String, problem: String },
}

/// One configured OpenID Connect provider.
pub struct Oidc {
    config: OidcProvider,
    client_secret: Secret,
    redirect: RedirectUrl,
    discovery: Discovery,
    http: reqwest::Client,
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
    /// `config`'s provider for a callback at `<issuer>/login/oidc/callback`, its discovery
    /// started in the background (on the current runtime). Fails only on a bad config.
    pub fn new(
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
        let redirect = RedirectUrl::new(format!("{issuer}{CALLBACK_PATH}"))
            .map_err(|e| setup(e.to_string()))?;
        let discovery = Discovery::start(config.id.clone(), issuer_url, http.clone());
        Ok(Self {
            redirect,
            discovery,
            config,
            client_secret,
            http,
        })
    }

    /// The discovered provider, or why a sign-in cannot start.
    async fn discovered(&self) -> Result<Arc<Discovered>, IdpError> {
        self.discovery
            .wait(DISCOVERY_PATIENCE)
            .await
            .ok_or_else(|| {
                IdpError::Unavailable(format!(
                    "{} ({}) is not discovered yet",
                    self.config.id, self.config.issuer
                ))
            })
    }

    /// A client of `provider` with its keys as held now.
    fn client(&self, provider: &Discovered) -> OidcClient {
        let keys: JsonWebKeySet<_> = (*provider.keys.keys()).clone();
        OidcClient::from_provider_metadata(
            provider.metadata.clone().set_jwks(keys),
            ClientId::new(self.config.client_id.clone()),
            Some(ClientSecret::new(self.client_secret.expose().to_owned())),
        )
        .set_redirect_uri(self.redirect.clone())
    }

    /// Fetches `provider`'s JWKS again when `reason` allows it now; whether a new set is held.
    async fn refetch_keys(&self, provider: &Discovered, reason: Refetch) -> bool {
        let send = super::http::sender(&self.http);
        let uri = provider.metadata.jwks_uri();
        let fetched = provider
            .keys
            .refetch(reason, Instant::now(), || async {
                JsonWebKeySet::fetch_async(uri, &send)
                    .await
                    .map_err(|e| super::http::describe(&e))
            })
            .await;
        match fetched {
            Ok(true) => {
                let keys = provider.keys.keys().keys().len();
                tracing::info!(
                    provider = %self.config.id,
                    jwks_uri = %uri.as_str(),
                    ?reason,
                    keys,
                    "fetched the JWKS again"
                );
                true
            }
            Ok(false) => false,
            Err(problem) => {
                tracing::warn!(
                    provider = %self.config.id,
                    jwks_uri = %uri.as_str(),
                    ?reason,
                    %problem,
                    "JWKS fetch failed; keeping the keys held"
                );
                false
            }
        }
    }

    async fn exchange(
        &self,
        client: &OidcClient,
        code: &str,
        verifier: &str,
    ) -> Result<Tokens, IdpError> {
        let send = super::http::sender(&self.http);
        client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| IdpError::Api(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()))
            .request_async(&send)
            .await
            .map_err(|e| IdpError::Exchange(super::http::describe_token_error(&e)))
    }

    /// The ID token's verified claims, with the keys refreshed first when stale and fetched
    /// again once when the token names a key we do not hold (a rotation).
    async fn verified_claims(
        &self,
        provider: &Discovered,
        tokens: &Tokens,
        nonce: &Nonce,
        now: u64,
    ) -> Result<Map<String, Value>, IdpError> {
        if provider.keys.is_stale(Instant::now()) {
            self.refetch_keys(provider, Refetch::Stale).await;
        }
        let verify =
            || id_token::verified_claims(&self.client(provider), &self.config, tokens, nonce, now);
        let refused = |e: String| IdpError::Exchange(format!("ID token refused: {e}"));
        match verify() {
            Ok(claims) => Ok(claims),
            Err(VerifyFailure::UnknownKey(e)) => {
                if !self.refetch_keys(provider, Refetch::UnknownKey).await {
                    return Err(refused(e));
                }
                verify().map_err(
                    |(VerifyFailure::UnknownKey(e) | VerifyFailure::Refused(e))| refused(e),
                )
            }
            Err(VerifyFailure::Refused(e)) => Err(refused(e)),
        }
    }
}

impl IdentityProvider for Oidc {
    fn id(&self) -> &str {
        &self.config.id
    }

    fn display_name(&self) -> &str {
        self.config.display_name()
    }

    fn login_url<'a>(
        &'a self,
        state: &'a str,
        code_verifier: &'a str,
        _needs: Needs,
    ) -> BoxFuture<'a, Result<String, IdpError>> {
        Box::pin(async move {
            let client = self.client(&*self.discovered().await?);
            // Our verifier is 43 characters (32 random bytes): within RFC 7636's 43–128,
            // which this constructor requires.
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
            Ok(request.url().0.to_string())
        })
    }

    fn identify<'a>(
        &'a self,
        code: &'a str,
        code_verifier: &'a str,
        _needs: Needs,
        now: u64,
    ) -> BoxFuture<'a, Result<UserRecord, IdpError>> {
        Box::pin(async move {
            let provider = self.discovered().await?;
            let tokens = self
                .exchange(&self.client(&provider), code, code_verifier)
                .await?;
            let nonce = Nonce::new(nonce_of(code_verifier));
            let mut claims = self
                .verified_claims(&provider, &tokens, &nonce, now)
                .await?;
            if self.config.userinfo {
                userinfo::read_userinfo(
                    &self.client(&provider),
                    &self.http,
                    tokens.access_token(),
                    &mut claims,
                )
                .await?;
            }
            claims::user_record(&self.config, &claims, now)
                .map_err(|e| IdpError::Exchange(e.to_string()))
        })
    }
}

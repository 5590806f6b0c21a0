//! Upstream identity providers behind one trait: who the user is, and what the allow-lists
//! need to know about them (organisations, teams, verified email, groups). GitHub and any
//! OpenID Connect provider are the real ones; the dev login is a stand-in for local
//! development.

pub mod dev;
pub mod github;
pub mod http;
pub mod oidc;

use std::future::Future;
use std::pin::Pin;

use mcp_auth_proto::store::UserRecord;

/// A boxed future, so providers can live behind `dyn IdentityProvider`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why an identity provider could not tell who the user is.
#[derive(Debug, thiserror::Error)]
pub enum IdpError {
    #[error("the identity provider refused the code: {0}")]
    Exchange(String),
    #[error("the identity provider's API failed: {0}")]
    Api(String),
    #[error("this provider does not use authorization codes")]
    Unsupported,
    /// The provider cannot take sign-ins yet (not discovered: down since we started).
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
}

/// What the allow-lists need beyond the user's id and login.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    pub orgs: bool,
    pub teams: bool,
}

/// An upstream identity provider.
pub trait IdentityProvider: Send + Sync + std::fmt::Debug {
    /// Stable short name: `github`, `dev`, or the OIDC provider's configured id.
    fn id(&self) -> &str;

    /// Shown on the consent page ("You will sign in with …").
    fn display_name(&self) -> &str;

    /// Where to send the browser to sign in, carrying our single-use `state` and the S256
    /// challenge of `code_verifier`, our own PKCE verifier (which never leaves the server);
    /// [`IdpError::Unavailable`] when the provider cannot take sign-ins now.
    fn login_url<'a>(
        &'a self,
        state: &'a str,
        code_verifier: &'a str,
        needs: Needs,
    ) -> BoxFuture<'a, Result<String, IdpError>>;

    /// The user behind the callback's `code` (exchanged with our PKCE `code_verifier`).
    fn identify<'a>(
        &'a self,
        code: &'a str,
        code_verifier: &'a str,
        needs: Needs,
        now: u64,
    ) -> BoxFuture<'a, Result<UserRecord, IdpError>>;
}

/// The S256 code challenge of `verifier` (RFC 7636 §4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        hash.as_ref(),
    )
}

//! GitHub (and GitHub Enterprise Server) login: the OAuth app web flow with PKCE, then the
//! REST API for the user, their organisations and teams.
//!
//! URLs come from `GITHUB_URL` (`/login/oauth/*`) and `GITHUB_API_URL` (`/user*`; on GHES
//! `https://<host>/api/v3`). The HTTP client follows no redirects. GitHub's token is used for
//! these calls only and then dropped: it is never stored nor given to a client.

use std::time::Duration;

use mcp_auth_proto::store::UserRecord;
use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, EndpointNotSet, EndpointSet,
    PkceCodeVerifier, RedirectUrl, TokenResponse as _, TokenUrl,
};
use serde::Deserialize;

use super::{BoxFuture, IdentityProvider, IdpError, Needs};
use crate::secret::Secret;

/// Path of our callback, registered as the GitHub OAuth app's callback URL.
pub const CALLBACK_PATH: &str = "/login/callback";
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Pages of 100 organisations or teams read at most.
const MAX_PAGES: u32 = 10;

/// The GitHub OAuth app the gateway signs users in with.
#[derive(Debug, Clone)]
pub struct GitHubSettings {
    /// `GITHUB_CLIENT_ID`.
    pub client_id: String,
    /// `GITHUB_CLIENT_SECRET`.
    pub client_secret: Secret,
    /// `GITHUB_URL` without a trailing slash: where `/login/oauth/*` lives.
    pub web_url: String,
    /// `GITHUB_API_URL` without a trailing slash: where `/user` lives.
    pub api_url: String,
}

type OAuthClient =
    BasicClient<EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// The GitHub identity provider.
pub struct GitHub {
    settings: GitHubSettings,
    redirect_uri: String,
    oauth: OAuthClient,
    http: reqwest::Client,
}

impl std::fmt::Debug for GitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHub")
            .field("settings", &self.settings)
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

/// Why the GitHub client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum GitHubSetupError {
    #[error("GITHUB_URL: {0}")]
    Url(String),
    #[error("HTTP client: {0}")]
    Http(String),
}

impl GitHub {
    /// A provider for `settings` whose callback is `<issuer>/login/callback`.
    pub fn new(settings: GitHubSettings, issuer: &str) -> Result<Self, GitHubSetupError> {
        let redirect_uri = format!("{issuer}{CALLBACK_PATH}");
        let token_url = TokenUrl::new(format!("{}/login/oauth/access_token", settings.web_url))
            .map_err(|e| GitHubSetupError::Url(e.to_string()))?;
        let redirect = RedirectUrl::new(redirect_uri.clone())
            .map_err(|e| GitHubSetupError::Url(e.to_string()))?;
        let oauth = BasicClient::new(ClientId::new(settings.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                settings.client_secret.expose().to_owned(),
            ))
            .set_auth_type(AuthType::RequestBody)
            .set_token_uri(token_url)
            .set_redirect_uri(redirect);
        let http =
            super::http::client(HTTP_TIMEOUT).map_err(|e| GitHubSetupError::Http(e.to_string()))?;
        Ok(Self {
            settings,
            redirect_uri,
            oauth,
            http,
        })
    }

    async fn exchange(&self, code: &str, code_verifier: &str) -> Result<Secret, IdpError> {
        let send = super::http::sender(&self.http);
        let token = self
            .oauth
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(code_verifier.to_owned()))
            .request_async(&send)
            .await
            .map_err(|e| IdpError::Exchange(super::http::describe_token_error(&e)))?;
        Ok(Secret::new(token.access_token().secret().clone()))
    }

    async fn api<T: serde::de::DeserializeOwned>(
        &self,
        token: &Secret,
        path: &str,
    ) -> Result<T, IdpError> {
        let response = self
            .http
            .get(format!("{}{path}", self.settings.api_url))
            .bearer_auth(token.expose())
            .header(reqwest::header::ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .send()
            .await
            .map_err(|e| IdpError::Api(format!("GET {path}: {}", e.without_url())))?;
        if !response.status().is_success() {
            return Err(IdpError::Api(format!(
                "GET {path}: HTTP {}",
                response.status()
            )));
        }
        response
            .json()
            .await
            .map_err(|e| IdpError::Api(format!("GET {path}: {}", e.without_url())))
    }

    /// Every page of a list endpoint.
    async fn pages<T: serde::de::DeserializeOwned>(
        &self,
        token: &Secret,
        path: &str,
    ) -> Result<Vec<T>, IdpError> {
        let mut all = Vec::new();
        for page in 1..=MAX_PAGES {
            let items: Vec<T> = self
                .api(token, &format!("{path}?per_page=100&page={page}"))
                .await?;
            let done = items.len() < 100;
            all.extend(items);
            if done {
                break;
            }
        }
        Ok(all)
    }

    async fn user(&self, token: &Secret, needs: Needs, now: u64) -> Result<UserRecord, IdpError> {
        #[derive(Deserialize)]
        struct User {
            id: u64,
            login: String,
        }
        #[derive(Deserialize)]
        struct Org {
            login: String,
        }
        #[derive(Deserialize)]
        struct Team {
            slug: String,
            organization: Org,
        }
        let user: User = self.api(token, "/user").await?;
        let orgs = if needs.orgs {
            self.pages::<Org>(token, "/user/orgs")
                .await?
                .into_iter()
                .map(|o| o.login)
                .collect()
        } else {
            Vec::new()
        };
        let teams = if needs.teams {
            self.pages::<Team>(token, "/user/teams")
                .await?
                .into_iter()
                .map(|t| format!("{}/{}", t.organization.login, t.slug))
                .collect()
        } else {
            Vec::new()
        };
        Ok(UserRecord {
            subject: user.id.to_string(),
            login: user.login,
            orgs,
            teams,
            email: None,
            groups: Vec::new(),
            updated_at: now,
        })
    }
}

impl IdentityProvider for GitHub {
    fn id(&self) -> &str {
        "github"
    }

    fn display_name(&self) -> &str {
        "GitHub"
    }

    fn login_url<'a>(
        &'a self,
        state: &'a str,
        code_verifier: &'a str,
        needs: Needs,
    ) -> BoxFuture<'a, Result<String, IdpError>> {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("state", state)
            .append_pair("code_challenge", &super::pkce_challenge(code_verifier))
            .append_pair("code_challenge_method", "S256")
            .append_pair("allow_signup", "false");
        // `read:org` lets /user/orgs and /user/teams list private memberships; ask for it
        // only when an allow-list names organisations or teams.
        if needs.orgs || needs.teams {
            query.append_pair("scope", "read:org");
        }
        let url = format!(
            "{}/login/oauth/authorize?{}",
            self.settings.web_url,
            query.finish()
        );
        Box::pin(async move { Ok(url) })
    }

    fn identify<'a>(
        &'a self,
        code: &'a str,
        code_verifier: &'a str,
        needs: Needs,
        now: u64,
    ) -> BoxFuture<'a, Result<UserRecord, IdpError>> {
        Box::pin(async move {
            let token = self.exchange(code, code_verifier).await?;
            self.user(&token, needs, now).await
        })
    }
}

//! `authserver.oidc_providers`: OpenID Connect providers users sign in with, beside (or
//! instead of) GitHub, and the environment variables that add one without a config change
//! (`OIDC_ISSUER`/`OIDC_CLIENT_ID`/`OIDC_CLIENT_SECRET`, and the Google preset's
//! `GOOGLE_CLIENT_ID`/`GOOGLE_CLIENT_SECRET`/`GOOGLE_HOSTED_DOMAIN`).
//!
//! A provider's client secret never sits in the config file: it is read from the
//! environment variable `client_secret_env` names (default `OIDC_<ID>_CLIENT_SECRET`).

use serde::{Deserialize, Serialize};
use url::Url;

/// Issuer of the Google preset.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";
/// Id of the provider `OIDC_ISSUER` defines.
pub const ENV_PROVIDER_ID: &str = "oidc";
/// Id of the Google preset.
pub const GOOGLE_PROVIDER_ID: &str = "google";

/// One OpenID Connect provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcProvider {
    /// Short lowercase name (`[a-z0-9-]`, at most 32): prefixes its users' ids
    /// (`<id>:<sub>`), so two providers never share a user, and names it in logs and metrics.
    pub id: String,
    /// Shown on the consent and provider-choice pages; default the id.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The issuer; discovery reads `<issuer>/.well-known/openid-configuration`.
    pub issuer: Url,
    pub client_id: String,
    /// The variable holding the client secret; default `OIDC_<ID>_CLIENT_SECRET` (the id
    /// upper-cased, `-` as `_`).
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// Scopes asked for; `openid` is always added. Default `openid email profile`.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Claims mapping.
    #[serde(default)]
    pub claims: ClaimsMapping,
    /// Google's `hd`: only accounts of this Workspace domain may sign in (the ID token's
    /// `hd` claim must equal it; the login page is told too).
    #[serde(default)]
    pub hosted_domain: Option<String>,
    /// Also read the userinfo endpoint (for providers whose ID token omits email or groups).
    #[serde(default)]
    pub userinfo: bool,
    /// Extra audiences the ID token may name beside our client id (Entra ID apps exposing an
    /// API); `azp` must then be our client id.
    #[serde(default)]
    pub trusted_audiences: Vec<String>,
}

/// Which claims say who the user is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimsMapping {
    /// The login / display name shown to MCP servers and matched by `access.users`; default
    /// `preferred_username`, then the verified email, then `sub`.
    #[serde(default = "default_login_claim")]
    pub login: String,
    /// The claim holding the user's groups (`groups`, Entra's `roles`, Keycloak's mapper's
    /// name); none by default.
    #[serde(default)]
    pub groups: Option<String>,
}

impl Default for ClaimsMapping {
    fn default() -> Self {
        Self {
            login: default_login_claim(),
            groups: None,
        }
    }
}

fn default_scopes() -> Vec<String> {
    ["openid", "email", "profile"].map(str::to_owned).to_vec()
}

fn default_login_claim() -> String {
    "preferred_username".into()
}

impl OidcProvider {
    /// The variable the client secret is read from.
    pub fn secret_var(&self) -> String {
        self.client_secret_env.clone().unwrap_or_else(|| {
            format!(
                "OIDC_{}_CLIENT_SECRET",
                self.id.to_ascii_uppercase().replace('-', "_")
            )
        })
    }

    /// The name people see.
    pub fn display_name(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.id)
    }

    /// The scopes of the authorization request: `openid` first, each once.
    pub fn request_scopes(&self) -> Vec<String> {
        let mut scopes = vec!["openid".to_owned()];
        for scope in &self.scopes {
            if !scopes.contains(scope) {
                scopes.push(scope.clone());
            }
        }
        scopes
    }

    /// The Google preset (`GOOGLE_CLIENT_ID`; the secret from `GOOGLE_CLIENT_SECRET`).
    pub fn google(
        client_id: String,
        hosted_domain: Option<String>,
    ) -> Result<Self, url::ParseError> {
        Ok(Self {
            id: GOOGLE_PROVIDER_ID.into(),
            display_name: Some("Google".into()),
            issuer: Url::parse(GOOGLE_ISSUER)?,
            client_id,
            client_secret_env: Some("GOOGLE_CLIENT_SECRET".into()),
            scopes: default_scopes(),
            claims: ClaimsMapping {
                // Google's ID token has no preferred_username: the email is the login.
                login: "email".into(),
                groups: None,
            },
            hosted_domain,
            userinfo: false,
            trusted_audiences: Vec::new(),
        })
    }
}

/// Whether `id` can name a provider.
pub fn is_valid_id(id: &str) -> bool {
    (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
}

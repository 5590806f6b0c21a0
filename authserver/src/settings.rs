//! What the authserver takes from the gateway config and the environment, resolved once at
//! start: the issuer and endpoint URLs, the services it issues tokens for, lifetimes,
//! allow-lists, and which identity provider signs users in.

use std::time::Duration;

use mcp_auth_gateway::GatewayConfig;
use mcp_auth_gateway::config::{AccessList, SigningAlg};
use mcp_auth_gateway::env::Env;
use mcp_auth_proto::paths;
use mcp_auth_proto::scope::Scope;
use url::Url;

use crate::idp::github::GitHubSettings;
use crate::secret::Secret;
use mcp_auth_gateway::oidc::{ENV_PROVIDER_ID, OidcProvider};

/// `GITHUB_URL` default: where users sign in.
pub const DEFAULT_GITHUB_URL: &str = "https://github.com";
/// `GITHUB_API_URL` default: the REST API (`https://<host>/api/v3` on GitHub Enterprise Server).
pub const DEFAULT_GITHUB_API_URL: &str = "https://api.github.com";

/// Why the config and environment cannot run an authserver. Each names the field or variable.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{var} is set but {missing} is not: the login needs both")]
    HalfCredentials {
        var: &'static str,
        missing: &'static str,
    },
    #[error(
        "OIDC_ISSUER, OIDC_CLIENT_ID and OIDC_CLIENT_SECRET go together: set all three or none"
    )]
    PartialOidcEnv,
    #[error("authserver.oidc_providers {id}: its client secret is read from {var}, which is unset")]
    MissingOidcSecret { id: String, var: String },
    #[error(transparent)]
    Oidc(mcp_auth_gateway::ConfigError),
    #[error(
        "no identity provider is configured (GITHUB_CLIENT_ID/GITHUB_CLIENT_SECRET, \
         authserver.oidc_providers, OIDC_*, GOOGLE_*) and `issuer` {issuer} is not a \
         loopback URL: the dev login is only allowed on loopback"
    )]
    DevLoginOnPublicIssuer { issuer: String },
    #[error("{var}: {value:?} is not an http(s) URL: {problem}")]
    BadUrl {
        var: &'static str,
        value: String,
        problem: String,
    },
    #[error(transparent)]
    SigningKey(#[from] crate::keys::ProvidedKeyError),
}

/// One MCP service as the authserver sees it: a resource it issues tokens for.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceService {
    pub name: String,
    /// `http` or `https`, from `resource`.
    pub scheme: String,
    /// Canonical resource URI (RFC 8707 §2): the `aud` of its tokens.
    pub resource: String,
    /// `host[:port]` of `resource`, lowercase, default port omitted.
    pub authority: String,
    /// Path of `resource` without a trailing `/` (`""` for a bare origin).
    pub resource_path: String,
    pub scopes: Vec<Scope>,
    /// The consent page's line per scope (`services[].scope_descriptions`).
    pub scope_descriptions: std::collections::BTreeMap<String, String>,
    /// The service's own allow-list, narrowing the global one.
    pub access: Option<AccessList>,
}

/// How users sign in.
#[derive(Debug, Clone)]
pub enum IdentityProviderSettings {
    GitHub(GitHubSettings),
    /// An OpenID Connect provider, with its client secret from the environment.
    Oidc {
        provider: Box<OidcProvider>,
        client_secret: Secret,
    },
    /// No provider configured on a loopback issuer: a "sign in as" form, for development only.
    Dev,
}

/// Everything the authserver needs, resolved from a [`GatewayConfig`] and the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// RFC 8414 §2 issuer, exactly as configured (no trailing slash).
    pub issuer: String,
    /// `host[:port]` of the issuer, lowercase, default port omitted.
    pub issuer_authority: String,
    /// The issuer's origin (`scheme://host[:port]`), for `Origin` checks on form posts.
    pub issuer_origin: String,
    pub services: Vec<ResourceService>,
    pub global_access: AccessList,
    /// The `allow` lists of `mcp_policy.rules`: they decide by orgs and teams too, so GitHub
    /// must be asked for them.
    pub policy_access: Vec<AccessList>,
    pub access_token_ttl: Duration,
    /// `filter.clock_leeway`: the filter and ext_authz accept a token this long past `exp`.
    pub clock_leeway: Duration,
    pub refresh_token_ttl: Duration,
    /// `tokens.refresh_reuse_grace`: a refresh token used again this soon gets the same successor.
    pub refresh_reuse_grace: Duration,
    pub code_ttl: Duration,
    /// `None`: registered clients never expire.
    pub client_ttl: Option<Duration>,
    /// `tokens.unused_client_registration`: how long a registration lives until first used.
    pub unused_client_ttl: Duration,
    pub signing_alg: SigningAlg,
    /// A key the operator provides (`MCP_AUTH_SIGNING_KEY[_FILE]`); its algorithm then
    /// replaces `signing_alg`.
    pub provided_key: Option<crate::keys::ProvidedKey>,
    pub keys_dir: std::path::PathBuf,
    /// How long a new signing key is published before it signs (the filter's JWKS refresh
    /// interval plus a margin), so no verifier meets a token whose key it has not fetched.
    pub key_publish_delay: Duration,
    /// How long a superseded key stays published: until every token it signed has expired.
    pub key_retention: Duration,
    /// Requests per minute per client IP on `/register` and `/token`; 0 = unlimited.
    pub rate_limit_per_minute: u32,
    /// Peers whose `X-Forwarded-For` is read (`authserver.trusted_proxies`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Proxies before Envoy that append to `X-Forwarded-For` (`listener.xff_num_trusted_hops`).
    pub xff_trusted_hops: u32,
    /// `redis:` (URL, key prefix, TLS files).
    pub redis: mcp_auth_gateway::config::RedisConfig,
    /// Every provider users may sign in with, in the order the choice page lists them
    /// (GitHub first); the dev login alone when none is configured.
    pub identity_providers: Vec<IdentityProviderSettings>,
}

impl Settings {
    /// Resolves `config`, the `GITHUB_*` variables of `env` and a provided signing key.
    pub fn from_config(config: &GatewayConfig, env: &dyn Env) -> Result<Self, SettingsError> {
        let provided_key = crate::keys::ProvidedKey::from_env(env)?;
        let issuer = config.issuer_str().to_owned();
        let identity_providers = identity_providers(config, env)?;
        let services = config
            .services
            .iter()
            .map(|s| {
                let (scheme, authority, resource_path) = split_resource(&s.resource);
                ResourceService {
                    name: s.name.clone(),
                    scheme,
                    resource: s.resource.clone(),
                    authority,
                    resource_path,
                    scopes: s.scopes.clone(),
                    scope_descriptions: s.scope_descriptions.clone(),
                    access: s.access.clone(),
                }
            })
            .collect();
        let timing = crate::keys::KeyTiming::from_config(config);
        Ok(Self {
            issuer_authority: url_authority(&config.issuer),
            issuer_origin: config.issuer.origin().ascii_serialization(),
            issuer,
            services,
            global_access: config.access.clone(),
            policy_access: config
                .mcp_policy
                .rules
                .iter()
                .filter_map(|rule| rule.allow.clone())
                .collect(),
            access_token_ttl: config.tokens.access_token,
            clock_leeway: config.filter.clock_leeway,
            refresh_token_ttl: config.tokens.refresh_token,
            refresh_reuse_grace: config.tokens.refresh_reuse_grace,
            code_ttl: config.tokens.authorization_code,
            client_ttl: Some(config.tokens.client_registration).filter(|d| !d.is_zero()),
            unused_client_ttl: config.tokens.unused_client_registration,
            signing_alg: provided_key
                .as_ref()
                .map_or(config.authserver.signing_alg, |key| key.alg),
            provided_key,
            keys_dir: config.authserver.keys_dir.clone(),
            key_publish_delay: timing.publish_delay,
            key_retention: timing.retention,
            rate_limit_per_minute: config.authserver.rate_limit_per_minute,
            trusted_proxies: config.authserver.trusted_proxies.clone(),
            xff_trusted_hops: config.listener.xff_num_trusted_hops,
            redis: config.redis.clone(),
            identity_providers,
        })
    }

    /// An absolute URL of one of our endpoints (`paths::TOKEN` → `<issuer>/token`).
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// The service whose canonical resource URI is exactly `resource` (RFC 8707 §2).
    pub fn service_by_resource(&self, resource: &str) -> Option<&ResourceService> {
        self.services.iter().find(|s| s.resource == resource)
    }

    /// Path of the issuer URL (`""` when it is a bare origin).
    pub fn issuer_path(&self) -> &str {
        let after_scheme = self
            .issuer
            .find("://")
            .map_or(self.issuer.as_str(), |i| &self.issuer[i + 3..]);
        after_scheme.find('/').map_or("", |i| &after_scheme[i..])
    }

    /// True when the dev login replaces GitHub.
    pub fn is_dev_login(&self) -> bool {
        matches!(
            self.identity_providers.as_slice(),
            [IdentityProviderSettings::Dev]
        )
    }

    /// The RFC 9728 §3.1 metadata path of a resource path (`/a/mcp` →
    /// `/.well-known/oauth-protected-resource/a/mcp`).
    pub fn protected_resource_metadata_path(resource_path: &str) -> String {
        format!("{}{resource_path}", paths::PROTECTED_RESOURCE_METADATA)
    }
}

/// GitHub (with `GITHUB_CLIENT_ID`/`GITHUB_CLIENT_SECRET`), then `authserver.oidc_providers`
/// with `OIDC_ISSUER`/`OIDC_CLIENT_ID`/`OIDC_CLIENT_SECRET` (provider `oidc`) and the Google
/// preset (`GOOGLE_CLIENT_ID`/`GOOGLE_CLIENT_SECRET`, `GOOGLE_HOSTED_DOMAIN`) replacing a
/// configured provider of the same id; the dev login when there is none, on loopback only.
fn identity_providers(
    config: &GatewayConfig,
    env: &dyn Env,
) -> Result<Vec<IdentityProviderSettings>, SettingsError> {
    let mut providers = Vec::new();
    if let Some(github) = github(env)? {
        providers.push(IdentityProviderSettings::GitHub(github));
    }
    let mut oidc = config.authserver.oidc_providers.clone();
    fn replace(providers: &mut Vec<OidcProvider>, provider: OidcProvider) {
        providers.retain(|p| p.id != provider.id);
        providers.push(provider);
    }
    match (
        env.var("OIDC_ISSUER"),
        env.var("OIDC_CLIENT_ID"),
        env.var("OIDC_CLIENT_SECRET"),
    ) {
        (None, None, None) => {}
        (Some(issuer), Some(client_id), Some(_)) => {
            let issuer = Url::parse(&issuer).map_err(|e| SettingsError::BadUrl {
                var: "OIDC_ISSUER",
                value: issuer.clone(),
                problem: e.to_string(),
            })?;
            let configured = oidc.iter().find(|p| p.id == ENV_PROVIDER_ID).cloned();
            let mut provider: OidcProvider = configured.unwrap_or_else(|| OidcProvider {
                id: ENV_PROVIDER_ID.into(),
                display_name: None,
                issuer: issuer.clone(),
                client_id: client_id.clone(),
                client_secret_env: None,
                scopes: Vec::new(),
                claims: Default::default(),
                hosted_domain: None,
                userinfo: false,
                trusted_audiences: Vec::new(),
            });
            provider.issuer = issuer;
            provider.client_id = client_id;
            provider.client_secret_env = Some("OIDC_CLIENT_SECRET".into());
            replace(&mut oidc, provider);
        }
        _ => return Err(SettingsError::PartialOidcEnv),
    }
    match (env.var("GOOGLE_CLIENT_ID"), env.var("GOOGLE_CLIENT_SECRET")) {
        (None, None) => {}
        (Some(client_id), Some(_)) => {
            let google =
                OidcProvider::google(client_id, env.var("GOOGLE_HOSTED_DOMAIN")).map_err(|e| {
                    SettingsError::BadUrl {
                        var: "GOOGLE_CLIENT_ID",
                        value: mcp_auth_gateway::oidc::GOOGLE_ISSUER.into(),
                        problem: e.to_string(),
                    }
                })?;
            replace(&mut oidc, google);
        }
        (Some(_), None) => {
            return Err(SettingsError::HalfCredentials {
                var: "GOOGLE_CLIENT_ID",
                missing: "GOOGLE_CLIENT_SECRET",
            });
        }
        (None, Some(_)) => {
            return Err(SettingsError::HalfCredentials {
                var: "GOOGLE_CLIENT_SECRET",
                missing: "GOOGLE_CLIENT_ID",
            });
        }
    }
    mcp_auth_gateway::validate_oidc_providers(&oidc).map_err(SettingsError::Oidc)?;
    for provider in oidc {
        let var = provider.secret_var();
        let secret = env
            .var(&var)
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| SettingsError::MissingOidcSecret {
                id: provider.id.clone(),
                var: var.clone(),
            })?;
        providers.push(IdentityProviderSettings::Oidc {
            provider: Box::new(provider),
            client_secret: Secret::new(secret),
        });
    }
    if providers.is_empty() {
        if !is_loopback(&config.issuer) {
            return Err(SettingsError::DevLoginOnPublicIssuer {
                issuer: config.issuer.as_str().trim_end_matches('/').to_owned(),
            });
        }
        providers.push(IdentityProviderSettings::Dev);
    }
    Ok(providers)
}

/// GitHub's OAuth app, when both of its credentials are set.
fn github(env: &dyn Env) -> Result<Option<GitHubSettings>, SettingsError> {
    match (env.var("GITHUB_CLIENT_ID"), env.var("GITHUB_CLIENT_SECRET")) {
        (Some(client_id), Some(client_secret)) => Ok(Some(GitHubSettings {
            client_id,
            client_secret: Secret::new(client_secret),
            web_url: env_url(env, "GITHUB_URL", DEFAULT_GITHUB_URL)?,
            api_url: env_url(env, "GITHUB_API_URL", DEFAULT_GITHUB_API_URL)?,
        })),
        (Some(_), None) => Err(SettingsError::HalfCredentials {
            var: "GITHUB_CLIENT_ID",
            missing: "GITHUB_CLIENT_SECRET",
        }),
        (None, Some(_)) => Err(SettingsError::HalfCredentials {
            var: "GITHUB_CLIENT_SECRET",
            missing: "GITHUB_CLIENT_ID",
        }),
        (None, None) => Ok(None),
    }
}

/// A base URL from `var`, without a trailing slash.
fn env_url(env: &dyn Env, var: &'static str, default: &str) -> Result<String, SettingsError> {
    let value = env.var(var).unwrap_or_else(|| default.to_owned());
    let bad = |problem: String| SettingsError::BadUrl {
        var,
        value: value.clone(),
        problem,
    };
    let url = Url::parse(&value).map_err(|e| bad(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(bad("it needs an http or https scheme and a host".into()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it must not have a query or fragment".into()));
    }
    Ok(value.trim_end_matches('/').to_owned())
}

/// True when `url` names a loopback host (`localhost`, `127.0.0.0/8`, `::1`).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// `host[:port]` of a URL, lowercase, with the scheme's default port omitted.
pub fn url_authority(url: &Url) -> String {
    let host = match url.host() {
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        Some(host) => host.to_string().to_ascii_lowercase(),
        None => String::new(),
    };
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    }
}

/// Splits a validated resource URI into scheme, authority and path (no trailing slash).
fn split_resource(resource: &str) -> (String, String, String) {
    match Url::parse(resource) {
        Ok(url) => {
            let path = url.path().trim_end_matches('/').to_owned();
            (url.scheme().to_owned(), url_authority(&url), path)
        }
        Err(_) => Default::default(),
    }
}

/// Normalises a `Host` header value the way [`url_authority`] prints authorities, so the two
/// compare equal: lowercase, default port for `scheme` dropped.
pub fn normalize_host_header(host: &str, scheme: &str) -> String {
    let host = host.trim().to_ascii_lowercase();
    let default_port = match scheme {
        "https" => ":443",
        _ => ":80",
    };
    host.strip_suffix(default_port).unwrap_or(&host).to_owned()
}

impl ResourceService {
    /// True when a request's `Host` header names this service's resource authority.
    pub fn host_matches(&self, host: &str) -> bool {
        normalize_host_header(host, &self.scheme) == self.authority
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(issuer: &str) -> GatewayConfig {
        GatewayConfig::from_yaml(&format!(
            "issuer: {issuer}\nservices:\n  - name: everything\n    upstream: {{ url: \"http://127.0.0.1:3001/mcp\" }}\n"
        ))
        .unwrap()
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn loopback_issuer_without_credentials_runs_the_dev_login() {
        let settings = Settings::from_config(&config("http://127.0.0.1:8080"), &env(&[])).unwrap();
        assert!(settings.is_dev_login());
        assert_eq!(settings.issuer, "http://127.0.0.1:8080");
        assert_eq!(settings.issuer_authority, "127.0.0.1:8080");
        assert_eq!(settings.services[0].resource_path, "/everything/mcp");
        assert_eq!(settings.services[0].authority, "127.0.0.1:8080");
        assert_eq!(settings.endpoint("/token"), "http://127.0.0.1:8080/token");
    }

    #[test]
    fn public_issuer_needs_github_credentials() {
        let err = Settings::from_config(&config("https://gw.example.com"), &env(&[])).unwrap_err();
        assert!(err.to_string().contains("GITHUB_CLIENT_ID"), "{err}");
        let err = Settings::from_config(
            &config("https://gw.example.com"),
            &env(&[("GITHUB_CLIENT_ID", "x")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("GITHUB_CLIENT_SECRET"), "{err}");
    }

    #[test]
    fn github_urls_come_from_the_environment() {
        let settings = Settings::from_config(
            &config("https://gw.example.com"),
            &env(&[
                ("GITHUB_CLIENT_ID", "id"),
                ("GITHUB_CLIENT_SECRET", "secret"),
                ("GITHUB_URL", "https://ghe.example.com/"),
                ("GITHUB_API_URL", "https://ghe.example.com/api/v3"),
            ]),
        )
        .unwrap();
        let [IdentityProviderSettings::GitHub(github)] = settings.identity_providers.as_slice()
        else {
            panic!("expected GitHub");
        };
        assert_eq!(github.web_url, "https://ghe.example.com");
        assert_eq!(github.api_url, "https://ghe.example.com/api/v3");
        assert!(!format!("{:?}", github.client_secret).contains("secret\""));
        let err = Settings::from_config(
            &config("https://gw.example.com"),
            &env(&[
                ("GITHUB_CLIENT_ID", "id"),
                ("GITHUB_CLIENT_SECRET", "secret"),
                ("GITHUB_URL", "ftp://x"),
            ]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("GITHUB_URL"), "{err}");
    }

    #[test]
    fn oidc_providers_come_from_config_and_environment_with_their_secrets() {
        let with_provider = GatewayConfig::from_yaml(
            "issuer: https://gw.example.com\nauthserver:\n  oidc_providers:\n    - { id: sso, issuer: 'https://sso.example.com/realms/acme', client_id: mcp }\nservices:\n  - name: everything\n    upstream: { url: \"http://127.0.0.1:3001/mcp\" }\n",
        )
        .unwrap();
        let err = Settings::from_config(&with_provider, &env(&[])).unwrap_err();
        assert!(err.to_string().contains("OIDC_SSO_CLIENT_SECRET"), "{err}");
        let settings = Settings::from_config(
            &with_provider,
            &env(&[
                ("OIDC_SSO_CLIENT_SECRET", "s1"),
                ("GOOGLE_CLIENT_ID", "g"),
                ("GOOGLE_CLIENT_SECRET", "s2"),
                ("GOOGLE_HOSTED_DOMAIN", "example.com"),
                ("GITHUB_CLIENT_ID", "id"),
                ("GITHUB_CLIENT_SECRET", "secret"),
            ]),
        )
        .unwrap();
        let ids: Vec<String> = settings
            .identity_providers
            .iter()
            .map(|p| match p {
                IdentityProviderSettings::GitHub(_) => "github".to_owned(),
                IdentityProviderSettings::Oidc { provider, .. } => provider.id.clone(),
                IdentityProviderSettings::Dev => "dev".to_owned(),
            })
            .collect();
        assert_eq!(ids, ["github", "sso", "google"]);
        assert!(!settings.is_dev_login());
        let err = Settings::from_config(
            &config("https://gw.example.com"),
            &env(&[("OIDC_ISSUER", "https://op.example.com")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("OIDC_CLIENT_ID"), "{err}");
        let settings = Settings::from_config(
            &config("https://gw.example.com"),
            &env(&[
                ("OIDC_ISSUER", "https://op.example.com"),
                ("OIDC_CLIENT_ID", "c"),
                ("OIDC_CLIENT_SECRET", "s"),
            ]),
        )
        .unwrap();
        let [IdentityProviderSettings::Oidc { provider, .. }] =
            settings.identity_providers.as_slice()
        else {
            panic!("expected the OIDC_* provider alone");
        };
        assert_eq!(provider.id, "oidc");
        assert_eq!(provider.issuer.as_str(), "https://op.example.com/");
    }

    #[test]
    fn host_header_normalisation_matches_authorities() {
        assert_eq!(
            normalize_host_header("GW.example.com:443", "https"),
            "gw.example.com"
        );
        assert_eq!(
            normalize_host_header("127.0.0.1:8080", "http"),
            "127.0.0.1:8080"
        );
        let url = Url::parse("https://GW.example.com:443/x").unwrap();
        assert_eq!(url_authority(&url), "gw.example.com");
    }
}

//! Checks a parsed gateway config and fills in the defaults that depend on other fields.
//!
//! Every problem names the field it is about (`services[1].path`), so a bad file is refused
//! at start with a message an operator can act on.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use mcp_auth_proto::paths::{AUTHSERVER_PUBLIC_PATHS, PathMatch};
use url::Url;

use crate::ConfigError;
use crate::config::{AccessList, GatewayConfig};
use crate::endpoint::Endpoint;
use crate::service::{Service, Transport};

const MAX_CLOCK_LEEWAY: Duration = Duration::from_secs(60);
const MAX_STREAM_LOSS_GRACE: Duration = Duration::from_secs(60);
const MAX_CODE_TTL: Duration = Duration::from_secs(600);
const MAX_TRUSTED_HOPS: u32 = 10;
const MIN_HEAP_BYTES: u64 = 64 << 20;
const MAX_REFRESH_REUSE_GRACE: Duration = Duration::from_secs(60);
const MAX_SERVICE_NAME: usize = 40;
/// Longest consent-page line describing a scope.
const MAX_SCOPE_DESCRIPTION: usize = 200;
/// RFC 6749 §3.3 / MCP: never advertised by a resource.
const OFFLINE_ACCESS: &str = "offline_access";

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        problem: problem.into(),
    }
}

/// Validates `config` and resolves the defaults of each service.
pub(crate) fn validate(mut config: GatewayConfig) -> Result<GatewayConfig, ConfigError> {
    validate_issuer(&config.issuer)?;
    if !config.admin.address.ip().is_loopback() {
        return Err(invalid(
            "admin.address",
            "Envoy's admin interface must bind a loopback address",
        ));
    }
    validate_redis_url(&config.redis.url)?;
    validate_redis_tls(&config.redis)?;
    validate_reach_url(
        "authserver.url",
        config.authserver.url.as_ref(),
        config.mesh_mtls,
    )?;
    validate_reach_url(
        "ext_authz.url",
        config.ext_authz.url.as_ref(),
        config.mesh_mtls,
    )?;
    validate_listener(&config)?;
    validate_listener_tls(&config)?;
    let ext_authz = &config.ext_authz;
    if ext_authz.metrics_listen == ext_authz.listen && ext_authz.listen.port() != 0 {
        return Err(invalid(
            "ext_authz.metrics_listen",
            "must differ from ext_authz.listen: metrics are plain HTTP on their own port",
        ));
    }
    validate_durations(&config)?;
    validate_access("access", &config.access)?;
    validate_oidc_providers(&config.authserver.oidc_providers)?;

    // A policy rule may name a service that is switched off (`MCP_<NAME>_ENABLED=false`): it
    // then governs nothing, instead of making the whole config invalid.
    let switched_off: HashSet<String> = config
        .services
        .iter()
        .filter(|s| !s.enabled)
        .map(|s| s.name.clone())
        .collect();
    config.services.retain(|s| s.enabled);
    if config.services.is_empty() {
        return Err(invalid(
            "services",
            "at least one enabled service is required",
        ));
    }
    let issuer = config.issuer.clone();
    let tls = config.listener.tls.is_some();
    let mut names = HashSet::new();
    let mut routes = HashSet::new();
    for (i, service) in config.services.iter_mut().enumerate() {
        let at = |field: &str| format!("services[{i}].{field}");
        resolve_service(service, &issuer, &at)?;
        if tls && !service.resource.starts_with("https://") {
            return Err(invalid(
                at("resource"),
                format!(
                    "{:?} must be https: listener.tls serves every resource over TLS",
                    service.resource
                ),
            ));
        }
        if !names.insert(service.name.clone()) {
            return Err(invalid(
                at("name"),
                format!("{:?} is used by another service", service.name),
            ));
        }
        if !routes.insert((service.host.clone(), service.path.clone())) {
            return Err(invalid(
                at("path"),
                format!(
                    "{:?} is served by another service on the same host",
                    service.path
                ),
            ));
        }
    }
    validate_mcp_policy(&config, &switched_off)?;
    Ok(config)
}

fn validate_mcp_policy(
    config: &GatewayConfig,
    switched_off: &HashSet<String>,
) -> Result<(), ConfigError> {
    use crate::mcp_policy::{ANY, KNOWN_METHODS, MAX_BODY_BYTES_LIMIT};
    let policy = &config.mcp_policy;
    if !(1024..=MAX_BODY_BYTES_LIMIT).contains(&policy.max_body_bytes) {
        return Err(invalid(
            "mcp_policy.max_body_bytes",
            format!("must be between 1024 and {MAX_BODY_BYTES_LIMIT}"),
        ));
    }
    for (i, rule) in policy.rules.iter().enumerate() {
        let at = |field: &str| format!("mcp_policy.rules[{i}].{field}");
        for (field, list) in [
            ("services", &rule.services),
            ("methods", &rule.methods),
            ("names", &rule.names),
        ] {
            if list.is_empty() {
                return Err(invalid(at(field), "must not be empty (omit it for \"*\")"));
            }
            if let Some(j) = list.iter().position(|entry| entry.trim().is_empty()) {
                return Err(invalid(format!("{}[{j}]", at(field)), "must not be empty"));
            }
        }
        for (j, service) in rule.services.iter().enumerate() {
            if service != ANY
                && config.service(service).is_none()
                && !switched_off.contains(service)
            {
                return Err(invalid(
                    format!("{}[{j}]", at("services")),
                    format!("{service:?} is not a service of this config"),
                ));
            }
        }
        for (j, method) in rule.methods.iter().enumerate() {
            let known = method == ANY
                || KNOWN_METHODS.contains(&method.as_str())
                || method.starts_with("notifications/");
            if !known {
                return Err(invalid(
                    format!("{}[{j}]", at("methods")),
                    format!("{method:?} is not an MCP method (or \"*\")"),
                ));
            }
        }
        let names_something = rule.names.iter().any(|n| n != ANY);
        let unnamed = rule
            .methods
            .iter()
            .position(|m| m != ANY && mcp_auth_proto::mcp::name_param(m).is_none());
        if let (true, Some(j)) = (names_something, unnamed) {
            return Err(invalid(
                format!("{}[{j}]", at("methods")),
                "names apply only to tools/call, prompts/get and resources/read|subscribe|unsubscribe",
            ));
        }
        if let Some(allow) = &rule.allow {
            validate_access(&at("allow"), allow)?;
        }
        for (j, scope) in rule.scopes.iter().enumerate() {
            let lacking = config
                .services
                .iter()
                .find(|s| rule.covers_service(&s.name) && !s.scopes.contains(scope));
            if let Some(service) = lacking {
                return Err(invalid(
                    format!("{}[{j}]", at("scopes")),
                    format!(
                        "{:?} is not among the scopes of service {:?}, so no client could obtain it",
                        scope.as_str(),
                        service.name
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn validate_issuer(issuer: &Url) -> Result<(), ConfigError> {
    let field = "issuer";
    match issuer.scheme() {
        "https" => {}
        "http" if is_loopback_host(issuer) => {}
        "http" => {
            return Err(invalid(
                field,
                "must use https (http is allowed for loopback hosts only)",
            ));
        }
        other => {
            return Err(invalid(
                field,
                format!("scheme {other:?} is not http or https"),
            ));
        }
    }
    if issuer.host().is_none() {
        return Err(invalid(field, "must name a host"));
    }
    if issuer.query().is_some() || issuer.fragment().is_some() {
        return Err(invalid(
            field,
            "must not have a query or fragment (RFC 8414 §2)",
        ));
    }
    if issuer.path() != "/" && issuer.path().ends_with('/') {
        return Err(invalid(
            field,
            "must not end with '/' (clients compare it byte for byte)",
        ));
    }
    if !issuer.username().is_empty() || issuer.password().is_some() {
        return Err(invalid(field, "must not carry credentials"));
    }
    Ok(())
}

/// `authserver.oidc_providers`: ids unique and well formed, issuers https (http on loopback
/// only, for tests), a client id each.
pub fn validate_oidc_providers(providers: &[crate::oidc::OidcProvider]) -> Result<(), ConfigError> {
    let mut seen = HashSet::new();
    for (i, provider) in providers.iter().enumerate() {
        let at = |field: &str| format!("authserver.oidc_providers[{i}].{field}");
        if !crate::oidc::is_valid_id(&provider.id)
            || provider.id == "github"
            || provider.id == "dev"
        {
            return Err(invalid(
                at("id"),
                format!(
                    "{:?} must be 1-32 of a-z, 0-9 and '-' (not \"github\" or \"dev\")",
                    provider.id
                ),
            ));
        }
        if !seen.insert(provider.id.as_str()) {
            return Err(invalid(
                at("id"),
                format!("{:?} is used twice", provider.id),
            ));
        }
        let issuer = &provider.issuer;
        match issuer.scheme() {
            "https" => {}
            "http" if is_loopback_host(issuer) => {}
            _ => {
                return Err(invalid(
                    at("issuer"),
                    "must be an https URL (http only on loopback)",
                ));
            }
        }
        if issuer.query().is_some() || issuer.fragment().is_some() {
            return Err(invalid(at("issuer"), "must not have a query or fragment"));
        }
        if provider.client_id.trim().is_empty() {
            return Err(invalid(at("client_id"), "must not be empty"));
        }
        if let Some(claim) = &provider.claims.groups
            && claim.trim().is_empty()
        {
            return Err(invalid(at("claims.groups"), "must not be empty"));
        }
        if provider.claims.login.trim().is_empty() {
            return Err(invalid(at("claims.login"), "must not be empty"));
        }
        if let Some(domain) = &provider.hosted_domain
            && (domain.is_empty() || domain.contains('@'))
        {
            return Err(invalid(
                at("hosted_domain"),
                format!("{domain:?} is not a domain"),
            ));
        }
    }
    Ok(())
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn validate_redis_url(url: &str) -> Result<(), ConfigError> {
    let ok = ["redis://", "rediss://", "unix://", "redis+unix://"]
        .iter()
        .any(|p| url.starts_with(p));
    if ok && Url::parse(url).is_ok() {
        Ok(())
    } else {
        Err(invalid(
            "redis.url",
            format!("{url:?} is not a redis://, rediss:// or unix:// URL"),
        ))
    }
}

fn validate_redis_tls(redis: &crate::config::RedisConfig) -> Result<(), ConfigError> {
    let tls = redis.url.starts_with("rediss://");
    for (field, file) in [
        ("redis.tls_ca_file", &redis.tls_ca_file),
        ("redis.tls_cert_file", &redis.tls_cert_file),
        ("redis.tls_key_file", &redis.tls_key_file),
    ] {
        if file.is_some() && !tls {
            return Err(invalid(field, "is only read for a rediss:// URL"));
        }
    }
    if redis.tls_cert_file.is_some() != redis.tls_key_file.is_some() {
        return Err(invalid(
            "redis.tls_key_file",
            "a client certificate needs its key, and a key its certificate",
        ));
    }
    Ok(())
}

/// How Envoy reaches a component: https, or http on loopback (or inside a mesh's mTLS).
fn validate_reach_url(field: &str, url: Option<&Url>, mesh_mtls: bool) -> Result<(), ConfigError> {
    let Some(url) = url else { return Ok(()) };
    let Some(endpoint) = Endpoint::from_url(url) else {
        return Err(invalid(
            field,
            format!("{url} is not an http(s) URL with a host"),
        ));
    };
    if !endpoint.tls && !mesh_mtls && !is_loopback_host(url) {
        return Err(invalid(
            field,
            format!(
                "{url} is plain http to another host: use https (or set mesh_mtls: true when a \
                 service mesh encrypts this hop)"
            ),
        ));
    }
    Ok(())
}

fn validate_listener(config: &GatewayConfig) -> Result<(), ConfigError> {
    let listener = &config.listener;
    if listener.xff_num_trusted_hops > MAX_TRUSTED_HOPS {
        return Err(invalid(
            "listener.xff_num_trusted_hops",
            "must be at most 10: count the proxies in front of Envoy",
        ));
    }
    if listener.max_connections == 0 {
        return Err(invalid("listener.max_connections", "must be at least 1"));
    }
    if listener.max_heap_bytes < MIN_HEAP_BYTES {
        return Err(invalid(
            "listener.max_heap_bytes",
            "must be at least 67108864 (64 MiB): Envoy needs that much to run",
        ));
    }
    Ok(())
}

/// The listener's TLS, as far as it can be judged without the certificate files (they are
/// where Envoy runs, which need not be where the config is read: see
/// [`check_listener_files`]).
fn validate_listener_tls(config: &GatewayConfig) -> Result<(), ConfigError> {
    let Some(tls) = &config.listener.tls else {
        return Ok(());
    };
    if config.issuer.scheme() != "https" {
        return Err(invalid(
            "issuer",
            "must be https when listener.tls is set: clients reach the gateway over TLS",
        ));
    }
    for (field, path) in [
        (
            "listener.tls.certificate_chain_file",
            &tls.certificate_chain_file,
        ),
        ("listener.tls.private_key_file", &tls.private_key_file),
    ] {
        if !path.is_absolute() {
            return Err(invalid(
                field,
                format!(
                    "{} must be an absolute path (Envoy resolves it from its own working \
                     directory and watches its directory for a replaced file)",
                    path.display()
                ),
            ));
        }
    }
    if let Some(redirect) = tls.http_redirect_address {
        let https = config.listener.address;
        let same_ip = redirect.ip() == https.ip()
            || redirect.ip().is_unspecified()
            || https.ip().is_unspecified();
        if redirect.port() != 0 && redirect.port() == https.port() && same_ip {
            return Err(invalid(
                "listener.tls.http_redirect_address",
                format!("{redirect} is the TLS listener's own address ({https})"),
            ));
        }
    }
    Ok(())
}

/// Checks that the listener's certificate chain and key are readable PEM files: what
/// whoever starts Envoy on this machine calls first. Envoy itself starts without them, and
/// resets every TLS connection.
pub(crate) fn check_listener_files(config: &GatewayConfig) -> Result<(), ConfigError> {
    let Some(tls) = &config.listener.tls else {
        return Ok(());
    };
    for (field, path, marker, what) in [
        (
            "listener.tls.certificate_chain_file",
            &tls.certificate_chain_file,
            "-----BEGIN CERTIFICATE-----",
            "a PEM certificate chain",
        ),
        (
            "listener.tls.private_key_file",
            &tls.private_key_file,
            "PRIVATE KEY-----",
            "a PEM private key",
        ),
    ] {
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid(field, format!("cannot read {}: {e}", path.display())))?;
        if !text.contains(marker) {
            return Err(invalid(field, format!("{} is not {what}", path.display())));
        }
    }
    Ok(())
}

fn validate_durations(config: &GatewayConfig) -> Result<(), ConfigError> {
    if config.filter.clock_leeway > MAX_CLOCK_LEEWAY {
        return Err(invalid("filter.clock_leeway", "must be at most 60s"));
    }
    if config.filter.jwks_refresh < Duration::from_secs(1) {
        return Err(invalid("filter.jwks_refresh", "must be at least 1s"));
    }
    let tokens = &config.tokens;
    if tokens.access_token < Duration::from_secs(1) {
        return Err(invalid("tokens.access_token", "must be at least 1s"));
    }
    if tokens.refresh_token < tokens.access_token {
        return Err(invalid(
            "tokens.refresh_token",
            "must not be shorter than tokens.access_token",
        ));
    }
    if tokens.authorization_code.is_zero() || tokens.authorization_code > MAX_CODE_TTL {
        return Err(invalid(
            "tokens.authorization_code",
            "must be between 1s and 10m (OAuth 2.1 §4.1.2)",
        ));
    }
    if tokens.refresh_reuse_grace > MAX_REFRESH_REUSE_GRACE {
        return Err(invalid(
            "tokens.refresh_reuse_grace",
            "must be at most 60s: a stolen refresh token would be reusable that long unnoticed",
        ));
    }
    if config.ext_authz.timeout.is_zero() {
        return Err(invalid("ext_authz.timeout", "must be more than 0s"));
    }
    if config.ext_authz.stream_loss_grace > MAX_STREAM_LOSS_GRACE {
        return Err(invalid(
            "ext_authz.stream_loss_grace",
            "must be at most 60s: decisions would outlive a lost invalidation stream too long",
        ));
    }
    if config.ext_authz.resync_interval < Duration::from_secs(1) {
        return Err(invalid("ext_authz.resync_interval", "must be at least 1s"));
    }
    Ok(())
}

fn validate_access(field: &str, access: &AccessList) -> Result<(), ConfigError> {
    for (i, team) in access.teams.iter().enumerate() {
        let well_formed = team
            .split_once('/')
            .is_some_and(|(org, slug)| !org.is_empty() && !slug.is_empty() && !slug.contains('/'));
        if !well_formed {
            return Err(invalid(
                format!("{field}.teams[{i}]"),
                format!("{team:?} is not of the form org/team"),
            ));
        }
    }
    let blank = |list: &[String]| list.iter().position(|entry| entry.trim().is_empty());
    for (name, list) in [
        ("users", &access.users),
        ("orgs", &access.orgs),
        ("teams", &access.teams),
        ("emails", &access.emails),
        ("email_domains", &access.email_domains),
        ("groups", &access.groups),
    ] {
        if let Some(i) = blank(list) {
            return Err(invalid(format!("{field}.{name}[{i}]"), "must not be empty"));
        }
    }
    for (i, email) in access.emails.iter().enumerate() {
        let well_formed = email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        });
        if !well_formed {
            return Err(invalid(
                format!("{field}.emails[{i}]"),
                format!("{email:?} is not an email address (local@domain)"),
            ));
        }
    }
    for (i, domain) in access.email_domains.iter().enumerate() {
        if domain.contains('@') || domain.starts_with('.') || domain.contains(char::is_whitespace) {
            return Err(invalid(
                format!("{field}.email_domains[{i}]"),
                format!("{domain:?} is not a domain (example.com, without `@` or a leading dot)"),
            ));
        }
    }
    Ok(())
}

fn resolve_service(
    service: &mut Service,
    issuer: &Url,
    at: &dyn Fn(&str) -> String,
) -> Result<(), ConfigError> {
    let name_ok = !service.name.is_empty()
        && service.name.len() <= MAX_SERVICE_NAME
        && service
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !service.name.starts_with('-');
    if !name_ok {
        return Err(invalid(
            at("name"),
            format!(
                "{:?} must be 1-40 characters of a-z, 0-9 and '-'",
                service.name
            ),
        ));
    }
    if service.path.is_empty() {
        service.path = format!("/{}/mcp", service.name);
    }
    validate_path(&service.path, &at("path"))?;
    if let Some(host) = &service.host {
        let ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b));
        if !ok {
            return Err(invalid(at("host"), format!("{host:?} is not a host name")));
        }
    }

    if service.resource.is_empty() {
        service.resource = default_resource(issuer, service.host.as_deref(), &service.path);
    }
    validate_resource(&service.resource, &at("resource"))?;

    if service.scopes.is_empty() {
        return Err(invalid(at("scopes"), "at least one scope is required"));
    }
    if service.scopes.iter().any(|s| s.as_str() == OFFLINE_ACCESS) {
        return Err(invalid(
            at("scopes"),
            "offline_access is never a resource scope; refresh tokens are granted without it",
        ));
    }
    if service.required_scopes.is_empty() {
        service.required_scopes = service.scopes.clone();
    }
    for (i, required) in service.required_scopes.iter().enumerate() {
        if !service
            .scopes
            .iter()
            .any(|s| s.satisfies(required.as_str()))
        {
            return Err(invalid(
                at(&format!("required_scopes[{i}]")),
                format!(
                    "{required} is not covered by any scope in `scopes`, so no token could ever satisfy it"
                ),
            ));
        }
    }
    for (scope, description) in &service.scope_descriptions {
        let field = at(&format!("scope_descriptions.{scope}"));
        if !service.scopes.iter().any(|s| s.as_str() == scope) {
            return Err(invalid(field, "describes a scope that is not in `scopes`"));
        }
        if description.trim().is_empty() || description.chars().count() > MAX_SCOPE_DESCRIPTION {
            return Err(invalid(
                field,
                format!("must be 1 to {MAX_SCOPE_DESCRIPTION} characters"),
            ));
        }
        if description.chars().any(char::is_control) {
            return Err(invalid(field, "must be one line of text"));
        }
    }
    for (i, origin) in service.allowed_origins.iter().enumerate() {
        validate_origin(origin, &at(&format!("allowed_origins[{i}]")))?;
    }
    if let Some(access) = &service.access {
        validate_access(&at("access"), access)?;
    }
    validate_upstream(service, at)
}

fn validate_path(path: &str, field: &str) -> Result<(), ConfigError> {
    if !path.starts_with('/') || path.len() < 2 {
        return Err(invalid(
            field,
            format!("{path:?} must start with '/' and name a path"),
        ));
    }
    if path.ends_with('/')
        || path.contains(['?', '#', '%', '*', ' '])
        || path.contains("//")
        || path.contains("/..")
    {
        return Err(invalid(
            field,
            format!("{path:?} must be a plain path without a trailing '/', query or wildcards"),
        ));
    }
    let taken = AUTHSERVER_PUBLIC_PATHS.iter().find(|m| match m {
        PathMatch::Exact(p) => path == *p,
        PathMatch::Segments(p) => {
            path == *p
                || path
                    .strip_prefix(p)
                    .is_some_and(|rest| rest.starts_with('/'))
        }
    });
    if let Some(m) = taken {
        return Err(invalid(
            field,
            format!("{path:?} collides with the authorization server's {m:?}"),
        ));
    }
    if path.starts_with("/.well-known/") {
        return Err(invalid(
            field,
            format!("{path:?} is under /.well-known, which the gateway reserves"),
        ));
    }
    Ok(())
}

fn default_resource(issuer: &Url, host: Option<&str>, path: &str) -> String {
    let authority = match host {
        Some(host) => host.to_owned(),
        None => {
            let host = issuer.host_str().unwrap_or_default();
            match issuer.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_owned(),
            }
        }
    };
    format!("{}://{authority}{path}", issuer.scheme())
}

fn validate_resource(resource: &str, field: &str) -> Result<(), ConfigError> {
    let url = Url::parse(resource)
        .map_err(|e| invalid(field, format!("{resource:?} is not an absolute URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(invalid(
            field,
            format!("{resource:?} must be an http(s) URL with a host"),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() || resource.contains('#') {
        return Err(invalid(
            field,
            format!("{resource:?} must not have a query or fragment (RFC 8707 §2)"),
        ));
    }
    if resource.ends_with('/') {
        return Err(invalid(
            field,
            format!("{resource:?} must not end with '/' (it is compared byte for byte)"),
        ));
    }
    if url.as_str() != resource {
        return Err(invalid(
            field,
            format!(
                "{resource:?} is not in canonical form; write {:?}",
                url.as_str()
            ),
        ));
    }
    Ok(())
}

fn validate_origin(origin: &str, field: &str) -> Result<(), ConfigError> {
    let url = Url::parse(origin)
        .map_err(|e| invalid(field, format!("{origin:?} is not an origin: {e}")))?;
    let serialized = url.origin().ascii_serialization();
    if serialized != origin {
        return Err(invalid(
            field,
            format!(
                "{origin:?} is not an origin (scheme://host[:port]); did you mean {serialized:?}?"
            ),
        ));
    }
    Ok(())
}

fn validate_upstream(service: &Service, at: &dyn Fn(&str) -> String) -> Result<(), ConfigError> {
    let upstream = &service.upstream;
    let Some(endpoint) = Endpoint::from_url(&upstream.url) else {
        return Err(invalid(
            at("upstream.url"),
            format!("{} is not an http(s) URL with a host", upstream.url),
        ));
    };
    if upstream.url.query().is_some() || upstream.url.fragment().is_some() {
        return Err(invalid(
            at("upstream.url"),
            "must not have a query or fragment",
        ));
    }
    if let Some(run) = &upstream.run
        && run.command.trim().is_empty()
    {
        return Err(invalid(at("upstream.run.command"), "must not be empty"));
    }
    if upstream.transport == Transport::Stdio {
        if upstream.run.is_none() {
            return Err(invalid(
                at("upstream.run"),
                "a stdio server needs the command that runs it",
            ));
        }
        let local = endpoint
            .host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
            || endpoint.host == "localhost";
        if !local || endpoint.tls || upstream.url.path() != crate::wrap::STDIO_WRAPPER_PATH {
            return Err(invalid(
                at("upstream.url"),
                "a stdio server is wrapped locally: use http://127.0.0.1:<port>/mcp",
            ));
        }
    }
    Ok(())
}

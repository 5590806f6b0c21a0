//! Tokens of each signing algorithm for the uncached scenarios: signed by the authserver's
//! own signing code with fresh keys, which a side JWKS document publishes.

use std::time::Duration;

use anyhow::Result;
use mcp_auth_authserver::keys::{JwkSet, KeyStore, KeyTiming};
use mcp_auth_gateway::config::SigningAlg;
use serde_json::json;

/// The algorithms the authserver can sign with, by JOSE name.
pub const ALGS: [(SigningAlg, &str); 3] = [
    (SigningAlg::EdDSA, "EdDSA"),
    (SigningAlg::ES256, "ES256"),
    (SigningAlg::RS256, "RS256"),
];

/// One token per algorithm (same claims otherwise) and the JWKS holding all their keys.
pub struct Forged {
    pub tokens: Vec<(&'static str, String)>,
    pub jwks: String,
}

pub fn tokens(issuer: &str, resource: &str, now: u64) -> Result<Forged> {
    let dir = tempfile::tempdir()?;
    let timing = KeyTiming {
        publish_delay: Duration::ZERO,
        retention: Duration::from_secs(3600),
    };
    let mut keys = Vec::new();
    let mut tokens = Vec::new();
    for (alg, name) in ALGS {
        let store = KeyStore::open(&dir.path().join(name), alg, timing, now)?;
        let ring = store.ring();
        let claims = json!({
            "iss": issuer,
            "sub": "583231",
            "aud": resource,
            "exp": now + 3600,
            "iat": now,
            "nbf": now,
            "jti": format!("bench-{name}"),
            "client_id": "bench",
            "scope": "mcp",
            "preferred_username": "octocat",
            "grant_id": "bench",
        });
        tokens.push((name, ring.sign_access_token(&claims, now)?));
        keys.extend(ring.jwks(now).keys);
    }
    Ok(Forged {
        tokens,
        jwks: serde_json::to_string(&JwkSet { keys })?,
    })
}

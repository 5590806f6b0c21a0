//! Test keys and a token minter for the unit tests (the signing halves of the RustCrypto crates).
//!
//! The RSA, P-256 and Ed25519 keys are the published example keys of RFC 7515 Appendix A.2,
//! A.3 and RFC 8037 Appendix A, so their public halves double as the RFC test vectors.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

pub const ISSUER: &str = "https://auth.example.com";
pub const RESOURCE: &str = "https://mcp.example.com/everything/mcp";
pub const NOW: u64 = 1_800_000_000;

/// RFC 7515 Appendix A.2.1 (the RSA key of RFC 7517 Appendix A.1 / A.2).
pub const RSA_N: &str = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
pub const RSA_E: &str = "AQAB";
const RSA_D: &str = "Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97IjlA7_GQ5sLKMgvfTeXZx9SE-7YwVol2NXOoAJe46sui395IW_GO-pWJ1O0BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn439X0M_V51gfpRLI9JYanrC4D4qAdGcopV_0ZHHzQlBjudU2QvXt4ehNYTCBr6XCLQUShb1juUO1ZdiYoFaFQT5Tw8bGUl_x_jTj3ccPDVZFD9pIuhLhBOneufuBiB4cS98l2SR_RQyGWSeWjnczT0QU91p1DhOVRuOopznQ";
const RSA_P: &str = "4BzEEOtIpmVdVEZNCqS7baC4crd0pqnRH_5IB3jw3bcxGn6QLvnEtfdUdiYrqBdss1l58BQ3KhooKeQTa9AB0Hw_Py5PJdTJNPY8cQn7ouZ2KKDcmnPGBY5t7yLc1QlQ5xHdwW1VhvKn-nXqhJTBgIPgtldC-KDV5z-y2XDwGUc";
const RSA_Q: &str = "uQPEfgmVtjL0Uyyx88GZFF1fOunH3-7cepKmtH4pxhtCoHqpWmT8YAmZxaewHgHAjLYsp1ZSe7zFYHj7C6ul7TjeLQeZD_YwD66t62wDmpe_HlB-TnBA-njbglfIsRLtXlnDzQkv5dTltRJ11BKBBypeeF6689rjcJIDEz9RWdc";

/// RFC 7515 Appendix A.3.1.
pub const EC_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
pub const EC_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
const EC_D: &str = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI";

/// RFC 8037 Appendix A.1 / A.2.
pub const ED_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
const ED_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";

/// A signing key with its key id.
#[derive(Clone)]
pub enum TestKey {
    Rsa(&'static str),
    Ec(&'static str),
    Ed(&'static str),
    /// Another Ed25519 key, derived from the given seed byte.
    OtherEd(&'static str, u8),
}

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).unwrap()
}

impl TestKey {
    pub fn kid(&self) -> &'static str {
        match self {
            Self::Rsa(kid) | Self::Ec(kid) | Self::Ed(kid) | Self::OtherEd(kid, _) => kid,
        }
    }

    pub fn alg(&self) -> &'static str {
        match self {
            Self::Rsa(_) => "RS256",
            Self::Ec(_) => "ES256",
            Self::Ed(_) | Self::OtherEd(..) => "EdDSA",
        }
    }

    fn ed_signing_key(&self) -> ed25519_dalek::SigningKey {
        match self {
            Self::OtherEd(_, seed) => ed25519_dalek::SigningKey::from_bytes(&[*seed; 32]),
            _ => ed25519_dalek::SigningKey::from_bytes(&unb64(ED_D).try_into().unwrap()),
        }
    }

    /// The public JWK, with `kid`, `alg` and `use`.
    pub fn public_jwk(&self) -> Value {
        let mut jwk = match self {
            Self::Rsa(_) => json!({"kty": "RSA", "n": RSA_N, "e": RSA_E}),
            Self::Ec(_) => json!({"kty": "EC", "crv": "P-256", "x": EC_X, "y": EC_Y}),
            Self::Ed(_) | Self::OtherEd(..) => {
                let x = self.ed_signing_key().verifying_key().to_bytes();
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(x)})
            }
        };
        jwk["kid"] = self.kid().into();
        jwk["alg"] = self.alg().into();
        jwk["use"] = "sig".into();
        jwk
    }

    /// Signs `signing_input` with this key's algorithm.
    pub fn sign(&self, signing_input: &[u8]) -> Vec<u8> {
        use rsa::signature::{SignatureEncoding as _, Signer as _};
        match self {
            Self::Rsa(_) => {
                let big = |s: &str| rsa::BigUint::from_bytes_be(&unb64(s));
                let key = rsa::RsaPrivateKey::from_components(
                    big(RSA_N),
                    big(RSA_E),
                    big(RSA_D),
                    vec![big(RSA_P), big(RSA_Q)],
                )
                .unwrap();
                rsa::pkcs1v15::SigningKey::<Sha256>::new(key)
                    .sign(signing_input)
                    .to_vec()
            }
            Self::Ec(_) => {
                let key = p256::ecdsa::SigningKey::from_slice(&unb64(EC_D)).unwrap();
                let signature: p256::ecdsa::Signature = key.sign(signing_input);
                // As the authserver issues them: low S.
                signature
                    .normalize_s()
                    .unwrap_or(signature)
                    .to_bytes()
                    .to_vec()
            }
            Self::Ed(_) | Self::OtherEd(..) => self
                .ed_signing_key()
                .sign(signing_input)
                .to_bytes()
                .to_vec(),
        }
    }

    /// The standard access token header for this key.
    pub fn header(&self) -> Value {
        json!({"alg": self.alg(), "kid": self.kid(), "typ": "at+jwt"})
    }
}

pub fn jwks(keys: &[TestKey]) -> Vec<u8> {
    let keys: Vec<Value> = keys.iter().map(TestKey::public_jwk).collect();
    serde_json::to_vec(&json!({ "keys": keys })).unwrap()
}

/// Valid claims for [`RESOURCE`] at [`NOW`].
pub fn claims() -> Value {
    json!({
        "iss": ISSUER,
        "sub": "12345",
        "aud": RESOURCE,
        "exp": NOW + 300,
        "iat": NOW - 10,
        "nbf": NOW - 10,
        "jti": "tok-1",
        "client_id": "client-1",
        "scope": "mcp:tools mcp:resources",
        "preferred_username": "octocat",
        "grant_id": "grant-1",
    })
}

/// A compact JWS over the given header and claims, signed with `key`.
pub fn mint_with(key: &TestKey, header: &Value, claims: &Value) -> String {
    let signing_input = format!(
        "{}.{}",
        b64(serde_json::to_vec(header).unwrap()),
        b64(serde_json::to_vec(claims).unwrap())
    );
    let signature = key.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", b64(signature))
}

pub fn mint(key: &TestKey, claims: &Value) -> String {
    mint_with(key, &key.header(), claims)
}

/// HMAC-SHA256 (RFC 2104), for the "HS256 with the public key as secret" attack.
pub fn hmac_sha256(secret: &[u8], message: &[u8]) -> Vec<u8> {
    let mut key = [0u8; 64];
    if secret.len() > 64 {
        key[..32].copy_from_slice(&Sha256::digest(secret));
    } else {
        key[..secret.len()].copy_from_slice(secret);
    }
    let pad = |byte: u8| key.iter().map(|k| k ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

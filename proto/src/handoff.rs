//! The filter → ext_authz hand-off: what the filter verified about the bearer token, in one
//! request header.
//!
//! The filter *replaces* [`HANDOFF_HEADER`] on every request it admits (Envoy's replace drops
//! every client-sent copy first), so a value that reaches ext_authz was written by the
//! filter; ext_authz removes it again, with the bearer token, before the request reaches the
//! MCP server. One header rather than one per claim: every header the filter sets is a call
//! out of the wasm VM, on the hot path of every request.
//!
//! The value is `key=value` pairs joined by `;`, in any order, each key once:
//! `svc`, `sub`, `login`, `cid`, `gid`, `jti`, `scope`, `exp`, `iat`. Values are
//! percent-encoded (RFC 3986 §2.1) wherever a byte is not a visible ASCII character other
//! than `%`, `;` and `=`; so a value decodes without copying when it needed no escaping.
//!
//! The value is bound to the filter by a MAC ([`HandoffKey`]): the last field, `mac`, is
//! the keyed BLAKE3 of everything before `;mac=`, under a key derived from a secret only
//! the filter (its VM's environment, [`HANDOFF_KEY_ENV`]) and ext_authz hold. So a
//! hand-off reaches ext_authz as something it trusts only where the filter wrote it: a
//! request to a workload that has the ext_authz provider but not the filter (an Istio
//! `CUSTOM` policy without the `WasmPlugin`, a route without the filter) carries a
//! client's header, whose MAC does not verify. BLAKE3 rather than HMAC-SHA-256: it is a
//! MAC by construction in keyed mode and about 3× cheaper in V8's wasm, on the path of
//! every request.

use std::borrow::Cow;
use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The one header that carries the hand-off.
pub const HANDOFF_HEADER: &str = "x-mcp-auth-handoff";
/// Header names the gateway keeps for itself: no identity header may start with it.
pub const RESERVED_PREFIX: &str = "x-mcp-auth";
/// The secret the hand-off MAC key is derived from, in the environment of ext_authz and of
/// the filter's wasm VM (Envoy `vm_config.environment_variables.host_env_keys`).
pub const HANDOFF_KEY_ENV: &str = "MCP_AUTH_HANDOFF_KEY";
/// During a rotation, the secret ext_authz still accepts (the filter signs with
/// [`HANDOFF_KEY_ENV`] only).
pub const HANDOFF_PREVIOUS_KEY_ENV: &str = "MCP_AUTH_HANDOFF_KEY_PREVIOUS";
/// The shortest secret accepted: 32 bytes, e.g. `openssl rand -hex 32` (64 characters).
pub const MIN_SECRET_BYTES: usize = 32;
/// Separates the signed part of the value from its MAC.
const MAC_FIELD: &str = ";mac=";
/// What [`HandoffKey::append_mac`] adds: the separator and 32 bytes in unpadded base64url.
pub const SIGNATURE_LEN: usize = MAC_FIELD.len() + 43;
/// BLAKE3 `derive_key` context: a key for this purpose only, whatever else the secret is.
const KEY_CONTEXT: &str = "mcp-mesh-auth 2026-12 filter to ext_authz hand-off MAC";

/// What the filter verified: the token's claims and the route it matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff<'a> {
    /// The gateway service (Envoy route) the filter matched.
    pub service: Cow<'a, str>,
    /// `sub`: the stable upstream user id.
    pub subject: Cow<'a, str>,
    /// `preferred_username`; may be empty.
    pub login: Cow<'a, str>,
    pub client_id: Cow<'a, str>,
    /// Every token of one authorization shares it.
    pub grant_id: Cow<'a, str>,
    /// `jti`.
    pub token_id: Cow<'a, str>,
    /// Space-delimited scopes (RFC 6749 §3.3); may be empty.
    pub scope: Cow<'a, str>,
    /// `exp`, seconds since the Unix epoch.
    pub expires_at: u64,
    /// `iat`, seconds since the Unix epoch.
    pub issued_at: u64,
}

/// Why a hand-off value cannot be read. Always a deny for ext_authz.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandoffError {
    #[error("hand-off field {0} is missing or empty")]
    Missing(&'static str),
    #[error("hand-off field {0} appears more than once")]
    Repeated(&'static str),
    #[error("hand-off field {0} is not valid")]
    Malformed(&'static str),
    #[error("hand-off value has an unknown field")]
    UnknownField,
    #[error("hand-off value carries no MAC: it was not written by the filter")]
    Unsigned,
    #[error("hand-off MAC does not verify: the value was not written by this gateway's filter")]
    BadMac,
}

/// Why a secret cannot key the hand-off MAC.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandoffKeyError {
    #[error("{0} is not set: ext_authz and the filter's wasm VM need the same secret")]
    Unset(&'static str),
    #[error(
        "{name} is {len} bytes long; at least {MIN_SECRET_BYTES} are needed (`openssl rand -hex 32`)"
    )]
    TooShort { name: &'static str, len: usize },
}

/// The key of the hand-off MAC, derived from a shared secret.
#[derive(Clone, PartialEq, Eq)]
pub struct HandoffKey([u8; 32]);

impl std::fmt::Debug for HandoffKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HandoffKey(<redacted>)")
    }
}

impl HandoffKey {
    /// The key derived from `secret`, the value of the environment variable `name`.
    pub fn from_secret(name: &'static str, secret: &str) -> Result<Self, HandoffKeyError> {
        let secret = secret.trim();
        if secret.is_empty() {
            return Err(HandoffKeyError::Unset(name));
        }
        if secret.len() < MIN_SECRET_BYTES {
            return Err(HandoffKeyError::TooShort {
                name,
                len: secret.len(),
            });
        }
        Ok(Self(blake3::derive_key(KEY_CONTEXT, secret.as_bytes())))
    }

    /// `unsigned` with its MAC appended: the header value.
    pub fn sign(&self, unsigned: &str) -> String {
        let mut out = String::with_capacity(unsigned.len() + SIGNATURE_LEN);
        out.push_str(unsigned);
        self.append_mac(&mut out);
        out
    }

    /// Appends the MAC of `value` to it, in place: `value` becomes the header value (leave
    /// [`SIGNATURE_LEN`] bytes of spare capacity to avoid a reallocation).
    pub fn append_mac(&self, value: &mut String) {
        let mac = self.mac(value);
        value.push_str(MAC_FIELD);
        URL_SAFE_NO_PAD.encode_string(mac.as_bytes(), value);
    }

    fn mac(&self, unsigned: &str) -> blake3::Hash {
        blake3::keyed_hash(&self.0, unsigned.as_bytes())
    }
}

/// The keys ext_authz accepts a hand-off under: the current one and, during a rotation, the
/// previous one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoffKeys {
    pub current: HandoffKey,
    pub previous: Option<HandoffKey>,
}

impl HandoffKeys {
    /// The keys from [`HANDOFF_KEY_ENV`] and [`HANDOFF_PREVIOUS_KEY_ENV`], read by `var`.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, HandoffKeyError> {
        let current = var(HANDOFF_KEY_ENV).ok_or(HandoffKeyError::Unset(HANDOFF_KEY_ENV))?;
        let previous = var(HANDOFF_PREVIOUS_KEY_ENV)
            .filter(|v| !v.trim().is_empty())
            .map(|v| HandoffKey::from_secret(HANDOFF_PREVIOUS_KEY_ENV, &v))
            .transpose()?;
        Ok(Self {
            current: HandoffKey::from_secret(HANDOFF_KEY_ENV, &current)?,
            previous,
        })
    }

    /// The signed part of `value` when its MAC verifies under one of the keys (compared in
    /// constant time).
    pub fn verify<'a>(&self, value: &'a str) -> Result<&'a str, HandoffError> {
        let (unsigned, mac) = value.rsplit_once(MAC_FIELD).ok_or(HandoffError::Unsigned)?;
        let mut given = [0u8; 32];
        match URL_SAFE_NO_PAD.decode_slice(mac, &mut given) {
            Ok(32) => {}
            _ => return Err(HandoffError::BadMac),
        }
        let given = blake3::Hash::from_bytes(given);
        let keys = std::iter::once(&self.current).chain(self.previous.as_ref());
        // Every key is tried, so the time taken does not tell which one matched.
        let matched = keys.fold(false, |found, key| (key.mac(unsigned) == given) | found);
        if matched {
            Ok(unsigned)
        } else {
            Err(HandoffError::BadMac)
        }
    }
}

const FIELDS: [&str; 9] = [
    "svc", "sub", "login", "cid", "gid", "jti", "scope", "exp", "iat",
];

impl Handoff<'_> {
    /// The claim fields (all but `svc`), encoded once when a token is verified; the filter
    /// then appends [`Handoff::service_field`] per request.
    pub fn encode_claims(&self) -> String {
        let mut out = String::with_capacity(160);
        let text = [
            ("sub", &self.subject),
            ("login", &self.login),
            ("cid", &self.client_id),
            ("gid", &self.grant_id),
            ("jti", &self.token_id),
            ("scope", &self.scope),
        ];
        for (key, value) in text {
            push_field(&mut out, key, value);
        }
        push_field(&mut out, "exp", &self.expires_at.to_string());
        push_field(&mut out, "iat", &self.issued_at.to_string());
        out
    }

    /// The whole header value.
    pub fn encode(&self) -> String {
        let mut out = self.encode_claims();
        out.push_str(&service_field(&self.service));
        out
    }
}

/// `;svc=<service>`: the part of the value that depends on the route.
pub fn service_field(service: &str) -> String {
    let mut out = String::with_capacity(service.len() + 5);
    out.push(';');
    push_value(&mut out, "svc", service);
    out
}

fn push_field(out: &mut String, key: &str, value: &str) {
    if !out.is_empty() {
        out.push(';');
    }
    push_value(out, key, value);
}

fn push_value(out: &mut String, key: &str, value: &str) {
    out.push_str(key);
    out.push('=');
    for byte in value.bytes() {
        if needs_escape(byte) {
            let _ = write!(out, "%{byte:02X}");
        } else {
            out.push(char::from(byte));
        }
    }
}

fn needs_escape(byte: u8) -> bool {
    !(0x21..=0x7e).contains(&byte) || matches!(byte, b'%' | b';' | b'=')
}

impl<'a> Handoff<'a> {
    /// Reads a header value written by the filter: its MAC verified under `keys`, then the
    /// signed part decoded ([`Handoff::decode`]).
    pub fn verify_and_decode(keys: &HandoffKeys, value: &'a str) -> Result<Self, HandoffError> {
        Self::decode(keys.verify(value)?)
    }

    /// Reads a value written by [`Handoff::encode`] (without its MAC). Strict: every field
    /// once, none unknown, the required ones non-empty, times numeric.
    pub fn decode(value: &'a str) -> Result<Self, HandoffError> {
        let mut found: [Option<Cow<'a, str>>; 9] = Default::default();
        for pair in value.split(';') {
            let (key, raw) = pair.split_once('=').ok_or(HandoffError::UnknownField)?;
            let index = FIELDS
                .iter()
                .position(|f| *f == key)
                .ok_or(HandoffError::UnknownField)?;
            let name = FIELDS[index];
            if found[index].is_some() {
                return Err(HandoffError::Repeated(name));
            }
            found[index] = Some(percent_decode(raw).ok_or(HandoffError::Malformed(name))?);
        }
        let [svc, sub, login, cid, gid, jti, scope, exp, iat] = found;
        let required = |value: Option<Cow<'a, str>>, name: &'static str| {
            value
                .filter(|v| !v.is_empty())
                .ok_or(HandoffError::Missing(name))
        };
        let time = |value: Option<Cow<'a, str>>, name: &'static str| {
            required(value, name)?
                .parse::<u64>()
                .map_err(|_| HandoffError::Malformed(name))
        };
        Ok(Self {
            service: required(svc, "svc")?,
            subject: required(sub, "sub")?,
            login: login.unwrap_or_default(),
            client_id: required(cid, "cid")?,
            grant_id: required(gid, "gid")?,
            token_id: required(jti, "jti")?,
            scope: scope.unwrap_or_default(),
            expires_at: time(exp, "exp")?,
            issued_at: time(iat, "iat")?,
        })
    }
}

/// Decodes `%XX` escapes; borrowed when there are none. `None` for a bad escape, a raw
/// byte that should have been escaped, or a result that is not UTF-8.
fn percent_decode(raw: &str) -> Option<Cow<'_, str>> {
    if raw.bytes().any(|b| needs_escape(b) && b != b'%') {
        return None;
    }
    if !raw.contains('%') {
        return Some(Cow::Borrowed(raw));
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Handoff<'static> {
        Handoff {
            service: "everything".into(),
            subject: "583231".into(),
            login: "octocat".into(),
            client_id: "https://app.example.com/client.json?a=1;b=2".into(),
            grant_id: "g1".into(),
            token_id: "t1".into(),
            scope: "mcp mcp:tools".into(),
            expires_at: 2_000,
            issued_at: 1_000,
        }
    }

    #[test]
    fn round_trips_and_escapes_only_what_it_must() {
        let value = sample().encode();
        assert_eq!(
            value,
            "sub=583231;login=octocat;cid=https://app.example.com/client.json?a%3D1%3Bb%3D2;\
             gid=g1;jti=t1;scope=mcp%20mcp:tools;exp=2000;iat=1000;svc=everything"
        );
        let decoded = Handoff::decode(&value).unwrap();
        assert_eq!(decoded, sample());
        assert!(matches!(decoded.subject, Cow::Borrowed(_)));
    }

    fn keys(secret: &str) -> HandoffKeys {
        HandoffKeys {
            current: HandoffKey::from_secret(HANDOFF_KEY_ENV, secret).unwrap(),
            previous: None,
        }
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_signed_value_verifies_under_its_key_only() {
        let keys = keys(SECRET);
        let signed = keys.current.sign(&sample().encode());
        assert!(signed.starts_with(&sample().encode()));
        assert_eq!(signed.len(), sample().encode().len() + SIGNATURE_LEN);
        assert_eq!(
            Handoff::verify_and_decode(&keys, &signed).unwrap(),
            sample()
        );

        let other = self::keys("another secret, just as long as the first one");
        assert_eq!(
            Handoff::verify_and_decode(&other, &signed),
            Err(HandoffError::BadMac)
        );
    }

    #[test]
    fn any_change_to_a_signed_value_breaks_its_mac() {
        let keys = keys(SECRET);
        let signed = keys.current.sign(&sample().encode());
        let (unsigned, mac) = signed.rsplit_once(";mac=").unwrap();
        let forged = [
            signed.replace("sub=583231", "sub=583232"),
            signed.replace("svc=everything", "svc=filesystem"),
            format!("{unsigned};svc=filesystem;mac={mac}"),
            format!("{unsigned};mac={}", &mac[1..]),
            format!("{unsigned};mac={mac}A"),
            format!("{unsigned};mac=!{}", &mac[1..]),
            format!("{unsigned};mac="),
        ];
        for value in forged {
            assert_eq!(
                Handoff::verify_and_decode(&keys, &value),
                Err(HandoffError::BadMac),
                "{value}"
            );
        }
        assert_eq!(
            Handoff::verify_and_decode(&keys, unsigned),
            Err(HandoffError::Unsigned)
        );
    }

    #[test]
    fn the_previous_key_is_accepted_during_a_rotation() {
        let old = HandoffKey::from_secret(HANDOFF_KEY_ENV, SECRET).unwrap();
        let new = HandoffKey::from_secret(HANDOFF_KEY_ENV, &SECRET.repeat(2)).unwrap();
        let rotating = HandoffKeys {
            current: new.clone(),
            previous: Some(old.clone()),
        };
        for key in [&old, &new] {
            let signed = key.sign(&sample().encode());
            assert!(Handoff::verify_and_decode(&rotating, &signed).is_ok());
        }
        let done = HandoffKeys {
            current: new,
            previous: None,
        };
        let signed = old.sign(&sample().encode());
        assert_eq!(
            Handoff::verify_and_decode(&done, &signed),
            Err(HandoffError::BadMac)
        );
    }

    #[test]
    fn secrets_are_read_from_the_environment_and_never_printed() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(
            HandoffKeys::from_env(env(&[])),
            Err(HandoffKeyError::Unset(HANDOFF_KEY_ENV))
        );
        assert_eq!(
            HandoffKeys::from_env(env(&[(HANDOFF_KEY_ENV, "short")])),
            Err(HandoffKeyError::TooShort {
                name: HANDOFF_KEY_ENV,
                len: 5
            })
        );
        assert_eq!(
            HandoffKeys::from_env(env(&[
                (HANDOFF_KEY_ENV, SECRET),
                (HANDOFF_PREVIOUS_KEY_ENV, "short")
            ])),
            Err(HandoffKeyError::TooShort {
                name: HANDOFF_PREVIOUS_KEY_ENV,
                len: 5
            })
        );
        let keys = HandoffKeys::from_env(env(&[(HANDOFF_KEY_ENV, SECRET)])).unwrap();
        assert_eq!(keys.previous, None);
        assert!(!format!("{keys:?}").contains(SECRET));
        assert_eq!(keys, self::keys(SECRET));
    }

    #[test]
    fn non_ascii_values_survive() {
        let mut handoff = sample();
        handoff.login = "zoë".into();
        let value = handoff.encode();
        assert!(value.is_ascii());
        assert_eq!(Handoff::decode(&value).unwrap().login, "zoë");
    }

    #[test]
    fn optional_fields_may_be_empty() {
        let mut handoff = sample();
        handoff.login = "".into();
        handoff.scope = "".into();
        assert_eq!(Handoff::decode(&handoff.encode()).unwrap(), handoff);
    }

    #[test]
    fn strict_about_what_it_accepts() {
        let value = sample().encode();
        let cases = [
            (
                value.replace("sub=583231;", ""),
                HandoffError::Missing("sub"),
            ),
            (value.replace("cid=", "cid=;x="), HandoffError::UnknownField),
            (format!("{value};sub=1"), HandoffError::Repeated("sub")),
            (
                value.replace("exp=2000", "exp=soon"),
                HandoffError::Malformed("exp"),
            ),
            (
                value.replace("jti=t1", "jti=%ZZ"),
                HandoffError::Malformed("jti"),
            ),
            (
                value.replace("jti=t1", "jti=t 1"),
                HandoffError::Malformed("jti"),
            ),
            (
                value.replace("jti=t1", "jti=%FF"),
                HandoffError::Malformed("jti"),
            ),
            (
                value.replace("gid=g1", "gid="),
                HandoffError::Missing("gid"),
            ),
            (String::new(), HandoffError::UnknownField),
        ];
        for (bad, expected) in cases {
            assert_eq!(Handoff::decode(&bad), Err(expected), "{bad}");
        }
    }
}

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

use std::borrow::Cow;
use std::fmt::Write as _;

/// The one header that carries the hand-off.
pub const HANDOFF_HEADER: &str = "x-mcp-auth-handoff";
/// Header names the gateway keeps for itself: no identity header may start with it.
pub const RESERVED_PREFIX: &str = "x-mcp-auth";

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
    /// Reads a header value written by [`Handoff::encode`]. Strict: every field once, none
    /// unknown, the required ones non-empty, times numeric.
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

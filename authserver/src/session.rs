//! Our own browser session: one signed cookie, `__Host-mcp-auth-session`, that binds a
//! browser to the authorization requests it started (CSRF, login CSRF) and, after a login,
//! remembers who the user is so consent is asked only once per user and client.
//!
//! The cookie is `Secure; HttpOnly; SameSite=Lax; Path=/` with the `__Host-` prefix (RFC 6265bis
//! §4.1.3.2): no other site, subdomain or path can set or read it, and cross-site POSTs do not
//! carry it. Its value is `BASE64URL(json) "." BASE64URL(HMAC-SHA256)`; nothing in it is secret,
//! but nothing in it can be forged.

use aws_lc_rs::hmac;
use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::secret::{constant_time_eq, random_token};

/// The cookie's name.
pub const SESSION_COOKIE: &str = "__Host-mcp-auth-session";
/// How long a session lasts; after it the user signs in again.
pub const SESSION_TTL_SECS: u64 = 8 * 3600;
/// Longest cookie value accepted.
const MAX_COOKIE_LEN: usize = 2048;

/// What the session cookie says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Random browser id: pending authorizations and CSRF tokens are bound to it.
    pub bid: String,
    /// The signed-in user's stable id, once they have signed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    /// When the user signed in (seconds since the Unix epoch): a revocation of the user at or
    /// after it ends the session's sign-in.
    #[serde(default)]
    pub iat: u64,
    /// Seconds since the Unix epoch.
    pub exp: u64,
}

impl Session {
    /// A fresh anonymous session.
    pub fn anonymous(now: u64) -> Self {
        Self {
            bid: random_token(16),
            sub: None,
            login: None,
            iat: now,
            exp: now + SESSION_TTL_SECS,
        }
    }

    /// This browser, now signed in as `sub`/`login`, for another full session lifetime.
    pub fn signed_in(&self, sub: &str, login: &str, now: u64) -> Self {
        Self {
            bid: self.bid.clone(),
            sub: Some(sub.to_owned()),
            login: Some(login.to_owned()),
            iat: now,
            exp: now + SESSION_TTL_SECS,
        }
    }
}

/// Signs and checks session cookies and CSRF tokens.
pub struct SessionKeys {
    key: hmac::Key,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys([redacted])")
    }
}

impl SessionKeys {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    fn mac(&self, purpose: &str, data: &[u8]) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(purpose.as_bytes());
        ctx.update(b"\0");
        ctx.update(data);
        URL_SAFE_NO_PAD.encode(ctx.sign().as_ref())
    }

    /// The cookie value of `session`.
    pub fn encode(&self, session: &Session) -> String {
        let json = serde_json::to_vec(session).unwrap_or_default();
        let payload = URL_SAFE_NO_PAD.encode(json);
        let mac = self.mac("session", payload.as_bytes());
        format!("{payload}.{mac}")
    }

    /// The session in `value`, if it is ours, intact and not expired.
    pub fn decode(&self, value: &str, now: u64) -> Option<Session> {
        if value.len() > MAX_COOKIE_LEN {
            return None;
        }
        let (payload, mac) = value.split_once('.')?;
        let expected = self.mac("session", payload.as_bytes());
        if !constant_time_eq(expected.as_bytes(), mac.as_bytes()) {
            return None;
        }
        let session: Session =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        (session.exp > now).then_some(session)
    }

    /// The session carried by a request's `Cookie` headers.
    pub fn from_headers(&self, headers: &HeaderMap, now: u64) -> Option<Session> {
        cookie_value(headers, SESSION_COOKIE).and_then(|v| self.decode(v, now))
    }

    /// The CSRF token of pending request `request_id` in the browser `bid`.
    pub fn csrf_token(&self, request_id: &str, bid: &str) -> String {
        self.mac("csrf", format!("{request_id}\0{bid}").as_bytes())
    }

    /// True when `token` is the CSRF token of `request_id` in `bid` (constant time).
    pub fn check_csrf(&self, token: &str, request_id: &str, bid: &str) -> bool {
        constant_time_eq(
            self.csrf_token(request_id, bid).as_bytes(),
            token.as_bytes(),
        )
    }

    /// The `Set-Cookie` header value storing `session`.
    pub fn set_cookie(&self, session: &Session, now: u64) -> Option<HeaderValue> {
        let max_age = session.exp.saturating_sub(now);
        HeaderValue::from_str(&format!(
            "{SESSION_COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={max_age}",
            self.encode(session)
        ))
        .ok()
    }
}

/// The value of cookie `name` in the request's `Cookie` headers (RFC 6265 §5.4).
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> SessionKeys {
        SessionKeys::new(&[7u8; 32])
    }

    #[test]
    fn sessions_round_trip_and_expire() {
        let keys = keys();
        let session = Session::anonymous(100).signed_in("42", "octocat", 100);
        let value = keys.encode(&session);
        assert_eq!(keys.decode(&value, 101), Some(session.clone()));
        assert_eq!(keys.decode(&value, 100 + SESSION_TTL_SECS), None);
    }

    #[test]
    fn forged_or_foreign_sessions_are_refused() {
        let keys = keys();
        let value = keys.encode(&Session::anonymous(0));
        let (payload, mac) = value.split_once('.').unwrap();
        let forged = Session {
            sub: Some("1".into()),
            ..Session::anonymous(0)
        };
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(keys.decode(&format!("{forged_payload}.{mac}"), 1), None);
        assert_eq!(SessionKeys::new(&[8u8; 32]).decode(&value, 1), None);
        assert_eq!(keys.decode(payload, 1), None);
        assert_eq!(keys.decode("", 1), None);
    }

    #[test]
    fn csrf_tokens_bind_request_and_browser() {
        let keys = keys();
        let token = keys.csrf_token("req", "browser");
        assert!(keys.check_csrf(&token, "req", "browser"));
        assert!(!keys.check_csrf(&token, "req", "other-browser"));
        assert!(!keys.check_csrf(&token, "other-req", "browser"));
        assert!(!keys.check_csrf("", "req", "browser"));
    }

    #[test]
    fn cookie_header_is_secure_host_only() {
        let keys = keys();
        let header = keys.set_cookie(&Session::anonymous(0), 0).unwrap();
        let header = header.to_str().unwrap();
        assert!(header.starts_with("__Host-mcp-auth-session="));
        for attribute in [
            "Path=/",
            "Secure",
            "HttpOnly",
            "SameSite=Lax",
            "Max-Age=28800",
        ] {
            assert!(header.contains(attribute), "{header}");
        }
        assert!(!header.contains("Domain"));
    }

    #[test]
    fn cookie_values_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; __Host-mcp-auth-session=xyz"),
        );
        assert_eq!(cookie_value(&headers, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie_value(&headers, "b"), None);
    }
}

//! Redirect URIs: what may be registered (AS-13: https, or http on loopback) and how a
//! requested one is matched against the registered ones.
//!
//! Matching is exact string comparison (OAuth 2.1 §2.3.1), with one exception: for `http`
//! loopback URIs the port is ignored (RFC 8252 §7.3), because native clients listen on an
//! ephemeral port chosen at run time. Host, path and query must still match exactly, and
//! `localhost` and `127.0.0.1` are different hosts.

use url::Url;

/// Longest redirect URI accepted.
pub const MAX_REDIRECT_URI_LEN: usize = 2048;

/// A registered redirect URI, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUri {
    raw: String,
    url: Url,
    loopback: bool,
}

impl RedirectUri {
    /// Validates a redirect URI for registration. The error says why, for
    /// `invalid_redirect_uri` (RFC 7591 §3.2.2).
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.len() > MAX_REDIRECT_URI_LEN {
            return Err(format!(
                "redirect URI longer than {MAX_REDIRECT_URI_LEN} characters"
            ));
        }
        let url = Url::parse(raw).map_err(|e| format!("{raw:?} is not an absolute URI: {e}"))?;
        if url.fragment().is_some() || raw.contains('#') {
            return Err(format!(
                "{raw:?} has a fragment (RFC 6749 §3.1.2 forbids it)"
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("{raw:?} carries credentials"));
        }
        let loopback = is_loopback_host(&url);
        match url.scheme() {
            "https" if url.host().is_some() => {}
            "http" if loopback => {}
            _ => {
                return Err(format!(
                    "{raw:?} is neither https nor http on a loopback address \
                     (127.0.0.1, [::1], localhost; RFC 8252 §7.3)"
                ));
            }
        }
        Ok(Self {
            raw: raw.to_owned(),
            loopback: loopback && url.scheme() == "http",
            url,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// True for an `http` loopback URI (port-agnostic matching applies).
    pub fn is_loopback(&self) -> bool {
        self.loopback
    }

    /// The host shown on the consent page.
    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default()
    }

    /// True when `requested` is this URI: byte for byte, or for http loopback URIs, equal
    /// but for the port.
    pub fn matches(&self, requested: &str) -> bool {
        if requested == self.raw {
            return true;
        }
        if !self.loopback {
            return false;
        }
        let Ok(mut other) = Url::parse(requested) else {
            return false;
        };
        if other.fragment().is_some() || requested.contains('#') || other.scheme() != "http" {
            return false;
        }
        let mut registered = self.url.clone();
        // Both are http URLs with a host, so clearing the port cannot fail.
        let cleared = registered.set_port(None).is_ok() && other.set_port(None).is_ok();
        cleared && registered == other
    }
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The registered URI `requested` designates, if any.
pub fn find_match<'a>(registered: &'a [RedirectUri], requested: &str) -> Option<&'a RedirectUri> {
    registered.iter().find(|r| r.matches(requested))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_https_and_loopback_http() {
        for ok in [
            "https://app.example.com/cb",
            "https://app.example.com/cb?x=1",
            "http://127.0.0.1:33418/callback",
            "http://127.0.0.1/callback",
            "http://[::1]:8080/cb",
            "http://localhost:6274/oauth/callback",
            "https://localhost/cb",
        ] {
            assert!(RedirectUri::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "http://app.example.com/cb",
            "http://10.0.0.1/cb",
            "cursor://anysphere/cb",
            "javascript:alert(1)",
            "https://app.example.com/cb#frag",
            "https://user:pw@app.example.com/cb",
            "/relative",
            "",
        ] {
            assert!(RedirectUri::parse(bad).is_err(), "{bad}");
        }
        assert!(RedirectUri::parse(&format!("https://a/{}", "x".repeat(3000))).is_err());
    }

    #[test]
    fn loopback_matches_any_port_but_nothing_else() {
        let r = RedirectUri::parse("http://127.0.0.1:1234/cb").unwrap();
        assert!(r.matches("http://127.0.0.1:1234/cb"));
        assert!(r.matches("http://127.0.0.1:5555/cb"));
        assert!(r.matches("http://127.0.0.1/cb"));
        assert!(!r.matches("http://127.0.0.1:5555/other"));
        assert!(!r.matches("http://127.0.0.1:5555/cb?x=1"));
        assert!(!r.matches("http://localhost:5555/cb"));
        assert!(!r.matches("https://127.0.0.1:5555/cb"));
        assert!(!r.matches("http://127.0.0.1:5555/cb#x"));
    }

    #[test]
    fn https_matches_exactly() {
        let r = RedirectUri::parse("https://app.example.com/cb").unwrap();
        assert!(r.matches("https://app.example.com/cb"));
        assert!(!r.matches("https://app.example.com/cb/"));
        assert!(!r.matches("https://APP.example.com/cb"));
        assert!(!r.matches("https://app.example.com:444/cb"));
    }
}

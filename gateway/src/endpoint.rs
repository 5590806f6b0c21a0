//! Where Envoy connects to reach an upstream: host, port and whether to use TLS.

use std::net::SocketAddr;

use serde::Serialize;
use url::Url;

/// An upstream address as an Envoy cluster needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    /// A DNS name or an IP literal (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl Endpoint {
    /// From an `http`/`https` URL; `None` when it has no host or another scheme.
    pub fn from_url(url: &Url) -> Option<Self> {
        let tls = match url.scheme() {
            "http" => false,
            "https" => true,
            _ => return None,
        };
        let host = match url.host()? {
            url::Host::Domain(d) => d.to_owned(),
            url::Host::Ipv4(ip) => ip.to_string(),
            url::Host::Ipv6(ip) => ip.to_string(),
        };
        Some(Self {
            host,
            port: url.port_or_known_default()?,
            tls,
        })
    }

    /// From a bind address; an unspecified address (`0.0.0.0`, `::`) is reached on loopback.
    pub fn from_listen(addr: SocketAddr) -> Self {
        let host = match addr {
            SocketAddr::V4(a) if a.ip().is_unspecified() => "127.0.0.1".to_owned(),
            SocketAddr::V6(a) if a.ip().is_unspecified() => "::1".to_owned(),
            a => a.ip().to_string(),
        };
        Self {
            host,
            port: addr.port(),
            tls: false,
        }
    }

    /// `host:port` as an HTTP `:authority` (IPv6 in brackets).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// True when `host` is an IP literal (Envoy's STATIC clusters need one).
    pub fn is_ip(&self) -> bool {
        self.host.parse::<std::net::IpAddr>().is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_bind_address_is_reached_on_loopback() {
        let e = Endpoint::from_listen("0.0.0.0:8081".parse().unwrap());
        assert_eq!(e.authority(), "127.0.0.1:8081");
        let e = Endpoint::from_listen("[::]:9191".parse().unwrap());
        assert_eq!(e.authority(), "[::1]:9191");
    }

    #[test]
    fn url_gives_default_port_and_tls() {
        let e = Endpoint::from_url(&Url::parse("https://auth.mcp.svc/").unwrap()).unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.tls),
            ("auth.mcp.svc", 443, true)
        );
        assert!(Endpoint::from_url(&Url::parse("ftp://x/").unwrap()).is_none());
    }
}

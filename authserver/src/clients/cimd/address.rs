//! Which addresses a metadata document may be fetched from: globally routable unicast only.
//!
//! Two rules matter:
//! - The check runs on the addresses actually connected to. [`PublicOnlyResolver`] is the
//!   HTTP client's DNS resolver, so the addresses it returns are the only ones the client
//!   dials (a second, rebinding answer is never asked for); IP literals in the URL, which skip
//!   the resolver, are checked by `check_url` with the same function.
//! - IPv6 is an allow-list: only global unicast `2000::/3`, minus the ranges below. Prefixes
//!   that embed an IPv4 address and reach it through a translator or relay we do not control
//!   (NAT64, Teredo, 6to4) or that are deprecated (IPv4-compatible `::a.b.c.d`) are refused
//!   whole, whatever address they embed: what they finally reach is decided elsewhere. Only
//!   IPv4-mapped `::ffff:a.b.c.d`, which the kernel dials as the IPv4 address itself, is
//!   judged by the address it carries. (A host behind NAT64 only, with no IPv4 route, thus
//!   cannot fetch documents from IPv4-only hosts; that is the price of not trusting the
//!   translator.)

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::{Ipv4Net, Ipv6Net};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::CimdError;

/// IPv4 ranges that are not publicly routable (IANA special-purpose registry, RFC 6890).
const NON_PUBLIC_V4: &[(Ipv4Net, &str)] = &[
    (v4(0, 0, 0, 0, 8), "\"this network\" 0.0.0.0/8"),
    (v4(10, 0, 0, 0, 8), "private 10.0.0.0/8"),
    (v4(100, 64, 0, 0, 10), "CGNAT 100.64.0.0/10"),
    (v4(127, 0, 0, 0, 8), "loopback 127.0.0.0/8"),
    (v4(169, 254, 0, 0, 16), "link-local 169.254.0.0/16"),
    (v4(172, 16, 0, 0, 12), "private 172.16.0.0/12"),
    (
        v4(192, 0, 0, 0, 24),
        "IETF protocol assignments 192.0.0.0/24",
    ),
    (v4(192, 0, 2, 0, 24), "documentation 192.0.2.0/24"),
    (v4(192, 88, 99, 0, 24), "6to4 relay anycast 192.88.99.0/24"),
    (v4(192, 168, 0, 0, 16), "private 192.168.0.0/16"),
    (v4(198, 18, 0, 0, 15), "benchmarking 198.18.0.0/15"),
    (v4(198, 51, 100, 0, 24), "documentation 198.51.100.0/24"),
    (v4(203, 0, 113, 0, 24), "documentation 203.0.113.0/24"),
    (v4(224, 0, 0, 0, 4), "multicast 224.0.0.0/4"),
    // Includes the limited broadcast address 255.255.255.255.
    (v4(240, 0, 0, 0, 4), "reserved 240.0.0.0/4"),
];

/// IPv6 ranges that are not publicly routable. Those outside `2000::/3` would be refused by
/// the allow-list anyway; they are named here so a log says which range a name resolved to.
const NON_PUBLIC_V6: &[(Ipv6Net, &str)] = &[
    (v6(0, 0, 0, 128), "unspecified ::"),
    (
        Ipv6Net::new_assert(Ipv6Addr::LOCALHOST, 128),
        "loopback ::1",
    ),
    (v6(0, 0, 0, 96), "IPv4-compatible ::/96"),
    (v6(0x64, 0xff9b, 0, 96), "NAT64 64:ff9b::/96"),
    (v6(0x64, 0xff9b, 1, 48), "local-use NAT64 64:ff9b:1::/48"),
    (v6(0x100, 0, 0, 64), "discard-only 100::/64"),
    // Teredo 2001::/32 and benchmarking 2001:2::/48 are the best known parts.
    (
        v6(0x2001, 0, 0, 23),
        "IETF protocol assignments (Teredo) 2001::/23",
    ),
    (v6(0x2001, 0xdb8, 0, 32), "documentation 2001:db8::/32"),
    (v6(0x2002, 0, 0, 16), "6to4 2002::/16"),
    (v6(0x3fff, 0, 0, 20), "documentation 3fff::/20"),
    (v6(0x5f00, 0, 0, 16), "segment routing 5f00::/16"),
    (v6(0xfc00, 0, 0, 7), "unique local fc00::/7"),
    (v6(0xfe80, 0, 0, 10), "link-local fe80::/10"),
    (v6(0xfec0, 0, 0, 10), "site-local fec0::/10"),
    (v6(0xff00, 0, 0, 8), "multicast ff00::/8"),
];

/// Global unicast: every public IPv6 address is in it.
const GLOBAL_UNICAST: Ipv6Net = v6(0x2000, 0, 0, 3);

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len)
}

const fn v6(a: u16, b: u16, c: u16, len: u8) -> Ipv6Net {
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, 0, 0, 0, 0, 0), len)
}

/// Why `ip` is not a public address (the range it falls in), or `None` when it is one.
pub fn non_public_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return non_public_v4(v4);
            }
            NON_PUBLIC_V6
                .iter()
                .find(|(net, _)| net.contains(&v6))
                .map(|(_, name)| *name)
                .or_else(|| {
                    (!GLOBAL_UNICAST.contains(&v6))
                        .then_some("not global unicast (outside 2000::/3)")
                })
        }
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    NON_PUBLIC_V4
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, name)| *name)
}

/// True for a globally routable unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    non_public_range(ip).is_none()
}

/// Whether a document may be fetched from `ip`; `allow_loopback` (tests only) admits loopback.
pub(super) fn allowed(ip: IpAddr, allow_loopback: bool) -> bool {
    is_public(ip) || (allow_loopback && ip.is_loopback())
}

/// A DNS resolver that returns public addresses only (and fails when there are none).
#[derive(Debug, Clone, Copy)]
pub struct PublicOnlyResolver {
    pub(super) allow_loopback: bool,
}

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            let mut addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            addrs.retain(|a| {
                let keep = allowed(a.ip(), allow_loopback);
                if !keep {
                    tracing::debug!(
                        host = name.as_str(),
                        address = %a.ip(),
                        range = non_public_range(a.ip()).unwrap_or("loopback"),
                        "metadata document host resolved to a non-public address; dropped"
                    );
                }
                keep
            });
            if addrs.is_empty() {
                return Err(Box::new(CimdError::NonPublicAddress)
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests;

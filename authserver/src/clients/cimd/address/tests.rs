use super::*;

/// Every special-purpose range, probed at its first, a middle and its last address where
/// that matters, with the range the classification must name.
#[test]
fn non_public_addresses_are_named_by_their_range() {
    let table: &[(&str, &str)] = &[
        ("0.0.0.0", "this network"),
        ("0.255.255.255", "this network"),
        ("10.0.0.1", "private 10."),
        ("10.255.255.255", "private 10."),
        ("100.64.0.1", "CGNAT"),
        ("100.127.255.255", "CGNAT"),
        ("127.0.0.1", "loopback 127."),
        ("127.255.255.254", "loopback 127."),
        ("169.254.169.254", "link-local 169.254"),
        ("172.16.0.1", "private 172.16"),
        ("172.31.255.255", "private 172.16"),
        ("192.0.0.9", "IETF protocol assignments 192.0.0.0"),
        ("192.0.2.1", "documentation 192.0.2"),
        ("192.88.99.1", "6to4 relay"),
        ("192.168.1.1", "private 192.168"),
        ("198.18.0.1", "benchmarking"),
        ("198.19.255.255", "benchmarking"),
        ("198.51.100.7", "documentation 198.51.100"),
        ("203.0.113.7", "documentation 203.0.113"),
        ("224.0.0.1", "multicast 224"),
        ("239.255.255.250", "multicast 224"),
        ("240.0.0.1", "reserved 240"),
        ("255.255.255.255", "reserved 240"),
        ("::", "unspecified"),
        ("::1", "loopback ::1"),
        // IPv4-compatible: refused whatever address it embeds.
        ("::127.0.0.1", "IPv4-compatible"),
        ("::10.0.0.1", "IPv4-compatible"),
        ("::8.8.8.8", "IPv4-compatible"),
        ("::ffff:ffff", "IPv4-compatible"),
        // IPv4-mapped: judged by the address it carries.
        ("::ffff:127.0.0.1", "loopback 127."),
        ("::ffff:10.0.0.1", "private 10."),
        ("::ffff:169.254.169.254", "link-local 169.254"),
        ("::ffff:100.64.0.1", "CGNAT"),
        // SIIT IPv4-translated ::ffff:0:0:0/96 is outside 2000::/3.
        ("::ffff:0:a00:1", "not global unicast"),
        ("64:ff9b::a00:1", "NAT64 64:ff9b::/96"),
        ("64:ff9b::808:808", "NAT64 64:ff9b::/96"),
        ("64:ff9b::7f00:1", "NAT64 64:ff9b::/96"),
        ("64:ff9b:1::1", "local-use NAT64"),
        ("64:ff9b:1:ffff:ffff:ffff:ffff:ffff", "local-use NAT64"),
        ("100::1", "discard-only"),
        ("2001::1", "Teredo"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
        ("2001:2::1", "Teredo"),
        ("2001:1ff:ffff::1", "Teredo"),
        ("2001:db8::1", "documentation 2001:db8"),
        ("2002::1", "6to4 2002"),
        ("2002:7f00:1::1", "6to4 2002"),
        ("2002:c0a8:101::1", "6to4 2002"),
        ("3fff::1", "documentation 3fff"),
        ("5f00::1", "segment routing"),
        ("fc00::1", "unique local"),
        ("fd12:3456::1", "unique local"),
        ("fe80::1", "link-local fe80"),
        ("febf::1", "link-local fe80"),
        ("fec0::1", "site-local"),
        ("feff::1", "site-local"),
        ("ff02::1", "multicast ff00"),
        ("ff0e::1", "multicast ff00"),
        ("4000::1", "not global unicast"),
        ("1fff:ffff::1", "not global unicast"),
        ("e000::1", "not global unicast"),
    ];
    for (address, range) in table {
        let ip: IpAddr = address.parse().unwrap();
        let named = non_public_range(ip);
        assert!(
            named.is_some_and(|n| n.contains(range)),
            "{address}: expected {range:?}, got {named:?}"
        );
        assert!(!is_public(ip), "{address}");
        assert!(!allowed(ip, false), "{address}");
    }
}

#[test]
fn public_addresses_are_public() {
    for address in [
        "1.1.1.1",
        "8.8.8.8",
        "9.255.255.255",
        "11.0.0.0",
        "100.63.255.255",
        "100.128.0.0",
        "140.82.112.3",
        "172.15.255.255",
        "172.32.0.0",
        "192.0.1.1",
        "192.88.98.1",
        "192.167.255.255",
        "192.169.0.0",
        "198.17.255.255",
        "198.20.0.0",
        "223.255.255.255",
        "::ffff:8.8.8.8",
        "2001:200::1",
        "2001:4860:4860::8888",
        "2003::1",
        "2606:4700:4700::1111",
        "2a00:1450:4001::1",
        "2c0f:fb50::1",
    ] {
        let ip: IpAddr = address.parse().unwrap();
        assert_eq!(non_public_range(ip), None, "{address}");
        assert!(allowed(ip, false), "{address}");
    }
}

#[test]
fn the_test_switch_admits_loopback_only() {
    for loopback in ["127.0.0.1", "127.1.2.3", "::1"] {
        let ip: IpAddr = loopback.parse().unwrap();
        assert!(!allowed(ip, false), "{loopback}");
        assert!(allowed(ip, true), "{loopback}");
    }
    for other in [
        "10.0.0.1",
        "169.254.169.254",
        "::ffff:127.0.0.1",
        "::127.0.0.1",
    ] {
        assert!(!allowed(other.parse().unwrap(), true), "{other}");
    }
}

#[tokio::test]
async fn the_resolver_drops_non_public_answers() {
    let resolver = PublicOnlyResolver {
        allow_loopback: false,
    };
    // `localhost` resolves to loopback only: no address is left to connect to.
    let name: Name = "localhost".parse().unwrap();
    assert!(resolver.resolve(name).await.is_err());

    let resolver = PublicOnlyResolver {
        allow_loopback: true,
    };
    let name: Name = "localhost".parse().unwrap();
    let addrs: Vec<SocketAddr> = resolver.resolve(name).await.unwrap().collect();
    assert!(!addrs.is_empty());
    assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
}

use super::*;

#[test]
fn client_id_urls_follow_the_draft() {
    assert!(check_url("https://app.example.com/oauth/client.json", false).is_ok());
    assert!(check_url("https://app.example.com:8443/c?v=1", false).is_ok());
    for bad in [
        "http://app.example.com/client.json",
        "https://app.example.com",
        "https://app.example.com/",
        "https://app.example.com/a/../client.json",
        "https://app.example.com/./client.json",
        "https://app.example.com/c#f",
        "https://u:p@app.example.com/c",
        "https://127.0.0.1/c",
        "https://10.1.2.3/c",
        "https://[::1]/c",
        "https://169.254.169.254/latest/meta-data",
        "https://[::ffff:127.0.0.1]/c",
        "https://APP.example.com/c",
    ] {
        assert!(check_url(bad, false).is_err(), "{bad}");
    }
    assert!(check_url("http://127.0.0.1:9/c.json", true).is_ok());
}

#[test]
fn only_public_addresses_are_public() {
    for private in [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fd00::1",
        "::ffff:10.0.0.1",
        "64:ff9b::a00:1",
    ] {
        assert!(!is_public(private.parse().unwrap()), "{private}");
    }
    for public in ["1.1.1.1", "140.82.112.3", "2606:4700:4700::1111"] {
        assert!(is_public(public.parse().unwrap()), "{public}");
    }
}

#[test]
fn cache_lifetime_follows_cache_control() {
    assert_eq!(cache_ttl(None), DEFAULT_CACHE_TTL);
    assert_eq!(
        cache_ttl(Some("public, max-age=60")),
        Duration::from_secs(60)
    );
    assert_eq!(cache_ttl(Some("no-store")), Duration::ZERO);
    assert_eq!(cache_ttl(Some("max-age=99999999")), MAX_CACHE_TTL);
}

#[test]
fn documents_must_name_themselves() {
    let url = "https://app.example.com/client.json";
    let ok = serde_json::json!({
        "client_id": url,
        "client_name": "App",
        "redirect_uris": ["http://127.0.0.1/cb"]
    });
    let client = parse_document(url, ok.to_string().as_bytes()).unwrap();
    assert_eq!(client.kind, ClientKind::MetadataDocument);
    assert_eq!(client.display_name(), "App");

    let other = serde_json::json!({"client_id": "https://evil.example.com/c", "redirect_uris": ["https://a/cb"]});
    assert!(parse_document(url, other.to_string().as_bytes()).is_err());
    let secret = serde_json::json!({"client_id": url, "redirect_uris": ["https://a/cb"], "client_secret": "x"});
    assert!(parse_document(url, secret.to_string().as_bytes()).is_err());
    assert!(parse_document(url, b"[]").is_err());
    assert!(parse_document(url, b"not json").is_err());
}

#[tokio::test]
async fn private_hosts_are_never_fetched() {
    let resolver = CimdResolver::new().unwrap();
    // `localhost` resolves to loopback only: refused by the resolver before any connection.
    let err = resolver
        .resolve("https://localhost/client.json")
        .await
        .unwrap_err();
    assert!(
        matches!(err, CimdError::Fetch(_) | CimdError::NonPublicAddress),
        "{err}"
    );
}

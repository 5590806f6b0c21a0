use super::*;

const TIMING: KeyTiming = KeyTiming {
    publish_delay: Duration::from_secs(100),
    retention: Duration::from_secs(1000),
};

#[test]
fn first_start_generates_a_persistent_private_key() {
    let dir = tempfile::tempdir().unwrap();
    let keys_dir = dir.path().join("keys");
    let store = KeyStore::open(&keys_dir, SigningAlg::EdDSA, TIMING, 10).unwrap();
    let kid = store.ring().signing_key(10).unwrap().kid.clone();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(keys_dir.join(format!("{kid}.json")))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let mode = std::fs::metadata(&keys_dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
    let again = KeyStore::open(&keys_dir, SigningAlg::EdDSA, TIMING, 20).unwrap();
    assert_eq!(again.ring().signing_key(20).unwrap().kid, kid);
    assert_eq!(again.ring().jwks(20).keys.len(), 1);
}

#[test]
fn rotation_publishes_before_signing_and_retires_after_retention() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path(), SigningAlg::EdDSA, TIMING, 0).unwrap();
    let old = store.ring().signing_key(0).unwrap().kid.clone();

    let rotation = rotate(dir.path(), SigningAlg::ES256, TIMING, 50).unwrap();
    assert_eq!(rotation.activates_at, 150);
    store.reload().unwrap();
    let ring = store.ring();
    // Published at once, signing only after the delay.
    assert_eq!(ring.jwks(50).keys.len(), 2);
    assert_eq!(ring.signing_key(149).unwrap().kid, old);
    assert_eq!(ring.signing_key(150).unwrap().kid, rotation.kid);
    // The old key stays published until retention after the new one activated.
    assert_eq!(ring.jwks(1149).keys.len(), 2);
    assert_eq!(ring.jwks(1150).keys.len(), 1);

    let later = rotate(dir.path(), SigningAlg::EdDSA, TIMING, 1200).unwrap();
    assert_eq!(later.removed, vec![old]);
}

#[test]
fn tokens_verify_with_published_keys_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path(), SigningAlg::EdDSA, TIMING, 0).unwrap();
    let ring = store.ring();
    let token = ring
        .sign_access_token(&serde_json::json!({"sub": "1"}), 0)
        .unwrap();
    let claims: serde_json::Value = ring.verify(&token, 0).unwrap();
    assert_eq!(claims["sub"], "1");

    let jws = jws::parse(&token).unwrap();
    assert_eq!(jws.header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(jws.header.alg, "EdDSA");

    let mut tampered = token.clone();
    tampered.push('A');
    assert!(ring.verify::<serde_json::Value>(&tampered, 0).is_err());

    // Another directory's key is unknown here.
    let other = tempfile::tempdir().unwrap();
    let foreign = KeyStore::open(other.path(), SigningAlg::EdDSA, TIMING, 0)
        .unwrap()
        .ring()
        .sign_access_token(&serde_json::json!({}), 0)
        .unwrap();
    assert_eq!(
        ring.verify::<serde_json::Value>(&foreign, 0).unwrap_err(),
        VerifyError::UnknownKey
    );
}

#[test]
fn changed_algorithm_publishes_a_new_key_first() {
    let dir = tempfile::tempdir().unwrap();
    KeyStore::open(dir.path(), SigningAlg::EdDSA, TIMING, 0).unwrap();
    let store = KeyStore::open(dir.path(), SigningAlg::RS256, TIMING, 10).unwrap();
    let ring = store.ring();
    assert_eq!(ring.signing_key(10).unwrap().alg(), SigningAlg::EdDSA);
    assert_eq!(ring.signing_key(110).unwrap().alg(), SigningAlg::RS256);
    // Reopening does not pile up more keys.
    let store = KeyStore::open(dir.path(), SigningAlg::RS256, TIMING, 20).unwrap();
    assert_eq!(store.ring().jwks(20).keys.len(), 2);
}

#[test]
fn session_key_survives_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let first = session_key(dir.path()).unwrap();
    assert_eq!(first.len(), 32);
    assert_eq!(session_key(dir.path()).unwrap(), first);
}

#[test]
fn a_corrupt_key_file_names_itself() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.json"), "{}").unwrap();
    let err = KeyStore::open(dir.path(), SigningAlg::EdDSA, TIMING, 0).unwrap_err();
    assert!(err.to_string().contains("bad.json"), "{err}");
}

fn pem_of(der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

#[test]
fn a_provided_pem_key_of_each_algorithm_is_recognised() {
    for alg in [SigningAlg::EdDSA, SigningAlg::ES256, SigningAlg::RS256] {
        let (key, der) = SigningKey::generate(alg).unwrap();
        let provided = ProvidedKey::from_pem(&pem_of(&der), "TEST").unwrap();
        assert_eq!(provided.alg, alg);
        assert_eq!(provided.kid().unwrap(), key.thumbprint());
        assert!(!format!("{provided:?}").contains(&pem_of(&der)[30..60]));
    }
}

#[test]
fn a_provided_key_that_is_not_pkcs8_is_refused_naming_the_variable() {
    let not_pem = ProvidedKey::from_pem("ssh-ed25519 AAAA", "MCP_AUTH_SIGNING_KEY").unwrap_err();
    assert!(not_pem.to_string().starts_with("MCP_AUTH_SIGNING_KEY:"));
    let garbage = ProvidedKey::from_pem(&pem_of(b"not a key"), "X").unwrap_err();
    assert!(matches!(garbage, ProvidedKeyError::Unsupported { .. }));
    let env: std::collections::HashMap<String, String> = [
        (provided::SIGNING_KEY_VAR, "a"),
        (provided::SIGNING_KEY_FILE_VAR, "b"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert!(matches!(
        ProvidedKey::from_env(&env),
        Err(ProvidedKeyError::Both)
    ));
    let missing: std::collections::HashMap<String, String> = [(
        provided::SIGNING_KEY_FILE_VAR.to_owned(),
        "/nonexistent/key.pem".to_owned(),
    )]
    .into_iter()
    .collect();
    assert!(matches!(
        ProvidedKey::from_env(&missing),
        Err(ProvidedKeyError::Read { .. })
    ));
}

#[test]
fn a_provided_key_signs_at_once_alone_and_after_the_delay_beside_others() {
    let (_, der) = SigningKey::generate(SigningAlg::ES256).unwrap();
    let provided = ProvidedKey::from_pem(&pem_of(&der), "TEST").unwrap();
    let kid = provided.kid().unwrap();

    // Into an empty directory: it is the signing key at once, and a restart keeps it.
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(
        provided
            .import(empty.path(), 10, TIMING.publish_delay)
            .unwrap(),
        Some(kid.clone())
    );
    assert_eq!(
        provided
            .import(empty.path(), 20, TIMING.publish_delay)
            .unwrap(),
        None
    );
    let store = KeyStore::open(empty.path(), SigningAlg::ES256, TIMING, 20).unwrap();
    assert_eq!(store.ring().signing_key(20).unwrap().kid, kid);
    assert_eq!(store.ring().jwks(20).keys.len(), 1);

    // Beside a generated key: published now, signing only after the publish delay.
    let used = tempfile::tempdir().unwrap();
    let store = KeyStore::open(used.path(), SigningAlg::EdDSA, TIMING, 0).unwrap();
    let old = store.ring().signing_key(0).unwrap().kid.clone();
    provided
        .import(used.path(), 50, TIMING.publish_delay)
        .unwrap();
    store.reload().unwrap();
    let ring = store.ring();
    assert_eq!(ring.signing_key(50).unwrap().kid, old);
    assert!(ring.jwks(50).keys.iter().any(|k| k.kid == kid));
    assert_eq!(ring.signing_key(150).unwrap().kid, kid);
}

#[test]
fn es256_signatures_are_issued_with_low_s() {
    let (key, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
    for i in 0..64u8 {
        let message = [b'm', i];
        let sig = key.sign(&message).unwrap();
        let sig = p256::ecdsa::Signature::from_slice(&sig).unwrap();
        assert!(sig.normalize_s().is_none(), "signature {i} has a high S");
        assert!(key.verify(&message, &sig.to_bytes()));
    }
}

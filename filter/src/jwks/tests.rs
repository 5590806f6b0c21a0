use serde_json::json;

use super::*;
use crate::testing::{self, EC_X, EC_Y, ED_X, RSA_E, RSA_N, TestKey, b64};

/// RFC 7515 Appendix A.2: the RS256 example JWS.
pub(crate) const RFC7515_A2_JWS: &str = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
/// RFC 7515 Appendix A.3: the ES256 example JWS.
pub(crate) const RFC7515_A3_JWS: &str = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
/// The A.3 JWS with its signature in the low-S form (A.3's S is high, which the filter
/// refuses; the authserver issues low S only).
pub(crate) fn rfc7515_a3_low_s() -> String {
    let (input, signature) = RFC7515_A3_JWS.rsplit_once('.').unwrap();
    let signature =
        p256::ecdsa::Signature::from_slice(&URL_SAFE_NO_PAD.decode(signature).unwrap()).unwrap();
    let low = signature.normalize_s().unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(low.to_bytes()))
}
/// RFC 8037 Appendix A.4: the Ed25519 example JWS.
pub(crate) const RFC8037_A4_JWS: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

fn single(jwk: serde_json::Value) -> Result<ParsedJwks, JwksError> {
    KeySet::parse(&serde_json::to_vec(&json!({ "keys": [jwk] })).unwrap())
}

/// Checks a published JWS against a published public JWK at the signature level.
fn check_vector(jwk: serde_json::Value, jws: &str) {
    let keys = single(jwk).unwrap().keys;
    let key = keys.iter().next().unwrap();
    let (signing_input, signature) = jws.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    assert!(key.verify(signing_input.as_bytes(), &signature));

    let mut tampered_input = signing_input.as_bytes().to_vec();
    let last = tampered_input.len() - 1;
    tampered_input[last] ^= 1;
    assert!(!key.verify(&tampered_input, &signature));
    let mut tampered_signature = signature.clone();
    tampered_signature[7] ^= 0x80;
    assert!(!key.verify(signing_input.as_bytes(), &tampered_signature));
    assert!(!key.verify(signing_input.as_bytes(), &signature[1..]));
}

#[test]
fn rfc7515_a2_rs256_vector_verifies() {
    check_vector(
        json!({"kty": "RSA", "n": RSA_N, "e": RSA_E}),
        RFC7515_A2_JWS,
    );
}

#[test]
fn rfc7515_a3_es256_vector_verifies_in_its_low_s_form_only() {
    let jwk = json!({"kty": "EC", "crv": "P-256", "x": EC_X, "y": EC_Y});
    check_vector(jwk.clone(), &rfc7515_a3_low_s());
    let keys = single(jwk).unwrap().keys;
    let (input, signature) = RFC7515_A3_JWS.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    assert!(
        !keys
            .iter()
            .next()
            .unwrap()
            .verify(input.as_bytes(), &signature)
    );
}

#[test]
fn an_es256_signature_with_high_s_is_refused() {
    let key = TestKey::Ec("e");
    let keys = KeySet::parse(&testing::jwks(std::slice::from_ref(&key)))
        .unwrap()
        .keys;
    let jwk = keys.iter().next().unwrap();
    for message in [&b"a.b"[..], b"c.d", b"e.f", b"g.h"] {
        let low = key.sign(message);
        assert!(jwk.verify(message, &low));
        // (r, n - s): the same signature in its malleated form.
        let sig = p256::ecdsa::Signature::from_slice(&low).unwrap();
        let (r, s) = sig.split_scalars();
        let high = p256::ecdsa::Signature::from_scalars(r, -*s).unwrap();
        assert!(high.normalize_s().is_some(), "the twin has a high S");
        assert!(!jwk.verify(message, &high.to_bytes()));
    }
}

#[test]
fn rfc8037_a4_ed25519_vector_verifies() {
    check_vector(
        json!({"kty": "OKP", "crv": "Ed25519", "x": ED_X}),
        RFC8037_A4_JWS,
    );
}

#[test]
fn the_test_signing_keys_match_the_published_public_keys() {
    for key in [TestKey::Rsa("r"), TestKey::Ec("e"), TestKey::Ed("d")] {
        let keys = KeySet::parse(&testing::jwks(std::slice::from_ref(&key)))
            .unwrap()
            .keys;
        let jwk = keys.iter().next().unwrap();
        assert!(jwk.verify(b"input", &key.sign(b"input")), "{}", key.alg());
    }
}

#[test]
fn each_key_type_gets_its_algorithm() {
    let parsed = KeySet::parse(&testing::jwks(&[
        TestKey::Rsa("r"),
        TestKey::Ec("e"),
        TestKey::Ed("d"),
    ]))
    .unwrap();
    assert!(parsed.skipped.is_empty());
    let algs: Vec<_> = parsed
        .keys
        .iter()
        .map(|key| (key.kid().unwrap(), key.algorithm()))
        .collect();
    assert_eq!(
        algs,
        [
            ("r", Algorithm::Rs256),
            ("e", Algorithm::Es256),
            ("d", Algorithm::EdDsa)
        ]
    );
}

#[test]
fn unusable_keys_are_skipped_and_listed() {
    let good = TestKey::Ed("good").public_jwk();
    let with = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut jwk = TestKey::Rsa("bad").public_jwk();
        edit(&mut jwk);
        jwk
    };
    let cases = [
        (
            with(&|k| k["use"] = "enc".into()),
            KeyError::NotForSignatures,
        ),
        (
            with(&|k| k["key_ops"] = json!(["encrypt"])),
            KeyError::NoVerifyOperation,
        ),
        (
            with(&|k| k["alg"] = "PS256".into()),
            KeyError::AlgorithmMismatch("PS256".into()),
        ),
        (with(&|k| k["kty"] = "oct".into()), KeyError::Unsupported),
        (
            with(&|k| k["n"] = "not base64!".into()),
            KeyError::BadMember("n"),
        ),
        (
            with(&|k| k["n"] = b64([0xC3u8; 128]).into()),
            KeyError::RsaTooSmall,
        ),
        (
            json!({"kty": "EC", "crv": "P-384", "x": EC_X, "y": EC_Y, "kid": "bad"}),
            KeyError::Unsupported,
        ),
        (
            json!({"kty": "EC", "crv": "P-256", "x": EC_X, "y": EC_X, "kid": "bad"}),
            KeyError::InvalidKey,
        ),
        (
            json!({"kty": "OKP", "crv": "X25519", "x": ED_X, "kid": "bad"}),
            KeyError::Unsupported,
        ),
        (
            json!({"kty": "OKP", "crv": "Ed25519", "x": b64([0u8; 32]), "kid": "bad"}),
            KeyError::InvalidKey,
        ),
        (json!("a string"), KeyError::NotAnObject),
    ];
    for (bad, expected) in cases {
        let json = serde_json::to_vec(&json!({ "keys": [bad, good] })).unwrap();
        let parsed = KeySet::parse(&json).unwrap();
        assert_eq!(parsed.keys.len(), 1, "{expected}");
        assert_eq!(parsed.keys.iter().next().unwrap().kid(), Some("good"));
        assert_eq!(parsed.skipped.len(), 1);
        assert_eq!(parsed.skipped[0].1, expected);
    }
}

#[test]
fn a_jwks_without_usable_keys_is_refused() {
    assert_eq!(
        KeySet::parse(br#"{"keys": []}"#).unwrap_err(),
        JwksError::NoUsableKeys { skipped: 0 }
    );
    assert_eq!(
        single(json!({"kty": "oct", "k": "c2VjcmV0"})).unwrap_err(),
        JwksError::NoUsableKeys { skipped: 1 }
    );
    assert!(matches!(
        KeySet::parse(b"<html>"),
        Err(JwksError::NotAJwks(_))
    ));
    assert!(matches!(
        KeySet::parse(br#"{"key": []}"#),
        Err(JwksError::NotAJwks(_))
    ));
    assert_eq!(
        KeySet::parse(&vec![b' '; MAX_JWKS_BYTES + 1]).unwrap_err(),
        JwksError::TooLarge
    );
}

#[test]
fn key_set_containment_tracks_rotation() {
    let parse = |keys: &[TestKey]| KeySet::parse(&testing::jwks(keys)).unwrap().keys;
    let old = parse(&[TestKey::Ed("a"), TestKey::Rsa("b")]);
    let added = parse(&[TestKey::Ed("a"), TestKey::Rsa("b"), TestKey::Ec("c")]);
    let removed = parse(&[TestKey::Ed("a")]);
    let same_kid_other_key = parse(&[TestKey::OtherEd("a", 7), TestKey::Rsa("b")]);
    assert!(added.contains_all_of(&old));
    assert!(!removed.contains_all_of(&old));
    assert!(!same_kid_other_key.contains_all_of(&old));
    assert!(old.contains_all_of(&removed));

    assert!(old.same_keys_as(&parse(&[TestKey::Ed("a"), TestKey::Rsa("b")])));
    assert!(!old.same_keys_as(&added));
    assert!(!added.same_keys_as(&old));
    assert!(!old.same_keys_as(&removed));
    assert!(!old.same_keys_as(&same_kid_other_key));
    // Order decides which of two keys with one kid a token is checked against.
    assert!(!old.same_keys_as(&parse(&[TestKey::Rsa("b"), TestKey::Ed("a")])));
}

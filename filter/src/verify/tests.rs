use mcp_auth_proto::claims::Audience;
use serde_json::{Value, json};

use super::*;
use crate::jwks::tests::{RFC7515_A2_JWS, RFC8037_A4_JWS, rfc7515_a3_low_s};
use crate::testing::{
    self, ISSUER, NOW, RESOURCE, RSA_E, RSA_N, TestKey, b64, claims, hmac_sha256, mint, mint_with,
};

const LEEWAY: u64 = 30;

fn expectations() -> Expectations<'static> {
    Expectations {
        issuer: ISSUER,
        clock_leeway_secs: LEEWAY,
    }
}

fn all_keys() -> KeySet {
    KeySet::parse(&testing::jwks(&[
        TestKey::Rsa("rsa-1"),
        TestKey::Ec("ec-1"),
        TestKey::Ed("ed-1"),
    ]))
    .unwrap()
    .keys
}

fn verify(token: &str) -> Result<VerifiedToken, VerifyError> {
    verify_at(token, NOW)
}

fn verify_at(token: &str, now: u64) -> Result<VerifiedToken, VerifyError> {
    verify_access_token(token, &all_keys(), &expectations(), now)
}

fn claims_with(edit: impl FnOnce(&mut Value)) -> Value {
    let mut claims = claims();
    edit(&mut claims);
    claims
}

fn scopes(names: &[&str]) -> Vec<Scope> {
    names.iter().map(|s| Scope::new(*s).unwrap()).collect()
}

#[test]
fn valid_tokens_of_every_algorithm_verify() {
    for key in [
        TestKey::Rsa("rsa-1"),
        TestKey::Ec("ec-1"),
        TestKey::Ed("ed-1"),
    ] {
        let token = verify(&mint(&key, &claims())).unwrap_or_else(|e| panic!("{}: {e}", key.alg()));
        assert_eq!(
            token,
            VerifiedToken {
                subject: "12345".into(),
                login: "octocat".into(),
                client_id: "client-1".into(),
                grant_id: "grant-1".into(),
                token_id: "tok-1".into(),
                scope: "mcp:tools mcp:resources".into(),
                expires_at: NOW + 300,
                issued_at: NOW - 10,
                audience: Audience::One(RESOURCE.into()),
                handoff_claims: format!(
                    "sub=12345;login=octocat;cid=client-1;gid=grant-1;jti=tok-1;\
                     scope=mcp:tools%20mcp:resources;exp={};iat={}",
                    NOW + 300,
                    NOW - 10
                ),
            }
        );
    }
}

#[test]
fn rfc_vectors_pass_the_signature_check_and_then_fail_as_access_tokens() {
    // The published tokens are signed correctly but carry no `typ`: the error proves the
    // signature step passed.
    let keys = KeySet::parse(
        &serde_json::to_vec(&json!({"keys": [
            {"kty": "RSA", "n": RSA_N, "e": RSA_E},
            {"kty": "EC", "crv": "P-256", "x": testing::EC_X, "y": testing::EC_Y},
            {"kty": "OKP", "crv": "Ed25519", "x": testing::ED_X},
        ]}))
        .unwrap(),
    )
    .unwrap()
    .keys;
    for jws in [RFC7515_A2_JWS, &rfc7515_a3_low_s(), RFC8037_A4_JWS] {
        assert_eq!(
            verify_access_token(jws, &keys, &expectations(), NOW),
            Err(VerifyError::WrongType)
        );
        let tampered = jws.replacen("eyJ", "eyK", 2);
        assert!(verify_access_token(&tampered, &keys, &expectations(), NOW).is_err());
        let (input, sig) = jws.rsplit_once('.').unwrap();
        let flipped = format!(
            "{input}.{}{}",
            if sig.starts_with('A') { "B" } else { "A" },
            &sig[1..]
        );
        assert_eq!(
            verify_access_token(&flipped, &keys, &expectations(), NOW),
            Err(VerifyError::BadSignature)
        );
    }
}

#[test]
fn alg_none_is_refused() {
    let header = b64(br#"{"alg":"none","typ":"at+jwt"}"#);
    let body = b64(serde_json::to_vec(&claims()).unwrap());
    assert_eq!(
        verify(&format!("{header}.{body}.")),
        Err(VerifyError::AlgorithmNotAllowed)
    );
    assert_eq!(
        verify(&format!("{header}.{body}.{}", b64(b"x"))),
        Err(VerifyError::AlgorithmNotAllowed)
    );
    let header = b64(br#"{"alg":"NONE","kid":"ed-1","typ":"at+jwt"}"#);
    assert_eq!(
        verify(&format!("{header}.{body}.{}", b64(b"x"))),
        Err(VerifyError::AlgorithmNotAllowed)
    );
}

#[test]
fn hs256_with_the_public_key_as_secret_is_refused() {
    for (kid, secret) in [
        (
            "rsa-1",
            serde_json::to_vec(&TestKey::Rsa("rsa-1").public_jwk()).unwrap(),
        ),
        ("ed-1", URL_SAFE_NO_PAD.decode(testing::ED_X).unwrap()),
    ] {
        let input = format!(
            "{}.{}",
            b64(serde_json::to_vec(&json!({"alg": "HS256", "kid": kid, "typ": "at+jwt"})).unwrap()),
            b64(serde_json::to_vec(&claims()).unwrap())
        );
        let token = format!("{input}.{}", b64(hmac_sha256(&secret, input.as_bytes())));
        assert_eq!(verify(&token), Err(VerifyError::AlgorithmNotAllowed));
    }
}

#[test]
fn alg_that_does_not_fit_the_named_key_is_refused() {
    // An Ed25519 signature presented as RS256 under the RSA key's kid, and the other way round.
    let ed = TestKey::Ed("ed-1");
    let header = json!({"alg": "RS256", "kid": "ed-1", "typ": "at+jwt"});
    assert_eq!(
        verify(&mint_with(&ed, &header, &claims())),
        Err(VerifyError::AlgorithmKeyMismatch(Algorithm::Rs256))
    );
    let header = json!({"alg": "EdDSA", "kid": "rsa-1", "typ": "at+jwt"});
    assert_eq!(
        verify(&mint_with(&ed, &header, &claims())),
        Err(VerifyError::AlgorithmKeyMismatch(Algorithm::EdDsa))
    );
    let header = json!({"alg": "ES256", "kid": "rsa-1", "typ": "at+jwt"});
    assert_eq!(
        verify(&mint_with(&TestKey::Ec("ec-1"), &header, &claims())),
        Err(VerifyError::AlgorithmKeyMismatch(Algorithm::Es256))
    );
}

#[test]
fn unknown_kid_is_refused_and_asks_for_a_key_refresh() {
    let err = verify(&mint(&TestKey::OtherEd("ed-2", 9), &claims())).unwrap_err();
    assert_eq!(
        err,
        VerifyError::UnknownKey {
            kid: Some("ed-2".into()),
            alg: Algorithm::EdDsa
        }
    );
    assert!(err.wants_key_refresh());
    assert!(!VerifyError::BadSignature.wants_key_refresh());
    // A refresh may bring the key: never remembered as a failure.
    assert!(!err.is_fixed_for_key_set());
}

#[test]
fn a_known_kid_with_a_foreign_signature_is_a_bad_signature() {
    let header = json!({"alg": "EdDSA", "kid": "ed-1", "typ": "at+jwt"});
    assert_eq!(
        verify(&mint_with(&TestKey::OtherEd("ed-1", 9), &header, &claims())),
        Err(VerifyError::BadSignature)
    );
    assert!(VerifyError::BadSignature.is_fixed_for_key_set());
}

#[test]
fn without_kid_only_a_single_key_of_the_algorithm_is_tried() {
    let header = json!({"alg": "EdDSA", "typ": "at+jwt"});
    let token = mint_with(&TestKey::Ed("ed-1"), &header, &claims());
    assert!(verify(&token).is_ok());

    let two_ed = KeySet::parse(&testing::jwks(&[
        TestKey::Ed("ed-1"),
        TestKey::OtherEd("ed-2", 3),
    ]))
    .unwrap()
    .keys;
    assert_eq!(
        verify_access_token(&token, &two_ed, &expectations(), NOW),
        Err(VerifyError::AmbiguousKey)
    );
    let only_rsa = KeySet::parse(&testing::jwks(&[TestKey::Rsa("rsa-1")]))
        .unwrap()
        .keys;
    assert_eq!(
        verify_access_token(&token, &only_rsa, &expectations(), NOW),
        Err(VerifyError::UnknownKey {
            kid: None,
            alg: Algorithm::EdDsa
        })
    );
}

#[test]
fn typ_must_be_at_jwt() {
    let key = TestKey::Ed("ed-1");
    for typ in [
        "at+jwt",
        "AT+JWT",
        "application/at+jwt",
        "Application/AT+jwt",
    ] {
        let header = json!({"alg": "EdDSA", "kid": "ed-1", "typ": typ});
        assert!(
            verify(&mint_with(&key, &header, &claims())).is_ok(),
            "{typ}"
        );
    }
    for header in [
        json!({"alg": "EdDSA", "kid": "ed-1", "typ": "JWT"}),
        json!({"alg": "EdDSA", "kid": "ed-1", "typ": "application/jwt"}),
        json!({"alg": "EdDSA", "kid": "ed-1", "typ": "application/"}),
        json!({"alg": "EdDSA", "kid": "ed-1"}),
    ] {
        assert_eq!(
            verify(&mint_with(&key, &header, &claims())),
            Err(VerifyError::WrongType),
            "{header}"
        );
    }
}

#[test]
fn critical_header_parameters_are_refused() {
    let header = json!({"alg": "EdDSA", "kid": "ed-1", "typ": "at+jwt", "crit": ["exp"], "exp": 1});
    assert_eq!(
        verify(&mint_with(&TestKey::Ed("ed-1"), &header, &claims())),
        Err(VerifyError::UnsupportedCritical)
    );
}

#[test]
fn wrong_issuer_is_refused() {
    for iss in [
        "https://evil.example.com",
        "https://auth.example.com/",
        "https://github.com",
    ] {
        let token = mint(
            &TestKey::Ed("ed-1"),
            &claims_with(|c| c["iss"] = iss.into()),
        );
        assert_eq!(verify(&token), Err(VerifyError::WrongIssuer), "{iss}");
    }
}

#[test]
fn expiry_honours_the_leeway() {
    let exp = NOW + 300;
    let token = mint(&TestKey::Ed("ed-1"), &claims());
    assert!(verify_at(&token, exp - 1).is_ok());
    assert!(verify_at(&token, exp).is_ok(), "within leeway");
    assert!(verify_at(&token, exp + LEEWAY - 1).is_ok(), "within leeway");
    assert_eq!(verify_at(&token, exp + LEEWAY), Err(VerifyError::Expired));
    assert_eq!(verify_at(&token, exp + 3600), Err(VerifyError::Expired));
    // Depends on the clock: never remembered as a failure.
    assert!(!VerifyError::Expired.is_fixed_for_key_set());
}

#[test]
fn not_before_honours_the_leeway() {
    let token = mint(
        &TestKey::Ed("ed-1"),
        &claims_with(|c| c["nbf"] = (NOW + 100).into()),
    );
    assert_eq!(verify(&token), Err(VerifyError::NotYetValid));
    assert!(verify_at(&token, NOW + 100 - LEEWAY).is_ok());
    assert_eq!(
        verify_at(&token, NOW + 100 - LEEWAY - 1),
        Err(VerifyError::NotYetValid)
    );
    assert!(!VerifyError::NotYetValid.is_fixed_for_key_set());
}

#[test]
fn claims_must_be_an_access_token() {
    let key = TestKey::Ed("ed-1");
    for edit in [
        Box::new(|c: &mut Value| {
            c.as_object_mut().unwrap().remove("exp");
        }) as Box<dyn Fn(&mut Value)>,
        Box::new(|c: &mut Value| {
            c.as_object_mut().unwrap().remove("client_id");
        }),
        Box::new(|c: &mut Value| c["exp"] = "tomorrow".into()),
        Box::new(|c: &mut Value| c["aud"] = 7.into()),
    ] {
        assert!(matches!(
            verify(&mint(&key, &claims_with(edit))),
            Err(VerifyError::InvalidClaims(_))
        ));
    }
    assert!(matches!(
        verify(&mint(&key, &claims_with(|c| c["sub"] = "".into()))),
        Err(VerifyError::InvalidClaims(_))
    ));
    assert_eq!(
        verify(&mint(
            &key,
            &claims_with(|c| c["preferred_username"] = "a\r\nx-mcp-auth-sub: 1".into())
        )),
        Err(VerifyError::UnsafeClaim("preferred_username"))
    );
    let duplicate = format!(
        "{}.{}",
        b64(serde_json::to_vec(&key.header()).unwrap()),
        b64(br#"{"iss":"a","iss":"b"}"#)
    );
    let token = format!("{duplicate}.{}", b64(key.sign(duplicate.as_bytes())));
    assert!(matches!(verify(&token), Err(VerifyError::InvalidClaims(_))));
}

#[test]
fn malformed_tokens_are_refused() {
    let good = mint(&TestKey::Ed("ed-1"), &claims());
    let parts: Vec<&str> = good.split('.').collect();
    let cases = [
        String::new(),
        "abc".into(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{good}.extra"),
        format!("{good}.a.b"),
        format!("{}==.{}.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}+", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}", b64(b"not json"), parts[1], parts[2]),
        format!("{}.{}.{}", b64(b"{\"kid\":\"ed-1\"}"), parts[1], parts[2]),
        format!(".{}.{}", parts[1], parts[2]),
        "a".repeat(MAX_TOKEN_BYTES + 1),
    ];
    for token in &cases {
        assert!(
            matches!(verify(token), Err(VerifyError::Malformed(_))),
            "{token:.80}: {:?}",
            verify(token)
        );
    }
}

#[test]
fn the_route_needs_its_audience() {
    let verified = verify(&mint(&TestKey::Ed("ed-1"), &claims())).unwrap();
    assert_eq!(authorize_for_route(&verified, RESOURCE, &[]), Ok(()));
    assert_eq!(
        authorize_for_route(&verified, "https://mcp.example.com/other/mcp", &[]),
        Err(RouteError::WrongAudience)
    );
    assert_eq!(
        authorize_for_route(&verified, "https://mcp.example.com/everything/mcp/", &[]),
        Err(RouteError::WrongAudience)
    );
    let many = verify(&mint(
        &TestKey::Ed("ed-1"),
        &claims_with(|c| c["aud"] = json!(["https://x/mcp", RESOURCE])),
    ))
    .unwrap();
    assert_eq!(authorize_for_route(&many, RESOURCE, &[]), Ok(()));
}

#[test]
fn missing_scopes_are_listed_and_broader_scopes_satisfy() {
    let token = |scope: &str| {
        verify(&mint(
            &TestKey::Ed("ed-1"),
            &claims_with(|c| c["scope"] = scope.into()),
        ))
        .unwrap()
    };
    let required = scopes(&["mcp:tools", "mcp:resources"]);
    assert_eq!(
        authorize_for_route(&token("mcp:tools"), RESOURCE, &required),
        Err(RouteError::InsufficientScope(vec!["mcp:resources".into()]))
    );
    assert_eq!(
        authorize_for_route(&token(""), RESOURCE, &required),
        Err(RouteError::InsufficientScope(vec![
            "mcp:tools".into(),
            "mcp:resources".into()
        ]))
    );
    assert_eq!(
        authorize_for_route(&token("mcp"), RESOURCE, &required),
        Ok(())
    );
    assert_eq!(
        authorize_for_route(&token("mcp:resources  mcp:tools"), RESOURCE, &required),
        Ok(())
    );
    assert_eq!(
        authorize_for_route(&token("mcp:tools:call mcp:resources"), RESOURCE, &required),
        Err(RouteError::InsufficientScope(vec!["mcp:tools".into()]))
    );
}

#[test]
fn descriptions_hold_no_quote_or_backslash() {
    for err in [
        VerifyError::Malformed("x"),
        VerifyError::AlgorithmNotAllowed,
        VerifyError::AmbiguousKey,
        VerifyError::BadSignature,
        VerifyError::WrongType,
        VerifyError::WrongIssuer,
        VerifyError::Expired,
        VerifyError::NotYetValid,
    ] {
        assert!(!err.description().contains(['"', '\\']));
    }
}

//! Remembered verification failures: a repeated forged token is refused without a second
//! signature check, for a while and only while the keys stay the same.
//!
//! A remembered refusal is told apart from a fresh verification by swapping the worker's
//! keys behind its back (no `install_keys`, so nothing is forgotten) for keys under which the
//! token verifies: a verification would then admit it.

use super::*;
use crate::worker::FAILURE_MEMORY_SECS;

const FORGER: TestKey = TestKey::OtherEd("ed-1", 5);

/// Signed with another key under the worker's `kid`: a bad signature.
fn forged_token() -> String {
    mint(&FORGER, &claims())
}

/// The threat itself: a good token's header and payload with the `i`th random-looking
/// signature (64 bytes, the size of an Ed25519 one).
fn random_signature_token(i: u32) -> String {
    let good = valid_token();
    let signing_input = &good[..good.rfind('.').unwrap()];
    let signature: Vec<u8> = (0..64u32)
        .map(|n| (i.wrapping_mul(2_654_435_761) ^ n.wrapping_mul(40_503)).to_le_bytes()[1])
        .collect();
    format!("{signing_input}.{}", testing::b64(signature))
}

fn key_set(keys: &[TestKey]) -> KeySet {
    KeySet::parse(&testing::jwks(keys)).unwrap().keys
}

/// Replaces the keys without telling the failure cache, as no real key change would.
fn swap_keys_silently(worker: &Worker, keys: &[TestKey]) {
    *worker.keys.borrow_mut() = Some(Rc::new(key_set(keys)));
}

fn is_invalid_token(result: Result<Admitted, Refused>) -> bool {
    result.is_err_and(|refused| {
        refused.denial.status == 401
            && refused
                .denial
                .www_authenticate
                .is_some_and(|value| value.starts_with(r#"Bearer error="invalid_token""#))
    })
}

#[test]
fn a_forged_token_is_verified_once_then_refused_from_memory() {
    let worker = worker();
    let token = forged_token();
    let first = Req::bearer(&token).decide(&worker, NOW).unwrap_err();
    assert!(first.reason.contains("bad signature"), "{}", first.reason);
    assert_eq!(worker.remembered_failures(), 1);

    swap_keys_silently(&worker, &[FORGER]);
    let again = Req::bearer(&token).decide(&worker, NOW + 1).unwrap_err();
    assert!(again.reason.contains("(remembered)"), "{}", again.reason);
    // The same answer as the first time: status, challenge and body.
    assert_eq!(again.denial.status, first.denial.status);
    assert_eq!(again.denial.www_authenticate, first.denial.www_authenticate);
    assert_eq!(again.denial.body, first.denial.body);
    assert!(!again.reason.contains(&token));
}

#[test]
fn a_remembered_failure_ends_after_its_time() {
    let worker = worker();
    let token = forged_token();
    assert!(is_invalid_token(Req::bearer(&token).decide(&worker, NOW)));
    swap_keys_silently(&worker, &[FORGER]);
    let last = NOW + FAILURE_MEMORY_SECS - 1;
    assert!(is_invalid_token(Req::bearer(&token).decide(&worker, last)));
    // Verified again, and under the swapped keys the token is good.
    assert_eq!(
        status(Req::bearer(&token).decide(&worker, NOW + FAILURE_MEMORY_SECS)),
        200
    );
}

#[test]
fn a_flood_of_distinct_forgeries_keeps_the_memory_at_its_bound() {
    let capacity = 8;
    let worker = Worker::new(config(), capacity, super::handoff_key());
    worker.install_keys(key_set(&[TestKey::Ed("ed-1")]));
    for i in 0..(3 * capacity as u32) {
        let token = random_signature_token(i);
        assert!(is_invalid_token(Req::bearer(&token).decide(&worker, NOW)));
        assert!(worker.remembered_failures() <= capacity);
    }
    assert_eq!(worker.remembered_failures(), capacity);
    // The newest are remembered, the oldest went.
    swap_keys_silently(&worker, &[TestKey::Ed("ed-1")]);
    let newest = random_signature_token(3 * capacity as u32 - 1);
    let remembered = Req::bearer(&newest).decide(&worker, NOW).unwrap_err();
    assert!(remembered.reason.contains("(remembered)"));
    let oldest = Req::bearer(&random_signature_token(0))
        .decide(&worker, NOW)
        .unwrap_err();
    assert!(!oldest.reason.contains("(remembered)"));
    // Garbage counts against the same bound.
    for i in 0..1_000 {
        let garbage = format!("not-a-jwt-{i}");
        assert!(is_invalid_token(Req::bearer(&garbage).decide(&worker, NOW)));
    }
    assert_eq!(worker.remembered_failures(), capacity);
}

#[test]
fn a_changed_key_set_forgets_the_failures() {
    let worker = worker();
    let token = forged_token();
    assert!(is_invalid_token(Req::bearer(&token).decide(&worker, NOW)));

    // The same keys fetched again: remembered still.
    let change = worker.install_keys(key_set(&[TestKey::Ed("ed-1"), TestKey::Rsa("rsa-1")]));
    assert!(!change.failures_forgotten);
    assert_eq!(worker.remembered_failures(), 1);

    // The kid now names the key that signed the token (a rotation that reuses a kid).
    let change = worker.install_keys(key_set(&[FORGER, TestKey::Rsa("rsa-1")]));
    assert!(change.failures_forgotten);
    assert_eq!(worker.remembered_failures(), 0);
    assert_eq!(status(Req::bearer(&token).decide(&worker, NOW)), 200);
}

#[test]
fn an_added_key_forgets_the_failures_too() {
    let worker = worker();
    // No kid: with one EdDSA key it is checked against ed-1 and fails.
    let header = json!({"alg": "EdDSA", "typ": "at+jwt"});
    let token = testing::mint_with(&TestKey::OtherEd("ed-2", 5), &header, &claims());
    assert!(is_invalid_token(Req::bearer(&token).decide(&worker, NOW)));
    assert_eq!(worker.remembered_failures(), 1);
    let change = worker.install_keys(key_set(&[
        TestKey::Ed("ed-1"),
        TestKey::Rsa("rsa-1"),
        TestKey::Ec("ec-1"),
    ]));
    assert!(change.failures_forgotten);
    assert!(!change.cache_cleared);
    assert_eq!(worker.remembered_failures(), 0);
}

#[test]
fn unknown_kids_and_clock_failures_are_not_remembered() {
    let worker = worker();
    let unknown = mint(&TestKey::OtherEd("ed-2", 5), &claims());
    for _ in 0..2 {
        assert!(is_invalid_token(Req::bearer(&unknown).decide(&worker, NOW)));
        // Each time: the refresh that may bring the key is asked for.
        assert!(worker.take_key_refresh_request());
    }
    let mut early = claims();
    early["nbf"] = (NOW + 100).into();
    let early = mint(&TestKey::Ed("ed-1"), &early);
    assert!(is_invalid_token(Req::bearer(&early).decide(&worker, NOW)));
    let valid = valid_token();
    let expired_at = NOW + 300 + 30;
    assert!(is_invalid_token(
        Req::bearer(&valid).decide(&worker, expired_at)
    ));
    assert_eq!(worker.remembered_failures(), 0);
    // Not yet valid at NOW, valid once its time has come.
    assert_eq!(status(Req::bearer(&early).decide(&worker, NOW + 100)), 200);
}

#[test]
fn a_good_token_is_unaffected_by_remembered_forgeries() {
    let worker = worker();
    let good = valid_token();
    for i in 0..20 {
        let _ = Req::bearer(&random_signature_token(i)).decide(&worker, NOW);
    }
    // The forgery of the good token's own claims is remembered, the good token is not.
    assert!(is_invalid_token(
        Req::bearer(&forged_token()).decide(&worker, NOW)
    ));
    assert_eq!(status(Req::bearer(&good).decide(&worker, NOW)), 200);
    assert_eq!(status(Req::bearer(&good).decide(&worker, NOW + 1)), 200);
    assert_eq!(worker.cached_tokens(), 1);
}

//! What the hand-off MAC costs: the keyed BLAKE3 the filter appends to every hand-off and
//! ext_authz checks (`mcp_auth_proto::handoff`), timed natively on the servers' CPU over a
//! hand-off of the size a real token gives. Per request in per-request mode (one sign in
//! the filter, one verify in ext_authz's Check); in fast mode once each per Decide, that is
//! per cache miss.

use std::hint::black_box;
use std::time::Instant;

use anyhow::Result;
use mcp_auth_proto::handoff::{HANDOFF_KEY_ENV, Handoff, HandoffKey, HandoffKeys};

use super::report::median;

/// Timings of one measurement.
#[derive(Debug, Clone, Copy)]
pub struct MacCost {
    /// Length of the signed hand-off value, MAC included.
    pub bytes: usize,
    pub sign_ns: f64,
    pub verify_ns: f64,
}

const ITERATIONS: u32 = 100_000;
const BATCHES: usize = 7;

/// Median over [`BATCHES`] of the mean time of a sign and of a verify.
pub fn measure() -> Result<MacCost> {
    let key = HandoffKey::from_secret(HANDOFF_KEY_ENV, &"k".repeat(64))?;
    let keys = HandoffKeys {
        current: key.clone(),
        previous: None,
    };
    // The sizes of a real token's claims: a GitHub user id, a login, 22-character client,
    // grant and token ids, two scopes.
    let unsigned = Handoff {
        service: "everything".into(),
        subject: "github:58323100".into(),
        login: "octocat-dev".into(),
        client_id: "88wbTmANUWVc-UJykpHv4A".into(),
        grant_id: "g8Kx0LxQy1n2mT5uWcVb9A".into(),
        token_id: "t3JpZ8QfLx0aYbVn6mWcQA".into(),
        scope: "mcp mcp:write".into(),
        expires_at: 1_796_000_000,
        issued_at: 1_795_996_400,
    }
    .encode();
    let signed = key.sign(&unsigned);
    keys.verify(&signed)?;
    let mut sign = Vec::with_capacity(BATCHES);
    let mut verify = Vec::with_capacity(BATCHES);
    for _ in 0..BATCHES {
        let started = Instant::now();
        for _ in 0..ITERATIONS {
            black_box(key.sign(black_box(&unsigned)));
        }
        sign.push(started.elapsed().as_nanos() as f64 / f64::from(ITERATIONS));
        let started = Instant::now();
        for _ in 0..ITERATIONS {
            let _ = black_box(keys.verify(black_box(&signed)));
        }
        verify.push(started.elapsed().as_nanos() as f64 / f64::from(ITERATIONS));
    }
    Ok(MacCost {
        bytes: signed.len(),
        sign_ns: median(&mut sign),
        verify_ns: median(&mut verify),
    })
}

//! Router tests: every endpoint driven with `oneshot` against a real Redis per test.

// Test support code outside `#[test]` functions: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// The fake GitHub of the end-to-end harness, shared so both suites test against one fake.
#[path = "../../../tests/src/fake_github.rs"]
mod fake_github;
mod support;

mod admin;
mod authorize;
mod cimd;
mod github;
mod limits;
mod metadata;
mod register;
mod revoke;
mod serve;
mod token;

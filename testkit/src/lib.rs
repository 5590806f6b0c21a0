//! Test support shared by every suite of the workspace (the authserver's API tests,
//! ext_authz's, the end-to-end harness and the bench): one way to run a real Redis, and
//! one way to make test certificates.

// Test support: a failure here is a failed test, said as plainly as a panic can.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod redis_server;

pub use redis_server::{RedisServer, RedisTls, issue_certificate, test_ca};

//! The end-to-end suite: one test binary, one module per area.

#[path = "e2e/foundation.rs"]
mod foundation;

#[path = "e2e/authserver.rs"]
mod authserver;

#[path = "e2e/ext_authz.rs"]
mod ext_authz;

#[path = "e2e/filter.rs"]
mod filter;

#[path = "e2e/edge.rs"]
mod edge;

#[path = "e2e/policy.rs"]
mod policy;

#[path = "e2e/tls.rs"]
mod tls;

#[path = "e2e/operations.rs"]
mod operations;

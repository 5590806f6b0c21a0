//! Pure OAuth protocol logic: no I/O, time as an argument.

pub mod access;
pub mod authorize;
pub mod client;
pub mod pkce;
pub mod redirect_uri;
pub mod scope;

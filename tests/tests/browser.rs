//! The pages people use, in a real browser (headless Chromium): consent → the fake GitHub →
//! the client's loopback callback → a token; Deny; the dev login form; the error pages; a
//! cross-site form post; sign-in at an OpenID provider (refusals, key rotation, a provider down
//! at start, userinfo); the MCP Inspector's web UI. Screenshots of every page (desktop and
//! phone) are kept in `target/browser-artifacts/`.
//!
//! An HTTP client sends no `Origin`, no `Sec-Fetch-*` and keeps cookies by its own rules, so
//! these pages are tested here and not only with `reqwest`: a referrer policy once made every
//! real browser's Approve look cross-site while every HTTP-client test passed.

#[path = "browser/support.rs"]
mod support;

#[path = "browser/consent.rs"]
mod consent;

#[path = "browser/pages.rs"]
mod pages;

#[path = "browser/inspector.rs"]
mod inspector;

#[path = "browser/oidc.rs"]
mod oidc;

#[path = "browser/oidc_operations.rs"]
mod oidc_operations;

#[path = "browser/oidc_userinfo.rs"]
mod oidc_userinfo;

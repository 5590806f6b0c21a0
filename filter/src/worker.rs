//! One worker's state and the whole per-request decision, with no host calls: the root
//! context installs keys, the HTTP contexts hand in what they read from the request.
//!
//! Envoy runs one wasm VM per worker thread; everything here lives in that VM, shared by
//! `Rc` between its root context and its HTTP contexts (single-threaded, so `RefCell`).
//!
//! Two caches keyed by the token's hash, both bounded by `token_cache_entries`:
//! - verified tokens, until their `exp`;
//! - tokens that failed verification in a way no clock and no added key can change (a bad
//!   signature above all: about 1 ms of ES256 each in V8), for [`FAILURE_MEMORY_SECS`] or
//!   until the key set changes, whichever comes first. A flood repeating one forged token
//!   then costs one verification a minute; a flood of distinct ones still costs one each,
//!   and only ever holds the newest entries. An unknown `kid` is never remembered: the
//!   refresh it asks for may bring the key (key rotation).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use mcp_auth_proto::handoff::{HandoffKey, SIGNATURE_LEN};

use crate::bearer::bearer_token;
use crate::cache::{TokenCache, TokenHash};
use crate::challenge::{self, Denial};
use crate::config::{Config, Route};
use crate::fast::FastPath;
use crate::jwks::KeySet;
use crate::verify::{
    Expectations, RouteError, VerifiedToken, VerifyError, authorize_for_route, verify_access_token,
};

/// How long a token's failed verification is remembered, in seconds. Short: the rule that
/// clears it when keys change is what keeps it correct; this only bounds how stale an entry
/// can get.
pub const FAILURE_MEMORY_SECS: u64 = 60;

/// What the HTTP context read from the request (raw header bytes: never trust UTF-8).
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestFacts<'a> {
    /// Envoy's route name (`xds.route_name`).
    pub route_name: Option<&'a [u8]>,
    pub origin: Option<&'a [u8]>,
    pub authorization: Option<&'a [u8]>,
    pub path: Option<&'a [u8]>,
}

/// A request that may pass, with what to hand on.
#[derive(Debug, Clone)]
pub struct Admitted {
    pub route: Rc<Route>,
    pub token: Rc<VerifiedToken>,
    /// BLAKE3 of the bearer token (fast mode's cache key, with the route).
    pub token_hash: TokenHash,
}

/// A request that is answered by the filter, and why (for the log; never holds the token).
#[derive(Debug, Clone)]
pub struct Refused {
    pub denial: Denial,
    pub reason: String,
}

/// What changed when a key set was installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyChange {
    /// Cached tokens were forgotten because a key left the set.
    pub cache_cleared: bool,
    /// Remembered failures were forgotten because the set is not the same any more.
    pub failures_forgotten: bool,
}

/// The state of one worker VM.
pub struct Worker {
    pub config: Rc<Config>,
    keys: RefCell<Option<Rc<KeySet>>>,
    cache: RefCell<TokenCache<Rc<VerifiedToken>>>,
    /// Tokens whose verification failed for good with the current keys, and why.
    failures: RefCell<TokenCache<VerifyError>>,
    key_refresh_wanted: Cell<bool>,
    /// Fast mode's decisions and stream state; `None` in per-request mode.
    pub fast: Option<RefCell<FastPath>>,
    /// Fast mode: the counter of `Decide` calls (cache misses), once the root defined it.
    pub decide_calls_metric: Cell<Option<u32>>,
    /// Signs every hand-off, so ext_authz can tell the filter wrote it.
    handoff_key: HandoffKey,
}

impl Worker {
    pub fn new(config: Rc<Config>, cache_capacity: usize, handoff_key: HandoffKey) -> Self {
        let fast = config.decisions.as_ref().map(|decisions| {
            RefCell::new(FastPath::new(
                cache_capacity,
                decisions.stream_loss_grace_ms,
            ))
        });
        Self {
            fast,
            decide_calls_metric: Cell::new(None),
            config,
            keys: RefCell::new(None),
            cache: RefCell::new(TokenCache::new(cache_capacity)),
            failures: RefCell::new(TokenCache::new(cache_capacity)),
            key_refresh_wanted: Cell::new(false),
            handoff_key,
        }
    }

    /// The value of [`mcp_auth_proto::handoff::HANDOFF_HEADER`] for `admitted`: the token's
    /// claims, encoded when it was verified, and its route, signed.
    pub fn handoff_value(&self, admitted: &Admitted) -> String {
        let claims = &admitted.token.handoff_claims;
        let service = &admitted.route.handoff_service;
        let mut value = String::with_capacity(claims.len() + service.len() + SIGNATURE_LEN);
        value.push_str(claims);
        value.push_str(service);
        self.handoff_key.append_mac(&mut value);
        value
    }

    pub fn has_keys(&self) -> bool {
        self.keys.borrow().is_some()
    }

    /// Replaces the key set. If a key of the old set is missing from the new one, tokens it
    /// verified must not be honoured any longer: the cache is cleared. If the set changed at
    /// all, a remembered failure may now verify: those are forgotten.
    pub fn install_keys(&self, keys: KeySet) -> KeyChange {
        let mut current = self.keys.borrow_mut();
        let cache_cleared = match current.as_deref() {
            Some(old) if !keys.contains_all_of(old) => {
                self.cache.borrow_mut().clear();
                true
            }
            _ => false,
        };
        let failures_forgotten = match current.as_deref() {
            Some(old) if keys.same_keys_as(old) => false,
            _ => {
                self.failures.borrow_mut().clear();
                true
            }
        };
        *current = Some(Rc::new(keys));
        KeyChange {
            cache_cleared,
            failures_forgotten,
        }
    }

    /// Asks the root context for an early JWKS fetch (a token named an unknown key).
    pub fn request_key_refresh(&self) {
        self.key_refresh_wanted.set(true);
    }

    /// Whether an early fetch was asked for since the last call.
    pub fn take_key_refresh_request(&self) -> bool {
        self.key_refresh_wanted.replace(false)
    }

    pub fn cached_tokens(&self) -> usize {
        self.cache.borrow().len()
    }

    /// Tokens whose failure is remembered (expired entries included until they are evicted).
    pub fn remembered_failures(&self) -> usize {
        self.failures.borrow().len()
    }

    /// Decides one request at `now` (seconds since the epoch): route policy, `Origin`,
    /// credentials, token (cached or verified), audience and scopes.
    pub fn decide(&self, request: &RequestFacts<'_>, now: u64) -> Result<Admitted, Refused> {
        let route = request
            .route_name
            .and_then(|name| std::str::from_utf8(name).ok())
            .and_then(|name| self.config.route(name))
            .ok_or_else(|| Refused {
                denial: challenge::no_policy(),
                reason: format!(
                    "no policy for route {:?}",
                    request.route_name.map(String::from_utf8_lossy)
                ),
            })?;
        let origin = request
            .origin
            .map(|o| std::str::from_utf8(o).unwrap_or("\u{fffd}"));
        if !route.allows_origin(origin) {
            return Err(refused(
                challenge::origin_not_allowed(),
                "origin not allowed",
            ));
        }
        let token = match bearer_token(request.authorization, request.path) {
            Ok(Some(token)) => token,
            Ok(None) => return Err(refused(challenge::missing_token(route), "no bearer token")),
            Err(err) => {
                return Err(refused(
                    challenge::invalid_request(route, err.description()),
                    &err.to_string(),
                ));
            }
        };

        let token_hash = TokenHash::of(token);
        let verified = self.verified_token(route, token, token_hash, now)?;
        match authorize_for_route(
            &verified,
            &route.policy.resource,
            &route.policy.required_scopes,
        ) {
            Ok(()) => Ok(Admitted {
                route: Rc::clone(route),
                token: verified,
                token_hash,
            }),
            Err(err @ RouteError::WrongAudience) => Err(refused(
                challenge::invalid_token(route, "The access token is for another resource"),
                &err.to_string(),
            )),
            Err(err @ RouteError::InsufficientScope(_)) => Err(refused(
                challenge::insufficient_scope(
                    route,
                    "The access token lacks scopes this resource requires",
                ),
                &err.to_string(),
            )),
        }
    }

    /// The token's route-independent verification, from the caches when possible.
    fn verified_token(
        &self,
        route: &Route,
        token: &str,
        hash: TokenHash,
        now: u64,
    ) -> Result<Rc<VerifiedToken>, Refused> {
        if let Some(verified) = self.cache.borrow().get(&hash, now) {
            return Ok(Rc::clone(verified));
        }
        let Some(keys) = self.keys.borrow().clone() else {
            return Err(refused(
                challenge::keys_unavailable(),
                "no signing keys yet",
            ));
        };
        if let Some(err) = self.failures.borrow().get(&hash, now) {
            return Err(refused(
                challenge::invalid_token(route, err.description()),
                &format!("{err} (remembered)"),
            ));
        }
        let expectations = Expectations {
            issuer: &self.config.issuer,
            clock_leeway_secs: self.config.clock_leeway_secs,
        };
        match verify_access_token(token, &keys, &expectations, now) {
            Ok(verified) => {
                let verified = Rc::new(verified);
                if let Ok(mut cache) = self.cache.try_borrow_mut() {
                    cache.insert(hash, Rc::clone(&verified), verified.expires_at, now);
                }
                Ok(verified)
            }
            Err(err) => {
                if err.wants_key_refresh() {
                    self.request_key_refresh();
                }
                let refusal = refused(
                    challenge::invalid_token(route, err.description()),
                    &err.to_string(),
                );
                if err.is_fixed_for_key_set()
                    && let Ok(mut failures) = self.failures.try_borrow_mut()
                {
                    failures.insert(hash, err, now.saturating_add(FAILURE_MEMORY_SECS), now);
                }
                Err(refusal)
            }
        }
    }
}

fn refused(denial: Denial, reason: &str) -> Refused {
    Refused {
        denial,
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests;

//! Per-client-IP rate limits on `/register`, `/token` and the sign-in pages (`/authorize`,
//! `/login/*`: every `/authorize` writes a pending record to Redis, so an unlimited one lets
//! anyone fill it), GCRA: a steady rate with a burst of one minute's allowance, in memory per
//! authserver instance.
//!
//! The client IP is the TCP peer, unless the peer is loopback or a private address (Envoy,
//! which runs with `use_remote_address` and appends the address it saw to
//! `X-Forwarded-For`): then the last `X-Forwarded-For` entry.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// Entries kept before expired ones are swept.
const SWEEP_AT: usize = 10_000;

/// Which limit a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    Register,
    Token,
    /// `/authorize` and `/login/*`: pages, answered with a page.
    SignIn,
}

/// The limiter: per (bucket, IP), the GCRA theoretical arrival time.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    burst: Duration,
    tats: Mutex<HashMap<(Bucket, IpAddr), Instant>>,
}

impl RateLimiter {
    /// `per_minute` requests per minute per IP and bucket; `None` when 0 (unlimited).
    pub fn new(per_minute: u32) -> Option<Self> {
        if per_minute == 0 {
            return None;
        }
        let interval = Duration::from_secs(60) / per_minute;
        Some(Self {
            interval,
            burst: interval * (per_minute - 1),
            tats: Mutex::new(HashMap::new()),
        })
    }

    /// Counts one request; `Err(wait)` when over the limit.
    pub fn check(&self, bucket: Bucket, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let Ok(mut tats) = self.tats.lock() else {
            return Ok(());
        };
        if tats.len() >= SWEEP_AT {
            tats.retain(|_, tat| *tat > now);
        }
        let tat = tats.get(&(bucket, ip)).copied().unwrap_or(now).max(now);
        let ahead = tat - now;
        if ahead > self.burst {
            return Err(ahead - self.burst);
        }
        tats.insert((bucket, ip), tat + self.interval);
        Ok(())
    }
}

/// The client IP of a request (see the module docs).
pub fn client_ip(peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<IpAddr> {
    let peer_ip = peer.map(|p| p.ip());
    let trusted_proxy = peer_ip.is_none_or(|ip| match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private(),
        IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
    });
    if trusted_proxy {
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|entry| entry.trim().parse::<IpAddr>().ok())
            .next_back();
        if forwarded.is_some() {
            return forwarded;
        }
    }
    peer_ip
}

/// How long the request's client must wait, when it is over `bucket`'s limit.
fn over_limit(state: &AppState, bucket: Bucket, request: &Request) -> Option<Duration> {
    let limiter = state.limiter.as_ref()?;
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let ip = client_ip(peer, request.headers()).unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let wait = limiter.check(bucket, ip, Instant::now()).err()?;
    tracing::info!(%ip, ?bucket, "rate limited");
    Some(wait)
}

async fn limit(state: &AppState, bucket: Bucket, request: Request, next: Next) -> Response {
    match over_limit(state, bucket, &request) {
        Some(wait) => ApiError::rate_limited(wait.as_secs_f64().ceil() as u64).into_response(),
        None => next.run(request).await,
    }
}

/// Middleware for `/authorize` and `/login/*`: over the limit, a page (429, `Retry-After`).
pub async fn limit_sign_in(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(wait) = over_limit(&state, Bucket::SignIn, &request) else {
        return next.run(request).await;
    };
    let mut response = crate::pages::PageError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many sign-in attempts",
        "Too many sign-in requests came from your network. Wait a minute, then try again from your application.",
    )
    .into_response();
    let seconds = wait.as_secs_f64().ceil() as u64;
    if let Ok(value) = axum::http::HeaderValue::from_str(&seconds.max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// Middleware for `/register`.
pub async fn limit_register(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    limit(&state, Bucket::Register, request, next).await
}

/// Middleware for `/token`.
pub async fn limit_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    limit(&state, Bucket::Token, request, next).await
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn allows_a_burst_then_the_steady_rate() {
        let limiter = RateLimiter::new(60).unwrap();
        let ip: IpAddr = "1.2.3.4".parse().unwrap();
        let start = Instant::now();
        for _ in 0..60 {
            assert!(limiter.check(Bucket::Token, ip, start).is_ok());
        }
        let wait = limiter.check(Bucket::Token, ip, start).unwrap_err();
        assert!(wait <= Duration::from_secs(1));
        // Other IPs and buckets are separate.
        assert!(limiter.check(Bucket::Register, ip, start).is_ok());
        assert!(
            limiter
                .check(Bucket::Token, "5.6.7.8".parse().unwrap(), start)
                .is_ok()
        );
        // One interval later, one more.
        assert!(
            limiter
                .check(Bucket::Token, ip, start + Duration::from_secs(1))
                .is_ok()
        );
        assert!(RateLimiter::new(0).is_none());
    }

    #[test]
    fn forwarded_for_is_trusted_only_from_a_local_proxy() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 9.9.9.9"),
        );
        let envoy: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let remote: SocketAddr = "8.8.8.8:5000".parse().unwrap();
        assert_eq!(
            client_ip(Some(envoy), &headers),
            Some("9.9.9.9".parse().unwrap())
        );
        assert_eq!(
            client_ip(Some(remote), &headers),
            Some("8.8.8.8".parse().unwrap())
        );
        assert_eq!(
            client_ip(Some(envoy), &HeaderMap::new()),
            Some("127.0.0.1".parse().unwrap())
        );
    }
}

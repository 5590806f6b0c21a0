//! Per-client-address rate limits on `/register`, `/token` and the sign-in pages
//! (`/authorize`, `/login/*`: every `/authorize` writes a pending record to Redis, so an
//! unlimited one lets anyone fill it). GCRA: a steady rate with a burst of one minute's
//! allowance, counted in Redis so every authserver replica shares one limit.
//!
//! The client address is the TCP peer, unless the peer is a trusted proxy
//! (`authserver.trusted_proxies`, Envoy's addresses): then the `X-Forwarded-For` entry Envoy
//! vouches for. Envoy (`use_remote_address`) appends the address it saw; with
//! `listener.xff_num_trusted_hops` = N, the N entries before that were appended by trusted load
//! balancers, so the client is the entry N places before Envoy's. Anything further left was
//! written by the client and is never read. IPv6 clients are counted per /64, the block one
//! subscriber gets. A Redis failure refuses the request (503): a limit that fails open is none.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;

use crate::error::ApiError;
use crate::settings::Settings;
use crate::state::AppState;

/// Which limit a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Register,
    Token,
    /// `/authorize` and `/login/*`: pages, answered with a page.
    SignIn,
}

impl Bucket {
    /// The bucket's name in its Redis keys.
    fn name(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Token => "token",
            Self::SignIn => "sign_in",
        }
    }
}

/// The limiter's parameters; the counts live in Redis.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    interval: Duration,
    burst: Duration,
    addresses: ClientAddresses,
}

impl RateLimiter {
    /// `rate_limit_per_minute` requests per minute per client and bucket; `None` when 0
    /// (unlimited).
    pub fn new(settings: &Settings) -> Option<Self> {
        let per_minute = settings.rate_limit_per_minute;
        if per_minute == 0 {
            return None;
        }
        let interval = Duration::from_secs(60) / per_minute;
        Some(Self {
            interval,
            burst: interval * (per_minute - 1),
            addresses: ClientAddresses {
                trusted_proxies: settings.trusted_proxies.clone(),
                trusted_hops: settings.xff_trusted_hops,
            },
        })
    }
}

/// How the client's address is read from a request (see the module docs).
#[derive(Debug, Clone)]
pub struct ClientAddresses {
    trusted_proxies: Vec<IpNet>,
    trusted_hops: u32,
}

impl ClientAddresses {
    /// The client address of a request from `peer` (`None`: in-process, from a test).
    pub fn client_ip(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer_ip = peer.map(|p| p.ip().to_canonical());
        let from_proxy =
            peer_ip.is_none_or(|ip| self.trusted_proxies.iter().any(|net| net.contains(&ip)));
        if !from_proxy {
            return peer_ip;
        }
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|entry| entry.trim().parse::<IpAddr>().ok())
            .collect();
        let hops = usize::try_from(self.trusted_hops).unwrap_or(usize::MAX);
        // Fewer entries than trusted hops: the leftmost is the farthest any proxy vouched for.
        let index = forwarded.len().saturating_sub(hops.saturating_add(1));
        forwarded.get(index).map(|ip| ip.to_canonical()).or(peer_ip)
    }
}

/// The unit a client address is counted in: one IPv4 address, or one IPv6 /64.
pub fn counted_as(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let net = ipnet::Ipv6Net::new_assert(v6, 64).trunc();
            net.to_string()
        }
    }
}

/// Whether the request may go on: `Ok(None)`, or `Ok(Some(wait))` when its client is over
/// `bucket`'s limit; `Err` when the count could not be kept (Redis).
async fn over_limit(
    state: &AppState,
    bucket: Bucket,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
) -> Result<Option<Duration>, ApiError> {
    let Some(limiter) = state.limiter.as_ref() else {
        return Ok(None);
    };
    let ip = limiter
        .addresses
        .client_ip(peer, headers)
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let wait = state
        .store
        .rate_limit(
            bucket.name(),
            &counted_as(ip),
            limiter.interval,
            limiter.burst,
        )
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    if wait.is_some() {
        tracing::info!(%ip, ?bucket, "rate limited");
    }
    Ok(wait)
}

/// The TCP peer of a request (none for in-process requests).
fn peer(request: &Request) -> Option<SocketAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}

fn retry_after(wait: Duration) -> u64 {
    (wait.as_secs_f64().ceil() as u64).max(1)
}

async fn limit(state: &AppState, bucket: Bucket, request: Request, next: Next) -> Response {
    match over_limit(state, bucket, peer(&request), request.headers()).await {
        Ok(None) => next.run(request).await,
        Ok(Some(wait)) => ApiError::rate_limited(retry_after(wait)).into_response(),
        Err(error) => error.into_response(),
    }
}

/// Middleware for `/authorize` and `/login/*`: over the limit, a page (429, `Retry-After`).
pub async fn limit_sign_in(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let limited = over_limit(&state, Bucket::SignIn, peer(&request), request.headers()).await;
    let (status, title, text, wait) = match limited {
        Ok(None) => return next.run(request).await,
        Ok(Some(wait)) => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-in attempts",
            "Too many sign-in requests came from your network. Wait a minute, then try again from your application.",
            wait,
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in is unavailable",
            "The sign-in service cannot reach its storage right now. Try again in a minute.",
            Duration::from_secs(5),
        ),
    };
    let mut response = crate::pages::PageError::new(status, title, text).into_response();
    if let Ok(value) = axum::http::HeaderValue::from_str(&retry_after(wait).to_string()) {
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

    fn addresses(proxies: &[&str], hops: u32) -> ClientAddresses {
        ClientAddresses {
            trusted_proxies: proxies.iter().map(|p| p.parse().unwrap()).collect(),
            trusted_hops: hops,
        }
    }

    fn forwarded(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static(value));
        headers
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn forwarded_for_is_read_only_from_a_trusted_proxy() {
        let loopback = addresses(&["127.0.0.0/8", "::1/128"], 0);
        let headers = forwarded("6.6.6.6, 9.9.9.9");
        let envoy: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        assert_eq!(loopback.client_ip(Some(envoy), &headers), ip("9.9.9.9"));
        // A private peer is not trusted unless configured: it is the client itself.
        let private: SocketAddr = "10.0.0.5:5000".parse().unwrap();
        assert_eq!(loopback.client_ip(Some(private), &headers), ip("10.0.0.5"));
        let remote: SocketAddr = "8.8.8.8:5000".parse().unwrap();
        assert_eq!(loopback.client_ip(Some(remote), &headers), ip("8.8.8.8"));
        assert_eq!(
            loopback.client_ip(Some(envoy), &HeaderMap::new()),
            ip("127.0.0.1")
        );
        // An IPv4-mapped loopback peer is loopback.
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5000".parse().unwrap();
        assert_eq!(loopback.client_ip(Some(mapped), &headers), ip("9.9.9.9"));
        // Configured: a pod network.
        let pods = addresses(&["10.0.0.0/8"], 0);
        assert_eq!(pods.client_ip(Some(private), &headers), ip("9.9.9.9"));
    }

    #[test]
    fn trusted_hops_skip_the_load_balancers_entries_and_never_the_clients() {
        let envoy: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        // client 1.1.1.1 (forged 6.6.6.6 before it) -> LB (appends 1.1.1.1) -> Envoy
        // (appends the LB's 10.1.1.1).
        let headers = forwarded("6.6.6.6, 1.1.1.1, 10.1.1.1");
        assert_eq!(
            addresses(&["127.0.0.1/32"], 1).client_ip(Some(envoy), &headers),
            ip("1.1.1.1")
        );
        // Without the hop configured, everyone behind the LB is the LB.
        assert_eq!(
            addresses(&["127.0.0.1/32"], 0).client_ip(Some(envoy), &headers),
            ip("10.1.1.1")
        );
        // Fewer entries than hops: the leftmost, never past the header's start.
        assert_eq!(
            addresses(&["127.0.0.1/32"], 5).client_ip(Some(envoy), &forwarded("2.2.2.2")),
            ip("2.2.2.2")
        );
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(counted_as(a), counted_as(b));
        assert_ne!(counted_as(a), counted_as(c));
        assert_eq!(counted_as(a), "2001:db8:1:2::/64");
        assert_eq!(counted_as("203.0.113.7".parse().unwrap()), "203.0.113.7");
        assert_eq!(
            counted_as("::ffff:203.0.113.7".parse().unwrap()),
            "203.0.113.7"
        );
    }
}

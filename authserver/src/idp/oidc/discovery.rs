//! Discovery of a provider (`<issuer>/.well-known/openid-configuration` and its JWKS,
//! OpenID Connect Discovery 1.0 §4), in the background: a provider down when the authserver
//! starts must not take it down, nor the other providers with it.
//!
//! The first attempt is made at once; a failure is logged and retried after
//! [`retry_delay`] (1 s, doubling, at most [`MAX_RETRY_DELAY`]) until one succeeds. A sign-in
//! at the provider meanwhile wakes the retry (no sooner than [`MIN_RETRY_DELAY`] after the
//! last attempt began) and waits a little for its outcome ([`Discovery::wait`]), so the first
//! user after the provider comes back is not turned away for the backoff's sake.

use std::sync::Arc;
use std::time::{Duration, Instant};

use openidconnect::IssuerUrl;
use openidconnect::core::CoreProviderMetadata;
use tokio::sync::{Notify, watch};

use super::jwks::JwksCache;

/// First delay before trying discovery again.
pub const MIN_RETRY_DELAY: Duration = Duration::from_secs(1);
/// Longest delay between two attempts.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

/// How long to wait before attempt `failures + 1`, after `failures` failed ones: 1 s, 2 s,
/// 4 s, … at most [`MAX_RETRY_DELAY`].
pub fn retry_delay(failures: u32) -> Duration {
    MIN_RETRY_DELAY
        .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1)))
        .min(MAX_RETRY_DELAY)
}

/// A discovered provider: its metadata and its keys.
#[derive(Debug)]
pub struct Discovered {
    pub metadata: CoreProviderMetadata,
    pub keys: JwksCache,
}

/// Where discovery stands.
#[derive(Debug, Clone, Default)]
struct Status {
    discovered: Option<Arc<Discovered>>,
    failed_attempts: u32,
}

/// One provider's discovery, retried in the background until it succeeds. Dropping it
/// stops the retries.
#[derive(Debug)]
pub struct Discovery {
    status: watch::Receiver<Status>,
    wake: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Discovery {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Discovery {
    /// Starts discovering provider `id` at `issuer` with `http` (on the current runtime).
    pub fn start(id: String, issuer: IssuerUrl, http: reqwest::Client) -> Self {
        let (sender, status) = watch::channel(Status::default());
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn(retry_until_discovered(
            id,
            issuer,
            http,
            sender,
            Arc::clone(&wake),
        ));
        Self { status, wake, task }
    }

    /// The provider, if discovered.
    pub fn current(&self) -> Option<Arc<Discovered>> {
        self.status.borrow().discovered.clone()
    }

    /// The provider, discovered now or by an attempt this call asks for and awaits for at
    /// most `patience`; `None` if it is still undiscovered.
    pub async fn wait(&self, patience: Duration) -> Option<Arc<Discovered>> {
        let mut status = self.status.clone();
        if let Some(discovered) = status.borrow_and_update().discovered.clone() {
            return Some(discovered);
        }
        self.wake.notify_one();
        // Any change is an attempt's outcome.
        let _ = tokio::time::timeout(patience, status.changed()).await;
        self.current()
    }
}

async fn retry_until_discovered(
    id: String,
    issuer: IssuerUrl,
    http: reqwest::Client,
    status: watch::Sender<Status>,
    wake: Arc<Notify>,
) {
    let mut failures = 0u32;
    loop {
        let started = Instant::now();
        match discover(&issuer, &http).await {
            Ok(metadata) => {
                let keys = JwksCache::new(metadata.jwks().clone(), Instant::now());
                tracing::info!(
                    provider = %id,
                    issuer = %issuer.as_str(),
                    keys = metadata.jwks().keys().len(),
                    after_failures = failures,
                    "discovered the OpenID provider"
                );
                status.send_modify(|s| {
                    s.discovered = Some(Arc::new(Discovered { metadata, keys }));
                });
                return;
            }
            Err(problem) => {
                failures = failures.saturating_add(1);
                let delay = retry_delay(failures);
                tracing::warn!(
                    provider = %id,
                    issuer = %issuer.as_str(),
                    %problem,
                    attempt = failures,
                    retry_in = ?delay,
                    "OpenID provider discovery failed; its sign-ins are refused until it succeeds"
                );
                status.send_modify(|s| s.failed_attempts = failures);
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = async {
                        wake.notified().await;
                        tokio::time::sleep_until((started + MIN_RETRY_DELAY).into()).await;
                    } => {}
                }
            }
        }
    }
}

/// One attempt: the metadata (whose `issuer` must equal ours exactly) and the JWKS it names.
async fn discover(
    issuer: &IssuerUrl,
    http: &reqwest::Client,
) -> Result<CoreProviderMetadata, String> {
    let send = crate::idp::http::sender(http);
    CoreProviderMetadata::discover_async(issuer.clone(), &send)
        .await
        .map_err(|e| crate::idp::http::describe(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_from_one_second_to_a_minute() {
        let delays: Vec<u64> = (1..=9).map(|n| retry_delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(retry_delay(u32::MAX), MAX_RETRY_DELAY);
        assert_eq!(retry_delay(0), MIN_RETRY_DELAY);
    }

    #[tokio::test]
    async fn an_unreachable_provider_is_retried_and_a_sign_in_does_not_wait_long() {
        // A loopback port nobody listens on: every attempt is refused at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let issuer = IssuerUrl::new(format!("http://127.0.0.1:{port}")).unwrap();
        let http = crate::idp::http::client(Duration::from_secs(2)).unwrap();
        let discovery = Discovery::start("down".into(), issuer, http);
        let begun = Instant::now();
        assert!(discovery.wait(Duration::from_secs(5)).await.is_none());
        // The woken attempt's failure ends the wait, well before its patience.
        assert!(
            begun.elapsed() < Duration::from_secs(4),
            "{:?}",
            begun.elapsed()
        );
        assert!(discovery.status.borrow().failed_attempts >= 1);
        assert!(!discovery.task.is_finished(), "it keeps retrying");
    }
}

//! Waiting for something to become true, with a deadline instead of a sleep.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

/// Calls `probe` until it yields `Some`, or fails after `deadline` naming `what`.
pub async fn until<T, F, Fut>(what: &str, deadline: Duration, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = Instant::now() + deadline;
    loop {
        if let Some(value) = probe().await {
            return Ok(value);
        }
        if Instant::now() >= end {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until `GET url` answers a success status, or fails after `deadline` naming `what`.
pub async fn until_ok(what: &str, url: &str, deadline: Duration) -> Result<()> {
    let client = reqwest::Client::new();
    until(what, deadline, || async {
        client
            .get(url)
            .send()
            .await
            .ok()
            .filter(|r| r.status().is_success())
            .map(|_| ())
    })
    .await
}

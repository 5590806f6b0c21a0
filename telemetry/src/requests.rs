//! One log event per HTTP request, inside a `request` span that every event of the request
//! carries: `request_id`, `method` and `path` (never the query string, which can hold codes
//! and states), then `status` and `latency_ms` when it is answered.
//!
//! The request id is the `x-request-id` Envoy gave the request (so a line here joins Envoy's
//! access log), or a fresh one; either way it is returned in the response's `x-request-id`.

use std::time::Instant;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument as _;

/// The header that carries the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Longest request id taken from a client.
const MAX_REQUEST_ID: usize = 128;

/// The id a request is logged under: the one it came with when it looks like an id (what
/// Envoy sets: a UUID), else a fresh random one.
pub fn request_id(presented: Option<&HeaderValue>) -> String {
    presented
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= MAX_REQUEST_ID
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
        .map_or_else(fresh_id, str::to_owned)
}

fn fresh_id() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// axum middleware (`middleware::from_fn`): the request span and the one event per request.
pub async fn log_request(mut request: Request, next: Next) -> Response {
    let id = request_id(request.headers().get(REQUEST_ID_HEADER));
    // `request_id` returns only visible ASCII: always a valid header value.
    let header = HeaderValue::from_str(&id).ok();
    if let Some(value) = &header {
        request
            .headers_mut()
            .insert(REQUEST_ID_HEADER, value.clone());
    }
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1e3;
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            latency_ms = format!("{latency_ms:.3}"),
            "request"
        );
    });
    if let Some(value) = header {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;
    use crate::logs::{LogFormat, layer_to};

    /// Log output kept in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_request_is_one_json_line_with_its_id_and_never_its_query() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::registry().with(layer_to(
            LogFormat::Json,
            move || writer.clone(),
            false,
        ));
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = Router::new()
            .route(
                "/login/callback",
                get(|| async {
                    tracing::info!("inside the handler");
                    "ok"
                }),
            )
            .layer(axum::middleware::from_fn(log_request));
        let request = Request::get("/login/callback?code=SECRET-CODE&state=SECRET-STATE")
            .header(REQUEST_ID_HEADER, "req-42")
            .body(Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.headers()[REQUEST_ID_HEADER], "req-42");

        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(!text.contains("SECRET"), "{text}");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        for line in &lines {
            assert_eq!(line["span"]["request_id"], "req-42", "{line}");
            assert_eq!(line["span"]["path"], "/login/callback", "{line}");
            assert!(line["timestamp"].is_string(), "{line}");
        }
        assert_eq!(lines[0]["message"], "inside the handler");
        assert_eq!(lines[1]["message"], "request");
        assert_eq!(lines[1]["status"], 200);
        assert_eq!(lines[1]["level"], "INFO");
    }

    #[test]
    fn a_presented_id_is_kept_only_when_it_looks_like_one() {
        let uuid = HeaderValue::from_static("9b2f3c1e-4a5d-4c6b-8e7f-0a1b2c3d4e5f");
        assert_eq!(
            request_id(Some(&uuid)),
            "9b2f3c1e-4a5d-4c6b-8e7f-0a1b2c3d4e5f"
        );
        for bad in ["", "a b", "x\"y", &"a".repeat(129)] {
            let value = HeaderValue::from_str(bad).unwrap();
            let id = request_id(Some(&value));
            assert_ne!(id, bad);
            assert_eq!(id.len(), 32);
        }
        assert_ne!(request_id(None), request_id(None));
    }
}

//! Prometheus metrics: the text a scrape gets, and the request metrics of an HTTP server.
//!
//! Names follow Prometheus' conventions: `mcp_auth_` first, `_total` for counters (added by
//! the encoder), base units (`_seconds`, `_bytes`).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub use prometheus_client;

/// What a scrape answers with (OpenMetrics 1.0, which Prometheus reads).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The path every server serves its metrics at.
pub const METRICS_PATH: &str = "/metrics";

/// Latency buckets in seconds: 0.25 ms to about 4 s, doubling.
pub fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

/// `registry` in the OpenMetrics text format, as an HTTP response.
pub fn render(registry: &Registry) -> Response {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, registry) {
        Ok(()) => {
            let mut response = text.into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
            response
        }
        Err(error) => {
            tracing::error!(%error, "cannot encode the metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// One HTTP request, by the route that matched (its pattern, never the path a client sent,
/// so the label set stays bounded).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub endpoint: String,
    pub method: String,
    pub status: String,
}

/// The route pattern alone.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub endpoint: String,
}

/// Requests served, by endpoint, method and status, and their latency by endpoint.
#[derive(Debug)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: Family<EndpointLabels, Histogram>,
}

impl HttpMetrics {
    /// Registers `mcp_auth_http_requests_total` and `mcp_auth_http_request_duration_seconds`.
    pub fn register(registry: &mut Registry) -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let duration = Family::<EndpointLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "mcp_auth_http_requests",
            "HTTP requests answered, by route pattern, method and status",
            requests.clone(),
        );
        registry.register(
            "mcp_auth_http_request_duration_seconds",
            "Time to answer an HTTP request, by route pattern",
            duration.clone(),
        );
        Self { requests, duration }
    }

    /// Counts one answered request.
    pub fn observe(&self, endpoint: &str, method: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                endpoint: endpoint.to_owned(),
                method: method.to_owned(),
                status: status.to_string(),
            })
            .inc();
        self.duration
            .get_or_create(&EndpointLabels {
                endpoint: endpoint.to_owned(),
            })
            .observe(seconds);
    }
}

/// axum middleware (`middleware::from_fn_with_state`) that feeds [`HttpMetrics`]. A request
/// no route matched counts as endpoint `unmatched`.
pub async fn track(
    State(metrics): State<Arc<HttpMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let endpoint = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.observe(
        &endpoint,
        &method,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;

    #[tokio::test]
    async fn requests_are_counted_by_route_pattern() {
        let mut registry = Registry::default();
        let metrics = Arc::new(HttpMetrics::register(&mut registry));
        let registry = Arc::new(registry);
        let app = Router::new()
            .route("/items/{id}", get(|| async { "item" }))
            .route_layer(axum::middleware::from_fn_with_state(metrics, track))
            .route(
                METRICS_PATH,
                get(move || {
                    let registry = Arc::clone(&registry);
                    async move { render(&registry) }
                }),
            );
        for id in ["1", "2"] {
            let request = Request::get(format!("/items/{id}")).body(Body::empty());
            let response = app.clone().oneshot(request.unwrap()).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        }
        let request = Request::get(METRICS_PATH).body(Body::empty()).unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            text.contains(
                "mcp_auth_http_requests_total{endpoint=\"/items/{id}\",method=\"GET\",status=\"200\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "mcp_auth_http_request_duration_seconds_count{endpoint=\"/items/{id}\"} 2"
            ),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}

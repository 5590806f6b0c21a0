//! The HTTP client of every identity provider: reqwest 0.13 behind the `oauth2` crate's
//! request type (oauth2 5 and openidconnect 4 ship an adapter for reqwest 0.12 only), no
//! redirects followed (a provider's answer is read where it was asked, never elsewhere).

use std::future::Future;
use std::time::Duration;

/// A client that follows no redirects and gives up after `timeout`.
pub fn client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .user_agent(concat!("mcp-mesh-auth/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// The async HTTP client `oauth2` and `openidconnect` requests are sent with.
pub fn sender(
    http: &reqwest::Client,
) -> impl Fn(
    oauth2::HttpRequest,
) -> std::pin::Pin<
    Box<dyn Future<Output = Result<oauth2::HttpResponse, reqwest::Error>> + Send + 'static>,
> + '_ {
    move |request| {
        let http = http.clone();
        Box::pin(async move { send(&http, request).await })
    }
}

/// Sends an `oauth2` request with reqwest 0.13.
pub async fn send(
    http: &reqwest::Client,
    request: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, reqwest::Error> {
    let request = reqwest::Request::try_from(request)?;
    let response = http.execute(request).await?;
    let mut builder = http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let body = response.bytes().await?.to_vec();
    // Status and headers come from a parsed response, so building cannot fail; an empty
    // 502 stands in should it ever.
    Ok(builder.body(body).unwrap_or_else(|_| {
        let mut fallback = http::Response::new(Vec::new());
        *fallback.status_mut() = http::StatusCode::BAD_GATEWAY;
        fallback
    }))
}

/// A token endpoint's refusal or failure, for logs (no secret in it).
pub fn describe_token_error<E: std::error::Error, R: oauth2::ErrorResponse>(
    error: &oauth2::RequestTokenError<E, R>,
) -> String {
    match error {
        oauth2::RequestTokenError::ServerResponse(response) => response.to_string(),
        oauth2::RequestTokenError::Request(e) => format!("request failed: {e}"),
        oauth2::RequestTokenError::Parse(e, _) => format!("unexpected response: {e}"),
        oauth2::RequestTokenError::Other(e) => e.clone(),
    }
}

/// Any error with its sources, for logs.
pub fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

//! Server-rendered HTML (minijinja, auto-escaped): the consent page, the identity provider
//! choice, the dev login form and error pages. Pages can never be framed (`X-Frame-Options: DENY`, CSP `frame-ancestors
//! 'none'`), load no script, share no browsing context group with another site's window
//! (`Cross-Origin-Opener-Policy: same-origin`: a page that opened ours cannot script or
//! navigate it), and are never cached. Names a client chose are isolated in `<bdi>`, so
//! right-to-left text cannot reorder the sentence around them.

use std::sync::LazyLock;

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::Environment;
use serde::Serialize;

/// No scripts, no framing, styles inline only. No `form-action`: browsers apply it to the
/// redirects after a form post, which go to GitHub and to the client.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'";

static TEMPLATES: LazyLock<Result<Environment<'static>, minijinja::Error>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.add_template("base.html", include_str!("templates/base.html"))?;
    env.add_template("consent.html", include_str!("templates/consent.html"))?;
    env.add_template("choose.html", include_str!("templates/choose.html"))?;
    env.add_template("dev_login.html", include_str!("templates/dev_login.html"))?;
    env.add_template("error.html", include_str!("templates/error.html"))?;
    Ok(env)
});

/// Renders template `name` with `context` (HTML-escaped).
pub fn render(name: &str, context: impl Serialize) -> Result<String, minijinja::Error> {
    let env = TEMPLATES.as_ref().map_err(|e| {
        minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string())
    })?;
    env.get_template(name)?.render(context)
}

/// An HTML page response with the headers every page carries.
pub fn page(status: StatusCode, html: String) -> Response {
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// Renders `name` as a page; a template failure becomes a plain error page.
pub fn render_page(status: StatusCode, name: &str, context: impl Serialize) -> Response {
    match render(name, context) {
        Ok(html) => page(status, html),
        Err(error) => {
            tracing::error!(%error, template = name, "rendering failed");
            PageError::internal().into_response()
        }
    }
}

/// An error shown to the user in the browser, never a redirect: used whenever the client or
/// its redirect URI cannot be trusted (RFC 6749 §4.1.2.1, AS-14).
#[derive(Debug, Clone)]
pub struct PageError {
    pub status: StatusCode,
    pub title: &'static str,
    pub message: String,
}

impl PageError {
    pub fn new(status: StatusCode, title: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            title,
            message: message.into(),
        }
    }

    pub fn bad_request(title: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, title, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Request refused", message)
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "The authorization server could not complete this request.",
        )
    }

    pub fn unavailable(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(%cause, "page request failed on a dependency");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Temporarily unavailable",
            "The authorization server cannot complete this request right now. Try again shortly.",
        )
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(error: crate::store::StoreError) -> Self {
        PageError::unavailable(&error)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Context<'a> {
            title: &'a str,
            message: &'a str,
        }
        let context = Context {
            title: self.title,
            message: &self.message,
        };
        match render("error.html", &context) {
            Ok(html) => page(self.status, html),
            Err(_) => page(self.status, format!("<h1>{}</h1>", self.title)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_renders_and_escapes() {
        let html = render(
            "consent.html",
            minijinja::context! {
                client_name => "<script>x</script>",
                scopes => vec![minijinja::context! { name => "mcp", description => "Use it" }],
                request_id => "r",
                csrf => "c",
                action => "/login/consent",
                localhost_only => true,
                redirect_target => "http://127.0.0.1:5000/cb",
                claimed_host => "github.com",
            },
        )
        .unwrap();
        assert!(html.contains("<bdi>&lt;script&gt;"));
        assert!(!html.contains("<script>x"));
        assert!(html.contains("name=\"csrf\" value=\"c\""));
        assert!(html.contains("127.0.0.1:5000"));
        assert!(html.contains("(not verified)"));
        render("dev_login.html", minijinja::context! { state => "s" }).unwrap();
        render(
            "error.html",
            minijinja::context! { title => "t", message => "m" },
        )
        .unwrap();
    }

    #[test]
    fn pages_cannot_be_framed() {
        let response = PageError::forbidden("no").into_response();
        assert_eq!(response.headers()[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(
            response.headers()["cross-origin-opener-policy"],
            "same-origin"
        );
        assert!(
            response.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
    }
}

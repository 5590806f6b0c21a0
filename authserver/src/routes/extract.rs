//! Small request parsers shared by the endpoints.

use axum::http::{HeaderMap, header};

use crate::secret::Secret;

/// The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1).
pub fn bearer_token(headers: &HeaderMap) -> Option<Secret> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| Secret::new(token))
}

/// `application/x-www-form-urlencoded` parameters (RFC 6749 §3.2), rejected as RFC 6749 §5.2
/// `invalid_request` when missing, malformed, or repeated (§3.1: no parameter twice).
#[derive(Debug)]
pub struct OAuthForm<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for OAuthForm<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = crate::error::ApiError;

    async fn from_request(
        request: axum::extract::Request,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::Form::<T>::from_request(request, state).await {
            Ok(axum::Form(value)) => Ok(Self(value)),
            Err(rejection) => Err(crate::error::ApiError::invalid_request(format!(
                "the body must be application/x-www-form-urlencoded parameters, each at most once: {}",
                rejection.body_text()
            ))),
        }
    }
}

//! Client authentication at `/token`, `/revoke` and `/introspect` (RFC 6749 §2.3.1):
//! `client_secret_basic`, `client_secret_post`, or just `client_id` for public clients.

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::clients::{self, ClientError};
use crate::error::ApiError;
use crate::oauth::client::Client;
use crate::secret::Secret;
use crate::state::AppState;

/// The request of the two token-management endpoints, which share their shape: RFC 7009 §2.1
/// (revocation) and RFC 7662 §2.1 (introspection).
#[derive(Debug, serde::Deserialize)]
pub struct TokenRequest {
    token: Option<String>,
    /// `access_token` or `refresh_token`; a hint only, the token's shape decides.
    #[serde(default)]
    #[allow(dead_code)]
    token_type_hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

impl TokenRequest {
    /// Authenticates the calling client (header or form credentials) and returns it with the
    /// token it asks about; a missing token is `invalid_request`.
    pub async fn authenticate(
        self,
        state: &AppState,
        headers: &HeaderMap,
    ) -> Result<(Client, String), ApiError> {
        let credentials = presented(
            headers,
            self.client_id.as_deref(),
            self.client_secret.as_deref(),
        )?;
        let client = authenticate(state, &credentials).await?;
        let token = self
            .token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::invalid_request("token is required"))?;
        Ok((client, token))
    }
}

/// What a request presented.
#[derive(Debug)]
pub struct Presented {
    pub client_id: String,
    pub secret: Option<Secret>,
    pub basic: bool,
}

/// Reads the client's credentials from `Authorization: Basic` or the form (never both,
/// RFC 6749 §2.3).
pub fn presented(
    headers: &HeaderMap,
    form_client_id: Option<&str>,
    form_client_secret: Option<&str>,
) -> Result<Presented, ApiError> {
    let form_client_id = form_client_id.filter(|s| !s.is_empty());
    let form_client_secret = form_client_secret.filter(|s| !s.is_empty());
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| ApiError::invalid_client("malformed Authorization header", true))?;
        let Some((scheme, encoded)) = value.split_once(' ') else {
            return Err(ApiError::invalid_client(
                "malformed Authorization header",
                true,
            ));
        };
        if scheme.eq_ignore_ascii_case("basic") {
            let (id, secret) = decode_basic(encoded.trim()).ok_or_else(|| {
                ApiError::invalid_client("malformed HTTP Basic credentials", true)
            })?;
            if form_client_secret.is_some() {
                return Err(ApiError::invalid_request(
                    "use one client authentication method, not several",
                ));
            }
            if form_client_id.is_some_and(|f| f != id) {
                return Err(ApiError::invalid_request(
                    "client_id differs from the HTTP Basic user",
                ));
            }
            return Ok(Presented {
                client_id: id,
                secret: Some(Secret::new(secret)),
                basic: true,
            });
        }
    }
    let client_id = form_client_id
        .ok_or_else(|| ApiError::invalid_client("client authentication is required", false))?;
    Ok(Presented {
        client_id: client_id.to_owned(),
        secret: form_client_secret.map(Secret::new),
        basic: false,
    })
}

/// RFC 6749 §2.3.1: `base64(urlencode(id) ":" urlencode(secret))`. Each half is
/// decoded whole (`+` as a space, `%XX` as its byte): a raw `&` or `=` is part of the
/// value, as it is in the original, not a separator.
fn decode_basic(encoded: &str) -> Option<(String, String)> {
    let decoded = String::from_utf8(STANDARD.decode(encoded).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let decode = |s: &str| -> Option<String> {
        let plus_as_space = s.replace('+', " ");
        percent_encoding::percent_decode_str(&plus_as_space)
            .decode_utf8()
            .ok()
            .map(|v| v.into_owned())
    };
    let id = decode(id)?;
    (!id.is_empty()).then_some(())?;
    Some((id, decode(secret)?))
}

/// The authenticated client, or 401 `invalid_client` (RFC 6749 §5.2).
pub async fn authenticate(state: &AppState, presented: &Presented) -> Result<Client, ApiError> {
    let unknown = || ApiError::invalid_client("client authentication failed", presented.basic);
    let client = match clients::resolve(
        &state.store,
        &state.documents,
        &presented.client_id,
        state.now(),
    )
    .await
    {
        Ok(client) => client,
        Err(ClientError::Unknown | ClientError::MetadataDocument(_)) => return Err(unknown()),
        Err(ClientError::Store(error)) => return Err(error.into()),
    };
    match (&client.secret_digest, &presented.secret) {
        (None, None) => Ok(client),
        (Some(digest), Some(secret)) if secret.matches_digest(digest) => Ok(client),
        _ => Err(unknown()),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn basic(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(value))).unwrap(),
        );
        headers
    }

    #[test]
    fn basic_credentials_are_form_urlencoded() {
        let p = presented(&basic("my%20client:s%3Acret+x"), None, None).unwrap();
        assert_eq!(p.client_id, "my client");
        assert_eq!(p.secret.unwrap().expose(), "s:cret x");
        assert!(p.basic);
    }

    #[test]
    fn raw_ampersand_and_equals_are_part_of_the_value() {
        let p = presented(&basic("a&b=c:s&t=u"), None, None).unwrap();
        assert_eq!(p.client_id, "a&b=c");
        assert_eq!(p.secret.unwrap().expose(), "s&t=u");
        assert!(presented(&basic("%FF:x"), None, None).is_err());
    }

    #[test]
    fn one_method_only() {
        assert!(presented(&basic("a:b"), None, Some("b")).is_err());
        assert!(presented(&basic("a:b"), Some("other"), None).is_err());
        assert!(presented(&basic("a:b"), Some("a"), None).is_ok());
        assert!(presented(&HeaderMap::new(), None, None).is_err());
        let p = presented(&HeaderMap::new(), Some("c"), Some("s")).unwrap();
        assert!(!p.basic);
    }
}

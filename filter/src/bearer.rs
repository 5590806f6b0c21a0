//! Where the access token may come from: exactly one `Authorization: Bearer` header
//! (RFC 6750 §2.1). OAuth 2.1 §5.2 forbids the query string (RFC 6750 §2.3), so a request
//! that carries `access_token` there is refused rather than ignored: the token has already
//! leaked into logs and histories, and the client must learn that it is doing it wrong.

/// Why the request's credentials are unusable. Answered with `400 invalid_request`
/// (RFC 6750 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("access_token in the query string")]
    TokenInQuery,
    #[error("more than one Authorization header or credential")]
    MultipleCredentials,
    #[error("malformed Bearer credentials")]
    MalformedBearer,
}

impl CredentialError {
    /// The RFC 6750 `error_description`.
    pub fn description(self) -> &'static str {
        match self {
            Self::TokenInQuery => "Access tokens must not be sent in the query string",
            Self::MultipleCredentials => "Send exactly one Authorization header",
            Self::MalformedBearer => "The Authorization header is not a valid Bearer credential",
        }
    }
}

/// The bearer token of a request, `None` when it carries none (no `Authorization` header,
/// or one of another scheme: RFC 6750 §3.1 answers both without an error code).
///
/// `authorization` is the raw header value. Envoy joins repeated `Authorization` headers
/// with `,` (it is an inline header), which no valid `b64token` contains.
pub fn bearer_token<'a>(
    authorization: Option<&'a [u8]>,
    path: Option<&[u8]>,
) -> Result<Option<&'a str>, CredentialError> {
    if path.is_some_and(query_has_access_token) {
        return Err(CredentialError::TokenInQuery);
    }
    let Some(value) = authorization else {
        return Ok(None);
    };
    let value = value.trim_ascii();
    let (scheme, credentials) = match value.iter().position(|&b| b == b' ') {
        Some(i) => (&value[..i], value[i..].trim_ascii_start()),
        None => (value, &b""[..]),
    };
    if !scheme.eq_ignore_ascii_case(b"Bearer") {
        // Another scheme (Basic, ...) carries no token for us, unless a second header
        // joined in by Envoy does.
        return if value
            .split(|&b| b == b',')
            .skip(1)
            .any(|part| starts_with_bearer(part.trim_ascii_start()))
        {
            Err(CredentialError::MultipleCredentials)
        } else {
            Ok(None)
        };
    }
    if credentials.contains(&b',') {
        return Err(CredentialError::MultipleCredentials);
    }
    if !is_b64token(credentials) {
        return Err(CredentialError::MalformedBearer);
    }
    // b64token is ASCII.
    std::str::from_utf8(credentials)
        .map(Some)
        .map_err(|_| CredentialError::MalformedBearer)
}

fn starts_with_bearer(value: &[u8]) -> bool {
    value
        .get(..7)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(b"Bearer "))
}

/// RFC 6750 §2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(value: &[u8]) -> bool {
    let body_len = value.len() - value.iter().rev().take_while(|&&b| b == b'=').count();
    body_len > 0
        && value[..body_len].iter().all(|&b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// True when the query string of `path` has a parameter named `access_token`
/// (also percent-encoded).
fn query_has_access_token(path: &[u8]) -> bool {
    let path = path
        .iter()
        .position(|&b| b == b'#')
        .map_or(path, |end| &path[..end]);
    let Some(start) = path.iter().position(|&b| b == b'?') else {
        return false;
    };
    let query = &path[start + 1..];
    query.split(|&b| b == b'&').any(|param| {
        let name = param
            .iter()
            .position(|&b| b == b'=')
            .map_or(param, |end| &param[..end]);
        if name.contains(&b'%') {
            percent_decoded(name) == b"access_token"
        } else {
            name == b"access_token"
        }
    })
}

fn percent_decoded(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            text[i],
            text.get(i + 1).copied().and_then(hex),
            text.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(header: &str) -> Result<Option<&str>, CredentialError> {
        bearer_token(Some(header.as_bytes()), Some(b"/mcp"))
    }

    #[test]
    fn one_bearer_header_gives_its_token() {
        assert_eq!(token("Bearer abc.def-_~+/=="), Ok(Some("abc.def-_~+/==")));
        assert_eq!(token("bearer abc"), Ok(Some("abc")));
        assert_eq!(token("BEARER   abc  "), Ok(Some("abc")));
        assert_eq!(bearer_token(None, Some(b"/mcp?x=1")), Ok(None));
        assert_eq!(bearer_token(None, None), Ok(None));
    }

    #[test]
    fn other_schemes_carry_no_token() {
        assert_eq!(token("Basic dXNlcjpwYXNz"), Ok(None));
        assert_eq!(token("Digest username=\"a\", realm=\"b\""), Ok(None));
        assert_eq!(token("Bearerabc"), Ok(None));
    }

    #[test]
    fn two_authorization_headers_are_refused() {
        // What Envoy hands over for two `Authorization` headers.
        assert_eq!(
            token("Bearer abc,Bearer def"),
            Err(CredentialError::MultipleCredentials)
        );
        assert_eq!(
            token("Bearer abc, Basic eA=="),
            Err(CredentialError::MultipleCredentials)
        );
        assert_eq!(
            token("Basic eA==,Bearer abc"),
            Err(CredentialError::MultipleCredentials)
        );
        assert_eq!(
            token("Bearer abc,"),
            Err(CredentialError::MultipleCredentials)
        );
    }

    #[test]
    fn malformed_bearer_headers_are_refused() {
        for header in [
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Bearer a\"b",
            "Bearer =abc",
            "Bearer a=b",
            "Bearer é",
        ] {
            assert_eq!(
                token(header),
                Err(CredentialError::MalformedBearer),
                "{header}"
            );
        }
        assert_eq!(
            bearer_token(Some(b"Bearer \xff\xfe"), None),
            Err(CredentialError::MalformedBearer)
        );
    }

    #[test]
    fn a_token_in_the_query_is_refused() {
        for path in [
            "/mcp?access_token=abc",
            "/mcp?a=1&access_token=abc",
            "/mcp?access_token",
            "/mcp?access%5Ftoken=abc",
            "/mcp?%61ccess_token=abc",
        ] {
            assert_eq!(
                bearer_token(Some(b"Bearer abc"), Some(path.as_bytes())),
                Err(CredentialError::TokenInQuery),
                "{path}"
            );
            assert_eq!(
                bearer_token(None, Some(path.as_bytes())),
                Err(CredentialError::TokenInQuery)
            );
        }
        for path in [
            "/access_token",
            "/mcp?my_access_token=1",
            "/mcp?x=access_token",
            "/mcp#?access_token=1",
        ] {
            assert_eq!(
                bearer_token(None, Some(path.as_bytes())),
                Ok(None),
                "{path}"
            );
        }
    }
}

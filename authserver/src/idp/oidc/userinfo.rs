//! The userinfo endpoint (OpenID Connect Core §5.3), read when a provider's config says
//! `userinfo: true`: for providers whose ID token carries the subject alone (Okta's org
//! server, any provider following Core §5.4 strictly) or leaves the groups out.
//!
//! Its answer must be about the ID token's subject (`sub` equal, §5.3.2), which the
//! `openidconnect` crate checks. The ID token wins wherever both name a claim; the email is
//! taken from userinfo as a pair with its `email_verified`, never the one without the other.

use openidconnect::core::CoreGenderClaim;
use openidconnect::{AccessToken, SubjectIdentifier, UserInfoClaims};
use serde_json::{Map, Value};

use super::id_token::{OidcClient, OtherClaims};
use crate::idp::IdpError;

/// A userinfo answer.
pub type UserInfo = UserInfoClaims<OtherClaims, CoreGenderClaim>;

/// Asks `client`'s userinfo endpoint about the holder of `access_token`, who must be
/// `claims`' subject, and merges the answer into `claims`.
pub async fn read_userinfo(
    client: &OidcClient,
    http: &reqwest::Client,
    access_token: &AccessToken,
    claims: &mut Map<String, Value>,
) -> Result<(), IdpError> {
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .map(|s| SubjectIdentifier::new(s.to_owned()));
    let send = crate::idp::http::sender(http);
    let info: UserInfo = client
        .user_info(access_token.clone(), subject)
        .map_err(|e| IdpError::Api(format!("userinfo: {e}")))?
        .request_async(&send)
        .await
        .map_err(|e| IdpError::Api(format!("userinfo: {}", crate::idp::http::describe(&e))))?;
    merge(claims, &info);
    Ok(())
}

/// Adds what `info` says and `claims` (the ID token's) does not.
pub fn merge(claims: &mut Map<String, Value>, info: &UserInfo) {
    for (name, value) in &info.additional_claims().rest {
        claims.entry(name.clone()).or_insert_with(|| value.clone());
    }
    if let Some(name) = info.preferred_username() {
        claims
            .entry("preferred_username")
            .or_insert_with(|| Value::String(name.to_string()));
    }
    if let Some(name) = info.name().and_then(|n| n.get(None)) {
        claims
            .entry("name")
            .or_insert_with(|| Value::String(name.to_string()));
    }
    if !claims.contains_key("email")
        && let Some(email) = info.email()
    {
        claims.insert("email".into(), Value::String(email.to_string()));
        claims.insert(
            "email_verified".into(),
            Value::Bool(info.email_verified() == Some(true)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn info(value: Value) -> UserInfo {
        UserInfo::from_json::<std::io::Error>(value.to_string().as_bytes(), None).unwrap()
    }

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn userinfo_fills_in_what_the_id_token_left_out_and_never_overrides_it() {
        let mut thin = claims(json!({"sub": "dave"}));
        merge(
            &mut thin,
            &info(json!({
                "sub": "dave", "preferred_username": "dave", "name": "Dave",
                "email": "dave@example.com", "email_verified": true, "groups": ["mcp-users"],
            })),
        );
        assert_eq!(
            Value::Object(thin),
            json!({
                "sub": "dave", "preferred_username": "dave", "name": "Dave",
                "email": "dave@example.com", "email_verified": true, "groups": ["mcp-users"],
            })
        );

        let mut full = claims(json!({
            "sub": "dave", "preferred_username": "dave", "groups": ["a"],
            "email": "dave@example.com", "email_verified": false,
        }));
        let before = full.clone();
        merge(
            &mut full,
            &info(json!({
                "sub": "dave", "preferred_username": "admin", "groups": ["admins"],
                "email": "admin@example.com", "email_verified": true,
            })),
        );
        assert_eq!(full, before);
    }

    #[test]
    fn an_email_from_userinfo_keeps_its_own_verification() {
        for (verified, expected) in [(json!(false), false), (Value::Null, false)] {
            let mut thin = claims(json!({"sub": "1"}));
            merge(
                &mut thin,
                &info(json!({"sub": "1", "email": "a@example.com", "email_verified": verified})),
            );
            assert_eq!(thin["email_verified"], Value::Bool(expected));
        }
    }
}

//! From a verified ID token's claims (and, when configured, the userinfo answer) to the user
//! record the allow-lists and tokens use: the provider-prefixed subject, the login, the email
//! only when verified, the groups of the configured claim. Pure: unit-tested without a
//! provider.

use mcp_auth_gateway::oidc::OidcProvider;
use mcp_auth_proto::store::UserRecord;
use serde_json::{Map, Value};

/// Why the claims do not make a user we may sign in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    #[error("the ID token has no `sub`")]
    NoSubject,
    #[error("the account is not of the hosted domain {expected:?} (hd: {found:?})")]
    HostedDomain {
        expected: String,
        found: Option<String>,
    },
    #[error("the groups claim {claim:?} is not a list of strings")]
    Groups { claim: String },
    #[error(
        "the provider left the groups out of the token (too many groups: `_claim_names` names \
         {claim:?}); allow-lists by group cannot be decided"
    )]
    GroupsOverage { claim: String },
}

/// Builds the user record of `claims` (the ID token's, with userinfo's merged in by the
/// caller) signed in at `provider`.
pub fn user_record(
    provider: &OidcProvider,
    claims: &Map<String, Value>,
    now: u64,
) -> Result<UserRecord, ClaimsError> {
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(ClaimsError::NoSubject)?;
    if let Some(expected) = &provider.hosted_domain {
        let found = claims.get("hd").and_then(Value::as_str);
        if !found.is_some_and(|hd| hd.eq_ignore_ascii_case(expected)) {
            return Err(ClaimsError::HostedDomain {
                expected: expected.clone(),
                found: found.map(str::to_owned),
            });
        }
    }
    let email = verified_email(claims);
    let login = claims
        .get(&provider.claims.login)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .or_else(|| email.clone())
        .unwrap_or_else(|| sub.to_owned());
    let groups = match &provider.claims.groups {
        Some(claim) => groups(claims, claim)?,
        None => Vec::new(),
    };
    Ok(UserRecord {
        subject: format!("{}:{sub}", provider.id),
        login,
        orgs: Vec::new(),
        teams: Vec::new(),
        email,
        groups,
        updated_at: now,
    })
}

/// `email`, lower-cased, when `email_verified` is `true` (a boolean, or the string some
/// providers send).
fn verified_email(claims: &Map<String, Value>) -> Option<String> {
    let verified = match claims.get("email_verified") {
        Some(Value::Bool(v)) => *v,
        Some(Value::String(v)) => v.eq_ignore_ascii_case("true"),
        _ => false,
    };
    let email = claims.get("email").and_then(Value::as_str)?;
    (verified && email.contains('@')).then(|| email.to_ascii_lowercase())
}

/// The groups of `claim`: an array of strings, or one space-separated string. A Keycloak
/// group path (`/parent/child`) is kept as sent; `_claim_names` naming the claim (Entra ID's
/// overage: the groups are elsewhere) is an error, never an empty list.
fn groups(claims: &Map<String, Value>, claim: &str) -> Result<Vec<String>, ClaimsError> {
    let overage = claims
        .get("_claim_names")
        .and_then(Value::as_object)
        .is_some_and(|names| names.contains_key(claim));
    match claims.get(claim) {
        None if overage => Err(ClaimsError::GroupsOverage {
            claim: claim.to_owned(),
        }),
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(text)) => Ok(text.split_whitespace().map(str::to_owned).collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ClaimsError::Groups {
                claim: claim.to_owned(),
            }),
        Some(_) => Err(ClaimsError::Groups {
            claim: claim.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn provider(config: Value) -> OidcProvider {
        serde_json::from_value(config).unwrap()
    }

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn the_subject_is_prefixed_by_the_provider_and_email_kept_only_when_verified() {
        let keycloak = provider(json!({
            "id": "keycloak", "issuer": "https://sso.example.com/realms/acme",
            "client_id": "mcp", "claims": { "groups": "groups" },
        }));
        let user = user_record(
            &keycloak,
            &claims(json!({
                "sub": "f:1234", "preferred_username": "alice", "email": "Alice@Example.com",
                "email_verified": true, "groups": ["/acme/admins", "ops"],
            })),
            7,
        )
        .unwrap();
        assert_eq!(user.subject, "keycloak:f:1234");
        assert_eq!(user.login, "alice");
        assert_eq!(user.email.as_deref(), Some("alice@example.com"));
        assert_eq!(user.groups, ["/acme/admins", "ops"]);
        assert_eq!(user.updated_at, 7);

        for unverified in [json!(false), json!("false"), Value::Null] {
            let user = user_record(
                &keycloak,
                &claims(
                    json!({"sub": "1", "email": "a@example.com", "email_verified": unverified}),
                ),
                0,
            )
            .unwrap();
            assert_eq!(user.email, None, "{unverified}");
            // No login claim and no verified email: the subject is the login.
            assert_eq!(user.login, "1");
        }
    }

    #[test]
    fn the_login_falls_back_to_the_verified_email() {
        let google = OidcProvider::google("id".into(), None).unwrap();
        let user = user_record(
            &google,
            &claims(json!({"sub": "1099", "email": "bob@example.com", "email_verified": true})),
            0,
        )
        .unwrap();
        assert_eq!(user.login, "bob@example.com");
        assert_eq!(user.subject, "google:1099");
    }

    #[test]
    fn a_foreign_hosted_domain_is_refused() {
        let google = OidcProvider::google("id".into(), Some("example.com".into())).unwrap();
        let ok = claims(json!({"sub": "1", "hd": "Example.com"}));
        assert!(user_record(&google, &ok, 0).is_ok());
        for refused in [json!({"sub": "1", "hd": "evil.com"}), json!({"sub": "1"})] {
            assert!(matches!(
                user_record(&google, &claims(refused), 0),
                Err(ClaimsError::HostedDomain { .. })
            ));
        }
    }

    #[test]
    fn groups_must_be_strings_and_an_overage_is_an_error() {
        let entra = provider(json!({
            "id": "entra", "issuer": "https://login.microsoftonline.com/t/v2.0",
            "client_id": "app", "claims": { "groups": "groups" },
        }));
        let with = |extra: Value| {
            let mut all = json!({"sub": "1"});
            all.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            user_record(&entra, &claims(all), 0)
        };
        assert_eq!(with(json!({"groups": "a b"})).unwrap().groups, ["a", "b"]);
        assert!(with(json!({})).unwrap().groups.is_empty());
        assert!(matches!(
            with(json!({"groups": [1, 2]})),
            Err(ClaimsError::Groups { .. })
        ));
        assert!(matches!(
            with(json!({"groups": {"a": 1}})),
            Err(ClaimsError::Groups { .. })
        ));
        assert!(matches!(
            with(
                json!({"_claim_names": {"groups": "src1"}, "_claim_sources": {"src1": {"endpoint": "https://graph.microsoft.com/x"}}})
            ),
            Err(ClaimsError::GroupsOverage { .. })
        ));
        assert!(matches!(
            user_record(&entra, &claims(json!({"sub": ""})), 0),
            Err(ClaimsError::NoSubject)
        ));
    }
}

//! What makes a record valid: it is the record the authserver reads under its key, and
//! it is stored under the key the authserver would store it. A backup checks every line as
//! the restore will, so it never writes a file that cannot be restored.

use mcp_auth_proto::store::{KeySpace, RevocationEvent, UserRecord};
use serde::de::DeserializeOwned;

use super::{Record, RecordKind, StoredValue};
use crate::keys::KeyFile;
use crate::keys::signing::SigningKey;
use crate::oauth::client::ClientRecord;
use crate::store::{ConsentRecord, GrantRecord, RefreshRecord};

fn parse_as<T: DeserializeOwned>(what: &str, json: &str) -> Result<T, String> {
    serde_json::from_str(json).map_err(|e| format!("not a {what} record: {e}"))
}

/// Checks that the key and value agree with the kind: the value parses as the record the
/// authserver reads there, and the key is the one it would be stored under.
pub fn validate(record: &Record) -> Result<(), String> {
    let (kind, key_suffix, value) = match record {
        Record::SigningKey { file, contents } => return validate_key_file(file, contents),
        Record::Redis {
            kind,
            key_suffix,
            value,
            ..
        } => (*kind, key_suffix.as_str(), value),
    };
    let namespace = kind.namespace().unwrap_or_default();
    let id = key_suffix
        .strip_prefix(&namespace)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| format!("a {kind:?} key must be {namespace}<id>, not {key_suffix:?}"))?;
    let keys = KeySpace::new("");
    let expected = match (kind, value) {
        (RecordKind::RefreshToken, StoredValue::Hash(fields)) => {
            for (field, _) in fields {
                if !matches!(field.as_str(), "data" | "rotated" | "successor") {
                    return Err(format!("a refresh token has no field {field:?}"));
                }
            }
            let data = fields.iter().find(|(f, _)| f == "data");
            let data = data.ok_or("a refresh token without data")?;
            parse_as::<RefreshRecord>("refresh token", &data.1)?;
            None
        }
        (RecordKind::RefreshToken, StoredValue::String(_)) | (_, StoredValue::Hash(_)) => {
            return Err(format!("a {kind:?} has the wrong Redis type"));
        }
        (RecordKind::Client, StoredValue::String(json)) => {
            Some(keys.client(&parse_as::<ClientRecord>("client", json)?.client_id))
        }
        (RecordKind::User, StoredValue::String(json)) => {
            Some(keys.user(&parse_as::<UserRecord>("user", json)?.subject))
        }
        (RecordKind::Revocation, StoredValue::String(json)) => {
            Some(keys.revocation(&parse_as::<RevocationEvent>("revocation", json)?.target))
        }
        (RecordKind::Grant, StoredValue::String(json)) => {
            parse_as::<GrantRecord>("grant", json).map(|_| None)?
        }
        (RecordKind::Consent, StoredValue::String(json)) => {
            if !id.contains(':') {
                return Err(format!(
                    "a consent key must be consent:<subject>:<client id>, not {key_suffix:?}"
                ));
            }
            parse_as::<ConsentRecord>("consent", json).map(|_| None)?
        }
        (RecordKind::SigningKey, _) => return Err("a signing key is a file".to_owned()),
    };
    match expected {
        Some(expected) if expected != key_suffix => Err(format!(
            "the record belongs at {expected:?}, not {key_suffix:?}"
        )),
        _ => Ok(()),
    }
}

/// A key file: `<kid>.json` holding a loadable key of that kid.
fn validate_key_file(file: &str, contents: &str) -> Result<(), String> {
    let key: KeyFile = parse_as("signing key", contents)?;
    let safe = !key.kid.is_empty()
        && key
            .kid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !safe || file != format!("{}.json", key.kid) {
        return Err(format!(
            "a signing key file must be named <kid>.json with a base64url kid, not {file:?}"
        ));
    }
    let der = key.der()?;
    SigningKey::from_pkcs8(key.alg, &der)
        .map(|_| ())
        .map_err(|e| format!("signing key {}: {e}", key.kid))
}

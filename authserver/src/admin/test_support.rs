//! Test support for the admin modules: a store on the one test Redis helper
//! ([`mcp_auth_testkit::RedisServer`]) under a prefix of the test's own, and a seeded
//! deployment with one of everything, all live.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mcp_auth_gateway::config::{RedisConfig, SigningAlg};
use mcp_auth_proto::registration::ClientMetadata;
use mcp_auth_proto::store::{RevocationEvent, RevocationTarget, UserRecord};
pub use mcp_auth_testkit::RedisServer;
use redis::AsyncCommands as _;

use crate::keys::{KeyStore, KeyTiming};
use crate::oauth::client::ClientRecord;
use crate::store::{ConsentRecord, GrantRecord, RefreshRecord, Store};

pub const DAY: u64 = 24 * 3600;
pub const CLIENT: &str = "client-live";
pub const SUBJECT: &str = "1001";
pub const GRANT: &str = "grant-live";
pub const REFRESH: &str = "refresh-live-digest";
pub const RESOURCE: &str = "https://gw.example.com/everything/mcp";

/// A store on `redis` under `prefix`.
pub fn store_on(redis: &RedisServer, prefix: &str) -> Store {
    Store::new(&RedisConfig {
        url: redis.url(),
        key_prefix: prefix.to_owned(),
        ..RedisConfig::default()
    })
    .unwrap()
}

pub fn client_record(client_id: &str, now: u64, expires_at: Option<u64>) -> ClientRecord {
    ClientRecord {
        client_id: client_id.to_owned(),
        metadata: ClientMetadata {
            redirect_uris: vec!["http://127.0.0.1/callback".to_owned()],
            token_endpoint_auth_method: Some("client_secret_basic".to_owned()),
            grant_types: Some(vec![
                "authorization_code".to_owned(),
                "refresh_token".to_owned(),
            ]),
            client_name: Some("Test Client".to_owned()),
            ..ClientMetadata::default()
        },
        secret_digest: Some(format!("secret-digest-of-{client_id}")),
        registration_token_digest: format!("registration-digest-of-{client_id}"),
        issued_at: now,
        expires_at,
        used: true,
    }
}

pub fn grant_record(client_id: &str, created_at: u64) -> GrantRecord {
    GrantRecord {
        client_id: client_id.to_owned(),
        subject: SUBJECT.to_owned(),
        resource: RESOURCE.to_owned(),
        scopes: vec!["mcp".to_owned()],
        created_at,
    }
}

pub fn refresh_record(grant_id: &str, client_id: &str, created_at: u64) -> RefreshRecord {
    RefreshRecord {
        grant_id: grant_id.to_owned(),
        client_id: client_id.to_owned(),
        sub: SUBJECT.to_owned(),
        login: "octocat".to_owned(),
        resource: RESOURCE.to_owned(),
        scopes: vec!["mcp".to_owned()],
        grant_created_at: created_at,
    }
}

pub fn consent_record(now: u64) -> ConsentRecord {
    ConsentRecord {
        resources: BTreeMap::from([(RESOURCE.to_owned(), vec!["mcp".to_owned()])]),
        redirect_uris: vec!["http://127.0.0.1/callback".to_owned()],
        updated_at: now,
    }
}

/// Rotates the refresh token stored under `old` (of [`CLIENT`]) to `new`, as `/token`
/// does, and checks that it rotated.
pub async fn rotate(store: &Store, old: &str, new: &str, now: u64) {
    let rotation = crate::store::Rotation {
        old_digest: old,
        new_digest: new,
        sealed_successor: "sealed-successor",
        client_id: CLIENT,
        ttl_secs: 30 * DAY,
        user_ttl_secs: 31 * DAY,
        now,
        grace_secs: 10,
    };
    let outcome = store.rotate_refresh(&rotation).await.unwrap();
    assert!(
        matches!(outcome, crate::store::RefreshOutcome::Rotated(_)),
        "{outcome:?}"
    );
}

/// One live deployment: a client, a user, a grant with a refresh token (rotated once, so
/// the first token is a rotated hash and the second an active one), a consent, a live
/// revocation of another user; and a signing key in `keys_dir`.
pub async fn seed(store: &Store, keys_dir: &Path, now: u64) {
    store
        .put_client(&client_record(CLIENT, now, Some(now + 90 * DAY)), now)
        .await
        .unwrap();
    let user = UserRecord {
        subject: SUBJECT.to_owned(),
        login: "octocat".to_owned(),
        orgs: vec!["acme".to_owned()],
        teams: vec!["acme/admins".to_owned()],
        updated_at: now,
        ..UserRecord::default()
    };
    store.put_user(&user, 31 * DAY).await.unwrap();
    let refresh = refresh_record(GRANT, CLIENT, now);
    store
        .issue_grant(
            GRANT,
            &grant_record(CLIENT, now),
            Some(("refresh-first-digest", &refresh)),
            30 * DAY,
        )
        .await
        .unwrap();
    rotate(store, "refresh-first-digest", REFRESH, now).await;
    store
        .put_consent(SUBJECT, CLIENT, &consent_record(now), 30 * DAY)
        .await
        .unwrap();
    let revocation = RevocationEvent {
        target: RevocationTarget::User("2002".to_owned()),
        revoked_at: now,
        expires_at: now + 3600,
    };
    store.revoke(&revocation, now).await.unwrap();
    let timing = KeyTiming {
        publish_delay: Duration::from_secs(60),
        retention: Duration::from_secs(3600),
    };
    KeyStore::open(keys_dir, SigningAlg::EdDSA, timing, now).unwrap();
}

/// Every key under `prefix` with its type, value (a string, or a hash's fields sorted) and
/// `PTTL`, sorted by key.
pub async fn dump(redis: &RedisServer, prefix: &str) -> Vec<(String, String, i64)> {
    let mut conn = redis.conn().await;
    let mut keys: Vec<String> = conn
        .keys(mcp_auth_proto::store::match_prefix(prefix))
        .await
        .unwrap();
    keys.sort();
    let mut out = Vec::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let value = if kind == "hash" {
            let mut fields: Vec<(String, String)> = conn.hgetall(&key).await.unwrap();
            fields.sort();
            format!("{fields:?}")
        } else {
            conn.get(&key).await.unwrap()
        };
        let ttl: i64 = conn.pttl(&key).await.unwrap();
        out.push((key, value, ttl));
    }
    out
}

/// The files of `dir` with their contents and permission bits, sorted by name.
pub fn files(dir: &Path) -> Vec<(PathBuf, String, u32)> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            (path.clone(), std::fs::read_to_string(&path).unwrap(), mode)
        })
        .collect();
    files.sort();
    files
}

/// Asserts two [`dump`]s hold the same keys and values, and TTLs within `tolerance_ms`
/// (a key without a TTL on one side has none on the other).
pub fn assert_same_state(
    left: &[(String, String, i64)],
    right: &[(String, String, i64)],
    tolerance_ms: i64,
) {
    let keys = |d: &[(String, String, i64)]| d.iter().map(|e| e.0.clone()).collect::<Vec<_>>();
    assert_eq!(keys(left), keys(right), "not the same keys");
    for (l, r) in left.iter().zip(right) {
        assert_eq!(l.1, r.1, "{}: not the same value", l.0);
        assert_eq!(l.2 < 0, r.2 < 0, "{}: TTL {} against {}", l.0, l.2, r.2);
        assert!(
            (l.2 - r.2).abs() <= tolerance_ms,
            "{}: TTL {} against {}",
            l.0,
            l.2,
            r.2
        );
    }
}

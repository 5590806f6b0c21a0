use redis::AsyncCommands as _;

use super::*;
use crate::admin::test_support::*;

const HOUR: Duration = Duration::from_secs(3600);

/// Live state from [`seed`], plus one dead record of every kind (and live look-alikes).
async fn seed_dead_and_alive(redis: &RedisServer, store: &Store, now: u64) {
    let dir = tempfile::tempdir().unwrap();
    seed(store, &dir.path().join("keys"), now).await;
    let keys = store.keys();
    let mut conn = redis.conn().await;
    // A client past its expires_at whose key lost its TTL (e.g. written by hand).
    let expired = client_record("client-expired", now - 100 * DAY, Some(now - 10));
    let _: () = conn
        .set(
            keys.client("client-expired"),
            serde_json::to_string(&expired).unwrap(),
        )
        .await
        .unwrap();
    // A grant and refresh token of a deleted client.
    let refresh = refresh_record("grant-of-deleted", "client-deleted", now);
    store
        .issue_grant(
            "grant-of-deleted",
            &grant_record("client-deleted", now),
            Some(("refresh-of-deleted", &refresh)),
            30 * DAY,
        )
        .await
        .unwrap();
    // A grant older than an access token that no refresh token names.
    store
        .issue_grant(
            "grant-unnamed",
            &grant_record(CLIENT, now - 2 * DAY),
            None,
            30 * DAY,
        )
        .await
        .unwrap();
    // A young grant without refresh tokens (a client without the refresh grant): kept.
    store
        .issue_grant("grant-young", &grant_record(CLIENT, now), None, 3600)
        .await
        .unwrap();
    // A grant of a metadata-document client (never stored): kept.
    let cimd = "https://app.example.com/client.json";
    store
        .issue_grant(
            "grant-cimd",
            &grant_record(cimd, now),
            Some(("refresh-cimd", &refresh_record("grant-cimd", cimd, now))),
            30 * DAY,
        )
        .await
        .unwrap();
    // A refresh token whose grant is gone (revoked: the revocation deleted it).
    let orphan = refresh_record("grant-gone", CLIENT, now);
    let key = keys.refresh_token("refresh-orphan");
    let _: () = conn
        .hset(&key, "data", serde_json::to_string(&orphan).unwrap())
        .await
        .unwrap();
    let _: () = conn.expire(&key, 30 * DAY as i64).await.unwrap();
    // Consents: of a deleted client (dead), of a metadata-document client (kept).
    let consent = consent_record(now);
    store
        .put_consent(SUBJECT, "client-deleted", &consent, 30 * DAY)
        .await
        .unwrap();
    store
        .put_consent(SUBJECT, cimd, &consent, 30 * DAY)
        .await
        .unwrap();
    // A revocation past its expires_at, without a TTL.
    let old = RevocationEvent {
        target: mcp_auth_proto::store::RevocationTarget::Client("client-gone".into()),
        revoked_at: now - 2 * DAY,
        expires_at: now - 10,
    };
    let _: () = conn
        .set(
            keys.revocation(&old.target),
            serde_json::to_string(&old).unwrap(),
        )
        .await
        .unwrap();
}

fn policy(now: u64) -> PurgePolicy {
    PurgePolicy {
        now,
        grant_min_age: HOUR,
    }
}

fn purged(report: &PurgeReport) -> Vec<(PurgeKind, &str)> {
    let mut items: Vec<_> = report
        .purged
        .iter()
        .map(|p| (p.kind, p.key.as_str()))
        .collect();
    items.sort();
    items
}

const DEAD: [(PurgeKind, &str); 7] = [
    (PurgeKind::Client, "client:client-expired"),
    (PurgeKind::Grant, "grant:grant-of-deleted"),
    (PurgeKind::Grant, "grant:grant-unnamed"),
    (PurgeKind::RefreshToken, "refresh:refresh-of-deleted"),
    (PurgeKind::RefreshToken, "refresh:refresh-orphan"),
    (PurgeKind::Consent, "consent:1001:client-deleted"),
    (PurgeKind::Revocation, "revoked:client:client-gone"),
];

#[tokio::test]
async fn purge_removes_dead_state_and_keeps_live_state() {
    let redis = RedisServer::start();
    let store = store_on(&redis, "p1:");
    let now = crate::state::system_now();
    seed_dead_and_alive(&redis, &store, now).await;
    let before = dump(&redis, "p1:").await;

    let dry = purge_in(&store, policy(now), true).await.unwrap();
    assert!(dry.dry_run);
    assert_eq!(purged(&dry), DEAD.to_vec());
    assert_same_state(&dump(&redis, "p1:").await, &before, 5000);

    let report = purge_in(&store, policy(now), false).await.unwrap();
    assert_eq!(purged(&report), DEAD.to_vec());
    assert_eq!(report.count(PurgeKind::Grant), 2);
    let after: Vec<String> = dump(&redis, "p1:").await.into_iter().map(|e| e.0).collect();
    let expected: Vec<String> = before
        .iter()
        .map(|e| e.0.clone())
        .filter(|key| !DEAD.iter().any(|(_, dead)| *key == format!("p1:{dead}")))
        .collect();
    assert_eq!(after, expected);
    for live in [
        "p1:client:client-live",
        "p1:grant:grant-live",
        "p1:grant:grant-young",
        "p1:grant:grant-cimd",
        "p1:refresh:refresh-live-digest",
        "p1:refresh:refresh-first-digest",
        "p1:consent:1001:client-live",
        "p1:consent:1001:https://app.example.com/client.json",
        "p1:user:1001",
        "p1:revoked:user:2002",
    ] {
        assert!(after.iter().any(|k| k == live), "{live} was purged");
    }

    // The live refresh token still works, and nothing is left to purge.
    rotate(&store, REFRESH, "refresh-next", now).await;
    let again = purge_in(&store, policy(now), false).await.unwrap();
    assert!(again.purged.is_empty(), "{again:?}");
}

#[tokio::test]
async fn deletes_recheck_what_they_were_decided_on() {
    let redis = RedisServer::start();
    let store = store_on(&redis, "p2:");
    let now = crate::state::system_now();
    let keys = store.keys().clone();
    store
        .issue_grant("g", &grant_record(CLIENT, now - 2 * DAY), None, 30 * DAY)
        .await
        .unwrap();
    let grant = keys.grant("g");
    // A rotation extended the TTL since it was read as 1 s: kept.
    assert!(
        !store
            .delete_unless_extended(&grant, Some(1000))
            .await
            .unwrap()
    );
    // Seen with no TTL, now with one: kept.
    assert!(!store.delete_unless_extended(&grant, None).await.unwrap());
    // The client exists after all: kept.
    store
        .put_client(&client_record(CLIENT, now, None), now)
        .await
        .unwrap();
    let client_key = [keys.client(CLIENT)];
    assert!(
        !store
            .delete_unless_any_exists(&grant, &client_key)
            .await
            .unwrap()
    );
    // Rewritten since it was read: kept.
    assert!(!store.delete_if_unchanged(&grant, "{}").await.unwrap());
    // Not extended: deleted.
    assert!(
        store
            .delete_unless_extended(&grant, Some(31 * DAY * 1000))
            .await
            .unwrap()
    );
    assert!(store.grant("g").await.unwrap().is_none());
}

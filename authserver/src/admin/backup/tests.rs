use redis::AsyncCommands as _;

use super::*;
use crate::admin::restore::restore_in;
use crate::admin::test_support::*;
use crate::state::system_now;

/// A seeded deployment under `prefix`, and its backup.
async fn seeded_backup(redis: &RedisServer, prefix: &str, keys_dir: &Path) -> (Store, Backup) {
    let store = store_on(redis, prefix);
    seed(&store, keys_dir, system_now()).await;
    let backup = backup_in(&store, keys_dir, now_ms()).await.unwrap();
    (store, backup)
}

#[tokio::test]
async fn backup_flush_restore_gives_the_same_keys_values_ttls_and_key_files() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let keys_dir = dir.path().join("keys");
    let (store, backup) = seeded_backup(&redis, "b1:", &keys_dir).await;
    let before = dump(&redis, "b1:").await;
    assert_eq!(before.len(), 7, "{before:?}");

    let text = backup.text();
    let lines: Vec<&str> = text.lines().collect();
    let header: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(header["format"], "mcp-mesh-auth-backup");
    assert_eq!(header["version"], 1);
    assert_eq!(header["key_prefix"], "b1:");
    assert_eq!(header["records"], 8);
    assert!(header["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(lines.len(), 9);
    let count = |kind| backup.counts.get(&kind).copied().unwrap_or(0);
    assert_eq!(count(RecordKind::RefreshToken), 2);
    assert_eq!(count(RecordKind::SigningKey), 1);
    for kind in [
        RecordKind::Client,
        RecordKind::User,
        RecordKind::Grant,
        RecordKind::Consent,
        RecordKind::Revocation,
    ] {
        assert_eq!(count(kind), 1, "{kind:?}");
    }
    // A record line embeds the stored JSON as it is stored.
    let client_line = lines
        .iter()
        .find(|l| l.contains(r#""kind":"client""#))
        .unwrap();
    let stored: String = redis
        .conn()
        .await
        .get("b1:client:client-live")
        .await
        .unwrap();
    assert!(
        client_line.contains(&format!(r#""value":{stored}}}"#)),
        "{client_line}"
    );
    let line: serde_json::Value = serde_json::from_str(client_line).unwrap();
    assert_eq!(line["key_suffix"], "client:client-live");
    assert!(line["ttl_ms"].as_u64().unwrap() > 89 * DAY * 1000);
    let rotated = lines
        .iter()
        .find(|l| l.contains("refresh-first-digest"))
        .unwrap();
    let rotated: serde_json::Value = serde_json::from_str(rotated).unwrap();
    assert_eq!(rotated["value"]["data"]["grant_id"], GRANT);
    assert_eq!(rotated["value"]["successor"], "sealed-successor");

    let _: () = redis::cmd("FLUSHALL")
        .query_async(&mut redis.conn().await)
        .await
        .unwrap();
    assert!(dump(&redis, "b1:").await.is_empty());
    let restored_keys = dir.path().join("restored-keys");
    let report = restore_in(&store, &restored_keys, &text, now_ms())
        .await
        .unwrap();
    assert_same_state(&before, &dump(&redis, "b1:").await, 5000);
    assert_eq!(report.of(RecordKind::RefreshToken).restored, 2);
    assert_eq!(report.of(RecordKind::SigningKey).restored, 1);
    let strip = |files: Vec<(PathBuf, String, u32)>| {
        files
            .into_iter()
            .map(|(path, text, mode)| (path.file_name().unwrap().to_owned(), text, mode))
            .collect::<Vec<_>>()
    };
    let restored_files = strip(files(&restored_keys));
    assert_eq!(restored_files, strip(files(&keys_dir)));
    assert_eq!(restored_files[0].2, 0o600);

    // Twice: nothing changes, everything counts as unchanged.
    let after_first = dump(&redis, "b1:").await;
    let again = restore_in(&store, &restored_keys, &text, now_ms())
        .await
        .unwrap();
    assert_same_state(&after_first, &dump(&redis, "b1:").await, 5000);
    for kind in RecordKind::ALL {
        let counts = again.of(kind);
        assert_eq!(
            counts.restored + counts.kept + counts.expired,
            0,
            "{kind:?}"
        );
        assert_eq!(counts.unchanged, count(kind), "{kind:?}");
    }
}

#[tokio::test]
async fn restore_into_another_prefix_keeps_live_records_as_they_are() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let keys_dir = dir.path().join("keys");
    let (_, backup) = seeded_backup(&redis, "from:", &keys_dir).await;
    let other = store_on(&redis, "to:");
    // A user record that changed since: kept, not overwritten.
    let _: () = redis
        .conn()
        .await
        .set(
            "to:user:1001",
            r#"{"subject":"1001","login":"renamed","updated_at":1}"#,
        )
        .await
        .unwrap();
    let report = restore_in(&other, &keys_dir, &backup.text(), now_ms())
        .await
        .unwrap();
    assert_eq!(report.of(RecordKind::User).kept, 1);
    assert_eq!(report.of(RecordKind::SigningKey).unchanged, 1);
    let from = dump(&redis, "from:").await;
    let to = dump(&redis, "to:").await;
    let moved: Vec<_> = from
        .iter()
        .filter(|e| e.0 != "from:user:1001")
        .map(|(k, v, t)| (k.replacen("from:", "to:", 1), v.clone(), *t))
        .collect();
    let to_without_user: Vec<_> = to
        .iter()
        .filter(|e| e.0 != "to:user:1001")
        .cloned()
        .collect();
    assert_same_state(&moved, &to_without_user, 5000);
    let user: String = redis.conn().await.get("to:user:1001").await.unwrap();
    assert!(user.contains("renamed"));
}

#[tokio::test]
async fn ttls_count_down_from_the_backup_and_run_out() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let keys_dir = dir.path().join("keys");
    let (store, backup) = seeded_backup(&redis, "b3:", &keys_dir).await;
    let _: () = redis::cmd("FLUSHALL")
        .query_async(&mut redis.conn().await)
        .await
        .unwrap();
    let two_hours_later = backup.header.created_at_ms + 2 * 3600 * 1000;
    let report = restore_in(&store, &keys_dir, &backup.text(), two_hours_later)
        .await
        .unwrap();
    // The revocation had an hour left.
    assert_eq!(report.of(RecordKind::Revocation).expired, 1);
    assert_eq!(report.of(RecordKind::Revocation).restored, 0);
    assert_eq!(report.of(RecordKind::Grant).restored, 1);
    let ttl: i64 = redis
        .conn()
        .await
        .pttl("b3:grant:grant-live")
        .await
        .unwrap();
    let expected = i64::try_from((30 * DAY - 2 * 3600) * 1000).unwrap();
    assert!((ttl - expected).abs() < 5000, "{ttl} against {expected}");
}

#[tokio::test]
async fn revocations_published_while_following_are_returned() {
    let redis = RedisServer::start();
    let store = store_on(&redis, "b4:");
    let mut follower = store.follow_revocations().await.unwrap();
    assert!(follower.published().await.unwrap().is_empty());
    let now = system_now();
    let event = mcp_auth_proto::store::RevocationEvent {
        target: mcp_auth_proto::store::RevocationTarget::Grant("g9".into()),
        revoked_at: now,
        expires_at: now + 60,
    };
    store.revoke(&event, now).await.unwrap();
    assert_eq!(follower.published().await.unwrap(), vec![event]);
    assert!(follower.published().await.unwrap().is_empty());
}

#[test]
fn the_file_is_written_atomically_for_the_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backup.jsonl");
    std::fs::write(&path, "old").unwrap();
    write_private_atomically(&path, b"new\n").unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "a temporary file was left behind");
    let missing_dir = dir.path().join("nope").join("backup.jsonl");
    assert!(write_private_atomically(&missing_dir, b"x").is_err());
}

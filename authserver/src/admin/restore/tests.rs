use super::*;
use crate::admin::backup::backup_in;
use crate::admin::test_support::*;
use crate::state::system_now;

/// The backup of a seeded deployment (on a Redis of its own) and its key directory.
async fn backup_text(dir: &Path) -> String {
    let redis = RedisServer::start();
    let store = store_on(&redis, "src:");
    let keys_dir = dir.join("keys");
    seed(&store, &keys_dir, system_now()).await;
    backup_in(&store, &keys_dir, now_ms()).await.unwrap().text()
}

/// Restores `text` into an empty Redis and key directory; asserts nothing was written.
async fn refused(text: &str) -> RestoreError {
    let redis = RedisServer::start();
    let store = store_on(&redis, "dst:");
    let dir = tempfile::tempdir().unwrap();
    let keys_dir = dir.path().join("keys");
    let error = restore_in(&store, &keys_dir, text, now_ms())
        .await
        .unwrap_err();
    assert!(
        dump(&redis, "").await.is_empty(),
        "{error}: Redis was written"
    );
    assert!(!keys_dir.exists(), "{error}: the key directory was written");
    error
}

fn replace_line(text: &str, number: usize, line: &str) -> String {
    text.lines()
        .enumerate()
        .map(|(i, l)| if i + 1 == number { line } else { l })
        .map(|l| format!("{l}\n"))
        .collect()
}

#[tokio::test]
async fn an_unknown_format_or_version_is_refused_and_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let text = backup_text(dir.path()).await;
    let header: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();

    let mut v2 = header.clone();
    v2["version"] = 2.into();
    let error = refused(&replace_line(&text, 1, &v2.to_string())).await;
    assert!(
        matches!(error, RestoreError::Format(FormatError::UnsupportedVersion(ref v)) if v == "2"),
        "{error}"
    );
    assert!(
        error.to_string().contains("version 2 is not supported"),
        "{error}"
    );

    let mut other = header;
    other["format"] = "something-else".into();
    let error = refused(&replace_line(&text, 1, &other.to_string())).await;
    assert!(
        matches!(error, RestoreError::Format(FormatError::UnknownFormat)),
        "{error}"
    );
    let error = refused("not json\n").await;
    assert!(
        matches!(error, RestoreError::Format(FormatError::UnknownFormat)),
        "{error}"
    );
}

#[tokio::test]
async fn a_malformed_line_is_refused_with_its_number_and_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let text = backup_text(dir.path()).await;
    // The last line is a valid signing key: the refusal comes before any of it is written.
    let error = refused(&replace_line(&text, 3, r#"{"kind":"client","key_suffix":"#)).await;
    assert!(
        matches!(
            error,
            RestoreError::Format(FormatError::Malformed { line: 3, .. })
        ),
        "{error}"
    );
    assert!(error.to_string().starts_with("line 3: "), "{error}");

    let no_ttl = r#"{"kind":"grant","key_suffix":"grant:g","value":{"client_id":"c","subject":"s","resource":"r","scopes":[],"created_at":1}}"#;
    let error = refused(&replace_line(&text, 4, no_ttl)).await;
    assert!(error.to_string().starts_with("line 4: "), "{error}");

    let truncated: String = text.lines().take(5).map(|l| format!("{l}\n")).collect();
    let error = refused(&truncated).await;
    assert!(
        matches!(
            error,
            RestoreError::Format(FormatError::Count {
                announced: 8,
                found: 4
            })
        ),
        "{error}"
    );
}

#[tokio::test]
async fn a_different_key_under_the_same_kid_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = backup_text(dir.path()).await;
    let redis = RedisServer::start();
    let store = store_on(&redis, "dst:");
    let keys_dir = dir.path().join("other-keys");
    std::fs::create_dir(&keys_dir).unwrap();
    let (name, _, _) = files(&dir.path().join("keys")).remove(0);
    let name = name.file_name().unwrap().to_owned();
    std::fs::write(keys_dir.join(&name), "{}").unwrap();
    let error = restore_in(&store, &keys_dir, &text, now_ms())
        .await
        .unwrap_err();
    assert!(matches!(error, RestoreError::KeyConflict { .. }), "{error}");
    assert!(dump(&redis, "").await.is_empty());
    assert_eq!(std::fs::read_to_string(keys_dir.join(&name)).unwrap(), "{}");
}

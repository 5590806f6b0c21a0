use super::*;
use crate::admin::output;
use crate::admin::test_support::*;
use crate::state::system_now;

async fn seeded(prefix: &str) -> (RedisServer, Store, tempfile::TempDir) {
    let redis = RedisServer::start();
    let store = store_on(&redis, prefix);
    let dir = tempfile::tempdir().unwrap();
    seed(&store, &dir.path().join("keys"), system_now()).await;
    // Another deployment on the same Redis is not listed.
    let other = store_on(&redis, "other:");
    let now = system_now();
    other
        .put_client(&client_record("client-other", now, None), now)
        .await
        .unwrap();
    (redis, store, dir)
}

#[tokio::test]
async fn clients_list_and_show_as_json_without_secrets_in_the_table() {
    let (_redis, store, _dir) = seeded("t1:").await;
    let clients = list_clients_in(&store).await.unwrap();
    let json = serde_json::to_value(&clients).unwrap();
    let array = json.as_array().unwrap();
    assert_eq!(array.len(), 1, "{json:#}");
    let client = &array[0];
    assert_eq!(client["client_id"], CLIENT);
    assert_eq!(client["metadata"]["client_name"], "Test Client");
    assert_eq!(client["secret_digest"], "secret-digest-of-client-live");
    assert_eq!(
        client["registration_token_digest"],
        "registration-digest-of-client-live"
    );
    assert!(client.get("client_secret").is_none());
    let ttl = client["ttl_secs"].as_u64().unwrap();
    assert!(ttl > 89 * DAY && ttl <= 90 * DAY, "{ttl}");

    let shown = show_client_in(&store, CLIENT).await.unwrap();
    assert_eq!(serde_json::to_value(&shown).unwrap(), *client);

    let now = system_now();
    for human in [
        output::clients_table(&clients, now),
        output::client_block(&shown, now),
    ] {
        assert!(human.contains(CLIENT), "{human}");
        assert!(!human.contains("digest-of"), "a digest is printed: {human}");
    }
    let table = output::clients_table(&clients, now);
    assert!(table.starts_with("CLIENT_ID"), "{table}");
    assert!(table.contains("Test Client"), "{table}");

    let missing = show_client_in(&store, "nope").await.unwrap_err();
    assert!(matches!(
        missing,
        AdminError::NotFound { kind: "client", .. }
    ));
}

#[tokio::test]
async fn grants_list_filters_and_show_counts_refresh_tokens() {
    let (_redis, store, _dir) = seeded("t2:").await;
    let now = system_now();
    store
        .issue_grant("grant-other", &grant_record("client-b", now), None, 3600)
        .await
        .unwrap();

    let all = list_grants_in(&store, &GrantFilter::default())
        .await
        .unwrap();
    let ids: Vec<&str> = all.iter().map(|g| g.grant_id.as_str()).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&GRANT) && ids.contains(&"grant-other"));

    let by_client = GrantFilter {
        subject: None,
        client_id: Some(CLIENT.to_owned()),
    };
    let json = serde_json::to_value(list_grants_in(&store, &by_client).await.unwrap()).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 1);
    assert_eq!(json[0]["grant_id"], GRANT);
    assert_eq!(json[0]["client_id"], CLIENT);
    assert_eq!(json[0]["subject"], SUBJECT);
    assert_eq!(json[0]["scopes"], serde_json::json!(["mcp"]));
    assert!(json[0]["ttl_secs"].as_u64().unwrap() > 29 * DAY);

    let nobody = GrantFilter {
        subject: Some("9999".to_owned()),
        client_id: None,
    };
    assert!(list_grants_in(&store, &nobody).await.unwrap().is_empty());

    let detail = show_grant_in(&store, GRANT).await.unwrap();
    assert_eq!(
        detail.refresh_tokens,
        RefreshTokenCounts {
            active: 1,
            rotated: 1
        }
    );
    let json = serde_json::to_value(&detail).unwrap();
    assert_eq!(json["grant_id"], GRANT);
    assert_eq!(json["refresh_tokens"]["active"], 1);
    let human = output::grant_block(&detail, now);
    assert!(human.contains("1 active, 1 rotated"), "{human}");
    assert!(show_grant_in(&store, "nope").await.is_err());
}

#[tokio::test]
async fn users_list_and_show_with_grants_and_consents() {
    let (_redis, store, _dir) = seeded("t3:").await;
    let users = list_users_in(&store).await.unwrap();
    let json = serde_json::to_value(&users).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 1);
    assert_eq!(json[0]["subject"], SUBJECT);
    assert_eq!(json[0]["login"], "octocat");
    assert_eq!(json[0]["orgs"], serde_json::json!(["acme"]));

    let detail = show_user_in(&store, SUBJECT).await.unwrap();
    let json = serde_json::to_value(&detail).unwrap();
    assert_eq!(json["subject"], SUBJECT);
    assert_eq!(json["user"]["login"], "octocat");
    assert_eq!(json["grants"][0]["grant_id"], GRANT);
    assert_eq!(json["consents"][0]["client_id"], CLIENT);
    assert_eq!(
        json["consents"][0]["resources"][RESOURCE],
        serde_json::json!(["mcp"])
    );
    let human = output::user_block(&detail, system_now());
    assert!(
        human.contains("octocat") && human.contains("grants (1):"),
        "{human}"
    );
    assert!(human.contains(GRANT), "{human}");

    let missing = show_user_in(&store, "9999").await.unwrap_err();
    assert!(matches!(missing, AdminError::NotFound { kind: "user", .. }));
}

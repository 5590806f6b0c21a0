//! `userinfo: true`, in Chromium, against the real provider (npm `oidc-provider`) run so its
//! ID tokens carry `sub` alone (OpenID Connect Core §5.4): the login, email and groups come
//! from its userinfo endpoint, and the groups decide an `ALLOWED_GROUPS` allow-list. The
//! same provider configured a second time without `userinfo` is the control: the same user,
//! no groups, refused.

// Test code: a failed step should fail loudly, at the step.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mcp_auth_e2e::chromium::Chromium;
use mcp_auth_e2e::oauth;
use mcp_auth_e2e::oidc_provider::{PROVIDER_ID, ProviderSetup, stack_with};
use mcp_auth_e2e::stack::StackOptions;
use serde_json::json;

use crate::oidc::{logged_since, sign_in_at};
use crate::support::SignIn;

/// Our second config of the same provider, without `userinfo`.
const ID_TOKEN_ONLY: &str = "op-thin";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_only_at_the_userinfo_endpoint_decide_the_allow_list() {
    mcp_auth_e2e::log_capture::install();
    let accounts = json!({
        "dave": { "preferred_username": "dave", "email": "dave@example.com",
                  "email_verified": true, "groups": ["mcp-users"] },
        "erin": { "preferred_username": "erin", "email": "erin@example.com",
                  "email_verified": true, "groups": ["other"] },
    });
    let setup = ProviderSetup {
        accounts,
        extra: ", userinfo: true".into(),
        also: vec![(ID_TOKEN_ONLY.into(), String::new())],
        conform_id_token_claims: true,
    };
    // The stack admits every user (`users: ["*"]`) unless told otherwise: here the group,
    // and octocat, who never signs in.
    let options = StackOptions {
        env: [
            ("ALLOWED_GROUPS", "mcp-users"),
            ("ALLOWED_GITHUB_USERS", "octocat"),
        ]
        .map(|(var, value)| (var.to_owned(), value.to_owned()))
        .into(),
        ..Default::default()
    };
    let (stack, _op) = stack_with(options, setup).await.unwrap();
    let flow = SignIn::around(stack, None).await;

    // dave through the provider with userinfo: admitted by his group, named by userinfo.
    let mut browser = Chromium::start("oidc-userinfo-dave").await.unwrap();
    let page = sign_in_at(&mut browser, &flow, Some(PROVIDER_ID), "dave").await;
    let access = flow.admitted(0, &page, "dave").await;
    let claims = oauth::jwt_claims(&access);
    assert_eq!(claims["sub"], "op:dave");
    assert_eq!(claims["preferred_username"], "dave");

    // Refused, each for its reason: dave where only the ID token is read (it holds no
    // groups), erin whose userinfo groups are not on the list.
    for (n, (provider, login)) in [(ID_TOKEN_ONLY, "dave"), (PROVIDER_ID, "erin")]
        .into_iter()
        .enumerate()
    {
        let logged = mcp_auth_e2e::log_capture::contents().len();
        let mut browser = Chromium::start(&format!("oidc-userinfo-{provider}-{login}"))
            .await
            .unwrap();
        let page = sign_in_at(&mut browser, &flow, Some(provider), login).await;
        flow.refused(n + 1, &page, &format!("{provider} {login}"))
            .await;
        let subject = format!("{provider}:{login}");
        let refused = logged_since(logged, "sign-in refused by the allow-list");
        assert!(
            refused.iter().any(|l| l.contains(&subject)),
            "{subject}: {refused:?}"
        );
    }
}

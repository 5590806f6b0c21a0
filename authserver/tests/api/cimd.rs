//! Client ID Metadata Documents: an https `client_id` is fetched and validated (here from a
//! loopback server, which only a test-only switch allows).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::StatusCode;
use axum::routing::get;

use crate::support::*;

struct DocumentServer {
    url: String,
    fetches: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DocumentServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `/client.json` (the document, naming itself unless `name_self` is false), a
/// redirect at `/moved.json`, an oversized document at `/big.json` and, at `/no-store.json`,
/// a document that asks never to be cached.
async fn document_server(name_self: bool) -> DocumentServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = fetches.clone();
    let client_id = if name_self {
        format!("{url}/client.json")
    } else {
        "https://someone-else.example.com/client.json".to_owned()
    };
    let document = serde_json::json!({
        "client_id": client_id,
        "client_name": "Document Client",
        "client_uri": "https://app.example.com",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none"
    });
    let no_store = serde_json::json!({"client_id": format!("{url}/no-store.json"), "redirect_uris": [REDIRECT]});
    let no_store_counter = fetches.clone();
    let big = serde_json::json!({"client_id": format!("{url}/big.json"), "redirect_uris": [REDIRECT], "padding": "x".repeat(6000)});
    let app = axum::Router::new()
        .route(
            "/client.json",
            get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                let document = document.clone();
                async move { ([("cache-control", "max-age=300")], axum::Json(document)) }
            }),
        )
        .route(
            "/moved.json",
            get(|| async { axum::response::Redirect::temporary("/client.json") }),
        )
        .route(
            "/no-store.json",
            get(move || {
                no_store_counter.fetch_add(1, Ordering::SeqCst);
                let document = no_store.clone();
                async move { ([("cache-control", "no-store")], axum::Json(document)) }
            }),
        )
        .route(
            "/big.json",
            get(move || async move { axum::Json(big.clone()) }),
        );
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    DocumentServer { url, fetches, task }
}

async fn server() -> TestServer {
    TestServer::with_state(
        |yaml| yaml,
        Default::default(),
        |state| state.allowing_loopback_metadata_documents(),
    )
    .await
}

#[tokio::test]
async fn a_metadata_document_client_completes_the_flow_without_registering() {
    let documents = document_server(true).await;
    let server = server().await;
    let client_id = format!("{}/client.json", documents.url);

    let mut browser = Browser::default();
    let page = server.consent_page(&mut browser, &client_id, "").await;
    let html = page.text();
    assert!(html.contains("Document Client"));
    assert!(html.contains("127.0.0.1"), "the document's host is shown");
    let code = {
        let done = server
            .dev_login(&mut Browser::default(), &client_id, "alice", "")
            .await;
        query_params(done.header("location").unwrap())["code"].clone()
    };
    let tokens = server.exchange(&client_id, &code).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text());
    let (_, claims) = decode_jwt(tokens.json()["access_token"].as_str().unwrap());
    assert_eq!(claims["client_id"], client_id.as_str());
    // Cached per Cache-Control: one fetch served every lookup.
    assert_eq!(documents.fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn bad_documents_are_refused_with_a_page() {
    let server = server().await;
    let liar = document_server(false).await;
    let good = document_server(true).await;
    for client_id in [
        format!("{}/client.json", liar.url),
        format!("{}/moved.json", good.url),
        format!("{}/big.json", good.url),
        format!("{}/missing.json", good.url),
    ] {
        let response = Browser::default()
            .get(&server, &authorize_uri(&client_id, ""))
            .await;
        assert_eq!(
            response.status,
            StatusCode::BAD_REQUEST,
            "{client_id}: {}",
            response.text()
        );
        assert!(response.header("location").is_none());
        assert_no_fetch_details(&response.text());
    }
    // A refused document is remembered for a while: asking again fetches nothing.
    let again = format!("{}/client.json", liar.url);
    Browser::default()
        .get(&server, &authorize_uri(&again, ""))
        .await;
    assert_eq!(liar.fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_production_resolver_never_fetches_loopback() {
    let documents = document_server(true).await;
    let server = TestServer::start().await;
    let client_id = format!("{}/client.json", documents.url);
    let response = Browser::default()
        .get(&server, &authorize_uri(&client_id, ""))
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(documents.fetches.load(Ordering::SeqCst), 0);
    let https_loopback = authorize_uri(&client_id.replace("http://", "https://"), "");
    let response = Browser::default().get(&server, &https_loopback).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(documents.fetches.load(Ordering::SeqCst), 0);
}

/// What the fetch itself said (status, size, transport errors) is for the log only.
fn assert_no_fetch_details(page: &str) {
    for detail in [
        "answered HTTP",
        "larger than",
        "error sending request",
        "onnection refused",
        "tcp connect",
        "dns error",
        "in flight",
    ] {
        assert!(!page.contains(detail), "{detail:?} shown in:\n{page}");
    }
}

#[tokio::test]
async fn an_unreachable_document_gets_a_generic_page() {
    let server = server().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    for _ in 0..2 {
        let client_id = format!("http://{closed}/client.json");
        let response = Browser::default()
            .get(&server, &authorize_uri(&client_id, ""))
            .await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST);
        let page = response.text();
        assert!(
            page.contains("the client metadata document could not be fetched"),
            "{page}"
        );
        assert_no_fetch_details(&page);
    }
}

#[tokio::test]
async fn a_no_store_document_is_still_cached_for_a_minute() {
    let documents = document_server(true).await;
    let server = server().await;
    let client_id = format!("{}/no-store.json", documents.url);
    for _ in 0..3 {
        let page = server
            .consent_page(&mut Browser::default(), &client_id, "")
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    }
    assert_eq!(documents.fetches.load(Ordering::SeqCst), 1);
}

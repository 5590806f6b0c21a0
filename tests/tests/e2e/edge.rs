//! Envoy's edge limits, as a client meets them: the connection budget and request timeouts.

use std::time::Duration;

use mcp_auth_e2e::stack::{Stack, StackOptions};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const METADATA_REQUEST: &[u8] =
    b"GET /.well-known/oauth-authorization-server HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

fn listener_addr(stack: &Stack) -> String {
    stack.url("").trim_start_matches("http://").to_owned()
}

/// Sends one request on `conn` and returns what came back within 3 s (empty: closed).
async fn exchange(conn: &mut TcpStream) -> String {
    if conn.write_all(METADATA_REQUEST).await.is_err() {
        return String::new();
    }
    let mut buf = vec![0u8; 4096];
    match tokio::time::timeout(Duration::from_secs(3), conn.read(&mut buf)).await {
        Ok(Ok(n)) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        _ => String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_budget_envoy_refuses_new_connections_and_recovers() {
    let stack = Stack::start_with(StackOptions {
        listener_config: "max_connections: 3".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let addr = listener_addr(&stack);
    let mut held = Vec::new();
    for i in 0..3 {
        let mut conn = TcpStream::connect(&addr).await.unwrap();
        let answer = exchange(&mut conn).await;
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "connection {i}: {answer:?}"
        );
        held.push(conn);
    }
    let mut over = TcpStream::connect(&addr).await.unwrap();
    let answer = exchange(&mut over).await;
    assert!(
        answer.is_empty(),
        "a fourth connection was served: {answer:?}"
    );
    // One closed: there is room again.
    drop(held.pop());
    let mut served = false;
    for _ in 0..50 {
        let mut conn = TcpStream::connect(&addr).await.unwrap();
        if exchange(&mut conn).await.starts_with("HTTP/1.1 200") {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "no connection was served after one closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trickling_its_headers_is_cut_off() {
    let stack = Stack::start().await.unwrap();
    let mut conn = TcpStream::connect(listener_addr(&stack)).await.unwrap();
    conn.write_all(b"GET /.well-known/oauth-authorization-server HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    // Never finishes its headers: Envoy answers 408 or closes within request_headers_timeout.
    let mut buf = vec![0u8; 4096];
    let started = std::time::Instant::now();
    let read = tokio::time::timeout(Duration::from_secs(20), conn.read(&mut buf))
        .await
        .expect("the connection was still open after 20 s");
    let answer = String::from_utf8_lossy(&buf[..read.unwrap_or(0)]).into_owned();
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(8),
        "cut off too early"
    );
}

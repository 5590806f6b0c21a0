//! A small HTTP upstream that records the headers of every request it receives and answers
//! 200 with them as JSON: it shows what an MCP server behind the gateway would see. It also
//! plays an OAuth client's loopback redirect URI (RFC 8252 §7.3), whose request targets it
//! records.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Headers of one request, lower-cased names; repeated headers joined with `, `.
pub type Headers = BTreeMap<String, String>;

/// The running upstream; stopped on drop.
pub struct HeaderEcho {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: JoinHandle<()>,
}

/// One request received.
#[derive(Debug, Clone)]
struct Seen {
    /// The request target (path and query).
    target: String,
    headers: Headers,
}

impl HeaderEcho {
    pub async fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let record = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer(stream, Arc::clone(&record)));
            }
        });
        Ok(Self { addr, seen, task })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL to configure as the service's upstream.
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// A loopback redirect URI served here.
    pub fn callback_url(&self) -> String {
        format!("http://{}/callback", self.addr)
    }

    /// The headers of every request received so far.
    pub fn requests(&self) -> Vec<Headers> {
        self.seen
            .lock()
            .map(|seen| seen.iter().map(|s| s.headers.clone()).collect())
            .unwrap_or_default()
    }

    /// The query parameters of every request received so far, in order.
    pub fn queries(&self) -> Vec<BTreeMap<String, String>> {
        self.seen
            .lock()
            .map(|seen| {
                seen.iter()
                    .map(|s| {
                        let query = s.target.split_once('?').map_or("", |(_, q)| q);
                        url::form_urlencoded::parse(query.as_bytes())
                            .into_owned()
                            .collect()
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for HeaderEcho {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(mut stream: TcpStream, seen: Arc<Mutex<Vec<Seen>>>) {
    // One request per connection is enough: the reply says `connection: close`.
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let Ok(n) = stream.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        if buffer.len() > 64 * 1024 {
            return;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let target = head
        .lines()
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .unwrap_or_default()
        .to_owned();
    let mut headers = Headers::new();
    for line in head.lines().skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim().to_ascii_lowercase();
            let value = value.trim().to_owned();
            headers
                .entry(name)
                .and_modify(|v| *v = format!("{v}, {value}"))
                .or_insert(value);
        }
    }
    let body = serde_json::to_string(&headers).unwrap_or_default();
    if let Ok(mut seen) = seen.lock() {
        seen.push(Seen { target, headers });
    }
    let reply = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(reply.as_bytes()).await;
}

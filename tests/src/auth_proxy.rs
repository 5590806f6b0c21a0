//! A loopback HTTP/1.1 forwarder that adds `Authorization: Bearer <token>` to every request:
//! how a client that cannot send a token (the conformance suite's `server` runner) is run
//! through the gateway. One request per connection (`connection: close`), so each request
//! gets the header; bodies and streamed responses are copied through untouched.

use std::net::SocketAddr;

use anyhow::Result;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The running forwarder; stopped on drop.
pub struct AuthProxy {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl AuthProxy {
    /// Forwards to `upstream` (`host:port`), adding `token`.
    pub async fn start(upstream: SocketAddr, token: &str) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let header = format!("authorization: Bearer {token}\r\nconnection: close\r\n");
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let header = header.clone();
                tokio::spawn(async move {
                    let _ = forward(client, upstream, &header).await;
                });
            }
        });
        Ok(Self { addr, task })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for AuthProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(mut client: TcpStream, upstream: SocketAddr, header: &str) -> Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte).await? == 0 || head.len() > 64 * 1024 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.split("\r\n");
    let mut rewritten = format!("{}\r\n", lines.next().unwrap_or_default());
    for line in lines.filter(|l| !l.is_empty()) {
        let name = line
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if name != "connection" && name != "authorization" {
            rewritten.push_str(line);
            rewritten.push_str("\r\n");
        }
    }
    rewritten.push_str(header);
    rewritten.push_str("\r\n");
    let mut server = TcpStream::connect(upstream).await?;
    server.write_all(rewritten.as_bytes()).await?;
    tokio::io::copy_bidirectional(&mut client, &mut server).await?;
    Ok(())
}

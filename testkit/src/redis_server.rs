//! A real `redis-server` per test, on a unix socket in its own temp dir (no port to collide
//! on), killed on drop; it can be stopped and restarted on the same socket, as an outage.

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running (or stopped, restartable) Redis.
pub struct RedisServer {
    dir: tempfile::TempDir,
    child: Option<Child>,
    tls: Option<RedisTls>,
}

/// A TLS Redis's certificates (PEM files in its directory) and its ACL user.
#[derive(Debug, Clone)]
pub struct RedisTls {
    pub port: u16,
    pub ca_file: PathBuf,
    pub client_cert_file: PathBuf,
    pub client_key_file: PathBuf,
    pub user: String,
    pub password: String,
}

/// A fresh CA: its certificate (PEM) and an issuer to sign with.
pub fn test_ca() -> (String, rcgen::Issuer<'static, rcgen::KeyPair>) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    params.distinguished_name = name("mcp-auth test CA");
    let key = rcgen::KeyPair::generate().expect("a CA key");
    let cert = params.self_signed(&key).expect("a self-signed CA");
    (cert.pem(), rcgen::Issuer::new(params, key))
}

fn name(common_name: &str) -> rcgen::DistinguishedName {
    let mut name = rcgen::DistinguishedName::new();
    name.push(rcgen::DnType::CommonName, common_name);
    name
}

/// A certificate for `names` signed by `issuer`: (certificate PEM, key PEM).
pub fn issue_certificate(
    issuer: &rcgen::Issuer<'_, rcgen::KeyPair>,
    names: &[&str],
) -> (String, String) {
    let params =
        rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .expect("certificate params");
    let key = rcgen::KeyPair::generate().expect("a key");
    let cert = params
        .signed_by(&key, issuer)
        .expect("a signed certificate");
    (cert.pem(), key.serialize_pem())
}

impl RedisServer {
    /// Starts a Redis and waits until it answers `PING`. Panics (this is test support) with
    /// how to install `redis-server` when it cannot run.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir for redis-server");
        let mut server = Self {
            dir,
            child: None,
            tls: None,
        };
        server.restart();
        server
    }

    /// Starts a Redis that speaks only TLS on a loopback port, asks for a client certificate
    /// (Redis's default) and lets in only an ACL user with a password (`default` is off).
    pub fn start_tls() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir for redis-server");
        let (ca_pem, ca) = test_ca();
        let (server_cert, server_key) = issue_certificate(&ca, &["127.0.0.1", "localhost"]);
        let (client_cert, client_key) = issue_certificate(&ca, &["mcp-auth-client"]);
        let write = |name: &str, pem: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).expect("writing a test certificate");
            path
        };
        write("server.crt", &server_cert);
        write("server.key", &server_key);
        let tls = RedisTls {
            port: free_port(),
            ca_file: write("ca.crt", &ca_pem),
            client_cert_file: write("client.crt", &client_cert),
            client_key_file: write("client.key", &client_key),
            user: "mcp-auth".to_owned(),
            password: "test-password-1".to_owned(),
        };
        let mut server = Self {
            dir,
            child: None,
            tls: Some(tls),
        };
        server.restart();
        server
    }

    /// The TLS settings, for a Redis from [`RedisServer::start_tls`].
    pub fn tls(&self) -> Option<&RedisTls> {
        self.tls.as_ref()
    }

    /// The binary: `MCP_AUTH_REDIS_BIN`, else `redis-server` on `PATH`.
    fn binary() -> PathBuf {
        std::env::var_os("MCP_AUTH_REDIS_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("redis-server"))
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    /// The URL the components connect with.
    pub fn url(&self) -> String {
        match &self.tls {
            Some(tls) => format!(
                "rediss://{}:{}@127.0.0.1:{}/0",
                tls.user, tls.password, tls.port
            ),
            None => format!("unix://{}", self.socket().display()),
        }
    }

    /// The redis-server process id (for CPU and memory readings); 0 when stopped.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn client(&self) -> redis::Client {
        match &self.tls {
            Some(tls) => redis::Client::build_with_tls(
                self.url(),
                redis::TlsCertificates {
                    client_tls: Some(redis::ClientTlsConfig {
                        client_cert: std::fs::read(&tls.client_cert_file).expect("client cert"),
                        client_key: std::fs::read(&tls.client_key_file).expect("client key"),
                    }),
                    root_cert: Some(std::fs::read(&tls.ca_file).expect("CA")),
                },
            )
            .expect("a TLS client of the test Redis"),
            None => redis::Client::open(self.url()).expect("the test Redis URL parses"),
        }
    }

    /// A connection of the test's own (to seed or inspect state).
    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        self.client()
            .get_multiplexed_async_connection()
            .await
            .expect("a connection to the test Redis")
    }

    /// Kills it (SIGKILL: no goodbye to clients, like a crash).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same socket and directory (empty: nothing is saved), and
    /// waits until it answers.
    pub fn restart(&mut self) {
        self.stop();
        let socket = self.socket();
        let _ = std::fs::remove_file(&socket);
        let mut command = Command::new(Self::binary());
        command
            .args(["--port", "0", "--unixsocketperm", "700"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--unixsocket")
            .arg(&socket)
            .arg("--dir")
            .arg(self.dir.path());
        if let Some(tls) = &self.tls {
            let dir = self.dir.path();
            command
                .args(["--bind", "127.0.0.1", "--tls-port", &tls.port.to_string()])
                .arg("--tls-cert-file")
                .arg(dir.join("server.crt"))
                .arg("--tls-key-file")
                .arg(dir.join("server.key"))
                .arg("--tls-ca-cert-file")
                .arg(&tls.ca_file)
                .args(["--user", "default", "off"])
                .args([
                    "--user",
                    &tls.user,
                    "on",
                    &format!(">{}", tls.password),
                    "~*",
                    "&*",
                    "+@all",
                ]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run redis-server ({e}); install it: `cargo xtask install` or apt-get install -y redis-server"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !answers(&socket) {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING on {} within 10 s",
                socket.display()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Whether Redis answers on its unix socket: `+PONG`, or (a TLS Redis, whose `default`
/// user is off) a `-NOAUTH` error, which is an answer too.
fn answers(socket: &Path) -> bool {
    let Ok(mut stream) = UnixStream::connect(socket) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && (&reply == b"+PONG\r\n" || reply.starts_with(b"-NOAUTH"))
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

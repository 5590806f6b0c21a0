//! The Redis client every component builds from `redis:`: plain, or TLS (`rediss://`) with
//! the configured CA and client certificate. AUTH/ACL credentials ride in the URL
//! (`rediss://user:password@host:port/db`, best given through `REDIS_URL`).

use crate::config::RedisConfig;

/// Why no client could be built.
#[derive(Debug, thiserror::Error)]
pub enum RedisClientError {
    #[error("redis.url: {0}")]
    Url(#[from] redis::RedisError),
    #[error("cannot read {field} {path}: {source}")]
    Read {
        field: &'static str,
        path: String,
        source: std::io::Error,
    },
}

/// A client for `config` (it connects later, lazily).
pub fn client(config: &RedisConfig) -> Result<redis::Client, RedisClientError> {
    let tls_files = config.tls_ca_file.is_some() || config.tls_cert_file.is_some();
    if !tls_files {
        return Ok(redis::Client::open(config.url.as_str())?);
    }
    let read = |field: &'static str, path: &std::path::Path| {
        std::fs::read(path).map_err(|source| RedisClientError::Read {
            field,
            path: path.display().to_string(),
            source,
        })
    };
    let root_cert = config
        .tls_ca_file
        .as_deref()
        .map(|path| read("redis.tls_ca_file", path))
        .transpose()?;
    let client_tls = match (&config.tls_cert_file, &config.tls_key_file) {
        (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
            client_cert: read("redis.tls_cert_file", cert)?,
            client_key: read("redis.tls_key_file", key)?,
        }),
        _ => None,
    };
    Ok(redis::Client::build_with_tls(
        config.url.as_str(),
        redis::TlsCertificates {
            client_tls,
            root_cert,
        },
    )?)
}

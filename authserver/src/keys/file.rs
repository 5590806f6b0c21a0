//! Signing keys on disk: one `<kid>.json` file per key in `authserver.keys_dir`, readable by
//! the owner only (0600, directory 0700), written atomically (temporary file, then rename).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mcp_auth_gateway::config::SigningAlg;
use serde::{Deserialize, Serialize};

/// The persisted form of one key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyFile {
    pub kid: String,
    pub alg: SigningAlg,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
    /// From this instant on the key may sign; before it, it is only published.
    pub activates_at: u64,
    /// PKCS#8 DER, standard base64.
    pub pkcs8: String,
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFile")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .field("pkcs8", &"[redacted]")
            .finish()
    }
}

/// Why the key directory could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a key file: {problem}")]
    Invalid { path: PathBuf, problem: String },
}

impl KeyFile {
    pub fn der(&self) -> Result<Vec<u8>, String> {
        STANDARD.decode(&self.pkcs8).map_err(|e| e.to_string())
    }

    pub fn new(
        kid: String,
        alg: SigningAlg,
        created_at: u64,
        activates_at: u64,
        der: &[u8],
    ) -> Self {
        Self {
            kid,
            alg,
            created_at,
            activates_at,
            pkcs8: STANDARD.encode(der),
        }
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Creates `dir` (mode 0700) when missing.
pub fn ensure_dir(dir: &Path) -> Result<(), KeyFileError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(io_error(dir))
}

/// Every `*.json` key file in `dir`, in no particular order.
pub fn read_all(dir: &Path) -> Result<Vec<KeyFile>, KeyFileError> {
    let mut keys = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let path = entry.map_err(io_error(dir))?.path();
        let is_key = path.extension().is_some_and(|e| e == "json")
            && !path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
        if !is_key {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(io_error(&path))?;
        let key: KeyFile = serde_json::from_str(&text).map_err(|e| KeyFileError::Invalid {
            path: path.clone(),
            problem: e.to_string(),
        })?;
        keys.push(key);
    }
    Ok(keys)
}

/// Writes `key` to `dir/<kid>.json` with mode 0600.
pub fn write(dir: &Path, key: &KeyFile) -> Result<(), KeyFileError> {
    let json = serde_json::to_vec_pretty(key).map_err(|e| KeyFileError::Invalid {
        path: dir.join(&key.kid),
        problem: e.to_string(),
    })?;
    write_private(dir, &format!("{}.json", key.kid), &json)
}

/// Removes `dir/<kid>.json`.
pub fn remove(dir: &Path, kid: &str) -> Result<(), KeyFileError> {
    let path = dir.join(format!("{kid}.json"));
    std::fs::remove_file(&path).map_err(io_error(&path))
}

/// Writes `contents` to `dir/name` readable by the owner only, atomically.
pub fn write_private(dir: &Path, name: &str, contents: &[u8]) -> Result<(), KeyFileError> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).map_err(io_error(&tmp))?;
    file.write_all(contents).map_err(io_error(&tmp))?;
    file.sync_all().map_err(io_error(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io_error(&path))
}

/// Reads `dir/name`, or creates it with `make()` (0600) when it does not exist.
pub fn read_or_create(
    dir: &Path,
    name: &str,
    make: impl FnOnce() -> Vec<u8>,
) -> Result<Vec<u8>, KeyFileError> {
    let path = dir.join(name);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let bytes = make();
            write_private(dir, name, &bytes)?;
            Ok(bytes)
        }
        Err(source) => Err(KeyFileError::Io { path, source }),
    }
}

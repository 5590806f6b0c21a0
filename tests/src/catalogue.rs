//! The service catalogue's servers as the tests run them: each service of a gateway config
//! that has a `run` command is started the way `cargo xtask up` starts it
//! ([`mcp_auth_gateway::wrap::process_spec`]: stdio servers under the wrapper), in a
//! process group of its own, in a scratch directory, with the inherited `PATH` (which
//! `cargo xtask test` / `test-env` sets to the project's Node, npm packages and venvs).

use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use mcp_auth_gateway::GatewayConfig;
use mcp_auth_gateway::endpoint::Endpoint;

use crate::poll;

/// One running service process (its whole process group is stopped on drop).
pub struct ServiceProcess {
    pub name: String,
    child: Child,
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        // The wrapper's child (the stdio server) is in the same group.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every service process of `config`, started and answering.
pub struct Catalogue {
    pub processes: Vec<ServiceProcess>,
    _dir: tempfile::TempDir,
}

impl Catalogue {
    /// Starts each service of `config` that has a `run` command and waits until its
    /// upstream URL answers an MCP `initialize`.
    pub async fn start(config: &GatewayConfig) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut processes = Vec::new();
        for service in &config.services {
            let Some(spec) = mcp_auth_gateway::wrap::process_spec(service) else {
                continue;
            };
            let cwd = dir.path().join(&service.name);
            std::fs::create_dir_all(&cwd)?;
            let log = std::fs::File::create(dir.path().join(format!("{}.log", service.name)))?;
            let child = Command::new(&spec.program)
                .args(&spec.args)
                .envs(&spec.env)
                .current_dir(&cwd)
                .process_group(0)
                .stdin(Stdio::null())
                .stdout(Stdio::from(log.try_clone()?))
                .stderr(Stdio::from(log))
                .spawn()
                .with_context(|| {
                    format!(
                        "starting {} ({}); run `cargo xtask install` and set PATH with \
                         `eval \"$(cargo xtask test-env)\"`",
                        service.name, spec.program
                    )
                })?;
            processes.push(ServiceProcess {
                name: service.name.clone(),
                child,
            });
        }
        let catalogue = Self {
            processes,
            _dir: dir,
        };
        for service in &config.services {
            if service.upstream.run.is_none() {
                continue;
            }
            let url = service.upstream.url.to_string();
            let endpoint = Endpoint::from_url(&service.upstream.url)
                .context("a run service has an http upstream")?;
            let what = format!("{} to answer at {url}", service.name);
            poll::until(&what, Duration::from_secs(60), || async {
                tokio::net::TcpStream::connect((endpoint.host.as_str(), endpoint.port))
                    .await
                    .ok()
                    .map(|_| ())
            })
            .await
            .with_context(|| catalogue.log(&service.name))?;
        }
        Ok(catalogue)
    }

    /// What `service` printed (for failure messages).
    pub fn log(&self, service: &str) -> String {
        std::fs::read_to_string(self._dir.path().join(format!("{service}.log"))).unwrap_or_default()
    }
}

/// A loopback port free now.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

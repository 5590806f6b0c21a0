//! `cargo xtask images`: every container image of the product, with podman or docker, and
//! `cargo xtask compose-config`: what the compose stack in `deploy/compose/` runs from.
//!
//! Images are assembled from what the host built (release binaries, the filter's `.wasm`,
//! npm packages installed through the host's npm, PyPI wheels downloaded by the host's pip):
//! nothing compiles or downloads packages inside a container build but Debian's (Redis,
//! Python, tmux, Chromium), so a build needs no registry credentials. Each
//! Dockerfile in `deploy/images/` takes its base as a build argument that defaults to the
//! usual public image. Where that image can be neither found locally nor pulled (this
//! project's machines reach no registry) a stand-in is made here: Debian with `mmdebstrap`,
//! and Envoy's and Node's official binaries on it in their official images' layout.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use mcp_auth_gateway::GatewayConfig;
use mcp_auth_gateway::env::Env;
use mcp_auth_gateway::envoy::TLS_SDS_FILE;

use crate::envoy_config::{render_to, write_effective_config};
use crate::process::{output_of, run};
use crate::tools::{CATALOGUE_VENVS, NPM_PACKAGES, Tools, which};
use crate::wasm;

/// Prefix of every image this project builds (`localhost/` keeps docker and podman from
/// ever looking for them in a registry).
pub const IMAGE_PREFIX: &str = "localhost/mcp-mesh-auth";
/// Where the Envoy image carries the filter (the bootstrap rendered for containers loads it).
pub const CONTAINER_WASM: &str = "/etc/envoy/mcp_auth_filter.wasm";
/// Where the Envoy container has its bootstrap (and, with `listener.tls`, the certificate's
/// SDS document beside it).
pub const CONTAINER_ENVOY_DIR: &str = "/etc/envoy";
/// Version of npm `@modelcontextprotocol/server-everything` in the demo image.
const EVERYTHING_VERSION: &str = "2026.8.31";
/// The Python of the images' Debian 12 base, for which the host downloads wheels.
const IMAGE_PYTHON: &str = "3.11";
/// PyPI packages of the `fetchs` and `tmux` images, at the versions `cargo xtask install`
/// pins (tools::CATALOGUE_VENVS): what `up` runs, the images run.
const FETCHS_PACKAGES: &[&str] = &["mcp-fetch-streamablehttp-server", "mcp"];
const TMUX_PACKAGES: &[&str] = &["mcp-tmux-server", "mcp", "mcp-streamablehttp-proxy"];
/// npm package of the `playwright` image, at the version of tools::NPM_PACKAGES.
const PLAYWRIGHT_PACKAGE: &str = "@playwright/mcp";

/// The public images the Dockerfiles start from, the variable that replaces each, and how
/// to make a stand-in when it cannot be had.
const DEBIAN: Base = Base {
    var: "MCP_AUTH_BASE_IMAGE",
    image: "docker.io/library/debian:bookworm-slim",
    stand_in: "localhost/debian:bookworm-slim",
};
const ENVOY: Base = Base {
    var: "MCP_AUTH_ENVOY_IMAGE",
    image: "docker.io/envoyproxy/envoy:v1.40.0",
    stand_in: "localhost/mcp-mesh-auth/envoy-base:v1.40.0",
};
const NODE: Base = Base {
    var: "MCP_AUTH_NODE_IMAGE",
    image: "docker.io/library/node:22-bookworm-slim",
    stand_in: "localhost/mcp-mesh-auth/node-base:22",
};

struct Base {
    var: &'static str,
    image: &'static str,
    stand_in: &'static str,
}

/// Options of `cargo xtask images`.
pub struct ImagesOptions {
    /// Tag of every image, besides the workspace version.
    pub tag: String,
}

/// A container engine: podman (daemonless; preferred when installed) or docker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Podman,
    Docker,
}

impl Engine {
    /// `CONTAINER_ENGINE` if set, else podman when installed, else docker when its daemon
    /// answers.
    pub fn detect() -> Result<Self> {
        match std::env::var("CONTAINER_ENGINE").ok().as_deref() {
            Some("podman") => return Ok(Self::Podman),
            Some("docker") => return Ok(Self::Docker),
            Some(other) if !other.is_empty() => {
                bail!("CONTAINER_ENGINE={other:?}: expected podman or docker")
            }
            _ => {}
        }
        if which("podman").is_some() {
            return Ok(Self::Podman);
        }
        if which("docker").is_some()
            && Command::new("docker")
                .arg("info")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        {
            return Ok(Self::Docker);
        }
        bail!(
            "no container engine: podman is not installed and no docker daemon answers; \
             run `cargo xtask install` (installs podman)"
        )
    }

    pub fn program(self) -> &'static str {
        match self {
            Self::Podman => "podman",
            Self::Docker => "docker",
        }
    }

    pub fn command(self) -> Command {
        Command::new(self.program())
    }

    fn image_exists(self, image: &str) -> bool {
        let mut command = self.command();
        match self {
            Self::Podman => command.args(["image", "exists", image]),
            Self::Docker => command.args(["image", "inspect", image]),
        };
        command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn pull(self, image: &str) -> bool {
        println!("images: pulling {image}");
        self.command()
            .args(["pull", "--quiet", image])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// `build -f dockerfile -t tag… --build-arg k=v… context`.
    fn build(
        self,
        dockerfile: &Path,
        tags: &[String],
        args: &[(&str, String)],
        context: &Path,
    ) -> Result<()> {
        let mut command = self.command();
        command.arg("build");
        if self == Self::Podman {
            // Docker's format keeps HEALTHCHECK (OCI image config has no field for it).
            command.args(["--format", "docker"]);
        }
        // Build steps that install Debian packages reach the mirror as the host does.
        command.args(["--network", "host", "--quiet", "-f"]);
        command.arg(dockerfile);
        for tag in tags {
            command.arg("-t").arg(tag);
        }
        for (name, value) in args {
            command.arg("--build-arg").arg(format!("{name}={value}"));
        }
        command.arg(context).stdout(Stdio::null());
        run(&mut command)
    }
}

/// One image: its Dockerfile in `deploy/images/`, the files of its build context (source,
/// name in the context) and its build arguments.
struct Image {
    name: &'static str,
    dockerfile: &'static str,
    files: Vec<(PathBuf, &'static str)>,
    args: Vec<(&'static str, String)>,
}

/// Builds every image; prints what was built.
pub fn build(tools: &Tools, options: &ImagesOptions) -> Result<()> {
    let engine = Engine::detect()?;
    let root = &tools.root;
    let images_dir = root.join("deploy/images");
    let out = root.join("target/images");
    std::fs::create_dir_all(&out)?;

    run(Command::new("cargo").current_dir(root).args([
        "build",
        "--release",
        "-p",
        "mcp-auth-authserver",
        "-p",
        "mcp-auth-ext-authz",
    ]))?;
    let wasm = wasm::build(root)?;
    let release = root.join("target/release");
    let healthcheck = images_dir.join("healthcheck");

    let debian = base_image(engine, &DEBIAN, |engine| debian_stand_in(engine, &out))?;
    let envoy = base_image(engine, &ENVOY, |engine| {
        let image = Image {
            name: "envoy-base",
            dockerfile: "envoy-base.Dockerfile",
            files: vec![(tools.envoy_bin()?, "envoy")],
            args: vec![("BASE_IMAGE", debian.clone())],
        };
        build_one(
            engine,
            &images_dir,
            &out,
            &image,
            &[ENVOY.stand_in.to_owned()],
        )
    })?;
    let node = base_image(engine, &NODE, |engine| {
        let image = Image {
            name: "node-base",
            dockerfile: "node-base.Dockerfile",
            files: vec![(tools.node_bin()?, "node")],
            args: vec![("BASE_IMAGE", debian.clone())],
        };
        build_one(
            engine,
            &images_dir,
            &out,
            &image,
            &[NODE.stand_in.to_owned()],
        )
    })?;

    // The filter as a plain file (WasmPlugin `file://` or `http(s)://`, with its sha256).
    let plugin = out.join("plugin.wasm");
    std::fs::copy(&wasm, &plugin)
        .with_context(|| format!("cannot copy {} to {}", wasm.display(), plugin.display()))?;
    let sha256 = output_of(Command::new("sha256sum").arg(&plugin))?
        .split_whitespace()
        .next()
        .map(str::to_owned)
        .context("sha256sum printed nothing")?;
    std::fs::write(out.join("plugin.wasm.sha256"), format!("{sha256}\n"))?;

    let everything_app = npm_app(
        &out,
        "mcp-everything",
        &format!("@modelcontextprotocol/server-everything@{EVERYTHING_VERSION}"),
        tools,
    )?;
    let playwright_app = npm_app(
        &out,
        "mcp-playwright",
        &npm_pinned(PLAYWRIGHT_PACKAGE)?,
        tools,
    )?;
    let fetchs_wheels = pip_wheels(&out, "mcp-fetchs", FETCHS_PACKAGES, tools)?;
    let tmux_wheels = pip_wheels(&out, "mcp-tmux", TMUX_PACKAGES, tools)?;
    let server_files = |app: (PathBuf, &'static str)| {
        vec![
            app,
            (healthcheck.clone(), "mcp-auth-healthcheck"),
            (images_dir.join("if-enabled"), "mcp-auth-if-enabled"),
        ]
    };
    let images = [
        Image {
            name: "authserver",
            dockerfile: "authserver.Dockerfile",
            files: vec![
                (release.join("mcp-auth-authserver"), "mcp-auth-authserver"),
                (healthcheck.clone(), "mcp-auth-healthcheck"),
            ],
            args: vec![("BASE_IMAGE", debian.clone())],
        },
        Image {
            name: "ext-authz",
            dockerfile: "ext-authz.Dockerfile",
            files: vec![
                (release.join("mcp-auth-ext-authz"), "mcp-auth-ext-authz"),
                (healthcheck.clone(), "mcp-auth-healthcheck"),
            ],
            args: vec![("BASE_IMAGE", debian.clone())],
        },
        Image {
            name: "envoy",
            dockerfile: "envoy.Dockerfile",
            files: vec![
                (wasm.clone(), "mcp_auth_filter.wasm"),
                (healthcheck.clone(), "mcp-auth-healthcheck"),
            ],
            args: vec![("ENVOY_IMAGE", envoy)],
        },
        Image {
            name: "filter",
            dockerfile: "filter.Dockerfile",
            files: vec![(plugin.clone(), "plugin.wasm")],
            args: vec![],
        },
        Image {
            name: "redis",
            dockerfile: "redis.Dockerfile",
            files: vec![(healthcheck.clone(), "mcp-auth-healthcheck")],
            args: vec![("BASE_IMAGE", debian.clone())],
        },
        Image {
            name: "mcp-everything",
            dockerfile: "mcp-everything.Dockerfile",
            files: vec![
                (everything_app, "app"),
                (
                    images_dir.join("exit-on-sigterm.cjs"),
                    "exit-on-sigterm.cjs",
                ),
                (healthcheck.clone(), "mcp-auth-healthcheck"),
                (images_dir.join("if-enabled"), "mcp-auth-if-enabled"),
            ],
            args: vec![("NODE_IMAGE", node.clone())],
        },
        Image {
            name: "mcp-fetchs",
            dockerfile: "mcp-fetchs.Dockerfile",
            files: server_files((fetchs_wheels, "wheels")),
            args: vec![("BASE_IMAGE", debian.clone())],
        },
        Image {
            name: "mcp-tmux",
            dockerfile: "mcp-tmux.Dockerfile",
            files: server_files((tmux_wheels, "wheels")),
            args: vec![("BASE_IMAGE", debian.clone())],
        },
        Image {
            name: "mcp-playwright",
            dockerfile: "mcp-playwright.Dockerfile",
            files: server_files((playwright_app, "app")),
            args: vec![("NODE_IMAGE", node)],
        },
    ];
    let version = env!("CARGO_PKG_VERSION");
    let mut built = Vec::new();
    for image in &images {
        let repo = format!("{IMAGE_PREFIX}/{}", image.name);
        let tags = [
            format!("{repo}:{}", options.tag),
            format!("{repo}:{version}"),
        ];
        build_one(engine, &images_dir, &out, image, &tags)?;
        built.push(tags[0].clone());
    }

    println!("\nimages ({}):", engine.program());
    for tag in &built {
        println!("  {tag}");
    }
    println!(
        "  {} (sha256 {sha256}; as OCI image: {IMAGE_PREFIX}/filter)",
        plugin.display()
    );
    Ok(())
}

/// Copies `image`'s files into a fresh context under `out` and builds it.
fn build_one(
    engine: Engine,
    images_dir: &Path,
    out: &Path,
    image: &Image,
    tags: &[String],
) -> Result<()> {
    let context = out.join("context").join(image.name);
    if context.exists() {
        std::fs::remove_dir_all(&context)?;
    }
    std::fs::create_dir_all(&context)?;
    for (source, name) in &image.files {
        copy_into(source, &context.join(name))?;
    }
    println!("images: building {}", tags.join(", "));
    engine
        .build(
            &images_dir.join(image.dockerfile),
            tags,
            &image.args,
            &context,
        )
        .with_context(|| format!("building the {} image", image.name))
}

/// Copies a file (mode kept) or a directory tree; hard links where possible, since
/// binaries are large and the context is thrown away.
fn copy_into(source: &Path, target: &Path) -> Result<()> {
    if source.is_dir() {
        run(Command::new("cp").arg("-a").arg(source).arg(target))
    } else if std::fs::hard_link(source, target).is_ok() {
        Ok(())
    } else {
        std::fs::copy(source, target)
            .map(|_| ())
            .with_context(|| format!("cannot copy {} into the build context", source.display()))
    }
}

/// The base image to build on: `$var` or the public default when present or pullable,
/// else the stand-in (made by `make` unless it exists already).
fn base_image(
    engine: Engine,
    base: &Base,
    make: impl FnOnce(Engine) -> Result<()>,
) -> Result<String> {
    if let Some(image) = std::env::var(base.var).ok().filter(|v| !v.is_empty()) {
        if engine.image_exists(&image) || engine.pull(&image) {
            return Ok(image);
        }
        bail!("{}={image}: neither present nor pullable", base.var);
    }
    if engine.image_exists(base.image) {
        return Ok(base.image.to_owned());
    }
    if engine.image_exists(base.stand_in) {
        println!(
            "images: {} unavailable; using the local stand-in {}",
            base.image, base.stand_in
        );
        return Ok(base.stand_in.to_owned());
    }
    if engine.pull(base.image) {
        return Ok(base.image.to_owned());
    }
    println!(
        "images: cannot pull {}; making the stand-in {} ({} replaces it)",
        base.image, base.stand_in, base.var
    );
    make(engine)?;
    Ok(base.stand_in.to_owned())
}

/// Debian 12 made with mmdebstrap and imported, trimmed as the `-slim` images are.
fn debian_stand_in(engine: Engine, out: &Path) -> Result<()> {
    if which("mmdebstrap").is_none() {
        bail!("mmdebstrap is not installed; run `cargo xtask install`");
    }
    let tarball = out.join("debian-bookworm.tar");
    run(Command::new("mmdebstrap")
        .args([
            "--quiet",
            "--variant=apt",
            "--include=ca-certificates",
            "--dpkgopt=path-exclude=/usr/share/man/*",
            "--dpkgopt=path-exclude=/usr/share/doc/*",
            "--dpkgopt=path-include=/usr/share/doc/*/copyright",
            "--dpkgopt=path-exclude=/usr/share/locale/*",
            "--dpkgopt=path-exclude=/usr/share/info/*",
            r#"--customize-hook=rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*"#,
            "bookworm",
        ])
        .arg(&tarball))?;
    let imported = run(engine
        .command()
        .arg("import")
        .arg(&tarball)
        .arg(DEBIAN.stand_in)
        .stdout(Stdio::null()));
    std::fs::remove_file(&tarball)?;
    imported
}

/// `npm install --prefix <out>/npm/<name> <package>@<version>` on the host (its npm
/// configuration and trust store apply); returns the prefix.
fn npm_app(out: &Path, name: &str, spec: &str, tools: &Tools) -> Result<PathBuf> {
    let prefix = out.join("npm").join(name);
    let (package, version) = spec
        .rsplit_once('@')
        .filter(|(package, _)| !package.is_empty())
        .with_context(|| format!("{spec:?} is not <package>@<version>"))?;
    let manifest = prefix
        .join("node_modules")
        .join(package)
        .join("package.json");
    let installed = std::fs::read_to_string(&manifest)
        .is_ok_and(|text| text.contains(&format!("\"version\": \"{version}\"")));
    if !installed {
        std::fs::create_dir_all(&prefix)?;
        run(Command::new("npm")
            .env("PATH", tools.child_path())
            .args([
                "install",
                "--omit=dev",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                "--prefix",
            ])
            .arg(&prefix)
            .arg(spec))?;
    }
    Ok(prefix)
}

/// `<package>@<version>` as tools::NPM_PACKAGES pins it.
fn npm_pinned(package: &str) -> Result<String> {
    NPM_PACKAGES
        .iter()
        .find(|spec| {
            spec.rsplit_once('@')
                .is_some_and(|(name, _)| name == package)
        })
        .map(|spec| (*spec).to_owned())
        .with_context(|| format!("npm {package} is not among tools::NPM_PACKAGES"))
}

/// The wheels of `packages` (at the versions tools::CATALOGUE_VENVS pins) and all they
/// depend on, for [`IMAGE_PYTHON`] on x86_64 glibc, downloaded on the host by its pip (its
/// configuration and trust store apply) into `<out>/wheels/<name>`, with the pins in its
/// `requirements.txt`; returns the directory.
fn pip_wheels(out: &Path, name: &str, packages: &[&str], tools: &Tools) -> Result<PathBuf> {
    let pins = packages
        .iter()
        .map(|package| {
            CATALOGUE_VENVS
                .iter()
                .flat_map(|(_, pinned)| pinned.iter())
                .find(|(pinned, _)| pinned == package)
                .map(|(pinned, version)| format!("{pinned}=={version}"))
                .with_context(|| format!("PyPI {package} is not among tools::CATALOGUE_VENVS"))
        })
        .collect::<Result<Vec<_>>>()?;
    let dir = out.join("wheels").join(name);
    let requirements = format!("{}\n", pins.join("\n"));
    let done = dir.join("requirements.txt");
    if std::fs::read_to_string(&done).is_ok_and(|text| text == requirements) {
        return Ok(dir);
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    println!("images: downloading wheels for {name} ({})", pins.join(" "));
    run(Command::new(tools.python_bin())
        .args([
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            "--implementation",
            "cp",
            "--python-version",
            IMAGE_PYTHON,
            "--platform",
            "manylinux_2_36_x86_64",
            "--platform",
            "manylinux_2_17_x86_64",
            "--platform",
            "manylinux2014_x86_64",
            "--dest",
        ])
        .arg(&dir)
        .args(&pins))?;
    // Written last: its presence says the download finished.
    std::fs::write(&done, requirements)?;
    Ok(dir)
}

/// Options of `cargo xtask compose-config`.
pub struct ComposeConfigOptions {
    pub config: PathBuf,
    pub env_file: PathBuf,
    pub out: PathBuf,
}

/// Ports the compose file passes to containers (health checks, Redis, the MCP servers),
/// the variable that sets each, its default there, and where the gateway config has it.
const COMPOSE_PORTS: &[(&str, u16, &str)] = &[
    ("AUTHSERVER_PORT", 8081, "authserver.listen"),
    ("EXT_AUTHZ_PORT", 9191, "ext_authz.listen"),
    ("ENVOY_ADMIN_PORT", 9901, "admin.address"),
    (
        "MCP_EVERYTHING_PORT",
        3001,
        "services[everything].upstream.url",
    ),
    ("MCP_FETCHS_PORT", 3004, "services[fetchs].upstream.url"),
    (
        "MCP_PLAYWRIGHT_PORT",
        3005,
        "services[playwright].upstream.url",
    ),
    ("MCP_TMUX_PORT", 3106, "services[tmux].upstream.url"),
];

/// Writes `<out>/gateway.yaml` (the gateway config with the `MCP_<NAME>_ENABLED` switches of
/// the environment and `.env` applied) and `<out>/envoy.yaml` (its Envoy bootstrap, loading
/// the filter from where the Envoy image has it), and checks that the ports the compose file
/// is given agree with the config.
pub fn compose_config(tools: &Tools, options: &ComposeConfigOptions) -> Result<()> {
    let root = &tools.root;
    let env_file = root.join(&options.env_file);
    let mut env = if env_file.is_file() {
        parse_env_file(&std::fs::read_to_string(&env_file)?)
            .with_context(|| format!("in {}", env_file.display()))?
    } else {
        println!(
            "compose-config: no {} (copy .env.example); using the environment alone",
            env_file.display()
        );
        HashMap::new()
    };
    // As in compose, a variable of the environment wins over `.env`.
    env.extend(std::env::vars().filter(|(_, v)| !v.is_empty()));

    let out = root.join(&options.out);
    for name in ["gateway.yaml", "envoy.yaml"] {
        // `compose up` before this command makes the engine create a missing bind-mount
        // source as an empty directory.
        let path = out.join(name);
        if path.is_dir() {
            std::fs::remove_dir(&path).with_context(|| {
                format!("{} is a directory, not the file to write", path.display())
            })?;
        }
    }
    let (config_path, config) =
        write_effective_config(&root.join(&options.config), &out.join("gateway.yaml"), &env)?;
    check_compose_ports(&config, &env)?;
    // ext_authz and Envoy refuse to start without it; say so before `compose up`.
    mcp_auth_proto::handoff::HandoffKeys::from_env(|name| env.var(name))
        .context("set it in .env (`openssl rand -hex 32`): ext_authz and Envoy share it")?;
    let bootstrap = out.join("envoy.yaml");
    // The container mounts the SDS document of `listener.tls` beside its bootstrap.
    render_to(
        &config,
        Path::new(CONTAINER_WASM),
        &bootstrap,
        Some(Path::new(CONTAINER_ENVOY_DIR)),
    )?;
    println!("{}", config_path.display());
    println!("{}", bootstrap.display());
    if config.listener.tls.is_some() {
        println!("{}", out.join(TLS_SDS_FILE).display());
    }
    Ok(())
}

fn check_compose_ports(config: &GatewayConfig, env: &HashMap<String, String>) -> Result<()> {
    for &(var, default, field) in COMPOSE_PORTS {
        let in_config = match var {
            "AUTHSERVER_PORT" => Some(config.authserver.listen.port()),
            "EXT_AUTHZ_PORT" => Some(config.ext_authz.listen.port()),
            "ENVOY_ADMIN_PORT" => Some(config.admin.address.port()),
            // `services[<name>].upstream.url`; a switched-off service is not checked.
            _ => field
                .strip_prefix("services[")
                .and_then(|rest| rest.split_once(']'))
                .and_then(|(name, _)| config.services.iter().find(|s| s.name == name))
                .and_then(|s| s.upstream.url.port_or_known_default()),
        };
        let Some(in_config) = in_config else { continue };
        let given = match env.var(var) {
            Some(value) => value
                .parse::<u16>()
                .with_context(|| format!("{var}={value:?} is not a port"))?,
            None => default,
        };
        if given != in_config {
            bail!(
                "{field} is port {in_config} in the gateway config but the compose file gets \
                 {var}={given}: set {var}={in_config} in .env (or change the config)"
            );
        }
    }
    Ok(())
}

/// `KEY=VALUE` lines as compose reads `.env`: `#` comments, blank lines, optional `export `,
/// values optionally in single or double quotes.
fn parse_env_file(text: &str) -> Result<HashMap<String, String>> {
    let mut vars = HashMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            bail!("line {}: expected KEY=VALUE", number + 1);
        };
        let value = value.trim();
        let value = ['"', '\'']
            .iter()
            .find_map(|q| {
                value
                    .strip_prefix(*q)
                    .and_then(|v| v.strip_suffix(*q))
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| value.to_owned());
        vars.insert(key.trim().to_owned(), value);
    }
    Ok(vars)
}

/// Where `compose-config` writes by default, relative to the workspace root.
pub const COMPOSE_RENDERED: &str = "deploy/compose/.rendered";
/// The compose stack's gateway config.
pub const COMPOSE_GATEWAY: &str = "deploy/compose/gateway.yaml";
/// The compose stack's `.env`.
pub const COMPOSE_ENV: &str = "deploy/compose/.env";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_read_as_compose_reads_them() {
        let vars =
            parse_env_file("# comment\n\nGITHUB_CLIENT_ID=abc\nexport A='x y'\nB=\"q\"\nEMPTY=\n")
                .unwrap();
        assert_eq!(vars["GITHUB_CLIENT_ID"], "abc");
        assert_eq!(vars["A"], "x y");
        assert_eq!(vars["B"], "q");
        assert_eq!(vars["EMPTY"], "");
        assert!(parse_env_file("no equals sign").is_err());
    }
}

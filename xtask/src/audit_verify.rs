//! `cargo xtask audit-verify <file>...`: checks the hash chains of audit-log records.
//!
//! Reads NDJSON (one record per line, as the collector receives them) or gateway log lines
//! carrying `audit-log: {...}`, and reports per chain the records read and the first broken or
//! missing link (`audit_log::chain::verify`). Exits non-zero if any chain is broken, any record
//! line is malformed, or no record was found.

use anyhow::{bail, Context, Result};

pub fn run(args: &[String]) -> Result<()> {
    if args.is_empty() {
        bail!("usage: cargo xtask audit-verify <file>... (NDJSON records or gateway log lines)");
    }
    let mut text = String::new();
    for path in args {
        let bytes = std::fs::read(path).with_context(|| format!("reading {path}"))?;
        text.push_str(&String::from_utf8_lossy(&bytes));
        text.push('\n');
    }
    let report = audit_log::chain::verify(&text);
    for (chain, c) in &report.chains {
        match &c.first_error {
            None => println!("chain {chain}: {} records, intact", c.records),
            Some(e) => println!("chain {chain}: {} records, BROKEN: {e}", c.records),
        }
    }
    for (line, why) in &report.malformed {
        println!("line {line}: malformed record: {why}");
    }
    if report.records() == 0 {
        bail!("no audit records found");
    }
    if !report.ok() {
        bail!("audit chain verification failed");
    }
    println!(
        "{} records in {} chains: ok",
        report.records(),
        report.chains.len()
    );
    Ok(())
}

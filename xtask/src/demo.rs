//! `cargo xtask demo`.

use anyhow::{bail, Result};

pub fn run(_args: &[String]) -> Result<()> {
    bail!("demo: not written yet")
}

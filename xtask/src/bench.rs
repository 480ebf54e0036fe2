//! `cargo xtask bench`.

use anyhow::{bail, Result};

pub fn run(_args: &[String]) -> Result<()> {
    bail!("bench: not written yet")
}

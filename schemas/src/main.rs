//! `config-schemas <dist-dir>`: writes `<dist-dir>/schemas/<plugin>.schema.json` and Kong's
//! `<dist-dir>/<plugin>.meta.json` for every plugin (`cargo xtask dist` runs it).

use anyhow::{bail, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dist] = args.as_slice() else {
        bail!("usage: config-schemas <dist-dir>");
    };
    for path in config_schemas::write_all(std::path::Path::new(dist))? {
        println!("{}", path.display());
    }
    Ok(())
}

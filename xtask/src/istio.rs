//! `cargo xtask istio-manifests [--check]`: the checked-in Istio `WasmPlugin`s
//! (`istio/<plugin>.yaml`) rewritten from the example configs (`istio/config/<plugin>.json`),
//! the same rendering `cargo xtask dist --oci` pins into `dist/istio/`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::oci::{self, VERSION};

pub const HELP: &str = "\
usage: cargo xtask istio-manifests [--check]

Rewrites istio/<plugin>.yaml, the checked-in Istio WasmPlugin of each plugin (no sha256: that is
in the copies `cargo xtask dist --oci` writes to dist/istio/), from istio/config/<plugin>.json,
the pluginConfig Istio passes to the plugin. Run it after editing a config; the xtask tests fail
while a manifest differs from its config. Check the config itself first with
`cargo xtask validate <plugin> istio/config/<plugin>.json`.

options:
  --check     write nothing; list the manifests that are out of date, exit non-zero if any is
  -h, --help  print this help
";

pub fn run(args: &[String]) -> Result<()> {
    let mut check = false;
    for a in args {
        match a.as_str() {
            "--check" => check = true,
            other => bail!("istio-manifests: unknown argument `{other}` (only --check)"),
        }
    }
    let dir = oci::istio_dir();
    let stale = stale_manifests(&dir)?;
    if check {
        if stale.is_empty() {
            println!(
                "istio/: all {} manifests are current",
                oci::istio_modules().count()
            );
            return Ok(());
        }
        for (path, _) in &stale {
            println!("{}: out of date", shown(path));
        }
        bail!(
            "{} manifest(s) out of date: run cargo xtask istio-manifests",
            stale.len()
        );
    }
    for (path, want) in &stale {
        std::fs::write(path, want).with_context(|| format!("cannot write {}", path.display()))?;
        println!("{}: rewritten", shown(path));
    }
    println!(
        "istio/: {} manifests current ({} rewritten)",
        oci::istio_modules().count(),
        stale.len()
    );
    Ok(())
}

/// The manifests under `dir` that differ from what their config renders to, with that rendering.
fn stale_manifests(dir: &Path) -> Result<Vec<(PathBuf, String)>> {
    let mut stale = Vec::new();
    for place in oci::istio_modules() {
        let config = oci::example_config(place.plugin)?;
        let want = oci::render_wasmplugin(place.plugin, &config, VERSION, None)?;
        let path = dir.join(format!("{}.yaml", place.plugin));
        if std::fs::read_to_string(&path).ok().as_deref() != Some(want.as_str()) {
            stale.push((path, want));
        }
    }
    Ok(stale)
}

fn shown(path: &Path) -> String {
    path.strip_prefix(crate::workspace::root())
        .unwrap_or(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checked_in_manifests_are_what_the_command_writes() {
        let stale = stale_manifests(&oci::istio_dir()).unwrap();
        let names: Vec<String> = stale.iter().map(|(p, _)| shown(p)).collect();
        assert!(
            names.is_empty(),
            "out of date: {names:?}; run cargo xtask istio-manifests"
        );
    }

    #[test]
    fn a_missing_or_edited_manifest_is_stale_and_written_whole() {
        let dir = std::env::temp_dir().join(format!("xtask-istio-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(
            stale_manifests(&dir).unwrap().len(),
            oci::istio_modules().count()
        );
        for (path, want) in stale_manifests(&dir).unwrap() {
            std::fs::write(path, want).unwrap();
        }
        assert!(stale_manifests(&dir).unwrap().is_empty());
        let edited = dir.join("jwt-rbac.yaml");
        let text = std::fs::read_to_string(&edited).unwrap();
        std::fs::write(&edited, text.replace("priority", "priorities")).unwrap();
        let stale = stale_manifests(&dir).unwrap();
        assert_eq!(stale.len(), 1);
        assert_eq!(stale[0].0, edited);
        assert_eq!(
            stale[0].1,
            std::fs::read_to_string(oci::istio_dir().join("jwt-rbac.yaml")).unwrap()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

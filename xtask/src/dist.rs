//! `cargo xtask dist`: every plugin built for wasm32-wasip1 into `dist/`, with `SHA256SUMS`, the
//! config schemas (`dist/schemas/`), Kong's filter metadata (`dist/<plugin>.meta.json`) and
//! Kong-ready copies named without `-` (`dist/kong/<filter>.wasm` + `.meta.json`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::oci::sha256_hex;
use crate::tools::WASM_TARGET;
use crate::{exec, tools, workspace};

/// Builds the plugins and returns the written `.wasm` paths.
pub fn run() -> Result<Vec<PathBuf>> {
    tools::ensure_wasm_target()?;
    let wasm_opt = tools::ensure_wasm_opt()?;
    let meta = workspace::metadata()?;
    if meta.plugins.is_empty() {
        bail!("no plugin packages (cdylib crates under plugins/) found");
    }
    let names: Vec<&str> = meta.plugins.iter().map(|p| p.name.as_str()).collect();
    println!("plugins: {}", names.join(", "));
    // The suite links the five plugins without their entry points; built in the same cargo run
    // as the plugins' own modules, features would unify and give it five `_initialize`s. So:
    // the plugins in one run, each package built alone in a run of its own.
    let (alone, together): (Vec<&workspace::Plugin>, Vec<&workspace::Plugin>) = meta
        .plugins
        .iter()
        .partition(|p| workspace::BUILT_ALONE.contains(&p.name.as_str()));
    let mut runs: Vec<Vec<&workspace::Plugin>> = vec![together];
    runs.extend(alone.into_iter().map(|p| vec![p]));
    for run in runs.into_iter().filter(|r| !r.is_empty()) {
        let mut build = exec::cargo();
        build.args(["build", "--release", "--target", WASM_TARGET]);
        for p in run {
            build.args(["-p", &p.name]);
        }
        if let Some(flags) = remapped_rustflags() {
            build.env(RUSTFLAGS_VAR, flags);
        }
        exec::run(&mut build)?;
    }

    let dist = workspace::dist_dir();
    std::fs::create_dir_all(&dist).with_context(|| format!("cannot create {}", dist.display()))?;
    // Start from a clean slate so SHA256SUMS lists exactly what this build produced.
    for entry in std::fs::read_dir(&dist)?.flatten() {
        let path = entry.path();
        let stale = path.extension().is_some_and(|e| e == "wasm")
            || path.file_name().is_some_and(|n| n == "SHA256SUMS");
        if stale {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    // Images and Istio manifests of the previous build would pin stale modules: `--oci` rewrites.
    crate::oci::remove_outputs(&dist)?;
    let out_dir = meta.target_dir.join(WASM_TARGET).join("release");
    let mut sums = String::new();
    let mut written = Vec::new();
    let mut modules = Vec::new();
    for p in &meta.plugins {
        let built = out_dir.join(format!("{}.wasm", p.lib_name));
        let file_name = format!("{}.wasm", p.name);
        let dest = dist.join(&file_name);
        let input =
            std::fs::read(&built).with_context(|| format!("cannot read {}", built.display()))?;
        let before = input.len();
        let bytes = optimize(&wasm_opt, &built, &input, &meta.target_dir)?;
        std::fs::write(&dest, &bytes)
            .with_context(|| format!("cannot write {}", dest.display()))?;
        let _ = writeln!(sums, "{}  {file_name}", sha256_hex(&bytes));
        println!(
            "dist/{file_name:<28} {:>9} bytes ({:.1} KiB; {before} bytes before wasm-opt)",
            bytes.len(),
            bytes.len() as f64 / 1024.0
        );
        written.push(dest);
        modules.push((p.name.clone(), bytes));
    }
    write_schemas(&dist)?;
    sums.push_str(&write_kong_copies(&dist, &modules)?);
    let sums_path = dist.join("SHA256SUMS");
    std::fs::write(&sums_path, sums)
        .with_context(|| format!("cannot write {}", sums_path.display()))?;
    println!("dist/SHA256SUMS (check with: cd dist && sha256sum -c SHA256SUMS)");
    Ok(written)
}

/// The folder under `dist/` that holds the Kong-ready copies: point Kong's `wasm_filters_path`
/// at `dist/kong`.
pub const KONG_DIR: &str = "kong";

/// The name of `plugin`'s filter on Kong, which is the name of its file in [`KONG_DIR`]: the
/// package name with `_` for `-` (`jwt-rbac` -> `jwt_rbac`). Kong names a filter after its file
/// (`get_wasm_filters` in Kong's `kong/conf_loader/init.lua`), and Kong 3.9's Prometheus exporter
/// finds the filter of a metric `pw:<filter>:<name>` with the pattern `pw:([\w\.]+):`
/// (`parse_pw_key` in `kong/plugins/prometheus/wasmx.lua`), which a `-` does not match.
pub fn kong_filter_name(plugin: &str) -> String {
    plugin.replace('-', "_")
}

/// Writes `dist/kong/<filter>.wasm` (the same bytes as `dist/<plugin>.wasm`) and
/// `dist/kong/<filter>.meta.json` (a copy of `dist/<plugin>.meta.json`, which Kong reads next to
/// the `.wasm`) for every `(plugin, bytes)`, removes every other file of `dist/kong/`, and returns
/// the `SHA256SUMS` lines of the copies (`<sha256>  kong/<filter>.wasm`).
fn write_kong_copies(dist: &Path, modules: &[(String, Vec<u8>)]) -> Result<String> {
    let dir = dist.join(KONG_DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut sums = String::new();
    let mut written = Vec::new();
    for (plugin, bytes) in modules {
        let filter = kong_filter_name(plugin);
        let wasm = dir.join(format!("{filter}.wasm"));
        std::fs::write(&wasm, bytes).with_context(|| format!("cannot write {}", wasm.display()))?;
        let meta_from = dist.join(format!("{plugin}.meta.json"));
        let meta = dir.join(format!("{filter}.meta.json"));
        std::fs::copy(&meta_from, &meta).with_context(|| {
            format!("cannot copy {} to {}", meta_from.display(), meta.display())
        })?;
        let _ = writeln!(sums, "{}  {KONG_DIR}/{filter}.wasm", sha256_hex(bytes));
        println!("dist/{KONG_DIR}/{filter}.wasm + .meta.json: Kong filter `{filter}` ({plugin})");
        written.push(wasm);
        written.push(meta);
    }
    for entry in std::fs::read_dir(&dir)?.flatten() {
        let path = entry.path();
        if path.is_file() && !written.contains(&path) {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove stale {}", path.display()))?;
        }
    }
    Ok(sums)
}

/// The wasm features rustc emits for `wasm32-wasip1` that the modules use; wasm-opt accepts
/// these and adds none (a stripped module has no `target_features` section to read them from).
const WASM_FEATURES: [&str; 4] = [
    "--enable-bulk-memory",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-nontrapping-float-to-int",
];

/// binaryen's size optimisation of a built module (about 19 % smaller). `--gufa` (binaryen's
/// whole-module flow analysis: constants and types that reach each place) takes another 1.3 to
/// 3 KiB off each module, measured 2026-12-04 on all five (jwt-rbac 410,107 -> 408,835 bytes),
/// at no measurable cost in wasm-opt's time. The result is kept in
/// `target/wasm-opt-cache/`, keyed by the module's SHA-256 and the arguments, so an unchanged
/// module is not optimised again (under node that takes up to 20 s a module).
fn optimize(
    wasm_opt: &tools::WasmOpt,
    built: &Path,
    input: &[u8],
    target: &Path,
) -> Result<Vec<u8>> {
    let args = ["-Oz", "--gufa", "--converge"];
    let mut keyed = format!(
        "binaryen {} {WASM_FEATURES:?} {args:?}\n",
        tools::BINARYEN_VERSION
    )
    .into_bytes();
    keyed.extend_from_slice(input);
    let cache = target.join("wasm-opt-cache");
    std::fs::create_dir_all(&cache)
        .with_context(|| format!("cannot create {}", cache.display()))?;
    let cached = cache.join(format!("{}.wasm", sha256_hex(&keyed)));
    if let Ok(bytes) = std::fs::read(&cached) {
        println!(
            "wasm-opt: {} unchanged, {} reused",
            built.display(),
            cached.display()
        );
        return Ok(bytes);
    }
    let partial = cached.with_extension("partial");
    exec::run(
        wasm_opt
            .command()
            .args(WASM_FEATURES)
            .args(args)
            .arg(built)
            .arg("-o")
            .arg(&partial),
    )?;
    std::fs::rename(&partial, &cached)
        .with_context(|| format!("cannot move {} to {}", partial.display(), cached.display()))?;
    std::fs::read(&cached).with_context(|| format!("cannot read {}", cached.display()))
}

/// rustflags of the wasm target only, so the host artifacts (build scripts, proc macros) keep
/// their cache.
const RUSTFLAGS_VAR: &str = "CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS";

/// The wasm target's rustflags with every crates.io source directory of this machine
/// (`$CARGO_HOME/registry/src/<index>/`) remapped to `crates/`: the panic locations in the
/// modules then name `crates/serde_json-1.0.x/src/...`, not the builder's home, so the same
/// toolchain builds the same bytes on any machine (and the paths cost less room).
fn remapped_rustflags() -> Option<String> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let mut flags: Vec<String> = std::env::var(RUSTFLAGS_VAR)
        .ok()
        .map(|f| f.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let mut indexes: Vec<PathBuf> = std::fs::read_dir(cargo_home.join("registry").join("src"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    indexes.sort();
    // The variable is split on whitespace: a home with a space in it is left unmapped.
    indexes.retain(|p| !p.to_string_lossy().contains(char::is_whitespace));
    for index in indexes {
        flags.push(format!("--remap-path-prefix={}=crates", index.display()));
    }
    Some(flags.join(" "))
}

/// Writes `dist/schemas/<plugin>.schema.json` and Kong's `dist/<plugin>.meta.json` (next to the
/// `.wasm`, where Kong looks for it) with the `config-schemas` generator, which reads the
/// plugins' config types, then removes the ones it did not write (files are replaced, never
/// missing, while other commands read `dist/`).
fn write_schemas(dist: &Path) -> Result<()> {
    let printed = exec::output(
        exec::cargo()
            .args(["run", "--quiet", "-p", "config-schemas", "--"])
            .arg(dist),
    )?;
    let written: Vec<PathBuf> = printed.lines().map(PathBuf::from).collect();
    for path in &written {
        println!(
            "{}",
            path.strip_prefix(dist.parent().unwrap_or(dist))
                .unwrap_or(path)
                .display()
        );
    }
    let schemas = dist.join("schemas");
    let candidates = std::fs::read_dir(dist)?
        .chain(std::fs::read_dir(&schemas)?)
        .flatten()
        .map(|e| e.path());
    for path in candidates {
        let name = path.to_string_lossy();
        let ours = name.ends_with(".meta.json") || name.ends_with(".schema.json");
        if ours && !written.contains(&path) {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove stale {}", path.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Kong 3.9's exporter needs of a filter name (`[\w\.]+`), and `-` never.
    fn kong_exporter_matches(filter: &str) -> bool {
        !filter.is_empty()
            && filter
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    }

    #[test]
    fn kong_filter_names_have_no_dash_and_match_kongs_exporter() {
        for plugin in crate::oci::ISTIO_CHAIN.iter().map(|p| p.plugin) {
            let filter = kong_filter_name(plugin);
            assert!(kong_exporter_matches(&filter), "{filter}");
            assert_eq!(filter.replace('_', "-"), plugin);
        }
        assert_eq!(
            kong_filter_name("ratelimit-shared-data"),
            "ratelimit_shared_data"
        );
        assert!(!kong_exporter_matches("jwt-rbac"));
    }

    #[test]
    fn kong_copies_are_the_modules_with_their_metadata_and_nothing_else() {
        let dist = std::env::temp_dir().join(format!("xtask-dist-kong-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dist);
        std::fs::create_dir_all(dist.join(KONG_DIR)).unwrap();
        std::fs::write(dist.join("jwt-rbac.meta.json"), "{\"config_schema\": {}}").unwrap();
        std::fs::write(dist.join(KONG_DIR).join("stale.wasm"), "old").unwrap();
        let modules = vec![("jwt-rbac".to_owned(), b"\0asm-module".to_vec())];

        let sums = write_kong_copies(&dist, &modules).unwrap();

        let kong = dist.join(KONG_DIR);
        assert_eq!(
            std::fs::read(kong.join("jwt_rbac.wasm")).unwrap(),
            b"\0asm-module"
        );
        assert_eq!(
            std::fs::read_to_string(kong.join("jwt_rbac.meta.json")).unwrap(),
            "{\"config_schema\": {}}"
        );
        assert!(!kong.join("stale.wasm").exists());
        assert_eq!(
            sums,
            format!("{}  kong/jwt_rbac.wasm\n", sha256_hex(b"\0asm-module"))
        );
        std::fs::remove_dir_all(&dist).unwrap();
    }
}

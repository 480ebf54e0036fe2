//! `cargo xtask validate [--host envoy|kong] <plugin|suite> <config-file>`: a config file through
//! the configure step of the real module (`dist/<plugin>.wasm`) in the host harness, with the
//! plugin's own log lines, before anything is deployed.
//!
//! JSON is handed to the plugin byte for byte (its syntax errors keep their line and column);
//! YAML is converted to JSON first. An Istio `WasmPlugin` manifest stands for its
//! `spec.pluginConfig`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use host_harness::{Harness, LogLevel, Profile};
use serde_json::Value;

use crate::{dist, workspace};

pub const HELP: &str = "\
usage: cargo xtask validate [--host envoy|kong] <plugin|suite> <config-file>

Loads the real module dist/<plugin>.wasm (built with `cargo xtask dist` first when it is
missing; run that again after changing a plugin) into the host harness with the config file as
its plugin configuration, runs the configure step, and prints the plugin's own log lines (the
gateway would log the same; a refusal names the field, e.g. `rules[1].requires: ...`), then `ok`
on acceptance. Exits non-zero when the plugin refuses the config.

<plugin>       header-injection, jwt-rbac, ratelimit-shared-data, audit-log, circuit-breaker,
               gateway-suite (also `suite`: the five in one module, one section each)
<config-file>  JSON (given to the plugin as it is) or YAML (.yaml/.yml, or whatever is not
               JSON; converted to JSON first). An Istio WasmPlugin manifest stands for its
               spec.pluginConfig. On Envoy this is the `configuration` value of the Wasm
               filter; on Kong the `config` of the filter in filter_chains.

options:
  --host H        the gateway the harness imitates: envoy (also Istio; the default), kong
                  (Kong 3.9) or kong-3.8
  --cluster NAME  an Envoy cluster the gateway has (repeatable; default: only `upstream`).
                  A plugin that fetches while it configures (jwt-rbac's remote_jwks) logs an
                  error for a cluster not given here, as Envoy would, and is still accepted
  -h, --help      print this help

examples:
  cargo xtask validate jwt-rbac istio/config/jwt-rbac.json
  cargo xtask validate --host kong audit-log my-audit.yaml
";

/// What the command validates.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Plugin(String),
    /// The one module running every plugin (not built yet).
    Suite,
}

#[derive(Debug, PartialEq, Eq)]
struct Options {
    target: Target,
    host: Profile,
    file: PathBuf,
    /// Envoy clusters the harness accepts calls to; empty: the harness's default.
    clusters: Vec<String>,
}

fn host(name: &str) -> Result<Profile> {
    Ok(match name {
        "envoy" | "istio" => Profile::Envoy,
        "kong" | "kong-3.9" => Profile::Kong,
        "kong-3.8" => Profile::Kong38,
        other => bail!("validate: --host: no host `{other}` (envoy, kong or kong-3.8)"),
    })
}

fn parse_args(args: &[String]) -> Result<Options> {
    let mut profile = Profile::Envoy;
    let mut clusters = Vec::new();
    let mut positional = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--host" {
            let value = it
                .next()
                .context("validate: --host needs a value (envoy, kong or kong-3.8)")?;
            profile = host(value)?;
        } else if let Some(value) = a.strip_prefix("--host=") {
            profile = host(value)?;
        } else if a == "--cluster" {
            clusters.push(
                it.next()
                    .context("validate: --cluster needs a name")?
                    .clone(),
            );
        } else if let Some(value) = a.strip_prefix("--cluster=") {
            clusters.push(value.to_owned());
        } else if a.starts_with("--") {
            bail!("validate: unknown option `{a}` (--host, --cluster)");
        } else {
            positional.push(a);
        }
    }
    let [target, file] = positional[..] else {
        bail!(
            "validate: expected <plugin|suite> <config-file>, got {} argument(s) \
             (cargo xtask validate --help)",
            positional.len()
        );
    };
    Ok(Options {
        target: match target.as_str() {
            "suite" => Target::Suite,
            plugin => Target::Plugin(plugin.to_owned()),
        },
        host: profile,
        file: PathBuf::from(file),
        clusters,
    })
}

/// The configuration bytes the plugin gets for the file `path` holding `raw`, and a note on
/// what was taken from it when that is not the file as it is.
fn plugin_config(path: &Path, raw: &[u8]) -> Result<(Vec<u8>, Option<String>)> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let yaml = match ext.as_deref() {
        Some("json") => false,
        Some("yaml" | "yml") => true,
        _ => serde_json::from_slice::<Value>(raw).is_err(),
    };
    if !yaml {
        return Ok((raw.to_vec(), None));
    }
    let text = std::str::from_utf8(raw).context("the YAML file is not UTF-8")?;
    let value: Value = serde_norway::from_str(text).context("not valid YAML (nor JSON)")?;
    let is_wasm_plugin = value["kind"] == "WasmPlugin"
        && value["apiVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("extensions.istio.io/"));
    let (value, note) = if is_wasm_plugin {
        let name = value["metadata"]["name"].as_str().unwrap_or("?").to_owned();
        let Some(config) = value.get("spec").and_then(|s| s.get("pluginConfig")) else {
            bail!("the WasmPlugin `{name}` has no spec.pluginConfig");
        };
        let note = format!("the spec.pluginConfig of WasmPlugin `{name}`, as JSON");
        (config.clone(), Some(note))
    } else {
        (value, Some("the YAML converted to JSON".to_owned()))
    };
    Ok((serde_json::to_vec(&value)?, note))
}

/// What the configure step said.
#[derive(Debug)]
struct Outcome {
    accepted: bool,
    /// The plugin's log lines at info and above (Envoy's default level), `[level] message`.
    lines: Vec<String>,
}

/// Runs `plugin`'s configure step on `host` with `config`, the module being `wasm`, with the
/// Envoy clusters `clusters` (empty: the harness's default, `upstream`).
fn configure(
    plugin: &str,
    host: Profile,
    wasm: &Path,
    config: &[u8],
    clusters: &[String],
) -> Result<Outcome> {
    let filter = if host.is_kong() {
        dist::kong_filter_name(plugin)
    } else {
        plugin.to_owned()
    };
    let mut builder = Harness::builder();
    if !clusters.is_empty() {
        builder = builder.clusters(clusters);
    }
    let harness = builder
        .profile(host)
        .plugin_config(config)
        .workers(1)
        .filter_name(&filter)
        .root_id(plugin)
        .vm_id(plugin)
        .log_level(LogLevel::Info)
        .build_from_file(wasm)
        .with_context(|| format!("loading {}", wasm.display()))?;
    let configured = harness.configure();
    let lines: Vec<String> = harness
        .logs()
        .into_iter()
        .filter(|l| l.level >= LogLevel::Info)
        .map(|l| {
            format!(
                "[{}] {}",
                format!("{:?}", l.level).to_lowercase(),
                l.message
            )
        })
        .collect();
    let accepted = match configured {
        Ok(accepted) => accepted,
        Err(e) => {
            for line in &lines {
                println!("{line}");
            }
            bail!("the module trapped in its configure step: {e}");
        }
    };
    Ok(Outcome { accepted, lines })
}

/// `dist/<plugin>.wasm`, built first when it is missing.
fn module(plugin: &str) -> Result<PathBuf> {
    let path = workspace::dist_dir().join(format!("{plugin}.wasm"));
    if !path.is_file() {
        println!(
            "{} is missing: building it (cargo xtask dist)",
            path.display()
        );
        dist::run()?;
        if !path.is_file() {
            bail!("cargo xtask dist did not write {}", path.display());
        }
    }
    Ok(path)
}

pub fn run(args: &[String]) -> Result<()> {
    let o = parse_args(args)?;
    let plugin = match o.target {
        Target::Suite => "gateway-suite".to_owned(),
        Target::Plugin(p) => p,
    };
    let known: Vec<String> = workspace::metadata()?
        .plugins
        .into_iter()
        .map(|p| p.name)
        .collect();
    if !known.contains(&plugin) {
        bail!(
            "validate: no plugin `{plugin}` (known: {}, or suite)",
            known.join(", ")
        );
    }
    let raw = std::fs::read(&o.file).with_context(|| format!("reading {}", o.file.display()))?;
    let (config, note) =
        plugin_config(&o.file, &raw).with_context(|| format!("reading {}", o.file.display()))?;
    let wasm = module(&plugin)?;
    println!(
        "{plugin} on {}: configure with {}{}",
        o.host.name(),
        o.file.display(),
        note.map(|n| format!(" ({n})")).unwrap_or_default()
    );
    let outcome = configure(&plugin, o.host, &wasm, &config, &o.clusters)?;
    for line in &outcome.lines {
        println!("{line}");
    }
    if !outcome.accepted {
        bail!("{plugin} refused {}", o.file.display());
    }
    match outcome
        .lines
        .iter()
        .filter(|l| l.starts_with("[error]"))
        .count()
    {
        0 => println!("ok"),
        n => println!(
            "ok (the config is accepted; the {n} error line(s) above come from what the plugin \
             did once configured, e.g. a call to a cluster not given with --cluster)"
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn arguments_name_the_target_the_host_and_the_file() {
        let o = parse_args(&args(&["jwt-rbac", "c.json"])).unwrap();
        assert_eq!(o.target, Target::Plugin("jwt-rbac".into()));
        assert_eq!((o.host, o.file), (Profile::Envoy, PathBuf::from("c.json")));
        let o = parse_args(&args(&["--host", "kong", "audit-log", "c.yaml"])).unwrap();
        assert_eq!(o.host, Profile::Kong);
        let o = parse_args(&args(&["suite", "c.yaml", "--host=kong-3.8"])).unwrap();
        assert_eq!((o.target, o.host), (Target::Suite, Profile::Kong38));
        let o = parse_args(&args(&["--cluster", "idp", "jwt-rbac", "c", "--cluster=b"])).unwrap();
        assert_eq!(o.clusters, ["idp", "b"]);
        for bad in [
            &[][..],
            &["jwt-rbac"],
            &["jwt-rbac", "a.json", "b.json"],
            &["--host", "nginx", "jwt-rbac", "a.json"],
            &["jwt-rbac", "a.json", "--host"],
            &["jwt-rbac", "a.json", "--cluster"],
            &["--strict", "jwt-rbac", "a.json"],
        ] {
            assert!(parse_args(&args(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn suite_is_the_gateway_suite_module() {
        let e = run(&args(&["suite", "/nonexistent/any.json"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("reading /nonexistent/any.json"), "{e}");
    }

    #[test]
    fn json_is_passed_as_is_and_yaml_converted() {
        let json = b"{ \"a\": [1, 2] }\n";
        let (bytes, note) = plugin_config(Path::new("c.json"), json).unwrap();
        assert_eq!((bytes.as_slice(), note), (&json[..], None));
        // A broken .json goes to the plugin as it is: its message has the line and column.
        let (bytes, _) = plugin_config(Path::new("c.json"), b"a: 1").unwrap();
        assert_eq!(bytes, b"a: 1");
        for name in ["c.yaml", "c.yml", "c.conf"] {
            let (bytes, note) = plugin_config(Path::new(name), b"a:\n  - 1\n  - x\n").unwrap();
            assert_eq!(bytes, br#"{"a":[1,"x"]}"#, "{name}");
            assert!(note.is_some_and(|n| n.contains("YAML")), "{name}");
        }
        assert!(plugin_config(Path::new("c.yaml"), b"a: [1\n").is_err());
    }

    #[test]
    fn a_wasm_plugin_manifest_stands_for_its_plugin_config() {
        let yaml = std::fs::read(oci::istio_dir().join("jwt-rbac.yaml")).unwrap();
        let (bytes, note) = plugin_config(Path::new("jwt-rbac.yaml"), &yaml).unwrap();
        let config: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(config, oci::example_config("jwt-rbac").unwrap());
        assert!(note.is_some_and(|n| n.contains("WasmPlugin `jwt-rbac`")));
    }

    use crate::oci;

    /// Where `cargo xtask test` put the build (it runs `dist` first), else `dist/`.
    fn built(plugin: &str) -> Option<PathBuf> {
        let under_xtask_test = std::env::var_os("SUITE_DIST_DIR");
        let dir = under_xtask_test
            .clone()
            .map(PathBuf::from)
            .unwrap_or_else(workspace::dist_dir);
        let path = dir.join(format!("{plugin}.wasm"));
        if path.is_file() {
            return Some(path);
        }
        assert!(under_xtask_test.is_none(), "{} missing", path.display());
        eprintln!("{} not built: skipped (cargo xtask dist)", path.display());
        None
    }

    #[test]
    fn every_example_config_is_accepted_by_its_module() {
        for place in oci::ISTIO_CHAIN {
            let Some(wasm) = built(place.plugin) else {
                continue;
            };
            let path = oci::istio_dir()
                .join("config")
                .join(format!("{}.json", place.plugin));
            let (config, _) = plugin_config(&path, &std::fs::read(&path).unwrap()).unwrap();
            let outcome = configure(place.plugin, Profile::Envoy, &wasm, &config, &[]).unwrap();
            assert!(outcome.accepted, "{}: {:?}", place.plugin, outcome.lines);
        }
    }

    #[test]
    fn a_typo_is_refused_with_its_field_path_on_envoy_and_kong() {
        let Some(wasm) = built("jwt-rbac") else {
            return;
        };
        let yaml = b"providers:\n  demo:\n    issuer: https://issuer.example.com\n    \
                     jwks: {keys: [{kty: oct, kid: demo, k: ZGVtby1vbmx5LXNlY3JldC0wMTIzNDU2Nzg5YWJjZGVm}]}\n    \
                     algorithms: [HS256]\nrules:\n  - requires: {provider: demo}\n    matchh: {}\n";
        let (config, _) = plugin_config(Path::new("typo.yaml"), yaml).unwrap();
        let fixed = String::from_utf8(config.clone())
            .unwrap()
            .replace("matchh", "match");
        for host in [Profile::Envoy, Profile::Kong] {
            let outcome = configure("jwt-rbac", host, &wasm, &config, &[]).unwrap();
            assert!(!outcome.accepted, "{}", host.name());
            assert!(
                outcome.lines.iter().any(|l| l.starts_with("[error]")
                    && l.contains("rules[0]")
                    && l.contains("matchh")),
                "{}: {:?}",
                host.name(),
                outcome.lines
            );
            let outcome = configure("jwt-rbac", host, &wasm, fixed.as_bytes(), &[]).unwrap();
            assert!(outcome.accepted, "{}: {:?}", host.name(), outcome.lines);
        }
    }
}

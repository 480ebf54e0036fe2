//! Every config the repo shows a user, checked the way a gateway would use it:
//!
//! - plugin configs in `docs/*.md` code blocks and in every YAML file of the repo (Envoy wasm
//!   filters' `configuration`, Istio `WasmPlugin` `pluginConfig`, Kong `filter_chains` filter
//!   `config` and Kong 3.9 `plugins` entities named after a plugin, plain JSON blocks in
//!   `docs/<plugin>.md`) validate against the plugin's JSON Schema
//!   (`dist/schemas/<plugin>.schema.json`; Kong's also against `dist/<plugin>.meta.json`, draft 4)
//!   AND load in the harness (`on_configure` of the real `dist/<plugin>.wasm` returns true).
//!   A block preceded by `<!-- invalid-example -->` must be refused by both instead; a JSON
//!   block preceded by `<!-- config: <plugin> -->` is that plugin's config on any page.
//! - every full Envoy config (a YAML file or docs block with `static_resources`) passes
//!   `envoy --mode validate` with the pinned Envoy (which also loads the wasm and runs
//!   `on_configure`), local paths substituted: plugin wasm files are the built ones, an
//!   access-log file whose directory is missing here goes to a scratch directory;
//! - every compose file parses and names only local files that exist (`dist/` entries count
//!   when `cargo xtask dist` produces them);
//! - a Kong filter (`filter_chains` filter or `plugins` entity) of ours is named as the file
//!   `cargo xtask dist` writes for Kong, `dist/kong/<plugin with _ for ->.wasm` (`jwt_rbac`):
//!   Kong names a filter after its file, and Kong 3.9's Prometheus exporter cannot match a
//!   filter name with `-`;
//! - the schemas and Kong metadata in `dist/` are well-formed (Kong's is valid draft 4); that
//!   they are current is checked by `config-schemas`' own test, which links the config types.
//!
//! Nothing is hard-coded but the plugin list: files are found by walking the repo (outside
//! `target/`, `.tools/`, `.git/`, `dist/`), and each example's plugin is told by its wasm file
//! name, filter name or OCI image name. A JSON block in `docs/<plugin>.md` is a config when at
//! least half of its top-level keys are the plugin's top-level fields; otherwise it is a fragment
//! (a rule, a `match`, a record) and is skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use host_harness::{Harness, LogLevel, Profile};
use serde_json::Value;
use suite_tests::paths;

const PLUGINS: &[&str] = &[
    "header-injection",
    "jwt-rbac",
    "ratelimit-shared-data",
    "audit-log",
    "circuit-breaker",
    "gateway-suite",
];

/// The marker, on the last non-blank line before a docs code block, of an example that must be
/// refused.
const INVALID_MARKER: &str = "<!-- invalid-example -->";

/// The marker, among the comments right above a docs JSON block, that makes it a config of the
/// named plugin on any page: `<!-- config: jwt-rbac -->`.
const CONFIG_MARKER: &str = "<!-- config:";

/// Which gateway an example is written for: decides the harness profile and Kong's extra check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gateway {
    Envoy,
    Istio,
    Kong,
    /// A plain JSON block in a plugin's reference page.
    Plain,
}

/// The config as the gateway hands it over.
#[derive(Debug, Clone)]
enum Given {
    /// A string: passed as-is (Envoy `StringValue`, Kong string `config`).
    Text(String),
    /// A structured value: the gateway passes its JSON encoding.
    Json(Value),
}

impl Given {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Given::Text(t) => t.clone().into_bytes(),
            Given::Json(v) => serde_json::to_vec(v).unwrap(),
        }
    }

    /// The JSON a schema checks (an empty string is the empty config, `{}`).
    fn json(&self) -> Result<Value, String> {
        match self {
            Given::Text(t) if t.trim().is_empty() => Ok(Value::Object(Default::default())),
            Given::Text(t) => serde_json::from_str(t).map_err(|e| format!("not JSON: {e}")),
            Given::Json(v) => Ok(v.clone()),
        }
    }
}

#[derive(Debug, Clone)]
struct Example {
    plugin: String,
    /// `file:line`.
    at: String,
    gateway: Gateway,
    config: Given,
    expect_invalid: bool,
}

/// One YAML or docs source: its text, where it starts and whether it is marked invalid.
struct Source<'a> {
    file: &'a str,
    /// Line number of the text's first line in the file.
    first_line: usize,
    text: &'a str,
    expect_invalid: bool,
}

impl Source<'_> {
    /// The file line of the first occurrence of `needle` at or after byte `from`; the cursor
    /// moves past it so repeated keys are found in document order.
    fn line_of(&self, needle: &str, from: &mut usize) -> usize {
        match self.text[*from..].find(needle) {
            Some(pos) => {
                let abs = *from + pos;
                *from = abs + needle.len();
                self.first_line + self.text[..abs].matches('\n').count()
            }
            None => self.first_line,
        }
    }
}

fn repo() -> PathBuf {
    paths::workspace_root()
}

fn rel(path: &Path) -> String {
    path.strip_prefix(repo())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Every file of the repo: in a git checkout, what git tracks plus untracked files it does not
/// ignore (so a user's own ignored `my-envoy.yaml` is not taken for an example); elsewhere,
/// every file except build output, tools and git.
fn repo_files() -> Vec<PathBuf> {
    let listed = std::process::Command::new("git")
        .arg("-C")
        .arg(repo())
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success());
    if let Some(listed) = listed {
        let mut out: Vec<PathBuf> = listed
            .stdout
            .split(|b| *b == 0)
            .filter(|name| !name.is_empty())
            .map(|name| repo().join(String::from_utf8_lossy(name).as_ref()))
            .filter(|path| path.is_file())
            .collect();
        out.sort();
        return out;
    }
    walk_repo()
}

fn walk_repo() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if !matches!(
                    name.as_str(),
                    "target" | ".tools" | ".git" | "dist" | "node_modules"
                ) {
                    walk(&path, out);
                }
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo(), &mut out);
    out
}

fn is_yaml(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "yaml" || e == "yml")
}

/// Every document of a YAML text, as JSON values.
fn yaml_documents(text: &str) -> Result<Vec<Value>, String> {
    use serde::Deserialize;
    let mut docs = Vec::new();
    for doc in serde_norway::Deserializer::from_str(text) {
        let value = serde_norway::Value::deserialize(doc).map_err(|e| e.to_string())?;
        if value.is_null() {
            continue;
        }
        docs.push(serde_json::to_value(&value).map_err(|e| e.to_string())?);
    }
    Ok(docs)
}

/// The plugin a wasm file name, image or filter name stands for: `.../header-injection.wasm`,
/// `oci://registry/x/jwt-rbac:0.1.0`, `ratelimit-shared-data`.
fn plugin_named(name: &str) -> Option<&'static str> {
    let last = name.rsplit('/').next().unwrap_or(name);
    let last = last.split(':').next().unwrap_or(last);
    let last = last.strip_suffix(".wasm").unwrap_or(last);
    PLUGINS.iter().copied().find(|p| *p == last)
}

/// The name of `plugin`'s filter on Kong: the file `cargo xtask dist` writes to `dist/kong/`
/// (`xtask::dist::kong_filter_name`: `-` becomes `_`).
fn kong_filter_name(plugin: &str) -> String {
    plugin.replace('-', "_")
}

/// The plugin a Kong filter or plugin name stands for: `Ok(None)` for a name that is none of
/// ours (Kong's own plugins), an error for one of ours named with `-` (`dist/kong/` has no such
/// file, and Kong 3.9's exporter, `pw:([\w\.]+):`, cannot match its metrics).
fn kong_plugin_named(name: &str) -> Result<Option<&'static str>, String> {
    if let Some(plugin) = PLUGINS
        .iter()
        .copied()
        .find(|p| kong_filter_name(p) == name)
    {
        return Ok(Some(plugin));
    }
    match PLUGINS.iter().copied().find(|p| *p == name) {
        Some(plugin) => Err(format!(
            "Kong filter `{name}`: name it `{}` (the file cargo xtask dist writes to dist/kong/; \
             Kong 3.9's Prometheus exporter cannot match a filter name with `-`)",
            kong_filter_name(plugin)
        )),
        None => Ok(None),
    }
}

/// Plugin configs inside one parsed YAML document, in document order.
fn extract(
    v: &Value,
    src: &Source,
    cursor: &mut usize,
    out: &mut Vec<Example>,
    errors: &mut Vec<String>,
) {
    match v {
        Value::Object(obj) => {
            // Envoy: a wasm PluginConfig (`name`, `root_id`, `vm_config`, `configuration`).
            if let (Some(vm), Some(configuration)) =
                (obj.get("vm_config"), obj.get("configuration"))
            {
                let line = src.line_of("configuration:", cursor);
                let names = [
                    vm.pointer("/code/local/filename"),
                    vm.pointer("/code/remote/http_uri/uri"),
                    obj.get("root_id"),
                    obj.get("name"),
                    vm.get("vm_id"),
                ];
                let plugin = names
                    .iter()
                    .flatten()
                    .filter_map(|n| n.as_str())
                    .find_map(plugin_named);
                let config = match configuration.get("value") {
                    Some(Value::String(s)) => Some(Given::Text(s.clone())),
                    Some(other) => Some(Given::Json(other.clone())),
                    None => None,
                };
                push(src, line, plugin, Gateway::Envoy, config, out, errors);
                return;
            }
            // Istio: a WasmPlugin resource.
            if obj.get("kind").and_then(Value::as_str) == Some("WasmPlugin") {
                let spec = obj.get("spec").cloned().unwrap_or_default();
                if let Some(config) = spec.get("pluginConfig") {
                    let line = src.line_of("pluginConfig:", cursor);
                    let plugin = [spec.get("url"), v.pointer("/metadata/name")]
                        .iter()
                        .flatten()
                        .filter_map(|n| n.as_str())
                        .find_map(plugin_named);
                    let config = Some(Given::Json(config.clone()));
                    push(src, line, plugin, Gateway::Istio, config, out, errors);
                }
                return;
            }
            // Kong: `filter_chains[].filters[]` with `name` and `config`.
            if let Some(Value::Array(chains)) = obj.get("filter_chains") {
                for chain in chains {
                    let Some(Value::Array(filters)) = chain.get("filters") else {
                        continue;
                    };
                    for filter in filters {
                        let name = filter.get("name").and_then(Value::as_str).unwrap_or("");
                        let Some(config) = filter.get("config") else {
                            continue;
                        };
                        let line = src.line_of("config:", cursor);
                        let config = match config {
                            Value::String(s) => Given::Text(s.clone()),
                            other => Given::Json(other.clone()),
                        };
                        let plugin = match kong_plugin_named(name) {
                            Ok(plugin) => plugin,
                            Err(e) => {
                                errors.push(format!("{}:{line}: {e}", src.file));
                                continue;
                            }
                        };
                        push(src, line, plugin, Gateway::Kong, Some(config), out, errors);
                    }
                }
            }
            // Kong 3.9: filters as `plugins` entities; others' plugins are not ours to check.
            if let Some(Value::Array(plugins)) = obj.get("plugins") {
                for entry in plugins {
                    let name = entry.get("name").and_then(Value::as_str).unwrap_or("");
                    let plugin = match kong_plugin_named(name) {
                        Ok(plugin) => plugin,
                        Err(e) => {
                            let line = src.line_of("config:", cursor);
                            errors.push(format!("{}:{line}: {e}", src.file));
                            continue;
                        }
                    };
                    let (Some(plugin), Some(config)) = (plugin, entry.get("config")) else {
                        continue;
                    };
                    let line = src.line_of("config:", cursor);
                    let config = match config {
                        Value::String(s) => Given::Text(s.clone()),
                        other => Given::Json(other.clone()),
                    };
                    push(
                        src,
                        line,
                        Some(plugin),
                        Gateway::Kong,
                        Some(config),
                        out,
                        errors,
                    );
                }
            }
            for value in obj.values() {
                extract(value, src, cursor, out, errors);
            }
        }
        Value::Array(items) => {
            for item in items {
                extract(item, src, cursor, out, errors);
            }
        }
        _ => {}
    }
}

fn push(
    src: &Source,
    line: usize,
    plugin: Option<&str>,
    gateway: Gateway,
    config: Option<Given>,
    out: &mut Vec<Example>,
    errors: &mut Vec<String>,
) {
    let at = format!("{}:{line}", src.file);
    let Some(plugin) = plugin else {
        errors.push(format!(
            "{at}: a {gateway:?} wasm filter config, but its wasm file, image or name is none of {PLUGINS:?}"
        ));
        return;
    };
    let Some(config) = config else {
        return;
    };
    out.push(Example {
        plugin: plugin.to_owned(),
        at,
        gateway,
        config,
        expect_invalid: src.expect_invalid,
    });
}

/// A fenced code block of a markdown file.
struct Block {
    lang: String,
    /// Line number of the block's first content line.
    first_line: usize,
    text: String,
    expect_invalid: bool,
    /// The plugin a `<!-- config: <plugin> -->` marker names.
    plugin: Option<String>,
}

fn markdown_blocks(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim_start();
        if let Some(lang) = trimmed.strip_prefix("```") {
            // The HTML comments right above the fence (blank lines between allowed).
            let comments: Vec<&str> = lines[..i]
                .iter()
                .rev()
                .map(|l| l.trim())
                .take_while(|l| l.is_empty() || (l.starts_with("<!--") && l.ends_with("-->")))
                .filter(|l| !l.is_empty())
                .collect();
            let expect_invalid = comments.contains(&INVALID_MARKER);
            let plugin = comments.iter().find_map(|c| {
                let name = c.strip_prefix(CONFIG_MARKER)?.strip_suffix("-->")?.trim();
                Some(name.to_owned())
            });
            let start = i + 1;
            let mut end = start;
            while end < lines.len() && !lines[end].trim_start().starts_with("```") {
                end += 1;
            }
            blocks.push(Block {
                lang: lang.trim().to_owned(),
                first_line: start + 1,
                text: lines[start..end.min(lines.len())].join("\n"),
                expect_invalid,
                plugin,
            });
            i = end + 1;
        } else {
            i += 1;
        }
    }
    blocks
}

/// Top-level field names of a plugin's schema.
fn top_level_fields(plugin: &str) -> Vec<String> {
    let schema = dist_schema(plugin);
    schema["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e} (run `cargo xtask dist`)", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn dist_schema(plugin: &str) -> Value {
    read_json(
        &paths::dist_dir()
            .join("schemas")
            .join(format!("{plugin}.schema.json")),
    )
}

fn kong_meta(plugin: &str) -> Value {
    read_json(&paths::dist_dir().join(format!("{plugin}.meta.json")))
}

/// What the repo holds: plugin examples, full Envoy configs (file, text), problems found while
/// reading.
#[derive(Default)]
struct Found {
    examples: Vec<Example>,
    envoy_configs: Vec<(String, String)>,
    errors: Vec<String>,
}

fn has_static_resources(docs: &[Value]) -> bool {
    docs.iter().any(|d| d.get("static_resources").is_some())
}

fn discover() -> Found {
    let mut found = Found::default();
    for path in repo_files() {
        let file = rel(&path);
        if is_yaml(&path) {
            let text = std::fs::read_to_string(&path).unwrap();
            let docs = match yaml_documents(&text) {
                Ok(docs) => docs,
                Err(e) => {
                    found.errors.push(format!("{file}: not YAML: {e}"));
                    continue;
                }
            };
            let src = Source {
                file: &file,
                first_line: 1,
                text: &text,
                expect_invalid: false,
            };
            let mut cursor = 0;
            for doc in &docs {
                extract(
                    doc,
                    &src,
                    &mut cursor,
                    &mut found.examples,
                    &mut found.errors,
                );
            }
            if has_static_resources(&docs) {
                found.envoy_configs.push((file.clone(), text.clone()));
            }
        } else if path.extension().is_some_and(|e| e == "md") {
            let text = std::fs::read_to_string(&path).unwrap();
            // `docs/<plugin>.md` is that plugin's page: its plain JSON blocks are its configs.
            let page_plugin = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(plugin_named);
            for block in markdown_blocks(&text) {
                let at = format!("{file}:{}", block.first_line);
                let src = Source {
                    file: &file,
                    first_line: block.first_line,
                    text: &block.text,
                    expect_invalid: block.expect_invalid,
                };
                match block.lang.as_str() {
                    "yaml" | "yml" => {
                        let docs = match yaml_documents(&block.text) {
                            Ok(docs) => docs,
                            Err(e) => {
                                found.errors.push(format!("{at}: not YAML: {e}"));
                                continue;
                            }
                        };
                        let mut cursor = 0;
                        for doc in &docs {
                            extract(
                                doc,
                                &src,
                                &mut cursor,
                                &mut found.examples,
                                &mut found.errors,
                            );
                        }
                        if has_static_resources(&docs) {
                            found.envoy_configs.push((at, block.text.clone()));
                        }
                    }
                    "json" => {
                        let marked = match block.plugin.as_deref() {
                            Some(name) => match plugin_named(name) {
                                Some(p) => Some(p),
                                None => {
                                    found.errors.push(format!(
                                        "{at}: `config:` marker names {name:?}, none of {PLUGINS:?}"
                                    ));
                                    continue;
                                }
                            },
                            None => None,
                        };
                        let Some(plugin) = marked.or(page_plugin) else {
                            continue;
                        };
                        // Not an object on its own (`"providers": {...}`): a fragment.
                        let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(&block.text)
                        else {
                            continue;
                        };
                        // A config when at least half its keys are the plugin's top-level
                        // fields (so a typo among them still fails); else a fragment: a rule,
                        // a `match`, a record.
                        let fields = top_level_fields(plugin);
                        let known = obj.keys().filter(|k| fields.contains(k)).count();
                        if known * 2 < obj.len() && !block.expect_invalid && marked.is_none() {
                            continue;
                        }
                        found.examples.push(Example {
                            plugin: plugin.to_owned(),
                            at,
                            gateway: Gateway::Plain,
                            config: Given::Json(Value::Object(obj)),
                            expect_invalid: block.expect_invalid,
                        });
                    }
                    _ => {}
                }
            }
        }
    }
    found
}

/// Schema errors of `config` (empty: valid), each `/json/pointer: message`.
fn schema_errors(schema: &Value, config: &Value, draft4: bool) -> Vec<String> {
    let validator = if draft4 {
        jsonschema::draft4::new(schema)
    } else {
        jsonschema::draft7::new(schema)
    }
    .unwrap_or_else(|e| panic!("the schema itself is invalid: {e}"));
    validator
        .iter_errors(config)
        .map(|e| {
            let path = e.instance_path().to_string();
            let path = if path.is_empty() { "/".into() } else { path };
            format!("{path}: {e}")
        })
        .collect()
}

/// Loads `config` into `plugin`'s dist wasm: Ok(()) if `on_configure` accepted it, else the
/// error lines the plugin logged.
fn harness_configure(plugin: &str, gateway: Gateway, config: &[u8]) -> Result<(), String> {
    let (profile, filter) = if gateway == Gateway::Kong {
        (Profile::Kong, kong_filter_name(plugin))
    } else {
        (Profile::Envoy, plugin.to_owned())
    };
    let harness = Harness::builder()
        .profile(profile)
        .plugin_config(config)
        .workers(1)
        .filter_name(&filter)
        .root_id(plugin)
        .vm_id(plugin)
        .build_from_file(paths::plugin_wasm(plugin).map_err(|e| e.to_string())?)
        .map_err(|e| format!("harness: {e}"))?;
    match harness.configure() {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!(
            "on_configure refused it: {}",
            harness.logs_at(LogLevel::Error).join(" | ")
        )),
        Err(e) => Err(format!("on_configure failed: {e}")),
    }
}

#[test]
fn plugin_examples_match_their_schema_and_load_in_the_plugin() {
    let found = discover();
    let mut failures = found.errors.clone();
    let mut counts: BTreeMap<&str, BTreeMap<String, usize>> = BTreeMap::new();
    for ex in &found.examples {
        let schema = dist_schema(&ex.plugin);
        let mut problems = Vec::new();
        match ex.config.json() {
            Ok(json) => {
                problems.extend(schema_errors(&schema, &json, false));
                if ex.gateway == Gateway::Kong {
                    // Kong validates `config` as written (a string or an object) against the
                    // filter's metadata, draft 4.
                    let raw = match &ex.config {
                        Given::Text(t) => Value::String(t.clone()),
                        Given::Json(v) => v.clone(),
                    };
                    let meta = kong_meta(&ex.plugin);
                    for e in schema_errors(&meta["config_schema"], &raw, true) {
                        problems.push(format!("Kong meta.json: {e}"));
                    }
                }
            }
            Err(e) => problems.push(e),
        }
        let schema_ok = problems.is_empty();
        let loaded = harness_configure(&ex.plugin, ex.gateway, &ex.config.bytes());
        let mut line = String::new();
        if ex.expect_invalid {
            if schema_ok {
                let _ = write!(line, " accepted by the schema");
            }
            if loaded.is_ok() {
                let _ = write!(line, " accepted by on_configure");
            }
            if !line.is_empty() {
                failures.push(format!("{} ({}, marked invalid):{line}", ex.at, ex.plugin));
            }
        } else {
            for p in &problems {
                failures.push(format!("{} ({}): schema: {p}", ex.at, ex.plugin));
            }
            if let Err(e) = loaded {
                failures.push(format!("{} ({}): {e}", ex.at, ex.plugin));
            }
        }
        let file = format!(
            "{} {:?}",
            ex.at.split(':').next().unwrap_or_default(),
            ex.gateway
        );
        *counts
            .entry(PLUGINS.iter().find(|p| **p == ex.plugin).unwrap())
            .or_default()
            .entry(file)
            .or_default() += 1;
    }
    for plugin in PLUGINS {
        match counts.get(plugin) {
            Some(files) => {
                let total: usize = files.values().sum();
                let list: Vec<String> = files.iter().map(|(f, n)| format!("{f} {n}")).collect();
                println!("{plugin}: {total} examples ({})", list.join(", "));
            }
            None => failures.push(format!("{plugin}: no example config found in the repo")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} problem(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// `text` with local paths substituted, as a deployment would: every wasm file of a plugin
/// (`dist/jwt-rbac.wasm`, `/etc/envoy/jwt-rbac.wasm`) is the built one in the dist directory,
/// and an access-log `path:` whose directory does not exist here goes to `scratch`.
fn with_local_paths(text: &str, scratch: &Path) -> String {
    let dist = paths::dist_dir();
    let mut out = text.to_owned();
    for plugin in PLUGINS {
        let pattern = format!(r#"filename:\s*["']?[^\s"'{{}},]*?\b{plugin}\.wasm["']?"#);
        let re = regex_lite::Regex::new(&pattern).unwrap();
        let with = format!("filename: \"{}/{plugin}.wasm\"", dist.display());
        out = re
            .replace_all(&out, regex_lite::NoExpand(&with))
            .into_owned();
    }
    let log = regex_lite::Regex::new(r"(?m)^(\s*path:\s*)(/[^\s]+)$").unwrap();
    log.replace_all(&out, |c: &regex_lite::Captures| {
        let written = Path::new(&c[2]);
        if written.parent().is_some_and(Path::is_dir) {
            c[0].to_owned()
        } else {
            let name = written.file_name().unwrap().to_string_lossy();
            format!("{}{}", &c[1], scratch.join(name.as_ref()).display())
        }
    })
    .into_owned()
}

#[test]
fn envoy_configs_pass_envoy_validate() {
    let found = discover();
    assert!(
        !found.envoy_configs.is_empty(),
        "no Envoy config (a YAML file or docs block with static_resources) found"
    );
    let envoy = paths::envoy_bin().unwrap();
    let scratch = paths::ScratchDir::new("repo-configs").unwrap();
    let mut failures = Vec::new();
    for (i, (at, text)) in found.envoy_configs.iter().enumerate() {
        let path = scratch.path().join(format!("config-{i}.yaml"));
        std::fs::write(&path, with_local_paths(text, scratch.path())).unwrap();
        // Run from the workspace root: configs name `dist/<plugin>.wasm` relative to it.
        let out = Command::new(&envoy)
            .args(["--mode", "validate", "--log-level", "warn", "-c"])
            .arg(&path)
            .current_dir(repo())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        println!("{at}: envoy --mode validate: {}", out.status);
        if !out.status.success() {
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            let tail = lines[lines.len().saturating_sub(15)..].join("\n");
            failures.push(format!("{at}: envoy --mode validate failed:\n{tail}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// True for docker-compose*.yml / compose*.yaml.
fn is_compose(path: &Path) -> bool {
    let name = path.file_name().unwrap().to_string_lossy();
    is_yaml(path) && (name.starts_with("docker-compose") || name.starts_with("compose"))
}

/// `a/b/../c` without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Whether `path` exists, counting what `cargo xtask dist` writes into `dist/`.
fn exists_or_built(path: &Path) -> bool {
    let dist = repo().join("dist");
    let Ok(inside) = path.strip_prefix(&dist) else {
        return path.exists();
    };
    let name = inside.to_string_lossy();
    name.is_empty()
        || name == "SHA256SUMS"
        || name == "schemas"
        || name == "kong"
        || PLUGINS.iter().any(|p| {
            let kong = kong_filter_name(p);
            name == format!("{p}.wasm")
                || name == format!("{p}.meta.json")
                || name == format!("schemas/{p}.schema.json")
                || name == format!("kong/{kong}.wasm")
                || name == format!("kong/{kong}.meta.json")
        })
}

/// Local paths a compose file references: (what, path as written).
fn compose_references(doc: &Value) -> Vec<(String, String)> {
    let mut refs = Vec::new();
    let str_of = |v: &Value| v.as_str().map(str::to_owned);
    if let Some(Value::Object(services)) = doc.get("services") {
        for (name, svc) in services {
            match svc.get("build") {
                Some(Value::String(ctx)) => refs.push((format!("{name}.build"), ctx.clone())),
                Some(Value::Object(build)) => {
                    let ctx = build.get("context").and_then(str_of).unwrap_or(".".into());
                    refs.push((format!("{name}.build.context"), ctx.clone()));
                    if let Some(df) = build.get("dockerfile").and_then(str_of) {
                        let joined = Path::new(&ctx).join(df).display().to_string();
                        refs.push((format!("{name}.build.dockerfile"), joined));
                    }
                }
                _ => {}
            }
            if let Some(Value::Array(volumes)) = svc.get("volumes") {
                for v in volumes {
                    let host = match v {
                        Value::String(s) => s.split(':').next().map(str::to_owned),
                        Value::Object(o)
                            if o.get("type").and_then(Value::as_str) == Some("bind") =>
                        {
                            o.get("source").and_then(str_of)
                        }
                        _ => None,
                    };
                    // A bare name is a named volume, not a path.
                    if let Some(host) = host.filter(|h| h.starts_with(['.', '/', '~'])) {
                        refs.push((format!("{name}.volumes"), host));
                    }
                }
            }
            match svc.get("env_file") {
                Some(Value::String(f)) => refs.push((format!("{name}.env_file"), f.clone())),
                Some(Value::Array(files)) => {
                    for f in files {
                        let path = f
                            .as_str()
                            .map(str::to_owned)
                            .or_else(|| f.get("path").and_then(Value::as_str).map(str::to_owned));
                        if let Some(path) = path {
                            refs.push((format!("{name}.env_file"), path));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    for section in ["configs", "secrets"] {
        if let Some(Value::Object(items)) = doc.get(section) {
            for (name, item) in items {
                if let Some(file) = item.get("file").and_then(Value::as_str) {
                    refs.push((format!("{section}.{name}.file"), file.to_owned()));
                }
            }
        }
    }
    refs
}

#[test]
fn compose_files_reference_only_files_that_exist() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for path in repo_files().into_iter().filter(|p| is_compose(p)) {
        let file = rel(&path);
        let text = std::fs::read_to_string(&path).unwrap();
        let docs = match yaml_documents(&text) {
            Ok(docs) => docs,
            Err(e) => {
                failures.push(format!("{file}: not YAML: {e}"));
                continue;
            }
        };
        checked += 1;
        let dir = path.parent().unwrap();
        for doc in &docs {
            if doc.get("services").and_then(Value::as_object).is_none() {
                failures.push(format!("{file}: no `services` mapping"));
            }
            for (what, written) in compose_references(doc) {
                let resolved = normalize(&dir.join(&written));
                if written.starts_with('~') || !exists_or_built(&resolved) {
                    let line = text
                        .lines()
                        .position(|l| l.contains(&written))
                        .map_or(0, |i| i + 1);
                    failures.push(format!(
                        "{file}:{line}: {what} `{written}`: {} does not exist",
                        rel(&resolved)
                    ));
                }
            }
        }
        println!("{file}: checked");
    }
    assert!(checked > 0, "no compose file found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Issue #3's budget for `dist/jwt-rbac.wasm`, the largest module. It holds only as `cargo
/// xtask dist` builds it: opt-level z, then binaryen's `wasm-opt -Oz`.
const JWT_RBAC_BUDGET: u64 = 400 * 1024;

#[test]
fn jwt_rbac_module_is_within_its_size_budget() {
    let path = paths::plugin_wasm("jwt-rbac").unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(
        size <= JWT_RBAC_BUDGET,
        "{}: {size} bytes, over the budget of {JWT_RBAC_BUDGET} (400 KiB); see docs/jwt-rbac.md, \
         guarantees and limits",
        path.display()
    );
}

#[test]
fn dist_schemas_and_kong_metadata_are_well_formed() {
    for plugin in PLUGINS {
        let schema = dist_schema(plugin);
        assert!(
            jsonschema::draft7::meta::is_valid(&schema),
            "dist/schemas/{plugin}.schema.json is not a valid draft 7 schema"
        );
        assert_eq!(schema["type"], "object", "{plugin}");
        assert_eq!(schema["additionalProperties"], false, "{plugin}");
        // An unknown top-level field is refused by the schema, as by the plugin.
        let typo = serde_json::json!({"no_such_field": true});
        assert!(!schema_errors(&schema, &typo, false).is_empty(), "{plugin}");
        assert!(harness_configure(plugin, Gateway::Envoy, b"{\"no_such_field\": true}").is_err());

        // Kong: `{"config_schema": <draft 4 schema>}`, nothing else.
        let meta = kong_meta(plugin);
        let obj = meta.as_object().unwrap();
        assert_eq!(
            obj.keys().collect::<Vec<_>>(),
            ["config_schema"],
            "{plugin}"
        );
        let config_schema = &meta["config_schema"];
        if let Err(e) = jsonschema::draft4::meta::validate(config_schema) {
            panic!("dist/{plugin}.meta.json: config_schema is not valid draft 4: {e}");
        }
        assert_eq!(
            config_schema["$schema"],
            "http://json-schema.org/draft-04/schema#"
        );
        assert!(
            !serde_json::to_string(config_schema)
                .unwrap()
                .contains("\"const\""),
            "{plugin}: draft 4 has no `const`"
        );
    }
}

#[test]
fn docs_markers_are_read_from_the_comments_above_a_block() {
    let md = "text\n\n<!-- invalid-example -->\n<!-- config: jwt-rbac -->\n\n```json\n{}\n```\n\n<!-- other -->\nprose\n```yaml\na: 1\n```\n";
    let blocks = markdown_blocks(md);
    assert_eq!(blocks.len(), 2);
    assert!(blocks[0].expect_invalid);
    assert_eq!(blocks[0].plugin.as_deref(), Some("jwt-rbac"));
    assert_eq!((blocks[0].first_line, blocks[0].text.as_str()), (7, "{}"));
    assert!(!blocks[1].expect_invalid);
    assert_eq!(blocks[1].plugin, None);
    assert_eq!(blocks[1].lang, "yaml");
    assert_eq!(
        plugin_named("oci://r.example/gw/jwt-rbac:0.1.0"),
        Some("jwt-rbac")
    );
    assert_eq!(plugin_named("/etc/envoy/audit-log.wasm"), Some("audit-log"));
    assert_eq!(plugin_named("envoy.filters.http.wasm"), None);
    assert_eq!(kong_plugin_named("jwt_rbac"), Ok(Some("jwt-rbac")));
    assert_eq!(kong_plugin_named("rate-limiting"), Ok(None));
    assert!(kong_plugin_named("jwt-rbac")
        .unwrap_err()
        .contains("`jwt_rbac`"));
    assert!(exists_or_built(
        &repo().join("dist/kong/ratelimit_shared_data.meta.json")
    ));
    assert!(!exists_or_built(
        &repo().join("dist/kong/ratelimit-shared-data.wasm")
    ));
}

/// What an adoption review asks for first: the license the workspace declares, a changelog, and
/// the compatibility matrix linked from the README.
#[test]
fn license_changelog_and_compatibility_matrix_are_there() {
    let root = paths::workspace_root();
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap_or_default();
    let license = read("LICENSE");
    assert!(
        license.contains("Apache License") && license.contains("Version 2.0, January 2004"),
        "LICENSE is not the Apache-2.0 text the workspace declares"
    );
    assert!(read("Cargo.toml").contains("license = \"Apache-2.0\""));
    assert!(read("CHANGELOG.md").contains("## [Unreleased]"));
    let matrix = read("docs/compatibility.md");
    for kong in ["3.4", "3.5", "3.6", "3.7", "3.8", "3.9"] {
        assert!(
            matrix.contains(kong),
            "compatibility matrix without Kong {kong}"
        );
    }
    let readme = read("README.md");
    assert!(readme.contains("docs/compatibility.md") && readme.contains("docs/coming-from.md"));
}

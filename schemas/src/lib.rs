//! JSON Schema of every plugin's configuration, generated from the plugins' serde config types
//! (the `schema` feature of each plugin crate), so the schema and the parser cannot drift: doc
//! comments become descriptions, and serde's `rename`, `default` and `deny_unknown_fields` are
//! read as serde reads them.
//!
//! Two shapes:
//! - [`schema`]: JSON Schema draft 7, the draft editors support best, written by
//!   `cargo xtask dist` to `dist/schemas/<plugin>.schema.json`.
//! - [`kong_meta`]: Kong's filter metadata file, `{"config_schema": <schema>}`, written next to
//!   the `.wasm` as `dist/<plugin>.meta.json`. Kong validates `config_schema` against the
//!   draft 4 meta-schema and then treats it as draft 4, so [`to_draft4`] rewrites the few
//!   draft 6+ keywords, and a string `config` stays accepted (see [`kong_meta`]).
//!
//! What the schema cannot say, the plugin's `on_configure` still checks (header-name syntax,
//! regexes, "exactly one of", cross-field rules): the schema catches typos and wrong types early.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::{json, Value};

/// Every plugin with a schema, by its dist name (`dist/<plugin>.wasm`).
pub const PLUGINS: &[&str] = &[
    "header-injection",
    "jwt-rbac",
    "ratelimit-shared-data",
    "audit-log",
    "circuit-breaker",
    "gateway-suite",
];

/// The suite's sections, by plugin: the plugin's name with `_`.
const SUITE_SECTIONS: [(&str, &str); 5] = [
    ("header-injection", "header_injection"),
    ("jwt-rbac", "jwt_rbac"),
    ("audit-log", "audit_log"),
    ("ratelimit-shared-data", "ratelimit_shared_data"),
    ("circuit-breaker", "circuit_breaker"),
];

/// The draft 4 meta-schema id, the only one Kong accepts for filter config schemas.
pub const DRAFT4: &str = "http://json-schema.org/draft-04/schema#";

fn root<T: JsonSchema>(plugin: &str) -> Value {
    let mut schema = SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value();
    if let Some(obj) = schema.as_object_mut() {
        obj.insert("title".into(), json!(format!("{plugin} configuration")));
    }
    schema
}

/// The draft 7 schema of `plugin`'s configuration, or `None` for an unknown plugin.
pub fn schema(plugin: &str) -> Option<Value> {
    Some(match plugin {
        "header-injection" => root::<header_injection::config::Config>(plugin),
        "jwt-rbac" => root::<jwt_rbac::config::Config>(plugin),
        "ratelimit-shared-data" => root::<ratelimit_shared_data::config::ConfigFile>(plugin),
        "audit-log" => root::<audit_log::config::Config>(plugin),
        "circuit-breaker" => root::<circuit_breaker::config::Config>(plugin),
        "gateway-suite" => suite(),
        _ => return None,
    })
}

/// The suite's schema, composed from the five: a property per section holding that plugin's
/// schema, whose definitions move to `#/definitions/<section>.<name>` (two plugins may name a
/// type alike), and `order`.
fn suite() -> Value {
    fn rewrite(v: &mut Value, section: &str) {
        match v {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    match (k.as_str(), v) {
                        ("$ref", Value::String(r)) => {
                            if let Some(name) = r.strip_prefix("#/definitions/") {
                                *r = format!("#/definitions/{section}.{name}");
                            }
                        }
                        (_, v) => rewrite(v, section),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| rewrite(i, section)),
            _ => {}
        }
    }
    let sections: Vec<&str> = SUITE_SECTIONS.iter().map(|(_, s)| *s).collect();
    let mut properties = serde_json::Map::new();
    properties.insert(
        "order".into(),
        json!({
            "description": "The sections present, in the order their request phases run \
                (response phases run in reverse). Default: header_injection, jwt_rbac, \
                audit_log, ratelimit_shared_data, circuit_breaker, those present.",
            "type": "array",
            "items": {"enum": sections},
            "uniqueItems": true
        }),
    );
    let mut definitions = serde_json::Map::new();
    for (plugin, section) in SUITE_SECTIONS {
        let Some(mut schema) = schema(plugin) else {
            continue;
        };
        rewrite(&mut schema, section);
        if let Some(obj) = schema.as_object_mut() {
            obj.remove("$schema");
            if let Some(Value::Object(defs)) = obj.remove("definitions") {
                for (name, def) in defs {
                    definitions.insert(format!("{section}.{name}"), def);
                }
            }
            obj.insert(
                "description".into(),
                json!(format!(
                    "The {plugin} configuration (docs/{plugin}.md); absent: {plugin} does not run."
                )),
            );
        }
        properties.insert(section.into(), schema);
    }
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "gateway-suite configuration",
        "type": "object",
        "additionalProperties": false,
        "minProperties": 1,
        "properties": properties,
        "definitions": definitions
    })
}

/// Integer and float `format`s schemars adds (`uint32`, ...): annotations no draft defines.
const NUMBER_FORMATS: &[&str] = &[
    "int8", "int16", "int32", "int64", "int", "uint8", "uint16", "uint32", "uint64", "uint",
    "float", "double",
];

/// Rewrites a draft 7 schema generated here into draft 4: `const` becomes a one-value `enum`,
/// number `format`s (unknown to draft 4 validators) are dropped, `$schema` names draft 4.
/// `definitions` and `$ref` are the same in both drafts.
pub fn to_draft4(schema: &Value) -> Value {
    fn walk(v: &Value) -> Value {
        match v {
            Value::Object(map) => {
                let mut out = serde_json::Map::new();
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("const", c) => {
                            out.insert("enum".into(), json!([c]));
                        }
                        ("format", Value::String(f)) if NUMBER_FORMATS.contains(&f.as_str()) => {}
                        // These hold names, not keywords: keep the names, rewrite the schemas.
                        ("properties" | "definitions" | "patternProperties", Value::Object(m)) => {
                            let named = m.iter().map(|(n, s)| (n.clone(), walk(s))).collect();
                            out.insert(k.clone(), Value::Object(named));
                        }
                        _ => {
                            out.insert(k.clone(), walk(v));
                        }
                    }
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(walk).collect()),
            other => other.clone(),
        }
    }
    let mut out = walk(schema);
    if let Some(obj) = out.as_object_mut() {
        obj.insert("$schema".into(), json!(DRAFT4));
    }
    out
}

/// Kong's `<filter>.meta.json` for `plugin`: `{"config_schema": <draft 4 schema>}`.
///
/// Kong (3.5+) reads it from `wasm_filters_path` next to `<filter>.wasm` and validates a
/// filter's `config` against it when the config is loaded; a config given as an object is then
/// JSON-encoded for the filter. The top-level `type` also allows a string, so configs written as
/// a JSON string (the only form Kong accepts for a filter without metadata) keep working: Kong
/// passes them through unchanged and the filter's `on_configure` checks them.
pub fn kong_meta(plugin: &str) -> Option<Value> {
    let mut config_schema = to_draft4(&schema(plugin)?);
    if let Some(obj) = config_schema.as_object_mut() {
        obj.insert("type".into(), json!(["object", "string"]));
    }
    Some(json!({ "config_schema": config_schema }))
}

fn pretty(value: &Value) -> Result<String> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    Ok(text)
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Writes `<dist>/schemas/<plugin>.schema.json` and `<dist>/<plugin>.meta.json` for every
/// plugin; returns the written paths.
pub fn write_all(dist: &Path) -> Result<Vec<PathBuf>> {
    let dir = dist.join("schemas");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = Vec::new();
    for plugin in PLUGINS {
        let (Some(schema), Some(meta)) = (schema(plugin), kong_meta(plugin)) else {
            bail!("no schema for {plugin}");
        };
        let schema_path = dir.join(format!("{plugin}.schema.json"));
        write(&schema_path, &pretty(&schema)?)?;
        let meta_path = dist.join(format!("{plugin}.meta.json"));
        write(&meta_path, &pretty(&meta)?)?;
        written.push(schema_path);
        written.push(meta_path);
    }
    Ok(written)
}

/// The file [`write_all`] writes for `plugin`'s schema, as text (for up-to-date checks).
pub fn schema_text(plugin: &str) -> Result<String> {
    match schema(plugin) {
        Some(s) => pretty(&s),
        None => bail!("no schema for {plugin}"),
    }
}

/// The file [`write_all`] writes for `plugin`'s Kong metadata, as text.
pub fn kong_meta_text(plugin: &str) -> Result<String> {
    match kong_meta(plugin) {
        Some(s) => pretty(&s),
        None => bail!("no schema for {plugin}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_plugin_has_an_object_schema_refusing_unknown_fields() {
        for plugin in PLUGINS {
            let s = schema(plugin).unwrap();
            assert_eq!(s["type"], "object", "{plugin}");
            assert_eq!(s["additionalProperties"], false, "{plugin}");
            assert!(s["$schema"].as_str().unwrap().contains("draft-07"));
        }
        assert!(schema("nope").is_none());
    }

    /// `dist/` (or `$SUITE_DIST_DIR`) holds what the config types give now: `cargo xtask test`
    /// runs `cargo xtask dist` first, so a stale schema means a dist step that failed or was
    /// skipped.
    #[test]
    fn dist_schemas_are_current() {
        let dist = std::env::var_os("SUITE_DIST_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist"));
        for plugin in PLUGINS {
            for (path, want) in [
                (
                    dist.join("schemas").join(format!("{plugin}.schema.json")),
                    schema_text(plugin).unwrap(),
                ),
                (
                    dist.join(format!("{plugin}.meta.json")),
                    kong_meta_text(plugin).unwrap(),
                ),
            ] {
                let have = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}: run `cargo xtask dist`", path.display()));
                assert!(
                    have == want,
                    "{} is stale: run `cargo xtask dist`",
                    path.display()
                );
            }
        }
    }

    #[test]
    fn draft4_has_no_const() {
        let v = to_draft4(
            &json!({"oneOf": [{"const": "a"}, {"type": "integer", "format": "uint32"}],
                                  "properties": {"const": {"type": "string", "format": "uri"}}}),
        );
        assert_eq!(v["oneOf"][0], json!({"enum": ["a"]}));
        assert_eq!(v["oneOf"][1], json!({"type": "integer"}));
        assert_eq!(v["properties"]["const"]["format"], "uri");
        assert_eq!(v["$schema"], DRAFT4);
    }
}

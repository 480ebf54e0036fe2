//! Checks of `kong-demo/` that need no Kong: the declarative files hold the plugins in chain
//! order, under the filter names `cargo xtask dist` gives their Kong copies, with configs that
//! parse and respect Kong's limits, and the compose file and `kong.conf` set what Kong needs for
//! Wasm. (Kong itself is not run here; see docs/getting-started-kong.md.)
//!
//! The files keep every filter config on one `config: {...}` line (JSON, which YAML reads as a
//! flow mapping), so these checks read them line by line without a YAML parser.

use std::path::PathBuf;

use serde_json::Value;

use crate::dist::{kong_filter_name, KONG_DIR};
use crate::oci::ISTIO_CHAIN;
use crate::workspace;

fn kong_demo() -> PathBuf {
    workspace::root().join("kong-demo")
}

fn read(name: &str) -> String {
    let path = kong_demo().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `(name, config)` of every `- name:` line followed by a `config:` line, in file order.
fn named_configs(text: &str) -> Vec<(String, Value)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = line.trim_start().strip_prefix("- name: ") else {
            continue;
        };
        let config = lines[i + 1..]
            .iter()
            .take_while(|l| !l.trim_start().starts_with("- "))
            .find_map(|l| l.trim_start().strip_prefix("config: "));
        if let Some(config) = config {
            let value: Value = serde_json::from_str(config)
                .unwrap_or_else(|e| panic!("config of {name} is not one line of JSON: {e}"));
            assert!(value.is_object(), "config of {name} is not an object");
            out.push((name.trim().to_owned(), value));
        }
    }
    out
}

/// Kong's order differs from Envoy's and Istio's (`ISTIO_CHAIN`) in one place: audit-log after
/// ratelimit-shared-data. ngx_wasm_module runs every step, response headers included, through
/// the filter chain in the order listed (Envoy runs response callbacks in reverse), so on Kong
/// audit-log must follow ratelimit-shared-data to see the rate-limit headers it sets.
const KONG_CHAIN: [&str; 5] = [
    "header-injection",
    "jwt-rbac",
    "ratelimit-shared-data",
    "audit-log",
    "circuit-breaker",
];

/// The chain as Kong names the filters: the files `cargo xtask dist` writes to `dist/kong/`.
fn chain_names() -> Vec<String> {
    KONG_CHAIN.iter().map(|p| kong_filter_name(p)).collect()
}

/// The plugin a Kong filter name stands for.
fn plugin_of(filter: &str) -> &'static str {
    ISTIO_CHAIN
        .iter()
        .map(|p| p.plugin)
        .find(|p| kong_filter_name(p) == filter)
        .unwrap_or_else(|| panic!("{filter}: not a filter `cargo xtask dist` writes to dist/kong/"))
}

#[test]
fn kong_chain_is_the_istio_chain_with_audit_log_after_ratelimit() {
    let mut expected: Vec<&str> = ISTIO_CHAIN.iter().map(|p| p.plugin).collect();
    let audit = expected.iter().position(|p| *p == "audit-log").unwrap();
    expected.remove(audit);
    let ratelimit = expected
        .iter()
        .position(|p| *p == "ratelimit-shared-data")
        .unwrap();
    expected.insert(ratelimit + 1, "audit-log");
    assert_eq!(KONG_CHAIN.to_vec(), expected);
}

/// Kong callouts take `host:port`, not an Envoy cluster name.
fn is_host_port(s: &str) -> bool {
    s.rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
}

fn assert_kong_limits(filter: &str, config: &Value) {
    match plugin_of(filter) {
        "audit-log" => {
            // No shared queues on Kong: the worker role with export on would trap.
            assert_eq!(
                config["role"], "local",
                "audit-log on Kong must use role local"
            );
            if let Some(upstream) = config["export"]["upstream"].as_str() {
                assert!(
                    is_host_port(upstream),
                    "audit-log export.upstream {upstream}"
                );
            }
        }
        "jwt-rbac" => {
            for (provider, p) in config["providers"].as_object().into_iter().flatten() {
                if let Some(upstream) = p["remote_jwks"]["upstream"].as_str() {
                    assert!(is_host_port(upstream), "{provider}: remote_jwks {upstream}");
                }
                // Kong's engine cannot remove the client's credential: say it is forwarded.
                assert_eq!(p["forward"], true, "{provider}: forward on Kong");
            }
        }
        "circuit-breaker" => {
            // No xds.cluster_name / xds.route_name on Kong.
            let source = config["key"]["source"].as_str().unwrap_or("cluster");
            assert!(
                !matches!(source, "cluster" | "route"),
                "key.source {source}"
            );
        }
        "ratelimit-shared-data" => {
            let text = config.to_string();
            assert!(
                !text.contains("\"route\"") && !text.contains("\"cluster\""),
                "{text}"
            );
        }
        _ => {}
    }
}

#[test]
fn kong_yml_has_the_chain_in_order_with_kong_ready_configs() {
    let text = read("kong.yml");
    assert!(text.contains("_format_version: \"3.0\"\n"));
    assert_eq!(text.matches("\nfilter_chains:\n").count(), 1);
    assert!(
        text.contains("  url: http://127.0.0.1:8080\n"),
        "the demo upstream"
    );
    let filters = named_configs(&text);
    let names: Vec<String> = filters.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(names, chain_names());
    for (name, config) in &filters {
        assert_kong_limits(name, config);
    }
}

#[test]
fn kong_plugins_form_has_the_same_configs() {
    let chain = named_configs(&read("kong.yml"));
    let text = read("kong-plugins.yml");
    assert!(text.contains("\nplugins:\n"));
    let plugins = named_configs(&text);
    assert_eq!(plugins.len(), chain.len());
    for ((name, config), (p_name, p_config)) in chain.iter().zip(&plugins) {
        assert_eq!(name, p_name);
        assert_kong_limits(p_name, p_config);
        let mut expected = config.clone();
        if name == "header_injection" {
            // Plugins all run at priority 0 (no order): anti-spoofing must not follow jwt-rbac.
            assert_eq!(p_config["anti_spoofing"]["enabled"], false);
            expected["anti_spoofing"] = p_config["anti_spoofing"].clone();
        }
        assert_eq!(&expected, p_config, "{name}");
    }
    assert_eq!(text.matches("  service: echo\n").count(), plugins.len());
}

#[test]
fn compose_runs_kong_3_9_with_wasm_and_references_files_that_exist() {
    let text = read("docker-compose.yml");
    assert!(
        text.contains("image: kong:3.9\n"),
        "a Kong with Wasm in its default build"
    );
    let filters = format!("- ../dist/{KONG_DIR}:/kong/filters:ro");
    for needed in [
        "KONG_WASM: \"on\"",
        "KONG_WASM_FILTERS_PATH: /kong/filters",
        filters.as_str(),
        "KONG_NGINX_WASM_SHM_KV: ",
        "KONG_DECLARATIVE_CONFIG: /kong/kong.yml",
    ] {
        assert!(text.contains(needed), "docker-compose.yml lacks {needed}");
    }
    for local in [
        "kong.yml",
        "kong-plugins.yml",
        "../envoy-demo/upstream/Dockerfile",
    ] {
        assert!(
            kong_demo().join(local).is_file(),
            "{local} is referenced but missing"
        );
    }
}

#[test]
fn kong_conf_turns_wasm_on_with_a_shared_data_zone() {
    let text = read("kong.conf");
    let settings: Vec<(&str, &str)> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once(" = "))
        .map(|(k, v)| (k.trim(), v.split('#').next().unwrap_or_default().trim()))
        .collect();
    let get = |k: &str| settings.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
    assert_eq!(get("wasm"), Some("on"));
    assert_eq!(
        get("wasm_filters_path"),
        Some(format!("dist/{KONG_DIR}").as_str())
    );
    // Kong 3.7-3.9 turn `nginx_wasm_shm_kv` into `shm_kv * <size>;` (kong/templates/nginx.lua).
    assert!(get("nginx_wasm_shm_kv").is_some_and(|v| v.ends_with('m')));
    assert_eq!(get("database"), Some("off"));
}

/// The name Kong's 3.7.0 changelog gives the shared-data setting. Kong turns it into an unknown
/// `main_shm_kv` directive in `wasm{}` (its `nginx_wasm_<directive>` namespace), and nginx does
/// not start; the setting is `nginx_wasm_shm_kv`.
const WRONG_SHM_SETTING: &str = concat!("nginx_wasm_", "main_shm_kv");

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn no_kong_demo_file_or_doc_names_the_shared_data_setting_kong_does_not_know() {
    let root = workspace::root();
    let mut files = files_under(&kong_demo());
    files.extend(files_under(&root.join("docs")));
    files.push(root.join("README.md"));
    assert!(files.len() > 5);
    for path in files {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        assert!(
            !text.to_ascii_lowercase().contains(WRONG_SHM_SETTING),
            "{}: names {WRONG_SHM_SETTING}; Kong's setting is nginx_wasm_shm_kv \
             (KONG_NGINX_WASM_SHM_KV)",
            path.display()
        );
    }
}

#[test]
fn kong_filter_names_are_the_files_dist_writes() {
    for file in ["kong.yml", "kong-plugins.yml"] {
        for (name, _) in named_configs(&read(file)) {
            let plugin = plugin_of(&name);
            assert_eq!(kong_filter_name(plugin), name, "{file}");
            assert!(
                !name.contains('-'),
                "{file}: {name}: Kong 3.9's exporter needs no '-'"
            );
        }
    }
}

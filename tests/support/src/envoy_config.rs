//! Envoy config fragments that the tests and xtask both generate.

use std::net::SocketAddr;
use std::path::Path;

use serde_json::{json, Value};

/// An Envoy `socket_address`.
pub fn socket(addr: SocketAddr) -> Value {
    json!({"socket_address": {"address": addr.ip().to_string(), "port_value": addr.port()}})
}

/// The `envoy.filters.http.wasm` entry for one plugin (V8, local file, config as StringValue).
pub fn wasm_filter_json(plugin: &str, config: &Value, wasm: &Path) -> Value {
    json!({
        "name": plugin,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": plugin,
                "root_id": plugin,
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": config.to_string()
                },
                "vm_config": {
                    "vm_id": plugin,
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": wasm.display().to_string()}}
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plugin_config_travels_as_a_json_string() {
        let f = wasm_filter_json("p", &json!({"a": 1}), Path::new("dist/p.wasm"));
        let config = &f["typed_config"]["config"];
        assert_eq!(config["configuration"]["value"], "{\"a\":1}");
        assert_eq!(
            config["vm_config"]["code"]["local"]["filename"],
            "dist/p.wasm"
        );
        assert_eq!(config["vm_config"]["runtime"], "envoy.wasm.runtime.v8");
    }

    #[test]
    fn socket_keeps_address_and_port() {
        let s = socket(SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(s["socket_address"]["address"], "127.0.0.1");
        assert_eq!(s["socket_address"]["port_value"], 8080);
    }
}

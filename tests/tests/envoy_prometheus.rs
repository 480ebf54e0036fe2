//! Metrics as a Prometheus user scrapes them from a real Envoy: two instances of jwt-rbac on two
//! listeners, each with its own `stat_prefix`, and the `stats_tags` of
//! `docs/operations.md#prometheus` turning the instance, the reason and the breaker into
//! labels. The docs list the same names.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;

use serde_json::{json, Value};
use suite_support::client;
use suite_tests::envoy::{Envoy, EnvoyConfig};
use suite_tests::upstream::Upstream;

/// The `stats_config` of the docs (operations.md, "Prometheus"), as the test bootstrap uses it.
pub fn stats_config() -> Value {
    let plugins = "(?:header_injection|jwt_rbac|ratelimit|audit_log|circuit_breaker)";
    json!({
        "stats_tags": [
            {"tag_name": "instance", "regex": format!(r"^wasmcustom\.((\w+)\.){plugins}\.")},
            {"tag_name": "reason", "regex": r"^wasmcustom\.(?:\w+\.)?jwt_rbac\.denied(\.(\w+))$"},
            {"tag_name": "breaker",
             "regex": r"^wasmcustom\.(?:\w+\.)?circuit_breaker\.(([^.]+)\.)(?:trips|rejected|probes|failures|successes|contended|state)$"}
        ]
    })
}

fn provider_config(prefix: &str) -> Value {
    json!({
        "stat_prefix": prefix,
        "providers": {"main": {"algorithms": ["HS256"],
            "jwks": {"keys": [{"kty": "oct", "kid": "k", "k": "ZGVtby1vbmx5LXNlY3JldC0wMTIzNDU2Nzg5YWJjZGVm"}]}}},
        "rules": [{"requires": {"provider": "main"}}]
    })
}

/// A token the providers above accept (HS256, key `k`).
fn hs256_token() -> String {
    use base64::Engine;
    use sha2::Digest;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let input = format!(
        "{}.{}",
        b64(br#"{"alg":"HS256","kid":"k"}"#),
        b64(br#"{"sub":"alice","exp":4102444800}"#)
    );
    // HMAC-SHA256 by hand (RFC 2104), to need no other crate here.
    let key = b"demo-only-secret-0123456789abcdef";
    let mut block = [0u8; 64];
    block[..key.len()].copy_from_slice(key);
    let pad = |x: u8| block.iter().map(|b| b ^ x).collect::<Vec<u8>>();
    let inner = sha2::Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(input.as_bytes())
        .finalize();
    let mac = sha2::Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize();
    format!("{input}.{}", b64(&mac))
}

#[test]
fn two_instances_scrape_as_separate_labelled_series() {
    let upstream = Upstream::start().unwrap();
    let config = EnvoyConfig::new(upstream.addr())
        .filter("jwt-rbac", provider_config("public"))
        .filter(
            "circuit-breaker",
            json!({"stat_prefix": "public", "key": {"source": "fixed", "value": "orders-api"}}),
        );
    let mut bootstrap = config.bootstrap().unwrap();
    // A second listener with the same chain but its own instance of the plugin.
    let mut second = bootstrap["static_resources"]["listeners"][0].clone();
    second["name"] = json!("listener_1");
    // Only jwt-rbac on the second listener (the breaker stays on the first).
    let filters = &mut second["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"];
    filters.as_array_mut().unwrap().remove(1);
    let filter = &mut filters[0];
    let wasm = &mut filter["typed_config"]["config"];
    wasm["name"] = json!("jwt-rbac-partner");
    wasm["root_id"] = json!("jwt-rbac-partner");
    wasm["vm_config"]["vm_id"] = json!("jwt-rbac-partner");
    wasm["configuration"]["value"] = json!(provider_config("partner").to_string());
    bootstrap["static_resources"]["listeners"]
        .as_array_mut()
        .unwrap()
        .push(second);
    bootstrap["stats_config"] = stats_config();
    let envoy = Envoy::start_bootstrap(&bootstrap, 2).unwrap();

    let listeners: Value =
        serde_json::from_str(&envoy.admin_get("/listeners?format=json").unwrap()).unwrap();
    let addr_of = |name: &str| -> SocketAddr {
        let l = listeners["listener_statuses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == name)
            .unwrap_or_else(|| panic!("no {name}: {listeners}"));
        let port = l["local_address"]["socket_address"]["port_value"]
            .as_u64()
            .unwrap();
        SocketAddr::new("127.0.0.1".parse().unwrap(), port as u16)
    };
    for (listener, n) in [("listener_0", 3), ("listener_1", 2)] {
        let addr = addr_of(listener);
        for _ in 0..n {
            let resp = client::get(addr, "/orders").unwrap();
            assert_eq!(resp.status, 401, "{listener}");
        }
    }
    // The breaker defines its metrics at its first request: one that reaches it.
    {
        let token = hs256_token();
        let req = client::RawRequest::new("GET", "/orders", "api")
            .header("authorization", format!("Bearer {token}"));
        let resp = client::send(addr_of("listener_0"), &req).unwrap();
        assert_eq!(resp.status, 200, "{}", resp.text());
    }

    let text = envoy.admin_get("/stats/prometheus").unwrap();
    if std::env::var_os("SHOW_PROMETHEUS").is_some() {
        eprintln!(
            "{}",
            text.lines()
                .filter(|l| l.contains("jwt_rbac"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    let series = |name: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
            .map(str::to_owned)
            .collect()
    };
    let denied = series("jwt_rbac_denied");
    for want in [
        r#"jwt_rbac_denied{instance="public",reason="token_missing"} 3"#,
        r#"jwt_rbac_denied{instance="partner",reason="token_missing"} 2"#,
        r#"jwt_rbac_denied{instance="public"} 3"#,
        r#"jwt_rbac_denied{instance="partner"} 2"#,
    ] {
        assert!(
            denied.iter().any(|l| l == want),
            "{want} not in:\n{}",
            denied.join("\n")
        );
    }
    // No series is left with the instance or the reason in its name.
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("public_") || l.starts_with("jwt_rbac_denied_token")),
        "{text}"
    );
    // The breaker's name (with its `-`) is a label too.
    let breaker = series("circuit_breaker_state");
    assert!(
        breaker
            .iter()
            .any(|l| l
                .starts_with(r#"circuit_breaker_state{instance="public",breaker="orders-api"}"#)),
        "{}",
        breaker.join("\n")
    );
    assert!(
        series("jwt_rbac_allowed")
            .iter()
            .any(|l| l == r#"jwt_rbac_allowed{instance="public"} 1"#),
        "{}",
        series("jwt_rbac_allowed").join("\n")
    );
}

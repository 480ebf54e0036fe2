//! VM-boundary crossings of an ordinary GET (issue #15 item 4): each of the five plugins under
//! the envoy profile with a typical config, the five as a chain, and gateway-suite running the
//! same five configs as one filter. Counts are exact, so each
//! budget is the count measured now: a new crossing fails the test. Run with `--nocapture` for
//! the breakdown.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod jwt_rbac_support;

use host_harness::{Crossings, Harness, LogLevel, Profile};
use jwt_rbac_support::mint::*;
use serde_json::json;

const HEADER_INJECTION: u64 = 16;
const JWT_RBAC: u64 = 16;
const RATELIMIT_SHARED_DATA: u64 = 15;
const AUDIT_LOG: u64 = 24;
const CIRCUIT_BREAKER: u64 = 16;
const CHAIN: u64 = 87;
/// gateway-suite with all five on. Issue #15's target is 24.
const SUITE: u64 = 42;

const SECRET: &[u8] = b"demo-only-secret-0123456789abcdef";

fn token() -> String {
    let header = r#"{"alg":"HS256","kid":"demo","typ":"JWT"}"#;
    let payload = json!({"iss": "https://issuer.example.com", "aud": "api", "sub": "alice",
                         "exp": FAR_FUTURE})
    .to_string();
    let input = format!("{}.{}", b64(header), b64(&payload));
    assemble(header, &payload, &hmac("HS256", SECRET, input.as_bytes()))
}

/// The five in the README's order, each with its typical config.
fn plugins() -> Vec<(&'static str, serde_json::Value, u64)> {
    vec![
        ("header-injection", json!({}), HEADER_INJECTION),
        (
            "jwt-rbac",
            json!({"providers": {"demo": {"issuer": "https://issuer.example.com",
                "audiences": ["api"], "algorithms": ["HS256"],
                "jwks": {"keys": [{"kty": "oct", "kid": "demo", "k": b64(SECRET)}]}}},
                "rules": [{"requires": {"provider": "demo"}}]}),
            JWT_RBAC,
        ),
        (
            "ratelimit-shared-data",
            json!({"rules": [{"name": "per-ip", "key": ["client_ip"],
                "window": {"limit": 1000, "seconds": 60}}]}),
            RATELIMIT_SHARED_DATA,
        ),
        ("audit-log", json!({}), AUDIT_LOG),
        (
            "circuit-breaker",
            json!({"key": {"source": "fixed", "value": "orders"}}),
            CIRCUIT_BREAKER,
        ),
    ]
}

fn harness(plugin: &str, config: &serde_json::Value) -> Harness {
    let path = suite_tests::paths::workspace_root().join(format!("dist/{plugin}.wasm"));
    let h = Harness::builder()
        .profile(Profile::Envoy)
        .plugin_config(config.to_string())
        .build_from_file(path)
        .unwrap();
    assert!(
        h.configure().unwrap(),
        "{plugin}: {:?}",
        h.logs_at(LogLevel::Error)
    );
    h
}

/// One ordinary GET through `h`, start to finish; its stream's crossings.
fn ordinary_get(plugin: &str, h: &Harness) -> Crossings {
    let auth = format!("Bearer {}", token());
    let mut s = h.stream().unwrap();
    s.set_property("source.address", "192.0.2.10:53000")
        .unwrap();
    s.send_request_headers(
        &[
            (":method", "GET"),
            (":path", "/api/orders"),
            (":authority", "api.example.com"),
            (":scheme", "http"),
            ("user-agent", "curl/8.5.0"),
            ("authorization", auth.as_str()),
        ],
        true,
    )
    .unwrap();
    assert!(
        s.local_response().is_none(),
        "{plugin}: {:?}",
        s.local_response()
    );
    s.send_response_headers(
        &[(":status", "200"), ("content-type", "application/json")],
        true,
    )
    .unwrap();
    s.finish().unwrap();
    s.crossings()
}

/// The second request (the first may create per-key state).
fn measured(plugin: &str, config: &serde_json::Value) -> Crossings {
    let h = harness(plugin, config);
    ordinary_get(plugin, &h);
    ordinary_get(plugin, &h)
}

fn check(plugin: &str) {
    let (_, config, budget) = plugins().into_iter().find(|p| p.0 == plugin).unwrap();
    let c = measured(plugin, &config);
    eprintln!("{plugin}: {c}");
    assert!(
        c.total() <= budget,
        "{plugin}: {} > budget {budget}\n{c}",
        c.total()
    );
}

#[test]
fn header_injection_ordinary_get_budget() {
    check("header-injection");
}

#[test]
fn jwt_rbac_ordinary_get_budget() {
    check("jwt-rbac");
}

#[test]
fn ratelimit_shared_data_ordinary_get_budget() {
    check("ratelimit-shared-data");
}

#[test]
fn audit_log_ordinary_get_budget() {
    check("audit-log");
}

#[test]
fn circuit_breaker_ordinary_get_budget() {
    check("circuit-breaker");
}

/// The five one after the other, each its own harness (a VM per filter, as Envoy runs them).
#[test]
fn the_five_as_a_chain_stay_within_budget() {
    let mut chain = Crossings::default();
    for (plugin, config, _) in plugins() {
        let c = measured(plugin, &config);
        eprintln!(
            "{plugin}: {} ({} callbacks, {} host calls, {} allocations)",
            c.total(),
            c.callback_count(),
            c.host_call_count(),
            c.allocations
        );
        chain.add(&c);
    }
    eprintln!("chain: {chain}");
    assert!(
        chain.total() <= CHAIN,
        "chain: {} > budget {CHAIN}\n{chain}",
        chain.total()
    );
}

/// The suite's section name of each plugin.
fn section(plugin: &str) -> String {
    plugin.replace('-', "_")
}

/// gateway-suite with the five sections, in the default order: one filter, one exchange per
/// callback.
#[test]
fn suite_ordinary_get_budget() {
    let mut config = serde_json::Map::new();
    for (plugin, c, _) in plugins() {
        config.insert(section(plugin), c);
    }
    let c = measured("gateway-suite", &serde_json::Value::Object(config));
    eprintln!("gateway-suite: {c}");
    assert!(
        c.total() <= SUITE,
        "gateway-suite: {} > budget {SUITE}\n{c}",
        c.total()
    );
}

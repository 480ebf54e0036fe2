//! header-injection in a real Envoy (two workers): the properties that matter most, checked
//! directly against the echo upstream. Every scenario file runs in real Envoy (and the harness)
//! in `header_injection_scenarios.rs`.
// Tests may unwrap: a failure is a test failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Barrier};

use serde_json::json;
use suite_tests::{client, Connection, Envoy, EnvoyConfig, RawRequest, Upstream};

const PLUGIN: &str = "header-injection";

fn start(config: serde_json::Value) -> (Upstream, Envoy) {
    let upstream = Upstream::start().unwrap();
    let envoy = Envoy::start(&EnvoyConfig::new(upstream.addr()).filter(PLUGIN, config)).unwrap();
    (upstream, envoy)
}

#[test]
fn cors_preflight_is_answered_without_reaching_the_upstream() {
    let (upstream, envoy) =
        start(json!({"cors": {"allowed_origins": ["https://app.example.com"]}}));
    let before = upstream.request_count().unwrap();
    let req = RawRequest::new("OPTIONS", "/api/orders", "api.example.com")
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST");
    let resp = client::send(envoy.addr(), &req).unwrap();
    assert!(
        resp.status == 204 || resp.status == 200,
        "preflight status {}: {}",
        resp.status,
        resp.text()
    );
    assert_eq!(
        resp.header("access-control-allow-origin").as_deref(),
        Some("https://app.example.com")
    );
    assert_eq!(
        upstream.request_count().unwrap(),
        before,
        "the preflight reached the upstream"
    );
    // A normal request still goes through.
    let resp = client::send(
        envoy.addr(),
        &RawRequest::new("GET", "/api/orders", "api.example.com"),
    )
    .unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(upstream.request_count().unwrap(), before + 1);
}

#[test]
fn spoofed_identity_headers_never_reach_the_upstream() {
    let (upstream, envoy) = start(json!({}));
    let req = RawRequest::new("GET", "/", "api.example.com")
        .header("x-user-id", "admin")
        .header("X-User-Id", "root")
        .header("x_user_id", "admin")
        .header("X_USER_ID", "admin")
        .header("x-user-roles", "admin")
        .header("x_user_roles", b"\xffadmin")
        .header("x-keep", "yes");
    let resp = client::send(envoy.addr(), &req).unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let received = upstream.last_request().unwrap().expect("upstream reached");
    let leaked: Vec<&String> = received
        .headers
        .iter()
        .map(|(n, _)| n)
        .filter(|n| n.replace('_', "-").starts_with("x-user-"))
        .collect();
    assert!(
        leaked.is_empty(),
        "spoofed identity headers reached the upstream: {leaked:?}"
    );
    assert!(received
        .headers
        .iter()
        .any(|(n, v)| n == "x-keep" && v == b"yes"));
}

#[test]
fn a_config_the_plugin_refuses_keeps_envoy_from_serving() {
    let upstream = Upstream::start().unwrap();
    let config = EnvoyConfig::new(upstream.addr()).filter(PLUGIN, json!({"no_such_field": true}));
    let err = match Envoy::start(&config) {
        Ok(mut envoy) => panic!(
            "Envoy started with a refused config (running: {}); log:\n{}",
            envoy.is_running(),
            envoy.log()
        ),
        Err(e) => format!("{e:#}"),
    };
    // Envoy 1.40 logs the plugin's own line, then "Unable to create Wasm plugin <name>" as a
    // critical error initializing the config, and exits: a refused config never serves traffic.
    assert!(err.contains("Envoy exited during startup"), "{err}");
    assert!(
        err.contains("Unable to create Wasm plugin header-injection"),
        "{err}"
    );
    assert!(
        err.contains("no_such_field"),
        "the log does not name the bad field:\n{err}"
    );
}

#[test]
fn both_workers_take_traffic() {
    let (upstream, envoy) = start(json!({}));
    const CONNECTIONS: usize = 32;
    let barrier = Arc::new(Barrier::new(CONNECTIONS));
    let addr = envoy.addr();
    let threads: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let mut conn = Connection::open(addr).unwrap();
                barrier.wait();
                for _ in 0..4 {
                    let resp = conn.send(&RawRequest::new("GET", "/", "h")).unwrap();
                    assert_eq!(resp.status, 200);
                    assert!(resp.header("x-correlation-id").is_some());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(upstream.request_count().unwrap(), (CONNECTIONS * 4) as u64);
    let per_worker = envoy.worker_connections().unwrap();
    assert_eq!(
        per_worker.len(),
        2,
        "expected two workers' listener stats: {per_worker:?}"
    );
    assert!(
        per_worker.iter().all(|(_, v)| *v > 0),
        "a worker took no connection: {per_worker:?}"
    );
}

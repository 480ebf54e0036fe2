//! circuit-breaker in a real Envoy (`--concurrency 2`) in front of a real echo upstream that can
//! be told to fail: the trip point, zero upstream requests while open (counted by the upstream
//! itself), probes after the open duration then closed, the fallback route to a maintenance
//! service, a config refused at load. Waits are bounded; only behaviour is asserted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use suite_tests::{client, Envoy, EnvoyConfig, RawRequest, RawResponse, Upstream};

const PLUGIN: &str = "circuit-breaker";

/// Count window of 4, trips at 50 % with at least 4 requests, open 1 s, one probe closes it.
fn breaker_config(on_open: Value) -> Value {
    json!({
        "defaults": {
            "window": {"type": "count", "requests": 4},
            "min_requests": 4,
            "failure_rate_percent": 50,
            "open": {"duration_ms": 1000, "max_duration_ms": 2000},
            "half_open": {"max_probes": 1, "successes_to_close": 1},
            "on_open": on_open
        }
    })
}

fn get(envoy: &Envoy) -> RawResponse {
    client::send(
        envoy.addr(),
        &RawRequest::new("GET", "/api/orders", "api.example.com"),
    )
    .unwrap()
}

fn stat(envoy: &Envoy, name: &str) -> Option<u64> {
    envoy.stats().unwrap().get(name).copied()
}

/// Sends requests until one gets `status` (at most `limit` tries, 100 ms apart).
fn until_status(envoy: &Envoy, status: u16, limit: Duration) -> RawResponse {
    let deadline = Instant::now() + limit;
    loop {
        let resp = get(envoy);
        if resp.status == status || Instant::now() > deadline {
            return resp;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn trips_at_the_configured_point_stays_off_the_upstream_while_open_then_probes_and_closes() {
    let upstream = Upstream::start().unwrap();
    let envoy =
        Envoy::start(&EnvoyConfig::new(upstream.addr()).filter(PLUGIN, breaker_config(json!({}))))
            .unwrap();
    // Healthy: passes.
    assert_eq!(get(&envoy).status, 200);
    upstream.set_failing(true).unwrap();
    // 1 success + 2 failures: 3 requests, below M = 4. The 4th (a failure: 3/4) trips it.
    for i in 0..3 {
        let resp = get(&envoy);
        assert_eq!(resp.status, 503, "request {i}");
        assert!(
            resp.text().contains("fail mode"),
            "from the upstream: {}",
            resp.text()
        );
    }
    assert_eq!(upstream.request_count().unwrap(), 4);
    assert_eq!(
        stat(&envoy, "wasmcustom.circuit_breaker.upstream.trips"),
        Some(1),
        "tripped at the 4th request"
    );
    assert_eq!(
        stat(&envoy, "wasmcustom.circuit_breaker.upstream.state"),
        Some(1)
    );

    // Open: answered at once by the breaker, on both workers; the upstream counts nothing.
    let before = upstream.request_count().unwrap();
    let mut refused = 0;
    for _ in 0..20 {
        let resp = get(&envoy);
        if resp.status != 503 || !resp.text().contains("circuit_open") {
            // Only possible if the 1 s open duration passed on a slow machine: then a probe
            // went through. Stop counting here; the upstream count below still has to hold.
            break;
        }
        assert!(resp.header("retry-after").is_some());
        let body: Value = serde_json::from_slice(&resp.body).unwrap();
        assert_eq!(body["breaker"], "upstream");
        refused += 1;
    }
    assert!(refused > 0, "the open breaker refused nothing");
    assert_eq!(
        upstream.request_count().unwrap(),
        before,
        "the upstream received requests while the breaker was open"
    );
    assert_eq!(
        stat(&envoy, "wasmcustom.circuit_breaker.upstream.rejected"),
        Some(refused)
    );
    // The breaker's own 503s were not counted as upstream failures.
    assert_eq!(
        stat(&envoy, "wasmcustom.circuit_breaker.upstream.failures"),
        Some(3)
    );

    // Recovery: after the open duration a probe passes, succeeds, and closes the breaker.
    upstream.set_failing(false).unwrap();
    let resp = until_status(&envoy, 200, Duration::from_secs(15));
    assert_eq!(resp.status, 200, "never closed: {}", resp.text());
    assert_eq!(
        stat(&envoy, "wasmcustom.circuit_breaker.upstream.state"),
        Some(0)
    );
    assert_eq!(
        stat(&envoy, "wasmcustom.circuit_breaker.upstream.probes"),
        Some(1)
    );
    for _ in 0..6 {
        assert_eq!(get(&envoy).status, 200);
    }
    // Envoy flushes info lines of its log file lazily (about every 10 s): wait for the last one.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut log = envoy.log();
    while !log.contains("half-open -> closed") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
        log = envoy.log();
    }
    // Each transition was logged once, by the worker that made it, not once per worker.
    assert_eq!(log.matches("closed -> open").count(), 1, "{log}");
    assert_eq!(log.matches("open -> half-open").count(), 1, "{log}");
    assert_eq!(log.matches("half-open -> closed").count(), 1, "{log}");
}

#[test]
fn while_open_the_fallback_route_delivers_the_maintenance_answer() {
    let upstream = Upstream::start().unwrap();
    let maintenance = Upstream::start().unwrap();
    let config = EnvoyConfig::new(upstream.addr()).filter(
        PLUGIN,
        breaker_config(json!({"mode": "fallback",
                              "fallback_header": {"name": "x-circuit-breaker", "value": "open"}})),
    );
    let mut bootstrap = config.bootstrap().unwrap();
    // A route matching the breaker's header, first, to the maintenance service.
    let hcm = &mut bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"];
    let routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
        .as_array_mut()
        .unwrap();
    routes.insert(
        0,
        json!({
            "name": "maintenance",
            "match": {"prefix": "/", "headers": [
                {"name": "x-circuit-breaker", "string_match": {"exact": "open"}}
            ]},
            "route": {"cluster": "maintenance", "timeout": "5s"}
        }),
    );
    let clusters = bootstrap["static_resources"]["clusters"]
        .as_array_mut()
        .unwrap();
    clusters.push(json!({
        "name": "maintenance",
        "type": "STATIC",
        "connect_timeout": "5s",
        "load_assignment": {"cluster_name": "maintenance", "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {
                "address": "127.0.0.1", "port_value": maintenance.addr().port()}}}}
        ]}]}
    }));
    let envoy = Envoy::start_bootstrap(&bootstrap, 2).unwrap();

    // A client sending the header itself does not reach maintenance: it is stripped.
    let resp = client::send(
        envoy.addr(),
        &RawRequest::new("GET", "/", "h").header("x-circuit-breaker", "open"),
    )
    .unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(maintenance.request_count().unwrap(), 0);

    upstream.set_failing(true).unwrap();
    // The spoofed request above passed untracked; four failures reach M = 4 at 100 %.
    for _ in 0..4 {
        assert_eq!(get(&envoy).status, 503);
    }
    assert_eq!(
        stat(&envoy, "wasmcustom.circuit_breaker.upstream.trips"),
        Some(1)
    );
    let before = upstream.request_count().unwrap();
    let resp = get(&envoy);
    assert_eq!(resp.status, 200, "maintenance answer: {}", resp.text());
    let echoed: Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(echoed["path"], "/api/orders", "{echoed}");
    assert_eq!(maintenance.request_count().unwrap(), 1);
    assert_eq!(
        upstream.request_count().unwrap(),
        before,
        "the failing upstream was not spared"
    );
    let received = maintenance.last_request().unwrap().unwrap();
    assert!(received
        .headers
        .iter()
        .any(|(n, v)| n == "x-circuit-breaker" && v == b"open"));
}

#[test]
fn a_config_that_cannot_work_keeps_envoy_from_serving() {
    let upstream = Upstream::start().unwrap();
    let config = EnvoyConfig::new(upstream.addr()).filter(
        PLUGIN,
        json!({"defaults": {"half_open": {"max_probes": 0}}}),
    );
    let err = match Envoy::start(&config) {
        Ok(_) => panic!("Envoy started with max_probes 0"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("Envoy exited during startup"), "{err}");
    assert!(
        err.contains("invalid configuration: defaults.half_open.max_probes"),
        "{err}"
    );
}

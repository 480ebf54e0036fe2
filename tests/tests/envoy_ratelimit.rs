//! ratelimit-shared-data in a real Envoy (`--concurrency 2`): a burst of 10 x L requests over 64
//! keep-alive connections admits exactly L (counted at the client and by the upstream), run after
//! run, with both workers serving; the answer headers and the 429 body; a refused config.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Barrier};
use std::time::Duration;

use serde_json::{json, Value};
use suite_tests::{client, Connection, Envoy, EnvoyConfig, RawRequest, Upstream};

const PLUGIN: &str = "ratelimit-shared-data";
const CONNECTIONS: usize = 64;
const LIMIT: usize = 50;

fn start(config: Value) -> (Upstream, Envoy) {
    let upstream = Upstream::start().unwrap();
    let envoy = Envoy::start(&EnvoyConfig::new(upstream.addr()).filter(PLUGIN, config)).unwrap();
    (upstream, envoy)
}

/// 10 x LIMIT requests with header `x-run: run`, spread over CONNECTIONS keep-alive connections
/// released together; (200s, 429s).
fn burst(envoy: &Envoy, run: &str) -> (usize, usize) {
    let total = 10 * LIMIT;
    let barrier = Arc::new(Barrier::new(CONNECTIONS));
    let addr = envoy.addr();
    let threads: Vec<_> = (0..CONNECTIONS)
        .map(|c| {
            let barrier = Arc::clone(&barrier);
            let run = run.to_owned();
            let mine = total / CONNECTIONS + usize::from(c < total % CONNECTIONS);
            std::thread::spawn(move || {
                let mut conn = Connection::open(addr).unwrap();
                barrier.wait();
                let (mut ok, mut limited) = (0, 0);
                for _ in 0..mine {
                    let resp = conn
                        .send(&RawRequest::new("GET", "/api/orders", "api").header("x-run", &run))
                        .unwrap();
                    match resp.status {
                        200 => ok += 1,
                        429 => limited += 1,
                        other => panic!("unexpected status {other}: {}", resp.text()),
                    }
                }
                (ok, limited)
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .fold((0, 0), |(a, b), (c, d)| (a + c, b + d))
}

fn exactly_l_over_runs(limit: Value) {
    let mut rule = json!({"name": "per-run", "key": [{"header": "x-run"}]});
    rule.as_object_mut()
        .unwrap()
        .extend(limit.as_object().unwrap().clone());
    let (upstream, envoy) = start(json!({"rules": [rule]}));
    const RUNS: usize = 4;
    for run in 0..RUNS {
        let before = upstream.request_count().unwrap();
        let (ok, limited) = burst(&envoy, &format!("run-{run}"));
        let reached = upstream.request_count().unwrap() - before;
        assert_eq!(ok, LIMIT, "run {run}: admitted at the client");
        assert_eq!(limited, 9 * LIMIT, "run {run}: refused at the client");
        assert_eq!(reached, LIMIT as u64, "run {run}: reached the upstream");
    }
    let stats = envoy.stats().unwrap();
    let stat = |name: &str| stats.get(name).copied().unwrap_or(0);
    assert_eq!(stat("wasmcustom.ratelimit.allowed"), (RUNS * LIMIT) as u64);
    assert_eq!(
        stat("wasmcustom.ratelimit.limited"),
        (RUNS * 9 * LIMIT) as u64
    );
    assert_eq!(stat("wasmcustom.ratelimit.cas_retries_exhausted"), 0);
    eprintln!(
        "cas retries over {RUNS} runs: {}",
        stat("wasmcustom.ratelimit.cas_retries")
    );
    let workers = envoy.worker_connections().unwrap();
    assert_eq!(workers.len(), 2, "two workers' listener stats: {workers:?}");
    assert!(
        workers.iter().all(|(_, v)| *v > 0),
        "a worker took no connection: {workers:?}"
    );
}

#[test]
fn a_burst_of_ten_times_the_window_limit_admits_exactly_the_limit() {
    exactly_l_over_runs(json!({"window": {"limit": LIMIT, "seconds": 600}}));
}

#[test]
fn a_burst_of_ten_times_the_bucket_capacity_admits_exactly_the_capacity() {
    exactly_l_over_runs(
        json!({"token_bucket": {"capacity": LIMIT, "refill_tokens": 1,
        "refill_interval_ms": 3_600_000}}),
    );
}

#[test]
fn answers_carry_the_quota_headers_and_a_json_429() {
    let (upstream, envoy) = start(json!({
        "rules": [{"name": "per-ip", "key": ["client_ip"],
                   "window": {"limit": 2, "seconds": 60}}],
        "headers": {"x_ratelimit": true}
    }));
    let get = || client::send(envoy.addr(), &RawRequest::new("GET", "/", "api")).unwrap();
    let first = get();
    assert_eq!(first.status, 200);
    assert_eq!(
        first.header("ratelimit-policy").as_deref(),
        Some("\"per-ip\";q=2;w=60")
    );
    assert_eq!(
        first.header("ratelimit").as_deref(),
        Some("\"per-ip\";r=1;t=60")
    );
    assert_eq!(first.header("x-ratelimit-remaining").as_deref(), Some("1"));
    assert_eq!(get().status, 200);
    let refused = get();
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert_eq!(refused.header("retry-after").as_deref(), Some("90"));
    assert_eq!(
        refused.header("ratelimit").as_deref(),
        Some("\"per-ip\";r=0;t=90")
    );
    assert_eq!(
        refused.header("content-type").as_deref(),
        Some("application/json")
    );
    let body: Value = serde_json::from_slice(&refused.body).unwrap();
    assert_eq!(body["error"], "rate_limited");
    assert_eq!(body["policy"], "per-ip");
    assert_eq!(body["retry_after"], 90);
    assert_eq!(upstream.request_count().unwrap(), 2);
}

#[test]
fn shadow_mode_never_blocks_in_envoy() {
    let (upstream, envoy) = start(json!({
        "rules": [{"name": "tiny", "window": {"limit": 1, "seconds": 60}}],
        "shadow_mode": true
    }));
    for _ in 0..5 {
        let resp = client::send(envoy.addr(), &RawRequest::new("GET", "/", "api")).unwrap();
        assert_eq!(resp.status, 200);
    }
    assert_eq!(upstream.request_count().unwrap(), 5);
    // Counters are flushed to the admin endpoint periodically: wait a little, bounded.
    let mut shadow = 0;
    for _ in 0..50 {
        shadow = envoy
            .stats()
            .unwrap()
            .get("wasmcustom.ratelimit.shadow_limited")
            .copied()
            .unwrap_or(0);
        if shadow == 4 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(shadow, 4);
}

#[test]
fn a_config_the_plugin_refuses_keeps_envoy_from_serving() {
    let upstream = Upstream::start().unwrap();
    let config = EnvoyConfig::new(upstream.addr()).filter(
        PLUGIN,
        json!({"rules": [{"name": "a", "window": {"limit": 1, "seconds": 0}}]}),
    );
    let err = match Envoy::start(&config) {
        Ok(mut envoy) => panic!(
            "Envoy started with a refused config (running: {})",
            envoy.is_running()
        ),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("rules[0].window.seconds"), "{err}");
}

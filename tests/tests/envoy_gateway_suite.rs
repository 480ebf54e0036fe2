//! gateway-suite in a real Envoy (`--concurrency 2`), all five plugins as one filter: the
//! verified identity reaches the upstream and the audit record; a client's forged identity
//! headers never reach the upstream; a 401, a 429 and a breaker 503 are recorded as the client
//! got them, in one verifiable hash chain per worker.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod gateway_suite_support;
mod jwt_rbac_support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use suite_tests::{client, Envoy, EnvoyConfig, RawRequest, RawResponse, Upstream};

const LIMIT: usize = 3;

fn token(sub: &str) -> String {
    gateway_suite_support::token(sub, &["ops"])
}

fn config() -> Value {
    gateway_suite_support::config(LIMIT as u64)
}

fn get(envoy: &Envoy, sub: Option<&str>, extra: &[(&str, &str)]) -> RawResponse {
    let mut req = RawRequest::new("GET", "/api/orders", "api.example.com");
    if let Some(sub) = sub {
        req = req.header("authorization", format!("Bearer {}", token(sub)));
    }
    for (name, value) in extra {
        req = req.header(name, value);
    }
    client::send(envoy.addr(), &req).unwrap()
}

/// The audit records in Envoy's log, in order.
fn records(envoy: &Envoy) -> Vec<Value> {
    envoy
        .log()
        .lines()
        .filter_map(|l| {
            l.find("audit-log: {")
                .map(|at| &l[at + "audit-log: ".len()..])
        })
        .filter_map(|r| serde_json::from_str(r).ok())
        .collect()
}

#[test]
fn the_suite_in_envoy_passes_identity_refuses_forgeries_and_records_what_the_client_got() {
    let upstream = Upstream::start().unwrap();
    let envoy =
        Envoy::start(&EnvoyConfig::new(upstream.addr()).filter("gateway-suite", config())).unwrap();
    let mut statuses = Vec::new();

    let refused = get(&envoy, None, &[]);
    assert_eq!(refused.status, 401, "{}", refused.text());
    assert!(refused.header("x-content-type-options").is_some());
    statuses.push(401);

    // A forged identity beside a valid token: the upstream gets only the verified one.
    let forged = get(
        &envoy,
        Some("alice"),
        &[
            ("x-user-id", "mallory"),
            ("x-user-roles", "admin"),
            ("x_user_id", "root"),
        ],
    );
    assert_eq!(forged.status, 200, "{}", forged.text());
    statuses.push(200);
    let seen = upstream.last_request().unwrap().unwrap();
    let values = |name: &str| -> Vec<String> {
        seen.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect()
    };
    assert_eq!(values("x-user-id"), ["alice"], "{:?}", seen.headers);
    assert!(values("x_user_id").is_empty(), "{:?}", seen.headers);
    assert!(!values("x-user-roles").iter().any(|r| r.contains("admin")));
    assert_eq!(values("x-correlation-id").len(), 1, "{:?}", seen.headers);

    // The limit per user, across both workers (each request a new connection).
    for _ in 1..LIMIT {
        assert_eq!(get(&envoy, Some("alice"), &[]).status, 200);
        statuses.push(200);
    }
    let limited = get(&envoy, Some("alice"), &[]);
    assert_eq!(limited.status, 429, "{}", limited.text());
    assert!(limited.header("retry-after").is_some());
    statuses.push(429);

    // Two upstream failures in a row open the breaker; the next request never reaches it.
    for user in ["carol", "dave"] {
        let failed = get(&envoy, Some(user), &[("x-echo-status", "503")]);
        assert_eq!(failed.status, 503);
        statuses.push(503);
    }
    let before = upstream.request_count().unwrap();
    let open = get(&envoy, Some("erin"), &[]);
    assert_eq!(open.status, 503, "{}", open.text());
    assert_eq!(
        upstream.request_count().unwrap(),
        before,
        "the breaker answered"
    );
    statuses.push(503);

    // Envoy writes its log in batches: wait (bounded) for every record.
    let deadline = Instant::now() + Duration::from_secs(30);
    while records(&envoy).len() < statuses.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let recs = records(&envoy);
    let recorded: Vec<u64> = recs.iter().filter_map(|r| r["status"].as_u64()).collect();
    let mut want: Vec<u64> = statuses.iter().map(|s| *s as u64).collect();
    // Two workers write their own chains: compare as multisets, then per subject.
    let mut got = recorded.clone();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want, "{recs:?}");
    let alice: Vec<&Value> = recs
        .iter()
        .filter(|r| r["identity"]["subject"] == "alice")
        .collect();
    assert_eq!(alice.len(), LIMIT + 1, "{recs:?}");
    assert!(alice
        .iter()
        .any(|r| r["status"] == 429 && r["decisions"]["ratelimit"] == "limited"));
    assert!(recs
        .iter()
        .any(|r| r["status"] == 401 && r["decisions"]["auth_reason"] == "token_missing"));
    assert!(recs
        .iter()
        .any(|r| r["status"] == 503 && r["identity"]["subject"] == "erin"));
    let report = audit_log::chain::verify(&envoy.log());
    assert!(report.ok(), "{:?}", report.chains);
    assert_eq!(report.records(), statuses.len() as u64);

    // The five plugins' own metrics, from one filter.
    let stats = envoy.stats().unwrap();
    for name in [
        "wasmcustom.header_injection.requests",
        "wasmcustom.jwt_rbac.denied",
        "wasmcustom.ratelimit.limited",
    ] {
        assert!(
            stats.iter().any(|(k, v)| k.starts_with(name) && *v > 0),
            "{name}: {:?}",
            stats
                .keys()
                .filter(|k| k.starts_with("wasmcustom"))
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn a_refused_section_keeps_envoy_from_starting_and_names_the_field() {
    let upstream = Upstream::start().unwrap();
    let bad =
        json!({"header_injection": {}, "jwt_rbac": {"providers": {"sso": {"audiences": "api"}}}});
    let started = Envoy::start(&EnvoyConfig::new(upstream.addr()).filter("gateway-suite", bad));
    let message = match started {
        Ok(envoy) => envoy.log(),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        message
            .contains("gateway-suite: invalid configuration: jwt_rbac.providers.sso.audiences: "),
        "{message}"
    );
}

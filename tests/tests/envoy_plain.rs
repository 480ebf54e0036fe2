//! Real Envoy without plugins: the launcher, the echo upstream and the raw client work together.
// Tests may unwrap: a failure is a test failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use suite_tests::{client, Envoy, EnvoyConfig, RawRequest, Upstream};

#[test]
fn plain_envoy_proxies_to_the_echo_upstream() {
    let upstream = Upstream::start().unwrap();
    let envoy = Envoy::start(&EnvoyConfig::new(upstream.addr())).unwrap();
    let req = RawRequest::new("POST", "/echo?q=1", "api.example.com")
        .header("x-dup", "a")
        .header("x-dup", "b")
        .header("x-echo-status", "201")
        .header("x-echo-header", "cache-control=no-store")
        .body("hello");
    let resp = client::send(envoy.addr(), &req).unwrap();
    assert_eq!(resp.status, 201, "{}", resp.text());
    assert_eq!(resp.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(
        resp.header("content-type").as_deref(),
        Some("application/json")
    );
    let echo: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/echo?q=1");
    assert_eq!(echo["body"], "hello");
    let last = upstream.last_request().unwrap().unwrap();
    let dups: Vec<&[u8]> = last
        .headers
        .iter()
        .filter(|(n, _)| n == "x-dup")
        .map(|(_, v)| v.as_slice())
        .collect();
    assert_eq!(dups, vec![&b"a"[..], b"b"]);
    assert_eq!(upstream.request_count().unwrap(), 1);
}

#[test]
fn big_and_raw_header_values_pass_plain_envoy() {
    let upstream = Upstream::start().unwrap();
    let envoy = Envoy::start(&EnvoyConfig::new(upstream.addr())).unwrap();
    let big = "a".repeat(64 * 1024);
    let req = RawRequest::new("GET", "/", "h")
        .header("x-big", &big)
        .header("x-raw", b"\xff\xfeA")
        .header("x_under", "1");
    let resp = client::send(envoy.addr(), &req).unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let last = upstream.last_request().unwrap().unwrap();
    let get = |name: &str| {
        last.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("x-big").map(|v| v.len()), Some(64 * 1024));
    assert_eq!(get("x-raw"), Some(b"\xff\xfeA".to_vec()));
    assert_eq!(get("x_under"), Some(b"1".to_vec()));
}

//! Whole-stream tests against the in-memory host: both phases, as the hosts drive them.

use crate::config::Settings;
use crate::metrics::Metrics;
use crate::stream::{Flow, Stream};
use gateway_core::fake::FakeHost;
use gateway_core::ports::HeaderMapKind::{Request, Response};
use std::rc::Rc;

const UUID: &str = "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$";

fn stream(config: &str, host: &FakeHost) -> Stream {
    let settings = Settings::from_json(config.as_bytes()).unwrap();
    Stream::new(Some(Rc::new(settings)), Metrics::define(host))
}

fn get(path: &str, extra: &[(&str, &[u8])]) -> FakeHost {
    let mut headers: Vec<(&str, &[u8])> = vec![
        (":method", b"GET"),
        (":path", path.as_bytes()),
        (":authority", b"api.example.com"),
    ];
    headers.extend_from_slice(extra);
    FakeHost::with_request(&headers)
}

fn matches(pattern: &str, value: &str) -> bool {
    regex_lite::Regex::new(pattern).unwrap().is_match(value)
}

#[test]
fn defaults_strip_spoofing_add_ids_and_security_headers() {
    let host = get(
        "/api",
        &[
            ("x-user-id", b"admin"),
            ("x-user-id", b"root"),
            ("x_user_id", b"x"),
            ("x-auth-status", b"verified"),
            ("accept", b"*/*"),
        ],
    );
    let mut s = stream("", &host);
    assert_eq!(s.on_request_headers(&host), Flow::Continue);
    assert!(host.values(Request, "x-user-id").is_empty());
    assert!(host.values(Request, "x_user_id").is_empty());
    assert!(host.values(Request, "x-auth-status").is_empty());
    assert_eq!(host.values(Request, "accept"), vec!["*/*"]);
    let id = host.values(Request, "x-correlation-id");
    assert_eq!(id.len(), 1);
    assert!(matches(UUID, &id[0]), "{id:?}");
    let tp = host.values(Request, "traceparent");
    assert!(crate::traceparent::is_valid(tp[0].as_bytes()));
    assert_eq!(host.metric("header_injection.spoofed_headers_removed"), 4);
    assert_eq!(host.metric("header_injection.correlation_ids_generated"), 1);
    assert_eq!(host.metric("header_injection.traceparents_started"), 1);

    host.set_response(&[(":status", b"200"), ("content-type", b"application/json")]);
    assert_eq!(s.on_response_headers(&host), Flow::Continue);
    assert_eq!(host.values(Response, "x-correlation-id"), id);
    assert_eq!(
        host.values(Response, "x-content-type-options"),
        vec!["nosniff"]
    );
    assert_eq!(host.values(Response, "x-frame-options"), vec!["SAMEORIGIN"]);
    assert!(
        host.values(Response, "strict-transport-security")
            .is_empty(),
        "no lasting browser policy unless asked"
    );
    assert!(host.values(Response, "content-security-policy").is_empty());
    assert!(
        host.values(Response, "vary").is_empty(),
        "no cors configured"
    );
    assert_eq!(host.call_count("header_list"), 2, "one read per phase");
}

#[test]
fn valid_ids_pass_unchanged_invalid_ones_are_replaced() {
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let host = get(
        "/",
        &[
            ("x-correlation-id", b"abc-123"),
            ("traceparent", tp.as_bytes()),
            ("tracestate", b"vendor=1"),
        ],
    );
    let mut s = stream("{}", &host);
    s.on_request_headers(&host);
    assert_eq!(host.values(Request, "x-correlation-id"), vec!["abc-123"]);
    assert_eq!(host.values(Request, "traceparent"), vec![tp]);
    assert_eq!(host.values(Request, "tracestate"), vec!["vendor=1"]);
    assert_eq!(host.call_count("set_header"), 0);
    host.set_response(&[(":status", b"200")]);
    s.on_response_headers(&host);
    assert_eq!(host.values(Response, "x-correlation-id"), vec!["abc-123"]);

    let host = get(
        "/",
        &[
            ("x-correlation-id", b"bad id!"),
            ("traceparent", b"00-zz"),
            ("tracestate", b"vendor=1"),
        ],
    );
    let mut s = stream("{}", &host);
    s.on_request_headers(&host);
    let id = host.values(Request, "x-correlation-id");
    assert!(matches(UUID, &id[0]));
    let new_tp = host.values(Request, "traceparent");
    assert!(crate::traceparent::is_valid(new_tp[0].as_bytes()));
    assert!(host.values(Request, "tracestate").is_empty());
    assert_eq!(host.metric("header_injection.traceparents_invalid"), 1);
}

const CORS: &str = r#"{"cors": {"allowed_origins": ["https://app.example.com", "https://*.example.org"],
    "allowed_methods": ["GET", "POST"], "allowed_headers": ["content-type"], "allow_credentials": true,
    "max_age": 600, "exposed_headers": ["x-correlation-id"]}}"#;

fn preflight(origin: &str) -> FakeHost {
    FakeHost::with_request(&[
        (":method", b"OPTIONS"),
        (":path", b"/api/orders"),
        ("origin", origin.as_bytes()),
        ("access-control-request-method", b"POST"),
        ("x-correlation-id", b"pre-1"),
    ])
}

#[test]
fn preflight_is_answered_locally_and_response_phase_leaves_it_alone() {
    let host = preflight("https://app.example.com");
    let mut s = stream(CORS, &host);
    assert_eq!(s.on_request_headers(&host), Flow::Stop);
    let reply = host.local_reply.borrow().clone().unwrap();
    assert_eq!(reply.status, 204);
    let h = |n: &str| {
        reply
            .headers
            .iter()
            .filter(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        h("access-control-allow-origin"),
        vec!["https://app.example.com"]
    );
    assert_eq!(h("access-control-allow-methods"), vec!["GET, POST"]);
    assert_eq!(h("access-control-allow-credentials"), vec!["true"]);
    assert_eq!(h("access-control-max-age"), vec!["600"]);
    assert_eq!(h("vary"), vec!["Origin"]);
    assert_eq!(h("x-correlation-id"), vec!["pre-1"]);
    assert_eq!(host.metric("header_injection.preflights_answered"), 1);

    // Envoy runs our response callback on our own local reply: nothing may be added twice.
    let reply_headers: Vec<(String, Vec<u8>)> = reply
        .headers
        .iter()
        .map(|(n, v)| (n.clone(), v.as_bytes().to_vec()))
        .collect();
    *host.response_headers.borrow_mut() = reply_headers.clone();
    assert_eq!(s.on_response_headers(&host), Flow::Continue);
    assert_eq!(*host.response_headers.borrow(), reply_headers);
}

#[test]
fn preflight_from_disallowed_origin_is_refused_without_cors_headers() {
    let host = preflight("https://evil.example.com");
    let mut s = stream(CORS, &host);
    assert_eq!(s.on_request_headers(&host), Flow::Stop);
    let reply = host.local_reply.borrow().clone().unwrap();
    assert_eq!(reply.status, 403);
    assert!(reply
        .headers
        .iter()
        .all(|(k, _)| !k.starts_with("access-control-")));
    assert_eq!(host.metric("header_injection.preflights_rejected"), 1);
}

#[test]
fn actual_cors_request_gets_headers_for_allowed_origin_only() {
    let host = get("/api", &[("origin", b"https://a.example.org")]);
    let mut s = stream(CORS, &host);
    assert_eq!(s.on_request_headers(&host), Flow::Continue);
    host.set_response(&[(":status", b"200"), ("vary", b"Accept-Encoding")]);
    s.on_response_headers(&host);
    assert_eq!(
        host.values(Response, "access-control-allow-origin"),
        vec!["https://a.example.org"]
    );
    assert_eq!(
        host.values(Response, "access-control-allow-credentials"),
        vec!["true"]
    );
    assert_eq!(
        host.values(Response, "vary"),
        vec!["Accept-Encoding, Origin"]
    );

    let host = get("/api", &[("origin", b"https://example.org")]);
    let mut s = stream(CORS, &host);
    s.on_request_headers(&host);
    host.set_response(&[(":status", b"200")]);
    s.on_response_headers(&host);
    assert!(host
        .values(Response, "access-control-allow-origin")
        .is_empty());
    assert_eq!(host.values(Response, "vary"), vec!["Origin"]);
}

#[test]
fn non_utf8_and_huge_headers_do_not_trap() {
    let big = vec![b'a'; 65536];
    let host = FakeHost::with_request(&[
        (":method", b"GET"),
        (":path", b"/\xff"),
        ("x-raw", b"\xff\xfeA"),
        ("x-big", &big),
        ("x-correlation-id", b"\xff\xfe"),
        ("origin", b"https://\xff.example.org"),
        ("traceparent", &big),
    ]);
    let mut s = stream(
        r#"{"request_rules": [{"action": "rename", "name": "x-raw", "to": "x-raw-renamed"},
            {"action": "set", "name": "x-copy", "value": {"request_header": "x-big"}},
            {"action": "set", "name": "x-r", "value": {"literal": "1"}, "match": {"path": {"regex": "/.*"}}}],
            "cors": {"allowed_origins": ["https://*.example.org"]}}"#,
        &host,
    );
    assert_eq!(s.on_request_headers(&host), Flow::Continue);
    assert_eq!(
        host.values(Request, "x-raw-renamed"),
        vec!["\u{fffd}\u{fffd}A"]
    );
    assert_eq!(
        host.request_headers
            .borrow()
            .iter()
            .find(|(n, _)| n == "x-copy")
            .unwrap()
            .1,
        big
    );
    assert!(
        host.values(Request, "x-r").is_empty(),
        "non-utf-8 path never matches a regex"
    );
    assert!(matches(UUID, &host.values(Request, "x-correlation-id")[0]));
    host.set_response(&[(":status", b"200"), ("x-up", b"\xff")]);
    s.on_response_headers(&host);
    assert!(host
        .values(Response, "access-control-allow-origin")
        .is_empty());
}

#[test]
fn rules_use_properties_and_skip_when_the_host_lacks_them() {
    let host = get("/api/orders/7", &[("x-tenant", b"acme")]);
    host.set_property_str("source.address", "127.0.0.1:40000");
    let mut s = stream(
        r#"{"request_rules": [
              {"action": "set", "name": "x-client", "value": {"property": "source.address"}},
              {"action": "set", "name": "x-route", "value": {"property": "xds.route_name"}},
              {"action": "append", "name": "x-env", "value": {"literal": "prod"}, "match": {"path": {"prefix": "/api/"}, "methods": ["GET"]}},
              {"action": "set", "name": "x-never", "value": {"literal": "1"}, "match": {"methods": ["POST"]}}],
            "response_rules": [
              {"action": "set", "name": "x-tenant-echo", "value": {"request_header": "x-tenant"}},
              {"action": "remove", "name": "server"},
              {"action": "set_if_absent", "name": "cache-control", "value": {"literal": "no-store"}}]}"#,
        &host,
    );
    s.on_request_headers(&host);
    assert_eq!(host.values(Request, "x-client"), vec!["127.0.0.1:40000"]);
    assert!(host.values(Request, "x-route").is_empty());
    assert_eq!(host.values(Request, "x-env"), vec!["prod"]);
    assert!(host.values(Request, "x-never").is_empty());
    assert_eq!(host.metric("header_injection.rules_skipped"), 1);
    assert!(
        host.logs
            .borrow()
            .iter()
            .any(|(l, m)| *l == gateway_core::ports::LogLevel::Debug
                && m.contains("request_rules[1]"))
    );
    host.set_response(&[
        (":status", b"200"),
        ("server", b"upstream"),
        ("cache-control", b"max-age=5"),
    ]);
    s.on_response_headers(&host);
    assert_eq!(host.values(Response, "x-tenant-echo"), vec!["acme"]);
    assert!(host.values(Response, "server").is_empty());
    assert_eq!(host.values(Response, "cache-control"), vec!["max-age=5"]);
    assert_eq!(host.metric("header_injection.rules_applied"), 5);
}

#[test]
fn without_configuration_the_filter_fails_closed() {
    let host = get("/", &[]);
    let mut s = Stream::new(None, Metrics::default());
    assert_eq!(s.on_request_headers(&host), Flow::Stop);
    assert_eq!(host.local_reply.borrow().as_ref().unwrap().status, 500);
}

#[test]
fn random_failure_does_not_trap() {
    let host = get("/", &[("x-correlation-id", b"bad id")]);
    host.random_fails.set(true);
    let mut s = stream("", &host);
    assert_eq!(s.on_request_headers(&host), Flow::Continue);
    assert!(host.values(Request, "x-correlation-id").is_empty());
    host.set_response(&[(":status", b"200")]);
    s.on_response_headers(&host);
    assert!(host.values(Response, "x-correlation-id").is_empty());
}

#[test]
fn on_kong_a_spoofed_identity_header_is_refused_not_stripped() {
    for (name, value) in [
        ("x-user-id", &b"admin"[..]),
        ("X_User_Roles", b"admin"),
        ("x-auth-status", b"verified"),
    ] {
        let host = get("/api", &[(name, value)]);
        let mut s = stream("", &host).on_host(gateway_core::host_kind::HostKind::Kong);
        assert_eq!(s.on_request_headers(&host), Flow::Stop, "{name}");
        let reply = host.local_reply.borrow().clone().unwrap();
        assert_eq!(reply.status, 400);
        assert_eq!(
            reply.body,
            br#"{"error":"invalid_request","reason":"spoofed_identity_header"}"#
        );
    }
    let host = get("/api", &[("accept", b"*/*")]);
    let mut s = stream("", &host).on_host(gateway_core::host_kind::HostKind::Kong);
    assert_eq!(s.on_request_headers(&host), Flow::Continue);
}

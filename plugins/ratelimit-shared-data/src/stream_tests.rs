//! Stream tests with the fake host: answers, headers, exemptions, shadow mode.

use crate::config::Settings;
use crate::stream::{Flow, Runtime, Stream};
use gateway_core::fake::FakeHost;
use gateway_core::ports::HeaderMapKind;
use std::rc::Rc;

const S: u64 = 1_000_000_000;

fn runtime(json: &str, host: &FakeHost) -> Rc<Runtime> {
    Rc::new(Runtime::new(
        Settings::from_json(json.as_bytes()).unwrap(),
        host,
    ))
}

fn host_for(ip: &str, extra: &[(&str, &[u8])]) -> FakeHost {
    let mut headers: Vec<(&str, &[u8])> = vec![(":method", b"GET"), (":path", b"/api/x?y")];
    headers.extend_from_slice(extra);
    let host = FakeHost::with_request(&headers);
    host.set_property_str("source.address", &format!("{ip}:5000"));
    host.now_nanos.set(100 * S);
    host
}

/// Runs one request on a host sharing `shared`'s data; returns the flow and the host.
fn request(rt: &Rc<Runtime>, host: &FakeHost) -> Flow {
    let mut s = Stream::new(Some(Rc::clone(rt)));
    let flow = s.on_request_headers(host);
    if flow == Flow::Continue {
        s.on_response_headers(host);
    }
    flow
}

const PER_IP: &str = r#"{"rules": [{"name": "per-ip", "key": ["client_ip"],
    "window": {"limit": 2, "seconds": 60}}],
    "exemptions": {"client_cidrs": ["10.0.0.0/8"], "headers": [{"name": "x-user-roles", "values": ["premium"]}]},
    "headers": {"x_ratelimit": true}}"#;

#[test]
fn admitted_requests_carry_the_quota_headers_refusals_a_json_429() {
    let host = host_for("192.0.2.1", &[]);
    let rt = runtime(PER_IP, &host);
    assert_eq!(request(&rt, &host), Flow::Continue);
    assert_eq!(
        host.values(HeaderMapKind::Response, "ratelimit"),
        vec!["\"per-ip\";r=1;t=60"]
    );
    assert_eq!(
        host.values(HeaderMapKind::Response, "ratelimit-policy"),
        vec!["\"per-ip\";q=2;w=60"]
    );
    assert_eq!(
        host.values(HeaderMapKind::Response, "x-ratelimit-remaining"),
        vec!["1"]
    );
    assert_eq!(request(&rt, &host), Flow::Continue);
    assert_eq!(request(&rt, &host), Flow::Stop);
    let reply = host.local_reply.borrow().clone().unwrap();
    assert_eq!(reply.status, 429);
    let header = |n: &str| {
        reply
            .headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
    };
    // Sliding window: the two requests of this window weigh until 30 s into the next one.
    assert_eq!(header("retry-after").as_deref(), Some("90"));
    assert_eq!(header("ratelimit").as_deref(), Some("\"per-ip\";r=0;t=90"));
    assert_eq!(header("content-type").as_deref(), Some("application/json"));
    let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(body["policy"], "per-ip");
    assert_eq!(host.metric("ratelimit.allowed"), 2);
    assert_eq!(host.metric("ratelimit.limited"), 1);
}

#[test]
fn exemptions_by_cidr_and_role() {
    let host = host_for("10.1.2.3", &[]);
    let rt = runtime(PER_IP, &host);
    for _ in 0..5 {
        assert_eq!(request(&rt, &host), Flow::Continue);
    }
    assert_eq!(host.metric("ratelimit.exempt"), 5);
    let host = host_for("192.0.2.1", &[("x-user-roles", b"reader, premium")]);
    for _ in 0..5 {
        assert_eq!(request(&rt, &host), Flow::Continue);
    }
    assert!(host.values(HeaderMapKind::Response, "ratelimit").is_empty());
}

#[test]
fn shadow_mode_counts_and_logs_but_never_blocks() {
    let host = host_for("192.0.2.1", &[]);
    let json = PER_IP.replacen("{\"rules\"", "{\"shadow_mode\": true, \"rules\"", 1);
    let rt = runtime(&json, &host);
    for _ in 0..5 {
        assert_eq!(request(&rt, &host), Flow::Continue);
    }
    assert!(host.local_reply.borrow().is_none());
    assert_eq!(host.metric("ratelimit.shadow_limited"), 3);
    assert_eq!(host.metric("ratelimit.allowed"), 2);
    assert!(host
        .logs
        .borrow()
        .iter()
        .any(|(_, l)| l.contains("shadow mode") && l.contains("per-ip")));
}

#[test]
fn hidden_headers_and_no_match_touch_nothing() {
    let host = host_for("192.0.2.1", &[]);
    let rt = runtime(
        r#"{"rules": [{"name": "r", "match": {"path": {"prefix": "/other"}},
            "window": {"limit": 1, "seconds": 60}},
            {"name": "h", "match": {"headers": [{"name": "x-plan", "equals": "free"}]},
            "window": {"limit": 1, "seconds": 60}}],
            "headers": {"ietf": false}}"#,
        &host,
    );
    for _ in 0..3 {
        assert_eq!(request(&rt, &host), Flow::Continue);
    }
    assert_eq!(host.call_count("shared_data"), 0);
    let host = host_for("192.0.2.1", &[("x-plan", b"free")]);
    assert_eq!(request(&rt, &host), Flow::Continue);
    assert!(host.values(HeaderMapKind::Response, "ratelimit").is_empty());
    assert_eq!(request(&rt, &host), Flow::Stop);
}

#[test]
fn no_configuration_answers_500() {
    let host = host_for("192.0.2.1", &[]);
    let mut s = Stream::new(None);
    assert_eq!(s.on_request_headers(&host), Flow::Stop);
    assert_eq!(host.local_reply.borrow().as_ref().unwrap().status, 500);
}

#[test]
fn a_global_limit_reads_no_header_and_one_record() {
    let host = host_for("192.0.2.1", &[]);
    let rt = runtime(
        r#"{"rules": [{"name": "g", "key": [{"constant": "all"}],
            "window": {"limit": 5, "seconds": 60}}], "headers": {"ietf": false}}"#,
        &host,
    );
    assert_eq!(request(&rt, &host), Flow::Continue);
    host.calls.borrow_mut().clear();
    assert_eq!(request(&rt, &host), Flow::Continue);
    assert_eq!(host.call_count("header_list"), 0);
    assert_eq!(host.call_count("header"), 0);
    assert_eq!(host.call_count("set_header"), 0);
}

const PER_USER: &str = r#"{"rules": [{"name": "per-user", "key": [{"header": "x-user-id"}],
    "window": {"limit": 2, "seconds": 60}}]}"#;

#[test]
fn leaving_the_key_header_out_shares_one_counter_and_never_escapes_the_limit() {
    let anonymous = host_for("192.0.2.1", &[]);
    let rt = runtime(PER_USER, &anonymous);
    assert_eq!(request(&rt, &anonymous), Flow::Continue);
    assert_eq!(request(&rt, &anonymous), Flow::Continue);
    assert_eq!(
        request(&rt, &anonymous),
        Flow::Stop,
        "third header-less request"
    );
    assert_eq!(anonymous.metric("ratelimit.key_missing"), 3);
    // A user who sends the header has a counter of their own, even one named like the marker.
    for user in [&b"alice"[..], b"%-", b""] {
        let named = host_for("192.0.2.1", &[("x-user-id", user)]);
        *named.shared.borrow_mut() = anonymous.shared.borrow().clone();
        assert_eq!(request(&rt, &named), Flow::Continue, "{user:?}");
    }
}

#[test]
fn on_missing_key_skip_leaves_header_less_requests_to_other_rules() {
    let skip = PER_USER.replace(
        r#""seconds": 60}"#,
        r#""seconds": 60}, "on_missing_key": "skip""#,
    );
    let host = host_for("192.0.2.1", &[]);
    let rt = runtime(&skip, &host);
    for _ in 0..5 {
        assert_eq!(request(&rt, &host), Flow::Continue);
    }
    assert_eq!(host.metric("ratelimit.key_missing"), 5);
    assert_eq!(host.metric("ratelimit.allowed"), 0, "no rule was checked");
}

#[test]
fn an_unreadable_header_map_follows_the_failure_mode() {
    let rule = r#"{"rules": [{"name": "per-user", "key": [{"header": "x-user-id"}],
        "window": {"limit": 2, "seconds": 60}}], "shared_data": {"failure_mode": "MODE"}}"#;
    for (mode, flow) in [("open", Flow::Continue), ("closed", Flow::Stop)] {
        let host = host_for("192.0.2.1", &[("x-user-id", b"alice")]);
        host.header_list_fails.set(true);
        let rt = runtime(&rule.replace("MODE", mode), &host);
        assert_eq!(request(&rt, &host), flow, "{mode}");
        assert_eq!(host.metric("ratelimit.store_errors"), 1, "{mode}");
        if flow == Flow::Stop {
            assert_eq!(host.local_reply.borrow().as_ref().unwrap().status, 429);
        }
    }
}

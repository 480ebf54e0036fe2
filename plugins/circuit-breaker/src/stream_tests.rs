//! Stream logic against the fake host: admission, outcomes, open answers, slots.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::config::Settings;
use crate::stream::{assign_slot, Flow, Runtime, Stream};
use gateway_core::fake::{CasRule, FakeHost};
use gateway_core::ports::HeaderMapKind;
use gateway_core::shared_record::Change;
use std::rc::Rc;

const CONFIG: &str = r#"{"key": {"source": "header", "name": "x-backend"},
  "defaults": {"min_requests": 2, "window": {"requests": 4}, "open": {"duration_ms": 1000}}}"#;

fn runtime(host: &FakeHost, json: &str) -> Rc<Runtime> {
    Rc::new(Runtime::new(
        Settings::from_json(json.as_bytes()).unwrap(),
        host,
    ))
}

/// One request for `backend` answered with `status` (None: no answer); the request flow.
fn request(host: &FakeHost, rt: &Rc<Runtime>, backend: &str, status: Option<&str>) -> Flow {
    *host.request_headers.borrow_mut() = vec![
        (":path".into(), b"/".to_vec()),
        ("x-backend".into(), backend.as_bytes().to_vec()),
    ];
    *host.local_reply.borrow_mut() = None;
    let mut s = Stream::new(Some(Rc::clone(rt)));
    let flow = s.on_request_headers(host);
    if flow == Flow::Stop {
        // Envoy runs the filter's response callback on its own local reply.
        host.set_response(&[(":status", b"503")]);
        s.on_response_headers(host);
    } else if let Some(status) = status {
        host.set_response(&[(":status", status.as_bytes())]);
        s.on_response_headers(host);
    }
    s.on_log(host);
    flow
}

#[test]
fn trips_answers_503_with_retry_after_then_probes_and_closes() {
    for rule in [CasRule::Envoy, CasRule::Kong] {
        let host = FakeHost::default();
        host.cas_rule.set(rule);
        host.now_nanos.set(1_000_000_000_000);
        let rt = runtime(&host, CONFIG);
        assert_eq!(request(&host, &rt, "a", Some("200")), Flow::Continue);
        assert_eq!(request(&host, &rt, "a", Some("503")), Flow::Continue);
        assert_eq!(
            host.metric("circuit_breaker.a.trips"),
            1,
            "{rule:?}: 1/2 = 50%"
        );
        assert_eq!(host.metric("circuit_breaker.a.state"), 1);
        // Open: refused locally, and the local reply is not counted as a failure.
        assert_eq!(request(&host, &rt, "a", None), Flow::Stop);
        let reply = host.local_reply.borrow().clone().unwrap();
        assert_eq!(reply.status, 503);
        assert!(reply.headers.contains(&("retry-after".into(), "1".into())));
        assert!(String::from_utf8_lossy(&reply.body).contains(r#""breaker":"a""#));
        assert_eq!(host.metric("circuit_breaker.a.rejected"), 1);
        assert_eq!(host.metric("circuit_breaker.a.failures"), 1);
        // Another breaker is unaffected.
        assert_eq!(request(&host, &rt, "b", Some("200")), Flow::Continue);
        // After the open duration: one probe, which closes it.
        host.now_nanos.set(host.now_nanos.get() + 1_000_000_000);
        assert_eq!(request(&host, &rt, "a", Some("200")), Flow::Continue);
        assert_eq!(host.metric("circuit_breaker.a.probes"), 1);
        assert_eq!(host.metric("circuit_breaker.a.state"), 0);
        let lines: Vec<String> = host.logs.borrow().iter().map(|l| l.1.clone()).collect();
        assert!(
            lines.iter().any(|l| l.contains("closed -> open")),
            "{lines:?}"
        );
        assert!(lines.iter().any(|l| l.contains("open -> half-open")));
        assert!(lines.iter().any(|l| l.contains("half-open -> closed")));
    }
}

#[test]
fn a_probe_without_an_answer_gives_its_slot_back() {
    let host = FakeHost::default();
    let rt = runtime(&host, CONFIG);
    request(&host, &rt, "a", Some("500"));
    request(&host, &rt, "a", Some("500"));
    host.now_nanos.set(2_000_000_000);
    assert_eq!(request(&host, &rt, "a", None), Flow::Continue, "probe");
    assert_eq!(
        request(&host, &rt, "a", None),
        Flow::Continue,
        "slot given back"
    );
    assert_eq!(host.metric("circuit_breaker.a.probes"), 2);
}

#[test]
fn fallback_mode_sets_the_header_and_strips_client_copies() {
    let host = FakeHost::default();
    let rt = runtime(
        &host,
        r#"{"key": {"source": "fixed", "value": "all"},
            "defaults": {"min_requests": 1, "window": {"requests": 1}, "on_open": {"mode": "fallback"}}}"#,
    );
    *host.request_headers.borrow_mut() = vec![("x-circuit-breaker".into(), b"open".to_vec())];
    let mut s = Stream::new(Some(Rc::clone(&rt)));
    assert_eq!(s.on_request_headers(&host), Flow::Continue);
    assert!(host
        .values(HeaderMapKind::Request, "x-circuit-breaker")
        .is_empty());
    host.set_response(&[(":status", b"500")]);
    s.on_response_headers(&host);
    // Routed with the client's copy of the header: passed untracked.
    assert_eq!(host.metric("circuit_breaker.untracked"), 1);
    let mut s = Stream::new(Some(Rc::clone(&rt)));
    assert_eq!(s.on_request_headers(&host), Flow::Continue);
    s.on_response_headers(&host);
    let mut s = Stream::new(Some(Rc::clone(&rt)));
    assert_eq!(s.on_request_headers(&host), Flow::Continue);
    assert_eq!(
        host.values(HeaderMapKind::Request, "x-circuit-breaker"),
        vec!["open"]
    );
    // The maintenance answer is not an outcome of the breaker's upstream.
    host.set_response(&[(":status", b"500")]);
    s.on_response_headers(&host);
    assert_eq!(host.metric("circuit_breaker.all.failures"), 1);
    assert!(host.local_reply.borrow().is_none());
}

#[test]
fn four_xx_is_not_a_failure_and_resets_count_from_envoy_details() {
    let host = FakeHost::default();
    let rt = runtime(&host, CONFIG);
    request(&host, &rt, "a", Some("404"));
    request(&host, &rt, "a", Some("429"));
    assert_eq!(host.metric("circuit_breaker.a.trips"), 0);
    assert_eq!(host.metric("circuit_breaker.a.successes"), 2);
    // Without 503 among the failure statuses, Envoy's reset details still make it a failure.
    let rt = runtime(
        &host,
        r#"{"key": {"source": "fixed", "value": "r"},
            "defaults": {"min_requests": 1, "window": {"requests": 1}, "failure": {"status_codes": [500]}}}"#,
    );
    host.set_property_str(
        "response.code_details",
        "upstream_reset_before_response_started{connection_failure}",
    );
    request(&host, &rt, "r", Some("503"));
    assert_eq!(host.metric("circuit_breaker.r.trips"), 1);
}

#[test]
fn keys_beyond_max_breakers_pass_untracked() {
    let host = FakeHost::default();
    let rt = runtime(
        &host,
        r#"{"key": {"source": "header", "name": "x-backend"}, "max_breakers": 2}"#,
    );
    for b in ["a", "b", "c", "a"] {
        assert_eq!(request(&host, &rt, b, Some("200")), Flow::Continue);
    }
    assert_eq!(host.metric("circuit_breaker.untracked"), 1);
    assert_eq!(host.metric("circuit_breaker.a.successes"), 2);
    let index = host
        .shared
        .borrow()
        .get("circuit_breaker/index")
        .unwrap()
        .0
        .clone();
    assert!(index.ends_with(b"a\nb"));
}

#[test]
fn slots_are_assigned_once() {
    assert_eq!(
        assign_slot(b"", "a", 2),
        Change::Write(b"a".to_vec(), Some(0))
    );
    assert_eq!(
        assign_slot(b"a", "b", 2),
        Change::Write(b"a\nb".to_vec(), Some(1))
    );
    assert_eq!(assign_slot(b"a\nb", "b", 2), Change::Keep(Some(1)));
    assert_eq!(assign_slot(b"a\nb", "c", 2), Change::Keep(None));
}

#[test]
fn on_kong_envoys_upstream_signals_are_never_read() {
    let host = FakeHost::default();
    let settings = Settings::from_json(
        br#"{"key": {"source": "fixed", "value": "r"},
            "defaults": {"min_requests": 1, "window": {"requests": 1}, "failure": {"status_codes": [500]}}}"#,
    )
    .unwrap();
    let rt =
        Rc::new(Runtime::new(settings, &host).on_host(gateway_core::host_kind::HostKind::Kong));
    host.set_property_str(
        "response.code_details",
        "upstream_reset_before_response_started{connection_failure}",
    );
    request(&host, &rt, "r", Some("503"));
    assert_eq!(
        host.metric("circuit_breaker.r.trips"),
        0,
        "no signal read on kong"
    );
    assert!(
        !host.calls.borrow().contains(&"property"),
        "{:?}",
        host.calls.borrow()
    );
}

//! proxy_http_call: captured, answered, failed, timed out; upstream validation per profile.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::*;
use host_harness::{Action, CalloutResponse, Profile};
use std::time::Duration;

fn start(profile: Profile, upstream: &str) -> (host_harness::Harness, host_harness::HttpStream) {
    let h = harness(probe(profile).clusters(["auth"]));
    let mut s = h.stream().unwrap();
    let op = format!("reqh~callout~{upstream}~/check~500");
    let a = s.send_request_headers(&request(&[&op]), false).unwrap();
    assert_eq!(a, Action::Pause);
    (h, s)
}

#[test]
fn callout_is_captured_and_answered() {
    for (profile, upstream) in [(Profile::Envoy, "auth"), (Profile::Kong, "auth.local:8080")] {
        let (h, s) = start(profile, upstream);
        let callouts = h.callouts();
        assert_eq!(callouts.len(), 1);
        let c = &callouts[0];
        assert_eq!(c.upstream, upstream);
        assert_eq!(c.header(":method").as_deref(), Some("POST"));
        assert_eq!(c.header(":path").as_deref(), Some("/check"));
        assert_eq!(c.body, b"ping");
        assert_eq!(c.trailers, vec![("x-trailer".to_string(), b"t".to_vec())]);
        assert_eq!(c.timeout, Duration::from_millis(500));
        assert_eq!(c.context_id, s.context_id());
        assert!(!s.request_resumed());

        h.respond_callout(
            c.id,
            CalloutResponse::status(200)
                .header("x-a", "1")
                .body("ok")
                .trailer("x-t", "2"),
        )
        .unwrap();
        assert_eq!(header(&s, "x-probe-callout-result").as_deref(), Some("200"));
        assert_eq!(header(&s, "x-probe-callout-body").as_deref(), Some("ok"));
        assert_eq!(header(&s, "x-probe-callout-trailers").as_deref(), Some("1"));
        assert!(s.request_resumed());
        assert!(h.callouts().is_empty());
    }
}

#[test]
fn failed_and_timed_out_callouts_arrive_with_no_headers() {
    let (h, s) = start(Profile::Envoy, "auth");
    h.fail_callout(h.callouts()[0].id).unwrap();
    assert_eq!(
        header(&s, "x-probe-callout-result").as_deref(),
        Some("failed")
    );

    let (h, s) = start(Profile::Envoy, "auth");
    h.advance_clock(Duration::from_millis(499)).unwrap();
    assert!(header(&s, "x-probe-callout-result").is_none());
    h.advance_clock(Duration::from_millis(1)).unwrap();
    assert_eq!(
        header(&s, "x-probe-callout-result").as_deref(),
        Some("failed")
    );
    assert!(s.request_resumed());
    assert!(h.respond_callout(1, CalloutResponse::status(200)).is_err());
}

#[test]
fn upstream_rules_differ_between_profiles() {
    let cases = [
        (Profile::Envoy, "unknown-cluster", "badargument"),
        (Profile::Envoy, "auth.local:8080", "badargument"),
        (Profile::Kong, "auth", "badargument"),
        (Profile::Kong, "not a host:80", "badargument"),
    ];
    for (profile, upstream, status) in cases {
        let h = harness(probe(profile).clusters(["auth"]));
        let s = run(&h, 0, &[&format!("reqh~callout~{upstream}~/x~100")]);
        assert_eq!(
            header(&s, "x-probe-callout-status").as_deref(),
            Some(status),
            "{profile:?} {upstream}"
        );
        assert!(h.callouts().is_empty());
    }
}

#[test]
fn local_response_from_a_callout_response() {
    let (h, s) = start(Profile::Envoy, "auth");
    // The probe runs `callout` phase ops after the response arrives.
    drop(s);
    let mut s = h.stream().unwrap();
    s.send_request_headers(
        &request(&["reqh~callout~auth~/c~100", "callout~respond~401~no"]),
        false,
    )
    .unwrap();
    let id = h.callouts().last().unwrap().id;
    h.respond_callout(id, CalloutResponse::status(403)).unwrap();
    let lr = s.local_response().unwrap();
    assert_eq!(lr.status, 401);
    assert_eq!(lr.body, b"no");
}

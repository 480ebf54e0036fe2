//! proxy_http_call: captured, answered, failed, timed out; upstream validation, allowed phases,
//! failure delivery and resumption per profile.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::*;
use host_harness::{Action, CalloutResponse, Harness, HarnessError, HostTrap, LogLevel, Profile};
use std::time::Duration;

fn start(profile: Profile, upstream: &str) -> (host_harness::Harness, host_harness::HttpStream) {
    start_with(profile, upstream, &[])
}

fn start_with(
    profile: Profile,
    upstream: &str,
    more: &[&str],
) -> (host_harness::Harness, host_harness::HttpStream) {
    let h = harness(probe(profile).clusters(["auth"]));
    let mut s = h.stream().unwrap();
    let op = format!("reqh~callout~{upstream}~/check~500");
    let mut ops = vec![op.as_str()];
    ops.extend_from_slice(more);
    let a = s.send_request_headers(&request(&ops), false).unwrap();
    assert_eq!(a, Action::Pause);
    (h, s)
}

fn engine_message(err: &HarnessError) -> String {
    match err.host_trap() {
        Some(HostTrap::Engine { message, .. }) => message.clone(),
        _ => panic!("not an engine trap: {err}"),
    }
}

const DISPATCH_ONLY: &str = "host trap (bad usage): can only send HTTP dispatch during \
    \"on_request_headers\", \"on_request_body\", \"on_dispatch_response\", \"on_tick\"";

#[test]
fn callout_is_captured_and_answered() {
    for (profile, upstream) in [
        (Profile::Envoy, "auth"),
        (Profile::Kong, "auth.local:8080"),
        (Profile::Kong38, "auth.local:8080"),
    ] {
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
        // ngx_http_proxy_wasm_dispatch: call ids start at 0 on Kong.
        let first = if profile.is_kong() { "0" } else { "1" };
        assert_eq!(header(&s, "x-probe-callout-token").as_deref(), Some(first));
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
        // Kong passes 0 trailers (ngx_http_proxy_wasm_on_dispatch_response).
        let trailers = if profile.is_kong() { "0" } else { "1" };
        assert_eq!(
            header(&s, "x-probe-callout-trailers").as_deref(),
            Some(trailers)
        );
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
fn kong_39_delivers_failures_with_a_dispatch_status_and_38_does_not() {
    let status_op = "callout~dispatch-status~:dispatch_status";
    // 3.9 (4c610b49): on_http_call_response(token, 0, 0, 0) with :dispatch_status.
    let (h, s) = start_with(Profile::Kong, "auth:80", &[status_op, "reqh~noresume"]);
    h.fail_callout(h.callouts()[0].id).unwrap();
    assert_eq!(
        header(&s, "x-probe-callout-result").as_deref(),
        Some("failed")
    );
    assert_eq!(
        header(&s, "x-probe-callout-header").as_deref(),
        Some("broken connection")
    );
    assert!(h.logged("dispatch failed: tcp socket - Connection refused"));
    assert!(
        s.request_resumed(),
        "the engine resumes after the last call"
    );

    let (h, s) = start_with(Profile::Kong, "auth:80", &[status_op]);
    h.advance_clock(Duration::from_millis(500)).unwrap();
    assert_eq!(
        header(&s, "x-probe-callout-header").as_deref(),
        Some("timeout")
    );
    assert!(h.logged("dispatch failed: tcp socket - timed out connecting to \"auth:80\""));

    let (h, s) = start_with(Profile::Kong, "auth:80", &[status_op]);
    h.respond_callout(h.callouts()[0].id, CalloutResponse::status(204))
        .unwrap();
    assert_eq!(header(&s, "x-probe-callout-header").as_deref(), Some("ok"));

    // 3.8: the failure is only logged; the filter is never called and the request goes on.
    let (h, s) = start_with(Profile::Kong38, "auth:80", &[status_op, "reqh~noresume"]);
    h.fail_callout_with(h.callouts()[0].id, "resolver failure")
        .unwrap();
    assert_eq!(header(&s, "x-probe-callout-result"), None);
    assert!(h
        .logs_at(LogLevel::Error)
        .contains(&"dispatch failed: tcp socket - resolver failure".to_string()));
    assert!(s.request_resumed());
    // 3.8 has no :dispatch_status.
    let (h, s) = start_with(Profile::Kong38, "auth:80", &[status_op]);
    h.respond_callout(h.callouts()[0].id, CalloutResponse::status(204))
        .unwrap();
    assert_eq!(
        header(&s, "x-probe-callout-header").as_deref(),
        Some("<none>")
    );
}

#[test]
fn kong_resumes_the_request_after_the_last_call_envoy_does_not() {
    for profile in PROFILES {
        let (h, s) = start_with(
            profile,
            if profile.is_kong() { "auth:80" } else { "auth" },
            &["reqh~callout~auth:80~/second~500", "reqh~noresume"],
        );
        let ids: Vec<u64> = h.callouts().iter().map(|c| c.id).collect();
        if !profile.is_kong() {
            // The second callout went to an unknown Envoy cluster.
            assert_eq!(ids.len(), 1);
        } else {
            assert_eq!(ids.len(), 2);
        }
        h.respond_callout(ids[0], CalloutResponse::status(200))
            .unwrap();
        if profile.is_kong() {
            assert!(!s.request_resumed(), "{profile:?}: one call still pending");
            h.respond_callout(ids[1], CalloutResponse::status(200))
                .unwrap();
            assert!(s.request_resumed(), "{profile:?}");
        } else {
            assert!(!s.request_resumed());
        }
    }
}

#[test]
fn upstream_rules_differ_between_profiles() {
    for (profile, upstream, status) in [
        (Profile::Envoy, "unknown-cluster", "badargument"),
        (Profile::Envoy, "auth.local:8080", "badargument"),
    ] {
        let h = harness(probe(profile).clusters(["auth"]));
        let s = run(&h, 0, &[&format!("reqh~callout~{upstream}~/x~100")]);
        assert_eq!(
            header(&s, "x-probe-callout-status").as_deref(),
            Some(status),
            "{profile:?} {upstream}"
        );
        assert!(h.callouts().is_empty());
    }
    for profile in KONGS {
        // ngx_parse_url accepts a host without a port (80) and does not resolve names.
        for upstream in ["auth", "not a host:80", "[::1]:8080", "unix:/tmp/s.sock"] {
            let h = harness(probe(profile));
            let s = run(&h, 0, &[&format!("reqh~callout~{upstream}~/x~100")]);
            assert!(
                header(&s, "x-probe-callout-token").is_some(),
                "{profile:?} {upstream}"
            );
            assert_eq!(h.callouts()[0].upstream, upstream);
        }
        for (upstream, reason) in [
            (":80", "no host"),
            ("auth:abc", "invalid port"),
            ("auth:0", "invalid port"),
            ("auth:80/x", "invalid host"),
        ] {
            let h = harness(probe(profile));
            let mut s = h.stream().unwrap();
            let err = s
                .send_request_headers(
                    &request(&[&format!("reqh~callout~{upstream}~/x~100")]),
                    false,
                )
                .unwrap_err();
            assert_eq!(
                engine_message(&err),
                format!("dispatch failed: tcp socket - {reason}"),
                "{profile:?} {upstream}"
            );
        }
    }
}

#[test]
fn kong_dispatches_only_in_request_tick_and_callout_steps() {
    for profile in KONGS {
        for phase in ["resph", "respb", "log", "done"] {
            let h = harness(probe(profile));
            let mut s = h.stream().unwrap();
            let op = format!("{phase}~callout~auth:80~/x~100");
            s.send_request_headers(&request(&[&op]), false).unwrap();
            let err = match phase {
                "resph" => s.send_response_headers(&[(":status", "200")], false),
                "respb" => {
                    s.send_response_headers(&[(":status", "200")], false)
                        .unwrap();
                    s.send_response_body("x", true)
                }
                "log" => s.log().map(|_| Action::Continue),
                _ => s.done().map(|_| Action::Continue),
            }
            .unwrap_err();
            assert_eq!(engine_message(&err), DISPATCH_ONLY, "{profile:?} {phase}");
        }
        // on_configure and on_vm_start.
        let h = probe(profile)
            .plugin_config("callout=auth:80")
            .build(&probe_wasm())
            .unwrap();
        let err = h.configure().unwrap_err();
        assert_eq!(engine_message(&err), DISPATCH_ONLY, "{profile:?} configure");
        let h = probe(profile)
            .vm_config("callout=auth:80")
            .build(&probe_wasm())
            .unwrap();
        let err = h.configure().unwrap_err();
        assert_eq!(engine_message(&err), DISPATCH_ONLY, "{profile:?} vm start");
        // on_tick dispatches; the root gets the response.
        let h = harness(probe(profile).plugin_config("tick_ms=100\ntick_callout=auth:80"));
        h.advance_clock(Duration::from_millis(100)).unwrap();
        assert!(h.logged("probe tick-callout=token:0"), "{profile:?}");
        h.respond_callout(h.callouts()[0].id, CalloutResponse::status(201))
            .unwrap();
        assert!(h.logged("probe root-callout-result=201"), "{profile:?}");
        // on_http_call_response dispatches again.
        let (h, _s) = start_with(profile, "auth:80", &["callout~callout~auth:80~/again~100"]);
        h.respond_callout(h.callouts()[0].id, CalloutResponse::status(200))
            .unwrap();
        assert_eq!(h.callouts().len(), 1);
        assert_eq!(h.callouts()[0].header(":path").as_deref(), Some("/again"));
    }
    // Envoy dispatches from anywhere.
    let h = harness(
        probe(Profile::Envoy)
            .plugin_config("callout=auth")
            .clusters(["auth"]),
    );
    assert!(h.logged("probe configure-callout=token:1"));
    let mut s = h.stream().unwrap();
    s.send_request_headers(&request(&["resph~callout~auth~/x~100"]), false)
        .unwrap();
    s.send_response_headers(&[(":status", "200")], false)
        .unwrap();
    assert_eq!(h.callouts().len(), 2);
}

const WAT_DISPATCH: &str = r#"(module
  (import "env" "proxy_http_call"
    (func $call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_set_tick_period_milliseconds" (func $tick (param i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "auth:80")
  (data (i32.const 32) "st=")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) i32.const 1024)
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (drop (call $tick (i32.const 10))) i32.const 1)
  (func $dispatch (result i32)
    ;; no headers at all: no :method
    (call $call (i32.const 16) (i32.const 7) (i32.const 0) (i32.const 0) (i32.const 0)
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 1000) (i32.const 100)))
  (func (export "proxy_on_tick") (param i32)
    (i32.store8 (i32.const 35) (i32.add (i32.const 48) (call $dispatch)))
    (drop (call $log (i32.const 2) (i32.const 32) (i32.const 4))))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $dispatch)) i32.const 0))"#;

#[test]
fn kong_missing_method_traps_in_a_request_and_is_logged_in_a_root() {
    for profile in KONGS {
        let h = Harness::builder()
            .profile(profile)
            .build(WAT_DISPATCH.as_bytes())
            .unwrap();
        assert!(h.configure().unwrap());
        h.advance_clock(Duration::from_millis(10)).unwrap();
        assert!(h
            .logs_at(LogLevel::Error)
            .contains(&"dispatch failed: no :method".to_string()));
        // InternalFailure is 10: '0' + 10 = ':'.
        assert!(h.logged("st=:"), "{:?}", h.logs());
        let mut s = h.stream().unwrap();
        let err = s
            .send_request_headers(&[(":path", "/")], false)
            .unwrap_err();
        assert_eq!(engine_message(&err), "dispatch failed: no :method");
    }
    // Envoy: BadArgument (2), no trap.
    let h = Harness::builder()
        .clusters(["auth:80"])
        .build(WAT_DISPATCH.as_bytes())
        .unwrap();
    assert!(h.configure().unwrap());
    let mut s = h.stream().unwrap();
    s.send_request_headers(&[(":path", "/")], false).unwrap();
}

#[test]
fn local_response_from_a_callout_response() {
    for profile in PROFILES {
        let upstream = if profile.is_kong() { "auth:80" } else { "auth" };
        let h = harness(probe(profile).clusters(["auth"]));
        let mut s = h.stream().unwrap();
        s.send_request_headers(
            &request(&[
                &format!("reqh~callout~{upstream}~/c~100"),
                "callout~respond~401~no",
            ]),
            false,
        )
        .unwrap();
        let id = h.callouts().last().unwrap().id;
        h.respond_callout(id, CalloutResponse::status(403)).unwrap();
        let lr = s.local_response().unwrap();
        assert_eq!(lr.status, 401);
        // ngx_http_wasm_stash_local_response appends a linefeed to the body.
        let body: &[u8] = if profile.is_kong() { b"no\n" } else { b"no" };
        assert_eq!(lr.body, body, "{profile:?}");
    }
}

#[test]
fn kong_local_response_cancels_pending_calls() {
    for profile in KONGS {
        let h = harness(probe(profile));
        let mut s = h.stream().unwrap();
        s.send_request_headers(
            &request(&["reqh~callout~auth:80~/c~100", "reqh~respond~403~denied"]),
            false,
        )
        .unwrap();
        assert!(h.callouts().is_empty());
        assert!(h.logged("local response produced, cancelling pending dispatch calls"));
        assert_eq!(s.local_response().unwrap().status, 403);
    }
}

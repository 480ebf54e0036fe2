//! Header maps: get/add/replace/remove/pairs, bytes values, duplicates, end_of_stream, Pause.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::*;
use host_harness::{Action, HostTrap, LogLevel, Profile};

#[test]
fn filter_mutations_are_visible_with_duplicates_in_order() {
    for profile in PROFILES {
        let h = harness(probe(profile));
        let mut s = h.stream().unwrap();
        let mut req = request(&[
            "reqh~add~X-Added~one",
            "reqh~add~x-added~two",
            "reqh~del~x-remove-me",
            "reqh~get~x-raw",
        ]);
        req.push(("X-Remove-Me".into(), b"a".to_vec()));
        req.push(("x-remove-me".into(), b"b".to_vec()));
        req.push(("x-raw".into(), vec![0xff, 0xfe, 0x41]));
        assert_eq!(
            s.send_request_headers(&req, true).unwrap(),
            Action::Continue
        );
        assert_eq!(
            s.request_header_values("x-added"),
            vec![b"one".to_vec(), b"two".to_vec()]
        );
        assert!(s.request_header("x-remove-me").is_none());
        assert_eq!(
            s.request_header("x-probe-got"),
            Some(vec![0xff, 0xfe, 0x41])
        );
        let names: Vec<String> = s.request_headers().into_iter().map(|(n, _)| n).collect();
        assert!(names.iter().all(|n| *n == n.to_ascii_lowercase()));
        let eos = if !profile.is_kong() { "true" } else { "false" };
        assert_eq!(
            header(&s, "x-probe-eos").as_deref(),
            Some(eos),
            "{profile:?}"
        );
    }
}

/// Envoy 1.40's `setCopy` removes every duplicate and appends the new value (as the real-Envoy
/// scenario tests show). Kong (ngx_http_wasm_set_header_helper) updates a single value in
/// place, but with duplicates it clears every value: the filter sees none, the upstream all.
#[test]
fn replace_per_profile() {
    let ops = ["reqh~set~x-dup~new", "reqh~set~x-one~new"];
    let mut req = request(&ops);
    req.push(("x-dup".into(), b"1".to_vec()));
    req.push(("x-one".into(), b"1".to_vec()));
    req.push(("x-after".into(), b"a".to_vec()));
    req.push(("x-dup".into(), b"2".to_vec()));

    let h = harness(probe(Profile::Envoy));
    let mut s = h.stream().unwrap();
    s.send_request_headers(&req, false).unwrap();
    assert_eq!(s.request_header_values("x-dup"), vec![b"new".to_vec()]);
    let names: Vec<String> = s.request_headers().into_iter().map(|(n, _)| n).collect();
    let pos = |name: &str| names.iter().position(|n| n == name).unwrap();
    assert!(pos("x-dup") > pos("x-after"));
    assert!(pos("x-one") > pos("x-after"));

    for profile in KONGS {
        let h = harness(probe(profile));
        let mut s = h.stream().unwrap();
        s.send_request_headers(&req, false).unwrap();
        assert!(s.request_header_values("x-dup").is_empty(), "{profile:?}");
        assert_eq!(s.request_header_values("x-one"), vec![b"new".to_vec()]);
        let names: Vec<String> = s.request_headers().into_iter().map(|(n, _)| n).collect();
        let pos = |name: &str| names.iter().position(|n| n == name).unwrap();
        assert!(pos("x-one") < pos("x-after"), "{profile:?}: in place");
        let up: Vec<(String, String)> = s
            .upstream_request_headers()
            .into_iter()
            .map(|(n, v)| (n, String::from_utf8(v).unwrap()))
            .filter(|(n, _)| !n.starts_with("x-probe"))
            .collect();
        let expect: Vec<(String, String)> = [
            ("x-dup", "new"),
            ("x-one", "new"),
            ("x-after", "a"),
            ("x-dup", "2"),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
        assert_eq!(up, expect, "{profile:?}");
    }
}

#[test]
fn upstream_request_headers_keep_removed_lines_on_kong() {
    let ops = ["reqh~del~x-secret", "reqh~add~x-new~1"];
    let mut req = request(&ops);
    req.push(("x-secret".into(), b"s3cret".to_vec()));
    req.push(("x-keep".into(), b"k".to_vec()));
    for profile in PROFILES {
        let h = harness(probe(profile));
        let mut s = h.stream().unwrap();
        s.send_request_headers(&req, false).unwrap();
        assert!(s.request_header("x-secret").is_none());
        let up: Vec<String> = s
            .upstream_request_headers()
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| !n.starts_with("x-probe"))
            .collect();
        assert!(up.iter().all(|n| !n.starts_with(':')), "{up:?}");
        if profile.is_kong() {
            assert_eq!(up, ["x-secret", "x-keep", "x-new"], "{profile:?}");
            assert_eq!(
                s.upstream_request_headers()
                    .iter()
                    .find(|(n, _)| n == "x-secret")
                    .map(|(_, v)| v.clone()),
                Some(b"s3cret".to_vec())
            );
        } else {
            assert_eq!(up, ["x-keep", "x-new"]);
        }
    }
    // set_header_map_pairs: every original line stays for the upstream, the pairs follow.
    let mut req = request(&["reqh~replace-all~a=1~b=2"]);
    req.push(("x-c".into(), b"c".to_vec()));
    for profile in KONGS {
        let h = harness(probe(profile));
        let mut s = h.stream().unwrap();
        s.send_request_headers(&req, false).unwrap();
        let live: Vec<String> = s
            .request_headers()
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| !n.starts_with("x-probe") && !n.starts_with(':'))
            .collect();
        assert_eq!(live, ["a", "b"]);
        let up: Vec<String> = s
            .upstream_request_headers()
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| !n.starts_with("x-probe"))
            .collect();
        assert_eq!(up, ["x-c", "a", "b"], "{profile:?}");
    }
}

#[test]
fn kong_authority_is_the_server_block_not_the_client_host() {
    let ops = [
        "reqh~get~:authority",
        "reqh~set~:authority~evil",
        "reqh~set~:path~/new",
    ];
    for profile in KONGS {
        let h = harness(probe(profile));
        let s = run(&h, 0, &ops);
        assert_eq!(header(&s, "x-probe-got").as_deref(), Some("localhost:8000"));
        assert!(h.logged("cannot set read-only \":authority\" header"));
        assert_eq!(s.request_header(":path"), Some(b"/new".to_vec()));
        let h = harness(probe(profile).kong_server("kong.example", 8443));
        let s = run(&h, 0, &ops[..1]);
        assert_eq!(
            header(&s, "x-probe-got").as_deref(),
            Some("kong.example:8443")
        );
    }
    let h = harness(probe(Profile::Envoy));
    let s = run(&h, 0, &ops[..1]);
    assert_eq!(header(&s, "x-probe-got").as_deref(), Some("example.com"));
}

#[test]
fn kong_refuses_to_add_a_present_builtin_header() {
    let mut req = request(&["reqh~add~authorization~Basic b", "reqh~add~x-multi~2"]);
    req.push(("authorization".into(), b"Bearer a".to_vec()));
    req.push(("x-multi".into(), b"1".to_vec()));
    for profile in KONGS {
        let h = harness(probe(profile));
        let mut s = h.stream().unwrap();
        s.send_request_headers(&req, false).unwrap();
        assert_eq!(
            s.request_header_values("authorization"),
            vec![b"Bearer a".to_vec()]
        );
        assert_eq!(s.request_header_values("x-multi").len(), 2);
        assert!(h.logged("cannot add new \"Authorization\" builtin request header"));
    }
}

#[test]
fn kong_header_writes_are_limited_to_their_steps() {
    for profile in KONGS {
        // Request headers after the response started.
        let h = harness(probe(profile));
        let mut s = run(&h, 0, &["log~add~x-late~1"]);
        s.send_response_headers(&[(":status", "200")], false)
            .unwrap();
        let err = s.log().unwrap_err();
        assert!(
            err.to_string().contains(
                "host trap (bad usage): can only set request headers before response is produced"
            ),
            "{err}"
        );
        // Response headers once the body flows.
        let h = harness(probe(profile));
        let mut s = run(&h, 0, &["respb~radd~x-late~1"]);
        s.send_response_headers(&[(":status", "200")], false)
            .unwrap();
        let err = s.send_response_body("b", true).unwrap_err();
        assert!(
            err.to_string().contains(
                "host trap (bad usage): can only set response headers before \"on_response_body\""
            ),
            "{err}"
        );
        // Response headers set during the request are kept for the response.
        let h = harness(probe(profile));
        let mut s = run(&h, 0, &["reqh~count~response", "reqh~radd~x-early~1"]);
        assert_eq!(header(&s, "x-probe-count").as_deref(), Some("0"));
        s.send_response_headers(&[(":status", "200"), ("server", "up")], false)
            .unwrap();
        assert_eq!(resp_header(&s, "x-early").as_deref(), Some("1"));
        assert_eq!(resp_header(&s, "server").as_deref(), Some("up"));
    }
}

#[test]
fn kong_root_context_reads_crash_and_set_effective_context_is_a_no_op() {
    for profile in PROFILES {
        let h = harness(probe(profile).plugin_config("tick_ms=10\ntick_effective=2"));
        let mut s = h.stream().unwrap();
        assert_eq!(s.context_id(), 2);
        // Envoy would switch to the root context (and the probe's header writes would then
        // fail): point it at the stream itself.
        s.send_request_headers(&request(&["reqh~effective~2"]), false)
            .unwrap();
        assert_eq!(header(&s, "x-probe-effective").as_deref(), Some("ok"));
        let result = h.advance_clock(std::time::Duration::from_millis(10));
        if profile.is_kong() {
            let err = result.unwrap_err();
            assert!(
                matches!(err.host_trap(), Some(HostTrap::Crash { .. })),
                "{profile:?}: {err}"
            );
            assert!(err.to_string().contains("crash the nginx worker"), "{err}");
            assert!(h.logged("probe tick-effective=ok"));
        } else {
            result.unwrap();
            assert!(h.logged("probe tick-path=/probe"));
        }
    }
}

#[test]
fn kong_pseudo_header_removal_and_bad_status() {
    for profile in KONGS {
        let h = harness(probe(profile));
        let mut s = h.stream().unwrap();
        let err = s
            .send_request_headers(&request(&["reqh~del~:path"]), false)
            .unwrap_err();
        assert!(
            matches!(err.host_trap(), Some(HostTrap::Crash { .. })),
            "{err}"
        );
        let h = harness(probe(profile));
        let mut s = run(&h, 0, &["resph~set~:status~42"]);
        s.send_response_headers(&[(":status", "200")], false)
            .unwrap();
        assert!(h.logged("ignoring attempt to set invalid response status: \"42\""));
        assert_eq!(resp_header(&s, ":status").as_deref(), Some("200"));
    }
}

#[test]
fn set_pairs_replaces_the_map_and_count_sees_it() {
    let h = harness(probe(Profile::Envoy));
    let s = run(&h, 0, &["reqh~replace-all~a=1~b=2~a=3", "reqh~count"]);
    let headers = s.request_headers();
    assert_eq!(headers[0], ("a".to_string(), b"1".to_vec()));
    assert_eq!(headers[1], ("b".to_string(), b"2".to_vec()));
    assert_eq!(headers[2], ("a".to_string(), b"3".to_vec()));
    assert_eq!(header(&s, "x-probe-count").as_deref(), Some("3"));
}

#[test]
fn response_headers_and_trailers() {
    for profile in PROFILES {
        let h = harness(probe(profile));
        let mut s = run(
            &h,
            0,
            &[
                "resph~add~x-resp~yes",
                "resph~del~server",
                "respt~add~x-t~1",
            ],
        );
        let a = s
            .send_response_headers(&[(":status", "200"), ("server", "up")], false)
            .unwrap();
        assert_eq!(a, Action::Continue);
        assert_eq!(resp_header(&s, "x-resp").as_deref(), Some("yes"));
        assert!(s.response_header("server").is_none());
        s.send_response_trailers(&[("grpc-status", "0")]).unwrap();
        let trailer_added = s.response_trailers().iter().any(|(n, _)| n == "x-t");
        // Kong never calls trailer callbacks.
        assert_eq!(trailer_added, !profile.is_kong(), "{profile:?}");
    }
}

#[test]
fn pause_and_resume_are_observable() {
    for profile in PROFILES {
        let h = harness(probe(profile));
        let mut s = h.stream().unwrap();
        let a = s
            .send_request_headers(&request(&["reqh~pause", "reqb~resume~request"]), false)
            .unwrap();
        assert_eq!(a, Action::Pause);
        assert!(!s.request_resumed());
        s.send_request_body("x", true).unwrap();
        assert!(s.request_resumed());
    }
}

#[test]
fn kong_ignores_pause_in_response_headers() {
    for profile in KONGS {
        let h = harness(probe(profile));
        let mut s = run(&h, 0, &["resph~pause"]);
        let a = s
            .send_response_headers(&[(":status", "200")], false)
            .unwrap();
        assert_eq!(a, Action::Continue);
        assert!(h.logs_at(LogLevel::Warn).contains(
            &"\"ResponseHeaders\" returned \"PAUSE\": local response expected but none produced"
                .to_string()
        ));
    }

    let h = harness(probe(Profile::Envoy));
    let mut s = run(&h, 0, &["resph~pause"]);
    let a = s
        .send_response_headers(&[(":status", "200")], false)
        .unwrap();
    assert_eq!(a, Action::Pause);
}

#[test]
fn response_map_is_not_available_during_request_headers() {
    // Envoy returns BadArgument for a map that does not exist yet; the SDK panics on it,
    // so reading response headers in on_request_headers kills the VM, as in Envoy.
    let h = harness(probe(Profile::Envoy));
    let mut s = h.stream().unwrap();
    let err = s
        .send_request_headers(&request(&["reqh~count~response"]), false)
        .unwrap_err();
    assert!(err.to_string().contains("unexpected status: 2"), "{err}");
    // In on_response_headers the map exists.
    let h = harness(probe(Profile::Envoy));
    let mut s = run(&h, 0, &["resph~count~response"]);
    s.send_response_headers(&[(":status", "204")], true)
        .unwrap();
    assert_eq!(resp_header(&s, "x-probe-count").as_deref(), Some("2"));
}

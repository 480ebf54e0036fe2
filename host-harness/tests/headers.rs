//! Header maps: get/add/replace/remove/pairs, bytes values, duplicates, end_of_stream, Pause.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::*;
use host_harness::{Action, Profile};

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
        let eos = if profile == Profile::Envoy {
            "true"
        } else {
            "false"
        };
        assert_eq!(
            header(&s, "x-probe-eos").as_deref(),
            Some(eos),
            "{profile:?}"
        );
    }
}

/// Both hosts leave one value (Envoy 1.40's `setCopy` removes every duplicate, as the
/// real-Envoy scenario tests show); Envoy appends it, Kong keeps the first one's place.
#[test]
fn replace_leaves_one_value_placed_per_profile() {
    let ops = ["reqh~set~x-dup~new"];
    let mut req = request(&ops);
    req.push(("x-dup".into(), b"1".to_vec()));
    req.push(("x-after".into(), b"a".to_vec()));
    req.push(("x-dup".into(), b"2".to_vec()));

    for (profile, dup_after_x_after) in [(Profile::Envoy, true), (Profile::Kong, false)] {
        let h = harness(probe(profile));
        let mut s = h.stream().unwrap();
        s.send_request_headers(&req, false).unwrap();
        assert_eq!(
            s.request_header_values("x-dup"),
            vec![b"new".to_vec()],
            "{profile:?}"
        );
        let names: Vec<String> = s.request_headers().into_iter().map(|(n, _)| n).collect();
        let pos = |name: &str| names.iter().position(|n| n == name).unwrap();
        assert_eq!(
            pos("x-dup") > pos("x-after"),
            dup_after_x_after,
            "{profile:?}"
        );
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
        assert_eq!(trailer_added, profile == Profile::Envoy, "{profile:?}");
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
fn kong_refuses_pause_in_response_headers() {
    let h = harness(probe(Profile::Kong));
    let mut s = run(&h, 0, &["resph~pause"]);
    let a = s
        .send_response_headers(&[(":status", "200")], false)
        .unwrap();
    assert_eq!(a, Action::Continue);
    assert!(h.logged("kong cannot pause in proxy_on_response_headers"));

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

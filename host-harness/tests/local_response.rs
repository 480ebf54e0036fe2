//! proxy_send_local_response: status, headers, body, details, and the response callbacks that
//! run on it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::*;
use host_harness::{Action, StreamEvent};

#[test]
fn local_response_is_recorded_and_runs_through_response_callbacks() {
    for profile in PROFILES {
        let h = harness(probe(profile));
        let mut s = h.stream().unwrap();
        let a = s
            .send_request_headers(
                &request(&[
                    "reqh~respond~403~denied",
                    "reqh~pause",
                    "resph~add~x-seen-by-filter~1",
                ]),
                false,
            )
            .unwrap();
        assert_eq!(a, Action::Pause);
        let lr = s.local_response().expect("local response");
        assert_eq!(lr.status, 403, "{profile:?}");
        // ngx_http_wasm_stash_local_response appends a linefeed on Kong.
        let body: &[u8] = if profile.is_kong() {
            b"denied\n"
        } else {
            b"denied"
        };
        assert_eq!(lr.body, body);
        assert_eq!(lr.details, "");
        assert_eq!(lr.grpc_status, None);
        let probe_values: Vec<&[u8]> = lr
            .headers
            .iter()
            .filter(|(n, _)| n == "x-probe")
            .map(|(_, v)| v.as_slice())
            .collect();
        // Kong SETs each header (ngx_http_wasm_flush_local_response): the last value wins.
        if profile.is_kong() {
            assert_eq!(probe_values, vec![b"again".as_slice()], "{profile:?}");
        } else {
            assert_eq!(probe_values, vec![b"local".as_slice(), b"again".as_slice()]);
        }
        assert!(lr
            .headers
            .iter()
            .any(|(n, v)| n == "x-seen-by-filter" && v == b"1"));
        let len = body.len().to_string();
        assert!(lr
            .headers
            .iter()
            .any(|(n, v)| n == "content-length" && *v == len.as_bytes()));
        assert!(s.events().contains(&StreamEvent::LocalResponseSent));
    }
}

#[test]
fn no_local_response_when_the_filter_continues() {
    let h = harness(probe(host_harness::Profile::Envoy));
    let s = run(&h, 0, &["reqh~add~x~1"]);
    assert!(s.local_response().is_none());
}

#[test]
fn kong_local_response_rules() {
    for profile in KONGS {
        // A second local response traps.
        let h = harness(probe(profile));
        let mut s = h.stream().unwrap();
        let err = s
            .send_request_headers(
                &request(&["reqh~respond~403~a", "reqh~respond~401~b"]),
                false,
            )
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("host trap (bad usage): local response already stashed"),
            "{err}"
        );
        // Once the body flows the response is sent.
        let h = harness(probe(profile));
        let mut s = run(&h, 0, &["respb~respond~500~late"]);
        s.send_response_headers(&[(":status", "200")], false)
            .unwrap();
        let err = s.send_response_body("x", true).unwrap_err();
        assert!(
            err.to_string()
                .contains("host trap (bad usage): response already sent"),
            "{err}"
        );
        // During response headers only the status and body are replaced.
        let h = harness(probe(profile));
        let mut s = run(&h, 0, &["resph~respond~502~swapped"]);
        s.send_response_headers(&[(":status", "200"), ("x-up", "1")], false)
            .unwrap();
        s.send_response_body("upstream body", true).unwrap();
        assert_eq!(resp_header(&s, ":status").as_deref(), Some("502"));
        assert_eq!(resp_header(&s, "x-up").as_deref(), Some("1"));
        assert!(s.response_header("x-probe").is_none());
        assert_eq!(s.response_body(), b"swapped\n");
        // Status outside 100-999: BadArgument, which the SDK turns into a panic.
        let h = harness(probe(profile));
        let mut s = h.stream().unwrap();
        let err = s
            .send_request_headers(&request(&["reqh~respond~1000~x"]), false)
            .unwrap_err();
        assert!(err.to_string().contains("unexpected status: 2"), "{err}");
        assert!(err.host_trap().is_none());
    }
}

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
        assert_eq!(lr.body, b"denied");
        assert_eq!(lr.details, "");
        assert_eq!(lr.grpc_status, None);
        let probe_values: Vec<&[u8]> = lr
            .headers
            .iter()
            .filter(|(n, _)| n == "x-probe")
            .map(|(_, v)| v.as_slice())
            .collect();
        assert_eq!(probe_values, vec![b"local".as_slice(), b"again".as_slice()]);
        assert!(lr
            .headers
            .iter()
            .any(|(n, v)| n == "x-seen-by-filter" && v == b"1"));
        assert!(lr
            .headers
            .iter()
            .any(|(n, v)| n == "content-length" && v == b"6"));
        assert!(s.events().contains(&StreamEvent::LocalResponseSent));
    }
}

#[test]
fn no_local_response_when_the_filter_continues() {
    let h = harness(probe(host_harness::Profile::Envoy));
    let s = run(&h, 0, &["reqh~add~x~1"]);
    assert!(s.local_response().is_none());
}

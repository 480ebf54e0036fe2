//! Metrics: define/increment/record/get, shared across workers, names per profile.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::*;
use host_harness::{MetricType, Profile};

#[test]
fn counters_are_shared_by_workers_and_named_per_profile() {
    for profile in PROFILES {
        let h = harness(probe(profile).workers(2).filter_name("ratelimit"));
        let a = run(&h, 0, &["reqh~metric~counter~requests~1"]);
        let b = run(&h, 1, &["reqh~metric~counter~requests~2"]);
        assert_eq!(header(&a, "x-probe-metric").as_deref(), Some("1"));
        assert_eq!(header(&b, "x-probe-metric").as_deref(), Some("3"));
        let m = h.metric("requests").unwrap();
        assert_eq!((m.kind, m.value), (MetricType::Counter, 3));
        let expected = match profile {
            Profile::Envoy => "wasmcustom.requests",
            Profile::Kong => "pw:ratelimit:requests",
            Profile::Kong38 => "pw.ratelimit.requests",
        };
        assert_eq!(m.host_name, expected);
        assert_eq!(h.host_metric_name("requests"), expected);
        assert_eq!(h.metric(expected).unwrap().value, 3);
    }
}

#[test]
fn gauges_histograms_and_bad_arguments() {
    let h = harness(probe(Profile::Envoy));
    let s = run(
        &h,
        0,
        &[
            "reqh~metric~gauge~inflight~record:10",
            "reqh~metric~gauge~inflight~-3",
            "reqh~metric~counter~c~-1",
            "reqh~metric~histogram~latency~record:42",
        ],
    );
    assert_eq!(
        s.request_header_values("x-probe-metric"),
        vec![
            b"10".to_vec(),
            b"7".to_vec(),
            b"badargument".to_vec(),
            b"badargument".to_vec()
        ]
    );
    let hist = h.metric("latency").unwrap();
    assert_eq!(hist.samples, vec![42]);
    assert_eq!(h.metric("inflight").unwrap().value, 7);
}

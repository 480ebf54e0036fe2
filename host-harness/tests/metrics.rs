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

fn trap_text(h: &host_harness::Harness, op: &str) -> String {
    let mut s = h.stream().unwrap();
    let err = s.send_request_headers(&request(&[op]), false).unwrap_err();
    assert!(err.host_trap().is_some(), "{err}");
    err.to_string()
}

#[test]
fn kong_traps_on_wrong_kind_and_unknown_metrics() {
    // ngx_proxy_wasm_hfuncs_{increment,record,get}_metric over ngx_wa_metrics.c.
    for profile in KONGS {
        let h = harness(probe(profile).filter_name("f"));
        let id = crc32fast::hash(profile.metric_name("f", "g").as_bytes());
        let text = trap_text(&h, "reqh~metric~gauge~g~1");
        assert!(
            text.contains(&format!(
                "host trap (internal error): could not increment metric id \"{id}\": metric not a counter"
            )),
            "{text}"
        );
        let h = harness(probe(profile).filter_name("f"));
        let text = trap_text(&h, "reqh~metric~histogram~hist~1");
        assert!(text.contains("metric not a counter"), "{text}");
        let h = harness(probe(profile).filter_name("f"));
        let text = trap_text(&h, "reqh~metric~counter~c~record:5");
        assert!(text.contains("metric is a counter"), "{text}");
        // The probe reads a histogram back after recording: get traps.
        let h = harness(probe(profile).filter_name("f"));
        let text = trap_text(&h, "reqh~metric~histogram~hist~record:42");
        assert!(text.contains("metric is a histogram"), "{text}");
        assert_eq!(h.metric("hist").unwrap().samples, vec![42]);
        // Gauges record, counters take any offset.
        let h = harness(probe(profile).filter_name("f"));
        let s = run(
            &h,
            0,
            &[
                "reqh~metric~gauge~g~record:10",
                "reqh~metric~counter~c~5",
                "reqh~metric~counter~c~-2",
            ],
        );
        assert_eq!(
            s.request_header_values("x-probe-metric"),
            vec![b"10".to_vec(), b"5".to_vec(), b"3".to_vec()]
        );
    }
}

const WAT_METRICS: &str = r#"(module
  (import "env" "proxy_define_metric" (func $define (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_increment_metric" (func $inc (param i32 i64) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "requests")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) i32.const 1024)
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $define (i32.const 0) (i32.const 16) (i32.const 8) (i32.const 100)))
    (drop (call $inc (i32.load (i32.const 100)) (i64.const 1)))
    ;; an id nobody defined
    (call $inc (i32.add (i32.load (i32.const 100)) (i32.const 1)) (i64.const 1))))"#;

#[test]
fn kong_metric_ids_are_crc32_of_the_name_and_unknown_ids_trap() {
    for profile in KONGS {
        let h = host_harness::Harness::builder()
            .profile(profile)
            .filter_name("rl")
            .build(WAT_METRICS.as_bytes())
            .unwrap();
        let mut s = h.stream().unwrap();
        let err = s
            .send_request_headers(&[(":path", "/")], false)
            .unwrap_err();
        let id = crc32fast::hash(profile.metric_name("rl", "requests").as_bytes());
        let unknown = id.wrapping_add(1);
        assert!(
            err.to_string().contains(&format!(
                "could not increment metric id \"{unknown}\": metric not found"
            )),
            "{err}"
        );
        assert_eq!(h.metric("requests").unwrap().value, 1);
    }
    // Envoy: NotFound, no trap.
    let h = host_harness::Harness::builder()
        .build(WAT_METRICS.as_bytes())
        .unwrap();
    let mut s = h.stream().unwrap();
    assert_eq!(
        s.send_request_headers(&[(":path", "/")], false).unwrap(),
        // NotFound (1) returned as the action: Pause.
        host_harness::Action::Pause
    );
}

//! Virtual clock, tick periods and on_tick delivery per worker.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::*;
use std::time::Duration;

#[test]
fn advancing_the_clock_fires_each_workers_ticks() {
    for profile in PROFILES {
        let h = harness(probe(profile).plugin_config("tick_ms=100").workers(2));
        assert_eq!(
            h.worker(0).tick_period().unwrap(),
            Duration::from_millis(100)
        );
        let start = h.now_ns();
        h.advance_clock(Duration::from_millis(250)).unwrap();
        assert_eq!(h.metric("probe_ticks").unwrap().value, 4, "{profile:?}");
        assert_eq!(h.now_ns(), start + 250_000_000);
        // Ticks see the virtual time at which they fire.
        let first = format!("tick at {}", start + 100_000_000);
        assert!(h.worker(0).logs().iter().any(|l| l.message == first));
        h.advance_clock(Duration::from_millis(49)).unwrap();
        assert_eq!(h.metric("probe_ticks").unwrap().value, 4);
        h.advance_clock(Duration::from_millis(1)).unwrap();
        assert_eq!(h.metric("probe_ticks").unwrap().value, 6);
    }
}

#[test]
fn no_period_no_ticks_but_explicit_tick_works() {
    let h = harness(probe(host_harness::Profile::Envoy));
    h.advance_clock(Duration::from_secs(10)).unwrap();
    assert!(h.metric("probe_ticks").is_none());
    h.worker(0).tick().unwrap();
    assert_eq!(h.metric("probe_ticks").unwrap().value, 1);
}

#[test]
fn guest_time_is_the_virtual_clock() {
    let h = harness(probe(host_harness::Profile::Envoy).start_time_ns(1_000_000_000));
    h.advance_clock(Duration::from_millis(5)).unwrap();
    let s = run(&h, 0, &["reqh~time", "reqh~wasi-time"]);
    assert_eq!(header(&s, "x-probe-time").as_deref(), Some("1005000000"));
    assert_eq!(
        header(&s, "x-probe-wasi-time").as_deref(),
        Some("1005000000")
    );
}

#[test]
fn kong_tick_period_rules() {
    // ngx_proxy_wasm_hfuncs_set_tick_period.
    for profile in KONGS {
        let h = harness(probe(profile));
        let mut s = h.stream().unwrap();
        let err = s
            .send_request_headers(&request(&["reqh~tick-period~100"]), false)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("can only set tick_period in root context"),
            "{err}"
        );
        let h = harness(probe(profile).plugin_config("tick_ms=100"));
        let err = h.worker(0).configure().unwrap_err();
        assert!(err.to_string().contains("tick_period already set"), "{err}");
    }
    let h = harness(probe(host_harness::Profile::Envoy).plugin_config("tick_ms=100"));
    assert!(h.worker(0).configure().unwrap());
    let s = run(&h, 0, &["reqh~tick-period~50"]);
    assert_eq!(header(&s, "x-probe-tick-period").as_deref(), Some("ok"));
}

//! circuit-breaker in the wasmtime harness: two workers over one shared-data store, a virtual
//! clock, both host profiles. Every transition, both window types, backoff growth and cap,
//! exactly P probes across workers, transitions logged once, config refusal naming the field.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use host_harness::{Action, Harness, LogLevel, Profile};

const PROFILES: [Profile; 2] = [Profile::Envoy, Profile::Kong];

fn harness(profile: Profile, config: &str) -> Harness {
    let h = Harness::builder()
        .profile(profile)
        .plugin_config(config)
        .workers(2)
        .property("xds.cluster_name", "orders")
        .build_from_file(suite_tests::paths::plugin_wasm("circuit-breaker").unwrap())
        .unwrap();
    assert!(h.configure().unwrap(), "{:?}", h.logs_at(LogLevel::Error));
    h
}

/// How a request went through the filter.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    /// Reached the upstream (the filter continued).
    Upstream,
    /// Answered by the breaker.
    Refused {
        status: u32,
        retry_after: Option<String>,
        body: String,
    },
}

/// One request on `worker`; if it reaches the upstream, the upstream answers `status`.
fn call(h: &Harness, worker: usize, status: &str) -> Seen {
    let mut s = h.worker(worker).stream().unwrap();
    let action = s
        .send_request_headers(
            &[(":method", "GET"), (":path", "/"), ("x-backend", "orders")],
            true,
        )
        .unwrap();
    let seen = match s.local_response() {
        Some(r) => {
            assert_eq!(action, Action::Pause);
            Seen::Refused {
                status: r.status,
                retry_after: r
                    .headers
                    .iter()
                    .find(|(n, _)| n == "retry-after")
                    .map(|(_, v)| String::from_utf8_lossy(v).into_owned()),
                body: String::from_utf8_lossy(&r.body).into_owned(),
            }
        }
        None => {
            assert_eq!(action, Action::Continue);
            s.send_response_headers(&[(":status", status)], true)
                .unwrap();
            Seen::Upstream
        }
    };
    s.finish().unwrap();
    seen
}

fn refused(seen: &Seen) -> bool {
    matches!(seen, Seen::Refused { .. })
}

fn metric(h: &Harness, name: &str) -> i64 {
    h.metric(name).map_or(0, |m| m.value)
}

fn info_lines(h: &Harness, text: &str) -> usize {
    h.logs_at(LogLevel::Info)
        .iter()
        .filter(|l| l.contains(text))
        .count()
}

/// Count window of 4, M = 4, X = 50 %, open 1 s (x2, cap 4 s), P = 2, S = 2.
const COUNT: &str = r#"{"key": {"source": "header", "name": "x-backend"},
  "defaults": {"window": {"type": "count", "requests": 4}, "min_requests": 4,
               "failure_rate_percent": 50,
               "open": {"duration_ms": 1000, "max_duration_ms": 4000, "backoff_multiplier": 2},
               "half_open": {"max_probes": 2, "successes_to_close": 2}}}"#;

/// Trips the `COUNT` breaker with alternating workers; returns nothing, asserts the trip point.
fn trip_count(h: &Harness) {
    // 2 successes and 1 failure: below M. The 4th request (a failure) makes 2/4 = 50 %.
    for (i, status) in ["200", "200", "503"].iter().enumerate() {
        assert_eq!(call(h, i % 2, status), Seen::Upstream);
    }
    assert_eq!(metric(h, "circuit_breaker.orders.trips"), 0);
    assert_eq!(call(h, 1, "503"), Seen::Upstream);
    assert_eq!(metric(h, "circuit_breaker.orders.trips"), 1);
    assert_eq!(metric(h, "circuit_breaker.orders.state"), 1);
}

#[test]
fn every_transition_across_two_workers() {
    for profile in PROFILES {
        let h = harness(profile, COUNT);
        // closed -> open at the configured point.
        trip_count(&h);
        // open: both workers refuse with 503, JSON body, retry-after; no upstream.
        for w in [0, 1] {
            let seen = call(&h, w, "200");
            let Seen::Refused {
                status,
                retry_after,
                body,
            } = seen
            else {
                panic!("{profile:?}: open breaker let a request through")
            };
            assert_eq!(status, 503);
            assert_eq!(retry_after.as_deref(), Some("1"));
            let body: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(body["error"], "circuit_open");
            assert_eq!(body["breaker"], "orders");
        }
        assert_eq!(metric(&h, "circuit_breaker.orders.rejected"), 2);
        // The breaker's own 503 was not counted as an upstream failure.
        assert_eq!(metric(&h, "circuit_breaker.orders.failures"), 2);
        // Still open just before the duration.
        h.advance_clock(Duration::from_millis(999)).unwrap();
        assert!(refused(&call(&h, 0, "200")));
        // open -> half-open: the first request after the duration is a probe.
        h.advance_clock(Duration::from_millis(1)).unwrap();
        assert_eq!(call(&h, 1, "200"), Seen::Upstream);
        assert_eq!(metric(&h, "circuit_breaker.orders.state"), 2, "{profile:?}");
        // half-open -> closed after S = 2 successes.
        assert_eq!(call(&h, 0, "200"), Seen::Upstream);
        assert_eq!(metric(&h, "circuit_breaker.orders.state"), 0);
        assert_eq!(metric(&h, "circuit_breaker.orders.probes"), 2);
        // Closed again with a fresh window: three failures are below M.
        for w in [0, 1, 0] {
            assert_eq!(call(&h, w, "500"), Seen::Upstream);
        }
        // closed -> open again, then half-open -> open on a failed probe.
        assert_eq!(call(&h, 1, "500"), Seen::Upstream);
        assert_eq!(metric(&h, "circuit_breaker.orders.trips"), 2);
        h.advance_clock(Duration::from_millis(1000)).unwrap();
        assert_eq!(call(&h, 0, "502"), Seen::Upstream);
        assert_eq!(metric(&h, "circuit_breaker.orders.state"), 1);
        assert_eq!(metric(&h, "circuit_breaker.orders.trips"), 3);
        assert!(refused(&call(&h, 1, "200")));
        // Each transition was logged once, by the worker that made it, not once per worker.
        assert_eq!(info_lines(&h, "closed -> open"), 2, "{profile:?}");
        assert_eq!(info_lines(&h, "open -> half-open"), 2);
        assert_eq!(info_lines(&h, "half-open -> closed"), 1);
        assert_eq!(info_lines(&h, "half-open -> open"), 1);
    }
}

#[test]
fn a_four_xx_is_never_a_failure_unless_configured() {
    for profile in PROFILES {
        let h = harness(profile, COUNT);
        for i in 0..8 {
            assert_eq!(call(&h, i % 2, "404"), Seen::Upstream);
        }
        assert_eq!(metric(&h, "circuit_breaker.orders.trips"), 0);
        let h = harness(
            profile,
            r#"{"key": {"source": "header", "name": "x-backend"},
                "defaults": {"window": {"requests": 2}, "min_requests": 2, "failure": {"status_codes": [429]}}}"#,
        );
        call(&h, 0, "429");
        call(&h, 1, "429");
        assert_eq!(metric(&h, "circuit_breaker.orders.trips"), 1, "{profile:?}");
    }
}

#[test]
fn consecutive_failures_trip_below_the_rate() {
    for profile in PROFILES {
        let h = harness(
            profile,
            r#"{"key": {"source": "header", "name": "x-backend"},
                "defaults": {"window": {"requests": 100}, "min_requests": 100,
                             "consecutive_failures": 3}}"#,
        );
        for status in ["500", "500", "200", "500", "500"] {
            assert_eq!(call(&h, 0, status), Seen::Upstream);
        }
        assert_eq!(metric(&h, "circuit_breaker.orders.trips"), 0);
        assert_eq!(call(&h, 1, "500"), Seen::Upstream);
        assert_eq!(metric(&h, "circuit_breaker.orders.trips"), 1, "{profile:?}");
        assert!(refused(&call(&h, 0, "200")));
    }
}

#[test]
fn count_window_keeps_only_the_last_n() {
    for profile in PROFILES {
        let h = harness(profile, COUNT);
        // One failure then many successes: the failure slides out, so 1 failure + 1 more never
        // reaches 50 % of 4.
        call(&h, 0, "500");
        for i in 0..6 {
            call(&h, i % 2, "200");
        }
        call(&h, 0, "500");
        call(&h, 1, "200");
        assert_eq!(metric(&h, "circuit_breaker.orders.trips"), 0, "{profile:?}");
        call(&h, 0, "500");
        assert_eq!(
            metric(&h, "circuit_breaker.orders.trips"),
            1,
            "2 of the last 4"
        );
    }
}

#[test]
fn time_window_forgets_failures_older_than_t() {
    for profile in PROFILES {
        let h = harness(
            profile,
            r#"{"key": {"source": "header", "name": "x-backend"},
                "defaults": {"window": {"type": "time", "seconds": 10}, "min_requests": 3,
                             "failure_rate_percent": 100}}"#,
        );
        call(&h, 0, "500");
        call(&h, 1, "500");
        // 11 s later the two failures have left the window: two more do not reach M = 3.
        h.advance_clock(Duration::from_secs(11)).unwrap();
        call(&h, 0, "500");
        call(&h, 1, "500");
        assert_eq!(metric(&h, "circuit_breaker.orders.trips"), 0, "{profile:?}");
        // A third within the window trips it.
        h.advance_clock(Duration::from_secs(2)).unwrap();
        call(&h, 0, "500");
        assert_eq!(metric(&h, "circuit_breaker.orders.trips"), 1);
    }
}

#[test]
fn open_duration_grows_on_repeated_trips_up_to_the_cap() {
    for profile in PROFILES {
        let h = harness(profile, COUNT);
        trip_count(&h);
        // Expected open durations: 1 s, then failed probes: 2 s, 4 s, 4 s (cap).
        let mut durations = Vec::new();
        let mut duration_ms = 1000;
        for round in 0..4 {
            h.advance_clock(Duration::from_millis(duration_ms - 1))
                .unwrap();
            assert!(
                refused(&call(&h, round % 2, "200")),
                "{profile:?} round {round}"
            );
            h.advance_clock(Duration::from_millis(1)).unwrap();
            // The probe fails: reopened with a longer duration.
            assert_eq!(call(&h, (round + 1) % 2, "503"), Seen::Upstream);
            let line = h
                .logs_at(LogLevel::Info)
                .into_iter()
                .rfind(|l| l.contains("half-open -> open"))
                .unwrap();
            let ms: u64 = line
                .split("open for ")
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .unwrap()
                .parse()
                .unwrap();
            durations.push(ms);
            duration_ms = ms;
        }
        assert_eq!(durations, vec![2000, 4000, 4000, 4000], "{profile:?}");
        // A close restarts the backoff.
        h.advance_clock(Duration::from_millis(4000)).unwrap();
        call(&h, 0, "200");
        call(&h, 1, "200");
        assert_eq!(metric(&h, "circuit_breaker.orders.state"), 0);
        for status in ["500", "500", "500", "500"] {
            call(&h, 0, status);
        }
        assert!(h
            .logs_at(LogLevel::Info)
            .last()
            .unwrap()
            .contains("open for 1000 ms (trip 1 in a row)"));
    }
}

/// Half-open with P = 3: requests from both workers, none finished yet; exactly 3 pass.
#[test]
fn exactly_p_probes_are_admitted_across_workers() {
    const P3: &str = r#"{"key": {"source": "header", "name": "x-backend"},
      "defaults": {"window": {"requests": 2}, "min_requests": 2, "open": {"duration_ms": 1000},
                   "half_open": {"max_probes": 3, "successes_to_close": 3}}}"#;
    for profile in PROFILES {
        let h = harness(profile, P3);
        call(&h, 0, "500");
        call(&h, 1, "500");
        h.advance_clock(Duration::from_secs(1)).unwrap();
        let mut streams = Vec::new();
        let mut admitted = 0;
        for i in 0..10 {
            let mut s = h.worker(i % 2).stream().unwrap();
            s.send_request_headers(&[(":path", "/"), ("x-backend", "orders")], true)
                .unwrap();
            if s.local_response().is_none() {
                admitted += 1;
            }
            streams.push(s);
        }
        assert_eq!(admitted, 3, "{profile:?}");
        assert_eq!(metric(&h, "circuit_breaker.orders.probes"), 3);
        assert_eq!(metric(&h, "circuit_breaker.orders.rejected"), 7);
        // The three probes succeed: closed.
        for mut s in streams {
            if s.local_response().is_none() {
                s.send_response_headers(&[(":status", "200")], true)
                    .unwrap();
            }
            s.finish().unwrap();
        }
        assert_eq!(metric(&h, "circuit_breaker.orders.state"), 0);
    }
}

/// The same on threads: the two workers race for the probe slots for real.
#[test]
fn exactly_p_probes_when_workers_race_on_threads() {
    const P2: &str = r#"{"key": {"source": "fixed", "value": "orders"},
      "defaults": {"window": {"requests": 1}, "min_requests": 1, "open": {"duration_ms": 1000},
                   "half_open": {"max_probes": 2, "successes_to_close": 2}}}"#;
    for profile in PROFILES {
        let h = harness(profile, P2);
        call(&h, 0, "500");
        h.advance_clock(Duration::from_secs(1)).unwrap();
        let admitted: usize = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..2)
                .map(|w| {
                    let worker = h.worker(w);
                    scope.spawn(move || {
                        let mut passed = 0;
                        let mut open = Vec::new();
                        for _ in 0..25 {
                            let mut s = worker.stream().unwrap();
                            s.send_request_headers(&[(":path", "/")], true).unwrap();
                            if s.local_response().is_none() {
                                passed += 1;
                            }
                            open.push(s); // never finished: the slots stay taken
                        }
                        passed
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).sum()
        });
        assert_eq!(admitted, 2, "{profile:?}");
        assert_eq!(info_lines(&h, "open -> half-open"), 1, "{profile:?}");
    }
}

#[test]
fn a_probe_that_ends_without_a_response_gives_its_slot_back() {
    for profile in PROFILES {
        let h = harness(
            profile,
            r#"{"key": {"source": "fixed", "value": "orders"},
                "defaults": {"window": {"requests": 1}, "min_requests": 1}}"#,
        );
        call(&h, 0, "500");
        h.advance_clock(Duration::from_secs(5)).unwrap();
        let mut s = h.worker(0).stream().unwrap();
        s.send_request_headers(&[(":path", "/")], true).unwrap();
        assert!(s.local_response().is_none(), "the probe");
        assert!(refused(&call(&h, 1, "200")), "P = 1 taken");
        s.finish().unwrap(); // client went away: no response headers
        assert_eq!(call(&h, 1, "200"), Seen::Upstream, "{profile:?}: slot back");
        assert_eq!(metric(&h, "circuit_breaker.orders.state"), 0);
    }
}

#[test]
fn fallback_mode_sets_the_route_header_and_continues() {
    for profile in PROFILES {
        let h = harness(
            profile,
            r#"{"key": {"source": "fixed", "value": "orders"},
                "defaults": {"window": {"requests": 1}, "min_requests": 1,
                             "on_open": {"mode": "fallback"}}}"#,
        );
        // A client cannot pick the maintenance route itself.
        let mut s = h.worker(0).stream().unwrap();
        s.send_request_headers(&[(":path", "/"), ("x-circuit-breaker", "open")], true)
            .unwrap();
        assert_eq!(s.request_header("x-circuit-breaker"), None);
        s.send_response_headers(&[(":status", "500")], true)
            .unwrap();
        s.finish().unwrap();
        // It was routed with the client's header, so it passed untracked.
        assert_eq!(metric(&h, "circuit_breaker.untracked"), 1);
        assert_eq!(metric(&h, "circuit_breaker.orders.trips"), 0);
        assert_eq!(call(&h, 0, "500"), Seen::Upstream);
        let mut s = h.worker(1).stream().unwrap();
        let action = s.send_request_headers(&[(":path", "/")], true).unwrap();
        assert_eq!(action, Action::Continue);
        assert!(s.local_response().is_none());
        assert_eq!(
            s.request_header("x-circuit-breaker").as_deref(),
            Some(&b"open"[..])
        );
        s.send_response_headers(&[(":status", "503")], true)
            .unwrap();
        s.finish().unwrap();
        assert_eq!(
            metric(&h, "circuit_breaker.orders.rejected"),
            1,
            "{profile:?}"
        );
        assert_eq!(
            metric(&h, "circuit_breaker.orders.failures"),
            1,
            "fallback answer not counted"
        );
    }
}

#[test]
fn keyed_by_cluster_on_envoy() {
    let h = harness(
        Profile::Envoy,
        r#"{"defaults": {"window": {"requests": 1}, "min_requests": 1}}"#,
    );
    call(&h, 0, "500");
    assert_eq!(metric(&h, "circuit_breaker.orders.trips"), 1);
    assert_eq!(
        h.host_metric_name("circuit_breaker.orders.state"),
        "wasmcustom.circuit_breaker.orders.state"
    );
    // Kong has no xds.cluster_name: requests pass untracked (counted), never trap.
    let h = harness(
        Profile::Kong,
        r#"{"defaults": {"window": {"requests": 1}, "min_requests": 1}}"#,
    );
    call(&h, 0, "500");
    call(&h, 1, "500");
    assert_eq!(metric(&h, "circuit_breaker.untracked"), 2);
}

#[test]
fn a_config_that_cannot_work_is_refused_naming_the_field() {
    let cases = [
        (
            r#"{"defaults": {"half_open": {"max_probes": 0}}}"#,
            "defaults.half_open.max_probes",
        ),
        (
            r#"{"defaults": {"failure_rate_percent": 120}}"#,
            "defaults.failure_rate_percent",
        ),
        (
            r#"{"defaults": {"window": {"requests": 5}, "min_requests": 6}}"#,
            "defaults.window.requests",
        ),
        (
            r#"{"breakers": {"pay": {"half_open": {"max_probe": 1}}}}"#,
            "breakers.pay.half_open.max_probe",
        ),
    ];
    for profile in PROFILES {
        for (config, field) in cases {
            let h = Harness::builder()
                .profile(profile)
                .plugin_config(config)
                .workers(2)
                .build_from_file(suite_tests::paths::plugin_wasm("circuit-breaker").unwrap())
                .unwrap();
            assert!(!h.configure().unwrap(), "{profile:?}: {config} accepted");
            let errors = h.logs_at(LogLevel::Error);
            assert!(
                errors
                    .iter()
                    .any(|l| l.contains(&format!("invalid configuration: {field}:"))),
                "{profile:?} {config}: {errors:?}"
            );
        }
    }
}

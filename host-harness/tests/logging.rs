//! proxy_log, proxy_get_log_level, WASI stdout/stderr capture, and the configure handshake.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::*;
use host_harness::{LogLevel, Profile};

#[test]
fn logs_are_captured_by_level_under_both_profiles() {
    for profile in PROFILES {
        let h = harness(probe(profile).plugin_config("log=from config"));
        assert!(h
            .logs_at(LogLevel::Warn)
            .contains(&"from config".to_string()));
        let s = run(&h, 0, &["reqh~log~error~boom", "reqh~log~debug~details"]);
        assert!(h.logs_at(LogLevel::Error).contains(&"boom".to_string()));
        assert!(h.logs_at(LogLevel::Debug).contains(&"details".to_string()));
        let mine: Vec<String> = s.logs().into_iter().map(|l| l.message).collect();
        assert!(mine.contains(&"boom".to_string()), "{profile:?}: {mine:?}");
    }
}

#[test]
fn configure_reports_acceptance() {
    let h = probe(Profile::Envoy)
        .plugin_config("reject")
        .build(&probe_wasm())
        .unwrap();
    assert!(!h.configure().unwrap());
    assert!(h.logged("configuration rejected"));
    let h = harness(probe(Profile::Envoy).vm_config("vm-cfg").workers(3));
    assert_eq!(
        h.logs_at(LogLevel::Info)
            .iter()
            .filter(|m| *m == "vm start: vm-cfg")
            .count(),
        3
    );
}

#[test]
fn stdout_and_stderr_become_logs() {
    let h = harness(probe(Profile::Envoy));
    run(&h, 0, &["reqh~stdout~hello out", "reqh~stderr~hello err"]);
    assert!(h.logs_at(LogLevel::Info).contains(&"hello out".to_string()));
    assert!(h
        .logs_at(LogLevel::Error)
        .contains(&"hello err".to_string()));
}

#[test]
fn get_log_level_works_on_envoy_and_traps_on_kong() {
    let h = harness(probe(Profile::Envoy).log_level(LogLevel::Warn));
    let s = run(&h, 0, &["reqh~log-level"]);
    assert_eq!(header(&s, "x-probe-log-level").as_deref(), Some("warn"));

    let h = harness(probe(Profile::Kong));
    let mut s = h.stream().unwrap();
    let err = s
        .send_request_headers(&request(&["reqh~log-level"]), false)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("proxy_get_log_level is not implemented by the kong host"),
        "{err}"
    );
    assert!(err.host_trap().is_some());
}

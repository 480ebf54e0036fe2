//! proxy_log, proxy_get_log_level, WASI stdout/stderr capture, and the configure handshake.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::*;
use host_harness::{Harness, HarnessError, LogLevel, Profile};

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

const WAT_LOG_LEVEL: &str = r#"(module
  (import "env" "proxy_get_log_level" (func $level (param i32) (result i32)))
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "level=")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) i32.const 1024)
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $level (i32.const 100)))
    (i32.store8 (i32.const 22) (i32.add (i32.const 48) (i32.load (i32.const 100))))
    (drop (call $log (i32.const 2) (i32.const 16) (i32.const 7)))
    i32.const 0))"#;

#[test]
fn get_log_level_works_on_envoy_and_does_not_link_on_kong() {
    let h = Harness::builder()
        .log_level(LogLevel::Warn)
        .build(WAT_LOG_LEVEL.as_bytes())
        .unwrap();
    let mut s = h.stream().unwrap();
    s.send_request_headers(&[(":path", "/")], false).unwrap();
    assert!(h.logged("level=3"));

    // Kong declares proxy_get_log_level with two parameters (ngx_wavm_arity_i32x2): the
    // ABI's one-parameter import does not link.
    for profile in KONGS {
        let err = Harness::builder()
            .profile(profile)
            .build(WAT_LOG_LEVEL.as_bytes())
            .err()
            .unwrap();
        match &err {
            HarnessError::IncompatibleImport { module, name, .. } => {
                assert_eq!(
                    (module.as_str(), name.as_str()),
                    ("env", "proxy_get_log_level")
                );
            }
            other => panic!("{other}"),
        }
        // With the engine's own signature it links and traps NYI.
        let wat = WAT_LOG_LEVEL
            .replace(
                "(param i32) (result i32)))\n  (import \"env\" \"proxy_log\"",
                "(param i32 i32) (result i32)))\n  (import \"env\" \"proxy_log\"",
            )
            .replace(
                "(call $level (i32.const 100))",
                "(call $level (i32.const 100) (i32.const 0))",
            );
        let h = Harness::builder()
            .profile(profile)
            .build(wat.as_bytes())
            .unwrap();
        let mut s = h.stream().unwrap();
        let err = s
            .send_request_headers(&[(":path", "/")], false)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("host trap (function not yet implemented): proxy_get_log_level"),
            "{err}"
        );
    }
}

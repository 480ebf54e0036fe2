//! WASI preview1: environment, random, clocks (see ticks.rs), stdout/stderr (see logging.rs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::*;
use host_harness::Profile;

#[test]
fn environment_and_random_work() {
    let h = harness(
        probe(Profile::Envoy)
            .env("REGION", "eu")
            .env("TIER", "gold"),
    );
    let s = run(&h, 0, &["reqh~env", "reqh~random"]);
    assert_eq!(
        header(&s, "x-probe-env").as_deref(),
        Some("REGION=eu,TIER=gold")
    );
    assert_eq!(header(&s, "x-probe-random").as_deref(), Some("1"));
}

#[test]
fn proc_exit_traps() {
    let wat = r#"(module
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (func (export "proxy_abi_version_0_2_1"))
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (call $exit (i32.const 3)) i32.const 0))"#;
    let h = host_harness::Harness::builder()
        .build(wat.as_bytes())
        .unwrap();
    let mut s = h.stream().unwrap();
    let err = s.send_request_headers(&[(":path", "/")], true).unwrap_err();
    assert!(
        matches!(err.host_trap(), Some(host_harness::HostTrap::ProcExit(3))),
        "{err}"
    );
}

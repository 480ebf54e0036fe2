//! Broken guest invariants trap; profile-missing calls trap on Kong; traps kill the VM.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::*;
use host_harness::{Harness, HarnessError, HostTrap, Profile};

const PREFIX: &str = r#"(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_set_header_map_pairs" (func $set_pairs (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\05\00\00\00")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) i32.const 4096)"#;

fn guest(body: &str) -> Harness {
    let wat = format!(
        "{PREFIX}\n (func (export \"proxy_on_request_headers\") (param i32 i32 i32) (result i32) {body}))"
    );
    Harness::builder().build(wat.as_bytes()).unwrap()
}

fn trap_of(h: &Harness) -> HarnessError {
    let mut s = h.stream().unwrap();
    s.send_request_headers(&[(":path", "/")], true).unwrap_err()
}

#[test]
fn out_of_bounds_pointer_traps() {
    let h = guest("(drop (call $log (i32.const 2) (i32.const 65530) (i32.const 100))) i32.const 0");
    let err = trap_of(&h);
    assert!(
        matches!(
            err.host_trap(),
            Some(HostTrap::OutOfBounds {
                call: "proxy_log",
                ..
            })
        ),
        "{err}"
    );
}

#[test]
fn out_of_bounds_return_pointer_traps() {
    // Key ":path" is at offset 100 after we write it; the return pointer is out of bounds.
    let h = guest(
        "(i32.store (i32.const 100) (i32.const 0x7461703a)) (i32.store8 (i32.const 104) (i32.const 0x68))
         (drop (call $get (i32.const 0) (i32.const 100) (i32.const 5) (i32.const 70000) (i32.const 8))) i32.const 0",
    );
    let err = trap_of(&h);
    assert!(
        matches!(err.host_trap(), Some(HostTrap::OutOfBounds { .. })),
        "{err}"
    );
}

#[test]
fn malformed_map_traps() {
    let h = guest("(drop (call $set_pairs (i32.const 0) (i32.const 0) (i32.const 4))) i32.const 0");
    let err = trap_of(&h);
    assert!(
        matches!(err.host_trap(), Some(HostTrap::BadMapEncoding { .. })),
        "{err}"
    );
}

#[test]
fn guest_panic_traps_with_its_message_and_kills_the_vm() {
    let h = harness(probe(Profile::Envoy).workers(2));
    let mut s = h.stream().unwrap();
    let err = s
        .send_request_headers(&request(&["reqh~panic~kaboom"]), false)
        .unwrap_err();
    assert!(err.to_string().contains("probe panic: kaboom"), "{err}");
    assert!(err.host_trap().is_none());
    assert!(matches!(
        h.stream(),
        Err(HarnessError::VmFailed { worker: 0, .. })
    ));
    // Other workers live on.
    let s = run(&h, 1, &["reqh~add~x~1"]);
    assert_eq!(header(&s, "x").as_deref(), Some("1"));
}

#[test]
fn kong_traps_on_calls_it_does_not_implement() {
    for (op, call) in [
        ("reqh~done", "proxy_done"),
        ("reqh~close", "proxy_close_stream"),
        ("reqh~grpc~svc", "proxy_grpc_call"),
        (
            "reqh~resume~response",
            "proxy_continue_stream(HttpResponse)",
        ),
    ] {
        let h = harness(probe(Profile::Kong));
        let mut s = h.stream().unwrap();
        let err = s.send_request_headers(&request(&[op]), false).unwrap_err();
        match err.host_trap() {
            Some(HostTrap::NotImplemented {
                call: c,
                profile: "kong",
            }) => assert_eq!(*c, call),
            _ => panic!("{op}: {err}"),
        }
    }
}

#[test]
fn envoy_implements_them() {
    let h = harness(probe(Profile::Envoy));
    let s = run(
        &h,
        0,
        &[
            "reqh~done",
            "reqh~close",
            "reqh~grpc~svc",
            "reqh~resume~response",
        ],
    );
    assert_eq!(
        header(&s, "x-probe-grpc").as_deref(),
        Some("internalfailure")
    );
    assert!(h.worker(0).proxy_done_called().unwrap());
    assert!(s.events().contains(&host_harness::StreamEvent::Closed(
        host_harness::StreamType::Request
    )));
    assert!(s.response_resumed());
}

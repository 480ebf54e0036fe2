//! Broken guest invariants trap; profile-missing calls trap on Kong; traps kill the VM.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::*;
use host_harness::{Action, Harness, HarnessError, HostTrap, Profile, StreamEvent};

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
    // ngx_proxy_wasm_host.c, ngx_proxy_wasm_hfuncs[]: ngx_proxy_wasm_hfuncs_nop entries.
    for profile in KONGS {
        for (op, call) in [
            ("reqh~done", "proxy_done"),
            ("reqh~close", "proxy_close_stream"),
            ("reqh~grpc~svc", "proxy_grpc_call"),
            (
                "reqh~foreign~verify_signature~x",
                "proxy_call_foreign_function",
            ),
            ("reqh~resolve~~jobs", "proxy_resolve_shared_queue"),
        ] {
            let h = harness(probe(profile).foreign_function("verify_signature", |_| Ok(vec![1])));
            let mut s = h.stream().unwrap();
            let err = s.send_request_headers(&request(&[op]), false).unwrap_err();
            match err.host_trap() {
                Some(HostTrap::NotImplemented {
                    call: c,
                    profile: p,
                }) => {
                    assert_eq!(*c, call);
                    assert_eq!(*p, profile.name());
                }
                _ => panic!("{op}: {err}"),
            }
            assert!(
                err.to_string()
                    .contains(&format!("host trap (function not yet implemented): {call}")),
                "{err}"
            );
        }
    }
}

const WAT_LEGACY: &str = r#"(module
  (import "env" "proxy_continue_response" (func $cr (result i32)))
  (import "env" "proxy_clear_route_cache" (func $crc (result i32)))
  (import "env" "proxy_continue_stream" (func $cs (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) i32.const 1024)
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (local.get 1))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (if (i32.eq (local.get 1) (i32.const 1)) (then (drop (call $cr))))
    (if (i32.eq (local.get 1) (i32.const 2)) (then (drop (call $crc))))
    (if (i32.eq (local.get 1) (i32.const 3)) (then (return (call $cs (i32.const 1)))))
    (if (i32.eq (local.get 1) (i32.const 4)) (then (return (call $cs (i32.const 2)))))
    i32.const 0))"#;

#[test]
fn kong_legacy_continue_response_and_clear_route_cache_trap() {
    // The number of response headers selects the call (see WAT_LEGACY).
    let resp = |n: usize| -> Vec<(String, String)> {
        let mut h = vec![(":status".to_string(), "200".to_string())];
        for i in 0..n {
            h.push((format!("x-{i}"), "v".to_string()));
        }
        h
    };
    for profile in KONGS {
        for (n, call) in [
            (1, "proxy_continue_response"),
            (2, "proxy_clear_route_cache"),
        ] {
            let h = Harness::builder()
                .profile(profile)
                .build(WAT_LEGACY.as_bytes())
                .unwrap();
            let mut s = h.stream().unwrap();
            s.send_request_headers(&[(":path", "/")], false).unwrap();
            let err = s.send_response_headers(&resp(n), false).unwrap_err();
            assert!(
                matches!(err.host_trap(), Some(HostTrap::NotImplemented { call: c, .. }) if *c == call),
                "{err}"
            );
        }
        // proxy_continue_stream(HttpResponse) resumes (the request) and returns Ok (0);
        // another stream type logs NYI and returns InternalFailure (10).
        let h = Harness::builder()
            .profile(profile)
            .build(WAT_LEGACY.as_bytes())
            .unwrap();
        let mut s = h.stream().unwrap();
        s.send_request_headers(&[(":path", "/")], false).unwrap();
        assert_eq!(
            s.send_response_headers(&resp(3), false).unwrap(),
            Action::Continue
        );
        assert!(s.response_resumed());
        assert_eq!(
            s.send_response_headers(&resp(4), false).unwrap(),
            Action::Other(10)
        );
        assert!(h.logged("NYI - continue stream type: 2"));
    }
    // Envoy implements all of them.
    let h = Harness::builder().build(WAT_LEGACY.as_bytes()).unwrap();
    let mut s = h.stream().unwrap();
    s.send_request_headers(&[(":path", "/")], false).unwrap();
    s.send_response_headers(&resp(1), false).unwrap();
    s.send_response_headers(&resp(2), false).unwrap();
    assert!(s.events().contains(&StreamEvent::RouteCacheCleared));
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

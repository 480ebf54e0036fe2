//! Stream control: effective context, legacy ABI 0.1.0 names Envoy still provides.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use host_harness::{Harness, StreamEvent, StreamType};

#[test]
fn legacy_continue_and_route_cache_calls_are_recorded() {
    let wat = r#"(module
      (import "env" "proxy_continue_request" (func $creq (result i32)))
      (import "env" "proxy_continue_response" (func $cresp (result i32)))
      (import "env" "proxy_clear_route_cache" (func $clear (result i32)))
      (import "env" "proxy_set_effective_context" (func $eff (param i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "proxy_abi_version_0_2_1"))
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (drop (call $creq)) (drop (call $cresp)) (drop (call $clear))
        ;; an unknown context is BadArgument (2); the answer is returned as the action
        (call $eff (i32.const 999))))"#;
    let h = Harness::builder().build(wat.as_bytes()).unwrap();
    let mut s = h.stream().unwrap();
    let action = s.send_request_headers(&[(":path", "/")], true).unwrap();
    assert_eq!(action, host_harness::Action::Other(2));
    assert_eq!(
        s.events(),
        vec![
            StreamEvent::Resumed(StreamType::Request),
            StreamEvent::Resumed(StreamType::Response),
            StreamEvent::RouteCacheCleared,
        ]
    );
}

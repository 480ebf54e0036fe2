//! Stream control: effective context, legacy ABI 0.1.0 names Envoy still provides.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::*;
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

#[test]
fn kong_ends_a_stream_with_on_done_before_on_log() {
    // ngx_proxy_wasm_on_log: proxy_on_done, then proxy_on_log (ABI < vNEXT).
    for profile in PROFILES {
        let h = harness(probe(profile));
        let mut s = run(&h, 0, &["done~log~info~done-ran", "log~log~info~log-ran"]);
        s.finish().unwrap();
        let order: Vec<String> = h
            .logs()
            .into_iter()
            .map(|l| l.message)
            .filter(|m| m.ends_with("-ran"))
            .collect();
        let expect = if profile.is_kong() {
            ["done-ran", "log-ran"]
        } else {
            ["log-ran", "done-ran"]
        };
        assert_eq!(order, expect, "{profile:?}");
    }
}

//! VM-boundary crossings: callbacks, host calls by import, guest allocations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::*;
use host_harness::{Harness, Profile};
use wasmtime::{Engine, ExternType, Module, ValType};

fn zero(t: &ValType) -> &'static str {
    match t {
        ValType::I64 => "i64.const 0",
        ValType::F32 => "f32.const 0",
        ValType::F64 => "f64.const 0",
        _ => "i32.const 0",
    }
}

/// Every import the abi-probe guest uses, called once with zero arguments from
/// `on_request_headers` in a module importing only it: its counter is 1 in the stream and the
/// VM, whatever the call then does (a trap included).
#[test]
fn every_import_of_a_real_module_counts_as_a_host_call() {
    let probe = Module::new(&Engine::default(), probe_wasm()).unwrap();
    let mut names = Vec::new();
    for import in probe.imports() {
        let ExternType::Func(ty) = import.ty() else {
            continue;
        };
        let params: Vec<String> = ty.params().map(|p| p.to_string()).collect();
        let results: Vec<String> = ty.results().map(|p| p.to_string()).collect();
        let args: Vec<&str> = ty.params().map(|p| zero(&p)).collect();
        let drops = "drop ".repeat(results.len());
        let wat = format!(
            r#"(module
              (import "{m}" "{n}" (func $f (param {p}) (result {r})))
              (memory (export "memory") 1)
              (func (export "proxy_abi_version_0_2_1"))
              (func (export "proxy_on_memory_allocate") (param i32) (result i32) i32.const 1024)
              (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
                {a} call $f {d} i32.const 0))"#,
            m = import.module(),
            n = import.name(),
            p = params.join(" "),
            r = results.join(" "),
            a = args.join(" "),
            d = drops,
        );
        let h = Harness::builder()
            .profile(Profile::Envoy)
            .build(wat.as_bytes())
            .unwrap();
        let mut s = h.stream().unwrap();
        let _ = s.send_request_headers(&[(":path", "/")], false);
        let c = s.crossings();
        assert_eq!(
            c.host_calls.get(import.name()),
            Some(&1),
            "{}",
            import.name()
        );
        assert_eq!(c.callbacks.get("proxy_on_request_headers"), Some(&1));
        assert_eq!(h.crossings().host_calls.get(import.name()), Some(&1));
        names.push(import.name().to_string());
    }
    assert!(names.len() > 30, "{names:?}");
}

#[test]
fn a_stream_counts_its_callbacks_host_calls_and_allocations() {
    let h = harness(probe(Profile::Envoy));
    h.reset_crossings();
    assert_eq!(h.crossings().total(), 0);
    let mut s = run(&h, 0, &["reqh~get:x-a"]);
    s.finish().unwrap();
    let c = s.crossings();
    assert_eq!(c.callbacks.get("proxy_on_context_create"), Some(&1));
    assert_eq!(c.callbacks.get("proxy_on_log"), Some(&1));
    assert_eq!(c.callbacks.get("proxy_on_delete"), Some(&1));
    assert!(c.allocations > 0 && !c.host_calls.is_empty(), "{c}");
    let total =
        c.callbacks.values().sum::<u64>() + c.host_calls.values().sum::<u64>() + c.allocations;
    assert_eq!(c.total(), total);
    assert!(h.crossings().total() >= c.total());
    assert_eq!(h.worker(0).crossings(), h.crossings());
    h.reset_crossings();
    assert_eq!(s.crossings().total(), 0);
}

//! Loading: unknown imports are named, the ABI marker is checked, `_initialize` runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use host_harness::{Harness, HarnessError};

#[test]
fn unknown_import_is_rejected_by_name() {
    let wat = r#"(module
      (import "env" "proxy_get_configuration" (func (param i32 i32) (result i32)))
      (func (export "proxy_abi_version_0_2_1")))"#;
    let err = Harness::builder().build(wat.as_bytes()).err().unwrap();
    match &err {
        HarnessError::UnknownImport { module, name } => {
            assert_eq!(
                (module.as_str(), name.as_str()),
                ("env", "proxy_get_configuration")
            );
        }
        other => panic!("unexpected: {other}"),
    }
    assert!(err.to_string().contains("env::proxy_get_configuration"));

    let wat = r#"(module
      (import "wasi_snapshot_preview1" "path_open" (func (param i32)))
      (func (export "proxy_abi_version_0_2_1")))"#;
    let err = Harness::builder().build(wat.as_bytes()).err().unwrap();
    assert!(
        err.to_string()
            .contains("wasi_snapshot_preview1::path_open"),
        "{err}"
    );
}

#[test]
fn abi_marker_is_required() {
    let err = Harness::builder().build(b"(module)").err().unwrap();
    assert!(matches!(err, HarnessError::UnsupportedAbi { .. }), "{err}");
    let wat = r#"(module (func (export "proxy_abi_version_0_1_0")))"#;
    let err = Harness::builder().build(wat.as_bytes()).err().unwrap();
    assert!(err.to_string().contains("proxy_abi_version_0_1_0"), "{err}");
}

#[test]
fn invalid_bytes_and_missing_files_are_errors() {
    assert!(matches!(
        Harness::builder().build(b"\0asm garbage"),
        Err(HarnessError::Compile(_))
    ));
    assert!(matches!(
        Harness::builder().build_from_file("/nonexistent/plugin.wasm"),
        Err(HarnessError::Read { .. })
    ));
}

#[test]
fn initialize_runs_before_the_root_context() {
    let wat = r#"(module
      (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 0) "init")
      (func (export "proxy_abi_version_0_2_1"))
      (func (export "_initialize") (drop (call $log (i32.const 2) (i32.const 0) (i32.const 4)))))"#;
    let h = Harness::builder().workers(2).build(wat.as_bytes()).unwrap();
    assert_eq!(h.logs().iter().filter(|l| l.message == "init").count(), 2);
    // Callbacks the module does not export are no-ops (configure accepts).
    assert!(h.configure().unwrap());
}

#[test]
fn the_probe_loads_from_a_file() {
    let path = host_harness::abi_probe_wasm().unwrap();
    let h = Harness::builder().build_from_file(path).unwrap();
    assert!(h.configure().unwrap());
}

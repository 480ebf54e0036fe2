//! proxy-wasm host harness.

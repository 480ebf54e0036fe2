//! The jwt-rbac scenarios, each run in the wasmtime harness and in a real Envoy: every
//! expectation must hold in both, and the two hosts must agree step by step. Tokens in the files
//! are pre-minted with `tests/fixtures/jwt-rbac/keys.json`, `exp` in 2100. In the harness the
//! signatures are checked in pure Rust (the runner offers no `verify_signature`), in Envoy by
//! BoringSSL through `verify_signature`: the answers must still agree.
// The generated tests turn a failed check into a panic with its message.
#![allow(clippy::panic)]

suite_tests::scenario_tests! {
    plugin: "jwt-rbac",
    must_reject => "must-reject",
    identity => "identity",
}

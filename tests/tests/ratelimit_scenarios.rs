//! The ratelimit-shared-data scenarios, each run in the wasmtime harness and in a real Envoy: every
//! expectation must hold in both, and the two hosts must agree step by step.
// The generated tests turn a failed check into a panic with its message.
#![allow(clippy::panic)]

suite_tests::scenario_tests! {
    plugin: "ratelimit-shared-data",
    answers => "answers",
    multi_rule => "multi-rule",
    shadow_mode => "shadow-mode",
}

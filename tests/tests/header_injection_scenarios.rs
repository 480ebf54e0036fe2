//! The header-injection scenarios, each run in the wasmtime harness and in a real Envoy: every
//! expectation must hold in both, and the two hosts must agree step by step.
// The generated tests turn a failed check into a panic with its message.
#![allow(clippy::panic)]

suite_tests::scenario_tests! {
    plugin: "header-injection",
    rules => "rules",
    correlation => "correlation",
    traceparent => "traceparent",
    security_headers => "security-headers",
    security_headers_disabled => "security-headers-disabled",
    cors => "cors",
    anti_spoofing => "anti-spoofing",
    robustness => "robustness",
}

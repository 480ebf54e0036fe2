//! Support for the integration tests: launchers for a real Envoy and the echo upstream, a raw
//! HTTP/1.1 client, the scenario file format, the expectation checker, the real-Envoy scenario
//! runner and the comparer that diffs two hosts step by step.

pub mod client;
pub mod envoy;
pub mod paths;
pub mod upstream;

pub use client::{Connection, RawRequest, RawResponse};
pub use envoy::{Envoy, EnvoyConfig, WasmFilter};
pub use upstream::Upstream;

//! Support for the integration tests: launchers for a real Envoy ([`Envoy`]) and the echo
//! upstream ([`Upstream`]), a raw HTTP/1.1 client ([`client`]), the scenario file format
//! ([`scenario`]), the expectation checker and the two-host comparer ([`outcome`]), and the
//! real-Envoy scenario runner ([`envoy_runner`]).
//!
//! Paths come from `SUITE_ENVOY_BIN`, `SUITE_DIST_DIR` and `SUITE_UPSTREAM_BIN` (set by
//! `cargo xtask test`), or default to `.tools/`, `dist/` and `target/` ([`paths`]).

pub use suite_support::client;
pub mod envoy;
pub mod envoy_runner;
pub mod harness_runner;
pub mod outcome;
pub mod paths;
pub mod scenario;
pub mod two_hosts;
pub mod upstream;

pub use client::{Connection, RawRequest, RawResponse};
pub use envoy::{Envoy, EnvoyConfig, WasmFilter};
pub use outcome::{check, compare, compare_runs, Difference, Mismatch, Observed};
pub use scenario::Scenario;
pub use upstream::Upstream;

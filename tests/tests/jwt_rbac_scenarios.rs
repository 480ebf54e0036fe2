//! The jwt-rbac scenarios, each run in the wasmtime harness and in a real Envoy: every
//! expectation must hold in both, and the two hosts must agree step by step. Tokens in the files
//! are pre-minted with `tests/fixtures/jwt-rbac/keys.json`, `exp` in 2100. In the harness the
//! signatures are checked in pure Rust (the runner offers no `verify_signature`), in Envoy by
//! BoringSSL through `verify_signature`: the answers must still agree.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use host_harness::Profile;
use suite_tests::scenario::{scenario_files, Scenario};
use suite_tests::{compare_runs, envoy_runner, harness_runner};

const PLUGIN: &str = "jwt-rbac";

fn scenario_path(feature: &str) -> PathBuf {
    suite_tests::paths::workspace_root()
        .join("tests/scenarios")
        .join(PLUGIN)
        .join(format!("{feature}.json"))
}

/// Runs one scenario file in both hosts and fails with every broken expectation and every
/// disagreement between them.
fn two_hosts(feature: &str) {
    let scenario = Scenario::load(&scenario_path(feature)).unwrap();
    assert_eq!(scenario.plugin, PLUGIN);

    let harness = harness_runner::run_scenario(&scenario, Profile::Envoy).unwrap();
    let envoy = envoy_runner::run_scenario(&scenario).unwrap();

    let mut problems = Vec::new();
    problems.extend(
        harness
            .failures()
            .into_iter()
            .map(|f| format!("harness: {f}")),
    );
    problems.extend(envoy.failures().into_iter().map(|f| format!("envoy: {f}")));
    for (step, diff) in compare_runs(&scenario.steps, &harness.observed(), &envoy.observed()) {
        problems.push(format!("harness vs envoy [{step}] {diff}"));
    }
    assert!(
        problems.is_empty(),
        "{feature}: {} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Under the Kong profile (different properties, header-callback end_of_stream, traps on
/// Envoy-only calls) every step still runs to an answer: no trap, no stuck stream.
fn kong_profile_runs(feature: &str) {
    let scenario = Scenario::load(&scenario_path(feature)).unwrap();
    let run = harness_runner::run_scenario(&scenario, Profile::Kong).unwrap();
    assert_eq!(run.steps.len(), scenario.steps.len());
}

macro_rules! scenario_tests {
    ($($name:ident => $feature:literal),* $(,)?) => {
        const FEATURES: &[&str] = &[$($feature),*];
        mod two_hosts {
            $(#[test] fn $name() { super::two_hosts($feature) })*
        }
        mod kong_profile {
            $(#[test] fn $name() { super::kong_profile_runs($feature) })*
        }
    };
}

scenario_tests! {
    must_reject => "must-reject",
    identity => "identity",
}

/// A scenario file added without a test here would silently never run.
#[test]
fn every_scenario_file_has_a_test() {
    let files = scenario_files(PLUGIN).unwrap();
    assert!(!files.is_empty(), "no scenario files for {PLUGIN}");
    for file in files {
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(
            FEATURES.contains(&stem.as_str()),
            "{} has no test: add it to scenario_tests! in {}",
            file.display(),
            file!()
        );
    }
}

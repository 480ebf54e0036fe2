//! Scenario files of one plugin run in both hosts: [`check_two_hosts`] runs a file in the harness
//! (Envoy profile) and in a real Envoy, and fails on every broken expectation and every
//! disagreement; [`check_kong_profile`] runs it under the harness's Kong profile and fails if a
//! step traps or gets no answer. Both run the file a second time through gateway-suite (the
//! plugin's config as the suite's one section, [`as_suite`]) and fail where the suite's answers
//! differ from the module's. [`scenario_tests!`](crate::scenario_tests) makes one test of each
//! per file and a test that no file of the plugin is left without one.

use std::path::PathBuf;

use anyhow::{bail, ensure, Result};
use host_harness::Profile;

use crate::outcome::compare_runs;
use crate::scenario::{scenario_files, Scenario};
use crate::{envoy_runner, harness_runner, paths};

/// `tests/scenarios/<plugin>/<feature>.json`.
pub fn scenario_path(plugin: &str, feature: &str) -> PathBuf {
    paths::workspace_root()
        .join("tests/scenarios")
        .join(plugin)
        .join(format!("{feature}.json"))
}

fn load(plugin: &str, feature: &str) -> Result<Scenario> {
    let scenario = Scenario::load(&scenario_path(plugin, feature))?;
    ensure!(
        scenario.plugin == plugin,
        "{feature}.json is for plugin `{}`, not `{plugin}`",
        scenario.plugin
    );
    Ok(scenario)
}

/// The module the suite ships as: `dist/gateway-suite.wasm`.
pub const SUITE: &str = "gateway-suite";

/// `scenario` run by gateway-suite: the same steps, the plugin's config as the suite's only
/// section (`{"jwt_rbac": <config>}`).
pub fn as_suite(scenario: &Scenario) -> Scenario {
    let mut suite = scenario.clone();
    let mut config = serde_json::Map::new();
    config.insert(scenario.plugin.replace('-', "_"), scenario.config.clone());
    suite.plugin = SUITE.to_owned();
    suite.config = serde_json::Value::Object(config);
    suite
}

/// Every broken expectation of `run` and every step where it differs from `module`, as lines
/// naming `who`.
fn suite_problems(
    scenario: &Scenario,
    who: &str,
    module: &envoy_runner::ScenarioRun,
    run: &envoy_runner::ScenarioRun,
) -> Vec<String> {
    let mut problems: Vec<String> = run
        .failures()
        .into_iter()
        .map(|f| format!("{who}: {f}"))
        .collect();
    for (step, diff) in compare_runs(&scenario.steps, &module.observed(), &run.observed()) {
        problems.push(format!("module vs {who} [{step}] {diff}"));
    }
    problems
}

/// Runs one scenario file in the harness and in real Envoy, each with the plugin's module and
/// with gateway-suite; an error lists every broken expectation, every difference between the
/// two hosts and every difference between the module and the suite.
pub fn check_two_hosts(plugin: &str, feature: &str) -> Result<()> {
    let scenario = load(plugin, feature)?;
    let harness = harness_runner::run_scenario(&scenario, Profile::Envoy)?;
    let envoy = envoy_runner::run_scenario(&scenario)?;
    let suite = as_suite(&scenario);
    let suite_harness = harness_runner::run_scenario(&suite, Profile::Envoy)?;
    let suite_envoy = envoy_runner::run_scenario(&suite)?;

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
    problems.extend(suite_problems(
        &scenario,
        "suite in the harness",
        &harness,
        &suite_harness,
    ));
    problems.extend(suite_problems(
        &scenario,
        "suite in envoy",
        &envoy,
        &suite_envoy,
    ));
    if !problems.is_empty() {
        bail!(
            "{plugin}/{feature}: {} problem(s):\n{}",
            problems.len(),
            problems.join("\n")
        );
    }
    Ok(())
}

/// Under the Kong profile (different properties, header-callback end_of_stream, traps on
/// Envoy-only calls) every step still runs to an answer: no trap, no stuck stream.
/// The suite runs them too, and answers as the module does.
pub fn check_kong_profile(plugin: &str, feature: &str) -> Result<()> {
    let scenario = load(plugin, feature)?;
    let run = harness_runner::run_scenario(&scenario, Profile::Kong)?;
    ensure!(
        run.steps.len() == scenario.steps.len(),
        "{plugin}/{feature}: {} of {} steps ran under the Kong profile",
        run.steps.len(),
        scenario.steps.len()
    );
    let suite = harness_runner::run_scenario(&as_suite(&scenario), Profile::Kong)?;
    let differences: Vec<String> =
        compare_runs(&scenario.steps, &run.observed(), &suite.observed())
            .into_iter()
            .map(|(step, diff)| format!("module vs suite (kong profile) [{step}] {diff}"))
            .collect();
    if !differences.is_empty() {
        bail!(
            "{plugin}/{feature}: {} difference(s):\n{}",
            differences.len(),
            differences.join("\n")
        );
    }
    Ok(())
}

/// Fails if a scenario file of `plugin` is not among `features` (it would silently never run).
pub fn check_every_file_has_a_test(plugin: &str, features: &[&str]) -> Result<()> {
    let files = scenario_files(plugin)?;
    ensure!(!files.is_empty(), "no scenario files for {plugin}");
    for file in files {
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        ensure!(
            features.contains(&stem.as_str()),
            "{} has no test: add it to the plugin's scenario_tests! list",
            file.display()
        );
    }
    Ok(())
}

/// One test per scenario file in both hosts (`two_hosts::<name>`), one under the Kong profile
/// (`kong_profile::<name>`), and `every_scenario_file_has_a_test`. The `tests/tests/*_scenarios.rs`
/// files call it, and that is where its tests run; the block below shows the call, it is not a
/// doctest (the tests it makes need the built plugins):
///
/// ```text
/// suite_tests::scenario_tests! {
///     plugin: "header-injection",
///     rules => "rules",
///     cors => "cors",
/// }
/// ```
#[macro_export]
macro_rules! scenario_tests {
    (plugin: $plugin:literal, $($name:ident => $feature:literal),* $(,)?) => {
        mod two_hosts {
            $(#[test] fn $name() {
                if let Err(e) = $crate::two_hosts::check_two_hosts($plugin, $feature) {
                    panic!("{e:#}");
                }
            })*
        }
        mod kong_profile {
            $(#[test] fn $name() {
                if let Err(e) = $crate::two_hosts::check_kong_profile($plugin, $feature) {
                    panic!("{e:#}");
                }
            })*
        }
        #[test]
        fn every_scenario_file_has_a_test() {
            if let Err(e) =
                $crate::two_hosts::check_every_file_has_a_test($plugin, &[$($feature),*])
            {
                panic!("{e:#}");
            }
        }
    };
}

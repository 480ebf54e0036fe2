//! Runs a scenario file through a real Envoy with the plugin from `dist/`, in front of the echo
//! upstream, and returns what happened at each step.

use std::path::Path;

use anyhow::{Context, Result};

use crate::client::{self, RawRequest};
use crate::envoy::{Envoy, EnvoyConfig};
use crate::outcome::{check, Mismatch, Observed};
use crate::scenario::{Scenario, Step};
use crate::upstream::Upstream;

/// One step's outcome and the expectations it broke.
#[derive(Debug, Clone)]
pub struct StepRun {
    pub name: String,
    pub observed: Observed,
    pub mismatches: Vec<Mismatch>,
}

/// A scenario run in one host.
#[derive(Debug, Clone)]
pub struct ScenarioRun {
    pub scenario: Scenario,
    pub steps: Vec<StepRun>,
}

impl ScenarioRun {
    /// The observed outcomes, in step order (for [`crate::outcome::compare_runs`]).
    pub fn observed(&self) -> Vec<Observed> {
        self.steps.iter().map(|s| s.observed.clone()).collect()
    }

    /// Every broken expectation as `step: mismatch` lines; empty when all held.
    pub fn failures(&self) -> Vec<String> {
        self.steps
            .iter()
            .flat_map(|s| {
                s.mismatches
                    .iter()
                    .map(move |m| format!("[{}] {m}", s.name))
            })
            .collect()
    }
}

/// The wire request for one step: `host` from the authority, then [`Step::request_headers`].
pub fn raw_request(step: &Step) -> Result<RawRequest> {
    let mut req = RawRequest::new(
        &step.request.method,
        &step.request.path,
        &step.request.authority,
    );
    for (name, value) in step.request_headers()? {
        req = req.header(name, value);
    }
    Ok(req.body(step.request.body.as_bytes().to_vec()))
}

/// Sends one step through `envoy` and observes it at both ends.
pub fn run_step(envoy: &Envoy, upstream: &Upstream, step: &Step) -> Result<Observed> {
    let before = upstream.request_count()?;
    let resp = client::send(envoy.addr(), &raw_request(step)?)
        .with_context(|| format!("step `{}`: request failed", step.name))?;
    let after = upstream.request_count()?;
    let upstream_reached = after > before;
    let upstream_headers = if upstream_reached {
        upstream
            .last_request()?
            .map(|r| r.headers)
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    Ok(Observed {
        status: resp.status,
        upstream_reached,
        upstream_headers,
        response_headers: resp.headers,
        body: resp.body,
    })
}

/// Runs every step of `scenario` in a fresh Envoy (two workers) with its plugin and config.
pub fn run_scenario(scenario: &Scenario) -> Result<ScenarioRun> {
    let upstream = Upstream::start()?;
    let config =
        EnvoyConfig::new(upstream.addr()).filter(&scenario.plugin, scenario.config.clone());
    let envoy = Envoy::start(&config)?;
    let mut steps = Vec::new();
    for step in &scenario.steps {
        let observed = run_step(&envoy, &upstream, step)
            .with_context(|| format!("Envoy log:\n{}", envoy.log()))?;
        let mismatches = check(&step.expect, &observed);
        steps.push(StepRun {
            name: step.name.clone(),
            observed,
            mismatches,
        });
    }
    Ok(ScenarioRun {
        scenario: scenario.clone(),
        steps,
    })
}

/// Loads and runs one scenario file.
pub fn run_scenario_file(path: &Path) -> Result<ScenarioRun> {
    run_scenario(&Scenario::load(path)?)
}

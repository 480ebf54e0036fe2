//! Runs a scenario file through the wasmtime host harness with the plugin from `dist/`, and
//! returns what happened at each step, in the same [`Observed`] form as the real-Envoy runner.
//!
//! The harness stands in for Envoy's connection manager and router: it adds what Envoy adds
//! before the filters run (`x-forwarded-proto`, `x-request-id`, the stream properties named in
//! `tests/scenarios/README.md`), turns the filtered request into what the upstream receives, and
//! answers it with the demo upstream's own echo code ([`demo_upstream::echo::Upstream`]), so the
//! simulated upstream cannot drift from the real one. Steps alternate between two workers, as
//! Envoy with `--concurrency 2` spreads connections.

use std::path::Path;

use anyhow::{bail, Context, Result};
use demo_upstream::echo::Upstream as EchoUpstream;
use demo_upstream::http::Request as UpstreamRequest;
use host_harness::{Action, Harness, HttpStream, Profile};

use crate::envoy_runner::{ScenarioRun, StepRun};
use crate::outcome::{check, HeaderList, Observed};
use crate::paths;
use crate::scenario::{Scenario, Step};

/// Workers the harness runs, as Envoy's tests run with `--concurrency 2`.
pub const WORKERS: usize = 2;

/// Builds a harness for `scenario`'s plugin and config and checks that the config is accepted.
pub fn harness_for(scenario: &Scenario, profile: Profile) -> Result<Harness> {
    let wasm = paths::plugin_wasm(&scenario.plugin)?;
    let harness = Harness::builder()
        .profile(profile)
        .workers(WORKERS)
        .filter_name(&scenario.plugin)
        .plugin_config(scenario.config.to_string())
        .build_from_file(&wasm)
        .with_context(|| format!("cannot load {}", wasm.display()))?;
    if !harness.configure()? {
        bail!(
            "{} refused the scenario config; its log:\n{}",
            scenario.plugin,
            harness
                .logs()
                .iter()
                .map(|l| format!("{l:?}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    Ok(harness)
}

/// A request id shaped like the UUIDs Envoy generates, distinct per step.
fn request_id(step: usize) -> String {
    format!("{:08x}-5ce0-4a11-8e55-{:012x}", step + 1, step + 1)
}

/// The properties Envoy sets for a stream in the test config.
fn set_stream_properties(stream: &HttpStream, step: &Step, index: usize) -> Result<()> {
    let path = &step.request.path;
    let url_path = path.split('?').next().unwrap_or_default();
    let props = [
        ("source.address", format!("127.0.0.1:{}", 40000 + index)),
        ("destination.address", "127.0.0.1:10000".to_string()),
        ("xds.cluster_name", "upstream".to_string()),
        ("xds.route_name", "default".to_string()),
        ("request.id", request_id(index)),
        ("request.path", path.clone()),
        ("request.url_path", url_path.to_string()),
        ("request.method", step.request.method.clone()),
        ("request.host", step.request.authority.clone()),
        ("request.scheme", "http".to_string()),
        ("request.protocol", "HTTP/1.1".to_string()),
    ];
    for (name, value) in props {
        stream.set_property(name, value)?;
    }
    Ok(())
}

fn pseudo(headers: &HeaderList, name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
}

fn without_pseudo(headers: HeaderList) -> HeaderList {
    headers
        .into_iter()
        .filter(|(n, _)| !n.starts_with(':'))
        .collect()
}

/// What the filter's local response looked like to the client.
fn local_outcome(stream: &HttpStream) -> Option<Observed> {
    stream.local_response().map(|local| Observed {
        status: u16::try_from(local.status).unwrap_or(u16::MAX),
        upstream_reached: false,
        upstream_headers: Vec::new(),
        response_headers: without_pseudo(local.headers),
        body: local.body,
    })
}

/// Sends one step through worker `worker` of `harness`, answering with `upstream`.
pub fn run_step(
    harness: &Harness,
    worker: usize,
    upstream: &EchoUpstream,
    step: &Step,
    index: usize,
) -> Result<Observed> {
    let mut stream = harness.worker(worker).stream()?;
    set_stream_properties(&stream, step, index)?;
    let body = step.request.body.as_bytes();

    let mut headers: HeaderList = vec![
        (
            ":authority".into(),
            step.request.authority.clone().into_bytes(),
        ),
        (":path".into(), step.request.path.clone().into_bytes()),
        (":method".into(), step.request.method.clone().into_bytes()),
        (":scheme".into(), b"http".to_vec()),
    ];
    headers.extend(step.request_headers()?);
    if !body.is_empty() {
        headers.push(("content-length".into(), body.len().to_string().into_bytes()));
    }
    headers.push(("x-forwarded-proto".into(), b"http".to_vec()));
    headers.push(("x-request-id".into(), request_id(index).into_bytes()));

    let action = stream.send_request_headers(&headers, body.is_empty())?;
    if let Some(observed) = local_outcome(&stream) {
        stream.finish()?;
        return Ok(observed);
    }
    if action == Action::Pause && !stream.request_resumed() {
        bail!("the filter paused the request headers and never resumed or answered");
    }
    if !body.is_empty() {
        let action = stream.send_request_body(body, true)?;
        if let Some(observed) = local_outcome(&stream) {
            stream.finish()?;
            return Ok(observed);
        }
        if action == Action::Pause && !stream.request_resumed() {
            bail!("the filter paused the request body and never resumed or answered");
        }
    }

    // What the upstream receives: Envoy turns `:authority` into `host` on an HTTP/1 upstream.
    let filtered = stream.request_headers();
    let mut upstream_headers: HeaderList = Vec::new();
    if let Some(host) = pseudo(&filtered, ":authority") {
        upstream_headers.push(("host".into(), host.into_bytes()));
    }
    upstream_headers.extend(without_pseudo(filtered.clone()));
    let request = UpstreamRequest {
        method: pseudo(&filtered, ":method").unwrap_or_default(),
        target: pseudo(&filtered, ":path").unwrap_or_default(),
        http10: false,
        headers: upstream_headers.clone(),
        body: stream.request_body(),
    };
    let answer = upstream.respond(&request);

    let mut response_headers: HeaderList =
        vec![(":status".into(), answer.status.to_string().into_bytes())];
    response_headers.extend(answer.headers.iter().cloned());
    response_headers.push((
        "content-length".into(),
        answer.body.len().to_string().into_bytes(),
    ));
    stream.send_response_headers(&response_headers, answer.body.is_empty())?;
    if !answer.body.is_empty() {
        stream.send_response_body(&answer.body, true)?;
    }
    if let Some(observed) = local_outcome(&stream) {
        stream.finish()?;
        return Ok(observed);
    }
    let seen = stream.response_headers();
    let status = pseudo(&seen, ":status")
        .and_then(|s| s.parse().ok())
        .unwrap_or(answer.status);
    let observed = Observed {
        status,
        upstream_reached: true,
        upstream_headers,
        response_headers: without_pseudo(seen),
        body: stream.response_body(),
    };
    stream.finish()?;
    Ok(observed)
}

/// Runs every step of `scenario` in a fresh harness with the given host profile.
pub fn run_scenario(scenario: &Scenario, profile: Profile) -> Result<ScenarioRun> {
    let harness = harness_for(scenario, profile)?;
    let upstream = EchoUpstream::new(false);
    let mut steps = Vec::new();
    for (index, step) in scenario.steps.iter().enumerate() {
        let observed = run_step(&harness, index % WORKERS, &upstream, step, index)
            .with_context(|| format!("step `{}` in the harness ({profile:?})", step.name))?;
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
pub fn run_scenario_file(path: &Path, profile: Profile) -> Result<ScenarioRun> {
    run_scenario(&Scenario::load(path)?, profile)
}

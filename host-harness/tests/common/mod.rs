//! Shared helpers of the conformance tests: the abi-probe guest and request builders.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use host_harness::{Harness, HarnessBuilder, HttpStream, Profile};

/// Every profile, for tests that run under each.
pub const PROFILES: [Profile; 3] = [Profile::Envoy, Profile::Kong, Profile::Kong38];

/// The Kong profiles.
pub const KONGS: [Profile; 2] = [Profile::Kong, Profile::Kong38];

/// The abi-probe guest bytes (built by build.rs).
pub fn probe_wasm() -> Vec<u8> {
    let path = host_harness::abi_probe_wasm()
        .unwrap_or_else(|reason| panic!("abi-probe guest was not built: {reason}"));
    std::fs::read(path).unwrap()
}

/// A builder for the probe under `profile`.
pub fn probe(profile: Profile) -> HarnessBuilder {
    Harness::builder().profile(profile)
}

/// Builds and configures the probe.
pub fn harness(builder: HarnessBuilder) -> Harness {
    let h = builder.build(&probe_wasm()).unwrap();
    assert!(h.configure().unwrap());
    h
}

/// Request headers carrying the given probe ops.
pub fn request(ops: &[&str]) -> Vec<(String, Vec<u8>)> {
    let mut headers: Vec<(String, Vec<u8>)> = vec![
        (":method".into(), b"GET".to_vec()),
        (":path".into(), b"/probe".to_vec()),
        (":authority".into(), b"example.com".to_vec()),
    ];
    for op in ops {
        headers.push(("x-probe-op".into(), op.as_bytes().to_vec()));
    }
    headers
}

/// Opens a stream and sends request headers with `ops`.
pub fn run(h: &Harness, worker: usize, ops: &[&str]) -> HttpStream {
    let mut s = h.worker(worker).stream().unwrap();
    s.send_request_headers(&request(ops), false).unwrap();
    s
}

/// A request header as text.
pub fn header(s: &HttpStream, name: &str) -> Option<String> {
    s.request_header(name)
        .map(|v| String::from_utf8_lossy(&v).into_owned())
}

/// A response header as text.
pub fn resp_header(s: &HttpStream, name: &str) -> Option<String> {
    s.response_header(name)
        .map(|v| String::from_utf8_lossy(&v).into_owned())
}

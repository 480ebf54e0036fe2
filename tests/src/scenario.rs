//! The scenario file format (`tests/scenarios/README.md`): the same requests for two hosts.
//!
//! Parsing is strict (`deny_unknown_fields`); [`Scenario::load`] also validates what serde
//! cannot (exactly one value form per header, valid hex and regexes, no `upstream_*` expectation
//! on a step that must not reach the upstream).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::Value;

/// Longest header value `value_repeat` may build.
pub const MAX_REPEAT_BYTES: usize = 1024 * 1024;

/// One scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The plugin under test: `dist/<plugin>.wasm`.
    pub plugin: String,
    /// One line: what this file proves.
    pub description: String,
    /// The plugin configuration, exactly as the gateway passes it.
    pub config: Value,
    pub steps: Vec<Step>,
}

/// One request and what must come out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub name: String,
    pub request: Request,
    /// What the echo upstream answers (sent to it as `x-echo-*` request headers).
    #[serde(default)]
    pub upstream_response: Option<UpstreamResponse>,
    #[serde(default)]
    pub expect: Expect,
}

/// The client request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Sent as the `host` header (`:authority`).
    pub authority: String,
    #[serde(default)]
    pub headers: Vec<HeaderSpec>,
    #[serde(default)]
    pub body: String,
}

/// A request header: `["name", "value"]` or `{"name": ..., "value" | "value_hex" | "value_repeat": ...}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum HeaderSpec {
    Pair(String, String),
    Entry(HeaderEntry),
}

/// The object form of a request header.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderEntry {
    pub name: String,
    #[serde(default)]
    pub value: Option<String>,
    /// Raw bytes as hex; spaces ignored.
    #[serde(default)]
    pub value_hex: Option<String>,
    #[serde(default)]
    pub value_repeat: Option<Repeat>,
}

/// `text` repeated `times` times.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repeat {
    pub text: String,
    pub times: usize,
}

/// What the echo upstream answers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamResponse {
    #[serde(default = "default_status")]
    pub status: u16,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
}

fn default_status() -> u16 {
    200
}

/// Expectations; every key optional, absent means "not checked".
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub upstream_reached: Option<bool>,
    /// First value equals.
    #[serde(default)]
    pub response_headers: BTreeMap<String, String>,
    /// First value matches the regex.
    #[serde(default)]
    pub response_headers_match: BTreeMap<String, String>,
    #[serde(default)]
    pub response_headers_absent: Vec<String>,
    #[serde(default)]
    pub upstream_headers: BTreeMap<String, String>,
    #[serde(default)]
    pub upstream_headers_match: BTreeMap<String, String>,
    #[serde(default)]
    pub upstream_headers_absent: Vec<String>,
    /// Number of header lines with that name the upstream received.
    #[serde(default)]
    pub upstream_header_count: BTreeMap<String, usize>,
    /// Pairs of `upstream:<name>` / `response:<name>` whose first values must be equal.
    #[serde(default)]
    pub same_value: Vec<(String, String)>,
    #[serde(default)]
    pub response_body_contains: Option<String>,
}

/// Which side of the proxy a header was seen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Side {
    /// Received by the upstream.
    Upstream,
    /// Returned to the client.
    Response,
}

impl Side {
    pub fn label(self) -> &'static str {
        match self {
            Side::Upstream => "upstream",
            Side::Response => "response",
        }
    }
}

/// Parses `upstream:<name>` / `response:<name>` (name lowercased).
pub fn parse_side_ref(s: &str) -> Result<(Side, String)> {
    match s.split_once(':') {
        Some(("upstream", name)) if !name.is_empty() => {
            Ok((Side::Upstream, name.to_ascii_lowercase()))
        }
        Some(("response", name)) if !name.is_empty() => {
            Ok((Side::Response, name.to_ascii_lowercase()))
        }
        _ => bail!("`{s}` must be `upstream:<name>` or `response:<name>`"),
    }
}

impl HeaderSpec {
    /// The header as sent: lowercase name, value bytes.
    pub fn resolve(&self) -> Result<(String, Vec<u8>)> {
        match self {
            HeaderSpec::Pair(name, value) => {
                Ok((name.to_ascii_lowercase(), value.as_bytes().to_vec()))
            }
            HeaderSpec::Entry(e) => {
                let value = match (&e.value, &e.value_hex, &e.value_repeat) {
                    (Some(v), None, None) => v.as_bytes().to_vec(),
                    (None, Some(hex), None) => decode_hex(hex)
                        .with_context(|| format!("header {}: bad value_hex `{hex}`", e.name))?,
                    (None, None, Some(r)) => {
                        let len = r.text.len().saturating_mul(r.times);
                        if len > MAX_REPEAT_BYTES {
                            bail!("header {}: value_repeat builds {len} bytes (max {MAX_REPEAT_BYTES})", e.name);
                        }
                        r.text.repeat(r.times).into_bytes()
                    }
                    _ => bail!(
                        "header {}: give exactly one of value, value_hex, value_repeat",
                        e.name
                    ),
                };
                Ok((e.name.to_ascii_lowercase(), value))
            }
        }
    }
}

fn decode_hex(s: &str) -> Result<Vec<u8>> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if digits.len() % 2 != 0 {
        bail!("odd number of hex digits");
    }
    digits
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair)?;
            Ok(u8::from_str_radix(text, 16)?)
        })
        .collect()
}

impl Step {
    /// Every request header line both hosts send, in order, after the authority: the step's
    /// headers, then `x-echo-status` and one `x-echo-header` per upstream response header.
    /// `host`/`:authority` and framing headers are not included.
    pub fn request_headers(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let mut out = Vec::new();
        for h in &self.request.headers {
            out.push(h.resolve()?);
        }
        if let Some(up) = &self.upstream_response {
            out.push(("x-echo-status".into(), up.status.to_string().into_bytes()));
            for (name, value) in &up.headers {
                out.push((
                    "x-echo-header".into(),
                    format!("{}={value}", name.to_ascii_lowercase()).into_bytes(),
                ));
            }
        }
        Ok(out)
    }
}

impl Expect {
    /// Whether any `upstream_*` expectation (or a `same_value` naming the upstream) is set.
    pub fn checks_upstream(&self) -> bool {
        !self.upstream_headers.is_empty()
            || !self.upstream_headers_match.is_empty()
            || !self.upstream_headers_absent.is_empty()
            || !self.upstream_header_count.is_empty()
            || self
                .same_value
                .iter()
                .any(|(a, b)| a.starts_with("upstream:") || b.starts_with("upstream:"))
    }

    /// Checks what serde cannot: regexes compile, `same_value` refs are well-formed,
    /// and `upstream_*` expectations are not combined with `upstream_reached: false`.
    pub fn validate(&self) -> Result<()> {
        for (name, re) in self
            .response_headers_match
            .iter()
            .chain(&self.upstream_headers_match)
        {
            regex_lite::Regex::new(re).with_context(|| format!("{name}: invalid regex `{re}`"))?;
        }
        for (a, b) in &self.same_value {
            parse_side_ref(a)?;
            parse_side_ref(b)?;
        }
        if self.upstream_reached == Some(false) && self.checks_upstream() {
            bail!("upstream_* expectations require upstream_reached not to be false");
        }
        Ok(())
    }
}

impl Scenario {
    /// Parses and validates one file.
    pub fn load(path: &Path) -> Result<Scenario> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("invalid scenario file {}", path.display()))
    }

    /// Parses and validates scenario JSON.
    pub fn parse(text: &str) -> Result<Scenario> {
        let scenario: Scenario = serde_json::from_str(text)?;
        if scenario.steps.is_empty() {
            bail!("no steps");
        }
        for step in &scenario.steps {
            step.request_headers()
                .and_then(|_| step.expect.validate())
                .with_context(|| format!("step `{}`", step.name))?;
        }
        Ok(scenario)
    }
}

/// `tests/scenarios/<plugin>/*.json`, sorted.
pub fn scenario_files(plugin: &str) -> Result<Vec<PathBuf>> {
    let dir = crate::paths::workspace_root()
        .join("tests")
        .join("scenarios")
        .join(plugin);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    const README_EXAMPLE: &str = r#"{
      "plugin": "header-injection",
      "description": "one line",
      "config": { "a": 1 },
      "steps": [{
        "name": "preflight answered by the plugin",
        "request": {
          "method": "OPTIONS", "path": "/api/orders?x=1", "authority": "api.example.com",
          "headers": [
            ["origin", "https://app.example.com"],
            ["Access-Control-Request-Method", "POST"],
            {"name": "x-user-id", "value": "admin"},
            {"name": "x-raw", "value_hex": "ff fe 41"},
            {"name": "x-big", "value_repeat": {"text": "a", "times": 65536}}
          ],
          "body": ""
        },
        "upstream_response": { "status": 200, "headers": [["cache-control", "no-store"]] },
        "expect": {
          "status": 204,
          "response_headers": { "access-control-allow-origin": "https://app.example.com" },
          "response_headers_match": { "x-request-id": "^[0-9a-f-]{36}$" },
          "response_headers_absent": ["server-timing"],
          "upstream_headers": { "x-env": "prod" },
          "upstream_headers_match": { "x-correlation-id": "^[0-9a-f-]{36}$" },
          "upstream_headers_absent": ["x-user-id", "x_user_id"],
          "upstream_header_count": { "x-forwarded-client": 1 },
          "same_value": [["upstream:x-correlation-id", "response:x-correlation-id"]],
          "response_body_contains": "text"
        }
      }]
    }"#;

    #[test]
    fn parses_the_readme_example() {
        let s = Scenario::parse(README_EXAMPLE).unwrap();
        let headers = s.steps[0].request_headers().unwrap();
        assert_eq!(
            headers[1],
            ("access-control-request-method".into(), b"POST".to_vec())
        );
        assert_eq!(headers[3], ("x-raw".into(), vec![0xff, 0xfe, 0x41]));
        assert_eq!(headers[4].1.len(), 65536);
        assert_eq!(headers[5], ("x-echo-status".into(), b"200".to_vec()));
        assert_eq!(
            headers[6],
            ("x-echo-header".into(), b"cache-control=no-store".to_vec())
        );
    }

    #[test]
    fn rejects_unknown_fields_and_inconsistent_expectations() {
        let typo = README_EXAMPLE.replace("\"status\": 204", "\"stauts\": 204");
        assert!(Scenario::parse(&typo).is_err());
        let both = README_EXAMPLE.replace(
            r#""value": "admin""#,
            r#""value": "admin", "value_hex": "41""#,
        );
        assert!(Scenario::parse(&both).is_err());
        let unreachable = README_EXAMPLE.replace(
            "\"status\": 204,",
            "\"status\": 204, \"upstream_reached\": false,",
        );
        assert!(Scenario::parse(&unreachable).is_err());
        let bad_re = README_EXAMPLE.replace(
            "^[0-9a-f-]{36}$\" },\n          \"response_headers_absent",
            "(\" },\n          \"response_headers_absent",
        );
        assert!(Scenario::parse(&bad_re).is_err());
    }
}

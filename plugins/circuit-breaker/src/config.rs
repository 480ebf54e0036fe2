//! Configuration: the JSON the gateway passes, and its compiled form ([`Settings`]).
//!
//! `defaults` holds one breaker's settings; `breakers` maps a key value (a cluster, a route, a
//! header value) to settings of its own, written as changes to `defaults` (merged field by field).
//! A config that cannot work is refused at load, naming the field: no probes (`max_probes: 0`),
//! a rate over 100 %, a count window smaller than `min_requests`, more successes needed to close
//! than probes admitted, nothing that can trip.

use crate::breaker::Policy;
use crate::window::{WindowSpec, MAX_COUNT};
use gateway_core::error::{join, parse_json, ConfigError};
use gateway_core::headers::{header_name, header_value};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};

/// The plugin configuration as written by the operator.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// What names a breaker: the upstream cluster (default), the route, a header, a property.
    pub key: KeyConfig,
    /// Most breakers (distinct key values) tracked; further key values pass untracked.
    pub max_breakers: u32,
    /// Settings of every breaker (see [`BreakerConfig`]).
    // Kept as JSON to merge `breakers` over it field by field, then read as a `BreakerConfig`
    // (every field optional): that is its schema.
    #[cfg_attr(feature = "schema", schemars(with = "BreakerConfig"))]
    pub defaults: Value,
    /// Per key value: changes to `defaults` for that breaker.
    #[cfg_attr(feature = "schema", schemars(with = "BTreeMap<String, BreakerConfig>"))]
    pub breakers: BTreeMap<String, Value>,
    /// Prefix of the shared-data keys (`<prefix>/index`, `<prefix>/slot/<n>`).
    pub shared_data_prefix: String,
    /// Read-compute-write attempts on shared data before giving up (see the docs for the outcome).
    pub max_cas_attempts: u32,
    /// Metric name prefix of this instance: `edge` gives `edge.circuit_breaker.<name>`, so two instances of
    /// the plugin (on two listeners, say) keep their own counters, as Envoy's native filters do
    /// with their `stat_prefix`; Envoy's `stats_tags` can turn it into a label. Letters, digits
    /// and `_`, at most 64. Default: none (`circuit_breaker.<name>`).
    pub stat_prefix: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            key: KeyConfig::default(),
            max_breakers: 32,
            defaults: Value::Object(Map::new()),
            breakers: BTreeMap::new(),
            shared_data_prefix: "circuit_breaker".to_owned(),
            max_cas_attempts: 8,
            stat_prefix: None,
        }
    }
}

/// Where the key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum KeySource {
    /// Property `xds.cluster_name` (Envoy).
    #[default]
    Cluster,
    /// Property `xds.route_name` (Envoy).
    Route,
    /// A request header, `name`.
    Header,
    /// A host property, dotted `path` (e.g. `kong.service.name`... whatever the host has).
    Property,
    /// One breaker for everything, named `value`.
    Fixed,
}

/// `key`: what names a breaker.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct KeyConfig {
    /// `cluster`, `route`, `header`, `property` or `fixed`.
    pub source: KeySource,
    /// Header name (source `header`).
    pub name: Option<String>,
    /// Dotted property path (source `property`).
    pub path: Option<String>,
    /// The breaker name (source `fixed`).
    pub value: Option<String>,
    /// Breaker name when the source has no value; absent: such requests pass untracked.
    pub when_missing: Option<String>,
}

/// One breaker's settings (the shape of `defaults` and of each `breakers` entry).
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    /// What counts as a failure.
    pub failure: FailureConfig,
    /// The window judged while closed.
    pub window: WindowConfig,
    /// M: the failure rate counts only with at least this many requests in the window.
    pub min_requests: u32,
    /// X: trip when the failure rate in the window reaches this percentage (0: rate off).
    pub failure_rate_percent: u32,
    /// K: trip after this many failures in a row (0: off).
    pub consecutive_failures: u32,
    /// How long it stays open.
    pub open: OpenConfig,
    /// Probing after the open duration.
    pub half_open: HalfOpenConfig,
    /// The answer while open.
    pub on_open: OnOpenConfig,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure: FailureConfig::default(),
            window: WindowConfig::default(),
            min_requests: 10,
            failure_rate_percent: 50,
            consecutive_failures: 0,
            open: OpenConfig::default(),
            half_open: HalfOpenConfig::default(),
            on_open: OnOpenConfig::default(),
        }
    }
}

/// `failure`: what counts as a failure.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct FailureConfig {
    /// Response statuses that are failures. A 4xx is a failure only if listed here.
    pub status_codes: Vec<u16>,
    /// Upstream resets and connection failures (Envoy response flags UF/UR/UC, details
    /// `upstream_reset_*`) are failures.
    pub resets: bool,
    /// Upstream timeouts (Envoy flag UT, details `upstream_response_timeout`) are failures.
    pub timeouts: bool,
    /// Responses slower than this (request headers to response headers) are failures.
    pub slow_response_ms: Option<u64>,
}

impl Default for FailureConfig {
    fn default() -> Self {
        Self {
            status_codes: vec![500, 502, 503, 504],
            resets: true,
            timeouts: true,
            slow_response_ms: None,
        }
    }
}

/// Count or time window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum WindowType {
    /// The last `requests` outcomes.
    #[default]
    Count,
    /// The outcomes of the last `seconds`.
    Time,
}

/// `window`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct WindowConfig {
    /// `count` or `time`.
    #[serde(rename = "type")]
    pub kind: WindowType,
    /// N of a count window (1..=1024).
    pub requests: u32,
    /// T of a time window (1..=3600).
    pub seconds: u32,
}

impl Default for WindowConfig {
    fn default() -> Self {
        Self {
            kind: WindowType::Count,
            requests: 20,
            seconds: 10,
        }
    }
}

/// `open`: open duration and its backoff.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct OpenConfig {
    /// First open duration.
    pub duration_ms: u64,
    /// Cap of the open duration.
    pub max_duration_ms: u64,
    /// Growth per trip without a close in between (1: no growth).
    pub backoff_multiplier: u32,
}

impl Default for OpenConfig {
    fn default() -> Self {
        Self {
            duration_ms: 5_000,
            max_duration_ms: 60_000,
            backoff_multiplier: 2,
        }
    }
}

/// `half_open`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct HalfOpenConfig {
    /// P: probes admitted per half-open period, across all workers.
    pub max_probes: u32,
    /// S: probe successes that close the breaker (at most P).
    pub successes_to_close: u32,
    /// Slots of probes that never reported are reclaimed after this long.
    pub probe_timeout_ms: u64,
}

impl Default for HalfOpenConfig {
    fn default() -> Self {
        Self {
            max_probes: 1,
            successes_to_close: 1,
            probe_timeout_ms: 30_000,
        }
    }
}

/// How an open breaker answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum OpenMode {
    /// A local reply: `status`, JSON `body`, `retry-after`.
    #[default]
    Reply,
    /// Set `fallback_header` on the request and continue: a gateway route matching it sends the
    /// request to a fallback or maintenance service.
    Fallback,
}

/// `on_open`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct OnOpenConfig {
    /// `reply` or `fallback`.
    pub mode: OpenMode,
    /// Status of the local reply.
    pub status: u16,
    /// JSON body of the local reply; absent: `{"error":"circuit_open","breaker":..,"retry_after_seconds":..}`.
    pub body: Option<Value>,
    /// Send `retry-after` (whole seconds until a probe may pass).
    pub retry_after: bool,
    /// The request header set in fallback mode (removed from client requests first).
    pub fallback_header: FallbackHeader,
}

impl Default for OnOpenConfig {
    fn default() -> Self {
        Self {
            mode: OpenMode::Reply,
            status: 503,
            body: None,
            retry_after: true,
            fallback_header: FallbackHeader::default(),
        }
    }
}

/// `on_open.fallback_header`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct FallbackHeader {
    /// Header name.
    pub name: String,
    /// Header value.
    pub value: String,
}

impl Default for FallbackHeader {
    fn default() -> Self {
        Self {
            name: "x-circuit-breaker".to_owned(),
            value: "open".to_owned(),
        }
    }
}

/// Where the key of a request comes from, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRule {
    /// A property path.
    Property(Vec<String>),
    /// A request header (lowercase).
    Header(String),
    /// Always this name.
    Fixed(String),
}

/// What counts as a failure, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailurePolicy {
    /// Failure statuses.
    pub status_codes: Vec<u16>,
    /// Resets count.
    pub resets: bool,
    /// Timeouts count.
    pub timeouts: bool,
    /// Slow threshold.
    pub slow_response_ms: Option<u64>,
}

/// The answer while open, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenAction {
    /// Local reply.
    Reply {
        /// Status.
        status: u32,
        /// Configured body (serialized), or `None` for the default body.
        body: Option<Vec<u8>>,
        /// Send `retry-after`.
        retry_after: bool,
    },
    /// Set this header and continue.
    Fallback {
        /// Lowercase name.
        name: String,
        /// Value.
        value: String,
    },
}

/// One breaker's compiled settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerSettings {
    /// State machine thresholds.
    pub policy: Policy,
    /// Failure classification.
    pub failure: FailurePolicy,
    /// The answer while open.
    pub on_open: OpenAction,
}

/// The compiled configuration, shared by every stream of a VM.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where keys come from.
    pub key: KeyRule,
    /// Name when the key source has no value.
    pub when_missing: Option<String>,
    /// Breaker slots.
    pub max_breakers: u32,
    /// Shared-data key prefix.
    pub prefix: String,
    /// CAS attempts.
    pub max_cas_attempts: u32,
    /// Settings of a breaker without its own entry.
    pub defaults: BreakerSettings,
    /// Per key value.
    pub breakers: HashMap<String, BreakerSettings>,
    /// Fallback headers to strip from client requests (every fallback-mode breaker's header).
    pub strip_headers: Vec<String>,
    /// `stat_prefix`, checked.
    pub stat_prefix: Option<String>,
}

impl Settings {
    /// Parses and compiles configuration bytes (JSON; empty means defaults).
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        Self::try_from(parse_json::<Config>(bytes)?)
    }

    /// The settings of the breaker named `name`.
    pub fn breaker(&self, name: &str) -> &BreakerSettings {
        self.breakers.get(name).unwrap_or(&self.defaults)
    }
}

impl TryFrom<Config> for Settings {
    type Error = ConfigError;

    fn try_from(config: Config) -> Result<Self, ConfigError> {
        let key = compile_key(&config.key)?;
        if config.max_breakers == 0 || config.max_breakers > 1024 {
            return Err(ConfigError::invalid(
                "max_breakers",
                "must be between 1 and 1024",
            ));
        }
        if config.breakers.len() > config.max_breakers as usize {
            return Err(ConfigError::invalid(
                "breakers",
                format!(
                    "{} breakers configured but max_breakers is {}",
                    config.breakers.len(),
                    config.max_breakers
                ),
            ));
        }
        if config.shared_data_prefix.is_empty() {
            return Err(ConfigError::invalid(
                "shared_data_prefix",
                "must not be empty",
            ));
        }
        if config.max_cas_attempts == 0 || config.max_cas_attempts > 64 {
            return Err(ConfigError::invalid(
                "max_cas_attempts",
                "must be between 1 and 64",
            ));
        }
        if !config.defaults.is_object() {
            return Err(ConfigError::invalid("defaults", "must be an object"));
        }
        let defaults = compile_breaker(&config.defaults, "defaults")?;
        let mut breakers = HashMap::new();
        for (name, changes) in &config.breakers {
            let field = format!("breakers.{name}");
            if !changes.is_object() {
                return Err(ConfigError::invalid(field, "must be an object"));
            }
            let merged = merge(&config.defaults, changes);
            breakers.insert(name.clone(), compile_breaker(&merged, &field)?);
        }
        let mut strip_headers = Vec::new();
        for s in std::iter::once(&defaults).chain(breakers.values()) {
            if let OpenAction::Fallback { name, .. } = &s.on_open {
                if !strip_headers.contains(name) {
                    strip_headers.push(name.clone());
                }
            }
        }
        Ok(Self {
            stat_prefix: gateway_core::metrics::stat_prefix(
                config.stat_prefix.as_deref(),
                "stat_prefix",
            )?,
            key,
            when_missing: config.key.when_missing.clone(),
            max_breakers: config.max_breakers,
            prefix: config.shared_data_prefix,
            max_cas_attempts: config.max_cas_attempts,
            defaults,
            breakers,
            strip_headers,
        })
    }
}

fn compile_key(key: &KeyConfig) -> Result<KeyRule, ConfigError> {
    let present = |v: &Option<String>, field: &str| -> Result<String, ConfigError> {
        match v.as_deref() {
            Some(s) if !s.is_empty() => Ok(s.to_owned()),
            _ => Err(ConfigError::invalid(
                join("key", field),
                "required by this key source",
            )),
        }
    };
    if matches!(key.when_missing.as_deref(), Some("")) {
        return Err(ConfigError::invalid(
            "key.when_missing",
            "must not be empty",
        ));
    }
    Ok(match key.source {
        KeySource::Cluster => KeyRule::Property(vec!["xds".into(), "cluster_name".into()]),
        KeySource::Route => KeyRule::Property(vec!["xds".into(), "route_name".into()]),
        KeySource::Header => {
            let name = present(&key.name, "name")?;
            KeyRule::Header(header_name(&name, "key.name")?)
        }
        KeySource::Property => {
            let path = present(&key.path, "path")?;
            let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
            if segments.iter().any(String::is_empty) {
                return Err(ConfigError::invalid("key.path", "empty path segment"));
            }
            KeyRule::Property(segments)
        }
        KeySource::Fixed => KeyRule::Fixed(present(&key.value, "value")?),
    })
}

/// `base` with `changes` applied: objects merge field by field, anything else replaces.
fn merge(base: &Value, changes: &Value) -> Value {
    match (base, changes) {
        (Value::Object(b), Value::Object(c)) => {
            let mut out = b.clone();
            for (k, v) in c {
                let merged = match out.get(k) {
                    Some(existing) => merge(existing, v),
                    None => v.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (_, other) => other.clone(),
    }
}

fn compile_breaker(value: &Value, field: &str) -> Result<BreakerSettings, ConfigError> {
    let bytes = serde_json::to_vec(value)
        .map_err(|e| ConfigError::invalid(field, format!("cannot serialize: {e}")))?;
    let config = parse_json::<BreakerConfig>(&bytes).map_err(|e| ConfigError {
        field: if e.field == "config" {
            field.to_owned()
        } else {
            join(field, &e.field)
        },
        kind: e.kind,
    })?;
    let f = |name: &str| join(field, name);
    let window = match config.window.kind {
        WindowType::Count => {
            if config.window.requests == 0 || config.window.requests > u32::from(MAX_COUNT) {
                return Err(ConfigError::invalid(
                    f("window.requests"),
                    format!("must be between 1 and {MAX_COUNT}"),
                ));
            }
            if config.window.requests < config.min_requests {
                return Err(ConfigError::invalid(
                    f("window.requests"),
                    format!(
                        "a window of {} requests can never hold min_requests ({})",
                        config.window.requests, config.min_requests
                    ),
                ));
            }
            WindowSpec::Count {
                size: u16::try_from(config.window.requests).unwrap_or(MAX_COUNT),
            }
        }
        WindowType::Time => {
            if config.window.seconds == 0 || config.window.seconds > 3600 {
                return Err(ConfigError::invalid(
                    f("window.seconds"),
                    "must be between 1 and 3600",
                ));
            }
            WindowSpec::Time {
                length_ms: u64::from(config.window.seconds) * 1000,
            }
        }
    };
    if config.min_requests == 0 {
        return Err(ConfigError::invalid(
            f("min_requests"),
            "must be at least 1",
        ));
    }
    if config.failure_rate_percent > 100 {
        return Err(ConfigError::invalid(
            f("failure_rate_percent"),
            "must be between 0 and 100",
        ));
    }
    if config.failure_rate_percent == 0 && config.consecutive_failures == 0 {
        return Err(ConfigError::invalid(
            f("failure_rate_percent"),
            "0 turns the rate off and consecutive_failures is 0 too: nothing can trip",
        ));
    }
    let open = &config.open;
    if open.duration_ms == 0 {
        return Err(ConfigError::invalid(
            f("open.duration_ms"),
            "must be at least 1",
        ));
    }
    if open.max_duration_ms < open.duration_ms {
        return Err(ConfigError::invalid(
            f("open.max_duration_ms"),
            "must be at least open.duration_ms",
        ));
    }
    if open.backoff_multiplier == 0 || open.backoff_multiplier > 100 {
        return Err(ConfigError::invalid(
            f("open.backoff_multiplier"),
            "must be between 1 and 100",
        ));
    }
    let half = &config.half_open;
    if half.max_probes == 0 {
        return Err(ConfigError::invalid(
            f("half_open.max_probes"),
            "must be at least 1: with no probe the breaker could never close",
        ));
    }
    if half.successes_to_close == 0 || half.successes_to_close > half.max_probes {
        return Err(ConfigError::invalid(
            f("half_open.successes_to_close"),
            format!(
                "must be between 1 and half_open.max_probes ({})",
                half.max_probes
            ),
        ));
    }
    if half.probe_timeout_ms == 0 {
        return Err(ConfigError::invalid(
            f("half_open.probe_timeout_ms"),
            "must be at least 1",
        ));
    }
    for (i, code) in config.failure.status_codes.iter().enumerate() {
        if !(100..=599).contains(code) {
            return Err(ConfigError::invalid(
                f(&format!("failure.status_codes[{i}]")),
                "must be an http status (100..=599)",
            ));
        }
    }
    if config.failure.slow_response_ms == Some(0) {
        return Err(ConfigError::invalid(
            f("failure.slow_response_ms"),
            "must be at least 1 (or absent)",
        ));
    }
    let on = &config.on_open;
    let on_open = match on.mode {
        OpenMode::Reply => {
            if !(200..=599).contains(&on.status) {
                return Err(ConfigError::invalid(
                    f("on_open.status"),
                    "must be between 200 and 599",
                ));
            }
            let body = on
                .body
                .as_ref()
                .map(serde_json::to_vec)
                .transpose()
                .map_err(|e| ConfigError::invalid(f("on_open.body"), e.to_string()))?;
            OpenAction::Reply {
                status: u32::from(on.status),
                body,
                retry_after: on.retry_after,
            }
        }
        OpenMode::Fallback => {
            let h = &on.fallback_header;
            OpenAction::Fallback {
                name: header_name(&h.name, &f("on_open.fallback_header.name"))?,
                value: header_value(&h.value, &f("on_open.fallback_header.value"))?,
            }
        }
    };
    Ok(BreakerSettings {
        policy: Policy {
            window,
            min_requests: config.min_requests,
            failure_rate_percent: config.failure_rate_percent,
            consecutive_failures: config.consecutive_failures,
            open_ms: open.duration_ms,
            max_open_ms: open.max_duration_ms,
            backoff_multiplier: open.backoff_multiplier,
            max_probes: half.max_probes,
            successes_to_close: half.successes_to_close,
            probe_timeout_ms: half.probe_timeout_ms,
        },
        failure: FailurePolicy {
            status_codes: config.failure.status_codes.clone(),
            resets: config.failure.resets,
            timeouts: config.failure.timeouts,
            slow_response_ms: config.failure.slow_response_ms,
        },
        on_open,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(json: &str) -> ConfigError {
        Settings::from_json(json.as_bytes()).unwrap_err()
    }

    #[test]
    fn empty_config_gives_defaults() {
        let s = Settings::from_json(b"").unwrap();
        assert_eq!(
            s.key,
            KeyRule::Property(vec!["xds".into(), "cluster_name".into()])
        );
        let p = s.defaults.policy;
        assert_eq!(p.window, WindowSpec::Count { size: 20 });
        assert_eq!((p.min_requests, p.failure_rate_percent), (10, 50));
        assert_eq!((p.max_probes, p.successes_to_close), (1, 1));
        assert_eq!(s.defaults.failure.status_codes, vec![500, 502, 503, 504]);
        assert!(matches!(
            s.defaults.on_open,
            OpenAction::Reply {
                status: 503,
                body: None,
                retry_after: true
            }
        ));
        assert!(s.strip_headers.is_empty());
    }

    #[test]
    fn configs_that_cannot_work_are_refused_naming_the_field() {
        let cases = [
            (
                r#"{"defaults": {"half_open": {"max_probes": 0}}}"#,
                "defaults.half_open.max_probes",
            ),
            (
                r#"{"defaults": {"failure_rate_percent": 101}}"#,
                "defaults.failure_rate_percent",
            ),
            (
                r#"{"defaults": {"window": {"requests": 5}, "min_requests": 10}}"#,
                "defaults.window.requests",
            ),
            (
                r#"{"defaults": {"half_open": {"max_probes": 2, "successes_to_close": 3}}}"#,
                "defaults.half_open.successes_to_close",
            ),
            (
                r#"{"defaults": {"failure_rate_percent": 0}}"#,
                "defaults.failure_rate_percent",
            ),
            (
                r#"{"defaults": {"open": {"duration_ms": 2000, "max_duration_ms": 1000}}}"#,
                "defaults.open.max_duration_ms",
            ),
            (
                r#"{"defaults": {"failure": {"status_codes": [500, 42]}}}"#,
                "defaults.failure.status_codes[1]",
            ),
            (
                r#"{"breakers": {"payments": {"half_open": {"max_probes": 0}}}}"#,
                "breakers.payments.half_open.max_probes",
            ),
            (
                r#"{"breakers": {"payments": {"failure_rate_percent": 150}}}"#,
                "breakers.payments.failure_rate_percent",
            ),
            (r#"{"key": {"source": "header"}}"#, "key.name"),
            (
                r#"{"key": {"source": "header", "name": "a b"}}"#,
                "key.name",
            ),
            (
                r#"{"key": {"source": "property", "path": "a..b"}}"#,
                "key.path",
            ),
            (r#"{"key": {"source": "fixed"}}"#, "key.value"),
            (r#"{"max_breakers": 0}"#, "max_breakers"),
            (
                r#"{"defaults": {"on_open": {"mode": "fallback", "fallback_header": {"name": "bad name"}}}}"#,
                "defaults.on_open.fallback_header.name",
            ),
            (
                r#"{"defaults": {"on_open": {"status": 99}}}"#,
                "defaults.on_open.status",
            ),
        ];
        for (json, field) in cases {
            let err = refused(json);
            assert_eq!(err.field, field, "{json}: {err}");
            assert!(err.to_string().starts_with(field), "{err}");
        }
    }

    #[test]
    fn unknown_fields_are_refused_with_their_path() {
        assert_eq!(refused(r#"{"max_breaker": 3}"#).field, "max_breaker");
        assert_eq!(
            refused(r#"{"defaults": {"half_open": {"max_probe": 1}}}"#).field,
            "defaults.half_open.max_probe"
        );
        assert_eq!(
            refused(r#"{"breakers": {"a": {"windw": {}}}}"#).field,
            "breakers.a.windw"
        );
        assert_eq!(refused(r#"{"key": {"sauce": "route"}}"#).field, "key.sauce");
    }

    #[test]
    fn breakers_override_defaults_field_by_field() {
        let s = Settings::from_json(
            br#"{"defaults": {"min_requests": 4, "window": {"requests": 8}, "open": {"duration_ms": 100}},
                 "breakers": {"slow": {"open": {"max_duration_ms": 500}, "window": {"type": "time", "seconds": 3}}}}"#,
        )
        .unwrap();
        let slow = s.breaker("slow").policy;
        assert_eq!(slow.open_ms, 100, "kept from defaults");
        assert_eq!(slow.max_open_ms, 500);
        assert_eq!(slow.min_requests, 4);
        assert_eq!(slow.window, WindowSpec::Time { length_ms: 3000 });
        assert_eq!(
            s.breaker("other").policy.window,
            WindowSpec::Count { size: 8 }
        );
    }

    #[test]
    fn fallback_headers_are_collected_for_stripping() {
        let s = Settings::from_json(
            br#"{"defaults": {"on_open": {"mode": "fallback", "fallback_header": {"name": "X-Maint", "value": "1"}}}}"#,
        )
        .unwrap();
        assert_eq!(s.strip_headers, vec!["x-maint"]);
        assert_eq!(
            s.defaults.on_open,
            OpenAction::Fallback {
                name: "x-maint".into(),
                value: "1".into()
            }
        );
    }

    #[test]
    fn key_sources() {
        let s = Settings::from_json(br#"{"key": {"source": "route"}}"#).unwrap();
        assert_eq!(
            s.key,
            KeyRule::Property(vec!["xds".into(), "route_name".into()])
        );
        let s = Settings::from_json(
            br#"{"key": {"source": "header", "name": "X-Backend", "when_missing": "default"}}"#,
        )
        .unwrap();
        assert_eq!(s.key, KeyRule::Header("x-backend".into()));
        assert_eq!(s.when_missing.as_deref(), Some("default"));
        let s =
            Settings::from_json(br#"{"key": {"source": "property", "path": "kong.service.name"}}"#)
                .unwrap();
        assert_eq!(
            s.key,
            KeyRule::Property(vec!["kong".into(), "service".into(), "name".into()])
        );
        let s = Settings::from_json(br#"{"key": {"source": "fixed", "value": "all"}}"#).unwrap();
        assert_eq!(s.key, KeyRule::Fixed("all".into()));
    }
}

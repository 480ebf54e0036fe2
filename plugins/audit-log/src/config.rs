//! Configuration: the JSON the gateway passes, and its compiled form ([`Settings`]).
//!
//! Every field has a default, so `{}` is a working config (every record field, the gateway log
//! sink, no export). A config that cannot work is refused at load, naming the field.

use gateway_core::error::{parse_json, ConfigError};
use gateway_core::headers::header_name;
use gateway_core::identity;
use serde::Deserialize;

/// Every record field that can be switched on or off, in record order.
pub const ALL_FIELDS: &[&str] = &[
    "time",
    "request_id",
    "correlation_id",
    "trace_id",
    "method",
    "authority",
    "path",
    "status",
    "duration_ms",
    "bytes_in",
    "bytes_out",
    "client_ip",
    "user_agent",
    "identity",
    "decisions",
    "upstream",
    "response_flags",
    "request_headers",
    "response_headers",
    "request_body",
    "response_body",
];

/// The plugin configuration as written by the operator.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// What this VM does: `worker` (writes records; the default), `exporter` (the Envoy singleton
    /// that drains the shared queue and ships batches) or `local` (writes records and ships its
    /// own buffer on its own ticker: Kong, or Envoy without a singleton).
    pub role: Role,
    /// Record fields to write (see [`ALL_FIELDS`]); default: all. Chain fields always appear.
    pub fields: Option<Vec<String>>,
    /// Headers whose values are replaced by `[REDACTED]` wherever they appear in a record.
    pub redact_headers: Vec<String>,
    /// Query parameters whose values are replaced by `[REDACTED]` in `path`.
    pub redact_query_params: Vec<String>,
    /// Also redact any query or header value shaped like a JWT (`eyJ...`.`...`.`...`).
    pub redact_jwt_like: bool,
    /// Request headers copied into `request_headers` (values redacted per `redact_headers`).
    pub request_headers: Vec<String>,
    /// Response headers copied into `response_headers`.
    pub response_headers: Vec<String>,
    /// Proxies in front of the gateway that each append to `X-Forwarded-For`; 0 ignores it.
    pub trusted_hops: u32,
    /// Header names read into the record.
    pub headers: HeaderNames,
    /// Where records go besides the gateway log.
    pub sinks: SinksConfig,
    /// Batch export to an HTTP collector (roles `exporter` and `local`; `worker` uses `queue`).
    pub export: ExportConfig,
    /// Optional capture of request/response bodies.
    pub bodies: BodiesConfig,
    /// Metric name prefix of this instance: `edge` gives `edge.audit_log.<name>`, so two instances of
    /// the plugin (on two listeners, say) keep their own counters, as Envoy's native filters do
    /// with their `stat_prefix`; Envoy's `stats_tags` can turn it into a label. Letters, digits
    /// and `_`, at most 64. Default: none (`audit_log.<name>`).
    pub stat_prefix: Option<String>,
}

/// Body capture: off by default. A captured body appears only as JSON with the named fields
/// redacted; a body that is not complete JSON within `max_bytes` is described (size, truncated)
/// but its content is left out, so a secret in an unknown format never reaches the record.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct BodiesConfig {
    /// Capture request bodies.
    pub request: bool,
    /// Capture response bodies.
    pub response: bool,
    /// Most bytes kept per body.
    pub max_bytes: usize,
    /// JSON object keys whose values become `[REDACTED]`, at any depth (case-insensitive).
    pub redact_json_fields: Vec<String>,
}

impl Default for BodiesConfig {
    fn default() -> Self {
        Self {
            request: false,
            response: false,
            max_bytes: 4096,
            redact_json_fields: [
                "password",
                "secret",
                "token",
                "access_token",
                "refresh_token",
                "id_token",
                "client_secret",
                "api_key",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            role: Role::Worker,
            fields: None,
            redact_headers: ["authorization", "cookie", "set-cookie", "x-api-key"]
                .map(String::from)
                .to_vec(),
            redact_query_params: ["access_token", "id_token", "token", "api_key", "apikey"]
                .map(String::from)
                .to_vec(),
            redact_jwt_like: true,
            request_headers: Vec::new(),
            response_headers: Vec::new(),
            trusted_hops: 0,
            headers: HeaderNames::default(),
            sinks: SinksConfig::default(),
            export: ExportConfig::default(),
            bodies: BodiesConfig::default(),
            stat_prefix: None,
        }
    }
}

/// What a VM does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// HTTP filter: builds records; hands them to the shared queue when `export.enabled`.
    #[default]
    Worker,
    /// Envoy singleton: owns the queue, batches, ships, retries. Sees no requests.
    Exporter,
    /// HTTP filter that ships its own records on its own ticker (Kong: no `on_queue_ready`).
    Local,
}

/// Names of the headers the record reads. Defaults: the suite's shared names.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct HeaderNames {
    /// Request id (Envoy sets `x-request-id`).
    pub request_id: String,
    /// Correlation id (header-injection's default).
    pub correlation_id: String,
    /// W3C trace context; the record keeps its trace-id part.
    pub traceparent: String,
    /// Client chain.
    pub forwarded_for: String,
    /// Verified subject (jwt-rbac).
    pub user_id: String,
    /// Verified roles (jwt-rbac).
    pub user_roles: String,
    /// Credential type, `jwt` or `api-key` (jwt-rbac).
    pub auth_method: String,
    /// Auth outcome, `verified` or `anonymous` (jwt-rbac, request header).
    pub auth_status: String,
    /// Auth failure reason (response header of a refusal; jwt-rbac's `www-authenticate`).
    pub auth_reason: String,
    /// Rate-limit remaining quota (ratelimit-shared-data, response header).
    pub ratelimit_remaining: String,
    /// Fallback marker circuit-breaker sets on the request while open.
    pub breaker: String,
}

impl Default for HeaderNames {
    fn default() -> Self {
        Self {
            request_id: "x-request-id".into(),
            correlation_id: "x-correlation-id".into(),
            traceparent: "traceparent".into(),
            forwarded_for: "x-forwarded-for".into(),
            user_id: identity::USER_ID.into(),
            user_roles: identity::USER_ROLES.into(),
            auth_method: identity::AUTH_METHOD.into(),
            auth_status: identity::AUTH_STATUS.into(),
            auth_reason: "www-authenticate".into(),
            ratelimit_remaining: "x-ratelimit-remaining".into(),
            breaker: "x-circuit-breaker".into(),
        }
    }
}

/// Sinks written by every request-handling VM.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct SinksConfig {
    /// One line `audit-log: {json}` per record at info level.
    pub log: bool,
    /// The record as filter state (`set_property`), empty string disables.
    pub filter_state_key: String,
}

impl Default for SinksConfig {
    fn default() -> Self {
        Self {
            log: true,
            filter_state_key: "audit_record".into(),
        }
    }
}

/// Export to an HTTP collector.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct ExportConfig {
    /// Off by default.
    pub enabled: bool,
    /// Shared queue name (workers enqueue, the exporter registers it).
    pub queue: String,
    /// vm_id under which the exporter registered the queue (workers resolve it).
    pub queue_vm_id: String,
    /// Envoy: cluster name; Kong: `host:port`.
    pub upstream: String,
    /// Request path on the collector.
    pub path: String,
    /// `:authority` of the export request.
    pub authority: String,
    /// A batch is sent once it holds this many records...
    pub batch_max_records: usize,
    /// ...or this many bytes...
    pub batch_max_bytes: usize,
    /// ...or its oldest record waited this long.
    pub batch_max_delay_ms: u64,
    /// Most records held (buffered plus in flight); beyond it new records are dropped and logged.
    pub buffer_max_records: usize,
    /// Most bytes held.
    pub buffer_max_bytes: usize,
    /// Timeout of one export call.
    pub timeout_ms: u64,
    /// First retry delay; doubles per failed attempt up to `retry_max_ms`.
    pub retry_initial_ms: u64,
    /// Longest retry delay.
    pub retry_max_ms: u64,
    /// Ticker period of the exporter.
    pub tick_ms: u64,
    /// Body format: `ndjson` (one record per line) or `otlp_json` (OTLP/HTTP JSON logs).
    pub format: ExportFormat,
}

/// Body format of an export call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    /// `application/x-ndjson`: the record lines as written.
    #[default]
    Ndjson,
    /// `application/json`: an OTLP `ExportLogsServiceRequest`, one log record per audit record
    /// (body: the record line; attributes `audit.chain`, `audit.seq`, `audit.hash`).
    OtlpJson,
}

impl ExportFormat {
    /// The `content-type` of the body.
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Ndjson => "application/x-ndjson",
            ExportFormat::OtlpJson => "application/json",
        }
    }
}

impl Default for ExportConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            queue: "audit_log".into(),
            queue_vm_id: String::new(),
            upstream: "audit_collector".into(),
            path: "/v1/audit".into(),
            authority: "audit-collector".into(),
            batch_max_records: 100,
            batch_max_bytes: 256 * 1024,
            batch_max_delay_ms: 1000,
            buffer_max_records: 10_000,
            buffer_max_bytes: 16 * 1024 * 1024,
            timeout_ms: 5000,
            retry_initial_ms: 200,
            retry_max_ms: 10_000,
            tick_ms: 200,
            format: ExportFormat::Ndjson,
        }
    }
}

/// The compiled configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Role of this VM.
    pub role: Role,
    /// Enabled fields, a subset of [`ALL_FIELDS`].
    pub fields: Vec<&'static str>,
    /// Lowercase names.
    pub redact_headers: Vec<String>,
    /// Parameter names, exact.
    pub redact_query_params: Vec<String>,
    /// See [`Config::redact_jwt_like`].
    pub redact_jwt_like: bool,
    /// Lowercase names.
    pub request_headers: Vec<String>,
    /// Lowercase names.
    pub response_headers: Vec<String>,
    /// See [`Config::trusted_hops`].
    pub trusted_hops: u32,
    /// Lowercase names.
    pub headers: HeaderNames,
    /// Sinks.
    pub sinks: SinksConfig,
    /// Export.
    pub export: ExportConfig,
    /// Body capture.
    pub bodies: BodiesConfig,
    /// `stat_prefix`, checked.
    pub stat_prefix: Option<String>,
}

impl Settings {
    /// Parses and compiles config bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        Self::try_from(parse_json::<Config>(bytes)?)
    }

    /// True if `field` is written.
    pub fn has(&self, field: &str) -> bool {
        self.fields.contains(&field)
    }
}

fn names(list: &[String], field: &str) -> Result<Vec<String>, ConfigError> {
    list.iter()
        .enumerate()
        .map(|(i, n)| header_name(n, &format!("{field}[{i}]")))
        .collect()
}

fn positive(value: u64, field: &str) -> Result<(), ConfigError> {
    if value == 0 {
        Err(ConfigError::invalid(field, "must be greater than 0"))
    } else {
        Ok(())
    }
}

impl TryFrom<Config> for Settings {
    type Error = ConfigError;

    fn try_from(c: Config) -> Result<Self, ConfigError> {
        let fields = match &c.fields {
            None => ALL_FIELDS.to_vec(),
            Some(list) => {
                let mut out = Vec::new();
                for (i, f) in list.iter().enumerate() {
                    match ALL_FIELDS.iter().find(|a| **a == f.as_str()) {
                        Some(known) => out.push(*known),
                        None => {
                            return Err(ConfigError::invalid(
                                format!("fields[{i}]"),
                                format!("unknown field {f:?}; known: {}", ALL_FIELDS.join(", ")),
                            ))
                        }
                    }
                }
                out
            }
        };
        let h = &c.headers;
        let headers = HeaderNames {
            request_id: header_name(&h.request_id, "headers.request_id")?,
            correlation_id: header_name(&h.correlation_id, "headers.correlation_id")?,
            traceparent: header_name(&h.traceparent, "headers.traceparent")?,
            forwarded_for: header_name(&h.forwarded_for, "headers.forwarded_for")?,
            user_id: header_name(&h.user_id, "headers.user_id")?,
            user_roles: header_name(&h.user_roles, "headers.user_roles")?,
            auth_method: header_name(&h.auth_method, "headers.auth_method")?,
            auth_status: header_name(&h.auth_status, "headers.auth_status")?,
            auth_reason: header_name(&h.auth_reason, "headers.auth_reason")?,
            ratelimit_remaining: header_name(
                &h.ratelimit_remaining,
                "headers.ratelimit_remaining",
            )?,
            breaker: header_name(&h.breaker, "headers.breaker")?,
        };
        for (i, p) in c.redact_query_params.iter().enumerate() {
            if p.is_empty() {
                return Err(ConfigError::invalid(
                    format!("redact_query_params[{i}]"),
                    "must not be empty",
                ));
            }
        }
        // Every value is checked, in a section switched off too: switching it on later must not
        // be the moment a typo or an impossible value is found.
        if c.bodies.max_bytes == 0 {
            return Err(ConfigError::invalid(
                "bodies.max_bytes",
                "must be greater than 0",
            ));
        }
        let e = &c.export;
        if (e.enabled || c.role != Role::Worker) && e.queue.is_empty() && c.role != Role::Local {
            return Err(ConfigError::invalid("export.queue", "must not be empty"));
        }
        if (e.enabled || c.role == Role::Exporter)
            && c.role != Role::Worker
            && e.upstream.is_empty()
        {
            return Err(ConfigError::invalid("export.upstream", "must not be empty"));
        }
        if let Some(hint) = gateway_core::headers::url_shaped_upstream(&e.upstream) {
            return Err(ConfigError::invalid("export.upstream", hint));
        }
        if !e.path.starts_with('/') {
            return Err(ConfigError::invalid("export.path", "must start with /"));
        }
        positive(e.batch_max_records as u64, "export.batch_max_records")?;
        positive(e.batch_max_bytes as u64, "export.batch_max_bytes")?;
        positive(e.buffer_max_records as u64, "export.buffer_max_records")?;
        positive(e.buffer_max_bytes as u64, "export.buffer_max_bytes")?;
        positive(e.timeout_ms, "export.timeout_ms")?;
        positive(e.retry_initial_ms, "export.retry_initial_ms")?;
        positive(e.tick_ms, "export.tick_ms")?;
        if e.retry_max_ms < e.retry_initial_ms {
            return Err(ConfigError::invalid(
                "export.retry_max_ms",
                "must be at least export.retry_initial_ms",
            ));
        }
        if e.buffer_max_records < e.batch_max_records {
            return Err(ConfigError::invalid(
                "export.buffer_max_records",
                "must be at least export.batch_max_records",
            ));
        }
        Ok(Self {
            stat_prefix: gateway_core::metrics::stat_prefix(
                c.stat_prefix.as_deref(),
                "stat_prefix",
            )?,
            role: c.role,
            fields,
            redact_headers: names(&c.redact_headers, "redact_headers")?,
            redact_query_params: c.redact_query_params,
            redact_jwt_like: c.redact_jwt_like,
            request_headers: names(&c.request_headers, "request_headers")?,
            response_headers: names(&c.response_headers, "response_headers")?,
            trusted_hops: c.trusted_hops,
            headers,
            sinks: c.sinks,
            export: c.export,
            bodies: c.bodies,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> String {
        match Settings::from_json(json.as_bytes()) {
            Ok(_) => String::from("accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_switched_off_section_is_checked_too() {
        for (json, field) in [
            (r#"{"bodies": {"max_bytes": 0}}"#, "bodies.max_bytes"),
            (
                r#"{"export": {"enabled": false, "batch_max_records": 10, "buffer_max_records": 5}}"#,
                "export.buffer_max_records",
            ),
            (r#"{"export": {"path": "v1/audit"}}"#, "export.path"),
            (
                r#"{"role": "local", "export": {"enabled": true, "upstream": "http://collector:8082/v1"}}"#,
                "export.upstream",
            ),
        ] {
            let e = err(json);
            assert!(e.starts_with(&format!("{field}: ")), "{json}: {e}");
        }
    }

    #[test]
    fn empty_config_has_every_field_and_default_redaction() {
        let s = Settings::from_json(b"").unwrap();
        assert_eq!(s.fields.len(), ALL_FIELDS.len());
        assert!(s.redact_headers.contains(&"authorization".to_owned()));
        assert_eq!(s.role, Role::Worker);
        assert!(s.sinks.log);
    }

    #[test]
    fn refusals_name_the_field() {
        assert!(err(r#"{"fields": ["time", "bogus"]}"#).starts_with("fields[1]: unknown field"));
        assert!(
            err(r#"{"typo": 1}"#).starts_with("typo"),
            "{}",
            err(r#"{"typo": 1}"#)
        );
        assert!(err(r#"{"redact_headers": ["bad name"]}"#).starts_with("redact_headers[0]"));
        assert!(
            err(r#"{"role": "exporter", "export": {"batch_max_records": 0}}"#)
                .starts_with("export.batch_max_records")
        );
        assert!(err(r#"{"role": "local", "export": {"path": "x"}}"#).starts_with("export.path"));
        assert!(
            err(r#"{"export": {"enabled": true, "buffer_max_records": 5}}"#)
                .starts_with("export.buffer_max_records")
        );
        assert!(err(r#"{"role": "bogus"}"#).starts_with("role"));
    }
}

//! Configuration: the JSON the gateway passes, and its compiled, ready-to-use form.
//!
//! Parsing uses `deny_unknown_fields` everywhere; [`Settings::try_from`] then validates every
//! header name, value, regex and origin, naming the field of the first problem. An empty config
//! gives the defaults: security headers, anti-spoofing of the identity headers, correlation id,
//! traceparent.

use crate::correlation::{CorrelationConfig, CorrelationPolicy};
use crate::cors::{CorsConfig, CorsPolicy};
use crate::rules::{Rule, RuleConfig};
use crate::security::{SecurityHeaders, SecurityHeadersConfig};
use crate::traceparent::{TraceparentConfig, TraceparentPolicy};
use gateway_core::antispoof::ProtectedHeaders;
use gateway_core::error::{parse_json, ConfigError};
use gateway_core::identity::IDENTITY_HEADERS;
use serde::Deserialize;

/// The plugin configuration as written by the operator.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Rules applied to request headers, in order, before the request goes upstream.
    pub request_rules: Vec<RuleConfig>,
    /// Rules applied to response headers, in order, before the response goes to the client.
    pub response_rules: Vec<RuleConfig>,
    /// Correlation id: keep a valid incoming one or generate one; forward and echo it.
    pub correlation_id: CorrelationConfig,
    /// W3C `traceparent` validation and propagation.
    pub traceparent: TraceparentConfig,
    /// Security response headers (HSTS, nosniff, frame options, referrer policy, CSP).
    pub security_headers: SecurityHeadersConfig,
    /// CORS; absent means the plugin does nothing about CORS.
    pub cors: Option<CorsConfig>,
    /// Headers always removed from client requests.
    pub anti_spoofing: AntiSpoofingConfig,
    /// Metric name prefix of this instance: `edge` gives `edge.header_injection.<name>`, so two instances of
    /// the plugin (on two listeners, say) keep their own counters, as Envoy's native filters do
    /// with their `stat_prefix`; Envoy's `stats_tags` can turn it into a label. Letters, digits
    /// and `_`, at most 64. Default: none (`header_injection.<name>`).
    pub stat_prefix: Option<String>,
}

/// `anti_spoofing`: headers a client must never be able to send.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct AntiSpoofingConfig {
    /// Turn the removal on or off. Default `true`.
    pub enabled: bool,
    /// Names to remove (with `_`/`-` variants, any case, every duplicate). Default: the suite's
    /// identity headers (`gateway_core::identity::IDENTITY_HEADERS`).
    pub headers: Vec<String>,
}

impl Default for AntiSpoofingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            headers: IDENTITY_HEADERS.iter().map(|h| (*h).to_owned()).collect(),
        }
    }
}

/// The compiled configuration, shared by every stream of a VM.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Compiled request rules.
    pub request_rules: Vec<Rule>,
    /// Compiled response rules.
    pub response_rules: Vec<Rule>,
    /// Request headers that response rules read: captured during the request phase.
    pub captured_request_headers: Vec<String>,
    /// Correlation id policy, if enabled.
    pub correlation: Option<CorrelationPolicy>,
    /// Traceparent policy, if enabled.
    pub traceparent: Option<TraceparentPolicy>,
    /// Security headers to add (empty when disabled).
    pub security: SecurityHeaders,
    /// CORS policy, if configured.
    pub cors: Option<CorsPolicy>,
    /// Protected headers (empty when disabled).
    pub protected: ProtectedHeaders,
    /// `stat_prefix`, checked.
    pub stat_prefix: Option<String>,
}

impl Settings {
    /// Parses and compiles configuration bytes (JSON; empty means defaults).
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        Self::try_from(parse_json::<Config>(bytes)?)
    }
}

impl Default for Settings {
    fn default() -> Self {
        // The default config always compiles; fall back to "do nothing" rather than panic.
        Self::try_from(Config::default()).unwrap_or_else(|_| Self {
            request_rules: Vec::new(),
            response_rules: Vec::new(),
            captured_request_headers: Vec::new(),
            correlation: None,
            traceparent: None,
            security: SecurityHeaders::default(),
            cors: None,
            protected: ProtectedHeaders::default(),
            stat_prefix: None,
        })
    }
}

impl TryFrom<Config> for Settings {
    type Error = ConfigError;

    fn try_from(config: Config) -> Result<Self, ConfigError> {
        let request_rules = compile_rules(&config.request_rules, "request_rules")?;
        let response_rules = compile_rules(&config.response_rules, "response_rules")?;
        let mut captured_request_headers = Vec::new();
        for rule in &response_rules {
            if let Some(name) = rule.reads_request_header() {
                if !captured_request_headers.iter().any(|n| n == name) {
                    captured_request_headers.push(name.to_owned());
                }
            }
        }
        let protected = if config.anti_spoofing.enabled {
            ProtectedHeaders::try_new(&config.anti_spoofing.headers, "anti_spoofing.headers")?
        } else {
            ProtectedHeaders::default()
        };
        Ok(Self {
            stat_prefix: gateway_core::metrics::stat_prefix(
                config.stat_prefix.as_deref(),
                "stat_prefix",
            )?,
            request_rules,
            response_rules,
            captured_request_headers,
            correlation: CorrelationPolicy::try_new(&config.correlation_id, "correlation_id")?,
            traceparent: TraceparentPolicy::try_new(&config.traceparent),
            security: SecurityHeaders::try_new(&config.security_headers, "security_headers")?,
            cors: config
                .cors
                .as_ref()
                .map(|c| CorsPolicy::try_new(c, "cors"))
                .transpose()?,
            protected,
        })
    }
}

fn compile_rules(rules: &[RuleConfig], field: &str) -> Result<Vec<Rule>, ConfigError> {
    rules
        .iter()
        .enumerate()
        .map(|(i, rule)| Rule::try_new(rule, &format!("{field}[{i}]")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(json: &str) -> ConfigError {
        Settings::from_json(json.as_bytes()).unwrap_err()
    }

    #[test]
    fn empty_config_gives_defaults() {
        for text in ["", "{}", "  \n"] {
            let settings = Settings::from_json(text.as_bytes()).unwrap();
            assert!(settings.correlation.is_some());
            assert!(settings.traceparent.is_some());
            assert!(!settings.security.is_empty());
            assert!(settings.protected.is_protected("x-user-id"));
            assert!(settings.cors.is_none());
        }
    }

    #[test]
    fn unknown_fields_are_refused_everywhere() {
        assert_eq!(refused(r#"{"request_rule": []}"#).field, "request_rule");
        assert_eq!(
            refused(r#"{"correlation_id": {"hedaer": "x"}}"#).field,
            "correlation_id.hedaer"
        );
        assert_eq!(
            refused(r#"{"request_rules": [{"action": "remove", "name": "a", "match": {"path": {"prefx": "/"}}}]}"#)
                .field,
            "request_rules[0].match.path.prefx"
        );
        assert_eq!(
            refused(
                r#"{"cors": {"allowed_origins": ["https://a.com"], "allow_credential": true}}"#
            )
            .field,
            "cors.allow_credential"
        );
        assert_eq!(
            refused(r#"{"security_headers": {"hsts": "max-age=1"}}"#).field,
            "security_headers.hsts"
        );
        assert_eq!(
            refused(r#"{"anti_spoofing": {"header": []}}"#).field,
            "anti_spoofing.header"
        );
        assert_eq!(
            refused(r#"{"traceparent": {"start": true}}"#).field,
            "traceparent.start"
        );
    }

    #[test]
    fn bad_regex_is_refused_with_its_path() {
        let err = refused(
            r#"{"request_rules": [
                {"action": "remove", "name": "a"},
                {"action": "remove", "name": "b"},
                {"action": "remove", "name": "c", "match": {"path": {"regex": "([a-z"}}}
            ]}"#,
        );
        assert_eq!(err.field, "request_rules[2].match.path.regex");
        assert!(err
            .to_string()
            .starts_with("request_rules[2].match.path.regex: invalid regex: "));
    }

    #[test]
    fn bad_header_name_and_value_are_refused() {
        assert_eq!(
            refused(r#"{"response_rules": [{"action": "remove", "name": "bad name"}]}"#).field,
            "response_rules[0].name"
        );
        assert_eq!(
            refused(r#"{"request_rules": [{"action": "set", "name": "x", "value": {"literal": "a\r\nb"}}]}"#)
                .field,
            "request_rules[0].value.literal"
        );
        assert_eq!(
            refused(r#"{"anti_spoofing": {"headers": ["ok", "x y"]}}"#).field,
            "anti_spoofing.headers[1]"
        );
    }

    #[test]
    fn captures_request_headers_read_by_response_rules() {
        let settings = Settings::from_json(
            br#"{"response_rules": [
                {"action": "set", "name": "x-echo-tenant", "value": {"request_header": "X-Tenant"}},
                {"action": "set", "name": "x-again", "value": {"request_header": "x-tenant"}}
            ]}"#,
        )
        .unwrap();
        assert_eq!(settings.captured_request_headers, vec!["x-tenant"]);
    }

    #[test]
    fn everything_can_be_disabled() {
        let settings = Settings::from_json(
            br#"{"correlation_id": {"enabled": false}, "traceparent": {"enabled": false},
                 "security_headers": {"enabled": false}, "anti_spoofing": {"enabled": false}}"#,
        )
        .unwrap();
        assert!(settings.correlation.is_none());
        assert!(settings.traceparent.is_none());
        assert!(settings.security.is_empty());
        assert!(settings.protected.is_empty());
    }
}

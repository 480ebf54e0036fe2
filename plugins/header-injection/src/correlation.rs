//! Correlation id: keep a valid incoming id, otherwise generate one; forward and echo it.

use gateway_core::error::{join, ConfigError};
use gateway_core::headers::header_name;
use serde::Deserialize;

/// `correlation_id` as written in config.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct CorrelationConfig {
    /// Turn the feature on or off. Default `true`.
    pub enabled: bool,
    /// Header carrying the id, upstream and on the response. Default `x-correlation-id`.
    pub header: String,
    /// Longest incoming id kept, in bytes (1 to 1024). Default `128`.
    pub max_length: usize,
    /// Characters allowed besides ASCII letters and digits. Default `-_.:`.
    pub extra_chars: String,
    /// Echo the id on the response. Default `true`.
    pub echo_on_response: bool,
}

impl Default for CorrelationConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            header: "x-correlation-id".to_owned(),
            max_length: 128,
            extra_chars: "-_.:".to_owned(),
            echo_on_response: true,
        }
    }
}

/// The compiled correlation policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrelationPolicy {
    /// Lowercase header name.
    pub header: String,
    max_length: usize,
    extra_chars: Vec<u8>,
    /// Echo the id on the response.
    pub echo_on_response: bool,
}

/// What to do with the incoming correlation header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorrelationDecision {
    /// The single incoming value is valid: leave the request alone.
    Keep(String),
    /// The first value is valid but there were duplicates: set just this one.
    Dedupe(String),
    /// Absent or invalid: generate a new id and set it.
    Generate,
}

impl CorrelationPolicy {
    /// Compiles the config; `None` when disabled.
    pub fn try_new(config: &CorrelationConfig, field: &str) -> Result<Option<Self>, ConfigError> {
        if !config.enabled {
            return Ok(None);
        }
        let header = header_name(&config.header, &join(field, "header"))?;
        if !(1..=1024).contains(&config.max_length) {
            return Err(ConfigError::invalid(
                join(field, "max_length"),
                "must be between 1 and 1024",
            ));
        }
        if let Some(bad) = config
            .extra_chars
            .bytes()
            .find(|b| !b.is_ascii_graphic() || matches!(b, b',' | b'"' | b'\\'))
        {
            return Err(ConfigError::invalid(
                join(field, "extra_chars"),
                format!(
                    "character {:?} not allowed: use visible ascii other than , \" \\",
                    char::from(bad)
                ),
            ));
        }
        Ok(Some(Self {
            header,
            max_length: config.max_length,
            extra_chars: config.extra_chars.as_bytes().to_vec(),
            echo_on_response: config.echo_on_response,
        }))
    }

    /// True if `value` is an acceptable id.
    pub fn is_valid(&self, value: &[u8]) -> bool {
        !value.is_empty()
            && value.len() <= self.max_length
            && value
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || self.extra_chars.contains(b))
    }

    /// Decides from every incoming value of the header.
    pub fn decide(&self, values: &[Vec<u8>]) -> CorrelationDecision {
        match values.first() {
            Some(first) if self.is_valid(first) => {
                // Valid ids are ASCII, so this conversion cannot fail.
                let id = String::from_utf8_lossy(first).into_owned();
                if values.len() == 1 {
                    CorrelationDecision::Keep(id)
                } else {
                    CorrelationDecision::Dedupe(id)
                }
            }
            _ => CorrelationDecision::Generate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: &str) -> CorrelationPolicy {
        let config: CorrelationConfig = serde_json::from_str(json).unwrap();
        CorrelationPolicy::try_new(&config, "correlation_id")
            .unwrap()
            .unwrap()
    }

    #[test]
    fn keeps_valid_generates_otherwise() {
        let p = policy("{}");
        assert_eq!(p.header, "x-correlation-id");
        assert_eq!(
            p.decide(&[b"abc-123_x.y:z".to_vec()]),
            CorrelationDecision::Keep("abc-123_x.y:z".into())
        );
        assert_eq!(p.decide(&[]), CorrelationDecision::Generate);
        assert_eq!(p.decide(&[b"".to_vec()]), CorrelationDecision::Generate);
        assert_eq!(
            p.decide(&[b"has space".to_vec()]),
            CorrelationDecision::Generate
        );
        assert_eq!(
            p.decide(&[b"\xff\xfe".to_vec()]),
            CorrelationDecision::Generate
        );
        assert_eq!(p.decide(&[vec![b'a'; 129]]), CorrelationDecision::Generate);
        assert_eq!(
            p.decide(&[vec![b'a'; 128]]),
            CorrelationDecision::Keep("a".repeat(128))
        );
        assert_eq!(
            p.decide(&[b"one".to_vec(), b"two".to_vec()]),
            CorrelationDecision::Dedupe("one".into())
        );
    }

    #[test]
    fn configurable_header_length_and_charset() {
        let p = policy(r#"{"header": "X-Request-Ref", "max_length": 4, "extra_chars": ""}"#);
        assert_eq!(p.header, "x-request-ref");
        assert!(p.is_valid(b"ab12"));
        assert!(!p.is_valid(b"ab-1"));
        assert!(!p.is_valid(b"abcde"));
    }

    #[test]
    fn invalid_settings_are_refused() {
        let config: CorrelationConfig = serde_json::from_str(r#"{"max_length": 0}"#).unwrap();
        assert_eq!(
            CorrelationPolicy::try_new(&config, "correlation_id")
                .unwrap_err()
                .field,
            "correlation_id.max_length"
        );
        let config: CorrelationConfig = serde_json::from_str(r#"{"extra_chars": "- "}"#).unwrap();
        assert_eq!(
            CorrelationPolicy::try_new(&config, "correlation_id")
                .unwrap_err()
                .field,
            "correlation_id.extra_chars"
        );
        let config: CorrelationConfig = serde_json::from_str(r#"{"header": "a b"}"#).unwrap();
        assert_eq!(
            CorrelationPolicy::try_new(&config, "correlation_id")
                .unwrap_err()
                .field,
            "correlation_id.header"
        );
    }

    #[test]
    fn disabled_is_none() {
        let config: CorrelationConfig = serde_json::from_str(r#"{"enabled": false}"#).unwrap();
        assert!(CorrelationPolicy::try_new(&config, "c").unwrap().is_none());
    }
}

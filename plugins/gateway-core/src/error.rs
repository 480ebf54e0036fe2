//! Config errors: one small type that always names the offending field.
//!
//! Messages are lowercase and start with the field path, e.g.
//! `request_rules[2].match.path.regex: invalid regex: ...`, so the single log line a plugin
//! writes when it refuses a config tells the operator exactly what to fix.

use serde::de::DeserializeOwned;
use thiserror::Error;

/// A configuration refused at load, with the JSON path of the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {kind}")]
pub struct ConfigError {
    /// Path of the field, e.g. `request_rules[2].match.path.regex` (`config` for the root).
    pub field: String,
    /// What is wrong with it.
    pub kind: ConfigErrorKind,
}

/// What is wrong with a config field.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigErrorKind {
    /// The text is not JSON at all.
    #[error("invalid json: {0}")]
    Syntax(String),
    /// Unknown field, missing field, wrong type (serde's message, position removed).
    #[error("{0}")]
    Schema(String),
    /// A regular expression that does not compile.
    #[error("invalid regex: {0}")]
    InvalidRegex(String),
    /// A header name that is not an RFC 9110 token.
    #[error("invalid header name {0:?}: must be an rfc 9110 token")]
    InvalidHeaderName(String),
    /// A header value containing CR, LF or NUL.
    #[error("invalid header value: must not contain cr, lf or nul")]
    InvalidHeaderValue,
    /// Any other rule the field breaks, described in lowercase.
    #[error("{0}")]
    Invalid(String),
}

impl ConfigError {
    /// An error for `field`.
    pub fn new(field: impl Into<String>, kind: ConfigErrorKind) -> Self {
        Self {
            field: field.into(),
            kind,
        }
    }

    /// Shorthand for [`ConfigErrorKind::Invalid`].
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(field, ConfigErrorKind::Invalid(message.into()))
    }
}

/// Joins a parent path and a child field name: `join("a[1]", "b") == "a[1].b"`.
pub fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_owned()
    } else {
        format!("{parent}.{child}")
    }
}

/// Parses JSON config bytes into `T`, naming the field on failure.
///
/// Empty or whitespace-only input parses as `{}`, so a plugin with no configuration gets its
/// defaults. Unknown fields are reported with their own path:
///
/// ```
/// #[derive(serde::Deserialize, Debug)]
/// #[serde(deny_unknown_fields)]
/// struct C { #[serde(default)] a: Vec<Inner> }
/// #[derive(serde::Deserialize, Debug)]
/// #[serde(deny_unknown_fields)]
/// struct Inner { #[serde(default)] b: u32 }
///
/// let err = gateway_core::error::parse_json::<C>(br#"{"a": [{}, {"c": 1}]}"#).unwrap_err();
/// assert_eq!(err.field, "a[1].c");
/// assert!(gateway_core::error::parse_json::<C>(b"  ").is_ok());
/// ```
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ConfigError> {
    let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    let mut de = serde_json::Deserializer::from_slice(text);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let message = strip_position(&inner.to_string());
        let field = if path == "." || path.is_empty() {
            "config".to_owned()
        } else {
            path
        };
        if inner.is_syntax() || inner.is_eof() {
            return ConfigError::new(field, ConfigErrorKind::Syntax(message));
        }
        // serde_path_to_error already ends the path with an unknown field's name; make sure.
        let field = match unknown_field_name(&message) {
            Some(name) if field == "config" => name.to_owned(),
            Some(name) if !field.ends_with(name) => join(&field, name),
            _ => field,
        };
        ConfigError::new(field, ConfigErrorKind::Schema(message))
    })?;
    de.end().map_err(|err| {
        ConfigError::new(
            "config",
            ConfigErrorKind::Syntax(strip_position(&err.to_string())),
        )
    })?;
    Ok(value)
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

fn unknown_field_name(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Root {
        #[serde(default)]
        #[allow(dead_code)]
        rules: Vec<Rule>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Rule {
        #[allow(dead_code)]
        name: String,
    }

    #[test]
    fn unknown_field_is_named_with_its_path() {
        let err = parse_json::<Root>(br#"{"rules": [{"name": "a"}, {"name": "b", "nmae": 1}]}"#)
            .unwrap_err();
        assert_eq!(err.field, "rules[1].nmae");
        assert!(err
            .to_string()
            .starts_with("rules[1].nmae: unknown field `nmae`"));
        assert!(!err.to_string().contains("line"));
    }

    #[test]
    fn unknown_top_level_field() {
        let err = parse_json::<Root>(br#"{"rulez": []}"#).unwrap_err();
        assert_eq!(err.field, "rulez");
    }

    #[test]
    fn missing_field_and_wrong_type_name_the_parent_or_field() {
        let err = parse_json::<Root>(br#"{"rules": [{}]}"#).unwrap_err();
        assert_eq!(err.field, "rules[0]");
        assert!(err.to_string().contains("missing field `name`"));
        let err = parse_json::<Root>(br#"{"rules": [{"name": 3}]}"#).unwrap_err();
        assert_eq!(err.field, "rules[0].name");
    }

    #[test]
    fn syntax_error_and_trailing_garbage() {
        let err = parse_json::<Root>(b"{").unwrap_err();
        assert!(matches!(err.kind, ConfigErrorKind::Syntax(_)));
        let err = parse_json::<Root>(b"{} x").unwrap_err();
        assert!(matches!(err.kind, ConfigErrorKind::Syntax(_)));
    }

    #[test]
    fn empty_input_is_an_empty_object() {
        assert!(parse_json::<Root>(b"").is_ok());
        assert!(parse_json::<Root>(b" \n").is_ok());
    }

    #[test]
    fn display_is_field_then_message() {
        let err = ConfigError::new("a.b", ConfigErrorKind::InvalidRegex("x".into()));
        assert_eq!(err.to_string(), "a.b: invalid regex: x");
    }
}

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
            return ConfigError::new(
                field,
                ConfigErrorKind::Syntax(syntax_message(text, &inner.to_string())),
            );
        }
        let message = plain_types(&message);
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
            ConfigErrorKind::Syntax(syntax_message(text, &err.to_string())),
        )
    })?;
    Ok(value)
}

/// A JSON syntax error as an operator can act on it: serde's message with its line and column
/// (`expected value at line 1 column 1`), and a hint when the text is YAML or another format
/// pasted where the gateway passes the configuration through as JSON text.
pub fn syntax_message(text: &[u8], serde_message: &str) -> String {
    let first = text.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let hint = match first {
        Some(b'{') | Some(b'[') | None => "",
        Some(b'-') | Some(b'#') => {
            "; the configuration must be JSON, and this looks like YAML: give the same \
             settings as one JSON object"
        }
        Some(b) if b.is_ascii_alphabetic() => {
            "; the configuration must be one JSON object (`{...}`); this looks like YAML or \
             plain text: give the same settings as JSON"
        }
        Some(_) => "; the configuration must be one JSON object (`{...}`)",
    };
    format!("{serde_message}{hint}")
}

/// True for text like `10`, `-3` or `2.5` (no float parser: it would add kilobytes to every
/// module for one hint).
pub fn looks_numeric(text: &str) -> bool {
    let bytes = text.as_bytes();
    let digits = match bytes.first() {
        Some(b'-') => &bytes[1..],
        _ => bytes,
    };
    let (mut before, mut after, mut dot) = (0usize, 0usize, false);
    for &b in digits {
        match b {
            b'0'..=b'9' if dot => after += 1,
            b'0'..=b'9' => before += 1,
            b'.' if !dot => dot = true,
            _ => return false,
        }
    }
    before > 0 && (!dot || after > 0)
}

/// serde's type names (`u32`, `i64`, `f64`) in words an operator reads, and a hint for a number
/// or a boolean given as a string (`"10"` for `10`).
pub fn plain_types(message: &str) -> String {
    // (serde's words, ours, what a quoted value must look like to get the hint)
    const WORDS: [(&str, &str, Hint); 11] = [
        (
            "expected u8",
            "expected a whole number from 0 to 255",
            Hint::Number,
        ),
        (
            "expected u16",
            "expected a whole number from 0 to 65535",
            Hint::Number,
        ),
        (
            "expected u32",
            "expected a whole number from 0 to 4294967295",
            Hint::Number,
        ),
        (
            "expected u64",
            "expected a whole number, 0 or more",
            Hint::Number,
        ),
        (
            "expected usize",
            "expected a whole number, 0 or more",
            Hint::Number,
        ),
        ("expected i32", "expected a whole number", Hint::Number),
        ("expected i64", "expected a whole number", Hint::Number),
        ("expected f32", "expected a number", Hint::Number),
        ("expected f64", "expected a number", Hint::Number),
        (
            "expected a boolean",
            "expected true or false",
            Hint::Boolean,
        ),
        ("expected a sequence", "expected an array", Hint::None),
    ];
    let mut out = message.to_owned();
    let mut wanted = Hint::None;
    for (from, to, hint) in WORDS {
        if let Some(head) = message.strip_suffix(from) {
            out = format!("{head}{to}");
            wanted = hint;
            break;
        }
    }
    // `invalid type: string "10", expected a whole number ...`: say how to write it.
    let quoted = out
        .strip_prefix("invalid type: string \"")
        .and_then(|rest| rest.split_once('"'))
        .map(|(quoted, _)| quoted.to_owned());
    if let Some(quoted) = quoted {
        let fits = match wanted {
            Hint::Number => looks_numeric(&quoted),
            Hint::Boolean => quoted == "true" || quoted == "false",
            Hint::None => false,
        };
        if fits {
            out.push_str(" (write ");
            out.push_str(&quoted);
            out.push_str(" without quotes)");
        }
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Hint {
    Number,
    Boolean,
    None,
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

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Limit {
        #[allow(dead_code)]
        capacity: u32,
    }

    #[test]
    fn yaml_is_refused_with_its_position_and_a_hint() {
        let err = parse_json::<Root>(b"rules:\n  - name: a\n").unwrap_err();
        let text = err.to_string();
        assert!(matches!(err.kind, ConfigErrorKind::Syntax(_)));
        assert!(text.contains("line 1 column 1"), "{text}");
        assert!(text.contains("must be one JSON object"), "{text}");
        let err = parse_json::<Root>(b"---\nrules: []\n").unwrap_err();
        assert!(err.to_string().contains("looks like YAML"), "{err}");
        let err = parse_json::<Root>(b"{\"rules\": [,]}").unwrap_err();
        assert!(err.to_string().contains("line 1 column"), "{err}");
    }

    #[test]
    fn a_number_in_quotes_is_named_in_words_with_a_hint() {
        let err = parse_json::<Limit>(br#"{"capacity": "10"}"#).unwrap_err();
        assert_eq!(err.field, "capacity");
        assert_eq!(
            err.to_string(),
            "capacity: invalid type: string \"10\", expected a whole number from 0 to 4294967295 \
             (write 10 without quotes)"
        );
        let err = parse_json::<Limit>(br#"{"capacity": -1}"#).unwrap_err();
        assert!(err.to_string().contains("from 0 to 4294967295"), "{err}");
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

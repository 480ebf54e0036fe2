//! Reads the configuration JSON into [`crate::config::Config`] and names the field of a refusal.
//!
//! `gateway_core::error::parse_json` tracks the path with `serde_path_to_error`, which wraps
//! every visitor of every config type: about 90 KiB of this plugin's wasm. Here serde_json
//! parses directly and, only when it refuses, the path is recovered from the error's position
//! by scanning the text up to it (which object keys and array indexes are open there). The
//! fields named are the same: an unknown field ends the path with its own name, a missing field
//! names its object, an unknown enum variant names the enum's value.

use gateway_core::error::{ConfigError, ConfigErrorKind};
use serde::de::DeserializeOwned;

/// Parses `bytes` (empty or whitespace-only: `{}`) into `T`, naming the field on failure.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ConfigError> {
    let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(text).map_err(|err| refusal(text, &err))
}

fn refusal(text: &[u8], err: &serde_json::Error) -> ConfigError {
    let full = err.to_string();
    let message = match full.rfind(" at line ") {
        Some(at) => full[..at].to_owned(),
        None => full,
    };
    let offset = offset_of(text, err.line(), err.column());
    let mut path = open_path(text, offset);
    if message.starts_with("unknown variant") && path.last_was_key {
        // `{"variant": ...}`: the field is the enum's value, not the variant's name.
        path.segments.pop();
    }
    let field = render(&path.segments);
    let field = if field.is_empty() {
        "config".to_owned()
    } else {
        field
    };
    let kind = if err.is_syntax() || err.is_eof() {
        ConfigErrorKind::Syntax(message)
    } else {
        ConfigErrorKind::Schema(message)
    };
    ConfigError::new(field, kind)
}

/// The byte offset of serde_json's 1-based line and 0-based column (bytes into the line).
fn offset_of(text: &[u8], line: usize, column: usize) -> usize {
    let mut start = 0;
    let mut current = 1;
    for (i, b) in text.iter().enumerate() {
        if current >= line {
            break;
        }
        if *b == b'\n' {
            current += 1;
            start = i + 1;
        }
    }
    start.saturating_add(column).min(text.len())
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// One open container while scanning.
enum Frame {
    /// An object and the key whose value comes or came last (`None`: a key is expected).
    Object(Option<String>),
    /// An array, the index of its current element, and whether that element has begun.
    Array(usize, bool),
}

struct OpenPath {
    segments: Vec<Segment>,
    /// The last token read was an object key.
    last_was_key: bool,
}

/// The keys and indexes open at `offset` in `text` (JSON, possibly broken after `offset`).
fn open_path(text: &[u8], offset: usize) -> OpenPath {
    let text = text.get(..offset).unwrap_or(text);
    let mut frames: Vec<Frame> = Vec::new();
    let mut last_was_key = false;
    let mut i = 0;
    // A value begins: the current array element has begun.
    fn begin_value(frames: &mut [Frame]) {
        if let Some(Frame::Array(_, begun)) = frames.last_mut() {
            *begun = true;
        }
    }
    while let Some(&b) = text.get(i) {
        match b {
            b'{' => {
                begin_value(&mut frames);
                frames.push(Frame::Object(None));
                last_was_key = false;
            }
            b'[' => {
                begin_value(&mut frames);
                frames.push(Frame::Array(0, false));
                last_was_key = false;
            }
            b'}' | b']' => {
                frames.pop();
                last_was_key = false;
            }
            b',' => {
                match frames.last_mut() {
                    Some(Frame::Object(key)) => *key = None,
                    Some(Frame::Array(index, begun)) => {
                        *index += 1;
                        *begun = false;
                    }
                    None => {}
                }
                last_was_key = false;
            }
            b'"' => {
                let (string, end) = read_string(text, i + 1);
                i = end;
                match frames.last_mut() {
                    Some(Frame::Object(key @ None)) => {
                        *key = Some(string);
                        last_was_key = true;
                    }
                    _ => {
                        begin_value(&mut frames);
                        last_was_key = false;
                    }
                }
                continue;
            }
            b':' => {}
            b if b.is_ascii_whitespace() => {}
            _ => {
                begin_value(&mut frames);
                last_was_key = false;
            }
        }
        i += 1;
    }
    let segments = frames
        .iter()
        .filter_map(|f| match f {
            Frame::Object(Some(key)) => Some(Segment::Key(key.clone())),
            Frame::Array(index, true) => Some(Segment::Index(*index)),
            _ => None,
        })
        .collect();
    OpenPath {
        segments,
        last_was_key,
    }
}

/// Reads a string body starting after its opening quote: the text (simple escapes kept as
/// written, enough for field names) and the index after the closing quote.
fn read_string(text: &[u8], start: usize) -> (String, usize) {
    let mut i = start;
    while let Some(&b) = text.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => {
                let body = text.get(start..i).unwrap_or_default();
                return (String::from_utf8_lossy(body).into_owned(), i + 1);
            }
            _ => i += 1,
        }
    }
    let body = text.get(start..).unwrap_or_default();
    (String::from_utf8_lossy(body).into_owned(), text.len())
}

fn render(segments: &[Segment]) -> String {
    let mut out = String::new();
    for s in segments {
        match s {
            Segment::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Segment::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Root {
        #[serde(default)]
        rules: Vec<Rule>,
        #[serde(default)]
        mode: Option<Mode>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Rule {
        name: String,
        #[serde(default)]
        check: Option<Check>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "snake_case")]
    #[allow(dead_code)]
    enum Mode {
        Fast,
        Slow,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "snake_case")]
    #[allow(dead_code)]
    enum Check {
        AnyOf(Vec<String>),
    }

    fn field(text: &str) -> String {
        parse::<Root>(text.as_bytes()).unwrap_err().field
    }

    #[test]
    fn names_the_same_fields_as_path_tracking() {
        assert_eq!(
            field(r#"{"rules": [{"name": "a"}, {"name": "b", "nmae": 1}]}"#),
            "rules[1].nmae"
        );
        assert_eq!(field(r#"{"rulez": []}"#), "rulez");
        assert_eq!(field(r#"{"rules": [{}]}"#), "rules[0]");
        assert_eq!(field(r#"{"rules": [{"name": 3}]}"#), "rules[0].name");
        assert_eq!(field(r#"{"mode": "medium"}"#), "mode");
        assert_eq!(
            field(r#"{"rules": [{"name": "a", "check": {"all_of": ["x"]}}]}"#),
            "rules[0].check"
        );
        assert_eq!(
            field("{\n  \"rules\": [\n    {\"name\": \"a\"},\n    {\"name\": [1]}\n  ]\n}"),
            "rules[1].name"
        );
        assert_eq!(field(r#"{"rules": {"name": "a"}}"#), "rules");
        assert_eq!(field(r#"{"a\"b": 1}"#), "a\\\"b");
    }

    #[test]
    fn syntax_errors_and_empty_input() {
        let err = parse::<Root>(b"{").unwrap_err();
        assert!(matches!(err.kind, ConfigErrorKind::Syntax(_)));
        assert_eq!(err.field, "config");
        let err = parse::<Root>(b"{} x").unwrap_err();
        assert!(matches!(err.kind, ConfigErrorKind::Syntax(_)));
        assert!(!err.to_string().contains("line"));
        let err = parse::<Root>(br#"{"rules": [{"name": "a",}]}"#).unwrap_err();
        assert!(matches!(err.kind, ConfigErrorKind::Syntax(_)));
        assert!(parse::<Root>(b"").is_ok());
        assert!(parse::<Root>(b" \n").is_ok());
    }
}

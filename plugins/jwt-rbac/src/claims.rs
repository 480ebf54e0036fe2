//! Verified claims to header values.

use gateway_core::headers::is_valid_value;
use serde_json::Value;

/// A claim as a header value: strings as they are, numbers and booleans as JSON, arrays of
/// those joined with `,`. Objects, `null`, and values with CR, LF or NUL give `None`.
pub fn header_value(value: &Value) -> Option<String> {
    let text = match value {
        Value::Array(items) => {
            let parts: Option<Vec<String>> = items.iter().map(scalar).collect();
            parts?.join(",")
        }
        other => scalar(other)?,
    };
    is_valid_value(text.as_bytes()).then_some(text)
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values() {
        assert_eq!(header_value(&json!("a")).as_deref(), Some("a"));
        assert_eq!(header_value(&json!(3)).as_deref(), Some("3"));
        assert_eq!(
            header_value(&json!(["a", 1, true])).as_deref(),
            Some("a,1,true")
        );
        assert_eq!(header_value(&json!({"a": 1})), None);
        assert_eq!(header_value(&json!(["a", {"b": 1}])), None);
        assert_eq!(header_value(&json!("a\r\nx-user-id: admin")), None);
        assert_eq!(header_value(&Value::Null), None);
    }
}

//! Redaction: header values by name, query parameters by name, and any value shaped like a JWT.

/// What a redacted value becomes.
pub const REDACTED: &str = "[REDACTED]";

/// True if `text` contains a JWT-shaped token: `eyJ` then base64url, two dots, three non-empty
/// base64url segments (compact JWS/JWE headers always start with `eyJ`, i.e. `{"`).
pub fn contains_jwt_like(text: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
        .any(is_jwt_like)
}

fn is_jwt_like(word: &str) -> bool {
    if !word.starts_with("eyJ") {
        return false;
    }
    let parts: Vec<&str> = word.split('.').collect();
    (parts.len() == 3 || parts.len() == 5) && parts.iter().take(2).all(|p| p.len() >= 4)
}

/// The value of header `name` as the record shows it.
pub fn header_value(name: &str, value: &str, redact: &[String], jwt_like: bool) -> String {
    if redact.iter().any(|r| r.eq_ignore_ascii_case(name)) || (jwt_like && contains_jwt_like(value))
    {
        REDACTED.to_owned()
    } else {
        value.to_owned()
    }
}

/// `path` with the values of the named query parameters (and JWT-like values) redacted.
/// Parameter names compare exactly and also after percent-decoding-free lowercasing.
pub fn path(path: &str, params: &[String], jwt_like: bool) -> String {
    let (base, query) = match path.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (path, None),
    };
    // A JWT-shaped path segment (`/sessions/eyJ...`) is a token too.
    let base = if jwt_like && contains_jwt_like(base) {
        base.split('/')
            .map(|segment| {
                if contains_jwt_like(segment) {
                    REDACTED
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    } else {
        base.to_owned()
    };
    let Some(query) = query else {
        return base;
    };
    let parts: Vec<String> = query
        .split('&')
        .map(|pair| {
            let (name, value) = match pair.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (pair, None),
            };
            let by_name = params.iter().any(|p| p.eq_ignore_ascii_case(name));
            match value {
                Some(v) if by_name || (jwt_like && contains_jwt_like(v)) => {
                    format!("{name}={REDACTED}")
                }
                _ if jwt_like && contains_jwt_like(name) => REDACTED.to_owned(),
                _ => pair.to_owned(),
            }
        })
        .collect();
    format!("{base}?{}", parts.join("&"))
}

/// `value` with every object key named in `fields` (case-insensitive) given `[REDACTED]`, at any
/// depth; JWT-like strings redacted too when `jwt_like`.
pub fn json_fields(value: &mut serde_json::Value, fields: &[String], jwt_like: bool) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if fields.iter().any(|f| f.eq_ignore_ascii_case(k)) {
                    *v = Value::String(REDACTED.to_owned());
                } else {
                    json_fields(v, fields, jwt_like);
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| json_fields(v, fields, jwt_like)),
        Value::String(text) if jwt_like && contains_jwt_like(text) => {
            *text = REDACTED.to_owned();
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_fields_at_any_depth() {
        let mut v = serde_json::json!({"user": "a", "Password": "p", "nested": [{"token": 1, "ok": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"}]});
        json_fields(&mut v, &["password".into(), "token".into()], true);
        assert_eq!(
            v,
            serde_json::json!({"user": "a", "Password": REDACTED, "nested": [{"token": REDACTED, "ok": REDACTED}]})
        );
    }

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";

    #[test]
    fn query_params_by_name_and_jwt_shape() {
        let params = vec!["token".to_owned(), "api_key".to_owned()];
        assert_eq!(
            path("/a?x=1&token=s3cret&API_KEY=k&y", &params, true),
            "/a?x=1&token=[REDACTED]&API_KEY=[REDACTED]&y"
        );
        assert_eq!(
            path(&format!("/a?jwt={JWT}&q=eyJ"), &params, true),
            "/a?jwt=[REDACTED]&q=eyJ"
        );
        assert_eq!(
            path(&format!("/a?jwt={JWT}"), &[], false),
            format!("/a?jwt={JWT}")
        );
        assert_eq!(path("/plain", &params, true), "/plain");
        assert_eq!(path(&format!("/a?{JWT}"), &[], true), "/a?[REDACTED]");
    }

    #[test]
    fn a_jwt_shaped_path_segment_is_redacted() {
        let params = vec!["token".to_owned()];
        assert_eq!(
            path(&format!("/sessions/{JWT}/refresh?token=x"), &params, true),
            "/sessions/[REDACTED]/refresh?token=[REDACTED]"
        );
        assert_eq!(
            path(&format!("/sessions/{JWT}"), &params, false),
            format!("/sessions/{JWT}")
        );
        assert_eq!(path("/orders/42", &params, true), "/orders/42");
    }

    #[test]
    fn header_values() {
        let r = vec!["authorization".to_owned()];
        assert_eq!(header_value("Authorization", "Basic x", &r, true), REDACTED);
        assert_eq!(
            header_value("x-other", &format!("Bearer {JWT}"), &r, true),
            REDACTED
        );
        assert_eq!(header_value("x-other", "fine", &r, true), "fine");
    }
}

//! Request matching by path and method, shared by every plugin that scopes rules to routes.
//!
//! Config shape (`match` in plugin configs):
//!
//! ```json
//! {"path": {"prefix": "/api/"}, "methods": ["GET", "POST"]}
//! ```
//!
//! The path is compared without its query string. `exact` and `prefix` compare bytes;
//! `regex` (regex-lite syntax) must match the whole path, as Envoy's `safe_regex` does.
//! Methods compare exactly after the config's methods are uppercased. An empty match matches all.

use crate::error::{join, ConfigError, ConfigErrorKind};
use crate::headers::is_token;
use serde::Deserialize;

/// `match` as written in config.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RequestMatchConfig {
    /// Path condition; absent matches every path.
    #[serde(default)]
    pub path: Option<PathMatchConfig>,
    /// Methods (e.g. `["GET", "HEAD"]`); absent or empty matches every method.
    #[serde(default)]
    pub methods: Vec<String>,
}

/// `match.path` as written in config: exactly one of the three.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PathMatchConfig {
    /// The path equals this.
    #[serde(default)]
    pub exact: Option<String>,
    /// The path starts with this.
    #[serde(default)]
    pub prefix: Option<String>,
    /// The whole path matches this regular expression.
    #[serde(default)]
    pub regex: Option<String>,
}

impl RequestMatchConfig {
    /// Reads `match` from a parsed value by hand ([`crate::json_read`]); `path` is its field.
    /// Accepts and refuses what the derived `Deserialize` does.
    pub fn read(value: &serde_json::Value, path: &str) -> Result<Self, ConfigError> {
        let o = crate::json_read::Object::new(value, path)?;
        o.known(&["path", "methods"])?;
        let path = match o.opt_object("path")? {
            None => None,
            Some(p) => {
                p.known(&["exact", "prefix", "regex"])?;
                Some(PathMatchConfig {
                    exact: p.opt_string("exact")?,
                    prefix: p.opt_string("prefix")?,
                    regex: p.opt_string("regex")?,
                })
            }
        };
        Ok(Self {
            path,
            methods: o.strings("methods")?,
        })
    }
}

/// A compiled path condition.
#[derive(Debug, Clone)]
pub enum PathMatch {
    /// Equal bytes.
    Exact(String),
    /// Starts with.
    Prefix(String),
    /// Anchored regular expression.
    Regex(regex_lite::Regex),
}

impl PathMatch {
    /// Compiles a path condition; `field` is the path of the `path` object.
    pub fn try_new(config: &PathMatchConfig, field: &str) -> Result<Self, ConfigError> {
        let set = [&config.exact, &config.prefix, &config.regex]
            .iter()
            .filter(|v| v.is_some())
            .count();
        if set != 1 {
            return Err(ConfigError::invalid(
                field,
                "exactly one of exact, prefix, regex is required",
            ));
        }
        if let Some(exact) = &config.exact {
            return Ok(Self::Exact(exact.clone()));
        }
        if let Some(prefix) = &config.prefix {
            return Ok(Self::Prefix(prefix.clone()));
        }
        let pattern = config.regex.as_deref().unwrap_or_default();
        regex_lite::Regex::new(&format!("^(?:{pattern})$"))
            .map(Self::Regex)
            .map_err(|err| {
                ConfigError::new(
                    join(field, "regex"),
                    ConfigErrorKind::InvalidRegex(err.to_string().to_ascii_lowercase()),
                )
            })
    }

    /// True if `path` (query string already removed) satisfies the condition.
    pub fn matches(&self, path: &[u8]) -> bool {
        match self {
            Self::Exact(exact) => path == exact.as_bytes(),
            Self::Prefix(prefix) => path.starts_with(prefix.as_bytes()),
            Self::Regex(regex) => std::str::from_utf8(path).is_ok_and(|p| regex.is_match(p)),
        }
    }
}

/// A compiled `match`: path and method conditions, both optional.
#[derive(Debug, Clone, Default)]
pub struct RequestMatch {
    path: Option<PathMatch>,
    methods: Vec<String>,
}

impl RequestMatch {
    /// A match that accepts every request.
    pub fn any() -> Self {
        Self::default()
    }

    /// Compiles `config`; `field` is the path of the `match` object.
    pub fn try_new(config: &RequestMatchConfig, field: &str) -> Result<Self, ConfigError> {
        let path = config
            .path
            .as_ref()
            .map(|p| PathMatch::try_new(p, &join(field, "path")))
            .transpose()?;
        let mut methods = Vec::with_capacity(config.methods.len());
        for (i, method) in config.methods.iter().enumerate() {
            if !is_token(method) {
                return Err(ConfigError::invalid(
                    format!("{}[{i}]", join(field, "methods")),
                    format!("invalid method {method:?}: must be an rfc 9110 token"),
                ));
            }
            methods.push(method.to_ascii_uppercase());
        }
        Ok(Self { path, methods })
    }

    /// True if the request's `:method` and `:path` satisfy both conditions.
    pub fn matches(&self, method: &[u8], path_and_query: &[u8]) -> bool {
        let method_ok =
            self.methods.is_empty() || self.methods.iter().any(|m| m.as_bytes() == method);
        method_ok
            && self
                .path
                .as_ref()
                .is_none_or(|p| p.matches(strip_query(path_and_query)))
    }
}

/// The path without `?query` or `#fragment`.
pub fn strip_query(path: &[u8]) -> &[u8] {
    match path.iter().position(|b| *b == b'?' || *b == b'#') {
        Some(end) => &path[..end],
        None => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(json: &str) -> Result<RequestMatch, ConfigError> {
        let config: RequestMatchConfig = serde_json::from_str(json).unwrap();
        RequestMatch::try_new(&config, "rules[2].match")
    }

    #[test]
    fn empty_matches_everything() {
        let m = compile("{}").unwrap();
        assert!(m.matches(b"DELETE", b"/anything?x"));
    }

    #[test]
    fn exact_prefix_regex_ignore_query() {
        let exact = compile(r#"{"path": {"exact": "/a"}}"#).unwrap();
        assert!(exact.matches(b"GET", b"/a?x=1"));
        assert!(!exact.matches(b"GET", b"/a/b"));
        let prefix = compile(r#"{"path": {"prefix": "/api/"}}"#).unwrap();
        assert!(prefix.matches(b"GET", b"/api/orders"));
        assert!(!prefix.matches(b"GET", b"/apix"));
        let regex = compile(r#"{"path": {"regex": "/orders/[0-9]+"}}"#).unwrap();
        assert!(regex.matches(b"GET", b"/orders/42?q"));
        assert!(!regex.matches(b"GET", b"/orders/42/x"), "regex is anchored");
        assert!(!regex.matches(b"GET", b"/v1/orders/42"));
        assert!(!regex.matches(b"GET", b"/orders/\xff"));
    }

    #[test]
    fn methods_are_uppercased_and_exact() {
        let m = compile(r#"{"methods": ["get", "POST"]}"#).unwrap();
        assert!(m.matches(b"GET", b"/"));
        assert!(m.matches(b"POST", b"/"));
        assert!(!m.matches(b"PUT", b"/"));
        assert!(!m.matches(b"get", b"/"));
    }

    #[test]
    fn bad_regex_names_the_field() {
        let err = compile(r#"{"path": {"regex": "(unclosed"}}"#).unwrap_err();
        assert_eq!(err.field, "rules[2].match.path.regex");
        assert!(err
            .to_string()
            .starts_with("rules[2].match.path.regex: invalid regex: "));
    }

    #[test]
    fn exactly_one_path_kind() {
        let err = compile(r#"{"path": {"exact": "/a", "prefix": "/"}}"#).unwrap_err();
        assert_eq!(err.field, "rules[2].match.path");
        assert!(compile(r#"{"path": {}}"#).is_err());
    }

    #[test]
    fn bad_method_names_the_index() {
        let err = compile(r#"{"methods": ["GET", "BAD METHOD"]}"#).unwrap_err();
        assert_eq!(err.field, "rules[2].match.methods[1]");
    }
}

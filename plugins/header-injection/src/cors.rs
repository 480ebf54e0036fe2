//! CORS: origin checks, preflight answers, and response headers for actual requests.
//!
//! - A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) never reaches the
//!   upstream: an allowed origin gets `204` with the CORS headers, any other origin gets `403`
//!   with no CORS headers.
//! - An actual request from an allowed origin gets `Access-Control-Allow-Origin` (and the other
//!   configured headers) on its response; from any other origin, no CORS headers are added.
//! - Every response gets `Vary: Origin` (unless it already varies on `Origin` or `*`), since
//!   the answer depends on the origin. An upstream `Vary` is kept: `Vary: Accept-Encoding`
//!   becomes one line `Vary: Accept-Encoding, Origin`.

use gateway_core::error::{join, ConfigError};
use gateway_core::headers::{header_name, is_token, list_contains, HeaderEdits};
use serde::Deserialize;

/// `cors` as written in config.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CorsConfig {
    /// Origins allowed: exact (`https://app.example.com`), a subdomain pattern
    /// (`https://*.example.com`, or `*.example.com` for any scheme), or `*`. Required.
    pub allowed_origins: Vec<String>,
    /// Methods allowed in preflights. Default `GET, HEAD, POST, PUT, PATCH, DELETE`.
    #[serde(default = "default_methods")]
    pub allowed_methods: Vec<String>,
    /// Request headers allowed in preflights. Default none.
    #[serde(default)]
    pub allowed_headers: Vec<String>,
    /// Response headers exposed to scripts. Default none.
    #[serde(default)]
    pub exposed_headers: Vec<String>,
    /// Allow credentials (cookies, authorization). Refused together with origin `*`.
    /// Default `false`.
    #[serde(default)]
    pub allow_credentials: bool,
    /// Seconds a browser may cache a preflight answer. Default: header not sent.
    #[serde(default)]
    pub max_age: Option<u32>,
}

fn default_methods() -> Vec<String> {
    ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
        .iter()
        .map(|m| (*m).to_owned())
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum OriginPattern {
    Any,
    Exact(String),
    /// `scheme` (if given) must match; host must end with `suffix` (`.example.com[:port]`)
    /// preceded by at least one label.
    Subdomain {
        scheme: Option<String>,
        suffix: String,
    },
}

/// A local answer to a preflight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreflightReply {
    /// `204` (allowed) or `403` (origin not allowed).
    pub status: u32,
    /// Response headers.
    pub headers: Vec<(String, String)>,
}

/// The compiled CORS policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsPolicy {
    origins: Vec<OriginPattern>,
    allow_methods: String,
    allow_headers: String,
    expose_headers: String,
    allow_credentials: bool,
    max_age: Option<String>,
}

impl CorsPolicy {
    /// Compiles the config; `field` is `cors`.
    pub fn try_new(config: &CorsConfig, field: &str) -> Result<Self, ConfigError> {
        let origins_field = join(field, "allowed_origins");
        if config.allowed_origins.is_empty() {
            return Err(ConfigError::invalid(
                origins_field,
                "at least one origin is required",
            ));
        }
        let mut origins = Vec::new();
        for (i, origin) in config.allowed_origins.iter().enumerate() {
            let at = format!("{origins_field}[{i}]");
            let pattern = parse_origin(origin, &at)?;
            if pattern == OriginPattern::Any && config.allow_credentials {
                return Err(ConfigError::invalid(
                    at,
                    "origin \"*\" cannot be combined with allow_credentials: list the origins",
                ));
            }
            origins.push(pattern);
        }
        let mut methods = Vec::new();
        for (i, method) in config.allowed_methods.iter().enumerate() {
            if !is_token(method) {
                return Err(ConfigError::invalid(
                    format!("{}[{i}]", join(field, "allowed_methods")),
                    format!("invalid method {method:?}: must be an rfc 9110 token"),
                ));
            }
            methods.push(method.to_ascii_uppercase());
        }
        let allow_headers = names(&config.allowed_headers, &join(field, "allowed_headers"))?;
        let expose_headers = names(&config.exposed_headers, &join(field, "exposed_headers"))?;
        Ok(Self {
            origins,
            allow_methods: methods.join(", "),
            allow_headers,
            expose_headers,
            allow_credentials: config.allow_credentials,
            max_age: config.max_age.map(|s| s.to_string()),
        })
    }

    /// True for `OPTIONS` carrying both `Origin` and `Access-Control-Request-Method`.
    pub fn is_preflight(request: &HeaderEdits) -> bool {
        request.first(":method") == Some(b"OPTIONS")
            && request.contains("origin")
            && request.contains("access-control-request-method")
    }

    /// The `Access-Control-Allow-Origin` value for `origin`, or `None` if not allowed.
    pub fn allow_origin(&self, origin: &[u8]) -> Option<String> {
        let origin = std::str::from_utf8(origin).ok()?;
        if origin.is_empty() || !origin.bytes().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        let lower = origin.to_ascii_lowercase();
        let mut any = false;
        for pattern in &self.origins {
            match pattern {
                OriginPattern::Any => any = true,
                OriginPattern::Exact(exact) if *exact == lower => return Some(origin.to_owned()),
                OriginPattern::Subdomain { scheme, suffix }
                    if subdomain_matches(&lower, scheme.as_deref(), suffix) =>
                {
                    return Some(origin.to_owned())
                }
                _ => {}
            }
        }
        any.then(|| "*".to_owned())
    }

    /// The local answer to a preflight from `origin`.
    pub fn preflight(&self, origin: &[u8]) -> PreflightReply {
        let mut headers = Vec::new();
        let Some(allow_origin) = self.allow_origin(origin) else {
            headers.push(("vary".to_owned(), "Origin".to_owned()));
            return PreflightReply {
                status: 403,
                headers,
            };
        };
        headers.push(("access-control-allow-origin".to_owned(), allow_origin));
        headers.push((
            "access-control-allow-methods".to_owned(),
            self.allow_methods.clone(),
        ));
        if !self.allow_headers.is_empty() {
            headers.push((
                "access-control-allow-headers".to_owned(),
                self.allow_headers.clone(),
            ));
        }
        if self.allow_credentials {
            headers.push((
                "access-control-allow-credentials".to_owned(),
                "true".to_owned(),
            ));
        }
        if let Some(max_age) = &self.max_age {
            headers.push(("access-control-max-age".to_owned(), max_age.clone()));
        }
        headers.push(("vary".to_owned(), "Origin".to_owned()));
        PreflightReply {
            status: 204,
            headers,
        }
    }

    /// Adds CORS headers to the response of an actual request; returns true if the origin
    /// was allowed.
    pub fn apply_response(&self, origin: Option<&[u8]>, response: &mut HeaderEdits) -> bool {
        let vary = response.all("vary");
        let vary_done = vary
            .iter()
            .any(|v| list_contains(v, "origin") || list_contains(v, "*"));
        if !vary_done {
            // One combined line: hosts disagree on appending (Envoy folds `vary` into one
            // comma-joined line, others add a second line), a set reads the same everywhere.
            let mut value = vary.join(&b", "[..]);
            if !value.is_empty() {
                value.extend_from_slice(b", ");
            }
            value.extend_from_slice(b"Origin");
            response.set("vary", value);
        }
        let Some(allow_origin) = origin.and_then(|o| self.allow_origin(o)) else {
            return false;
        };
        response.set("access-control-allow-origin", allow_origin.into_bytes());
        if self.allow_credentials {
            response.set("access-control-allow-credentials", b"true".to_vec());
        }
        if !self.expose_headers.is_empty() {
            response.set(
                "access-control-expose-headers",
                self.expose_headers.as_bytes().to_vec(),
            );
        }
        true
    }
}

fn names(list: &[String], field: &str) -> Result<String, ConfigError> {
    let mut out = Vec::with_capacity(list.len());
    for (i, name) in list.iter().enumerate() {
        if name == "*" {
            out.push("*".to_owned());
        } else {
            out.push(header_name(name, &format!("{field}[{i}]"))?);
        }
    }
    Ok(out.join(", "))
}

fn parse_origin(origin: &str, field: &str) -> Result<OriginPattern, ConfigError> {
    if origin == "*" {
        return Ok(OriginPattern::Any);
    }
    let bad = |why: &str| ConfigError::invalid(field, format!("invalid origin {origin:?}: {why}"));
    let lower = origin.to_ascii_lowercase();
    if lower.is_empty() || !lower.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("must be visible ascii without spaces"));
    }
    let (scheme, host) = match lower.split_once("://") {
        Some((scheme, host)) => {
            if scheme.is_empty()
                || !scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
            {
                return Err(bad("invalid scheme"));
            }
            (Some(scheme.to_owned()), host)
        }
        None => (None, lower.as_str()),
    };
    if host.is_empty() || host.contains('/') {
        return Err(bad("expected scheme://host[:port] without a path"));
    }
    if let Some(rest) = host.strip_prefix("*.") {
        if rest.is_empty() || rest.contains('*') {
            return Err(bad("a pattern is \"*.\" followed by a domain"));
        }
        return Ok(OriginPattern::Subdomain {
            scheme,
            suffix: format!(".{rest}"),
        });
    }
    if host.contains('*') {
        return Err(bad(
            "\"*\" is only allowed as the first label (\"*.example.com\")",
        ));
    }
    if scheme.is_none() {
        return Err(bad("an exact origin needs a scheme (\"https://host\")"));
    }
    Ok(OriginPattern::Exact(lower))
}

fn subdomain_matches(origin: &str, scheme: Option<&str>, suffix: &str) -> bool {
    let Some((origin_scheme, host)) = origin.split_once("://") else {
        return false;
    };
    if scheme.is_some_and(|s| s != origin_scheme) {
        return false;
    }
    let Some(label) = host.strip_suffix(suffix) else {
        return false;
    };
    !label.is_empty()
        && !label.starts_with('.')
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: &str) -> Result<CorsPolicy, ConfigError> {
        let config: CorsConfig = serde_json::from_str(json).unwrap();
        CorsPolicy::try_new(&config, "cors")
    }

    fn edits(pairs: &[(&str, &str)]) -> HeaderEdits {
        HeaderEdits::new(
            pairs
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
                .collect(),
        )
    }

    #[test]
    fn origin_patterns() {
        let p = policy(
            r#"{"allowed_origins": ["https://app.example.com", "https://*.example.org", "*.example.net"]}"#,
        )
        .unwrap();
        let ok = |o: &str| p.allow_origin(o.as_bytes());
        assert_eq!(
            ok("https://app.example.com").as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(
            ok("HTTPS://APP.EXAMPLE.COM").as_deref(),
            Some("HTTPS://APP.EXAMPLE.COM")
        );
        assert_eq!(ok("http://app.example.com"), None);
        assert_eq!(ok("https://app.example.com.evil.com"), None);
        assert!(ok("https://a.example.org").is_some());
        assert!(ok("https://a.b.example.org").is_some());
        assert_eq!(ok("https://example.org"), None);
        assert_eq!(ok("http://a.example.org"), None);
        assert_eq!(ok("https://evilexample.org"), None);
        assert!(ok("http://a.example.net").is_some());
        assert!(ok("https://a.example.net").is_some());
        assert_eq!(ok("https://a.example.net:8443"), None);
        assert_eq!(p.allow_origin(b"https://\xff.example.org"), None);
        assert_eq!(ok("null"), None);
    }

    #[test]
    fn star_only_without_credentials() {
        let p = policy(r#"{"allowed_origins": ["*"]}"#).unwrap();
        assert_eq!(p.allow_origin(b"https://any.where").as_deref(), Some("*"));
        let err =
            policy(r#"{"allowed_origins": ["https://a.com", "*"], "allow_credentials": true}"#)
                .unwrap_err();
        assert_eq!(err.field, "cors.allowed_origins[1]");
    }

    #[test]
    fn invalid_config() {
        assert_eq!(
            policy(r#"{"allowed_origins": []}"#).unwrap_err().field,
            "cors.allowed_origins"
        );
        for bad in [
            "app.example.com",
            "https://a.com/path",
            "https://a.*.com",
            "https://*.",
            "ht tp://a",
        ] {
            let err = policy(&format!(r#"{{"allowed_origins": ["{bad}"]}}"#)).unwrap_err();
            assert_eq!(err.field, "cors.allowed_origins[0]", "{bad}");
        }
        assert_eq!(
            policy(r#"{"allowed_origins": ["*"], "allowed_headers": ["ok", "no way"]}"#)
                .unwrap_err()
                .field,
            "cors.allowed_headers[1]"
        );
        assert_eq!(
            policy(r#"{"allowed_origins": ["*"], "allowed_methods": ["GE T"]}"#)
                .unwrap_err()
                .field,
            "cors.allowed_methods[0]"
        );
    }

    #[test]
    fn preflight_answers() {
        let p = policy(
            r#"{"allowed_origins": ["https://app.example.com"], "allowed_methods": ["get", "POST"],
                "allowed_headers": ["Content-Type", "authorization"], "allow_credentials": true, "max_age": 600}"#,
        )
        .unwrap();
        let reply = p.preflight(b"https://app.example.com");
        assert_eq!(reply.status, 204);
        let h = |n: &str| {
            reply
                .headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            h("access-control-allow-origin"),
            Some("https://app.example.com")
        );
        assert_eq!(h("access-control-allow-methods"), Some("GET, POST"));
        assert_eq!(
            h("access-control-allow-headers"),
            Some("content-type, authorization")
        );
        assert_eq!(h("access-control-allow-credentials"), Some("true"));
        assert_eq!(h("access-control-max-age"), Some("600"));
        assert_eq!(h("vary"), Some("Origin"));
        let reply = p.preflight(b"https://evil.com");
        assert_eq!(reply.status, 403);
        assert!(reply
            .headers
            .iter()
            .all(|(k, _)| !k.starts_with("access-control-")));
    }

    #[test]
    fn detects_preflight() {
        assert!(CorsPolicy::is_preflight(&edits(&[
            (":method", "OPTIONS"),
            ("origin", "https://a"),
            ("access-control-request-method", "POST")
        ])));
        assert!(!CorsPolicy::is_preflight(&edits(&[
            (":method", "OPTIONS"),
            ("origin", "https://a")
        ])));
        assert!(!CorsPolicy::is_preflight(&edits(&[
            (":method", "GET"),
            ("origin", "https://a"),
            ("access-control-request-method", "POST")
        ])));
    }

    #[test]
    fn actual_response_headers_and_vary() {
        let p = policy(r#"{"allowed_origins": ["https://app.example.com"], "exposed_headers": ["x-correlation-id"]}"#)
            .unwrap();
        let mut response = edits(&[("vary", "Accept-Encoding")]);
        assert!(p.apply_response(Some(b"https://app.example.com"), &mut response));
        assert_eq!(
            response.first("access-control-allow-origin"),
            Some(&b"https://app.example.com"[..])
        );
        assert_eq!(
            response.first("access-control-expose-headers"),
            Some(&b"x-correlation-id"[..])
        );
        assert!(!response.contains("access-control-allow-credentials"));
        assert_eq!(
            response.all("vary"),
            vec![b"Accept-Encoding, Origin".to_vec()]
        );

        let mut response = edits(&[("vary", "accept, Origin")]);
        assert!(!p.apply_response(Some(b"https://evil.com"), &mut response));
        assert!(!response.contains("access-control-allow-origin"));
        assert_eq!(
            response.all("vary").len(),
            1,
            "no second vary when origin is listed"
        );

        let mut response = edits(&[]);
        assert!(!p.apply_response(None, &mut response));
        assert_eq!(response.all("vary"), vec![b"Origin".to_vec()]);
    }
}

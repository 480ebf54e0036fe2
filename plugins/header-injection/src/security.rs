//! Security response headers with defaults a careful operator accepts on first use.
//!
//! On by default: `x-content-type-options: nosniff`, `x-frame-options: SAMEORIGIN` and
//! `referrer-policy: strict-origin-when-cross-origin`, which last only as long as the response
//! they come with. Policies a browser keeps or that can break a site are added only when asked:
//! `strict-transport-security` (browsers keep it for max-age, for every subdomain with
//! includeSubDomains, and preload lists are hard to leave) and `content-security-policy` (a
//! strict one blocks any HTML app behind the gateway). A string sets a header, `null` turns
//! a default one off. A header the upstream already set is left alone unless
//! `override_upstream` is true.

use gateway_core::error::{join, ConfigError};
use gateway_core::headers::{header_name, header_value, HeaderEdits};
use serde::{Deserialize, Deserializer};

/// A `strict-transport-security` value for APIs served only over HTTPS (not added by default:
/// browsers remember it for a year).
pub const RECOMMENDED_HSTS: &str = "max-age=31536000";
/// Default `x-content-type-options`.
pub const DEFAULT_CONTENT_TYPE_OPTIONS: &str = "nosniff";
/// Default `x-frame-options`: the site's own pages may frame it, others may not.
pub const DEFAULT_FRAME_OPTIONS: &str = "SAMEORIGIN";
/// Default `referrer-policy`.
pub const DEFAULT_REFERRER_POLICY: &str = "strict-origin-when-cross-origin";
/// A `content-security-policy` for a JSON API: nothing may load, nothing may frame (not added
/// by default: it blocks any HTML app).
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// `security_headers` as written in config. For each header: absent = its default (added or
/// not, as each field says), a string = that value, `null` = do not add it.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct SecurityHeadersConfig {
    /// Add security headers at all. Default `true`.
    pub enabled: bool,
    /// Replace a value the upstream already set. Default `false`.
    pub override_upstream: bool,
    /// `strict-transport-security`. Default: not added (browsers keep it for `max-age`); for
    /// an API served only over HTTPS, `max-age=31536000`. Must hold `max-age=`.
    #[serde(deserialize_with = "nullable")]
    pub strict_transport_security: Option<Option<String>>,
    /// `x-content-type-options`. Default `nosniff`.
    #[serde(deserialize_with = "nullable")]
    #[cfg_attr(feature = "schema", schemars(extend("default" = DEFAULT_CONTENT_TYPE_OPTIONS)))]
    pub x_content_type_options: Option<Option<String>>,
    /// `x-frame-options`. Default `SAMEORIGIN`.
    #[serde(deserialize_with = "nullable")]
    #[cfg_attr(feature = "schema", schemars(extend("default" = DEFAULT_FRAME_OPTIONS)))]
    pub x_frame_options: Option<Option<String>>,
    /// `referrer-policy`. Default `strict-origin-when-cross-origin`.
    #[serde(deserialize_with = "nullable")]
    #[cfg_attr(feature = "schema", schemars(extend("default" = DEFAULT_REFERRER_POLICY)))]
    pub referrer_policy: Option<Option<String>>,
    /// `content-security-policy`. Default: not added (a strict policy blocks any HTML app);
    /// for a JSON API, `default-src 'none'; frame-ancestors 'none'`.
    #[serde(deserialize_with = "nullable")]
    pub content_security_policy: Option<Option<String>>,
    /// More headers to add, by name. Default none.
    pub extra: std::collections::BTreeMap<String, String>,
}

impl Default for SecurityHeadersConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            override_upstream: false,
            strict_transport_security: None,
            x_content_type_options: None,
            x_frame_options: None,
            referrer_policy: None,
            content_security_policy: None,
            extra: std::collections::BTreeMap::new(),
        }
    }
}

/// Present-but-null becomes `Some(None)`; absent stays `None` through `default`.
fn nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// The compiled list of headers to add.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityHeaders {
    headers: Vec<(String, String)>,
    override_upstream: bool,
}

impl SecurityHeaders {
    /// Compiles the config; empty when disabled.
    pub fn try_new(config: &SecurityHeadersConfig, field: &str) -> Result<Self, ConfigError> {
        if !config.enabled {
            return Ok(Self::default());
        }
        let standard = [
            (
                "strict-transport-security",
                "strict_transport_security",
                &config.strict_transport_security,
                None,
            ),
            (
                "x-content-type-options",
                "x_content_type_options",
                &config.x_content_type_options,
                Some(DEFAULT_CONTENT_TYPE_OPTIONS),
            ),
            (
                "x-frame-options",
                "x_frame_options",
                &config.x_frame_options,
                Some(DEFAULT_FRAME_OPTIONS),
            ),
            (
                "referrer-policy",
                "referrer_policy",
                &config.referrer_policy,
                Some(DEFAULT_REFERRER_POLICY),
            ),
            (
                "content-security-policy",
                "content_security_policy",
                &config.content_security_policy,
                None,
            ),
        ];
        let mut headers = Vec::new();
        for (name, key, setting, default) in standard {
            let value = match setting {
                None => default.map(str::to_owned),
                Some(None) => None,
                Some(Some(value)) => Some(header_value(value, &join(field, key))?),
            };
            if name == "strict-transport-security"
                && value.as_deref().is_some_and(|v| {
                    !v.as_bytes()
                        .windows(8)
                        .any(|w| w.eq_ignore_ascii_case(b"max-age="))
                })
            {
                return Err(ConfigError::invalid(
                    join(field, key),
                    "must hold max-age=<seconds> (rfc 6797), e.g. \"max-age=31536000\"",
                ));
            }
            if let Some(value) = value {
                headers.push((name.to_owned(), value));
            }
        }
        for (name, value) in &config.extra {
            let at = join(&join(field, "extra"), name);
            let name = header_name(name, &at)?;
            let value = header_value(value, &at)?;
            headers.retain(|(n, _)| *n != name);
            headers.push((name, value));
        }
        Ok(Self {
            headers,
            override_upstream: config.override_upstream,
        })
    }

    /// True if nothing will be added.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }

    /// Adds the headers to a response; returns how many were set.
    pub fn apply(&self, response: &mut HeaderEdits) -> usize {
        let mut set = 0;
        for (name, value) in &self.headers {
            if self.override_upstream || !response.contains(name) {
                response.set(name, value.as_bytes().to_vec());
                set += 1;
            }
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(json: &str) -> Result<SecurityHeaders, ConfigError> {
        let config: SecurityHeadersConfig = serde_json::from_str(json).unwrap();
        SecurityHeaders::try_new(&config, "security_headers")
    }

    fn applied(security: &SecurityHeaders, upstream: &[(&str, &str)]) -> HeaderEdits {
        let mut edits = HeaderEdits::new(
            upstream
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
                .collect(),
        );
        security.apply(&mut edits);
        edits
    }

    #[test]
    fn defaults_add_nothing_a_browser_keeps() {
        let edits = applied(&compile("{}").unwrap(), &[]);
        assert!(!edits.contains("strict-transport-security"));
        assert!(!edits.contains("content-security-policy"));
        assert_eq!(edits.first("x-content-type-options"), Some(&b"nosniff"[..]));
        assert_eq!(edits.first("x-frame-options"), Some(&b"SAMEORIGIN"[..]));
        assert_eq!(
            edits.first("referrer-policy"),
            Some(DEFAULT_REFERRER_POLICY.as_bytes())
        );
    }

    #[test]
    fn lasting_policies_only_when_asked() {
        let security = compile(&format!(
            r#"{{"strict_transport_security": "{RECOMMENDED_HSTS}",
                "content_security_policy": "{API_CSP}"}}"#
        ))
        .unwrap();
        let edits = applied(&security, &[]);
        assert_eq!(
            edits.first("strict-transport-security"),
            Some(RECOMMENDED_HSTS.as_bytes())
        );
        assert_eq!(
            edits.first("content-security-policy"),
            Some(API_CSP.as_bytes())
        );
        assert_eq!(
            compile(r#"{"strict_transport_security": "includeSubDomains"}"#)
                .unwrap_err()
                .field,
            "security_headers.strict_transport_security"
        );
    }

    #[test]
    fn upstream_value_is_kept_unless_override() {
        let security = compile("{}").unwrap();
        let edits = applied(&security, &[("x-frame-options", "SAMEORIGIN")]);
        assert_eq!(edits.all("x-frame-options"), vec![b"SAMEORIGIN".to_vec()]);
        let security =
            compile(r#"{"override_upstream": true, "x_frame_options": "DENY"}"#).unwrap();
        let edits = applied(&security, &[("x-frame-options", "SAMEORIGIN")]);
        assert_eq!(edits.all("x-frame-options"), vec![b"DENY".to_vec()]);
    }

    #[test]
    fn override_remove_extra_disable() {
        let security = compile(
            r#"{"x_frame_options": "DENY", "content_security_policy": null,
                "extra": {"Permissions-Policy": "geolocation=()"}}"#,
        )
        .unwrap();
        let edits = applied(&security, &[]);
        assert_eq!(edits.first("x-frame-options"), Some(&b"DENY"[..]));
        assert!(!edits.contains("content-security-policy"));
        assert_eq!(
            edits.first("permissions-policy"),
            Some(&b"geolocation=()"[..])
        );
        assert!(compile(r#"{"enabled": false}"#).unwrap().is_empty());
    }

    #[test]
    fn invalid_values_are_refused() {
        assert_eq!(
            compile(r#"{"referrer_policy": "a\nb"}"#).unwrap_err().field,
            "security_headers.referrer_policy"
        );
        assert_eq!(
            compile(r#"{"extra": {"bad name": "v"}}"#)
                .unwrap_err()
                .field,
            "security_headers.extra.bad name"
        );
    }
}

//! The answer headers and the refusal body.
//!
//! - `RateLimit-Policy: "<rule>";q=<quota>;w=<seconds>` and `RateLimit: "<rule>";r=<remaining>;t=<seconds>`
//!   (IETF draft-ietf-httpapi-ratelimit-headers, structured-field list form).
//! - Optionally `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (seconds).
//! - Optionally Kong's rate-limiting headers: `RateLimit-Limit`, `RateLimit-Remaining`,
//!   `RateLimit-Reset` and, for a window of one of Kong's units, `X-RateLimit-Limit-<Unit>` and
//!   `X-RateLimit-Remaining-<Unit>` (`Minute` for 60 s, ...).
//! - `Retry-After: <seconds>` on a refusal.
//! - Refusal body: `{"error":"rate_limited","message":..,"policy":..,"retry_after":..}`.

use crate::config::HeadersConfig;
use crate::limit::Policy;

/// What the headers describe: the most restrictive rule's quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaView<'a> {
    /// Rule name.
    pub rule: &'a str,
    /// Its policy.
    pub policy: Policy,
    /// Requests left now.
    pub remaining: u64,
    /// Seconds until reset (on a refusal: the retry-after).
    pub reset_secs: u64,
}

/// The rate-limit headers for `view` (without `Retry-After`).
pub fn quota_headers(config: &HeadersConfig, view: &QuotaView<'_>) -> Vec<(&'static str, String)> {
    let mut out = Vec::with_capacity(5);
    if config.ietf {
        out.push((
            "ratelimit-policy",
            format!(
                "\"{}\";q={};w={}",
                view.rule, view.policy.quota, view.policy.window_secs
            ),
        ));
        out.push((
            "ratelimit",
            format!(
                "\"{}\";r={};t={}",
                view.rule, view.remaining, view.reset_secs
            ),
        ));
    }
    if config.x_ratelimit {
        out.push(("x-ratelimit-limit", view.policy.quota.to_string()));
        out.push(("x-ratelimit-remaining", view.remaining.to_string()));
        out.push(("x-ratelimit-reset", view.reset_secs.to_string()));
    }
    if config.kong {
        out.push(("ratelimit-limit", view.policy.quota.to_string()));
        out.push(("ratelimit-remaining", view.remaining.to_string()));
        out.push(("ratelimit-reset", view.reset_secs.to_string()));
        if let Some((limit, remaining)) = kong_unit_headers(view.policy.window_secs) {
            out.push((limit, view.policy.quota.to_string()));
            out.push((remaining, view.remaining.to_string()));
        }
    }
    out
}

/// Kong's per-unit header names for a window of exactly one of its units.
fn kong_unit_headers(window_secs: u64) -> Option<(&'static str, &'static str)> {
    Some(match window_secs {
        1 => ("x-ratelimit-limit-second", "x-ratelimit-remaining-second"),
        60 => ("x-ratelimit-limit-minute", "x-ratelimit-remaining-minute"),
        3_600 => ("x-ratelimit-limit-hour", "x-ratelimit-remaining-hour"),
        86_400 => ("x-ratelimit-limit-day", "x-ratelimit-remaining-day"),
        2_592_000 => ("x-ratelimit-limit-month", "x-ratelimit-remaining-month"),
        31_536_000 => ("x-ratelimit-limit-year", "x-ratelimit-remaining-year"),
        _ => return None,
    })
}

/// The JSON body of a refusal.
pub fn deny_body(message: &str, rule: &str, retry_after_secs: u64) -> String {
    serde_json::json!({
        "error": "rate_limited",
        "message": message,
        "policy": rule,
        "retry_after": retry_after_secs,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> QuotaView<'static> {
        QuotaView {
            rule: "per-ip",
            policy: Policy {
                quota: 100,
                window_secs: 60,
            },
            remaining: 42,
            reset_secs: 17,
        }
    }

    #[test]
    fn ietf_by_default_legacy_on_request_hidden_when_off() {
        let h = quota_headers(&HeadersConfig::default(), &view());
        assert_eq!(
            h,
            vec![
                ("ratelimit-policy", "\"per-ip\";q=100;w=60".to_owned()),
                ("ratelimit", "\"per-ip\";r=42;t=17".to_owned()),
            ]
        );
        let both = HeadersConfig {
            x_ratelimit: true,
            ..HeadersConfig::default()
        };
        let h = quota_headers(&both, &view());
        assert_eq!(h.len(), 5);
        assert!(h.contains(&("x-ratelimit-remaining", "42".to_owned())));
        let none = HeadersConfig {
            ietf: false,
            ..HeadersConfig::default()
        };
        assert!(quota_headers(&none, &view()).is_empty());
    }

    #[test]
    fn kong_style_headers_by_unit() {
        let kong = HeadersConfig {
            ietf: false,
            kong: true,
            ..HeadersConfig::default()
        };
        assert_eq!(
            quota_headers(&kong, &view()),
            vec![
                ("ratelimit-limit", "100".to_owned()),
                ("ratelimit-remaining", "42".to_owned()),
                ("ratelimit-reset", "17".to_owned()),
                ("x-ratelimit-limit-minute", "100".to_owned()),
                ("x-ratelimit-remaining-minute", "42".to_owned()),
            ]
        );
        let mut odd = view();
        odd.policy.window_secs = 90;
        assert_eq!(quota_headers(&kong, &odd).len(), 3, "no Kong unit for 90 s");
    }

    #[test]
    fn body_is_json() {
        let body: serde_json::Value =
            serde_json::from_str(&deny_body("slow \"down\"", "r", 3)).unwrap();
        assert_eq!(body["error"], "rate_limited");
        assert_eq!(body["message"], "slow \"down\"");
        assert_eq!(body["retry_after"], 3);
    }
}

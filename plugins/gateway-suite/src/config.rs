//! The suite's configuration: one object with a section per plugin, each section exactly that
//! plugin's own configuration, and an optional `order`.
//!
//! ```json
//! {
//!   "order": ["header_injection", "jwt_rbac", "audit_log", "ratelimit_shared_data", "circuit_breaker"],
//!   "header_injection": {},
//!   "jwt_rbac": {"providers": {"sso": {"issuer": "https://sso.example.com", "jwks": {"keys": []}}}},
//!   "ratelimit_shared_data": {"rules": []}
//! }
//! ```
//!
//! A plugin whose section is absent does not run. `order` lists the sections present, in the
//! order their request phases run (response phases run in reverse, as Envoy runs a chain); it
//! defaults to the README's chain order.

use gateway_core::json_read::{self, Object};
use gateway_core::{ConfigError, ConfigErrorKind};
use serde_json::Value;

/// The five jobs, in the README's chain order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    HeaderInjection,
    JwtRbac,
    AuditLog,
    RatelimitSharedData,
    CircuitBreaker,
}

impl Job {
    /// Every job, in the default order.
    pub const ALL: [Job; 5] = [
        Job::HeaderInjection,
        Job::JwtRbac,
        Job::AuditLog,
        Job::RatelimitSharedData,
        Job::CircuitBreaker,
    ];

    /// The section name: the plugin's name with `_` (as its Kong filter is named).
    pub fn section(self) -> &'static str {
        match self {
            Job::HeaderInjection => "header_injection",
            Job::JwtRbac => "jwt_rbac",
            Job::AuditLog => "audit_log",
            Job::RatelimitSharedData => "ratelimit_shared_data",
            Job::CircuitBreaker => "circuit_breaker",
        }
    }

    fn sections() -> [&'static str; 5] {
        Job::ALL.map(Job::section)
    }
}

/// The jobs to run, in order, each with the configuration bytes of its section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteConfig {
    pub jobs: Vec<(Job, Vec<u8>)>,
}

impl SuiteConfig {
    /// Reads the suite's configuration; a refusal names its field (`order[1]`, `jwt_rbac`).
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        let value = json_read::parse(bytes)?;
        let root = Object::new(&value, "")?;
        let sections = Job::sections();
        let mut known = vec!["order"];
        known.extend(sections);
        root.known(&known)?;
        let order = match root.optional("order") {
            None => Job::ALL
                .into_iter()
                .filter(|job| root.get(job.section()).is_some())
                .collect(),
            Some(order) => read_order(order, &root)?,
        };
        if order.is_empty() {
            return Err(ConfigError::invalid(
                "config",
                format!(
                    "no plugin to run: give the section of at least one of {}",
                    sections.join(", ")
                ),
            ));
        }
        let mut jobs = Vec::with_capacity(order.len());
        for job in order {
            let section = root.get(job.section()).unwrap_or(&Value::Null);
            jobs.push((job, section_bytes(section, job.section())?));
        }
        Ok(Self { jobs })
    }
}

fn read_order(order: &Value, root: &Object<'_>) -> Result<Vec<Job>, ConfigError> {
    let items = json_read::as_array(order, "order")?;
    let sections = Job::sections();
    let mut jobs: Vec<Job> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = json_read::index("order", i);
        let job = Job::ALL[json_read::as_name(item, &path, &sections)?];
        if jobs.contains(&job) {
            return Err(ConfigError::invalid(
                path,
                format!("{} is listed twice", job.section()),
            ));
        }
        if root.get(job.section()).is_none() {
            return Err(ConfigError::invalid(
                path,
                format!(
                    "{} has no section: add \"{}\": {{...}} or leave it out of order",
                    job.section(),
                    job.section()
                ),
            ));
        }
        jobs.push(job);
    }
    if let Some(missing) = Job::ALL
        .into_iter()
        .find(|job| root.get(job.section()).is_some() && !jobs.contains(job))
    {
        return Err(ConfigError::invalid(
            "order",
            format!(
                "{} has a section but is not in order: list every plugin that runs",
                missing.section()
            ),
        ));
    }
    Ok(jobs)
}

/// A section as the plugin reads it: an object (or `{}` for `null`), or a string holding the
/// plugin's JSON text.
fn section_bytes(section: &Value, path: &str) -> Result<Vec<u8>, ConfigError> {
    match section {
        Value::Null => Ok(b"{}".to_vec()),
        Value::String(text) => Ok(text.as_bytes().to_vec()),
        Value::Object(_) => serde_json::to_vec(section)
            .map_err(|e| ConfigError::new(path, ConfigErrorKind::Schema(e.to_string()))),
        other => Err(json_read::wrong_type(path, other, "an object")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn order(json: &str) -> Vec<&'static str> {
        SuiteConfig::from_json(json.as_bytes())
            .unwrap()
            .jobs
            .iter()
            .map(|(job, _)| job.section())
            .collect()
    }

    fn refusal(json: &str) -> String {
        SuiteConfig::from_json(json.as_bytes())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn the_sections_present_run_in_the_default_order() {
        assert_eq!(
            order(
                r#"{"circuit_breaker": {}, "header_injection": {}, "jwt_rbac": {"providers": {}}}"#
            ),
            ["header_injection", "jwt_rbac", "circuit_breaker"]
        );
    }

    #[test]
    fn an_order_is_followed_and_each_section_passed_as_is() {
        let config = SuiteConfig::from_json(
            br#"{"order": ["audit_log", "header_injection"], "header_injection": {"a": 1},
                 "audit_log": null}"#,
        )
        .unwrap();
        assert_eq!(
            config.jobs,
            vec![
                (Job::AuditLog, b"{}".to_vec()),
                (Job::HeaderInjection, br#"{"a":1}"#.to_vec())
            ]
        );
    }

    #[test]
    fn refusals_name_the_field() {
        assert!(refusal(r#"{"jwt_rbca": {}}"#).starts_with("jwt_rbca: unknown field"));
        assert!(refusal("{}").contains("no plugin to run"));
        assert!(
            refusal(r#"{"order": ["jwt_rbac"], "header_injection": {}}"#)
                .starts_with("order[0]: jwt_rbac has no section")
        );
        assert!(refusal(
            r#"{"order": ["header_injection", "header_injection"], "header_injection": {}}"#
        )
        .starts_with("order[1]: header_injection is listed twice"));
        assert!(refusal(
            r#"{"order": ["header_injection"], "header_injection": {}, "audit_log": {}}"#
        )
        .starts_with("order: audit_log has a section but is not in order"));
        assert!(refusal(r#"{"audit_log": 3}"#).starts_with("audit_log: "));
        assert!(refusal(r#"{"order": ["ratelimit"], "audit_log": {}}"#).starts_with("order[0]: "));
    }
}

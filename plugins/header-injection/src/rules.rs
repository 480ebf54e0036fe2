//! Header rules: set, append, remove, rename, set-if-absent, scoped by path and method.
//!
//! A rule's value comes from a literal, a request header, a host property, a fresh UUID or the
//! host clock. When the value is unavailable (header absent, property unknown to this host,
//! random or clock failing) the rule is skipped, never trapped.

use crate::ids::{self, TimeFormat};
use gateway_core::error::{join, ConfigError};
use gateway_core::headers::{header_name, header_value, is_valid_value, HeaderEdits};
use gateway_core::matching::{RequestMatch, RequestMatchConfig};
use gateway_core::ports::{Clock, PropertyPort, RandomSource};
use serde::Deserialize;

/// What a rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Replace every line of `name` with `value`.
    Set,
    /// Add a line `name: value`, keeping existing ones.
    Append,
    /// Remove every line of `name`.
    Remove,
    /// Move every line of `name` to `to` (replacing `to`).
    Rename,
    /// Set `name` to `value` only if absent.
    SetIfAbsent,
}

/// A rule as written in config.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// `set`, `append`, `remove`, `rename` or `set_if_absent`.
    pub action: ActionKind,
    /// Header the rule acts on (for `rename`, the source).
    pub name: String,
    /// Where the value comes from (`set`, `append`, `set_if_absent` only).
    #[serde(default)]
    pub value: Option<ValueConfig>,
    /// New name (`rename` only).
    #[serde(default)]
    pub to: Option<String>,
    /// Only apply to matching requests (path and method). Absent: every request.
    #[serde(default, rename = "match")]
    pub when: Option<RequestMatchConfig>,
}

/// A value source as written in config: an object with exactly one key.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ValueConfig {
    /// A fixed string.
    Literal(String),
    /// The first value of a request header (after anti-spoofing and earlier request rules).
    RequestHeader(String),
    /// A host property.
    Property(Property),
    /// A generated value: `uuid`.
    Generate(Generator),
    /// The current time: `rfc3339`, `unix_seconds` or `unix_millis`.
    Time(TimeFormat),
}

/// Host properties a rule may read (string-valued on Envoy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Property {
    /// Client address and port.
    #[serde(rename = "source.address")]
    SourceAddress,
    /// Local (listener) address and port.
    #[serde(rename = "destination.address")]
    DestinationAddress,
    /// The request id (Envoy's `x-request-id`).
    #[serde(rename = "request.id")]
    RequestId,
    /// Route name (Envoy; absent on Kong).
    #[serde(rename = "xds.route_name")]
    RouteName,
    /// Upstream cluster name (Envoy; absent on Kong).
    #[serde(rename = "xds.cluster_name")]
    ClusterName,
}

impl Property {
    /// The property path as the host expects it.
    pub fn path(self) -> &'static [&'static str] {
        match self {
            Self::SourceAddress => &["source", "address"],
            Self::DestinationAddress => &["destination", "address"],
            Self::RequestId => &["request", "id"],
            Self::RouteName => &["xds", "route_name"],
            Self::ClusterName => &["xds", "cluster_name"],
        }
    }
}

/// Generated values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Generator {
    /// A random UUID v4.
    Uuid,
}

/// A compiled value source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueSource {
    /// Fixed bytes.
    Literal(String),
    /// Lowercase request header name.
    RequestHeader(String),
    /// Host property.
    Property(Property),
    /// UUID v4.
    Uuid,
    /// Host time.
    Time(TimeFormat),
}

/// A compiled action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Replace.
    Set(String, ValueSource),
    /// Add a line.
    Append(String, ValueSource),
    /// Set when absent.
    SetIfAbsent(String, ValueSource),
    /// Remove all lines.
    Remove(String),
    /// Move lines from the first name to the second.
    Rename(String, String),
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Where the rule sits in config (`request_rules[1]`), for logs.
    pub field: String,
    /// What it does.
    pub action: Action,
    /// When it applies.
    pub when: RequestMatch,
}

/// Why a rule did nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// The request header the value comes from is absent.
    HeaderAbsent(String),
    /// The host has no such property (e.g. Kong has no `xds.*`).
    PropertyUnavailable(&'static str),
    /// Random bytes or the clock failed.
    HostFailed(&'static str),
    /// The value holds CR, LF or NUL.
    InvalidValue,
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::HeaderAbsent(name) => write!(f, "request header {name} absent"),
            Self::PropertyUnavailable(p) => write!(f, "property {p} unavailable on this host"),
            Self::HostFailed(what) => write!(f, "host {what} failed"),
            Self::InvalidValue => write!(f, "value contains cr, lf or nul"),
        }
    }
}

/// What applying a rule did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The request did not match.
    NotMatched,
    /// Matched and acted (possibly a no-op, e.g. removing an absent header).
    Applied,
    /// Matched but the value was unavailable.
    Skipped(Skip),
}

impl Rule {
    /// Compiles a rule; `field` is e.g. `request_rules[2]`.
    pub fn try_new(config: &RuleConfig, field: &str) -> Result<Self, ConfigError> {
        let name = header_name(&config.name, &join(field, "name"))?;
        let needs_value = matches!(
            config.action,
            ActionKind::Set | ActionKind::Append | ActionKind::SetIfAbsent
        );
        let value = match (&config.value, needs_value) {
            (Some(value), true) => Some(compile_value(value, &join(field, "value"))?),
            (None, true) => {
                return Err(ConfigError::invalid(
                    join(field, "value"),
                    "required for set, append and set_if_absent",
                ))
            }
            (Some(_), false) => {
                return Err(ConfigError::invalid(
                    join(field, "value"),
                    "not allowed for remove and rename",
                ))
            }
            (None, false) => None,
        };
        if config.to.is_some() && config.action != ActionKind::Rename {
            return Err(ConfigError::invalid(
                join(field, "to"),
                "only allowed for rename",
            ));
        }
        let action = match (config.action, value) {
            (ActionKind::Set, Some(v)) => Action::Set(name, v),
            (ActionKind::Append, Some(v)) => Action::Append(name, v),
            (ActionKind::SetIfAbsent, Some(v)) => Action::SetIfAbsent(name, v),
            (ActionKind::Remove, _) => Action::Remove(name),
            (ActionKind::Rename, _) => {
                let to = config.to.as_deref().ok_or_else(|| {
                    ConfigError::invalid(join(field, "to"), "required for rename")
                })?;
                let to = header_name(to, &join(field, "to"))?;
                if to == name {
                    return Err(ConfigError::invalid(join(field, "to"), "same as name"));
                }
                Action::Rename(name, to)
            }
            (_, None) => {
                return Err(ConfigError::invalid(join(field, "value"), "required"));
            }
        };
        let when = match &config.when {
            Some(when) => RequestMatch::try_new(when, &join(field, "match"))?,
            None => RequestMatch::any(),
        };
        Ok(Self {
            field: field.to_owned(),
            action,
            when,
        })
    }

    /// The request header this rule reads, if any.
    pub fn reads_request_header(&self) -> Option<&str> {
        match &self.action {
            Action::Set(_, ValueSource::RequestHeader(h))
            | Action::Append(_, ValueSource::RequestHeader(h))
            | Action::SetIfAbsent(_, ValueSource::RequestHeader(h)) => Some(h),
            _ => None,
        }
    }

    /// Applies the rule to `target` if the request (`method`, `path`) matches.
    /// `request_header` looks up request header values for [`ValueSource::RequestHeader`].
    pub fn apply<H, F>(
        &self,
        method: &[u8],
        path: &[u8],
        target: &mut HeaderEdits,
        request_header: F,
        host: &H,
    ) -> Outcome
    where
        H: PropertyPort + RandomSource + Clock + ?Sized,
        F: Fn(&HeaderEdits, &str) -> Option<Vec<u8>>,
    {
        if !self.when.matches(method, path) {
            return Outcome::NotMatched;
        }
        let resolve = |source: &ValueSource, target: &HeaderEdits| {
            resolve(source, |name| request_header(target, name), host)
        };
        match &self.action {
            Action::Set(name, source) => match resolve(source, target) {
                Ok(value) => target.set(name, value),
                Err(skip) => return Outcome::Skipped(skip),
            },
            Action::Append(name, source) => match resolve(source, target) {
                Ok(value) => target.add(name, value),
                Err(skip) => return Outcome::Skipped(skip),
            },
            Action::SetIfAbsent(name, source) => {
                if !target.contains(name) {
                    match resolve(source, target) {
                        Ok(value) => target.set(name, value),
                        Err(skip) => return Outcome::Skipped(skip),
                    }
                }
            }
            Action::Remove(name) => {
                target.remove(name);
            }
            Action::Rename(from, to) => {
                let values = target.all(from);
                if !values.is_empty() {
                    target.remove(from);
                    for (i, value) in values.into_iter().enumerate() {
                        if i == 0 {
                            target.set(to, value);
                        } else {
                            target.add(to, value);
                        }
                    }
                }
            }
        }
        Outcome::Applied
    }
}

fn compile_value(value: &ValueConfig, field: &str) -> Result<ValueSource, ConfigError> {
    Ok(match value {
        ValueConfig::Literal(text) => {
            ValueSource::Literal(header_value(text, &join(field, "literal"))?)
        }
        ValueConfig::RequestHeader(name) => {
            ValueSource::RequestHeader(header_name(name, &join(field, "request_header"))?)
        }
        ValueConfig::Property(p) => ValueSource::Property(*p),
        ValueConfig::Generate(Generator::Uuid) => ValueSource::Uuid,
        ValueConfig::Time(format) => ValueSource::Time(*format),
    })
}

/// Produces the bytes of a value source.
pub fn resolve<H, F>(source: &ValueSource, request_header: F, host: &H) -> Result<Vec<u8>, Skip>
where
    H: PropertyPort + RandomSource + Clock + ?Sized,
    F: Fn(&str) -> Option<Vec<u8>>,
{
    let value = match source {
        ValueSource::Literal(text) => return Ok(text.as_bytes().to_vec()),
        ValueSource::RequestHeader(name) => {
            request_header(name).ok_or_else(|| Skip::HeaderAbsent(name.clone()))?
        }
        ValueSource::Property(p) => match host.property(p.path()) {
            Ok(Some(value)) if !value.is_empty() => value,
            _ => return Err(Skip::PropertyUnavailable(property_name(*p))),
        },
        ValueSource::Uuid => ids::uuid_v4(host)
            .map_err(|_| Skip::HostFailed("random"))?
            .into_bytes(),
        ValueSource::Time(format) => ids::now(host, *format)
            .map_err(|_| Skip::HostFailed("clock"))?
            .into_bytes(),
    };
    if is_valid_value(&value) {
        Ok(value)
    } else {
        Err(Skip::InvalidValue)
    }
}

fn property_name(p: Property) -> &'static str {
    match p {
        Property::SourceAddress => "source.address",
        Property::DestinationAddress => "destination.address",
        Property::RequestId => "request.id",
        Property::RouteName => "xds.route_name",
        Property::ClusterName => "xds.cluster_name",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_core::fake::FakeHost;

    fn rule(json: &str) -> Result<Rule, ConfigError> {
        let config: RuleConfig = serde_json::from_str(json).unwrap();
        Rule::try_new(&config, "request_rules[0]")
    }

    fn edits(pairs: &[(&str, &str)]) -> HeaderEdits {
        HeaderEdits::new(
            pairs
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
                .collect(),
        )
    }

    fn run(rule: &Rule, target: &mut HeaderEdits, host: &FakeHost) -> Outcome {
        rule.apply(
            b"GET",
            b"/api/x",
            target,
            |t, name| t.first(name).map(<[u8]>::to_vec),
            host,
        )
    }

    #[test]
    fn actions() {
        let host = FakeHost::default();
        let mut t = edits(&[("a", "1"), ("a", "2"), ("b", "x")]);
        let set =
            rule(r#"{"action": "set", "name": "X-Env", "value": {"literal": "prod"}}"#).unwrap();
        assert_eq!(run(&set, &mut t, &host), Outcome::Applied);
        assert_eq!(t.all("x-env"), vec![b"prod".to_vec()]);

        let append =
            rule(r#"{"action": "append", "name": "b", "value": {"literal": "y"}}"#).unwrap();
        run(&append, &mut t, &host);
        assert_eq!(t.all("b"), vec![b"x".to_vec(), b"y".to_vec()]);

        let sia =
            rule(r#"{"action": "set_if_absent", "name": "b", "value": {"literal": "z"}}"#).unwrap();
        run(&sia, &mut t, &host);
        assert_eq!(t.all("b").len(), 2);
        let sia =
            rule(r#"{"action": "set_if_absent", "name": "c", "value": {"literal": "z"}}"#).unwrap();
        run(&sia, &mut t, &host);
        assert_eq!(t.all("c"), vec![b"z".to_vec()]);

        let rename = rule(r#"{"action": "rename", "name": "a", "to": "c"}"#).unwrap();
        run(&rename, &mut t, &host);
        assert!(!t.contains("a"));
        assert_eq!(t.all("c"), vec![b"1".to_vec(), b"2".to_vec()]);

        let remove = rule(r#"{"action": "remove", "name": "B"}"#).unwrap();
        run(&remove, &mut t, &host);
        assert!(!t.contains("b"));
    }

    #[test]
    fn values_from_header_property_uuid_time() {
        let host = FakeHost::default();
        host.set_property_str("source.address", "127.0.0.1:5555");
        host.now_nanos.set(1_764_011_760_123_456_789);
        let mut t = edits(&[("x-tenant", "acme")]);
        for (json, name, expected) in [
            (r#"{"request_header": "X-Tenant"}"#, "h1", "acme"),
            (r#"{"property": "source.address"}"#, "h2", "127.0.0.1:5555"),
            (r#"{"time": "unix_seconds"}"#, "h3", "1764011760"),
            (r#"{"time": "rfc3339"}"#, "h4", "2025-11-24T19:16:00.123Z"),
        ] {
            let r = rule(&format!(
                r#"{{"action": "set", "name": "{name}", "value": {json}}}"#
            ))
            .unwrap();
            assert_eq!(run(&r, &mut t, &host), Outcome::Applied);
            assert_eq!(t.first(name), Some(expected.as_bytes()), "{json}");
        }
        let r = rule(r#"{"action": "set", "name": "id", "value": {"generate": "uuid"}}"#).unwrap();
        run(&r, &mut t, &host);
        assert_eq!(t.first("id").map(<[u8]>::len), Some(36));
    }

    #[test]
    fn unavailable_values_skip() {
        let host = FakeHost::default();
        let mut t = edits(&[]);
        let r = rule(r#"{"action": "set", "name": "r", "value": {"property": "xds.route_name"}}"#)
            .unwrap();
        assert_eq!(
            run(&r, &mut t, &host),
            Outcome::Skipped(Skip::PropertyUnavailable("xds.route_name"))
        );
        let r =
            rule(r#"{"action": "set", "name": "r", "value": {"request_header": "nope"}}"#).unwrap();
        assert!(matches!(
            run(&r, &mut t, &host),
            Outcome::Skipped(Skip::HeaderAbsent(_))
        ));
        host.random_fails.set(true);
        let r = rule(r#"{"action": "set", "name": "r", "value": {"generate": "uuid"}}"#).unwrap();
        assert_eq!(
            run(&r, &mut t, &host),
            Outcome::Skipped(Skip::HostFailed("random"))
        );
        host.set_property_str("request.id", "a\nb");
        let r =
            rule(r#"{"action": "set", "name": "r", "value": {"property": "request.id"}}"#).unwrap();
        assert_eq!(run(&r, &mut t, &host), Outcome::Skipped(Skip::InvalidValue));
        assert!(t.ops().is_empty());
    }

    #[test]
    fn scoped_by_path_and_method() {
        let host = FakeHost::default();
        let r = rule(
            r#"{"action": "set", "name": "x", "value": {"literal": "1"},
                "match": {"path": {"prefix": "/api/"}, "methods": ["POST"]}}"#,
        )
        .unwrap();
        let mut t = edits(&[]);
        assert_eq!(run(&r, &mut t, &host), Outcome::NotMatched);
        let outcome = r.apply(b"POST", b"/api/x?y", &mut t, |_, _| None, &host);
        assert_eq!(outcome, Outcome::Applied);
    }

    #[test]
    fn invalid_rules_name_their_field() {
        let field = |json: &str| rule(json).unwrap_err().field;
        assert_eq!(
            field(r#"{"action": "set", "name": "x"}"#),
            "request_rules[0].value"
        );
        assert_eq!(
            field(r#"{"action": "remove", "name": "x", "value": {"literal": "a"}}"#),
            "request_rules[0].value"
        );
        assert_eq!(
            field(r#"{"action": "rename", "name": "x"}"#),
            "request_rules[0].to"
        );
        assert_eq!(
            field(r#"{"action": "rename", "name": "x", "to": "bad name"}"#),
            "request_rules[0].to"
        );
        assert_eq!(
            field(r#"{"action": "remove", "name": "x", "to": "y"}"#),
            "request_rules[0].to"
        );
        assert_eq!(
            field(r#"{"action": "remove", "name": ":path"}"#),
            "request_rules[0].name"
        );
        assert_eq!(
            field(r#"{"action": "set", "name": "x", "value": {"request_header": "a b"}}"#),
            "request_rules[0].value.request_header"
        );
        assert_eq!(
            field(r#"{"action": "set", "name": "x", "value": {"literal": "nul\u0000"}}"#),
            "request_rules[0].value.literal"
        );
    }

    #[test]
    fn unknown_property_and_action_fail_to_parse() {
        assert!(serde_json::from_str::<RuleConfig>(
            r#"{"action": "set", "name": "x", "value": {"property": "kong.secret"}}"#
        )
        .is_err());
        assert!(
            serde_json::from_str::<RuleConfig>(r#"{"action": "upsert", "name": "x"}"#).is_err()
        );
        assert!(serde_json::from_str::<RuleConfig>(
            r#"{"action": "set", "name": "x", "value": {"literal": "a", "time": "rfc3339"}}"#
        )
        .is_err());
    }
}

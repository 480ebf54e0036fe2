//! Configuration: the JSON schema (serde, `deny_unknown_fields`) and its compiled form.
//!
//! Every refusal names its field (`rules[1].token_bucket.capacity: must be at least 1`). See
//! `docs/ratelimit-shared-data.md` for every field with its default and an example.

use crate::cidr::Cidr;
use crate::key::KeyPart;
use crate::limit::{Limit, SlidingWindow, TokenBucket, NANOS_PER_SEC};
use gateway_core::error::{join, parse_json, ConfigError, ConfigErrorKind};
use gateway_core::headers::is_token;
use gateway_core::matching::{PathMatchConfig, RequestMatch, RequestMatchConfig};
use serde::Deserialize;

/// Most slots a table may have (each is one shared-data entry of about 100 bytes).
pub const MAX_SLOTS: u32 = 1 << 22;

/// The root object.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Rate-limit rules; every matching rule is checked, the most restrictive answer wins.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// Requests never limited.
    #[serde(default)]
    pub exemptions: ExemptionsConfig,
    /// Where the client IP comes from; default: the `source.address` property.
    #[serde(default)]
    pub client_ip: ClientIpConfig,
    /// Header holding the API key for the `api_key` key part.
    #[serde(default = "default_api_key_header")]
    pub api_key_header: String,
    /// The refusal.
    #[serde(default)]
    pub deny: DenyConfig,
    /// Which rate-limit headers are sent.
    #[serde(default)]
    pub headers: HeadersConfig,
    /// Count and log what would be limited, never block.
    #[serde(default)]
    pub shadow_mode: bool,
    /// The shared-data slot table and its failure policies.
    #[serde(default)]
    pub shared_data: SharedDataConfig,
    /// Metric name prefix of this instance: `edge` gives `edge.ratelimit.<name>`, so two instances of
    /// the plugin (on two listeners, say) keep their own counters, as Envoy's native filters do
    /// with their `stat_prefix`; Envoy's `stats_tags` can turn it into a label. Letters, digits
    /// and `_`, at most 64. Default: none (`ratelimit.<name>`).
    #[serde(default)]
    pub stat_prefix: Option<String>,
}

fn default_api_key_header() -> String {
    "x-api-key".to_owned()
}

/// One rule.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Name, shown in `RateLimit-Policy`, logs and the 429 body; unique.
    pub name: String,
    /// Which requests the rule applies to; absent: every request.
    #[serde(default, rename = "match")]
    pub matcher: RuleMatchConfig,
    /// Parts joined into the counter key; absent: one global counter.
    #[serde(default)]
    pub key: Vec<KeyPartConfig>,
    /// A token bucket (exactly one of `token_bucket`, `window`).
    #[serde(default)]
    pub token_bucket: Option<TokenBucketConfig>,
    /// A sliding window (exactly one of `token_bucket`, `window`).
    #[serde(default)]
    pub window: Option<WindowConfig>,
    /// What a request missing a key part (header absent, no client address) counts against.
    #[serde(default)]
    pub on_missing_key: MissingKey,
}

/// `rules[].on_missing_key`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum MissingKey {
    /// Every request missing a part shares one counter per rule (the part counts as "missing"),
    /// so leaving a header out never escapes the limit.
    #[default]
    Shared,
    /// The rule does not apply to the request.
    Skip,
}

/// `rules[].match`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleMatchConfig {
    /// `exact`, `prefix` or `regex` (whole path, query excluded).
    #[serde(default)]
    pub path: Option<PathMatchConfig>,
    /// Methods; absent or empty: any.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Header conditions, all must hold.
    #[serde(default)]
    pub headers: Vec<HeaderConditionConfig>,
}

/// `rules[].match.headers[]`: `present` or `equals`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct HeaderConditionConfig {
    /// Header name.
    pub name: String,
    /// `true`: the header is present; `false`: absent.
    #[serde(default)]
    pub present: Option<bool>,
    /// The (first) value equals this.
    #[serde(default)]
    pub equals: Option<String>,
}

/// `rules[].key[]`: a name (`"client_ip"`) or an object (`{"header": "x-user-id"}`).
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum KeyPartConfig {
    /// `client_ip`, `path`, `method`, `route`, `cluster`, `api_key`.
    Named(String),
    /// `{"header": ..}`, `{"property": ..}` or `{"constant": ..}`.
    Object(KeyPartObject),
}

/// The object forms of a key part.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct KeyPartObject {
    /// A request header's value.
    #[serde(default)]
    pub header: Option<String>,
    /// A host property, dotted (`xds.route_name`).
    #[serde(default)]
    pub property: Option<String>,
    /// A constant (a global or shared limit).
    #[serde(default)]
    pub constant: Option<String>,
}

/// `rules[].token_bucket`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TokenBucketConfig {
    /// Tokens when full: the largest burst.
    pub capacity: u32,
    /// Tokens added per interval (default: `capacity`).
    #[serde(default)]
    pub refill_tokens: Option<u32>,
    /// Interval in milliseconds.
    pub refill_interval_ms: u64,
}

/// `rules[].window`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct WindowConfig {
    /// Requests per window.
    pub limit: u32,
    /// Window length in seconds.
    pub seconds: u64,
}

/// `exemptions`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ExemptionsConfig {
    /// Client networks never limited (`10.0.0.0/8`, `::1/128`, a bare address).
    #[serde(default)]
    pub client_cidrs: Vec<String>,
    /// Header values never limited (a role, a plan).
    #[serde(default)]
    pub headers: Vec<ExemptHeaderConfig>,
}

/// `exemptions.headers[]`: exempt when the value, or one comma-separated item of it, is listed.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ExemptHeaderConfig {
    /// Header name, e.g. `x-user-roles`.
    pub name: String,
    /// Values that exempt.
    pub values: Vec<String>,
}

/// `client_ip`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ClientIpConfig {
    /// Take the client IP from this header's last (rightmost) comma-separated item, the one the
    /// nearest proxy appended; fall back to `source.address` when absent.
    #[serde(default)]
    pub header: Option<String>,
}

/// `deny`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct DenyConfig {
    /// Status of the refusal.
    #[serde(default = "default_status")]
    pub status: u32,
    /// `message` of the JSON body.
    #[serde(default = "default_message")]
    pub message: String,
}

impl Default for DenyConfig {
    fn default() -> Self {
        Self {
            status: default_status(),
            message: default_message(),
        }
    }
}

fn default_status() -> u32 {
    429
}

fn default_message() -> String {
    "rate limit exceeded".to_owned()
}

/// `headers`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct HeadersConfig {
    /// `RateLimit-Policy` and `RateLimit` (IETF draft).
    #[serde(default = "yes")]
    pub ietf: bool,
    /// `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset`.
    #[serde(default)]
    pub x_ratelimit: bool,
    /// The headers Kong's rate-limiting plugin sends: `RateLimit-Limit`, `RateLimit-Remaining`,
    /// `RateLimit-Reset`, and `X-RateLimit-Limit-<Unit>` / `X-RateLimit-Remaining-<Unit>` when
    /// the window is one of Kong's units (1 s, 60 s, 3600 s, 86400 s, 30 d, 365 d). Default
    /// `false`.
    #[serde(default)]
    pub kong: bool,
    /// Also on admitted responses (otherwise only on refusals).
    #[serde(default = "yes")]
    pub on_allowed: bool,
    /// `Retry-After` on refusals.
    #[serde(default = "yes")]
    pub retry_after: bool,
}

impl Default for HeadersConfig {
    fn default() -> Self {
        Self {
            ietf: true,
            x_ratelimit: false,
            kong: false,
            on_allowed: true,
            retry_after: true,
        }
    }
}

fn yes() -> bool {
    true
}

/// What to do when the answer cannot be known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Fallback {
    /// Admit the request (counted).
    Allow,
    /// Refuse it (counted).
    Deny,
}

/// `shared_data.failure_mode`: when the host store errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    /// Admit.
    Open,
    /// Refuse.
    Closed,
}

/// `shared_data`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SharedDataConfig {
    /// Slots in the table: the most distinct keys remembered at once, and the memory bound.
    #[serde(default = "default_slots")]
    pub slots: u32,
    /// Slots probed per key (1..=8) before a key counts as "slots exhausted".
    #[serde(default = "default_probes")]
    pub probes: u32,
    /// Prefix of the shared-data keys (`<prefix><slot>`).
    #[serde(default = "default_prefix")]
    pub key_prefix: String,
    /// Read-compute-write attempts per rule before giving up (1..=64).
    #[serde(default = "default_attempts")]
    pub max_cas_attempts: u32,
    /// When every attempt lost its compare-and-swap.
    #[serde(default = "deny")]
    pub on_cas_exhausted: Fallback,
    /// When every probed slot holds another live key.
    #[serde(default = "allow")]
    pub on_slots_exhausted: Fallback,
    /// When the host's shared data fails.
    #[serde(default = "open")]
    pub failure_mode: FailureMode,
    /// Create every slot at start (Envoy: makes key creation race-free).
    #[serde(default = "yes")]
    pub prefill: bool,
}

impl Default for SharedDataConfig {
    fn default() -> Self {
        Self {
            slots: default_slots(),
            probes: default_probes(),
            key_prefix: default_prefix(),
            max_cas_attempts: default_attempts(),
            on_cas_exhausted: Fallback::Deny,
            on_slots_exhausted: Fallback::Allow,
            failure_mode: FailureMode::Open,
            prefill: true,
        }
    }
}

fn default_slots() -> u32 {
    16_384
}
fn default_probes() -> u32 {
    2
}
fn default_prefix() -> String {
    "rlsd:".to_owned()
}
fn default_attempts() -> u32 {
    16
}
fn deny() -> Fallback {
    Fallback::Deny
}
fn allow() -> Fallback {
    Fallback::Allow
}
fn open() -> FailureMode {
    FailureMode::Open
}

/// A compiled header condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderCondition {
    /// Present (`true`) or absent (`false`).
    Present(String, bool),
    /// First value equals.
    Equals(String, Vec<u8>),
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Name.
    pub name: String,
    /// Path and methods.
    pub request: RequestMatch,
    /// Header conditions.
    pub headers: Vec<HeaderCondition>,
    /// Key parts, in order.
    pub key: Vec<KeyPart>,
    /// The limit.
    pub limit: Limit,
    /// What a request missing a key part counts against.
    pub on_missing_key: MissingKey,
}

/// The compiled configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Rules, in config order.
    pub rules: Vec<Rule>,
    /// Exempt client networks.
    pub exempt_cidrs: Vec<Cidr>,
    /// Exempt header values: lowercase name, values.
    pub exempt_headers: Vec<(String, Vec<Vec<u8>>)>,
    /// Client IP header (lowercase), if any.
    pub client_ip_header: Option<String>,
    /// API key header (lowercase).
    pub api_key_header: String,
    /// Refusal status and message.
    pub deny: DenyConfig,
    /// Headers sent.
    pub headers: HeadersConfig,
    /// Shadow mode.
    pub shadow_mode: bool,
    /// Slot table.
    pub shared: SharedDataConfig,
    /// Whether any rule or exemption needs the client IP.
    pub needs_client_ip: bool,
    /// Whether anything reads the request headers (a match, a key part, an exemption, the
    /// client IP header); if not, the request phase skips that host call.
    pub needs_headers: bool,
    /// `stat_prefix`, checked.
    pub stat_prefix: Option<String>,
}

impl Settings {
    /// Parses and compiles JSON config bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        Self::try_from(parse_json::<ConfigFile>(bytes)?)
    }
}

fn header_name(name: &str, field: &str) -> Result<String, ConfigError> {
    if !is_token(name) {
        return Err(ConfigError::new(
            field,
            ConfigErrorKind::InvalidHeaderName(name.to_owned()),
        ));
    }
    Ok(name.to_ascii_lowercase())
}

fn compile_rule(rule: &RuleConfig, field: &str) -> Result<Rule, ConfigError> {
    if rule.name.is_empty() || rule.name.len() > 64 || !rule.name.bytes().all(is_name_byte) {
        return Err(ConfigError::invalid(
            join(field, "name"),
            "must be 1 to 64 characters of a-z, A-Z, 0-9, '-', '_', '.'",
        ));
    }
    let match_field = join(field, "match");
    let request = RequestMatch::try_new(
        &RequestMatchConfig {
            path: rule.matcher.path.clone(),
            methods: rule.matcher.methods.clone(),
        },
        &match_field,
    )?;
    let mut headers = Vec::new();
    for (i, cond) in rule.matcher.headers.iter().enumerate() {
        let f = format!("{}[{i}]", join(&match_field, "headers"));
        let name = header_name(&cond.name, &join(&f, "name"))?;
        headers.push(match (cond.present, &cond.equals) {
            (Some(present), None) => HeaderCondition::Present(name, present),
            (None, Some(value)) => HeaderCondition::Equals(name, value.as_bytes().to_vec()),
            _ => {
                return Err(ConfigError::invalid(
                    f,
                    "exactly one of present, equals is required",
                ))
            }
        });
    }
    let mut key = Vec::new();
    for (i, part) in rule.key.iter().enumerate() {
        key.push(KeyPart::try_new(
            part,
            &format!("{}[{i}]", join(field, "key")),
        )?);
    }
    let limit = match (&rule.token_bucket, &rule.window) {
        (Some(b), None) => {
            let f = join(field, "token_bucket");
            if b.capacity == 0 {
                return Err(ConfigError::invalid(
                    join(&f, "capacity"),
                    "must be at least 1",
                ));
            }
            let refill_tokens = b.refill_tokens.unwrap_or(b.capacity);
            if refill_tokens == 0 {
                return Err(ConfigError::invalid(
                    join(&f, "refill_tokens"),
                    "must be at least 1",
                ));
            }
            if !(1..=31_536_000_000).contains(&b.refill_interval_ms) {
                return Err(ConfigError::invalid(
                    join(&f, "refill_interval_ms"),
                    "must be 1 to 31536000000 (a year)",
                ));
            }
            Limit::Bucket(TokenBucket {
                capacity: b.capacity,
                refill_tokens,
                interval_ns: b.refill_interval_ms * 1_000_000,
            })
        }
        (None, Some(w)) => {
            let f = join(field, "window");
            if w.limit == 0 {
                return Err(ConfigError::invalid(
                    join(&f, "limit"),
                    "must be at least 1",
                ));
            }
            if !(1..=31_536_000).contains(&w.seconds) {
                return Err(ConfigError::invalid(
                    join(&f, "seconds"),
                    "must be 1 to 31536000 (a year)",
                ));
            }
            Limit::Window(SlidingWindow {
                limit: w.limit,
                window_ns: w.seconds * NANOS_PER_SEC,
            })
        }
        _ => {
            return Err(ConfigError::invalid(
                field,
                "exactly one of token_bucket, window is required",
            ))
        }
    };
    Ok(Rule {
        name: rule.name.clone(),
        request,
        headers,
        key,
        limit,
        on_missing_key: rule.on_missing_key,
    })
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
}

impl TryFrom<ConfigFile> for Settings {
    type Error = ConfigError;

    fn try_from(file: ConfigFile) -> Result<Self, ConfigError> {
        let mut rules = Vec::with_capacity(file.rules.len());
        for (i, rule) in file.rules.iter().enumerate() {
            let field = format!("rules[{i}]");
            let compiled = compile_rule(rule, &field)?;
            if rules.iter().any(|r: &Rule| r.name == compiled.name) {
                return Err(ConfigError::invalid(
                    join(&field, "name"),
                    format!("duplicate rule name {:?}", compiled.name),
                ));
            }
            rules.push(compiled);
        }
        let mut exempt_cidrs = Vec::new();
        for (i, text) in file.exemptions.client_cidrs.iter().enumerate() {
            let field = format!("exemptions.client_cidrs[{i}]");
            exempt_cidrs.push(Cidr::parse(text).map_err(|m| ConfigError::invalid(field, m))?);
        }
        let mut exempt_headers = Vec::new();
        for (i, h) in file.exemptions.headers.iter().enumerate() {
            let field = format!("exemptions.headers[{i}]");
            let name = header_name(&h.name, &join(&field, "name"))?;
            if h.values.is_empty() {
                return Err(ConfigError::invalid(
                    join(&field, "values"),
                    "must list at least one value",
                ));
            }
            exempt_headers.push((
                name,
                h.values.iter().map(|v| v.as_bytes().to_vec()).collect(),
            ));
        }
        let client_ip_header = file
            .client_ip
            .header
            .as_deref()
            .map(|h| header_name(h, "client_ip.header"))
            .transpose()?;
        let api_key_header = header_name(&file.api_key_header, "api_key_header")?;
        if !(200..=599).contains(&file.deny.status) {
            return Err(ConfigError::invalid("deny.status", "must be 200 to 599"));
        }
        if file.deny.message.bytes().any(|b| b.is_ascii_control()) {
            return Err(ConfigError::invalid(
                "deny.message",
                "must not contain control characters",
            ));
        }
        let shared = file.shared_data;
        if !(1..=MAX_SLOTS).contains(&shared.slots) {
            return Err(ConfigError::invalid(
                "shared_data.slots",
                format!("must be 1 to {MAX_SLOTS}"),
            ));
        }
        if !(1..=8).contains(&shared.probes) {
            return Err(ConfigError::invalid("shared_data.probes", "must be 1 to 8"));
        }
        if !(1..=64).contains(&shared.max_cas_attempts) {
            return Err(ConfigError::invalid(
                "shared_data.max_cas_attempts",
                "must be 1 to 64",
            ));
        }
        if shared.key_prefix.is_empty()
            || shared.key_prefix.len() > 64
            || !shared.key_prefix.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(ConfigError::invalid(
                "shared_data.key_prefix",
                "must be 1 to 64 printable ascii characters",
            ));
        }
        let needs_client_ip =
            !exempt_cidrs.is_empty() || rules.iter().any(|r| r.key.contains(&KeyPart::ClientIp));
        let needs_headers = !exempt_headers.is_empty()
            || (needs_client_ip && client_ip_header.is_some())
            || file.rules.iter().any(|r| {
                r.matcher.path.is_some()
                    || !r.matcher.methods.is_empty()
                    || !r.matcher.headers.is_empty()
            })
            || rules.iter().any(|r| {
                r.key.iter().any(|p| {
                    matches!(
                        p,
                        KeyPart::Path | KeyPart::Method | KeyPart::ApiKey | KeyPart::Header(_)
                    )
                })
            });
        Ok(Self {
            stat_prefix: gateway_core::metrics::stat_prefix(
                file.stat_prefix.as_deref(),
                "stat_prefix",
            )?,
            needs_headers,
            rules,
            exempt_cidrs,
            exempt_headers,
            client_ip_header,
            api_key_header,
            deny: file.deny,
            headers: file.headers,
            shadow_mode: file.shadow_mode,
            shared,
            needs_client_ip,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> ConfigError {
        Settings::from_json(json.as_bytes()).unwrap_err()
    }

    #[test]
    fn empty_config_has_defaults() {
        let s = Settings::from_json(b"").unwrap();
        assert!(s.rules.is_empty());
        assert_eq!(s.deny.status, 429);
        assert_eq!(s.shared.slots, 16_384);
        assert_eq!(s.shared.on_cas_exhausted, Fallback::Deny);
        assert_eq!(s.shared.failure_mode, FailureMode::Open);
        assert!(s.headers.ietf && !s.headers.x_ratelimit);
    }

    #[test]
    fn full_config_compiles() {
        let s = Settings::from_json(
            br#"{
              "rules": [
                {"name": "per-ip", "match": {"path": {"prefix": "/api/"}, "methods": ["get"],
                  "headers": [{"name": "X-Tenant", "present": true}, {"name": "x-plan", "equals": "free"}]},
                 "key": ["client_ip", {"header": "x-user-id"}, "path", "method", "route", "cluster",
                         "api_key", {"property": "xds.route_name"}, {"constant": "g"}],
                 "token_bucket": {"capacity": 10, "refill_tokens": 1, "refill_interval_ms": 1000}},
                {"name": "global", "window": {"limit": 100, "seconds": 60}}
              ],
              "exemptions": {"client_cidrs": ["10.0.0.0/8", "::1"], "headers": [{"name": "x-user-roles", "values": ["premium"]}]},
              "client_ip": {"header": "X-Forwarded-For"},
              "deny": {"status": 503, "message": "slow down"},
              "headers": {"ietf": false, "x_ratelimit": true, "on_allowed": false},
              "shadow_mode": true,
              "shared_data": {"slots": 64, "probes": 3, "key_prefix": "x:", "max_cas_attempts": 4,
                 "on_cas_exhausted": "allow", "on_slots_exhausted": "deny", "failure_mode": "closed", "prefill": false}
            }"#,
        )
        .unwrap();
        assert_eq!(s.rules.len(), 2);
        assert_eq!(s.rules[0].key.len(), 9);
        assert_eq!(
            s.rules[0].headers[0],
            HeaderCondition::Present("x-tenant".into(), true)
        );
        assert!(s.needs_client_ip && s.needs_headers);
        let global = Settings::from_json(
            br#"{"rules": [{"name": "g", "key": [{"constant": "a"}, "client_ip", "route"],
                 "window": {"limit": 1, "seconds": 1}}]}"#,
        )
        .unwrap();
        assert!(!global.needs_headers);
        assert_eq!(s.client_ip_header.as_deref(), Some("x-forwarded-for"));
        assert_eq!(s.shared.failure_mode, FailureMode::Closed);
    }

    #[test]
    fn refusals_name_the_field() {
        let cases = [
            (r#"{"rulez": []}"#, "rulez"),
            (r#"{"rules": [{"name": "a"}]}"#, "rules[0]"),
            (
                r#"{"rules": [{"name": "a", "window": {"limit": 0, "seconds": 1}}]}"#,
                "rules[0].window.limit",
            ),
            (
                r#"{"rules": [{"name": "a", "token_bucket": {"capacity": 0, "refill_interval_ms": 1}}]}"#,
                "rules[0].token_bucket.capacity",
            ),
            (
                r#"{"rules": [{"name": "a", "window": {"limit": 1, "seconds": 1}, "key": ["nope"]}]}"#,
                "rules[0].key[0]",
            ),
            (
                r#"{"rules": [{"name": "a", "window": {"limit": 1, "seconds": 1}, "key": [{"header": "a b"}]}]}"#,
                "rules[0].key[0].header",
            ),
            (
                r#"{"rules": [{"name": "a", "window": {"limit": 1, "seconds": 1}}, {"name": "a", "window": {"limit": 1, "seconds": 1}}]}"#,
                "rules[1].name",
            ),
            (
                r#"{"rules": [{"name": "a", "window": {"limit": 1, "seconds": 1}, "match": {"path": {"regex": "("}}}]}"#,
                "rules[0].match.path.regex",
            ),
            (
                r#"{"exemptions": {"client_cidrs": ["10.0.0.0/33"]}}"#,
                "exemptions.client_cidrs[0]",
            ),
            (r#"{"shared_data": {"slots": 0}}"#, "shared_data.slots"),
            (r#"{"shared_data": {"probes": 9}}"#, "shared_data.probes"),
            (r#"{"deny": {"status": 99}}"#, "deny.status"),
            (
                r#"{"shared_data": {"failure_mode": "maybe"}}"#,
                "shared_data.failure_mode",
            ),
        ];
        for (json, field) in cases {
            assert_eq!(err(json).field, field, "{json}");
        }
    }
}

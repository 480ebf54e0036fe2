//! Configuration: the JSON the gateway passes, and its compiled, ready-to-use form.
//!
//! `deny_unknown_fields` everywhere; [`Settings::try_from`] then validates every provider, key,
//! rule, header name and claim path, naming the field of the first problem.

use crate::alg::Alg;
use crate::jwk;
use crate::policy::{ClaimCheck, Requirement, Rule};
use crate::validate::Validator;
use gateway_core::antispoof::ProtectedHeaders;
use gateway_core::error::{join, ConfigError};
use gateway_core::headers::header_name;
use gateway_core::identity;
use gateway_core::matching::{RequestMatch, RequestMatchConfig};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Default longest token, in bytes.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8192;
/// Default clock skew, in seconds.
pub const DEFAULT_CLOCK_SKEW: u64 = 60;
/// Default verified-token cache size, per VM.
pub const DEFAULT_CACHE_ENTRIES: usize = 1024;

/// The plugin configuration as written by the operator.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Token issuers, by name.
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Ordered rules; the first whose `match` fits the request decides.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// What happens when no rule matches: `deny` (403 `no_rule`, default) or `allow` (anonymous).
    #[serde(default)]
    pub no_rule: NoRule,
    /// `realm` of the `WWW-Authenticate` challenge. Default `api`.
    #[serde(default = "default_realm")]
    pub realm: String,
    /// Let CORS preflights (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) pass
    /// without a token. Default `false`.
    #[serde(default)]
    pub cors_preflight_bypass: bool,
    /// Identity headers injected after verification.
    #[serde(default)]
    pub identity: IdentityConfig,
    /// Verified-token cache.
    #[serde(default)]
    pub cache: CacheConfig,
    /// Signature checks: `auto` (host crypto where offered, default) or `pure_rust`.
    #[serde(default)]
    pub crypto: CryptoMode,
    /// The Kong version this runs on (`"3.8"` or `"3.9"`); read on Kong only. Remote documents
    /// (`remote_jwks`, `remote_revocations`) need `"3.9"`: only Kong 3.9's engine reports a
    /// failed fetch back to the request waiting for it (3.8's lets that request through).
    /// Default: not set.
    #[serde(default)]
    pub kong_version: Option<KongVersion>,
    /// Metric name prefix of this instance: `edge` gives `edge.jwt_rbac.<name>`, so two instances of
    /// the plugin (on two listeners, say) keep their own counters, as Envoy's native filters do
    /// with their `stat_prefix`; Envoy's `stats_tags` can turn it into a label. Letters, digits
    /// and `_`, at most 64. Default: none (`jwt_rbac.<name>`).
    #[serde(default)]
    pub stat_prefix: Option<String>,
}

/// `kong_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum KongVersion {
    /// Kong 3.8 (ngx_wasm_module 96b4e27e).
    #[serde(rename = "3.8")]
    V3_8,
    /// Kong 3.9 (ngx_wasm_module 9136e463).
    #[serde(rename = "3.9")]
    V3_9,
}

pub(crate) fn default_realm() -> String {
    "api".to_owned()
}

/// `no_rule`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum NoRule {
    /// 403 `no_rule`.
    #[default]
    Deny,
    /// Pass as anonymous.
    Allow,
}

/// `crypto`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum CryptoMode {
    /// Envoy's `verify_signature` for RS*/ES* when the host has it, pure Rust otherwise.
    #[default]
    Auto,
    /// Always pure Rust.
    PureRust,
}

/// One provider.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Required `iss`. Absent: not checked.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Accepted `aud` values (any one). Empty: not checked.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Algorithms tokens may use (`RS256`, `ES256`, `EdDSA`, `HS256`...). Required for JWT
    /// providers.
    #[serde(default)]
    pub algorithms: Vec<String>,
    /// API keys instead of JWTs (then no `jwks`, `remote_jwks` or `algorithms`).
    #[serde(default)]
    pub api_keys: Option<crate::api_keys::ApiKeysConfig>,
    /// Inline JWKS: an object `{"keys": [...]}` or a string holding it. This or `remote_jwks`.
    #[serde(default)]
    pub jwks: Option<Value>,
    /// JWKS fetched through the gateway and shared by the workers. This or `jwks`.
    #[serde(default)]
    pub remote_jwks: Option<RemoteJwksConfig>,
    /// Where to find the token, in order. Default: `Authorization: Bearer <token>`.
    #[serde(default = "default_sources")]
    pub from: Vec<TokenSourceConfig>,
    /// Keep the token in the request going upstream. Default `false` (stripped).
    #[serde(default)]
    pub forward: bool,
    /// Clock skew on `exp`, `nbf`, `iat`, seconds. Default 60.
    #[serde(default = "default_skew")]
    pub clock_skew_seconds: u64,
    /// Refuse tokens without `exp`. Default `true`.
    #[serde(default = "yes")]
    pub require_exp: bool,
    /// Longest `exp - iat` accepted, seconds. Default: no limit.
    #[serde(default)]
    pub max_lifetime_seconds: Option<u64>,
    /// Longest token, bytes. Default 8192.
    #[serde(default = "default_max_token")]
    pub max_token_bytes: usize,
    /// Claim holding roles, a dotted path (`realm_access.roles`). Default `roles`.
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// Revoked token ids (`jti`): such tokens get `token_revoked`. Default none.
    #[serde(default)]
    pub revoked_jti: Vec<String>,
    /// Revoked session ids (`sid`): every token of those sessions gets `token_revoked`.
    #[serde(default)]
    pub revoked_sid: Vec<String>,
    /// Revoked `jti`/`sid` values fetched through the gateway (`{"jti": [...], "sid": [...]}`),
    /// shared by the workers and refreshed like `remote_jwks`, on top of `revoked_jti` and
    /// `revoked_sid`. Default: none.
    #[serde(default)]
    pub remote_revocations: Option<RemoteRevocationsConfig>,
}

pub(crate) fn default_sources() -> Vec<TokenSourceConfig> {
    vec![TokenSourceConfig::Header(HeaderSourceConfig {
        name: "authorization".to_owned(),
        prefix: "Bearer ".to_owned(),
    })]
}
pub(crate) fn default_skew() -> u64 {
    DEFAULT_CLOCK_SKEW
}
pub(crate) fn yes() -> bool {
    true
}
pub(crate) fn default_max_token() -> usize {
    DEFAULT_MAX_TOKEN_BYTES
}
pub(crate) fn default_roles_claim() -> String {
    "roles".to_owned()
}

/// `providers.<name>.remote_jwks`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RemoteJwksConfig {
    /// Envoy cluster name, or Kong `host:port`. Required.
    pub upstream: String,
    /// Path of the JWKS. Default `/.well-known/jwks.json`.
    #[serde(default = "default_jwks_path")]
    pub path: String,
    /// `:authority` sent. Default: `upstream`.
    #[serde(default)]
    pub authority: Option<String>,
    /// Refresh period, seconds. Default 300.
    #[serde(default = "default_refresh")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 86400)))]
    pub refresh_seconds: u64,
    /// Least time between refreshes triggered by unknown `kid`s, seconds. Default 30.
    #[serde(default = "default_kid_refresh")]
    #[cfg_attr(feature = "schema", schemars(range(min = 0, max = 86400)))]
    pub unknown_kid_refresh_seconds: u64,
    /// Timeout of one fetch, milliseconds. Default 5000.
    #[serde(default = "default_timeout")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 60000)))]
    pub timeout_ms: u64,
    /// Longest retry backoff after failures, seconds. Default 300.
    #[serde(default = "default_refresh")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 86400)))]
    pub max_backoff_seconds: u64,
    /// How long a request waits for the first keys before `503 jwks_unavailable`, seconds
    /// (whole seconds, checked on a 1 s tick). Default 3; 0 answers at once.
    #[serde(default = "default_max_wait")]
    #[cfg_attr(feature = "schema", schemars(range(min = 0, max = 60)))]
    pub max_wait_seconds: u64,
}

/// `providers.<name>.remote_revocations`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RemoteRevocationsConfig {
    /// Envoy cluster name, or Kong `host:port`. Required.
    pub upstream: String,
    /// Path of the list. Default `/revoked.json`.
    #[serde(default = "default_revocations_path")]
    pub path: String,
    /// `:authority` sent. Default: `upstream`.
    #[serde(default)]
    pub authority: Option<String>,
    /// Refresh period, seconds. Default 60.
    #[serde(default = "default_revocations_refresh")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 86400)))]
    pub refresh_seconds: u64,
    /// Timeout of one fetch, milliseconds. Default 5000.
    #[serde(default = "default_timeout")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 60000)))]
    pub timeout_ms: u64,
    /// Longest retry backoff after failures, seconds. Default 300.
    #[serde(default = "default_refresh")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 86400)))]
    pub max_backoff_seconds: u64,
}

pub(crate) fn default_revocations_path() -> String {
    "/revoked.json".to_owned()
}
pub(crate) fn default_revocations_refresh() -> u64 {
    60
}

pub(crate) fn default_max_wait() -> u64 {
    3
}

pub(crate) fn default_jwks_path() -> String {
    "/.well-known/jwks.json".to_owned()
}
pub(crate) fn default_refresh() -> u64 {
    300
}
pub(crate) fn default_kid_refresh() -> u64 {
    30
}
pub(crate) fn default_timeout() -> u64 {
    5000
}

/// One token source.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum TokenSourceConfig {
    /// A request header, with a prefix (`{"header": {"name": "authorization", "prefix": "Bearer "}}`).
    Header(HeaderSourceConfig),
    /// A query parameter (`{"query": "access_token"}`).
    Query(String),
    /// A cookie (`{"cookie": "session"}`).
    Cookie(String),
}

/// `from[].header`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct HeaderSourceConfig {
    /// Header name.
    pub name: String,
    /// Prefix before the token, compared case-insensitively (`Bearer `). Default: none.
    #[serde(default)]
    pub prefix: String,
}

/// One rule.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Path and methods (gateway-core `match`). Absent: every request.
    #[serde(default, rename = "match")]
    pub matcher: RequestMatchConfig,
    /// What the request must present.
    pub requires: RequirementConfig,
    /// Roles the verified caller must have.
    #[serde(default)]
    pub roles: Option<ClaimCheckConfig>,
    /// Scopes the verified caller must have.
    #[serde(default)]
    pub scopes: Option<ClaimCheckConfig>,
}

/// `rules[].requires`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum RequirementConfig {
    /// No authentication; any token is ignored (`"anonymous"`).
    Anonymous,
    /// A valid token of this provider (`{"provider": "a"}`).
    Provider(String),
    /// A valid token of any of these (`{"any_of": ["a", "b"]}`).
    AnyOf(Vec<String>),
    /// A valid token of each of these (`{"all_of": ["a", "b"]}`).
    AllOf(Vec<String>),
    /// No token passes as anonymous; a token present must be valid (`{"allow_missing": ["a"]}`).
    AllowMissing(Vec<String>),
}

/// `rules[].roles` / `rules[].scopes`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ClaimCheckConfig {
    /// At least one of these.
    AnyOf(Vec<String>),
    /// Every one of these.
    AllOf(Vec<String>),
}

/// `identity`: headers injected for a verified caller.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// Claims copied to headers (nested `a.b`; arrays joined with `,`). Default: `sub` to
    /// `x-user-id`, `email` to `x-user-email`, `iss` to `x-jwt-issuer`.
    pub claims: Vec<ClaimHeaderConfig>,
    /// Roles (from the provider's `roles_claim`), comma-joined. Default `x-user-roles`.
    pub roles_header: String,
    /// Scopes (`scope` or `scp`), space-joined. Default `x-user-scopes`.
    pub scopes_header: String,
    /// `verified` or `anonymous`. Default `x-auth-status`.
    pub status_header: String,
    /// `jwt`. Default `x-auth-method`.
    pub method_header: String,
    /// More headers removed from every client request (besides every header above and the
    /// suite's identity headers).
    pub also_strip: Vec<String>,
    /// Header carrying the whole verified payload, base64url JSON (e.g. `x-jwt-claims`).
    /// Default: none.
    pub payload_header: Option<String>,
    /// Envoy filter state key for the verified subject, readable in the access log as
    /// `%FILTER_STATE(wasm.<key>:PLAIN)%` (e.g. `jwt_rbac.sub`). Default: none.
    pub filter_state_key: Option<String>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        let claim = |claim: &str, header: &str| ClaimHeaderConfig {
            claim: claim.to_owned(),
            header: header.to_owned(),
        };
        Self {
            claims: vec![
                claim("sub", identity::USER_ID),
                claim("email", identity::USER_EMAIL),
                claim("iss", identity::JWT_ISSUER),
            ],
            roles_header: identity::USER_ROLES.to_owned(),
            scopes_header: identity::USER_SCOPES.to_owned(),
            status_header: identity::AUTH_STATUS.to_owned(),
            method_header: identity::AUTH_METHOD.to_owned(),
            also_strip: Vec::new(),
            payload_header: None,
            filter_state_key: None,
        }
    }
}

/// `identity.claims[]`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ClaimHeaderConfig {
    /// Claim path, dotted (`realm_access.roles`).
    pub claim: String,
    /// Header to set.
    pub header: String,
}

/// `cache`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Most verified tokens kept per VM; 0 disables the cache. Default 1024.
    pub max_entries: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            max_entries: DEFAULT_CACHE_ENTRIES,
        }
    }
}

/// Where a provider looks for its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// Header name (lowercase) and prefix.
    Header { name: String, prefix: String },
    /// Query parameter.
    Query(String),
    /// Cookie.
    Cookie(String),
}

/// A compiled provider.
#[derive(Debug, Clone)]
pub struct Provider {
    /// Its name.
    pub name: String,
    /// Token checks.
    pub validator: Validator,
    /// Token sources, in order.
    pub sources: Vec<TokenSource>,
    /// Keep the token upstream.
    pub forward: bool,
    /// Roles claim path.
    pub roles_claim: Vec<String>,
    /// Remote JWKS, if keys are fetched (the validator's inline keys are then empty).
    pub remote: Option<crate::remote::RemoteJwks>,
    /// API keys, for an API-key provider (no JWT then).
    pub api_keys: Option<crate::api_keys::ApiKeys>,
    /// Remote revocation list, if one is fetched.
    pub revocations: Option<crate::remote::RemoteJwks>,
}

/// A compiled claim-to-header mapping.
#[derive(Debug, Clone)]
pub struct ClaimHeader {
    /// Claim path segments.
    pub claim: Vec<String>,
    /// Header name, lowercase.
    pub header: String,
}

/// Compiled identity headers.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Claims to headers.
    pub claims: Vec<ClaimHeader>,
    /// Roles header.
    pub roles_header: String,
    /// Scopes header.
    pub scopes_header: String,
    /// Status header.
    pub status_header: String,
    /// Method header.
    pub method_header: String,
    /// Verified payload header.
    pub payload_header: Option<String>,
    /// Filter state key for the subject.
    pub filter_state_key: Option<String>,
}

/// The compiled configuration, shared by every stream of a VM.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Providers; rules refer to them by index.
    pub providers: Vec<Provider>,
    /// Rules, in order.
    pub rules: Vec<Rule>,
    /// No rule matched.
    pub no_rule: NoRule,
    /// Challenge realm.
    pub realm: String,
    /// CORS preflight bypass.
    pub cors_preflight_bypass: bool,
    /// Identity headers.
    pub identity: Identity,
    /// Headers removed from every client request.
    pub protected: ProtectedHeaders,
    /// Cache size.
    pub cache_entries: usize,
    /// Signature path.
    pub crypto: CryptoMode,
    /// `kong_version`, as given.
    pub kong_version: Option<KongVersion>,
    /// `stat_prefix`, checked.
    pub stat_prefix: Option<String>,
    /// Longest wait for a first remote JWKS (the largest over the providers), seconds.
    pub jwks_max_wait_seconds: i64,
}

impl Settings {
    /// Parses and compiles configuration bytes (JSON).
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        Self::try_from(crate::config_read::read(bytes)?)
    }
}

impl TryFrom<Config> for Settings {
    type Error = ConfigError;

    fn try_from(config: Config) -> Result<Self, ConfigError> {
        if config.providers.is_empty() {
            return Err(ConfigError::invalid("providers", "at least one provider"));
        }
        let providers = config
            .providers
            .iter()
            .map(|(name, p)| compile_provider(name, p, &format!("providers.{name}")))
            .collect::<Result<Vec<_>, _>>()?;
        let index = |name: &str, field: String| {
            providers
                .iter()
                .position(|p| p.name == name)
                .ok_or_else(|| ConfigError::invalid(field, format!("no provider named {name:?}")))
        };
        let mut rules = Vec::with_capacity(config.rules.len());
        for (i, rule) in config.rules.iter().enumerate() {
            let field = format!("rules[{i}]");
            let matcher = RequestMatch::try_new(&rule.matcher, &join(&field, "match"))?;
            let requires_field = join(&field, "requires");
            let names = |list: &[String], kind: &str| -> Result<Vec<usize>, ConfigError> {
                let f = join(&requires_field, kind);
                if list.is_empty() {
                    return Err(ConfigError::invalid(f, "at least one provider"));
                }
                list.iter()
                    .enumerate()
                    .map(|(j, n)| index(n, format!("{f}[{j}]")))
                    .collect()
            };
            let requires = match &rule.requires {
                RequirementConfig::Anonymous => Requirement::Anonymous,
                RequirementConfig::Provider(name) => {
                    Requirement::AnyOf(vec![index(name, join(&requires_field, "provider"))?])
                }
                RequirementConfig::AnyOf(list) => Requirement::AnyOf(names(list, "any_of")?),
                RequirementConfig::AllOf(list) => Requirement::AllOf(names(list, "all_of")?),
                RequirementConfig::AllowMissing(list) => {
                    Requirement::AllowMissing(names(list, "allow_missing")?)
                }
            };
            let may_be_anonymous = matches!(
                requires,
                Requirement::Anonymous | Requirement::AllowMissing(_)
            );
            let check = |c: &Option<ClaimCheckConfig>, name: &str| {
                let f = join(&field, name);
                match c {
                    None => Ok(None),
                    Some(_) if may_be_anonymous => Err(ConfigError::invalid(
                        f,
                        "needs a rule that requires a token (provider, any_of, all_of)",
                    )),
                    Some(c) => compile_check(c, &f).map(Some),
                }
            };
            rules.push(Rule {
                matcher,
                requires,
                roles: check(&rule.roles, "roles")?,
                scopes: check(&rule.scopes, "scopes")?,
            });
        }
        if config.realm.is_empty()
            || config
                .realm
                .bytes()
                .any(|b| b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b))
        {
            return Err(ConfigError::invalid(
                "realm",
                "printable ascii without quotes or backslashes",
            ));
        }
        let identity = compile_identity(&config.identity)?;
        let mut protected: Vec<String> = identity::IDENTITY_HEADERS
            .iter()
            .map(|h| (*h).to_owned())
            .collect();
        protected.extend(identity.claims.iter().map(|c| c.header.clone()));
        protected.extend([
            identity.roles_header.clone(),
            identity.scopes_header.clone(),
            identity.status_header.clone(),
            identity.method_header.clone(),
        ]);
        protected.extend(identity.payload_header.clone());
        // Validated on its own first, so an error names `identity.also_strip[i]`.
        ProtectedHeaders::try_new(&config.identity.also_strip, "identity.also_strip")?;
        protected.extend(config.identity.also_strip.iter().cloned());
        let protected = ProtectedHeaders::try_new(&protected, "identity")?;
        Ok(Self {
            providers,
            rules,
            no_rule: config.no_rule,
            realm: config.realm,
            cors_preflight_bypass: config.cors_preflight_bypass,
            identity,
            protected,
            cache_entries: config.cache.max_entries,
            crypto: config.crypto,
            kong_version: config.kong_version,
            stat_prefix: gateway_core::metrics::stat_prefix(
                config.stat_prefix.as_deref(),
                "stat_prefix",
            )?,
            jwks_max_wait_seconds: config
                .providers
                .values()
                .filter_map(|p| p.remote_jwks.as_ref())
                .map(|r| i64::try_from(r.max_wait_seconds.min(60)).unwrap_or(60))
                .max()
                .unwrap_or(0),
        })
    }
}

fn compile_provider(name: &str, p: &ProviderConfig, field: &str) -> Result<Provider, ConfigError> {
    if name.is_empty() {
        return Err(ConfigError::invalid(field, "a provider needs a name"));
    }
    if let Some(api) = &p.api_keys {
        if p.jwks.is_some()
            || p.remote_jwks.is_some()
            || p.remote_revocations.is_some()
            || !p.algorithms.is_empty()
        {
            return Err(ConfigError::invalid(
                field,
                "api_keys excludes jwks, remote_jwks, remote_revocations and algorithms",
            ));
        }
        let keys = crate::api_keys::ApiKeys::try_new(api, &join(field, "api_keys"))?;
        return Ok(Provider {
            name: name.to_owned(),
            validator: Validator {
                issuer: None,
                audiences: Vec::new(),
                algorithms: Vec::new(),
                keys: Vec::new(),
                clock_skew: 0,
                require_exp: false,
                max_lifetime: None,
                max_token_bytes: p.max_token_bytes,
                revoked_jti: Vec::new(),
                revoked_sid: Vec::new(),
            },
            sources: vec![TokenSource::Header {
                name: keys.header.clone(),
                prefix: String::new(),
            }],
            forward: p.forward,
            roles_claim: vec!["roles".to_owned()],
            remote: None,
            api_keys: Some(keys),
            revocations: None,
        });
    }
    let (keys, remote) = match (&p.jwks, &p.remote_jwks) {
        (Some(jwks), None) => (jwk::parse_jwks(jwks, &join(field, "jwks"))?, None),
        (None, Some(r)) => (
            Vec::new(),
            Some(compile_remote(r, &join(field, "remote_jwks"))?),
        ),
        _ => {
            return Err(ConfigError::invalid(
                field,
                "exactly one of jwks, remote_jwks is required",
            ))
        }
    };
    if p.algorithms.is_empty() {
        return Err(ConfigError::invalid(
            join(field, "algorithms"),
            "at least one algorithm",
        ));
    }
    let mut algorithms = Vec::with_capacity(p.algorithms.len());
    for (i, a) in p.algorithms.iter().enumerate() {
        let f = format!("{}[{i}]", join(field, "algorithms"));
        let alg = Alg::from_name(a).ok_or_else(|| {
            ConfigError::invalid(
                &f,
                format!("unsupported algorithm {a:?} (none is never accepted)"),
            )
        })?;
        if remote.is_some() && alg.family() == crate::alg::KeyFamily::Hmac {
            return Err(ConfigError::invalid(
                f,
                format!("{a} needs an inline secret (jwks), never a remote jwks"),
            ));
        }
        if remote.is_none() && !keys.iter().any(|k| k.accepts(alg)) {
            return Err(ConfigError::invalid(
                f,
                format!("no key in jwks can verify {a}"),
            ));
        }
        algorithms.push(alg);
    }
    if p.from.is_empty() {
        return Err(ConfigError::invalid(
            join(field, "from"),
            "at least one token source",
        ));
    }
    let mut sources = Vec::with_capacity(p.from.len());
    for (i, s) in p.from.iter().enumerate() {
        let f = format!("{}[{i}]", join(field, "from"));
        sources.push(match s {
            TokenSourceConfig::Header(h) => TokenSource::Header {
                name: header_name(&h.name, &join(&join(&f, "header"), "name"))?,
                prefix: h.prefix.clone(),
            },
            TokenSourceConfig::Query(q) if !q.is_empty() && !q.contains(['&', '=', '#']) => {
                TokenSource::Query(q.clone())
            }
            TokenSourceConfig::Cookie(c) if gateway_core::headers::is_token(c) => {
                TokenSource::Cookie(c.clone())
            }
            TokenSourceConfig::Query(_) => {
                return Err(ConfigError::invalid(
                    join(&f, "query"),
                    "a non-empty parameter name without & = #",
                ))
            }
            TokenSourceConfig::Cookie(_) => {
                return Err(ConfigError::invalid(
                    join(&f, "cookie"),
                    "a cookie name (rfc 6265 token)",
                ))
            }
        });
    }
    if p.max_token_bytes == 0 || p.max_token_bytes > 65536 {
        return Err(ConfigError::invalid(
            join(field, "max_token_bytes"),
            "between 1 and 65536",
        ));
    }
    let seconds = |v: u64, f: &str| {
        i64::try_from(v)
            .ok()
            .filter(|v| *v <= 10 * 365 * 86400)
            .ok_or_else(|| ConfigError::invalid(join(field, f), "at most ten years"))
    };
    Ok(Provider {
        name: name.to_owned(),
        validator: Validator {
            issuer: p.issuer.clone(),
            audiences: p.audiences.clone(),
            algorithms,
            keys,
            clock_skew: seconds(p.clock_skew_seconds, "clock_skew_seconds")?,
            require_exp: p.require_exp,
            max_lifetime: p
                .max_lifetime_seconds
                .map(|v| seconds(v, "max_lifetime_seconds"))
                .transpose()?,
            max_token_bytes: p.max_token_bytes,
            revoked_jti: p.revoked_jti.clone(),
            revoked_sid: p.revoked_sid.clone(),
        },
        sources,
        forward: p.forward,
        roles_claim: claim_path(&p.roles_claim, &join(field, "roles_claim"))?,
        remote,
        api_keys: None,
        revocations: p
            .remote_revocations
            .as_ref()
            .map(|r| compile_revocations(r, &join(field, "remote_revocations")))
            .transpose()?,
    })
}

fn compile_remote(
    r: &RemoteJwksConfig,
    field: &str,
) -> Result<crate::remote::RemoteJwks, ConfigError> {
    if let Some(hint) = gateway_core::headers::url_shaped_upstream(&r.upstream) {
        return Err(ConfigError::invalid(join(field, "upstream"), hint));
    }
    if r.upstream.is_empty() || r.upstream.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err(ConfigError::invalid(
            join(field, "upstream"),
            "an envoy cluster name or a kong host:port",
        ));
    }
    if !r.path.starts_with('/') || !gateway_core::headers::is_valid_value(r.path.as_bytes()) {
        return Err(ConfigError::invalid(
            join(field, "path"),
            "an absolute path (starting with /)",
        ));
    }
    let seconds = |v: u64, name: &str, min: i64| {
        i64::try_from(v)
            .ok()
            .filter(|v| *v >= min && *v <= 86400)
            .ok_or_else(|| {
                ConfigError::invalid(join(field, name), format!("between {min} and 86400"))
            })
    };
    if r.max_wait_seconds > 60 {
        return Err(ConfigError::invalid(
            join(field, "max_wait_seconds"),
            "between 0 and 60",
        ));
    }
    if r.timeout_ms == 0 || r.timeout_ms > 60_000 {
        return Err(ConfigError::invalid(
            join(field, "timeout_ms"),
            "between 1 and 60000",
        ));
    }
    let authority = r.authority.clone().unwrap_or_else(|| r.upstream.clone());
    if !gateway_core::headers::is_valid_value(authority.as_bytes()) {
        return Err(ConfigError::invalid(
            join(field, "authority"),
            "no cr, lf or nul",
        ));
    }
    Ok(crate::remote::RemoteJwks {
        upstream: r.upstream.clone(),
        authority,
        path: r.path.clone(),
        refresh_seconds: seconds(r.refresh_seconds, "refresh_seconds", 1)?,
        unknown_kid_refresh_seconds: seconds(
            r.unknown_kid_refresh_seconds,
            "unknown_kid_refresh_seconds",
            0,
        )?,
        timeout_ms: r.timeout_ms,
        max_backoff_seconds: seconds(r.max_backoff_seconds, "max_backoff_seconds", 1)?,
    })
}

/// Compiles `remote_revocations` with the checks of `remote_jwks` (same fetch settings).
fn compile_revocations(
    r: &RemoteRevocationsConfig,
    field: &str,
) -> Result<crate::remote::RemoteJwks, ConfigError> {
    compile_remote(
        &RemoteJwksConfig {
            upstream: r.upstream.clone(),
            path: r.path.clone(),
            authority: r.authority.clone(),
            refresh_seconds: r.refresh_seconds,
            unknown_kid_refresh_seconds: 0,
            timeout_ms: r.timeout_ms,
            max_backoff_seconds: r.max_backoff_seconds,
            max_wait_seconds: 0,
        },
        field,
    )
}

fn claim_path(path: &str, field: &str) -> Result<Vec<String>, ConfigError> {
    let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
    if segments.iter().any(String::is_empty) {
        return Err(ConfigError::invalid(
            field,
            "a dotted claim path without empty segments",
        ));
    }
    Ok(segments)
}

fn compile_check(c: &ClaimCheckConfig, field: &str) -> Result<ClaimCheck, ConfigError> {
    let (list, kind) = match c {
        ClaimCheckConfig::AnyOf(l) => (l, "any_of"),
        ClaimCheckConfig::AllOf(l) => (l, "all_of"),
    };
    if list.is_empty() || list.iter().any(String::is_empty) {
        return Err(ConfigError::invalid(
            join(field, kind),
            "a non-empty list of non-empty values",
        ));
    }
    Ok(match c {
        ClaimCheckConfig::AnyOf(l) => ClaimCheck::AnyOf(l.clone()),
        ClaimCheckConfig::AllOf(l) => ClaimCheck::AllOf(l.clone()),
    })
}

fn compile_identity(c: &IdentityConfig) -> Result<Identity, ConfigError> {
    let claims = c
        .claims
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let f = format!("identity.claims[{i}]");
            Ok(ClaimHeader {
                claim: claim_path(&m.claim, &join(&f, "claim"))?,
                header: header_name(&m.header, &join(&f, "header"))?,
            })
        })
        .collect::<Result<Vec<_>, ConfigError>>()?;
    Ok(Identity {
        claims,
        roles_header: header_name(&c.roles_header, "identity.roles_header")?,
        scopes_header: header_name(&c.scopes_header, "identity.scopes_header")?,
        status_header: header_name(&c.status_header, "identity.status_header")?,
        method_header: header_name(&c.method_header, "identity.method_header")?,
        payload_header: c
            .payload_header
            .as_deref()
            .map(|h| header_name(h, "identity.payload_header"))
            .transpose()?,
        filter_state_key: match c.filter_state_key.as_deref() {
            Some(key)
                if key.is_empty()
                    || !key
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) =>
            {
                return Err(ConfigError::invalid(
                    "identity.filter_state_key",
                    "letters, digits, '.', '_' or '-'",
                ))
            }
            other => other.map(str::to_owned),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hs_jwks() -> Value {
        json!({"keys": [{"kty": "oct", "kid": "k", "k": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"}]})
    }

    fn with(mut config: Value, path: &[&str], value: Value) -> Value {
        let mut at = &mut config;
        for p in &path[..path.len() - 1] {
            at = match p.parse::<usize>() {
                Ok(i) => &mut at[i],
                Err(_) => &mut at[*p],
            };
        }
        at[path[path.len() - 1]] = value;
        config
    }

    fn base() -> Value {
        json!({
            "providers": {"main": {"algorithms": ["HS256"], "jwks": hs_jwks()}},
            "rules": [{"match": {"path": {"prefix": "/"}}, "requires": {"provider": "main"}}]
        })
    }

    fn refused(config: Value) -> ConfigError {
        Settings::from_json(config.to_string().as_bytes()).unwrap_err()
    }

    #[test]
    fn fetch_periods_say_their_range_not_0_or_more() {
        for value in [json!(0), json!(-1)] {
            let cfg = json!({"providers": {"p": {"algorithms": ["RS256"],
                "remote_jwks": {"upstream": "idp", "refresh_seconds": value}}}});
            let err = Settings::from_json(cfg.to_string().as_bytes())
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("providers.p.remote_jwks.refresh_seconds: "),
                "{err}"
            );
            assert!(!err.contains("0 or more"), "{err}");
        }
    }

    #[test]
    fn defaults() {
        let s = Settings::from_json(base().to_string().as_bytes()).unwrap();
        let p = &s.providers[0];
        assert_eq!(p.validator.clock_skew, 60);
        assert!(p.validator.require_exp);
        assert_eq!(p.validator.max_token_bytes, 8192);
        assert!(!p.forward);
        assert_eq!(
            p.sources,
            vec![TokenSource::Header {
                name: "authorization".into(),
                prefix: "Bearer ".into()
            }]
        );
        assert_eq!(p.roles_claim, vec!["roles"]);
        assert_eq!(s.no_rule, NoRule::Deny);
        assert_eq!(s.identity.roles_header, identity::USER_ROLES);
        assert!(s.protected.is_protected("x_user_id"));
        assert!(s.protected.is_protected("X-Api-Key-Id"));
        assert_eq!(s.cache_entries, 1024);
        assert_eq!(s.crypto, CryptoMode::Auto);
    }

    #[test]
    fn refusals_name_the_field() {
        let cases = [
            (
                with(base(), &["providers", "main", "issuer_"], json!("x")),
                "providers.main.issuer_",
            ),
            (
                with(
                    base(),
                    &["providers", "main", "algorithms"],
                    json!(["none"]),
                ),
                "providers.main.algorithms[0]",
            ),
            (
                with(
                    base(),
                    &["providers", "main", "algorithms"],
                    json!(["HS256", "RS256"]),
                ),
                "providers.main.algorithms[1]",
            ),
            (
                with(base(), &["providers", "main", "algorithms"], json!([])),
                "providers.main.algorithms",
            ),
            (
                with(
                    base(),
                    &["providers", "main", "jwks"],
                    json!({"keys": [{"kty": "oct", "k": "AA"}]}),
                ),
                "providers.main.jwks.keys[0].k",
            ),
            (
                with(
                    base(),
                    &["providers", "main", "from"],
                    json!([{"header": {"name": "bad name"}}]),
                ),
                "providers.main.from[0].header.name",
            ),
            (
                with(
                    base(),
                    &["providers", "main", "from"],
                    json!([{"cookie": "a b"}]),
                ),
                "providers.main.from[0].cookie",
            ),
            (
                with(
                    base(),
                    &["providers", "main", "from"],
                    json!([{"query": ""}]),
                ),
                "providers.main.from[0].query",
            ),
            (
                with(
                    base(),
                    &["providers", "main", "from"],
                    json!([{"path": "x"}]),
                ),
                "providers.main.from[0]",
            ),
            (
                with(base(), &["providers", "main", "roles_claim"], json!("a..b")),
                "providers.main.roles_claim",
            ),
            (
                with(base(), &["providers", "main", "max_token_bytes"], json!(0)),
                "providers.main.max_token_bytes",
            ),
            (
                with(
                    base(),
                    &["rules", "0", "requires"],
                    json!({"provider": "nope"}),
                ),
                "rules[0].requires.provider",
            ),
            (
                with(
                    base(),
                    &["rules", "0", "requires"],
                    json!({"any_of": ["main", "x"]}),
                ),
                "rules[0].requires.any_of[1]",
            ),
            (
                with(base(), &["rules", "0", "requires"], json!({"all_of": []})),
                "rules[0].requires.all_of",
            ),
            (
                with(base(), &["rules", "0", "requires"], json!("everyone")),
                "rules[0].requires",
            ),
            (
                with(
                    base(),
                    &["rules", "0", "match"],
                    json!({"path": {"regex": "("}}),
                ),
                "rules[0].match.path.regex",
            ),
            (
                with(base(), &["rules", "0", "roles"], json!({"any": ["a"]})),
                "rules[0].roles",
            ),
            (
                with(base(), &["rules", "0", "scopes"], json!({"all_of": []})),
                "rules[0].scopes.all_of",
            ),
            (
                with(
                    with(base(), &["rules", "0", "requires"], json!("anonymous")),
                    &["rules", "0", "roles"],
                    json!({"any_of": ["a"]}),
                ),
                "rules[0].roles",
            ),
            (with(base(), &["realm"], json!("a\"b")), "realm"),
            (with(base(), &["no_rule"], json!("maybe")), "no_rule"),
            (with(base(), &["crypto"], json!("fast")), "crypto"),
            (
                with(
                    base(),
                    &["identity", "claims"],
                    json!([{"claim": "sub", "header": "x user"}]),
                ),
                "identity.claims[0].header",
            ),
            (
                with(base(), &["identity", "also_strip"], json!(["ok", "x y"])),
                "identity.also_strip[1]",
            ),
            (
                with(
                    base(),
                    &["providers", "main", "remote_revocations"],
                    json!({"upstream": "r", "path": "revoked.json"}),
                ),
                "providers.main.remote_revocations.path",
            ),
            (
                with(
                    base(),
                    &["providers", "main", "remote_revocations"],
                    json!({"upstream": "r", "refresh_seconds": 0}),
                ),
                "providers.main.remote_revocations.refresh_seconds",
            ),
            (
                with(
                    base(),
                    &["providers", "main", "remote_revocations"],
                    json!({"upstream": "https://idp.example.com/revoked.json"}),
                ),
                "providers.main.remote_revocations.upstream",
            ),
            (json!({"providers": {}}), "providers"),
        ];
        for (config, field) in cases {
            let err = refused(config.clone());
            assert_eq!(err.field, field, "{config}: {err}");
        }
    }

    #[test]
    fn rules_compile_in_order() {
        let config = json!({
            "providers": {
                "a": {"algorithms": ["HS256"], "jwks": hs_jwks()},
                "b": {"algorithms": ["HS256"], "jwks": hs_jwks(), "from": [{"cookie": "jwt"}, {"query": "t"}]}
            },
            "rules": [
                {"match": {"path": {"exact": "/health"}}, "requires": "anonymous"},
                {"match": {"path": {"prefix": "/both"}}, "requires": {"all_of": ["a", "b"]}},
                {"match": {"methods": ["GET"]}, "requires": {"allow_missing": ["b"]}},
                {"requires": {"any_of": ["b", "a"]}, "roles": {"all_of": ["x"]}, "scopes": {"any_of": ["s"]}}
            ],
            "no_rule": "allow"
        });
        let s = Settings::from_json(config.to_string().as_bytes()).unwrap();
        assert_eq!(s.rules[0].requires, Requirement::Anonymous);
        assert_eq!(s.rules[1].requires, Requirement::AllOf(vec![0, 1]));
        assert_eq!(s.rules[2].requires, Requirement::AllowMissing(vec![1]));
        assert_eq!(s.rules[3].requires, Requirement::AnyOf(vec![1, 0]));
        assert_eq!(s.rules[3].roles, Some(ClaimCheck::AllOf(vec!["x".into()])));
        assert_eq!(s.no_rule, NoRule::Allow);
        assert_eq!(s.providers[1].sources.len(), 2);
    }
}

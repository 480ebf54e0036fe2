//! Reads the configuration JSON into [`Config`] by hand, naming the field of a refusal.
//!
//! serde's derived readers cost about 100 KiB of this plugin's wasm (a visitor per config
//! type, each with serde_json's parser inlined). Here the text is parsed once into a value by
//! [`gateway_core::json_read::parse`] and each config type has a short reader over it. The
//! derived `Deserialize` of the config types stays: the JSON Schema is made from those types,
//! and the tests below check that this reader accepts and refuses exactly what it does. The
//! defaults are the very functions the serde attributes name.

use crate::api_keys::{ApiKeyConfig, ApiKeysConfig};
use crate::config::{
    self, CacheConfig, ClaimCheckConfig, ClaimHeaderConfig, Config, CryptoMode, HeaderSourceConfig,
    IdentityConfig, KongVersion, NoRule, ProviderConfig, RemoteJwksConfig, RemoteRevocationsConfig,
    RequirementConfig, RuleConfig, TokenSourceConfig,
};
use gateway_core::error::ConfigError;
use gateway_core::json_read::{
    as_choice, as_name, as_string, as_strings, content, index, no_content, parse, Object,
};
use gateway_core::matching::RequestMatchConfig;
use serde_json::Value;
use std::collections::BTreeMap;

/// Parses and reads configuration bytes (empty or whitespace-only: `{}`).
pub fn read(bytes: &[u8]) -> Result<Config, ConfigError> {
    config(&parse(bytes)?)
}

fn config(value: &Value) -> Result<Config, ConfigError> {
    let o = Object::new(value, "")?;
    o.known(&[
        "providers",
        "rules",
        "no_rule",
        "realm",
        "cors_preflight_bypass",
        "identity",
        "cache",
        "crypto",
        "kong_version",
        "stat_prefix",
    ])?;
    let listed = Object::new(o.required("providers")?, "providers")?;
    // Inserted one by one: collecting into a BTreeMap sorts first, a sort routine in the wasm
    // for nothing (the names come sorted already).
    let mut providers = BTreeMap::new();
    for (name, p) in listed.entries() {
        providers.insert(name.clone(), provider(p, &listed.at(name))?);
    }
    let rules = o
        .array("rules")?
        .iter()
        .enumerate()
        .map(|(i, r)| rule(r, &index("rules", i)))
        .collect::<Result<_, _>>()?;
    Ok(Config {
        providers,
        rules,
        no_rule: match o.get("no_rule") {
            None => NoRule::default(),
            Some(v) => [NoRule::Deny, NoRule::Allow][as_name(v, "no_rule", &["deny", "allow"])?],
        },
        realm: o.string_or("realm", &config::default_realm())?,
        cors_preflight_bypass: o.bool_or("cors_preflight_bypass", false)?,
        identity: match o.object("identity")? {
            None => IdentityConfig::default(),
            Some(i) => identity(&i)?,
        },
        cache: match o.object("cache")? {
            None => CacheConfig::default(),
            Some(c) => {
                c.known(&["max_entries"])?;
                CacheConfig {
                    max_entries: c.usize_or("max_entries", CacheConfig::default().max_entries)?,
                }
            }
        },
        crypto: match o.get("crypto") {
            None => CryptoMode::default(),
            Some(v) => [CryptoMode::Auto, CryptoMode::PureRust]
                [as_name(v, "crypto", &["auto", "pure_rust"])?],
        },
        stat_prefix: o
            .get("stat_prefix")
            .map(|v| as_string(v, "stat_prefix"))
            .transpose()?,
        kong_version: match o.get("kong_version") {
            None => None,
            Some(v) => Some(
                [KongVersion::V3_8, KongVersion::V3_9]
                    [as_name(v, "kong_version", &["3.8", "3.9"])?],
            ),
        },
    })
}

fn provider(value: &Value, path: &str) -> Result<ProviderConfig, ConfigError> {
    let o = Object::new(value, path)?;
    o.known(&[
        "issuer",
        "audiences",
        "algorithms",
        "api_keys",
        "jwks",
        "remote_jwks",
        "from",
        "forward",
        "clock_skew_seconds",
        "require_exp",
        "max_lifetime_seconds",
        "max_token_bytes",
        "roles_claim",
        "revoked_jti",
        "revoked_sid",
        "remote_revocations",
    ])?;
    let from = match o.get("from") {
        None => config::default_sources(),
        Some(_) => o
            .array("from")?
            .iter()
            .enumerate()
            .map(|(i, s)| source(s, &index(&o.at("from"), i)))
            .collect::<Result<_, _>>()?,
    };
    Ok(ProviderConfig {
        issuer: o.opt_string("issuer")?,
        audiences: o.strings("audiences")?,
        algorithms: o.strings("algorithms")?,
        api_keys: o
            .opt_object("api_keys")?
            .map(|a| api_keys(&a))
            .transpose()?,
        jwks: o.optional("jwks").cloned(),
        remote_jwks: o
            .opt_object("remote_jwks")?
            .map(|r| remote_jwks(&r))
            .transpose()?,
        from,
        forward: o.bool_or("forward", false)?,
        clock_skew_seconds: o.u64_or("clock_skew_seconds", config::default_skew())?,
        require_exp: o.bool_or("require_exp", config::yes())?,
        max_lifetime_seconds: o.opt_u64("max_lifetime_seconds")?,
        max_token_bytes: o.usize_or("max_token_bytes", config::default_max_token())?,
        roles_claim: o.string_or("roles_claim", &config::default_roles_claim())?,
        revoked_jti: o.strings("revoked_jti")?,
        revoked_sid: o.strings("revoked_sid")?,
        remote_revocations: o
            .opt_object("remote_revocations")?
            .map(|r| remote_revocations(&r))
            .transpose()?,
    })
}

fn remote_jwks(o: &Object<'_>) -> Result<RemoteJwksConfig, ConfigError> {
    o.known(&[
        "upstream",
        "path",
        "authority",
        "refresh_seconds",
        "unknown_kid_refresh_seconds",
        "timeout_ms",
        "max_backoff_seconds",
        "max_wait_seconds",
    ])?;
    Ok(RemoteJwksConfig {
        upstream: o.req_string("upstream")?,
        path: o.string_or("path", &config::default_jwks_path())?,
        authority: o.opt_string("authority")?,
        refresh_seconds: o.u64_or("refresh_seconds", config::default_refresh())?,
        unknown_kid_refresh_seconds: o
            .u64_or("unknown_kid_refresh_seconds", config::default_kid_refresh())?,
        timeout_ms: o.u64_or("timeout_ms", config::default_timeout())?,
        max_backoff_seconds: o.u64_or("max_backoff_seconds", config::default_refresh())?,
        max_wait_seconds: o.u64_or("max_wait_seconds", config::default_max_wait())?,
    })
}

fn remote_revocations(o: &Object<'_>) -> Result<RemoteRevocationsConfig, ConfigError> {
    o.known(&[
        "upstream",
        "path",
        "authority",
        "refresh_seconds",
        "timeout_ms",
        "max_backoff_seconds",
    ])?;
    Ok(RemoteRevocationsConfig {
        upstream: o.req_string("upstream")?,
        path: o.string_or("path", &config::default_revocations_path())?,
        authority: o.opt_string("authority")?,
        refresh_seconds: o.u64_or("refresh_seconds", config::default_revocations_refresh())?,
        timeout_ms: o.u64_or("timeout_ms", config::default_timeout())?,
        max_backoff_seconds: o.u64_or("max_backoff_seconds", config::default_refresh())?,
    })
}

fn api_keys(o: &Object<'_>) -> Result<ApiKeysConfig, ConfigError> {
    o.known(&["header", "keys"])?;
    let keys = gateway_core::json_read::as_array(o.required("keys")?, &o.at("keys"))?
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let k = Object::new(k, &index(&o.at("keys"), i))?;
            k.known(&["id", "sha256", "principal", "roles", "scopes"])?;
            Ok(ApiKeyConfig {
                id: k.req_string("id")?,
                sha256: k.req_string("sha256")?,
                principal: k.opt_string("principal")?,
                roles: k.strings("roles")?,
                scopes: k.strings("scopes")?,
            })
        })
        .collect::<Result<_, ConfigError>>()?;
    Ok(ApiKeysConfig {
        header: o.string_or("header", &crate::api_keys::default_header())?,
        keys,
    })
}

fn source(value: &Value, path: &str) -> Result<TokenSourceConfig, ConfigError> {
    const NAMES: [&str; 3] = ["header", "query", "cookie"];
    let (at, inner) = as_choice(value, path, &NAMES)?;
    let name = NAMES[at];
    let inner = content(inner, path, name)?;
    let inner_path = gateway_core::error::join(path, name);
    Ok(match at {
        0 => {
            let h = Object::new(inner, &inner_path)?;
            h.known(&["name", "prefix"])?;
            TokenSourceConfig::Header(HeaderSourceConfig {
                name: h.req_string("name")?,
                prefix: h.string_or("prefix", "")?,
            })
        }
        1 => TokenSourceConfig::Query(as_string(inner, &inner_path)?),
        _ => TokenSourceConfig::Cookie(as_string(inner, &inner_path)?),
    })
}

fn rule(value: &Value, path: &str) -> Result<RuleConfig, ConfigError> {
    let o = Object::new(value, path)?;
    o.known(&["match", "requires", "roles", "scopes"])?;
    let check = |key: &str| {
        o.optional(key)
            .map(|v| claim_check(v, &o.at(key)))
            .transpose()
    };
    Ok(RuleConfig {
        matcher: match o.get("match") {
            None => RequestMatchConfig::default(),
            Some(m) => RequestMatchConfig::read(m, &o.at("match"))?,
        },
        requires: requirement(o.required("requires")?, &o.at("requires"))?,
        roles: check("roles")?,
        scopes: check("scopes")?,
    })
}

fn requirement(value: &Value, path: &str) -> Result<RequirementConfig, ConfigError> {
    const NAMES: [&str; 5] = ["anonymous", "provider", "any_of", "all_of", "allow_missing"];
    let (at, inner) = as_choice(value, path, &NAMES)?;
    let name = NAMES[at];
    if at == 0 {
        no_content(inner, path, name)?;
        return Ok(RequirementConfig::Anonymous);
    }
    let inner = content(inner, path, name)?;
    let inner_path = gateway_core::error::join(path, name);
    Ok(match at {
        1 => RequirementConfig::Provider(as_string(inner, &inner_path)?),
        2 => RequirementConfig::AnyOf(as_strings(inner, &inner_path)?),
        3 => RequirementConfig::AllOf(as_strings(inner, &inner_path)?),
        _ => RequirementConfig::AllowMissing(as_strings(inner, &inner_path)?),
    })
}

fn claim_check(value: &Value, path: &str) -> Result<ClaimCheckConfig, ConfigError> {
    const NAMES: [&str; 2] = ["any_of", "all_of"];
    let (at, inner) = as_choice(value, path, &NAMES)?;
    let name = NAMES[at];
    let list = as_strings(
        content(inner, path, name)?,
        &gateway_core::error::join(path, name),
    )?;
    Ok(if at == 0 {
        ClaimCheckConfig::AnyOf(list)
    } else {
        ClaimCheckConfig::AllOf(list)
    })
}

fn identity(o: &Object<'_>) -> Result<IdentityConfig, ConfigError> {
    o.known(&[
        "claims",
        "roles_header",
        "scopes_header",
        "status_header",
        "method_header",
        "also_strip",
        "payload_header",
        "filter_state_key",
    ])?;
    let defaults = IdentityConfig::default();
    let claims = match o.get("claims") {
        None => defaults.claims,
        Some(_) => o
            .array("claims")?
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let c = Object::new(c, &index(&o.at("claims"), i))?;
                c.known(&["claim", "header"])?;
                Ok(ClaimHeaderConfig {
                    claim: c.req_string("claim")?,
                    header: c.req_string("header")?,
                })
            })
            .collect::<Result<_, ConfigError>>()?,
    };
    Ok(IdentityConfig {
        claims,
        roles_header: o.string_or("roles_header", &defaults.roles_header)?,
        scopes_header: o.string_or("scopes_header", &defaults.scopes_header)?,
        status_header: o.string_or("status_header", &defaults.status_header)?,
        method_header: o.string_or("method_header", &defaults.method_header)?,
        also_strip: o.strings("also_strip")?,
        payload_header: o.opt_string("payload_header")?,
        filter_state_key: o.opt_string("filter_state_key")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What the derived `Deserialize` (the type the schema is made from) says of `value`.
    fn derived(value: &Value) -> Result<String, String> {
        serde_json::from_value::<Config>(value.clone())
            .map(|c| format!("{c:?}"))
            .map_err(|e| e.to_string())
    }

    fn by_hand(value: &Value) -> Result<String, String> {
        read(value.to_string().as_bytes())
            .map(|c| format!("{c:?}"))
            .map_err(|e| e.to_string())
    }

    fn full() -> Value {
        json!({
            "providers": {
                "main": {
                    "issuer": "https://idp", "audiences": ["api"], "algorithms": ["RS256"],
                    "remote_jwks": {"upstream": "idp", "path": "/k", "authority": "idp.local",
                        "refresh_seconds": 60, "unknown_kid_refresh_seconds": 5, "timeout_ms": 900,
                        "max_backoff_seconds": 100, "max_wait_seconds": 2},
                    "from": [{"header": {"name": "x-token", "prefix": "Token "}},
                             {"header": {"name": "authorization"}},
                             {"query": "access_token"}, {"cookie": "jwt"}],
                    "forward": true, "clock_skew_seconds": 10, "require_exp": false,
                    "max_lifetime_seconds": 3600, "max_token_bytes": 4096,
                    "roles_claim": "realm_access.roles", "revoked_jti": ["j1"], "revoked_sid": ["s1"],
                    "remote_revocations": {"upstream": "rev", "path": "/r", "authority": "a",
                        "refresh_seconds": 30, "timeout_ms": 100, "max_backoff_seconds": 20}
                },
                "inline": {"algorithms": ["HS256"], "jwks": {"keys": []}, "issuer": null},
                "keys": {"api_keys": {"header": "x-key", "keys": [
                    {"id": "a", "sha256": "00", "principal": "p", "roles": ["r"], "scopes": ["s"]},
                    {"id": "b", "sha256": "11"}]}}
            },
            "rules": [
                {"match": {"path": {"exact": "/h"}, "methods": ["GET"]}, "requires": "anonymous"},
                {"match": {"path": {"prefix": "/p"}}, "requires": {"anonymous": null}},
                {"match": {"path": {"regex": "/r.*"}}, "requires": {"provider": "main"},
                 "roles": {"any_of": ["a"]}, "scopes": {"all_of": ["s"]}},
                {"requires": {"any_of": ["main", "inline"]}, "roles": null},
                {"requires": {"all_of": ["main"]}},
                {"match": {}, "requires": {"allow_missing": ["main"]}}
            ],
            "no_rule": "allow", "realm": "r", "cors_preflight_bypass": true,
            "identity": {"claims": [{"claim": "sub", "header": "x-sub"}], "roles_header": "x-r",
                "scopes_header": "x-s", "status_header": "x-st", "method_header": "x-m",
                "also_strip": ["x-a"], "payload_header": "x-p", "filter_state_key": "k"},
            "cache": {"max_entries": 7},
            "crypto": "pure_rust"
        })
    }

    /// Every place of `value` (object members and array items), as a path of keys/indexes.
    fn places(value: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    at.push(k.clone());
                    out.push(at.clone());
                    places(v, at, out);
                    at.pop();
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    at.push(i.to_string());
                    out.push(at.clone());
                    places(v, at, out);
                    at.pop();
                }
            }
            _ => {}
        }
    }

    fn slot<'a>(value: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
        let mut at = value;
        for p in path {
            at = match at {
                Value::Object(map) => map.get_mut(p)?,
                Value::Array(items) => items.get_mut(p.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(at)
    }

    /// Stand-ins for any value: each type, edge numbers, and shapes of the config's choices.
    fn replacements() -> Vec<Value> {
        vec![
            json!(null),
            json!(true),
            json!(0),
            json!(-1),
            json!(1.5),
            json!(5_000_000_000u64),
            json!(""),
            json!("anonymous"),
            json!("allow"),
            json!("pure_rust"),
            json!("x"),
            json!([]),
            json!(["a"]),
            json!([1]),
            json!({}),
            json!({"any_of": ["a"]}),
            json!({"provider": "main"}),
            json!({"provider": ["main"]}),
            json!({"anonymous": 1}),
            json!({"all_of": "a"}),
            json!({"query": "t"}),
            json!({"header": {"name": "h"}}),
            json!({"name": "h"}),
            json!({"upstream": "u"}),
            json!({"keys": []}),
            json!({"claim": "c", "header": "h"}),
            json!({"exact": "/"}),
        ]
    }

    #[test]
    fn reads_every_field_as_the_derived_reader_does() {
        let value = full();
        let hand = by_hand(&value);
        assert!(hand.is_ok(), "{hand:?}");
        assert_eq!(hand, derived(&value));
    }

    #[test]
    fn accepts_and_refuses_what_the_derived_reader_does() {
        // Each place of a full config, replaced by each stand-in, removed, or given an unknown
        // sibling: both readers must agree, and agree on the result when they accept.
        let base = full();
        let mut all = Vec::new();
        places(&base, &mut Vec::new(), &mut all);
        let mut checked = 0;
        let mut accepted = 0;
        let mut struct_as_array = 0;
        for path in &all {
            let mut variants = Vec::new();
            for r in replacements() {
                let mut v = base.clone();
                if let Some(s) = slot(&mut v, path) {
                    *s = r;
                }
                variants.push(v);
            }
            let (parent, last) = path.split_at(path.len() - 1);
            let mut removed = base.clone();
            if let Some(Value::Object(map)) = slot(&mut removed, parent) {
                map.remove(&last[0]);
            }
            variants.push(removed);
            let mut extra = base.clone();
            if let Some(Value::Object(map)) = slot(&mut extra, parent) {
                map.insert("no_such_field".to_owned(), json!(1));
            }
            variants.push(extra);
            for v in variants {
                let (hand, derived) = (by_hand(&v), derived(&v));
                // serde also reads a struct from an array of its fields in order
                // (`"cache": [7]`). The schema says object, and so does this reader.
                if derived.is_ok()
                    && hand
                        .as_ref()
                        .is_err_and(|e| e.ends_with("expected an object, found an array"))
                {
                    struct_as_array += 1;
                    continue;
                }
                assert_eq!(
                    hand.is_ok(),
                    derived.is_ok(),
                    "{v}\nhand: {hand:?}\nderived: {derived:?}"
                );
                if hand.is_ok() {
                    assert_eq!(hand, derived, "{v}");
                    accepted += 1;
                }
                checked += 1;
            }
        }
        assert!(checked > 2000, "{checked}");
        assert!(accepted > 200, "{accepted}");
        assert!(struct_as_array < checked / 20, "{struct_as_array}");
        // The root itself, and the smallest config.
        for v in [json!([]), json!({}), json!({"providers": {}}), json!(null)] {
            assert_eq!(by_hand(&v).is_ok(), derived(&v).is_ok(), "{v}");
        }
    }

    #[test]
    fn refusals_name_the_field() {
        let cases = [
            (
                json!({"providers": {"a": {"upstrem": 1}}}),
                "providers.a.upstrem",
            ),
            (
                json!({"providers": {"a": {"remote_jwks": {"path": "/k"}}}}),
                "providers.a.remote_jwks.upstream",
            ),
            (
                json!({"providers": {"a": {"from": [{}, {"query": 1}]}}}),
                "providers.a.from[0]",
            ),
            (
                json!({"providers": {"a": {"from": [{"query": 1}]}}}),
                "providers.a.from[0].query",
            ),
            (
                json!({"providers": {"a": {"from": ["query"]}}}),
                "providers.a.from[0]",
            ),
            (
                json!({"providers": {"a": {"audiences": ["x", 2]}}}),
                "providers.a.audiences[1]",
            ),
            (
                json!({"providers": {}, "rules": [{"requires": "nobody"}]}),
                "rules[0].requires",
            ),
            (
                json!({"providers": {}, "rules": [{"requires": {"anonymous": []}}]}),
                "rules[0].requires.anonymous",
            ),
            (json!({"providers": {}, "rules": [{}]}), "rules[0].requires"),
            (
                json!({"providers": {}, "rules": [{"requires": "anonymous", "match": {"path": {"regx": "a"}}}]}),
                "rules[0].match.path.regx",
            ),
            (json!({"providers": {}, "no_rule": "maybe"}), "no_rule"),
            (
                json!({"providers": {}, "cache": {"max_entries": -1}}),
                "cache.max_entries",
            ),
            (
                json!({"providers": {}, "identity": {"claims": [{"claim": "a"}]}}),
                "identity.claims[0].header",
            ),
            (
                json!({"providers": {"k": {"api_keys": {"keys": [{"id": "a"}]}}}}),
                "providers.k.api_keys.keys[0].sha256",
            ),
            (json!({"rules": []}), "providers"),
            (json!({"a\"b": 1}), "a\"b"),
        ];
        for (value, field) in cases {
            let err = read(value.to_string().as_bytes()).unwrap_err();
            assert_eq!(err.field, field, "{value}: {err}");
        }
        let err = read(br#"{"providers": {"a": {}, "a": {}}}"#).unwrap_err();
        assert_eq!(err.field, "providers.a");
    }
}

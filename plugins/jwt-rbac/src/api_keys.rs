//! API keys: a second credential type. Keys are configured only as SHA-256 digests, each with
//! a principal, roles and scopes; a presented key is hashed and compared in constant time with
//! every configured digest (no early exit).

use crate::validate::Verified;
use gateway_core::error::ConfigError;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// `providers.<name>.api_keys` as written.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ApiKeysConfig {
    /// Header carrying the key. Default `x-api-key`.
    #[serde(default = "default_header")]
    pub header: String,
    /// The keys.
    pub keys: Vec<ApiKeyConfig>,
}

pub(crate) fn default_header() -> String {
    "x-api-key".to_owned()
}

/// One key.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Identifier injected as `x-api-key-id` (never the key itself).
    pub id: String,
    /// SHA-256 of the key, 64 hex digits.
    pub sha256: String,
    /// Principal, injected as the subject. Default: `id`.
    #[serde(default)]
    pub principal: Option<String>,
    /// Roles of the principal.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Scopes of the principal.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// Compiled keys.
#[derive(Debug, Clone)]
pub struct ApiKeys {
    /// Header name, lowercase.
    pub header: String,
    keys: Vec<([u8; 32], Map<String, Value>)>,
}

fn hex32(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let digit = |c: u8| char::from(c).to_digit(16);
        let value = digit(pair[0])? * 16 + digit(pair[1])?;
        out[i] = u8::try_from(value).ok()?;
    }
    Some(out)
}

impl ApiKeys {
    /// Validates and compiles `config`; `field` names it in errors.
    pub fn try_new(config: &ApiKeysConfig, field: &str) -> Result<Self, ConfigError> {
        let header =
            gateway_core::headers::header_name(&config.header, &format!("{field}.header"))?;
        if config.keys.is_empty() {
            return Err(ConfigError::invalid(
                format!("{field}.keys"),
                "at least one key",
            ));
        }
        let mut keys = Vec::with_capacity(config.keys.len());
        for (i, k) in config.keys.iter().enumerate() {
            let f = format!("{field}.keys[{i}]");
            let digest = hex32(&k.sha256).ok_or_else(|| {
                ConfigError::invalid(format!("{f}.sha256"), "64 hex digits (sha-256 of the key)")
            })?;
            if k.id.is_empty() || !gateway_core::headers::is_valid_value(k.id.as_bytes()) {
                return Err(ConfigError::invalid(
                    format!("{f}.id"),
                    "a non-empty header-safe id",
                ));
            }
            let principal = k.principal.clone().unwrap_or_else(|| k.id.clone());
            let claims = json!({
                "sub": principal,
                "api_key_id": k.id,
                "roles": k.roles,
                "scope": k.scopes.join(" "),
            });
            let Value::Object(claims) = claims else {
                return Err(ConfigError::invalid(
                    f,
                    "internal: claims are not an object",
                ));
            };
            keys.push((digest, claims));
        }
        Ok(Self { header, keys })
    }

    /// The principal of `key`, if it is one of the configured keys.
    pub fn check(&self, key: &[u8]) -> Option<Verified> {
        let digest: [u8; 32] = Sha256::digest(key).into();
        let mut found = None;
        for (candidate, claims) in &self.keys {
            // Every digest is compared, whatever matched before.
            if bool::from(candidate.ct_eq(&digest)) {
                found = Some(claims);
            }
        }
        found.map(|claims| Verified {
            claims: claims.clone(),
            exp: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> ApiKeys {
        let digest: String = Sha256::digest(b"s3cret-key")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let config: ApiKeysConfig = serde_json::from_value(json!({
            "keys": [{"id": "partner-a", "sha256": digest, "roles": ["partner"], "scopes": ["orders:read"]}]
        }))
        .unwrap();
        ApiKeys::try_new(&config, "providers.p.api_keys").unwrap()
    }

    #[test]
    fn matching_key_gives_its_principal() {
        let k = keys();
        assert_eq!(k.header, "x-api-key");
        let v = k.check(b"s3cret-key").unwrap();
        assert_eq!(v.claims["sub"], "partner-a");
        assert_eq!(v.claims["roles"], json!(["partner"]));
        assert_eq!(v.claims["scope"], "orders:read");
        assert!(k.check(b"s3cret-kez").is_none());
        assert!(k.check(b"").is_none());
    }

    #[test]
    fn bad_digest_is_refused_with_its_field() {
        let config: ApiKeysConfig =
            serde_json::from_value(json!({"keys": [{"id": "a", "sha256": "abc"}]})).unwrap();
        let err = ApiKeys::try_new(&config, "providers.p.api_keys").unwrap_err();
        assert_eq!(err.field, "providers.p.api_keys.keys[0].sha256");
    }
}

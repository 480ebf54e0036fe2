//! JSON Web Keys (RFC 7517): a JWKS parsed into ready verifying keys.
//!
//! A key says which algorithms it verifies (its `alg` if given, else every algorithm of its
//! family). The verifier is always chosen by the key, never by the token header, so an HS256
//! token can never be checked against an RSA public key used as an HMAC secret.

use crate::alg::{Alg, KeyFamily};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use gateway_core::error::ConfigError;
use serde_json::{Map, Value};

/// Most keys one JWKS may hold.
pub const MAX_KEYS: usize = 64;
/// Smallest accepted RSA modulus, in bits (RFC 7518 section 3.3).
pub const MIN_RSA_BITS: usize = 2048;
/// Smallest accepted HMAC secret, in bytes (RFC 7518 section 3.2 for HS256).
pub const MIN_HMAC_BYTES: usize = 32;

/// Verifying material of one key.
#[derive(Debug, Clone)]
pub enum KeyMaterial {
    /// HMAC secret.
    Hmac(Vec<u8>),
    /// RSA public key, ready for Montgomery exponentiation.
    Rsa(Box<crate::fast_rsa::FastRsa>),
    /// P-256 public key.
    P256(Box<p256::ecdsa::VerifyingKey>),
    /// P-384 public key.
    #[cfg(feature = "es384")]
    P384(Box<p384::ecdsa::VerifyingKey>),
    /// P-384 public key in a build without pure-Rust P-384 (cargo feature `es384`): only the
    /// host checks its signatures (Envoy's `verify_signature`, from [`Key::spki_der`]).
    /// Configuring ES384 where the host cannot is refused at load
    /// ([`crate::host_crypto::check_host_only`]).
    #[cfg(not(feature = "es384"))]
    P384HostOnly,
    /// Ed25519 public key.
    Ed25519(ed25519_compact::PublicKey),
}

/// One key of a provider.
#[derive(Debug, Clone)]
pub struct Key {
    /// `kid`, if the JWK has one.
    pub kid: Option<String>,
    /// `alg`, if the JWK pins one.
    pub alg: Option<Alg>,
    /// The key itself.
    pub material: KeyMaterial,
    /// SubjectPublicKeyInfo DER (RSA and EC keys), for host crypto.
    pub spki_der: Vec<u8>,
}

impl Key {
    /// The family of the key.
    pub fn family(&self) -> KeyFamily {
        match self.material {
            KeyMaterial::Hmac(_) => KeyFamily::Hmac,
            KeyMaterial::Rsa(..) => KeyFamily::Rsa,
            KeyMaterial::P256(_) => KeyFamily::P256,
            #[cfg(feature = "es384")]
            KeyMaterial::P384(_) => KeyFamily::P384,
            #[cfg(not(feature = "es384"))]
            KeyMaterial::P384HostOnly => KeyFamily::P384,
            KeyMaterial::Ed25519(_) => KeyFamily::Ed25519,
        }
    }

    /// True if this key verifies `alg`.
    pub fn accepts(&self, alg: Alg) -> bool {
        alg.family() == self.family() && self.alg.is_none_or(|a| a == alg)
    }
}

/// Parses a JWKS: an object `{"keys": [...]}` or a string holding that JSON.
pub fn parse_jwks(jwks: &Value, field: &str) -> Result<Vec<Key>, ConfigError> {
    let parsed;
    let jwks = match jwks {
        Value::String(text) => {
            if text.starts_with("http://") || text.starts_with("https://") {
                return Err(ConfigError::invalid(
                    field,
                    "a url: give the jwks document itself, or fetch it with remote_jwks \
                     (upstream: the cluster, or host:port on kong; authority; path)",
                ));
            }
            parsed = serde_json::from_slice::<Value>(text.as_bytes())
                .map_err(|e| ConfigError::invalid(field, format!("not a jwks json: {e}")))?;
            &parsed
        }
        other => other,
    };
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| ConfigError::invalid(field, "a jwks needs a \"keys\" array"))?;
    if keys.is_empty() {
        return Err(ConfigError::invalid(field, "the jwks has no key"));
    }
    if keys.len() > MAX_KEYS {
        return Err(ConfigError::invalid(
            field,
            format!("at most {MAX_KEYS} keys per jwks"),
        ));
    }
    keys.iter()
        .enumerate()
        .map(|(i, jwk)| parse_jwk(jwk, &format!("{field}.keys[{i}]")))
        .collect()
}

#[cfg(test)]
mod url_hint_tests {
    use super::*;

    #[test]
    fn a_url_in_jwks_points_to_remote_jwks() {
        let err = parse_jwks(
            &Value::String("https://sso.example.com/.well-known/jwks.json".into()),
            "providers.sso.jwks",
        )
        .unwrap_err();
        assert_eq!(err.field, "providers.sso.jwks");
        assert!(
            err.to_string().contains("fetch it with remote_jwks"),
            "{err}"
        );
    }
}

/// Parses a fetched JWKS, keeping the keys this plugin can verify with and skipping the rest:
/// encryption keys (`use: enc`), unsupported key types, curves or algorithms, weak keys. An
/// identity provider's JWKS often carries such keys beside its signing keys (Keycloak publishes
/// an `RSA-OAEP` encryption key in every realm), and one of them must not make the whole
/// document unusable. Returns the usable keys and, for the log, one line per skipped key;
/// `None` if the document is not a JWKS or holds more than [`MAX_KEYS`].
/// (A JWKS in the config is parsed strictly by [`parse_jwks`]: a key it cannot use is refused,
/// naming the field.)
pub fn parse_jwks_usable(jwks: &Value) -> Option<(Vec<Key>, Vec<String>)> {
    let keys = jwks.get("keys")?.as_array()?;
    if keys.len() > MAX_KEYS {
        return None;
    }
    let mut usable = Vec::with_capacity(keys.len());
    let mut skipped = Vec::new();
    for (i, jwk) in keys.iter().enumerate() {
        match parse_jwk(jwk, &format!("keys[{i}]")) {
            Ok(key) => usable.push(key),
            Err(err) => {
                let kid = jwk.get("kid").and_then(Value::as_str).unwrap_or("-");
                skipped.push(format!("kid {kid:?} ({err})"));
            }
        }
    }
    Some((usable, skipped))
}

fn parse_jwk(jwk: &Value, field: &str) -> Result<Key, ConfigError> {
    let jwk = jwk
        .as_object()
        .ok_or_else(|| ConfigError::invalid(field, "a jwk must be an object"))?;
    let kid = optional_str(jwk, "kid", field)?.map(str::to_owned);
    let alg = match optional_str(jwk, "alg", field)? {
        None => None,
        Some(name) => Some(Alg::from_name(name).ok_or_else(|| {
            ConfigError::invalid(
                format!("{field}.alg"),
                format!("unsupported algorithm {name:?}"),
            )
        })?),
    };
    if let Some(usage) = optional_str(jwk, "use", field)? {
        if usage != "sig" {
            return Err(ConfigError::invalid(
                format!("{field}.use"),
                "only signature keys (\"sig\") are accepted",
            ));
        }
    }
    let kty = optional_str(jwk, "kty", field)?
        .ok_or_else(|| ConfigError::invalid(field, "missing \"kty\""))?;
    let (material, spki_der) = match kty {
        "oct" => {
            let k = bytes(jwk, "k", field)?;
            let min = match alg {
                Some(Alg::HS384) => 48,
                Some(Alg::HS512) => 64,
                _ => MIN_HMAC_BYTES,
            };
            if k.len() < min {
                return Err(ConfigError::invalid(
                    format!("{field}.k"),
                    format!("hmac secret shorter than {min} bytes"),
                ));
            }
            (KeyMaterial::Hmac(k), Vec::new())
        }
        "RSA" => {
            let n = bytes(jwk, "n", field)?;
            let e = bytes(jwk, "e", field)?;
            let key = crate::fast_rsa::FastRsa::new(&n, &e).map_err(|err| {
                ConfigError::invalid(field, format!("invalid rsa key: {}", err.message()))
            })?;
            let bits = key.bits().div_ceil(8) * 8;
            if bits < MIN_RSA_BITS {
                return Err(ConfigError::invalid(
                    format!("{field}.n"),
                    format!("rsa modulus of {bits} bits: at least {MIN_RSA_BITS} required"),
                ));
            }
            let der = crate::der::rsa_spki(&n, &e);
            (KeyMaterial::Rsa(Box::new(key)), der)
        }
        "EC" => {
            let crv = optional_str(jwk, "crv", field)?.unwrap_or_default();
            let x = bytes(jwk, "x", field)?;
            let y = bytes(jwk, "y", field)?;
            let mut point = Vec::with_capacity(1 + x.len() + y.len());
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            let invalid = |_| ConfigError::invalid(field, "invalid ec public key");
            match crv {
                "P-256" if x.len() == 32 && y.len() == 32 => {
                    let key =
                        p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).map_err(invalid)?;
                    let der = crate::der::ec_spki(crate::der::Curve::P256, &point);
                    (KeyMaterial::P256(Box::new(key)), der)
                }
                #[cfg(not(feature = "es384"))]
                "P-384" if x.len() == 48 && y.len() == 48 => {
                    // No P-384 arithmetic in this build: the host checks that the point is on
                    // the curve when it verifies (BoringSSL refuses one that is not).
                    let der = crate::der::ec_spki(crate::der::Curve::P384, &point);
                    (KeyMaterial::P384HostOnly, der)
                }
                #[cfg(feature = "es384")]
                "P-384" if x.len() == 48 && y.len() == 48 => {
                    let key =
                        p384::ecdsa::VerifyingKey::from_sec1_bytes(&point).map_err(invalid)?;
                    let der = crate::der::ec_spki(crate::der::Curve::P384, &point);
                    (KeyMaterial::P384(Box::new(key)), der)
                }
                "P-384" => {
                    return Err(ConfigError::invalid(
                        field,
                        "x and y must have the curve's coordinate size",
                    ))
                }
                "P-256" => {
                    return Err(ConfigError::invalid(
                        field,
                        "x and y must have the curve's coordinate size",
                    ))
                }
                other => {
                    return Err(ConfigError::invalid(
                        format!("{field}.crv"),
                        format!("unsupported curve {other:?}: P-256 or P-384"),
                    ))
                }
            }
        }
        "OKP" => {
            let crv = optional_str(jwk, "crv", field)?.unwrap_or_default();
            if crv != "Ed25519" {
                return Err(ConfigError::invalid(
                    format!("{field}.crv"),
                    format!("unsupported curve {crv:?}: Ed25519"),
                ));
            }
            let x = bytes(jwk, "x", field)?;
            let key = ed25519_compact::PublicKey::from_slice(&x).map_err(|_| {
                ConfigError::invalid(format!("{field}.x"), "invalid ed25519 public key")
            })?;
            (KeyMaterial::Ed25519(key), Vec::new())
        }
        other => {
            return Err(ConfigError::invalid(
                format!("{field}.kty"),
                format!("unsupported key type {other:?}: oct, RSA, EC or OKP"),
            ))
        }
    };
    let key = Key {
        kid,
        alg,
        material,
        spki_der,
    };
    if let Some(alg) = alg {
        if !key.accepts(alg) {
            return Err(ConfigError::invalid(
                format!("{field}.alg"),
                format!("{} does not fit a {kty} key", alg.name()),
            ));
        }
    }
    Ok(key)
}

fn optional_str<'a>(
    jwk: &'a Map<String, Value>,
    name: &str,
    field: &str,
) -> Result<Option<&'a str>, ConfigError> {
    match jwk.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ConfigError::invalid(
            format!("{field}.{name}"),
            "must be a string",
        )),
    }
}

fn bytes(jwk: &Map<String, Value>, name: &str, field: &str) -> Result<Vec<u8>, ConfigError> {
    let text = optional_str(jwk, name, field)?
        .ok_or_else(|| ConfigError::invalid(field, format!("missing \"{name}\"")))?;
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| {
        ConfigError::invalid(
            format!("{field}.{name}"),
            "must be base64url without padding",
        )
    })?;
    if bytes.is_empty() {
        return Err(ConfigError::invalid(
            format!("{field}.{name}"),
            "must not be empty",
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(jwks: Value) -> ConfigError {
        parse_jwks(&jwks, "providers.a.jwks").unwrap_err()
    }

    #[test]
    fn hmac_and_ed25519_keys() {
        let k = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let keys = parse_jwks(
            &json!({"keys": [{"kty": "oct", "k": k, "kid": "h", "alg": "HS256"}]}),
            "f",
        )
        .unwrap();
        assert!(keys[0].accepts(Alg::HS256));
        assert!(!keys[0].accepts(Alg::HS512));
        assert!(!keys[0].accepts(Alg::RS256));
    }

    #[test]
    fn refusals_name_the_field() {
        assert_eq!(err(json!({})).field, "providers.a.jwks");
        assert_eq!(err(json!({"keys": []})).field, "providers.a.jwks");
        let short = URL_SAFE_NO_PAD.encode([7u8; 16]);
        assert_eq!(
            err(json!({"keys": [{"kty": "oct", "k": short}]})).field,
            "providers.a.jwks.keys[0].k"
        );
        assert_eq!(
            err(json!({"keys": [{"kty": "oct", "k": "a=="}]})).field,
            "providers.a.jwks.keys[0].k"
        );
        assert_eq!(
            err(json!({"keys": [{"kty": "XYZ"}]})).field,
            "providers.a.jwks.keys[0].kty"
        );
        assert_eq!(
            err(json!({"keys": [{"kty": "OKP", "crv": "X25519", "x": "AA"}]})).field,
            "providers.a.jwks.keys[0].crv"
        );
        assert_eq!(
            err(json!({"keys": [{"kty": "oct", "k": URL_SAFE_NO_PAD.encode([1u8; 32]), "use": "enc"}]}))
                .field,
            "providers.a.jwks.keys[0].use"
        );
        assert_eq!(
            err(json!({"keys": [{"kty": "oct", "k": URL_SAFE_NO_PAD.encode([1u8; 32]), "alg": "RS256"}]}))
                .field,
            "providers.a.jwks.keys[0].alg"
        );
    }

    #[test]
    fn jwks_as_a_string() {
        let k = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let text = json!({"keys": [{"kty": "oct", "k": k}]}).to_string();
        assert_eq!(parse_jwks(&Value::String(text), "f").unwrap().len(), 1);
    }
}

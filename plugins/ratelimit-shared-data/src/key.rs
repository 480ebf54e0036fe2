//! Counter keys: parts read from the request, joined into one printable string.
//!
//! The full key is `<rule>|<part>|<part>...`. Part values are escaped (`%XX` for `%`, `|`, `~` and
//! every byte outside printable ASCII), so `a|b` + `c` and `a` + `b|c` never make one key, and
//! a value longer than [`MAX_PART_BYTES`] is replaced by `~` and its 64-bit FNV-1a hash, so a
//! key stays small however large the header.

use crate::config::KeyPartConfig;
use gateway_core::error::{join, ConfigError, ConfigErrorKind};
use gateway_core::headers::is_token;

/// Longest part value kept as is.
pub const MAX_PART_BYTES: usize = 128;

/// One part of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPart {
    /// The client IP (`source.address`, or the configured header).
    ClientIp,
    /// The path without the query.
    Path,
    /// The method.
    Method,
    /// Envoy's route name (`xds.route_name`).
    Route,
    /// Envoy's upstream cluster name (`xds.cluster_name`).
    Cluster,
    /// The API key header's value.
    ApiKey,
    /// A request header (lowercase name).
    Header(String),
    /// A host property, as path segments.
    Property(Vec<String>),
    /// A constant.
    Constant(String),
}

impl KeyPart {
    /// Compiles one `key[]` entry.
    pub fn try_new(config: &KeyPartConfig, field: &str) -> Result<Self, ConfigError> {
        match config {
            KeyPartConfig::Named(name) => match name.as_str() {
                "client_ip" => Ok(Self::ClientIp),
                "path" => Ok(Self::Path),
                "method" => Ok(Self::Method),
                "route" => Ok(Self::Route),
                "cluster" => Ok(Self::Cluster),
                "api_key" => Ok(Self::ApiKey),
                other => Err(ConfigError::invalid(
                    field,
                    format!(
                        "unknown key part {other:?}: expected client_ip, path, method, route, \
                         cluster, api_key or an object with header, property or constant"
                    ),
                )),
            },
            KeyPartConfig::Object(object) => {
                match (&object.header, &object.property, &object.constant) {
                    (Some(h), None, None) => {
                        if !is_token(h) {
                            return Err(ConfigError::new(
                                join(field, "header"),
                                ConfigErrorKind::InvalidHeaderName(h.clone()),
                            ));
                        }
                        Ok(Self::Header(h.to_ascii_lowercase()))
                    }
                    (None, Some(p), None) => {
                        let segments: Vec<String> = p.split('.').map(str::to_owned).collect();
                        if segments.iter().any(String::is_empty) {
                            return Err(ConfigError::invalid(
                                join(field, "property"),
                                "must be dotted segments, e.g. xds.route_name",
                            ));
                        }
                        Ok(Self::Property(segments))
                    }
                    (None, None, Some(c)) => Ok(Self::Constant(c.clone())),
                    _ => Err(ConfigError::invalid(
                        field,
                        "exactly one of header, property, constant is required",
                    )),
                }
            }
        }
    }
}

/// Appends `value` to `out`, escaped (see the module docs).
pub fn push_part(out: &mut String, value: &[u8]) {
    if value.len() > MAX_PART_BYTES {
        out.push('~');
        out.push_str(&format!("{:016x}", fnv1a64(value, 0)));
        return;
    }
    for &b in value {
        if (0x21..=0x7d).contains(&b) && b != b'%' && b != b'|' {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(hex(b >> 4));
            out.push(hex(b & 0xf));
        }
    }
}

fn hex(n: u8) -> char {
    char::from(if n < 10 { b'0' + n } else { b'a' + n - 10 })
}

/// 64-bit FNV-1a of `bytes`, with `seed` mixed in first.
pub fn fnv1a64(bytes: &[u8], seed: u64) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Builds a full key: the rule name, then each part; `None` when a part is missing.
pub fn build<F>(rule: &str, parts: &[KeyPart], mut value_of: F) -> Built
where
    F: FnMut(&KeyPart) -> Option<Vec<u8>>,
{
    let mut key = String::with_capacity(rule.len() + 24 * parts.len());
    key.push_str(rule);
    let mut missing = false;
    for part in parts {
        key.push('|');
        match value_of(part) {
            Some(value) => push_part(&mut key, &value),
            None => {
                missing = true;
                key.push_str(MISSING_PART);
            }
        }
    }
    Built { key, missing }
}

/// What a missing part becomes in a key: `%` followed by a non-hex byte, which escaping never
/// produces, so no request that has the part can share the counter of those that lack it.
pub const MISSING_PART: &str = "%-";

/// A built key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// The full key.
    pub key: String,
    /// Whether at least one part was missing (and stands as [`MISSING_PART`]).
    pub missing: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_joined_and_escaped() {
        let parts = [KeyPart::Header("a".into()), KeyPart::Constant("c".into())];
        let k1 = build("r", &parts, |p| match p {
            KeyPart::Header(_) => Some(b"x|y".to_vec()),
            _ => Some(b"z".to_vec()),
        })
        .key;
        let k2 = build("r", &parts, |p| match p {
            KeyPart::Header(_) => Some(b"x".to_vec()),
            _ => Some(b"y|z".to_vec()),
        })
        .key;
        assert_eq!(k1, "r|x%7cy|z");
        assert_ne!(k1, k2);
        let k = build("r", &parts, |_| Some(b"a b\xff%".to_vec())).key;
        assert_eq!(k, "r|a%20b%ff%25|a%20b%ff%25");
    }

    #[test]
    fn a_missing_part_is_marked_and_never_equals_a_present_value() {
        let missing = build("r", &[KeyPart::ClientIp], |_| None);
        assert!(missing.missing);
        assert_eq!(missing.key, "r|%-");
        // No value escapes to the marker: `%` itself becomes `%25`.
        for value in [&b"%-"[..], b"-", b"", b"%"] {
            let present = build("r", &[KeyPart::ClientIp], |_| Some(value.to_vec()));
            assert!(!present.missing);
            assert_ne!(present.key, missing.key, "{value:?}");
        }
        let none = build("r", &[], |_| None);
        assert_eq!((none.key.as_str(), none.missing), ("r", false));
    }

    #[test]
    fn long_values_are_hashed() {
        let long = vec![b'a'; 1000];
        let k = build("r", &[KeyPart::Path], |_| Some(long.clone())).key;
        assert!(k.starts_with("r|~") && k.len() == 2 + 1 + 16, "{k}");
        let other = build("r", &[KeyPart::Path], |_| Some(vec![b'b'; 1000])).key;
        assert_ne!(k, other);
        // A short value can't pose as a hashed one: `~` is escaped.
        let posing = format!("~{:016x}", fnv1a64(&long, 0));
        let posed = build("r", &[KeyPart::Path], |_| Some(posing.clone().into_bytes())).key;
        assert_ne!(posed, k);
    }

    #[test]
    fn fnv_seeds_differ() {
        assert_ne!(fnv1a64(b"k", 0), fnv1a64(b"k", 1));
    }
}

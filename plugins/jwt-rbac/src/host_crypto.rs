//! Envoy's `verify_signature` foreign function (BoringSSL), the fast path for RS* and ES*.
//!
//! Arguments and result are small protobuf messages (Envoy's
//! `source/extensions/common/wasm/ext/verify_signature.proto`):
//! `VerifySignatureArguments { string hash_function = 1; bytes public_key = 2 (SPKI DER);
//! bytes signature = 3; bytes text = 4; }` and `VerifySignatureResult { bool result = 1;
//! string error = 2; }`. Presence is detected once per VM: a call with empty arguments answers
//! `BadArgument` (no key) where the function exists and `NotFound` where it does not (Kong); the
//! probe reads the raw status, so a host answering something else cannot trap the plugin.

use crate::alg::Alg;
use crate::config::Settings;
use crate::verify::{host_can_verify, HostCrypto};
use gateway_core::abi;
use gateway_core::error::ConfigError;
use gateway_core::ports::{LogLevel, LogPort, MetricId, MetricsPort};
use gateway_core::proxy_wasm_host::ProxyWasmHost;

/// The foreign function's name.
pub const FUNCTION: &str = "verify_signature";

/// Encodes `VerifySignatureArguments`.
pub fn encode_arguments(hash: &str, spki_der: &[u8], signature: &[u8], text: &[u8]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(16 + hash.len() + spki_der.len() + signature.len() + text.len());
    for (tag, bytes) in [
        (0x0a, hash.as_bytes()),
        (0x12, spki_der),
        (0x1a, signature),
        (0x22, text),
    ] {
        out.push(tag);
        varint(bytes.len() as u64, &mut out);
        out.extend_from_slice(bytes);
    }
    out
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn read_varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Decodes `VerifySignatureResult`: `Some(result)`, `None` if it is not a valid message.
pub fn decode_result(bytes: &[u8]) -> Option<bool> {
    let mut pos = 0;
    let mut result = false;
    while pos < bytes.len() {
        let key = read_varint(bytes, &mut pos)?;
        match key & 7 {
            0 => {
                let v = read_varint(bytes, &mut pos)?;
                if key >> 3 == 1 {
                    result = v != 0;
                }
            }
            2 => {
                let len = usize::try_from(read_varint(bytes, &mut pos)?).ok()?;
                pos = pos.checked_add(len).filter(|end| *end <= bytes.len())?;
            }
            _ => return None,
        }
    }
    Some(result)
}

/// Calls `verify_signature` with empty arguments: a host without the function may answer any
/// status, all of which come back as values ([`gateway_core::abi`]). Ok or BadArgument (no key
/// given) means the function exists.
#[cfg(target_arch = "wasm32")]
fn probe() -> bool {
    matches!(
        abi::call_foreign_function(FUNCTION, &[]),
        Ok(_) | Err(gateway_core::ports::HostError::BadArgument)
    )
}

#[cfg(not(target_arch = "wasm32"))]
fn probe() -> bool {
    false
}

/// The host's `verify_signature`.
#[derive(Debug, Clone, Copy)]
pub struct EnvoyVerifySignature {
    /// Counter of failed calls (each fell back to pure Rust): `jwt_rbac.host_crypto_errors`.
    errors: Option<MetricId>,
}

/// Gauge: 1 when host crypto is in use on this VM, else 0.
pub const GAUGE: &str = "jwt_rbac.host_crypto";
/// Counter: host calls that failed and fell back to pure Rust.
pub const ERRORS: &str = "jwt_rbac.host_crypto_errors";

impl EnvoyVerifySignature {
    /// `Some` if the host has the function (and `allowed`); records [`GAUGE`] either way.
    pub fn detect(allowed: bool) -> Option<Self> {
        let found = allowed && probe();
        let host = ProxyWasmHost;
        if let Ok(gauge) = host.define_gauge(GAUGE) {
            let _ = host.record(gauge, u64::from(found));
        }
        found.then(|| Self {
            errors: host.define_counter(ERRORS).ok(),
        })
    }
}

impl HostCrypto for EnvoyVerifySignature {
    fn verify(&self, hash: &str, spki_der: &[u8], signature: &[u8], text: &[u8]) -> Option<bool> {
        let args = encode_arguments(hash, spki_der, signature, text);
        match abi::call_foreign_function(FUNCTION, &args) {
            Ok(Some(result)) => decode_result(&result),
            // An empty result is a message with every field at its default: result false.
            Ok(None) => Some(false),
            Err(status) => {
                // Falls back to pure Rust; say so, an operator expects the fast path.
                let host = ProxyWasmHost;
                if let Some(id) = self.errors {
                    let _ = host.increment(id, 1);
                }
                host.log(
                    LogLevel::Warn,
                    &format!("jwt-rbac: verify_signature failed ({status:?}), using pure rust"),
                );
                None
            }
        }
    }
}

/// True if this build checks `alg` only through the host: ES384 without the cargo feature
/// `es384` (pure-Rust P-384 is about 130 KiB of wasm).
pub fn host_only(alg: Alg) -> bool {
    cfg!(not(feature = "es384")) && alg == Alg::ES384
}

/// Refuses (naming the field) a provider that allows a [`host_only`] algorithm when the host
/// will not check signatures (no `verify_signature`, as on Kong, or `crypto: pure_rust`):
/// every such token would fail, so the config is refused at load instead.
pub fn check_host_only(settings: &Settings, host_crypto: bool) -> Result<(), ConfigError> {
    if host_crypto {
        return Ok(());
    }
    for p in &settings.providers {
        if let Some(i) = p.validator.algorithms.iter().position(|a| host_only(*a)) {
            return Err(ConfigError::invalid(
                format!("providers.{}.algorithms[{i}]", p.name),
                format!(
                    "{} is checked only by the host's verify_signature in this build, and {}: \
                     use Envoy (crypto: auto) or a build with the cargo feature es384",
                    Alg::ES384.name(),
                    if settings.crypto == crate::config::CryptoMode::Auto {
                        "this host has none"
                    } else {
                        "crypto is pure_rust"
                    }
                ),
            ));
        }
    }
    Ok(())
}

/// One log line per provider naming the signature path of each of its algorithms.
pub fn describe(settings: &Settings, host_crypto: bool) -> Vec<String> {
    settings
        .providers
        .iter()
        .map(|p| {
            let paths: Vec<String> = p
                .validator
                .algorithms
                .iter()
                .map(|a: &Alg| {
                    let path = if host_crypto && host_can_verify(*a) {
                        "host verify_signature"
                    } else {
                        "pure rust"
                    };
                    format!("{} via {path}", a.name())
                })
                .collect();
            format!("jwt-rbac: provider {}: {}", p.name, paths.join(", "))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_encoding() {
        let a = encode_arguments("sha256", &[1, 2], &[3], &[0; 200]);
        assert_eq!(&a[..8], b"\x0a\x06sha256");
        assert_eq!(&a[8..12], &[0x12, 2, 1, 2]);
        assert_eq!(&a[12..15], &[0x1a, 1, 3]);
        assert_eq!(&a[15..18], &[0x22, 0xc8, 0x01]);
        assert_eq!(a.len(), 18 + 200);
    }

    #[test]
    fn result_decoding() {
        assert_eq!(decode_result(&[0x08, 0x01]), Some(true));
        assert_eq!(decode_result(&[0x08, 0x01, 0x12, 0x00]), Some(true));
        assert_eq!(decode_result(b"\x12\x03bad"), Some(false));
        assert_eq!(decode_result(&[]), Some(false));
        assert_eq!(decode_result(&[0x12, 0x05, b'a']), None);
        assert_eq!(decode_result(&[0x0b]), None);
    }
}

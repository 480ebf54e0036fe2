//! Signature verification: the key picks the verifier, the host may do the arithmetic.
//!
//! Pure Rust ([`crate::fast_rsa`], RustCrypto `p256`, `p384` with feature `es384`, `hmac`; `ed25519-compact`) everywhere; where the
//! host offers crypto ([`HostCrypto`], Envoy's `verify_signature` foreign function), RS* and
//! ES256/ES384 go there instead. ECDSA signatures with `r == 0` or `s == 0` are refused before
//! any arithmetic (CVE-2022-21449).

use crate::alg::Alg;
use crate::jwk::{Key, KeyMaterial};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha384, Sha512};

/// HMAC of `input` under `secret`, compared in constant time with `signature`.
macro_rules! hmac_check {
    ($digest:ty, $secret:expr, $input:expr, $signature:expr) => {
        match <Hmac<$digest> as Mac>::new_from_slice($secret) {
            Ok(mut mac) => {
                mac.update($input);
                mac.verify_slice($signature).is_ok()
            }
            Err(_) => false,
        }
    };
}

/// Signature checks done by the host (BoringSSL in Envoy).
pub trait HostCrypto {
    /// Verifies `signature` (PKCS#1 v1.5, or DER ECDSA) over `text` with the SPKI DER key.
    /// `None` when the host could not answer: the caller falls back to pure Rust.
    fn verify(&self, hash: &str, spki_der: &[u8], signature: &[u8], text: &[u8]) -> Option<bool>;
}

/// True if the host can check `alg` (RS* and ES*; not PS*, HMAC or EdDSA).
pub fn host_can_verify(alg: Alg) -> bool {
    matches!(
        alg,
        Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::ES256 | Alg::ES384
    )
}

/// Verifies `signature` over `input` with `key` for `alg` (the key must accept `alg`).
pub fn verify(
    alg: Alg,
    key: &Key,
    input: &[u8],
    signature: &[u8],
    host: Option<&dyn HostCrypto>,
) -> bool {
    if !key.accepts(alg) || signature.is_empty() {
        return false;
    }
    if matches!(alg, Alg::ES256 | Alg::ES384) && !ecdsa_shape_ok(alg, signature) {
        return false;
    }
    if let Some(host) = host {
        if host_can_verify(alg) && !key.spki_der.is_empty() {
            let sig_der;
            let sig = if alg.family() == crate::alg::KeyFamily::Rsa {
                signature
            } else {
                sig_der = crate::der::ecdsa_signature(signature);
                &sig_der
            };
            if let Some(ok) = host.verify(alg.hash_name(), &key.spki_der, sig, input) {
                return ok;
            }
        }
    }
    verify_pure(alg, key, input, signature)
}

/// `r || s` of the curve's size, neither zero.
fn ecdsa_shape_ok(alg: Alg, signature: &[u8]) -> bool {
    let size = match alg {
        Alg::ES256 => 32,
        Alg::ES384 => 48,
        _ => return false,
    };
    if signature.len() != 2 * size {
        return false;
    }
    let (r, s) = signature.split_at(size);
    r.iter().any(|b| *b != 0) && s.iter().any(|b| *b != 0)
}

/// Verifies with pure Rust only.
pub fn verify_pure(alg: Alg, key: &Key, input: &[u8], signature: &[u8]) -> bool {
    use p256::ecdsa::signature::Verifier;
    match (&key.material, alg) {
        (KeyMaterial::Hmac(secret), Alg::HS256) => hmac_check!(Sha256, secret, input, signature),
        (KeyMaterial::Hmac(secret), Alg::HS384) => hmac_check!(Sha384, secret, input, signature),
        (KeyMaterial::Hmac(secret), Alg::HS512) => hmac_check!(Sha512, secret, input, signature),
        (KeyMaterial::Rsa(key), Alg::RS256) => key.verify_pkcs1(&Sha256::digest(input), signature),
        (KeyMaterial::Rsa(key), Alg::RS384) => key.verify_pkcs1(&Sha384::digest(input), signature),
        (KeyMaterial::Rsa(key), Alg::RS512) => key.verify_pkcs1(&Sha512::digest(input), signature),
        (KeyMaterial::Rsa(key), Alg::PS256) => key.verify_pss(&Sha256::digest(input), signature),
        (KeyMaterial::Rsa(key), Alg::PS384) => key.verify_pss(&Sha384::digest(input), signature),
        (KeyMaterial::Rsa(key), Alg::PS512) => key.verify_pss(&Sha512::digest(input), signature),
        (KeyMaterial::P256(vk), Alg::ES256) => p256::ecdsa::Signature::from_slice(signature)
            .is_ok_and(|sig| vk.verify(input, &sig).is_ok()),
        #[cfg(feature = "es384")]
        (KeyMaterial::P384(vk), Alg::ES384) => p384::ecdsa::Signature::from_slice(signature)
            .is_ok_and(|sig| vk.verify(input, &sig).is_ok()),
        (KeyMaterial::Ed25519(pk), Alg::EdDSA) => ed25519_compact::Signature::from_slice(signature)
            .is_ok_and(|sig| pk.verify(input, &sig).is_ok()),
        _ => false,
    }
}

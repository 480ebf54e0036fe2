//! Shared by the jwt-rbac integration tests: the provider config, the must-reject list as
//! (name, token, reason) triples, and an emulation of Envoy's `verify_signature` foreign
//! function for the harness's envoy profile (same protobuf arguments and result).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../fixtures/jwt-rbac/mint.rs"]
pub mod mint;

use host_harness::Status;
use mint::*;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub const PLUGIN: &str = "jwt-rbac";

/// One provider (`main`, RS256/ES256/EdDSA, issuer and audience checked) and rules: `/health`
/// anonymous, `/admin` needs role `admin`, `/orders` DELETE needs scope `orders:delete`,
/// `/public` allows a missing token, everything else needs a token.
pub fn config() -> Value {
    json!({
        "providers": {
            "main": {
                "issuer": "https://issuer.example.com",
                "audiences": ["api"],
                "algorithms": ["RS256", "ES256", "EdDSA"],
                "jwks": jwks(&["rsa-1", "ec-1", "ed-1"])
            }
        },
        "rules": [
            {"match": {"path": {"exact": "/health"}}, "requires": "anonymous"},
            {"match": {"path": {"prefix": "/admin"}}, "requires": {"provider": "main"},
             "roles": {"any_of": ["admin"]}},
            {"match": {"path": {"prefix": "/orders"}, "methods": ["DELETE"]},
             "requires": {"provider": "main"}, "scopes": {"all_of": ["orders:delete"]}},
            {"match": {"path": {"prefix": "/public"}}, "requires": {"allow_missing": ["main"]}},
            {"match": {"path": {"prefix": "/"}}, "requires": {"provider": "main"}}
        ]
    })
}

/// [`config`] with ES384 allowed beside ES256 (keys `ec-1` and `ec384-1`) and the cache off, so
/// that every request reaches the signature check.
pub fn es384_config() -> Value {
    let mut cfg = config();
    cfg["providers"]["main"]["algorithms"] = json!(["ES256", "ES384"]);
    cfg["providers"]["main"]["jwks"] = jwks(&["ec-1", "ec384-1"]);
    cfg["cache"] = json!({"max_entries": 0});
    cfg
}

fn flip_last_signature_byte(token: &str) -> String {
    let (input, sig) = token.rsplit_once('.').unwrap();
    let mut bytes =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, sig).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    format!("{input}.{}", b64(bytes))
}

/// The must-reject list: (case, token, expected reason code). Deterministic except
/// for PSS/ECDSA randomness, which does not change the outcome.
pub fn must_reject() -> Vec<(&'static str, String, &'static str)> {
    let claims = good_claims();
    let claims_text = claims.to_string();
    let rs = sign("RS256", "rsa-1", &claims);
    let es = sign("ES256", "ec-1", &claims);
    let (es_input, es_sig) = es.rsplit_once('.').unwrap();
    let es_sig =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, es_sig).unwrap();
    let (h, rest) = rs.split_once('.').unwrap();
    let (p, s) = rest.split_once('.').unwrap();
    let confusion = {
        let header = json!({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).to_string();
        let input = format!("{}.{}", b64(&header), b64(&claims_text));
        let mac = hmac("HS256", &rsa_public_pem_like(), input.as_bytes());
        format!("{input}.{}", b64(mac))
    };
    let none = |alg: &str| {
        assemble(
            &json!({"alg": alg, "typ": "JWT"}).to_string(),
            &claims_text,
            b"",
        )
    };
    let with = |c: Value| sign("RS256", "rsa-1", &claims_with(c));
    let header = |extra: Value| sign_with_header("RS256", "rsa-1", extra, &claims);
    vec![
        ("alg none", none("none"), "alg_none"),
        ("alg None", none("None"), "alg_none"),
        ("alg NONE", none("NONE"), "alg_none"),
        (
            "hs256 signed with the rsa public key",
            confusion,
            "alg_not_allowed",
        ),
        (
            "algorithm outside the list",
            sign("PS256", "rsa-1", &claims),
            "alg_not_allowed",
        ),
        (
            "unknown kid",
            header(json!({"kid": "rotated-away"})),
            "kid_unknown",
        ),
        (
            "embedded jwk",
            header(json!({"jwk": public_jwk("rsa-1")})),
            "header_key_not_trusted",
        ),
        (
            "jku",
            header(json!({"jku": "http://127.0.0.1:1/jwks"})),
            "header_key_not_trusted",
        ),
        (
            "x5u",
            header(json!({"x5u": "http://127.0.0.1:1/cert"})),
            "header_key_not_trusted",
        ),
        (
            "x5c",
            header(json!({"x5c": ["MIIBIjAN"]})),
            "header_key_not_trusted",
        ),
        (
            "crit not understood",
            header(json!({"crit": ["exp"]})),
            "crit_unsupported",
        ),
        (
            "expired",
            with(json!({"exp": 1_600_000_000})),
            "token_expired",
        ),
        (
            "not yet valid",
            with(json!({"nbf": FAR_FUTURE - 10})),
            "token_not_yet_valid",
        ),
        (
            "iat in the future",
            with(json!({"iat": FAR_FUTURE - 10})),
            "iat_in_future",
        ),
        (
            "exp as a string",
            with(json!({"exp": FAR_FUTURE.to_string()})),
            "claim_type_invalid",
        ),
        (
            "nbf as a string",
            with(json!({"nbf": "1600000000"})),
            "claim_type_invalid",
        ),
        (
            "wrong issuer",
            with(json!({"iss": "https://evil.example.com"})),
            "issuer_mismatch",
        ),
        (
            "wrong audience",
            with(json!({"aud": ["billing"]})),
            "audience_mismatch",
        ),
        (
            "bad rs256 signature",
            flip_last_signature_byte(&rs),
            "signature_invalid",
        ),
        (
            "bad es256 signature",
            flip_last_signature_byte(&es),
            "signature_invalid",
        ),
        (
            "ecdsa r=0 s=0",
            format!("{es_input}.{}", b64([0u8; 64])),
            "signature_invalid",
        ),
        (
            "ecdsa r=0",
            format!(
                "{es_input}.{}",
                b64([&[0u8; 32][..], &es_sig[32..]].concat())
            ),
            "signature_invalid",
        ),
        (
            "ecdsa s=0",
            format!(
                "{es_input}.{}",
                b64([&es_sig[..32], &[0u8; 32][..]].concat())
            ),
            "signature_invalid",
        ),
        (
            "non-base64url character",
            format!("{h}.{}+.{s}", &p[..p.len() - 1]),
            "token_malformed",
        ),
        ("padding", format!("{h}.{p}.{s}="), "token_malformed"),
        (
            "extra segment",
            format!("{h}.{p}.{s}.{s}"),
            "token_malformed",
        ),
        (
            "payload not a json object",
            sign_raw(
                "RS256",
                "rsa-1",
                &json!({"alg": "RS256", "kid": "rsa-1"}).to_string(),
                "[1,2,3]",
            ),
            "token_malformed",
        ),
        (
            "over 8 KiB",
            with(json!({"pad": "x".repeat(9000)})),
            "token_too_large",
        ),
        (
            "jwe (5 segments)",
            format!(
                "{}.{}.{}.{}.{}",
                b64(json!({"alg": "RSA-OAEP", "enc": "A256GCM"}).to_string()),
                b64("k"),
                b64("iv"),
                b64("ct"),
                b64("tag")
            ),
            "token_malformed",
        ),
    ]
}

/// Envoy's `verify_signature` (source/extensions/common/wasm/foreign.cc) for the harness:
/// `VerifySignatureArguments { hash_function = 1; public_key = 2 (SPKI DER); signature = 3;
/// text = 4 }` in, `VerifySignatureResult { result = 1; error = 2 }` out; BadArgument when the
/// arguments do not parse or the key does not import. Counts its calls.
pub fn verify_signature(
    calls: Arc<AtomicUsize>,
) -> impl Fn(&[u8]) -> Result<Vec<u8>, Status> + Send + Sync + 'static {
    move |args: &[u8]| {
        calls.fetch_add(1, Ordering::SeqCst);
        let fields = parse_fields(args).ok_or(Status::BadArgument)?;
        let get = |n: u64| {
            fields
                .iter()
                .find(|(f, _)| *f == n)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let (hash, key, sig, text) = (get(1), get(2), get(3), get(4));
        if key.is_empty() {
            return Err(Status::BadArgument);
        }
        let hash = String::from_utf8_lossy(&hash).to_ascii_lowercase();
        let ok = if let Ok(rsa_key) =
            <rsa::RsaPublicKey as rsa::pkcs8::DecodePublicKey>::from_public_key_der(&key)
        {
            use sha2::Digest;
            match hash.as_str() {
                "sha256" => rsa_key.verify(
                    rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                    &sha2::Sha256::digest(&text),
                    &sig,
                ),
                "sha384" => rsa_key.verify(
                    rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
                    &sha2::Sha384::digest(&text),
                    &sig,
                ),
                "sha512" => rsa_key.verify(
                    rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
                    &sha2::Sha512::digest(&text),
                    &sig,
                ),
                _ => return Ok(result(false, &format!("{hash} is not supported."))),
            }
            .is_ok()
        } else if let Ok(ec_key) =
            <p256::ecdsa::VerifyingKey as p256::pkcs8::DecodePublicKey>::from_public_key_der(&key)
        {
            use p256::ecdsa::signature::Verifier;
            hash == "sha256"
                && p256::ecdsa::Signature::from_der(&sig)
                    .is_ok_and(|s| ec_key.verify(&text, &s).is_ok())
        } else if let Ok(ec_key) =
            <p384::ecdsa::VerifyingKey as p384::pkcs8::DecodePublicKey>::from_public_key_der(&key)
        {
            use p384::ecdsa::signature::Verifier;
            hash == "sha384"
                && p384::ecdsa::Signature::from_der(&sig)
                    .is_ok_and(|s| ec_key.verify(&text, &s).is_ok())
        } else {
            return Err(Status::BadArgument);
        };
        Ok(if ok {
            result(true, "")
        } else {
            result(false, "Failed to verify digest. Error code: 0")
        })
    }
}

fn result(ok: bool, error: &str) -> Vec<u8> {
    let mut out = Vec::new();
    if ok {
        out.extend_from_slice(&[0x08, 0x01]);
    }
    if !error.is_empty() {
        out.push(0x12);
        out.push(error.len() as u8);
        out.extend_from_slice(error.as_bytes());
    }
    out
}

fn parse_fields(bytes: &[u8]) -> Option<Vec<(u64, Vec<u8>)>> {
    let mut pos = 0;
    let mut out = Vec::new();
    let varint = |pos: &mut usize| -> Option<u64> {
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
    };
    while pos < bytes.len() {
        let key = varint(&mut pos)?;
        if key & 7 != 2 {
            return None;
        }
        let len = usize::try_from(varint(&mut pos)?).ok()?;
        let value = bytes.get(pos..pos + len)?.to_vec();
        pos += len;
        out.push((key >> 3, value));
    }
    Some(out)
}

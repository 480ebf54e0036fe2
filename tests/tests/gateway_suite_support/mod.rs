//! Shared by the gateway-suite tests (harness and real Envoy): an HS256 token of the demo
//! issuer, and the five plugins' typical configs as the suite's sections.
#![allow(dead_code)]

use super::jwt_rbac_support::mint::*;
use serde_json::{json, Value};

/// The demo provider's HMAC secret (`k` of its inline JWKS).
pub const SECRET: &[u8] = b"demo-only-secret-0123456789abcdef";

/// An HS256 token for `sub` with `roles`, valid until 2100.
pub fn token(sub: &str, roles: &[&str]) -> String {
    let header = r#"{"alg":"HS256","kid":"demo","typ":"JWT"}"#;
    let payload = json!({"iss": "https://issuer.example.com", "aud": "api", "sub": sub,
                         "roles": roles, "exp": FAR_FUTURE})
    .to_string();
    let input = format!("{}.{}", b64(header), b64(&payload));
    assemble(header, &payload, &hmac("HS256", SECRET, input.as_bytes()))
}

/// All five: header-injection's defaults, the demo provider required everywhere, audit-log's
/// defaults, `limit` requests a minute per verified user, a breaker that opens after two
/// failures in a row.
pub fn config(limit: u64) -> Value {
    json!({
        "header_injection": {},
        "jwt_rbac": {"providers": {"demo": {"issuer": "https://issuer.example.com",
            "audiences": ["api"], "algorithms": ["HS256"],
            "jwks": {"keys": [{"kty": "oct", "kid": "demo", "k": b64(SECRET)}]}}},
            "rules": [{"requires": {"provider": "demo"}}]},
        "audit_log": {},
        "ratelimit_shared_data": {"rules": [{"name": "per-user", "key": [{"header": "x-user-id"}],
            "window": {"limit": limit, "seconds": 60}}]},
        "circuit_breaker": {"key": {"source": "fixed", "value": "orders"},
            "defaults": {"consecutive_failures": 2, "open": {"duration_ms": 30000}}}
    })
}

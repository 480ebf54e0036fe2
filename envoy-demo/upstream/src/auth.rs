//! The demo's token issuer: a JWKS endpoint for jwt-rbac and a token minting endpoint for the
//! walkthrough. **Demo only**: it signs whatever a caller on 127.0.0.1 asks for.
//!
//! The ES256 (P-256) key is generated from the OS random source when the process starts and
//! never written anywhere, so no private key lives in the repository and every run has its own.
//!
//! - `GET /.well-known/jwks.json`: the public key as a JWKS (what jwt-rbac's `remote_jwks` fetches);
//! - `GET /token?sub=alice&roles=reader,ops&scope=orders:read&ttl=3600`: a signed token as text,
//!   issuer [`ISSUER`], audience [`AUDIENCE`].

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{json, Map, Value};

use crate::http::{Request, Response};

/// `iss` of every minted token.
pub const ISSUER: &str = "https://demo-issuer.example";
/// `aud` of every minted token.
pub const AUDIENCE: &str = "demo-api";
/// Where the JWKS is served.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
/// Where tokens are minted.
pub const TOKEN_PATH: &str = "/token";
/// Lifetime of a token unless `ttl` says otherwise, and the longest `ttl` accepted.
const DEFAULT_TTL: u64 = 3600;
const MAX_TTL: u64 = 86_400;
/// Longest accepted query value.
const MAX_VALUE: usize = 256;

/// Why no issuer could be created.
#[derive(Debug)]
pub struct KeyError(String);

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "demo issuer key: {}", self.0)
    }
}

impl std::error::Error for KeyError {}

/// The issuer: one P-256 signing key and its key id.
pub struct Issuer {
    key: SigningKey,
    kid: String,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl Issuer {
    /// A fresh key from the OS random source.
    pub fn generate() -> Result<Issuer, KeyError> {
        // A random 32-byte string is a valid scalar unless it is zero or >= n: retry (bounded).
        for _ in 0..16 {
            let mut secret = [0u8; 32];
            getrandom::fill(&mut secret).map_err(|e| KeyError(e.to_string()))?;
            if let Ok(key) = Issuer::from_secret(&secret) {
                return Ok(key);
            }
        }
        Err(KeyError("no valid P-256 scalar after 16 draws".into()))
    }

    /// The issuer for a given 32-byte secret scalar (tests).
    pub fn from_secret(secret: &[u8]) -> Result<Issuer, KeyError> {
        let key = SigningKey::from_slice(secret).map_err(|e| KeyError(e.to_string()))?;
        let point = key.verifying_key().to_encoded_point(false);
        let x = point.x().map(b64).unwrap_or_default();
        let kid = format!("demo-{}", x.chars().take(8).collect::<String>());
        Ok(Issuer { key, kid })
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWKS.
    pub fn jwks(&self) -> Value {
        let point = self.key.verifying_key().to_encoded_point(false);
        json!({"keys": [{
            "kty": "EC",
            "crv": "P-256",
            "kid": self.kid,
            "alg": "ES256",
            "use": "sig",
            "x": point.x().map(b64).unwrap_or_default(),
            "y": point.y().map(b64).unwrap_or_default(),
        }]})
    }

    /// A compact ES256 token for `claims` (plus `iss`, `aud`, `kid` in the header).
    pub fn sign(&self, claims: &Map<String, Value>) -> String {
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": self.kid});
        let mut payload = claims.clone();
        payload.insert("iss".into(), ISSUER.into());
        payload.insert("aud".into(), AUDIENCE.into());
        let input = format!(
            "{}.{}",
            b64(header.to_string()),
            b64(Value::Object(payload).to_string())
        );
        let signature: Signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", b64(signature.to_bytes()))
    }

    /// Answers one request on the issuer's listener.
    pub fn respond(&self, req: &Request) -> Response {
        match (req.method.as_str(), req.path()) {
            ("GET", JWKS_PATH) => Response::json(200, &self.jwks()),
            ("GET", TOKEN_PATH) => match token_claims(req.target.as_str(), now_seconds()) {
                Ok(claims) => Response {
                    status: 200,
                    headers: vec![
                        ("content-type".into(), b"text/plain".to_vec()),
                        ("cache-control".into(), b"no-store".to_vec()),
                    ],
                    body: format!("{}\n", self.sign(&claims)).into_bytes(),
                },
                Err(msg) => Response::json(400, &json!({ "error": msg })),
            },
            _ => Response::json(
                404,
                &json!({"error": "not found", "endpoints": [JWKS_PATH, TOKEN_PATH]}),
            ),
        }
    }
}

/// Characters accepted in query values (no percent-decoding: keep values plain).
fn plain(value: &str) -> bool {
    value.len() <= MAX_VALUE
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:@,".contains(&b))
}

/// The claims of `GET /token?...`: `sub` (default `alice`), `roles` (comma-separated, default
/// `reader`), `scope` (space-separated, `+` for a space), `email` (default `<sub>@example.com`),
/// `ttl` seconds (default 3600, at most 86400).
pub fn token_claims(target: &str, now: u64) -> Result<Map<String, Value>, String> {
    let mut sub = "alice".to_string();
    let mut roles = "reader".to_string();
    let mut scope = None;
    let mut email = None;
    let mut ttl = DEFAULT_TTL;
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or_default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = value.replace('+', " ");
        if !value.split(' ').all(plain) {
            return Err(format!(
                "`{name}`: use letters, digits and - _ . : @ , only (at most {MAX_VALUE})"
            ));
        }
        match name {
            "sub" if !value.is_empty() => sub = value,
            "roles" => roles = value,
            "scope" => scope = Some(value),
            "email" => email = Some(value),
            "ttl" => {
                ttl = value
                    .parse::<u64>()
                    .ok()
                    .filter(|t| (1..=MAX_TTL).contains(t))
                    .ok_or(format!("`ttl`: seconds from 1 to {MAX_TTL}"))?;
            }
            _ => {
                return Err(format!(
                    "unknown parameter `{name}` (sub, roles, scope, email, ttl)"
                ))
            }
        }
    }
    let mut claims = Map::new();
    claims.insert(
        "email".into(),
        email.unwrap_or_else(|| format!("{sub}@example.com")).into(),
    );
    claims.insert("sub".into(), sub.into());
    let roles: Vec<Value> = roles
        .split(',')
        .filter(|r| !r.is_empty())
        .map(|r| Value::from(r.to_string()))
        .collect();
    claims.insert("roles".into(), Value::Array(roles));
    if let Some(scope) = scope {
        claims.insert("scope".into(), scope.into());
    }
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), (now + ttl).into());
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Verifier;
    use p256::ecdsa::VerifyingKey;

    fn get(target: &str) -> Request {
        Request {
            method: "GET".into(),
            target: target.into(),
            http10: false,
            headers: vec![],
            body: vec![],
        }
    }

    fn unb64(s: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(s).unwrap()
    }

    #[test]
    fn minted_tokens_verify_with_the_published_jwks() {
        let issuer = Issuer::generate().unwrap();
        let jwks: Value = serde_json::from_slice(&issuer.respond(&get(JWKS_PATH)).body).unwrap();
        let jwk = &jwks["keys"][0];
        assert_eq!(
            (jwk["kty"].as_str(), jwk["alg"].as_str()),
            (Some("EC"), Some("ES256"))
        );
        assert!(jwk.get("d").is_none());
        let mut sec1 = vec![4u8];
        sec1.extend(unb64(jwk["x"].as_str().unwrap()));
        sec1.extend(unb64(jwk["y"].as_str().unwrap()));
        let vk = VerifyingKey::from_sec1_bytes(&sec1).unwrap();

        let resp = issuer.respond(&get("/token?sub=bob&roles=reader,ops&scope=a+b&ttl=60"));
        assert_eq!(resp.status, 200);
        let token = String::from_utf8(resp.body).unwrap();
        let parts: Vec<&str> = token.trim().split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value = serde_json::from_slice(&unb64(parts[0])).unwrap();
        assert_eq!(header["kid"], jwk["kid"]);
        let claims: Value = serde_json::from_slice(&unb64(parts[1])).unwrap();
        assert_eq!(claims["sub"], "bob");
        assert_eq!(claims["roles"], json!(["reader", "ops"]));
        assert_eq!(claims["scope"], "a b");
        assert_eq!(claims["iss"], ISSUER);
        assert_eq!(claims["aud"], AUDIENCE);
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
            60
        );
        let sig = Signature::from_slice(&unb64(parts[2])).unwrap();
        vk.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
            .unwrap();
    }

    #[test]
    fn refuses_odd_parameters() {
        for bad in [
            "/token?ttl=0",
            "/token?ttl=999999",
            "/token?sub=a%20b",
            "/token?nope=1",
            "/token?roles=<x>",
        ] {
            assert!(token_claims(bad, 0).is_err(), "{bad}");
        }
        let c = token_claims("/token", 100).unwrap();
        assert_eq!(c["sub"], "alice");
        assert_eq!(c["roles"], json!(["reader"]));
        assert_eq!(c["email"], "alice@example.com");
        assert_eq!(c["exp"], 3700);
        let issuer = Issuer::generate().unwrap();
        assert_eq!(issuer.respond(&get("/token?ttl=x")).status, 400);
        assert_eq!(issuer.respond(&get("/other")).status, 404);
    }

    #[test]
    fn every_run_has_its_own_key() {
        let a = Issuer::generate().unwrap();
        let b = Issuer::generate().unwrap();
        assert_ne!(a.jwks(), b.jwks());
        assert!(Issuer::from_secret(&[0u8; 32]).is_err());
    }
}

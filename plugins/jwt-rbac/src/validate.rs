//! Token validation: parse, header checks, signature, claims. Pure: no host, no clock.
//!
//! Order: size and shape; `alg` (`none` in any case, unknown, outside the provider's list);
//! header key material (`jwk`, `jku`, `x5u`, `x5c`); `crit`; key selection by `kid` among the
//! keys that accept the algorithm; signature; then claims (`exp`, `nbf`, `iat` as numbers,
//! issuer, audience, lifetime).

use crate::alg::Alg;
use crate::jwk::Key;
use crate::reason::Reason;
use crate::token;
use crate::verify::{self, HostCrypto};
use serde_json::{Map, Value};

/// Header parameters that carry or point to key material: never trusted, never fetched.
pub const UNTRUSTED_HEADER_KEYS: [&str; 4] = ["jwk", "jku", "x5u", "x5c"];

/// What a provider checks in a token.
#[derive(Debug, Clone)]
pub struct Validator {
    /// Required `iss`, if any.
    pub issuer: Option<String>,
    /// Accepted `aud` values; empty means `aud` is not checked.
    pub audiences: Vec<String>,
    /// Algorithms a token may use.
    pub algorithms: Vec<Alg>,
    /// Verifying keys.
    pub keys: Vec<Key>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    pub clock_skew: i64,
    /// Refuse tokens without `exp`.
    pub require_exp: bool,
    /// Longest `exp - iat` accepted, in seconds.
    pub max_lifetime: Option<i64>,
    /// Longest token accepted, in bytes.
    pub max_token_bytes: usize,
    /// Revoked `jti` values.
    pub revoked_jti: Vec<String>,
    /// Revoked `sid` values (every token of those sessions).
    pub revoked_sid: Vec<String>,
}

/// A token that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// Its claims.
    pub claims: Map<String, Value>,
    /// Its `exp`, in whole seconds (rounded down), if it has one.
    pub exp: Option<i64>,
}

impl Validator {
    /// Validates `token` at `now` (Unix seconds) with the provider's inline keys.
    pub fn validate(
        &self,
        token: &[u8],
        now: i64,
        host: Option<&dyn HostCrypto>,
    ) -> Result<Verified, Reason> {
        self.validate_with(&self.keys, token, now, host)
    }

    /// Validates `token` at `now` with `keys` (a remote JWKS).
    pub fn validate_with(
        &self,
        keys: &[Key],
        token: &[u8],
        now: i64,
        host: Option<&dyn HostCrypto>,
    ) -> Result<Verified, Reason> {
        let parsed = token::parse(token, self.max_token_bytes)?;
        let alg = self.check_header(&parsed.header)?;
        let kid = match parsed.header.get("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid.as_str()),
            Some(_) => return Err(Reason::TokenMalformed),
        };
        let mut candidates = keys
            .iter()
            .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
            .peekable();
        if candidates.peek().is_none() {
            return Err(Reason::KidUnknown);
        }
        let mut fitting = candidates.filter(|k| k.accepts(alg)).peekable();
        if fitting.peek().is_none() {
            // The key named by `kid` is of another algorithm: the verifier is the key's.
            return Err(Reason::AlgNotAllowed);
        }
        let verified = fitting
            .any(|key| verify::verify(alg, key, parsed.signing_input, &parsed.signature, host));
        if !verified {
            return Err(Reason::SignatureInvalid);
        }
        let exp = self.check_claims(&parsed.payload, now)?;
        Ok(Verified {
            claims: parsed.payload,
            exp,
        })
    }

    fn check_header(&self, header: &Map<String, Value>) -> Result<Alg, Reason> {
        let name = match header.get("alg") {
            Some(Value::String(name)) => name,
            _ => return Err(Reason::TokenMalformed),
        };
        if name.eq_ignore_ascii_case("none") {
            return Err(Reason::AlgNone);
        }
        let alg = Alg::from_name(name)
            .filter(|a| self.algorithms.contains(a))
            .ok_or(Reason::AlgNotAllowed)?;
        if UNTRUSTED_HEADER_KEYS
            .iter()
            .any(|k| header.contains_key(*k))
        {
            return Err(Reason::HeaderKeyNotTrusted);
        }
        if header.contains_key("crit") {
            // No extension is understood, so any `crit` list is one we do not understand.
            return Err(Reason::CritUnsupported);
        }
        Ok(alg)
    }

    fn check_claims(&self, claims: &Map<String, Value>, now: i64) -> Result<Option<i64>, Reason> {
        let exp = numeric_date(claims, "exp")?;
        let nbf = numeric_date(claims, "nbf")?;
        let iat = numeric_date(claims, "iat")?;
        let skew = self.clock_skew;
        match exp {
            Some(exp) if now >= exp.saturating_add(skew) => return Err(Reason::TokenExpired),
            None if self.require_exp => return Err(Reason::ClaimMissing),
            _ => {}
        }
        if nbf.is_some_and(|nbf| nbf > now.saturating_add(skew)) {
            return Err(Reason::TokenNotYetValid);
        }
        if iat.is_some_and(|iat| iat > now.saturating_add(skew)) {
            return Err(Reason::IatInFuture);
        }
        if let Some(issuer) = &self.issuer {
            match claims.get("iss") {
                Some(Value::String(iss)) if iss == issuer => {}
                Some(Value::String(_)) | None => return Err(Reason::IssuerMismatch),
                Some(_) => return Err(Reason::ClaimTypeInvalid),
            }
        }
        if !self.audiences.is_empty() {
            let accepted = |a: &str| self.audiences.iter().any(|x| x == a);
            let ok = match claims.get("aud") {
                Some(Value::String(aud)) => accepted(aud),
                Some(Value::Array(auds)) => {
                    if auds.iter().any(|a| !a.is_string()) {
                        return Err(Reason::ClaimTypeInvalid);
                    }
                    auds.iter().filter_map(Value::as_str).any(accepted)
                }
                None => false,
                Some(_) => return Err(Reason::ClaimTypeInvalid),
            };
            if !ok {
                return Err(Reason::AudienceMismatch);
            }
        }
        for (claim, revoked) in [("jti", &self.revoked_jti), ("sid", &self.revoked_sid)] {
            if let Some(Value::String(id)) = claims.get(claim) {
                if revoked.iter().any(|r| r == id) {
                    return Err(Reason::TokenRevoked);
                }
            }
        }
        if let Some(max) = self.max_lifetime {
            let Some(exp) = exp else {
                return Err(Reason::LifetimeTooLong);
            };
            let start = iat.or(nbf).unwrap_or(now);
            if exp.saturating_sub(start) > max {
                return Err(Reason::LifetimeTooLong);
            }
        }
        Ok(exp)
    }
}

/// A NumericDate claim: a JSON number (fractions rounded down), never a string.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, Reason> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                Ok(Some(i))
            } else if let Some(f) = n.as_f64().filter(|f| f.is_finite()) {
                // Saturating float-to-int cast: huge values stay huge.
                Ok(Some(f.floor() as i64))
            } else {
                Err(Reason::ClaimTypeInvalid)
            }
        }
        Some(_) => Err(Reason::ClaimTypeInvalid),
    }
}

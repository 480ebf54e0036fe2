//! Strict compact JWS parsing (RFC 7515 section 7.1), before any cryptography.
//!
//! Exactly three segments; each base64url without padding and with canonical trailing bits;
//! header and payload JSON objects. Five segments is a JWE: refused, never decrypted.

use crate::reason::Reason;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

/// A token split and decoded, not yet verified.
#[derive(Debug, Clone)]
pub struct ParsedToken<'a> {
    /// The JOSE header.
    pub header: Map<String, Value>,
    /// The claims.
    pub payload: Map<String, Value>,
    /// `base64url(header) "." base64url(payload)`: the bytes that were signed.
    pub signing_input: &'a [u8],
    /// The decoded signature (may be empty; checked later).
    pub signature: Vec<u8>,
}

/// Splits and decodes `token`; `max_bytes` bounds its length.
pub fn parse(token: &[u8], max_bytes: usize) -> Result<ParsedToken<'_>, Reason> {
    if token.len() > max_bytes {
        return Err(Reason::TokenTooLarge);
    }
    if token.is_empty() {
        return Err(Reason::TokenMalformed);
    }
    let dots: Vec<usize> = token
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'.')
        .map(|(i, _)| i)
        .take(5)
        .collect();
    let [first, second] = dots[..] else {
        return Err(Reason::TokenMalformed);
    };
    let header = object(&token[..first])?;
    let payload = object(&token[first + 1..second])?;
    let signature = decode(&token[second + 1..])?;
    Ok(ParsedToken {
        header,
        payload,
        signing_input: &token[..second],
        signature,
    })
}

fn decode(segment: &[u8]) -> Result<Vec<u8>, Reason> {
    // The engine refuses padding, characters outside the url-safe alphabet and
    // non-canonical trailing bits.
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| Reason::TokenMalformed)
}

fn object(segment: &[u8]) -> Result<Map<String, Value>, Reason> {
    if segment.is_empty() {
        return Err(Reason::TokenMalformed);
    }
    let bytes = decode(segment)?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Reason::TokenMalformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn token(h: &str, p: &str, sig: &str) -> String {
        format!("{}.{}.{}", b64(h), b64(p), sig)
    }

    #[test]
    fn good_token_parses() {
        let t = token(r#"{"alg":"HS256"}"#, r#"{"sub":"a"}"#, "c2ln");
        let parsed = parse(t.as_bytes(), 8192).unwrap();
        assert_eq!(parsed.header["alg"], "HS256");
        assert_eq!(parsed.payload["sub"], "a");
        assert_eq!(parsed.signature, b"sig");
        assert_eq!(
            parsed.signing_input,
            t.rsplit_once('.').unwrap().0.as_bytes()
        );
    }

    #[test]
    fn segment_counts() {
        let h = b64(r#"{"alg":"HS256"}"#);
        let p = b64("{}");
        for bad in [
            format!("{h}.{p}"),
            format!("{h}.{p}.c2ln.x"),
            format!("{h}.{p}.c2ln.x.y"),
            format!("{h}..c2ln"),
            format!(".{p}.c2ln"),
            String::new(),
            "...".to_owned(),
        ] {
            assert_eq!(
                parse(bad.as_bytes(), 8192).unwrap_err(),
                Reason::TokenMalformed,
                "{bad}"
            );
        }
    }

    #[test]
    fn base64url_is_strict() {
        let good = token(r#"{"alg":"HS256"}"#, "{}", "c2ln");
        for bad in [
            good.replacen('.', "=.", 1),
            format!("{good}="),
            good.replacen('e', "+", 1),
            good.replacen('e', "/", 1),
            good.replacen('e', " ", 1),
            format!("{}.{}.c2l", b64(r#"{"alg":"HS256"}"#), b64("{}")),
        ] {
            assert_eq!(
                parse(bad.as_bytes(), 8192).unwrap_err(),
                Reason::TokenMalformed,
                "{bad}"
            );
        }
    }

    #[test]
    fn header_and_payload_must_be_objects() {
        for (h, p) in [
            ("[]", "{}"),
            (r#"{"alg":"HS256"}"#, "[1]"),
            (r#"{"alg":"HS256"}"#, "\"s\""),
            (r#"{"alg":"HS256"}"#, "not json"),
            (r#"{"alg":"HS256"}"#, "{} {}"),
        ] {
            assert_eq!(
                parse(token(h, p, "c2ln").as_bytes(), 8192).unwrap_err(),
                Reason::TokenMalformed
            );
        }
    }

    #[test]
    fn size_limit() {
        let t = token(r#"{"alg":"HS256"}"#, "{}", "c2ln");
        assert_eq!(
            parse(t.as_bytes(), t.len() - 1).unwrap_err(),
            Reason::TokenTooLarge
        );
        assert!(parse(t.as_bytes(), t.len()).is_ok());
    }
}

//! Remote revocation lists: revoked `jti` and `sid` values fetched through the gateway, shared
//! by every worker, refreshed like the remote JWKS (one fetcher per gateway through a lease,
//! the last good list kept on a failure, exponential backoff).
//!
//! The body is a JSON object `{"jti": ["..."], "sid": ["..."]}` (both optional; other members
//! ignored). A body that is not such an object, or holds a non-string id, is a failed fetch.
//! Until a first list arrives only the provider's `revoked_jti`/`revoked_sid` apply. The list is
//! checked on every request, cache hits included, so a revocation takes effect within a refresh
//! period (plus the 1 s tick for the other workers), not when a cached token expires.

use crate::config::Provider;
use crate::metrics::Metric;
use crate::remote::{Doc, RemoteJwks, Schedule, Tracked};
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::rc::Rc;

/// Largest revocation list body accepted, bytes.
pub const MAX_LIST_BYTES: usize = 1024 * 1024;

/// Revoked ids of one provider.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revoked {
    jti: HashSet<String>,
    sid: HashSet<String>,
}

impl Revoked {
    /// Parses a fetched body; `None` if it is not a valid list.
    pub fn parse(body: &[u8]) -> Option<Self> {
        if body.len() > MAX_LIST_BYTES {
            return None;
        }
        let value: Value = serde_json::from_slice(body).ok()?;
        let object = value.as_object()?;
        let ids = |name: &str| -> Option<HashSet<String>> {
            match object.get(name) {
                None => Some(HashSet::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect(),
                Some(_) => None,
            }
        };
        Some(Self {
            jti: ids("jti")?,
            sid: ids("sid")?,
        })
    }

    /// True if the token's `jti` or `sid` is revoked.
    pub fn revokes(&self, claims: &Map<String, Value>) -> bool {
        let listed = |claim: &str, ids: &HashSet<String>| {
            !ids.is_empty()
                && matches!(claims.get(claim), Some(Value::String(id)) if ids.contains(id))
        };
        listed("jti", &self.jti) || listed("sid", &self.sid)
    }

    /// How many ids are listed.
    pub fn len(&self) -> usize {
        self.jti.len() + self.sid.len()
    }

    /// True if nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What one worker knows about one provider's remote revocation list.
#[derive(Debug, Clone, Default)]
pub struct RevocationState {
    /// The list in use (empty until the first successful fetch anywhere).
    pub list: Rc<Revoked>,
    /// `fetched_at` of the list in use (0: none yet).
    pub version: i64,
    /// Token of this worker's call in flight.
    pub in_flight: Option<u32>,
    /// No fetch by this worker before this time (backoff).
    pub not_before: i64,
    /// Current backoff, seconds (0 after a success).
    pub backoff: i64,
}

impl Tracked for RevocationState {
    type Value = Revoked;
    const DOC: Doc = Doc::Revocations;
    const NAME: &'static str = "revocation list";
    const FIELD: &'static str = "remote_revocations";
    const ITEMS: &'static str = "revoked ids";
    const MAX_BYTES: usize = MAX_LIST_BYTES;
    const OK: Metric = Metric::RevocationsFetchOk;
    const FAILED: Metric = Metric::RevocationsFetchFailed;

    fn remote(provider: &Provider) -> Option<&RemoteJwks> {
        provider.revocations.as_ref()
    }
    fn due(&self, remote: &RemoteJwks, now: i64) -> bool {
        self.in_flight.is_none()
            && now >= self.not_before
            && (self.version == 0 || now >= self.version.saturating_add(remote.refresh_seconds))
    }
    fn parse(body: &[u8]) -> Option<Revoked> {
        Revoked::parse(body)
    }
    fn install(&mut self, list: Revoked, version: i64) {
        self.list = Rc::new(list);
        self.version = version;
    }
    fn count(&self) -> usize {
        self.list.len()
    }
    fn schedule(&mut self) -> Schedule<'_> {
        Schedule {
            version: self.version,
            in_flight: &mut self.in_flight,
            not_before: &mut self.not_before,
            backoff: &mut self.backoff,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn parses_and_matches_jti_and_sid() {
        let list = Revoked::parse(br#"{"jti": ["j-1"], "sid": ["s-1"], "updated": 7}"#).unwrap();
        assert_eq!(list.len(), 2);
        assert!(list.revokes(&claims(json!({"jti": "j-1"}))));
        assert!(list.revokes(&claims(json!({"jti": "j-2", "sid": "s-1"}))));
        assert!(!list.revokes(&claims(json!({"jti": "j-2", "sid": "s-2"}))));
        assert!(!list.revokes(&claims(json!({"jti": ["j-1"]}))));
        assert!(Revoked::parse(b"{}").unwrap().is_empty());
    }

    #[test]
    fn refuses_what_is_not_a_list() {
        for body in [
            &br#"{"jti": "j-1"}"#[..],
            br#"{"jti": [1]}"#,
            br#"["j-1"]"#,
            b"{not json",
            b"",
        ] {
            assert_eq!(
                Revoked::parse(body),
                None,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let big = format!(r#"{{"jti": ["{}"]}}"#, "a".repeat(MAX_LIST_BYTES));
        assert_eq!(Revoked::parse(big.as_bytes()), None);
    }

    #[test]
    fn due_until_the_first_list_then_every_refresh_period() {
        let remote = RemoteJwks {
            upstream: "u".into(),
            authority: "a".into(),
            path: "/".into(),
            refresh_seconds: 60,
            unknown_kid_refresh_seconds: 0,
            timeout_ms: 1000,
            max_backoff_seconds: 8,
        };
        let mut s = RevocationState::default();
        assert!(s.due(&remote, 100));
        s.version = 100;
        assert!(!s.due(&remote, 159));
        assert!(s.due(&remote, 160));
        s.not_before = 170;
        assert!(!s.due(&remote, 160));
        s.not_before = 0;
        s.in_flight = Some(3);
        assert!(!s.due(&remote, 160));
    }
}

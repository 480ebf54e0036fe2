//! Remote JWKS: fetched through the gateway, shared by every worker through shared data.
//!
//! One worker fetches (a lease in shared data, taken with cas), writes the JWKS to shared data,
//! and every worker adopts it on its next tick. Refresh every `refresh_seconds`; an unknown
//! `kid` asks for a refresh, at most once per `unknown_kid_refresh_seconds`; a failed fetch
//! keeps the last good keys and retries with exponential backoff (1 s doubling up to
//! `max_backoff_seconds`), and the lease holds the other workers off during the backoff.
//!
//! Shared-data values carry their full key (Kong looks keys up by CRC32 only):
//! `jwt-rbac-jwks\n<provider>\n<fetched_at>\n<jwks json>` and `jwt-rbac-lease\n<provider>\n<until>`.
//! Revocation lists (`remote_revocations`, [`crate::revocation`]) travel the same way under
//! their own keys and tags ([`Doc::Revocations`]).

use crate::config::Provider;
use crate::jwk::{self, Key};
use crate::metrics::Metric;
use gateway_core::ports::{HostError, SharedDataPort};
use std::rc::Rc;

/// Largest JWKS body accepted, bytes.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Most cas retries when writing shared data.
const CAS_RETRIES: usize = 4;

/// Where and how often to fetch a provider's JWKS (compiled `remote_jwks`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteJwks {
    /// Envoy cluster name, or Kong `host:port`.
    pub upstream: String,
    /// `:authority` of the request.
    pub authority: String,
    /// `:path` of the request.
    pub path: String,
    /// Refresh period, seconds.
    pub refresh_seconds: i64,
    /// Least time between refreshes asked for by unknown `kid`s, seconds.
    pub unknown_kid_refresh_seconds: i64,
    /// Timeout of one fetch, milliseconds.
    pub timeout_ms: u64,
    /// Longest backoff after failures, seconds.
    pub max_backoff_seconds: i64,
}

/// What one worker knows about one remote provider.
#[derive(Debug, Clone, Default)]
pub struct RemoteState {
    /// Keys in use (empty until the first successful fetch anywhere).
    pub keys: Rc<Vec<Key>>,
    /// `fetched_at` of the keys in use (0: none).
    pub version: i64,
    /// Token of this worker's call in flight.
    pub in_flight: Option<u32>,
    /// No fetch by this worker before this time (backoff).
    pub not_before: i64,
    /// Current backoff, seconds (0 after a success).
    pub backoff: i64,
    /// Last fetch this worker started.
    pub last_attempt: i64,
    /// A request met an unknown `kid`.
    pub kid_miss: bool,
}

/// What a shared record holds: a provider's JWKS or its revocation list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Doc {
    /// `remote_jwks`.
    Jwks,
    /// `remote_revocations`.
    Revocations,
}

impl Doc {
    fn record_tag(self) -> &'static str {
        match self {
            Doc::Jwks => "jwt-rbac-jwks",
            Doc::Revocations => "jwt-rbac-revoked",
        }
    }

    fn lease_tag(self) -> &'static str {
        match self {
            Doc::Jwks => "jwt-rbac-lease",
            Doc::Revocations => "jwt-rbac-lease-revoked",
        }
    }
}

/// Shared-data key of the JWKS of `provider`.
pub fn jwks_key(provider: &str) -> String {
    record_key(Doc::Jwks, provider)
}

/// Shared-data key of the record `doc` of `provider`.
pub fn record_key(doc: Doc, provider: &str) -> String {
    match doc {
        Doc::Jwks => format!("jwt-rbac/jwks/{provider}"),
        Doc::Revocations => format!("jwt-rbac/revoked/{provider}"),
    }
}

/// Shared-data key of the fetch lease of `doc` of `provider`.
pub fn lease_key(doc: Doc, provider: &str) -> String {
    match doc {
        Doc::Jwks => format!("jwt-rbac/lease/{provider}"),
        Doc::Revocations => format!("jwt-rbac/lease-revoked/{provider}"),
    }
}

/// Encodes a shared record.
pub fn encode_record(doc: Doc, provider: &str, fetched_at: i64, json: &[u8]) -> Vec<u8> {
    let mut out = format!("{}\n{provider}\n{fetched_at}\n", doc.record_tag()).into_bytes();
    out.extend_from_slice(json);
    out
}

/// Decodes a shared record `doc` of `provider`: `(fetched_at, json)`.
pub fn decode_record<'a>(doc: Doc, provider: &str, value: &'a [u8]) -> Option<(i64, &'a [u8])> {
    let mut parts = value.splitn(4, |b| *b == b'\n');
    (parts.next()? == doc.record_tag().as_bytes()).then_some(())?;
    (parts.next()? == provider.as_bytes()).then_some(())?;
    let at = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
    Some((at, parts.next()?))
}

fn encode_lease(doc: Doc, provider: &str, until: i64) -> String {
    format!("{}\n{provider}\n{until}", doc.lease_tag())
}

fn decode_lease(doc: Doc, provider: &str, value: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(value).ok()?;
    let mut parts = text.splitn(3, '\n');
    (parts.next()? == doc.lease_tag() && parts.next()? == provider).then_some(())?;
    parts.next()?.parse().ok()
}

/// The shared record `doc` of `provider` if it is newer than `version`: `(fetched_at, json)`.
pub fn newer_record<H: SharedDataPort + ?Sized>(
    host: &H,
    doc: Doc,
    provider: &str,
    version: i64,
) -> Option<(i64, Vec<u8>)> {
    let entry = host.shared_data(&record_key(doc, provider)).ok()?;
    let value = entry.value?;
    let (at, json) = decode_record(doc, provider, &value)?;
    (at > version).then(|| (at, json.to_vec()))
}

/// Writes a fetched record for the other workers and releases the lease.
pub fn publish<H: SharedDataPort + ?Sized>(
    host: &H,
    doc: Doc,
    provider: &str,
    body: &[u8],
    now: i64,
) -> Result<(), HostError> {
    let stored = write(
        host,
        &record_key(doc, provider),
        &encode_record(doc, provider, now, body),
    );
    // Release the lease: the next due refresh (or unknown kid) may fetch at once.
    let _ = write(
        host,
        &lease_key(doc, provider),
        encode_lease(doc, provider, now).as_bytes(),
    );
    stored
}

/// The next backoff after a failure (1 s doubling up to `max`); holds the other workers off
/// until then through the lease.
pub fn back_off<H: SharedDataPort + ?Sized>(
    host: &H,
    doc: Doc,
    provider: &str,
    backoff: i64,
    max: i64,
    now: i64,
) -> i64 {
    let backoff = backoff.saturating_mul(2).max(1).min(max.max(1));
    let until = now.saturating_add(backoff);
    let _ = write(
        host,
        &lease_key(doc, provider),
        encode_lease(doc, provider, until).as_bytes(),
    );
    backoff
}

/// Parses a fetched JWKS body (at least one usable key; keys it cannot use are skipped, see
/// [`jwk::parse_jwks_usable`]). Symmetric (`oct`) keys are dropped: a JWKS served over the
/// network is public, so an HMAC secret in it would let anyone sign.
pub fn parse_body(body: &[u8]) -> Option<Vec<Key>> {
    parse_body_noting(body).map(|(keys, _)| keys)
}

/// [`parse_body`], with one line per key of the body that is not used, saying why (an unusable
/// key, or a symmetric one): logged after a fetch, so that a `kid_unknown` for a key the
/// provider does publish can be told from a key it does not.
pub fn parse_body_noting(body: &[u8]) -> Option<(Vec<Key>, Vec<String>)> {
    if body.len() > MAX_JWKS_BYTES {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let (all, mut skipped) = jwk::parse_jwks_usable(&value)?;
    let (symmetric, keys): (Vec<Key>, Vec<Key>) = all
        .into_iter()
        .partition(|k| k.family() == crate::alg::KeyFamily::Hmac);
    if keys.is_empty() {
        return None;
    }
    for key in &symmetric {
        skipped.push(format!(
            "kid {:?} (a symmetric key: a published JWKS is public)",
            key.kid.as_deref().unwrap_or("-")
        ));
    }
    Some((keys, skipped))
}

impl Tracked for RemoteState {
    type Value = Vec<Key>;
    const DOC: Doc = Doc::Jwks;
    const NAME: &'static str = "jwks";
    const FIELD: &'static str = "remote_jwks";
    const ITEMS: &'static str = "keys";
    const MAX_BYTES: usize = MAX_JWKS_BYTES;
    const OK: Metric = Metric::JwksFetchOk;
    const FAILED: Metric = Metric::JwksFetchFailed;

    fn remote(provider: &Provider) -> Option<&RemoteJwks> {
        provider.remote.as_ref()
    }
    fn due(&self, remote: &RemoteJwks, now: i64) -> bool {
        if self.in_flight.is_some() || now < self.not_before {
            return false;
        }
        self.keys.is_empty()
            || now >= self.version.saturating_add(remote.refresh_seconds)
            || (self.kid_miss
                && now
                    >= self
                        .last_attempt
                        .saturating_add(remote.unknown_kid_refresh_seconds))
    }
    fn blocks(&self) -> bool {
        self.keys.is_empty()
    }
    fn started(&mut self, now: i64) {
        self.last_attempt = now;
        self.kid_miss = false;
    }
    fn parse(body: &[u8]) -> Option<Vec<Key>> {
        parse_body(body)
    }

    fn parse_noting(body: &[u8]) -> Option<(Vec<Key>, Vec<String>)> {
        parse_body_noting(body)
    }
    fn install(&mut self, keys: Vec<Key>, version: i64) {
        self.keys = Rc::new(keys);
        self.version = version;
    }
    fn count(&self) -> usize {
        self.keys.len()
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

/// The fetch bookkeeping of a [`Tracked`] document, borrowed.
pub struct Schedule<'a> {
    /// `fetched_at` of what is in use (0: none yet).
    pub version: i64,
    /// Token of this worker's call in flight.
    pub in_flight: &'a mut Option<u32>,
    /// No fetch by this worker before this time (backoff).
    pub not_before: &'a mut i64,
    /// Current backoff, seconds (0 after a success).
    pub backoff: &'a mut i64,
}

/// A remote document each worker tracks (a provider's JWKS, its revocation list): fetched by one
/// worker under a lease, shared through shared data, adopted by the others.
pub trait Tracked {
    /// What the document parses to.
    type Value;
    /// Its shared record.
    const DOC: Doc;
    /// Its name in log lines.
    const NAME: &'static str;
    /// The provider's config field it comes from (`remote_jwks`).
    const FIELD: &'static str;
    /// What it holds, in log lines.
    const ITEMS: &'static str;
    /// Largest body read.
    const MAX_BYTES: usize;
    /// Counted on a usable answer.
    const OK: Metric;
    /// Counted on a failed fetch.
    const FAILED: Metric;

    /// Where the provider's config for it is.
    fn remote(provider: &Provider) -> Option<&RemoteJwks>;
    /// True if this worker should try to fetch now.
    fn due(&self, remote: &RemoteJwks, now: i64) -> bool;
    /// True while requests cannot be decided without it (a JWKS with no keys yet).
    fn blocks(&self) -> bool {
        false
    }
    /// A fetch was attempted at `now` (sent or refused by the host).
    fn started(&mut self, _now: i64) {}
    /// A body, if usable.
    fn parse(body: &[u8]) -> Option<Self::Value>;
    /// [`Self::parse`], with one line for the log per item of the body that is not used.
    fn parse_noting(body: &[u8]) -> Option<(Self::Value, Vec<String>)> {
        Self::parse(body).map(|value| (value, Vec::new()))
    }
    /// Puts a value in use, fetched at `version`.
    fn install(&mut self, value: Self::Value, version: i64);
    /// How many items are in use.
    fn count(&self) -> usize;
    /// The fetch bookkeeping.
    fn schedule(&mut self) -> Schedule<'_>;

    /// Adopts the shared record if it is newer than ours; true if it changed.
    fn adopt<H: SharedDataPort + ?Sized>(&mut self, host: &H, provider: &str) -> bool {
        let version = self.schedule().version;
        let Some((at, json)) = newer_record(host, Self::DOC, provider, version) else {
            return false;
        };
        match Self::parse(&json) {
            Some(value) => {
                self.install(value, at);
                true
            }
            None => false,
        }
    }

    /// Records a successful fetch, written to shared data for the other workers.
    fn fetched<H: SharedDataPort + ?Sized>(
        &mut self,
        host: &H,
        provider: &str,
        value: Self::Value,
        body: &[u8],
        now: i64,
    ) -> Result<(), HostError> {
        self.install(value, now);
        let schedule = self.schedule();
        *schedule.backoff = 0;
        *schedule.not_before = 0;
        publish(host, Self::DOC, provider, body, now)
    }

    /// Records a failed fetch: keep what is in use, back off, and hold the others off too.
    fn failed<H: SharedDataPort + ?Sized>(
        &mut self,
        host: &H,
        remote: &RemoteJwks,
        provider: &str,
        now: i64,
    ) {
        let schedule = self.schedule();
        *schedule.backoff = back_off(
            host,
            Self::DOC,
            provider,
            *schedule.backoff,
            remote.max_backoff_seconds,
            now,
        );
        *schedule.not_before = now.saturating_add(*schedule.backoff);
    }
}

/// Takes the fetch lease of `doc` of `provider` until `until`; false if another worker holds it.
pub fn take_lease<H: SharedDataPort + ?Sized>(
    host: &H,
    doc: Doc,
    provider: &str,
    now: i64,
    until: i64,
) -> bool {
    let key = lease_key(doc, provider);
    let Ok(entry) = host.shared_data(&key) else {
        return false;
    };
    if let Some(held) = entry
        .value
        .as_deref()
        .and_then(|v| decode_lease(doc, provider, v))
    {
        if held > now {
            return false;
        }
    }
    let value = encode_lease(doc, provider, until);
    host.set_shared_data(&key, value.as_bytes(), entry.cas)
        .is_ok()
}

pub(crate) fn write<H: SharedDataPort + ?Sized>(
    host: &H,
    key: &str,
    value: &[u8],
) -> Result<(), HostError> {
    let mut last = Err(HostError::CasMismatch);
    for _ in 0..CAS_RETRIES {
        let cas = host.shared_data(key).map(|e| e.cas).unwrap_or(0);
        last = host.set_shared_data(key, value, cas);
        if !matches!(last, Err(HostError::CasMismatch)) {
            return last;
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_check_the_provider() {
        let v = encode_record(Doc::Jwks, "a", 42, b"{\"keys\":[]}");
        assert_eq!(
            decode_record(Doc::Jwks, "a", &v),
            Some((42, &b"{\"keys\":[]}"[..]))
        );
        assert_eq!(decode_record(Doc::Jwks, "b", &v), None);
        assert_eq!(decode_record(Doc::Revocations, "a", &v), None);
        let lease = encode_lease(Doc::Jwks, "a", 7);
        assert_eq!(decode_lease(Doc::Jwks, "a", lease.as_bytes()), Some(7));
        assert_eq!(decode_lease(Doc::Jwks, "a", b"jwt-rbac-lease\nb\n7"), None);
        assert_eq!(decode_lease(Doc::Revocations, "a", lease.as_bytes()), None);
    }

    #[test]
    fn due_backoff_and_kid_miss() {
        let remote = RemoteJwks {
            upstream: "u".into(),
            authority: "a".into(),
            path: "/".into(),
            refresh_seconds: 300,
            unknown_kid_refresh_seconds: 30,
            timeout_ms: 1000,
            max_backoff_seconds: 8,
        };
        let mut s = RemoteState::default();
        assert!(s.due(&remote, 100), "no keys yet");
        s.keys = Rc::new(vec![]);
        s.version = 100;
        s.last_attempt = 100;
        assert!(s.due(&remote, 101), "still no keys");
        let k = jwk::parse_jwks(
            &serde_json::json!({"keys": [{"kty": "oct", "k": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"}]}),
            "f",
        )
        .unwrap();
        s.keys = Rc::new(k);
        assert!(!s.due(&remote, 101));
        assert!(s.due(&remote, 400), "refresh period");
        s.kid_miss = true;
        assert!(!s.due(&remote, 120));
        assert!(s.due(&remote, 130));
        s.in_flight = Some(1);
        assert!(!s.due(&remote, 130));
    }

    #[test]
    fn hmac_keys_from_a_remote_jwks_are_dropped() {
        let oct = serde_json::json!({"keys": [{"kty": "oct", "k": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"}]});
        assert!(parse_body(oct.to_string().as_bytes()).is_none());
        assert!(parse_body(b"{not json").is_none());
    }

    /// An identity provider's JWKS with keys beside its signing key that this plugin cannot
    /// use (Keycloak's shape: an `RSA-OAEP` encryption key in every realm): they are skipped,
    /// the signing key is kept. Before, any one of them made the whole document unusable, so
    /// no key was ever fetched from such a provider.
    #[test]
    fn keys_a_remote_jwks_carries_that_cannot_verify_are_skipped() {
        use base64::Engine;
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        // A 2048-bit odd modulus (top bit set) and e = 65537: a well-formed RSA public key.
        let mut n = vec![0xc5u8; 256];
        n[255] = 0x01;
        let rsa = |kid: &str, extra: serde_json::Value| {
            let mut k = serde_json::json!({"kty": "RSA", "kid": kid, "n": b64(&n), "e": "AQAB"});
            if let (Some(k), Some(e)) = (k.as_object_mut(), extra.as_object()) {
                k.extend(e.clone());
            }
            k
        };
        let jwks = serde_json::json!({"keys": [
            rsa("enc-1", serde_json::json!({"use": "enc", "alg": "RSA-OAEP"})),
            rsa("sig-1", serde_json::json!({"use": "sig", "alg": "RS256"})),
            {"kty": "EC", "kid": "p521", "crv": "P-521", "x": b64(&[1; 66]), "y": b64(&[2; 66])},
            {"kty": "OKP", "kid": "x25519", "crv": "X25519", "x": b64(&[3; 32])},
            rsa("short", serde_json::json!({"n": b64(&[0xc5; 128])})),
        ]});
        let keys = parse_body(jwks.to_string().as_bytes()).expect("the signing key is usable");
        let kids: Vec<_> = keys.iter().map(|k| k.kid.as_deref()).collect();
        assert_eq!(kids, [Some("sig-1")]);
        let (_, skipped) = parse_body_noting(jwks.to_string().as_bytes()).unwrap();
        assert_eq!(skipped.len(), 4, "{skipped:?}");
        assert!(
            skipped[0].starts_with("kid \"enc-1\" (keys[0].alg"),
            "{skipped:?}"
        );
        assert!(
            skipped[1].contains("p521") && skipped[1].contains("P-521"),
            "{skipped:?}"
        );
        assert!(
            skipped[3].contains("short") && skipped[3].contains("2048"),
            "{skipped:?}"
        );
        // Nothing usable at all: still refused (the last good keys stay in use).
        let none = serde_json::json!({"keys": [rsa("enc-1", serde_json::json!({"use": "enc"}))]});
        assert!(parse_body(none.to_string().as_bytes()).is_none());
        // The config's own JWKS stays strict: the same document is refused there, naming the key.
        let err = jwk::parse_jwks(&jwks, "providers.p.jwks").unwrap_err();
        assert_eq!(err.field, "providers.p.jwks.keys[0].alg");
    }
}

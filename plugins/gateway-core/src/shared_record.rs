//! Versioned records in proxy-wasm shared data: read, compute, write back with the cas read, retry
//! a bounded number of times.
//!
//! The hosts differ (see ARCHITECTURE.md), and this module is written for both:
//!
//! - **Envoy**: cas 0 writes unconditionally, every write gets a new cas, keys are never deleted
//!   (a "deleted" key holds an empty value).
//! - **Kong**: a write succeeds only if its cas equals the stored one (a missing key counts as 0),
//!   and keys are looked up by CRC32 only, so two keys can share one slot.
//!
//! Hence:
//!
//! - The full key is stored inside the value (`[key length: u16 LE][key][payload]`) and checked
//!   on every read: a record holding another key is a [`RecordError::KeyCollision`], never
//!   overwritten.
//! - Creation is idempotent: a missing (or empty) key is first written with the caller's
//!   *initial* payload at cas 0, then read back, and only then updated with the cas read. Under
//!   Kong's rule two creators cannot both win; under Envoy's the worst case is that a second
//!   creator writes the same initial payload again over an update made in between (a window of a
//!   few host calls, once per key in the life of the process).
//! - Every update writes with the cas it read; a [`HostError::CasMismatch`] means another worker
//!   won the race, and the whole read-compute-write starts again, at most `max_attempts` times.
//!   Running out is a [`RecordError::Contended`] the caller must handle explicitly.
//!
//! ```
//! use gateway_core::ports::{HostError, SharedDataPort, SharedEntry};
//! use gateway_core::shared_record::{update, Change};
//! use std::cell::RefCell;
//!
//! /// One key, Kong's rule: a write must carry the stored cas (0 when missing).
//! #[derive(Default)]
//! struct OneKey(RefCell<Option<(Vec<u8>, u32)>>);
//! impl SharedDataPort for OneKey {
//!     fn shared_data(&self, _key: &str) -> Result<SharedEntry, HostError> {
//!         let slot = self.0.borrow();
//!         Ok(SharedEntry { value: slot.as_ref().map(|s| s.0.clone()), cas: slot.as_ref().map_or(0, |s| s.1) })
//!     }
//!     fn set_shared_data(&self, _key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
//!         let stored = self.0.borrow().as_ref().map_or(0, |s| s.1);
//!         if cas != stored { return Err(HostError::CasMismatch); }
//!         *self.0.borrow_mut() = Some((value.to_vec(), stored + 1));
//!         Ok(())
//!     }
//! }
//!
//! let host = OneKey::default();
//! let bump = |payload: &[u8]| {
//!     let n = payload.first().copied().unwrap_or(0) + 1;
//!     Change::Write(vec![n], n)
//! };
//! assert_eq!(update(&host, "counter", &[0], 4, bump).unwrap().value, 1);
//! assert_eq!(update(&host, "counter", &[0], 4, bump).unwrap().value, 2);
//! ```

use crate::ports::{HostError, SharedDataPort};
use thiserror::Error;

/// Why a record could not be read or updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RecordError {
    /// A host call failed.
    #[error("shared data: {0}")]
    Host(HostError),
    /// The slot holds a record of another key (Kong: CRC32 collision).
    #[error("shared data key collision")]
    KeyCollision,
    /// The stored value is not a record (too short, bad key length).
    #[error("shared data record is malformed")]
    Malformed,
    /// Every attempt lost its compare-and-swap to another writer.
    #[error("shared data contended: {attempts} attempts lost their cas")]
    Contended {
        /// Attempts made.
        attempts: u32,
    },
}

/// What the caller's function decides for the payload it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<R> {
    /// Write this payload (with the cas read), then return `R`.
    Write(Vec<u8>, R),
    /// Leave the record as it is and return `R` (no host write).
    Keep(R),
}

/// The result of a successful [`update`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Updated<R> {
    /// What the caller's function returned on the attempt that stuck.
    pub value: R,
    /// Whether this call wrote the record (false for [`Change::Keep`]).
    pub wrote: bool,
    /// Attempts used (1 when the first read-compute-write stuck).
    pub attempts: u32,
}

/// Encodes `payload` under `key`: `[key length: u16 LE][key bytes][payload]`.
pub fn encode(key: &str, payload: &[u8]) -> Vec<u8> {
    let key_bytes = key.as_bytes();
    let len = u16::try_from(key_bytes.len()).unwrap_or(u16::MAX);
    let key_bytes = key_bytes.get(..usize::from(len)).unwrap_or(key_bytes);
    let mut out = Vec::with_capacity(2 + key_bytes.len() + payload.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(key_bytes);
    out.extend_from_slice(payload);
    out
}

/// Decodes a stored value written by [`encode`] for `key`; the payload.
pub fn decode<'v>(key: &str, value: &'v [u8]) -> Result<&'v [u8], RecordError> {
    let (len, rest) = value.split_at_checked(2).ok_or(RecordError::Malformed)?;
    let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
    let (stored_key, payload) = rest.split_at_checked(len).ok_or(RecordError::Malformed)?;
    if stored_key != key.as_bytes() {
        return Err(RecordError::KeyCollision);
    }
    Ok(payload)
}

/// Reads the payload of `key` and its cas; `None` when the key is missing or empty.
pub fn read<H: SharedDataPort + ?Sized>(
    host: &H,
    key: &str,
) -> Result<Option<(Vec<u8>, u32)>, RecordError> {
    let entry = match host.shared_data(key) {
        Ok(entry) => entry,
        Err(HostError::NotFound) => return Ok(None),
        Err(err) => return Err(RecordError::Host(err)),
    };
    match entry.value {
        None => Ok(None),
        Some(value) if value.is_empty() => Ok(None),
        Some(value) => Ok(Some((decode(key, &value)?.to_vec(), entry.cas))),
    }
}

/// Read-modify-write of the record at `key` with bounded cas retries.
///
/// A missing key is created with `initial` first (idempotently, see the module docs), so `f`
/// always sees a stored payload. `f` may run several times (once per attempt): it must be a pure
/// function of the payload. `max_attempts` is at least 1.
pub fn update<H, R, F>(
    host: &H,
    key: &str,
    initial: &[u8],
    max_attempts: u32,
    mut f: F,
) -> Result<Updated<R>, RecordError>
where
    H: SharedDataPort + ?Sized,
    F: FnMut(&[u8]) -> Change<R>,
{
    let max_attempts = max_attempts.max(1);
    // Creating the key takes one more read; it is not counted against the caller's bound.
    let mut created = false;
    let mut attempts = 0;
    while attempts < max_attempts {
        let Some((payload, cas)) = read(host, key)? else {
            if created {
                // Written a moment ago and already gone (Kong evicted it): count the attempt.
                attempts += 1;
            }
            created = true;
            create(host, key, initial)?;
            continue;
        };
        attempts += 1;
        match f(&payload) {
            Change::Keep(value) => {
                return Ok(Updated {
                    value,
                    wrote: false,
                    attempts,
                })
            }
            Change::Write(next, value) => {
                // A stored key always has a cas; 0 here would be an unconditional write on Envoy.
                if cas == 0 {
                    return Err(RecordError::Host(HostError::InternalFailure));
                }
                match host.set_shared_data(key, &encode(key, &next), cas) {
                    Ok(()) => {
                        return Ok(Updated {
                            value,
                            wrote: true,
                            attempts,
                        })
                    }
                    Err(HostError::CasMismatch) => continue,
                    Err(err) => return Err(RecordError::Host(err)),
                }
            }
        }
    }
    Err(RecordError::Contended { attempts })
}

/// Writes `initial` at cas 0; losing the race to another creator is fine.
fn create<H: SharedDataPort + ?Sized>(
    host: &H,
    key: &str,
    initial: &[u8],
) -> Result<(), RecordError> {
    match host.set_shared_data(key, &encode(key, initial), 0) {
        Ok(()) | Err(HostError::CasMismatch) => Ok(()),
        Err(err) => Err(RecordError::Host(err)),
    }
}

#[cfg(all(test, feature = "fake-host"))]
mod tests {
    use super::*;
    use crate::fake::{CasRule, FakeHost};

    fn host(rule: CasRule) -> FakeHost {
        let host = FakeHost::default();
        host.cas_rule.set(rule);
        host
    }

    fn bump(payload: &[u8]) -> Change<u8> {
        let n = payload.first().copied().unwrap_or(0).wrapping_add(1);
        Change::Write(vec![n], n)
    }

    #[test]
    fn encode_decode_round_trip_and_collision() {
        let value = encode("a/b", b"xyz");
        assert_eq!(decode("a/b", &value).unwrap(), b"xyz");
        assert_eq!(decode("a/c", &value), Err(RecordError::KeyCollision));
        assert_eq!(decode("a", &[1]), Err(RecordError::Malformed));
        assert_eq!(decode("a", &[5, 0, b'a']), Err(RecordError::Malformed));
    }

    #[test]
    fn creates_then_updates_under_both_rules() {
        for rule in [CasRule::Envoy, CasRule::Kong] {
            let host = host(rule);
            let first = update(&host, "k", &[10], 3, bump).unwrap();
            assert_eq!(first.value, 11, "{rule:?}");
            assert!(first.wrote);
            assert_eq!(first.attempts, 1);
            assert_eq!(update(&host, "k", &[10], 3, bump).unwrap().value, 12);
            assert_eq!(read(&host, "k").unwrap().unwrap().0, vec![12]);
        }
    }

    #[test]
    fn keep_does_not_write() {
        for rule in [CasRule::Envoy, CasRule::Kong] {
            let host = host(rule);
            update(&host, "k", &[1], 3, bump).unwrap();
            let cas_before = host.shared_data("k").unwrap().cas;
            let kept = update(&host, "k", &[1], 3, |p: &[u8]| Change::Keep(p[0])).unwrap();
            assert_eq!(kept.value, 2);
            assert!(!kept.wrote);
            assert_eq!(host.shared_data("k").unwrap().cas, cas_before);
        }
    }

    #[test]
    fn a_lost_race_is_retried_and_no_update_is_lost() {
        for rule in [CasRule::Envoy, CasRule::Kong] {
            let host = host(rule);
            update(&host, "k", &[0], 3, bump).unwrap();
            let mut raced = false;
            // Another worker bumps the record between our read and our write, once.
            let result = update(&host, "k", &[0], 3, |p: &[u8]| {
                if !raced {
                    raced = true;
                    update(&host, "k", &[0], 3, bump).unwrap();
                }
                bump(p)
            })
            .unwrap();
            assert_eq!(result.attempts, 2, "{rule:?}");
            assert_eq!(result.value, 3, "{rule:?}: both increments kept");
            assert_eq!(read(&host, "k").unwrap().unwrap().0, vec![3]);
        }
    }

    #[test]
    fn retries_are_bounded() {
        for rule in [CasRule::Envoy, CasRule::Kong] {
            let host = host(rule);
            update(&host, "k", &[0], 3, bump).unwrap();
            let mut calls = 0;
            let err = update(&host, "k", &[0], 4, |p: &[u8]| {
                calls += 1;
                update(&host, "k", &[0], 3, bump).unwrap();
                bump(p)
            })
            .unwrap_err();
            assert_eq!(err, RecordError::Contended { attempts: 4 });
            assert_eq!(calls, 4);
        }
    }

    #[test]
    fn creation_is_idempotent() {
        for rule in [CasRule::Envoy, CasRule::Kong] {
            let host = host(rule);
            // Two workers both saw the key missing; both create it with the same initial value.
            create(&host, "k", &[7]).unwrap();
            create(&host, "k", &[7]).unwrap();
            assert_eq!(read(&host, "k").unwrap().unwrap().0, vec![7], "{rule:?}");
            assert_eq!(update(&host, "k", &[7], 2, bump).unwrap().value, 8);
        }
    }

    #[test]
    fn an_empty_value_counts_as_missing() {
        let host = host(CasRule::Envoy);
        host.set_shared_data("k", b"", 0).unwrap();
        assert_eq!(read(&host, "k").unwrap(), None);
        assert_eq!(update(&host, "k", &[4], 2, bump).unwrap().value, 5);
    }

    #[test]
    fn a_record_of_another_key_is_never_overwritten() {
        for rule in [CasRule::Envoy, CasRule::Kong] {
            let host = host(rule);
            // As on Kong when two keys share a CRC32 slot: the slot holds "other"'s record.
            host.set_shared_data("k", &encode("other", &[9]), 0)
                .unwrap();
            assert_eq!(
                update(&host, "k", &[0], 3, bump),
                Err(RecordError::KeyCollision)
            );
            assert_eq!(
                decode("other", &host.shared_data("k").unwrap().value.unwrap()).unwrap(),
                &[9]
            );
        }
    }
}

//! The slot table: a fixed number of shared-data entries holding every key's state.
//!
//! - A key hashes to `probes` candidate slots: the first is `crc32(key) % slots`, the others
//!   FNV-1a with a per-probe seed. The shared-data key of slot `i` is `<prefix><i>`, so memory is
//!   bounded by `slots` entries however many clients arrive (Envoy never deletes a key).
//! - A slot's value is a record: `[key length: u16 LE][full key][state]`, the layout of
//!   [`gateway_core::shared_record`]. The full key is checked on every read: a slot holding
//!   another key is never counted for this one (Kong finds keys by CRC32 only, so even two slot
//!   keys could share one entry; the check makes that harmless).
//! - A slot is free when empty, missing, malformed, or holding a state past its idle time (a
//!   full bucket, elapsed windows); a free slot is claimed with a compare-and-swap on the cas it
//!   was read at, so two workers claiming one slot cannot both win.
//! - When every candidate slot holds another live key, the key is "slots exhausted".
//!
//! Every lookup reads all candidates unless the first holds the key (one read, the common case),
//! so a key never has two live records.

use crate::limit::LimitState;
use gateway_core::ports::{HostError, SharedDataPort, SharedEntry};
use gateway_core::shared_record;

/// Where a key's state lives, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    /// The slot holds this key's record.
    Owned {
        /// Slot index.
        slot: u32,
        /// cas it was read at.
        cas: u32,
        /// The stored state.
        state: LimitState,
    },
    /// The slot can be claimed for this key.
    Free {
        /// Slot index.
        slot: u32,
        /// cas it was read at (0: the entry does not exist).
        cas: u32,
        /// True when the slot never held a record (claiming it adds a slot in use).
        unused: bool,
    },
    /// Every candidate slot holds another live key.
    Exhausted,
}

/// The table's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotTable {
    /// Number of slots.
    pub slots: u32,
    /// Candidate slots per key.
    pub probes: u32,
    /// Shared-data key prefix.
    pub prefix: String,
}

fn exists(read: Result<SharedEntry, HostError>) -> bool {
    read.is_ok_and(|entry| entry.value.is_some() || entry.cas != 0)
}

/// What a stored value holds.
enum Content<'v> {
    Empty,
    Record(&'v [u8], &'v [u8]),
    Malformed,
}

fn content(value: Option<&[u8]>) -> Content<'_> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Content::Empty;
    };
    let Some((len, rest)) = value.split_first_chunk::<2>() else {
        return Content::Malformed;
    };
    match rest.split_at_checked(usize::from(u16::from_le_bytes(*len))) {
        Some((key, payload)) => Content::Record(key, payload),
        None => Content::Malformed,
    }
}

impl SlotTable {
    /// The slot of `key` at probe `p`.
    pub fn index(&self, key: &str, probe: u32) -> u32 {
        let slots = self.slots.max(1);
        if probe == 0 {
            crc32fast::hash(key.as_bytes()) % slots
        } else {
            let h = crate::key::fnv1a64(key.as_bytes(), u64::from(probe));
            u32::try_from(h % u64::from(slots)).unwrap_or(0)
        }
    }

    /// The shared-data key of slot `slot`.
    pub fn slot_key(&self, slot: u32) -> String {
        format!("{}{slot}", self.prefix)
    }

    /// Finds `key`'s record or a slot to claim for it.
    pub fn locate<H: SharedDataPort + ?Sized>(
        &self,
        host: &H,
        key: &str,
        now_ns: u64,
    ) -> Result<Located, HostError> {
        let mut free = None;
        let mut seen = [u32::MAX; 8];
        for probe in 0..self.probes.clamp(1, 8) {
            let slot = self.index(key, probe);
            if seen.contains(&slot) {
                continue;
            }
            if let Some(s) = seen.get_mut(probe as usize) {
                *s = slot;
            }
            let (value, cas) = match host.shared_data(&self.slot_key(slot)) {
                Ok(entry) => (entry.value, entry.cas),
                Err(HostError::NotFound) => (None, 0),
                Err(err) => return Err(err),
            };
            let candidate = match content(value.as_deref()) {
                Content::Empty => Some(Located::Free {
                    slot,
                    cas,
                    unused: true,
                }),
                Content::Record(stored, payload) if stored == key.as_bytes() => {
                    match LimitState::decode(payload) {
                        Some((state, _)) => return Ok(Located::Owned { slot, cas, state }),
                        None => Some(Located::Free {
                            slot,
                            cas,
                            unused: false,
                        }),
                    }
                }
                Content::Record(_, payload) => match LimitState::decode(payload) {
                    Some((_, idle_at)) if idle_at > now_ns => None,
                    _ => Some(Located::Free {
                        slot,
                        cas,
                        unused: false,
                    }),
                },
                Content::Malformed => Some(Located::Free {
                    slot,
                    cas,
                    unused: false,
                }),
            };
            if free.is_none() {
                free = candidate;
            }
        }
        Ok(free.unwrap_or(Located::Exhausted))
    }

    /// Writes `key`'s state into `slot` if it is still at `cas`.
    pub fn write<H: SharedDataPort + ?Sized>(
        &self,
        host: &H,
        slot: u32,
        cas: u32,
        key: &str,
        state: &LimitState,
        idle_at: u64,
    ) -> Result<(), HostError> {
        let record = shared_record::encode(key, &state.encode(idle_at));
        host.set_shared_data(&self.slot_key(slot), &record, cas)
    }

    /// Creates every missing slot with an empty value, so that no later write is a creation.
    ///
    /// On Envoy a write to a missing key succeeds whatever its cas, so two workers creating one
    /// key could both win; a pre-created slot is always written with the cas read. A host that
    /// deletes empty values (Kong) keeps nothing: detected on the first slot, then skipped
    /// (Kong's cas rule makes creation safe anyway). Returns the slots created.
    pub fn prefill<H: SharedDataPort + ?Sized>(&self, host: &H) -> Result<u32, HostError> {
        let mut created = 0;
        for slot in 0..self.slots {
            let key = self.slot_key(slot);
            match host.shared_data(&key) {
                Ok(entry) if entry.value.is_some() || entry.cas != 0 => continue,
                Ok(_) | Err(HostError::NotFound) => {}
                Err(err) => return Err(err),
            }
            match host.set_shared_data(&key, b"", 0) {
                Ok(()) | Err(HostError::CasMismatch) => {}
                Err(err) => return Err(err),
            }
            created += 1;
            if slot == 0 && !exists(host.shared_data(&key)) {
                return Ok(0);
            }
        }
        Ok(created)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limit::NANOS_PER_SEC;
    use gateway_core::fake::{CasRule, FakeHost};

    fn table(slots: u32) -> SlotTable {
        SlotTable {
            slots,
            probes: 2,
            prefix: "t:".into(),
        }
    }

    fn host(rule: CasRule) -> FakeHost {
        let h = FakeHost::default();
        h.cas_rule.set(rule);
        h
    }

    const LIVE: LimitState = LimitState::Window {
        start_ns: 0,
        previous: 0,
        current: 1,
    };

    #[test]
    fn colliding_crc32_keys_share_the_first_probe_only() {
        let t = table(1024);
        let a = "r|10.226.118.64|8080";
        let b = "r|172.31.45.240|8080";
        assert_eq!(crc32fast::hash(a.as_bytes()), crc32fast::hash(b.as_bytes()));
        assert_eq!(t.index(a, 0), t.index(b, 0));
        assert_ne!(t.index(a, 1), t.index(b, 1));
    }

    #[test]
    fn locate_claims_owns_and_skips_live_others() {
        for rule in [CasRule::Envoy, CasRule::Kong] {
            let h = host(rule);
            let t = table(1024);
            let a = "r|10.226.118.64|8080";
            let b = "r|172.31.45.240|8080";
            let Located::Free { slot, cas, unused } = t.locate(&h, a, 1).unwrap() else {
                panic!()
            };
            assert!(unused);
            assert_eq!(slot, t.index(a, 0));
            t.write(&h, slot, cas, a, &LIVE, u64::MAX).unwrap();
            assert!(matches!(
                t.locate(&h, a, 1).unwrap(),
                Located::Owned { state, .. } if state == LIVE
            ));
            // b's first slot is a's: it gets its second.
            let Located::Free { slot: sb, cas, .. } = t.locate(&h, b, 1).unwrap() else {
                panic!()
            };
            assert_eq!(sb, t.index(b, 1), "{rule:?}");
            t.write(&h, sb, cas, b, &LIVE, u64::MAX).unwrap();
            assert!(matches!(
                t.locate(&h, b, 1).unwrap(),
                Located::Owned { slot, .. } if slot == sb
            ));
        }
    }

    #[test]
    fn idle_records_are_taken_over_live_ones_exhaust() {
        let h = host(CasRule::Kong);
        let t = SlotTable {
            slots: 1,
            probes: 1,
            prefix: "t:".into(),
        };
        let Located::Free { cas, .. } = t.locate(&h, "a", 0).unwrap() else {
            panic!()
        };
        t.write(&h, 0, cas, "a", &LIVE, 10 * NANOS_PER_SEC).unwrap();
        assert_eq!(
            t.locate(&h, "b", NANOS_PER_SEC).unwrap(),
            Located::Exhausted
        );
        assert!(matches!(
            t.locate(&h, "b", 10 * NANOS_PER_SEC).unwrap(),
            Located::Free { unused: false, .. }
        ));
    }

    #[test]
    fn a_claim_race_has_one_winner() {
        for rule in [CasRule::Envoy, CasRule::Kong] {
            let h = host(rule);
            let t = table(16);
            t.prefill(&h).unwrap();
            let Located::Free { slot, cas, .. } = t.locate(&h, "a", 0).unwrap() else {
                panic!()
            };
            // Two workers read the same free slot at the same cas.
            assert!(t.write(&h, slot, cas, "a", &LIVE, u64::MAX).is_ok());
            assert_eq!(
                t.write(&h, slot, cas, "a", &LIVE, u64::MAX),
                Err(HostError::CasMismatch),
                "{rule:?}"
            );
        }
    }

    #[test]
    fn prefill_creates_on_envoy_and_stops_on_kong() {
        let h = host(CasRule::Envoy);
        let t = table(16);
        assert_eq!(t.prefill(&h).unwrap(), 16);
        assert_eq!(h.shared.borrow().len(), 16);
        assert_eq!(t.prefill(&h).unwrap(), 0, "idempotent");
        // Every prefilled slot has a cas, so a claim is a real compare-and-swap.
        assert!(matches!(
            t.locate(&h, "k", 0).unwrap(),
            Located::Free { cas, unused: true, .. } if cas != 0
        ));
    }

    #[test]
    fn malformed_values_are_free() {
        let h = host(CasRule::Envoy);
        let t = SlotTable {
            slots: 1,
            probes: 1,
            prefix: "t:".into(),
        };
        h.set_shared_data("t:0", &[200, 0, 1], 0).unwrap();
        assert!(matches!(
            t.locate(&h, "a", 0).unwrap(),
            Located::Free { unused: false, .. }
        ));
    }
}

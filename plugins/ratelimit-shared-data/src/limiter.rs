//! Checking a request against every matching rule: check all, then commit all.
//!
//! 1. **Check**: each rule's slot is read once and its limit evaluated. The first rule that
//!    refuses answers, and nothing is written for any rule.
//! 2. **Commit**: every rule's new state is written with the cas it was read at. A lost
//!    compare-and-swap re-reads and re-evaluates that rule (bounded by `max_cas_attempts`). If a
//!    rule now refuses, the rules already committed for this request get their request back
//!    (a refund, itself compare-and-swapped), so no rule spends a token on a refused request.
//!    Between a commit and its refund another request may see the token spent: a refund window
//!    of a few host calls, which can only refuse, never admit, too much.
//! 3. Running out of attempts, or every candidate slot holding another live key, or the host
//!    store failing, each have a configured answer and a counter: never a silent allow.
//!
//! Common case, one rule: one read, one write.

use crate::config::{FailureMode, Fallback, SharedDataConfig};
use crate::limit::{Limit, LimitState, Verdict};
use crate::slots::{Located, SlotTable};
use gateway_core::ports::{HostError, SharedDataPort};

/// One rule to check: its index, limit and full key.
#[derive(Debug, Clone)]
pub struct Item<'a> {
    /// Rule index (in config order).
    pub rule: usize,
    /// The rule's limit.
    pub limit: &'a Limit,
    /// The full key.
    pub key: String,
}

/// Quota left under one rule, for the answer headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Rule index.
    pub rule: usize,
    /// Requests still admitted now.
    pub remaining: u64,
    /// Seconds until fully available again.
    pub reset_secs: u64,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// The rule's limit is spent.
    Limit,
    /// Every candidate slot holds another live key (`on_slots_exhausted: deny`).
    SlotsExhausted,
    /// Every attempt lost its compare-and-swap (`on_cas_exhausted: deny`).
    Contention,
    /// The host store failed (`failure_mode: closed`).
    StoreError,
}

/// The answer for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Admitted; the most restrictive quota among the rules committed, if any.
    Allowed(Option<Quota>),
    /// Refused by `rule`.
    Denied {
        /// Rule index.
        rule: usize,
        /// Seconds to wait.
        retry_after_secs: u64,
        /// Why.
        reason: DenyReason,
    },
}

/// Counters of what happened, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Compare-and-swaps lost and retried.
    pub cas_retries: u32,
    /// Rules whose attempts all lost.
    pub cas_exhausted: u32,
    /// Rules whose candidate slots all held live keys.
    pub slots_exhausted: u32,
    /// Slots claimed for the first time (slots in use grew).
    pub slots_claimed: u32,
    /// Idle slots of other keys taken over.
    pub takeovers: u32,
    /// Host store failures.
    pub store_errors: u32,
    /// Requests given back to rules after a later rule refused.
    pub refunds: u32,
    /// Refunds that could not be written.
    pub refund_failures: u32,
}

/// The limiter: table shape and failure policies.
#[derive(Debug, Clone)]
pub struct Limiter {
    /// The slot table.
    pub table: SlotTable,
    /// Attempts per rule.
    pub max_attempts: u32,
    /// Answer when attempts run out.
    pub on_cas_exhausted: Fallback,
    /// Answer when slots are exhausted.
    pub on_slots_exhausted: Fallback,
    /// Answer when the store fails.
    pub failure_mode: FailureMode,
}

struct Pending {
    item: usize,
    slot: u32,
    cas: u32,
    unused: bool,
    takeover: bool,
    next: LimitState,
    quota: Quota,
}

enum Evaluated {
    Go(Pending),
    Skip,
    Deny(u64, DenyReason),
}

impl Limiter {
    /// A limiter from the `shared_data` settings.
    pub fn new(config: &SharedDataConfig) -> Self {
        Self {
            table: SlotTable {
                slots: config.slots,
                probes: config.probes,
                prefix: config.key_prefix.clone(),
            },
            max_attempts: config.max_cas_attempts.max(1),
            on_cas_exhausted: config.on_cas_exhausted,
            on_slots_exhausted: config.on_slots_exhausted,
            failure_mode: config.failure_mode,
        }
    }

    fn store_error(&self, counts: &mut Counts, rule: usize) -> Result<Evaluated, Decision> {
        counts.store_errors += 1;
        match self.failure_mode {
            FailureMode::Open => Ok(Evaluated::Skip),
            FailureMode::Closed => Err(Decision::Denied {
                rule,
                retry_after_secs: 1,
                reason: DenyReason::StoreError,
            }),
        }
    }

    fn evaluate<H: SharedDataPort + ?Sized>(
        &self,
        host: &H,
        items: &[Item<'_>],
        index: usize,
        now_ns: u64,
        counts: &mut Counts,
    ) -> Result<Evaluated, Decision> {
        let Some(item) = items.get(index) else {
            return Ok(Evaluated::Skip);
        };
        let located = match self.table.locate(host, &item.key, now_ns) {
            Ok(located) => located,
            Err(_) => return self.store_error(counts, item.rule),
        };
        let (slot, cas, prior, unused) = match located {
            Located::Owned { slot, cas, state } => (slot, cas, Some(state), false),
            Located::Free { slot, cas, unused } => (slot, cas, None, unused),
            Located::Exhausted => {
                counts.slots_exhausted += 1;
                return Ok(match self.on_slots_exhausted {
                    Fallback::Allow => Evaluated::Skip,
                    Fallback::Deny => Evaluated::Deny(1, DenyReason::SlotsExhausted),
                });
            }
        };
        Ok(match item.limit.check(prior, now_ns) {
            Verdict::Allowed {
                next,
                remaining,
                reset_secs,
            } => Evaluated::Go(Pending {
                item: index,
                slot,
                cas,
                unused,
                takeover: prior.is_none() && !unused,
                next,
                quota: Quota {
                    rule: item.rule,
                    remaining,
                    reset_secs,
                },
            }),
            Verdict::Denied { retry_after_secs } => {
                Evaluated::Deny(retry_after_secs, DenyReason::Limit)
            }
        })
    }

    /// Checks `items` (every matching rule of one request) at `now_ns`.
    pub fn check<H: SharedDataPort + ?Sized>(
        &self,
        host: &H,
        items: &[Item<'_>],
        now_ns: u64,
    ) -> (Decision, Counts) {
        let mut counts = Counts::default();
        let decision = self.run(host, items, now_ns, &mut counts);
        (decision, counts)
    }

    fn run<H: SharedDataPort + ?Sized>(
        &self,
        host: &H,
        items: &[Item<'_>],
        now_ns: u64,
        counts: &mut Counts,
    ) -> Decision {
        // Phase 1: check every rule, write nothing.
        let mut pending = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            match self.evaluate(host, items, index, now_ns, counts) {
                Err(decision) => return decision,
                Ok(Evaluated::Skip) => {}
                Ok(Evaluated::Go(p)) => pending.push(p),
                Ok(Evaluated::Deny(retry_after_secs, reason)) => {
                    return Decision::Denied {
                        rule: item.rule,
                        retry_after_secs,
                        reason,
                    }
                }
            }
        }
        // Phase 2: commit each, re-evaluating a rule whose cas was lost.
        let mut committed: Vec<Pending> = Vec::with_capacity(pending.len());
        for mut p in pending {
            let mut attempts = 1;
            while let Some(item) = items.get(p.item) {
                let idle_at = item.limit.idle_at(&p.next);
                match self
                    .table
                    .write(host, p.slot, p.cas, &item.key, &p.next, idle_at)
                {
                    Ok(()) => {
                        counts.slots_claimed += u32::from(p.unused);
                        counts.takeovers += u32::from(p.takeover);
                        committed.push(p);
                        break;
                    }
                    Err(HostError::CasMismatch) if attempts < self.max_attempts => {
                        attempts += 1;
                        counts.cas_retries += 1;
                        match self.evaluate(host, items, p.item, now_ns, counts) {
                            Ok(Evaluated::Go(again)) => p = again,
                            Ok(Evaluated::Skip) => break,
                            Ok(Evaluated::Deny(retry_after_secs, reason)) => {
                                self.refund_all(host, items, &committed, now_ns, counts);
                                return Decision::Denied {
                                    rule: item.rule,
                                    retry_after_secs,
                                    reason,
                                };
                            }
                            Err(decision) => {
                                self.refund_all(host, items, &committed, now_ns, counts);
                                return decision;
                            }
                        }
                    }
                    Err(HostError::CasMismatch) => {
                        counts.cas_retries += 1;
                        counts.cas_exhausted += 1;
                        match self.on_cas_exhausted {
                            Fallback::Allow => break,
                            Fallback::Deny => {
                                self.refund_all(host, items, &committed, now_ns, counts);
                                return Decision::Denied {
                                    rule: item.rule,
                                    retry_after_secs: 1,
                                    reason: DenyReason::Contention,
                                };
                            }
                        }
                    }
                    Err(_) => match self.store_error(counts, item.rule) {
                        Ok(_) => break,
                        Err(decision) => {
                            self.refund_all(host, items, &committed, now_ns, counts);
                            return decision;
                        }
                    },
                }
            }
        }
        let tightest = committed
            .iter()
            .map(|p| p.quota)
            .min_by_key(|q| (q.remaining, std::cmp::Reverse(q.reset_secs)));
        Decision::Allowed(tightest)
    }

    /// Gives the request back to every committed rule.
    fn refund_all<H: SharedDataPort + ?Sized>(
        &self,
        host: &H,
        items: &[Item<'_>],
        committed: &[Pending],
        now_ns: u64,
        counts: &mut Counts,
    ) {
        for p in committed {
            let Some(item) = items.get(p.item) else {
                continue;
            };
            if self.refund(host, item, p, now_ns) {
                counts.refunds += 1;
            } else {
                counts.refund_failures += 1;
            }
        }
    }

    fn refund<H: SharedDataPort + ?Sized>(
        &self,
        host: &H,
        item: &Item<'_>,
        p: &Pending,
        now_ns: u64,
    ) -> bool {
        for _ in 0..self.max_attempts {
            let key = self.table.slot_key(p.slot);
            let Ok(entry) = host.shared_data(&key) else {
                return false;
            };
            let Some(value) = entry.value else {
                return false;
            };
            let Ok(payload) = gateway_core::shared_record::decode(&item.key, &value) else {
                // Taken over meanwhile: nothing of ours left to refund.
                return false;
            };
            let Some((state, _)) = LimitState::decode(payload) else {
                return false;
            };
            let back = item.limit.refund(state, p.next.window_start(), now_ns);
            let idle_at = item.limit.idle_at(&back);
            match self
                .table
                .write(host, p.slot, entry.cas, &item.key, &back, idle_at)
            {
                Ok(()) => return true,
                Err(HostError::CasMismatch) => continue,
                Err(_) => return false,
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limit::{SlidingWindow, TokenBucket, NANOS_PER_SEC};
    use gateway_core::fake::{CasRule, FakeHost};
    use gateway_core::ports::SharedEntry;
    use std::cell::Cell;

    const S: u64 = NANOS_PER_SEC;
    const RULES: [CasRule; 2] = [CasRule::Envoy, CasRule::Kong];

    fn limiter(slots: u32) -> Limiter {
        Limiter::new(&SharedDataConfig {
            slots,
            max_cas_attempts: 4,
            ..SharedDataConfig::default()
        })
    }

    fn host(rule: CasRule) -> FakeHost {
        let h = FakeHost::default();
        h.cas_rule.set(rule);
        h
    }

    fn window(limit: u32) -> Limit {
        Limit::Window(SlidingWindow {
            limit,
            window_ns: 60 * S,
        })
    }

    fn item<'a>(rule: usize, limit: &'a Limit, key: &str) -> Item<'a> {
        Item {
            rule,
            limit,
            key: key.into(),
        }
    }

    fn admitted(l: &Limiter, h: &FakeHost, items: &[Item<'_>], n: u32, now: u64) -> u32 {
        (0..n)
            .filter(|_| matches!(l.check(h, items, now).0, Decision::Allowed(_)))
            .count() as u32
    }

    struct Counting<'h> {
        inner: &'h FakeHost,
        reads: Cell<u32>,
        writes: Cell<u32>,
    }

    impl SharedDataPort for Counting<'_> {
        fn shared_data(&self, key: &str) -> Result<SharedEntry, HostError> {
            self.reads.set(self.reads.get() + 1);
            self.inner.shared_data(key)
        }
        fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
            self.writes.set(self.writes.get() + 1);
            self.inner.set_shared_data(key, value, cas)
        }
    }

    #[test]
    fn one_rule_one_read_one_write() {
        for rule in RULES {
            let h = host(rule);
            let l = limiter(64);
            l.table.prefill(&h).unwrap();
            let w = window(3);
            let items = [item(0, &w, "r|a")];
            let (d, counts) = l.check(&h, &items, 10 * S);
            assert!(matches!(
                d,
                Decision::Allowed(Some(Quota { remaining: 2, .. }))
            ));
            assert_eq!(counts.slots_claimed, 1);
            // Known key: one read, one write.
            let counting = Counting {
                inner: &h,
                reads: Cell::new(0),
                writes: Cell::new(0),
            };
            l.check(&counting, &items, 10 * S);
            assert_eq!(counting.reads.get(), 1, "{rule:?}");
            assert_eq!(counting.writes.get(), 1);
            assert_eq!(admitted(&l, &h, &items, 10, 10 * S), 1);
        }
    }

    #[test]
    fn a_refusing_rule_spends_no_token_of_another() {
        for rule in RULES {
            let h = host(rule);
            let l = limiter(64);
            let per_client = window(5);
            let global = window(2);
            let items = [item(0, &per_client, "c|a"), item(1, &global, "g|")];
            assert_eq!(admitted(&l, &h, &items, 10, S), 2, "{rule:?}");
            // The per-client rule spent only the two admitted requests: 3 left.
            let alone = [item(0, &per_client, "c|a")];
            assert_eq!(admitted(&l, &h, &alone, 10, S), 3, "{rule:?}");
        }
    }

    /// A host that lets "another worker" write right before our `n`-th set.
    struct Racing<'h> {
        inner: &'h FakeHost,
        before_set: Cell<u32>,
        race: &'h dyn Fn(&FakeHost),
    }

    impl SharedDataPort for Racing<'_> {
        fn shared_data(&self, key: &str) -> Result<SharedEntry, HostError> {
            self.inner.shared_data(key)
        }
        fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
            let n = self.before_set.get();
            self.before_set.set(n.saturating_sub(1));
            if n == 1 {
                (self.race)(self.inner);
            }
            self.inner.set_shared_data(key, value, cas)
        }
    }

    #[test]
    fn a_lost_race_is_retried_and_never_over_admits() {
        for rule in RULES {
            let h = host(rule);
            let l = limiter(64);
            l.table.prefill(&h).unwrap();
            let w = window(2);
            let items = [item(0, &w, "r|a")];
            assert!(matches!(l.check(&h, &items, S).0, Decision::Allowed(_)));
            // Another worker takes the last token between our read and our write.
            let race = |inner: &FakeHost| {
                let other = limiter(64);
                let w = window(2);
                assert!(matches!(
                    other.check(inner, &[item(0, &w, "r|a")], S).0,
                    Decision::Allowed(_)
                ));
            };
            let racing = Racing {
                inner: &h,
                before_set: Cell::new(1),
                race: &race,
            };
            let (d, counts) = l.check(&racing, &items, S);
            assert!(
                matches!(
                    d,
                    Decision::Denied {
                        reason: DenyReason::Limit,
                        ..
                    }
                ),
                "{rule:?}: {d:?}"
            );
            assert_eq!(counts.cas_retries, 1);
        }
    }

    #[test]
    fn a_rule_refusing_at_commit_refunds_the_committed_ones() {
        for rule in RULES {
            let h = host(rule);
            let l = limiter(64);
            l.table.prefill(&h).unwrap();
            let first = window(5);
            let second = window(1);
            let items = [item(0, &first, "a|x"), item(1, &second, "b|x")];
            // Between check and commit, another worker spends the second rule's only request.
            let race = |inner: &FakeHost| {
                let other = limiter(64);
                let second = window(1);
                assert!(matches!(
                    other.check(inner, &[item(1, &second, "b|x")], S).0,
                    Decision::Allowed(_)
                ));
            };
            let racing = Racing {
                inner: &h,
                before_set: Cell::new(2),
                race: &race,
            };
            let (d, counts) = l.check(&racing, &items, S);
            assert!(matches!(d, Decision::Denied { rule: 1, .. }), "{d:?}");
            assert_eq!(counts.refunds, 1, "{rule:?}");
            // The first rule still has all 5.
            assert_eq!(admitted(&l, &h, &[item(0, &first, "a|x")], 10, S), 5);
        }
    }

    #[test]
    fn retries_run_out_into_the_configured_answer() {
        for (fallback, allowed) in [(Fallback::Deny, false), (Fallback::Allow, true)] {
            let h = host(CasRule::Kong);
            let mut l = limiter(64);
            l.on_cas_exhausted = fallback;
            let w = window(100);
            let items = [item(0, &w, "r|a")];
            l.check(&h, &items, S);
            // Every write loses: some other worker always writes first.
            struct Always<'h>(&'h FakeHost);
            impl SharedDataPort for Always<'_> {
                fn shared_data(&self, key: &str) -> Result<SharedEntry, HostError> {
                    self.0.shared_data(key)
                }
                fn set_shared_data(&self, key: &str, v: &[u8], cas: u32) -> Result<(), HostError> {
                    let current = self.0.shared_data(key)?;
                    self.0
                        .set_shared_data(key, &current.value.unwrap_or_default(), current.cas)?;
                    self.0.set_shared_data(key, v, cas)
                }
            }
            let (d, counts) = l.check(&Always(&h), &items, S);
            assert_eq!(counts.cas_exhausted, 1);
            assert_eq!(counts.cas_retries, 4);
            assert_eq!(matches!(d, Decision::Allowed(_)), allowed, "{d:?}");
        }
    }

    #[test]
    fn store_errors_follow_the_failure_mode() {
        struct Broken;
        impl SharedDataPort for Broken {
            fn shared_data(&self, _: &str) -> Result<SharedEntry, HostError> {
                Err(HostError::InternalFailure)
            }
            fn set_shared_data(&self, _: &str, _: &[u8], _: u32) -> Result<(), HostError> {
                Err(HostError::InternalFailure)
            }
        }
        let w = window(1);
        let items = [item(0, &w, "r|a")];
        let mut l = limiter(8);
        let (d, counts) = l.check(&Broken, &items, S);
        assert_eq!(d, Decision::Allowed(None));
        assert_eq!(counts.store_errors, 1);
        l.failure_mode = FailureMode::Closed;
        assert!(matches!(
            l.check(&Broken, &items, S).0,
            Decision::Denied {
                reason: DenyReason::StoreError,
                ..
            }
        ));
    }

    #[test]
    fn colliding_keys_never_share_a_counter() {
        for rule in RULES {
            let h = host(rule);
            let l = limiter(4096);
            let w = window(3);
            let a = [item(0, &w, "r|10.226.118.64|8080")];
            let b = [item(0, &w, "r|172.31.45.240|8080")];
            assert_eq!(admitted(&l, &h, &a, 10, S), 3, "{rule:?}");
            assert_eq!(admitted(&l, &h, &b, 10, S), 3, "{rule:?}");
        }
    }

    #[test]
    fn full_table_answers_as_configured_and_frees_idle_slots() {
        let h = host(CasRule::Envoy);
        let mut l = Limiter::new(&SharedDataConfig {
            slots: 1,
            probes: 1,
            ..SharedDataConfig::default()
        });
        let b = Limit::Bucket(TokenBucket {
            capacity: 2,
            refill_tokens: 1,
            interval_ns: S,
        });
        assert!(matches!(
            l.check(&h, &[item(0, &b, "r|a")], S).0,
            Decision::Allowed(_)
        ));
        let (d, counts) = l.check(&h, &[item(0, &b, "r|b")], S);
        assert_eq!(d, Decision::Allowed(None));
        assert_eq!(counts.slots_exhausted, 1);
        l.on_slots_exhausted = Fallback::Deny;
        assert!(matches!(
            l.check(&h, &[item(0, &b, "r|b")], S).0,
            Decision::Denied {
                reason: DenyReason::SlotsExhausted,
                ..
            }
        ));
        // One second later a's bucket is full again: b takes the slot over.
        let (d, counts) = l.check(&h, &[item(0, &b, "r|b")], 2 * S);
        assert!(matches!(d, Decision::Allowed(Some(_))));
        assert_eq!(counts.takeovers, 1);
    }
}

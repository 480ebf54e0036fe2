//! The breaker state machine: pure functions over (state, event, now) -> (new state, decision).
//!
//! ```text
//!            trip (rate >= X% with >= M requests, or K consecutive failures)
//!   Closed ------------------------------------------------------------> Open(until)
//!     ^                                                                   |  ^
//!     | S probe successes                       first request after until |  | a probe fails
//!     |                                                                   v  |
//!     +------------------------------------------------------------- HalfOpen (<= P probes)
//! ```
//!
//! Every transition bumps the `epoch`. An admission carries the epoch it was made in, and an
//! outcome only counts in that same epoch: a request admitted while closed that ends after a trip
//! changes nothing, and a probe of an earlier half-open period is not a probe of this one.
//! Open durations grow by `backoff_multiplier` on each trip without a close in between, capped.

use crate::window::{Reader, Totals, Window, WindowSpec};

/// Thresholds and durations of one breaker, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The window a closed breaker judges.
    pub window: WindowSpec,
    /// M: the failure rate counts only with at least this many requests in the window.
    pub min_requests: u32,
    /// X: trip when failures * 100 >= X * requests (0: the rate never trips).
    pub failure_rate_percent: u32,
    /// K: trip after this many failures in a row (0: off).
    pub consecutive_failures: u32,
    /// First open duration.
    pub open_ms: u64,
    /// Cap of the open duration.
    pub max_open_ms: u64,
    /// Growth factor of the open duration per trip without a close in between.
    pub backoff_multiplier: u32,
    /// P: probes admitted per half-open period, across all workers.
    pub max_probes: u32,
    /// S: probe successes that close the breaker.
    pub successes_to_close: u32,
    /// A half-open breaker whose every probe slot is taken and whose last probe was admitted this
    /// long ago reclaims the slots of probes that never reported (a VM gone, a lost write).
    pub probe_timeout_ms: u64,
}

impl Policy {
    /// The open duration of the `trip`-th trip in a row (1-based), capped.
    pub fn open_duration_ms(&self, trip: u32) -> u64 {
        let mut duration = self.open_ms;
        for _ in 1..trip.min(64) {
            duration = duration.saturating_mul(u64::from(self.backoff_multiplier));
            if duration >= self.max_open_ms {
                break;
            }
        }
        duration.min(self.max_open_ms)
    }
}

/// Closed, open or half-open, with what each needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Requests pass; outcomes go into the window.
    Closed,
    /// Requests are refused until `until_ms`.
    Open {
        /// When the first request may become a probe.
        until_ms: u64,
    },
    /// At most P probes pass; the rest are refused.
    HalfOpen {
        /// Probe slots taken in this period.
        admitted: u32,
        /// Probes that succeeded.
        successes: u32,
        /// When the last probe was admitted.
        last_admit_ms: u64,
    },
}

/// The state metric value: 0 closed, 1 open, 2 half-open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateName {
    /// 0.
    Closed = 0,
    /// 1.
    Open = 1,
    /// 2.
    HalfOpen = 2,
}

impl StateName {
    /// Lowercase name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            StateName::Closed => "closed",
            StateName::Open => "open",
            StateName::HalfOpen => "half-open",
        }
    }
}

/// One breaker's shared state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerState {
    /// Where the machine is.
    pub phase: Phase,
    /// Bumped by every transition.
    pub epoch: u32,
    /// Trips since the breaker last closed (drives the backoff).
    pub trips_in_row: u32,
    /// Failures in a row while closed.
    pub consecutive_failures: u32,
    /// Outcomes while closed.
    pub window: Window,
}

/// What to do with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Closed: let it through; its outcome counts in `epoch`.
    Pass {
        /// Epoch of the admission.
        epoch: u32,
    },
    /// Half-open: let it through as a probe of `epoch`.
    Probe {
        /// Epoch of the admission.
        epoch: u32,
    },
    /// Open (or half-open with every probe slot taken): refuse it.
    Reject {
        /// How long until a request may be admitted again (at least 1 ms).
        retry_after_ms: u64,
    },
}

/// How a finished request went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Epoch of its admission.
    pub epoch: u32,
    /// Whether it was a probe.
    pub probe: bool,
    /// Whether it failed.
    pub failure: bool,
}

/// A change of phase, for the one log line and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Closed -> open.
    Tripped {
        /// What the window held when it tripped.
        totals: Totals,
        /// Failures in a row when it tripped.
        consecutive: u32,
        /// How long it stays open.
        open_ms: u64,
        /// Trips since the last close, this one included.
        trip: u32,
    },
    /// Open -> half-open.
    HalfOpened,
    /// Half-open -> closed.
    Closed,
    /// Half-open -> open (a probe failed).
    Reopened {
        /// How long it stays open.
        open_ms: u64,
        /// Trips since the last close, this one included.
        trip: u32,
    },
}

impl Transition {
    /// The phase the transition leads to.
    pub fn to(self) -> StateName {
        match self {
            Transition::Tripped { .. } | Transition::Reopened { .. } => StateName::Open,
            Transition::HalfOpened => StateName::HalfOpen,
            Transition::Closed => StateName::Closed,
        }
    }

    /// Whether it counts as a trip.
    pub fn is_trip(self) -> bool {
        matches!(
            self,
            Transition::Tripped { .. } | Transition::Reopened { .. }
        )
    }
}

/// The result of one event: the state to write (`None`: unchanged) and what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step<D> {
    /// The new state, when it changed.
    pub next: Option<BreakerState>,
    /// The decision for the caller.
    pub decision: D,
    /// The transition made, if any.
    pub transition: Option<Transition>,
}

/// How long a request refused by a full half-open breaker is told to wait.
const HALF_OPEN_RETRY_MS: u64 = 1_000;
/// Version byte of the binary record.
const RECORD_VERSION: u8 = 1;

impl BreakerState {
    /// A closed breaker with an empty window.
    pub fn new(policy: &Policy) -> Self {
        Self {
            phase: Phase::Closed,
            epoch: 0,
            trips_in_row: 0,
            consecutive_failures: 0,
            window: Window::new(policy.window),
        }
    }

    /// The phase as the state metric names it.
    pub fn name(&self) -> StateName {
        match self.phase {
            Phase::Closed => StateName::Closed,
            Phase::Open { .. } => StateName::Open,
            Phase::HalfOpen { .. } => StateName::HalfOpen,
        }
    }

    /// Decides about a new request at `now_ms`.
    pub fn admit(&self, policy: &Policy, now_ms: u64) -> Step<Admission> {
        match self.phase {
            Phase::Closed => unchanged(Admission::Pass { epoch: self.epoch }),
            Phase::Open { until_ms } if now_ms < until_ms => unchanged(Admission::Reject {
                retry_after_ms: until_ms - now_ms,
            }),
            Phase::Open { .. } => {
                let mut next = self.clone();
                next.epoch = self.epoch.wrapping_add(1);
                next.phase = Phase::HalfOpen {
                    admitted: 1,
                    successes: 0,
                    last_admit_ms: now_ms,
                };
                Step {
                    decision: Admission::Probe { epoch: next.epoch },
                    next: Some(next),
                    transition: Some(Transition::HalfOpened),
                }
            }
            Phase::HalfOpen {
                admitted,
                successes,
                last_admit_ms,
            } => {
                let stale = now_ms.saturating_sub(last_admit_ms) >= policy.probe_timeout_ms;
                let taken = if admitted >= policy.max_probes && stale {
                    // Reclaim the slots of probes that never reported.
                    successes
                } else {
                    admitted
                };
                if taken >= policy.max_probes {
                    return unchanged(Admission::Reject {
                        retry_after_ms: HALF_OPEN_RETRY_MS,
                    });
                }
                let mut next = self.clone();
                next.phase = Phase::HalfOpen {
                    admitted: taken + 1,
                    successes,
                    last_admit_ms: now_ms,
                };
                Step {
                    next: Some(next),
                    decision: Admission::Probe { epoch: self.epoch },
                    transition: None,
                }
            }
        }
    }

    /// Records how a request admitted earlier went.
    pub fn record(&self, policy: &Policy, now_ms: u64, outcome: Outcome) -> Step<()> {
        if outcome.epoch != self.epoch {
            return unchanged(());
        }
        match (&self.phase, outcome.probe) {
            (Phase::Closed, false) => {
                let mut next = self.clone();
                next.window.record(outcome.failure, now_ms);
                next.consecutive_failures = if outcome.failure {
                    self.consecutive_failures.saturating_add(1)
                } else {
                    0
                };
                let totals = next.window.totals(now_ms);
                let rate_trips = policy.failure_rate_percent > 0
                    && totals.requests >= policy.min_requests
                    && u64::from(totals.failures) * 100
                        >= u64::from(policy.failure_rate_percent) * u64::from(totals.requests);
                let run_trips = policy.consecutive_failures > 0
                    && next.consecutive_failures >= policy.consecutive_failures;
                if !(outcome.failure && (rate_trips || run_trips)) {
                    return Step {
                        next: Some(next),
                        decision: (),
                        transition: None,
                    };
                }
                let consecutive = next.consecutive_failures;
                let (next, open_ms, trip) = self.open(policy, now_ms);
                Step {
                    next: Some(next),
                    decision: (),
                    transition: Some(Transition::Tripped {
                        totals,
                        consecutive,
                        open_ms,
                        trip,
                    }),
                }
            }
            (
                Phase::HalfOpen {
                    admitted,
                    successes,
                    last_admit_ms,
                },
                true,
            ) => {
                if outcome.failure {
                    let (next, open_ms, trip) = self.open(policy, now_ms);
                    return Step {
                        next: Some(next),
                        decision: (),
                        transition: Some(Transition::Reopened { open_ms, trip }),
                    };
                }
                let successes = successes.saturating_add(1);
                if successes >= policy.successes_to_close {
                    let mut next = BreakerState::new(policy);
                    next.epoch = self.epoch.wrapping_add(1);
                    return Step {
                        next: Some(next),
                        decision: (),
                        transition: Some(Transition::Closed),
                    };
                }
                let mut next = self.clone();
                next.phase = Phase::HalfOpen {
                    admitted: (*admitted).max(successes),
                    successes,
                    last_admit_ms: *last_admit_ms,
                };
                Step {
                    next: Some(next),
                    decision: (),
                    transition: None,
                }
            }
            _ => unchanged(()),
        }
    }

    /// Gives back the slot of a probe that ended without an outcome (the client went away).
    pub fn release_probe(&self, epoch: u32) -> Step<()> {
        match self.phase {
            Phase::HalfOpen {
                admitted,
                successes,
                last_admit_ms,
            } if epoch == self.epoch && admitted > successes => {
                let mut next = self.clone();
                next.phase = Phase::HalfOpen {
                    admitted: admitted - 1,
                    successes,
                    last_admit_ms,
                };
                Step {
                    next: Some(next),
                    decision: (),
                    transition: None,
                }
            }
            _ => unchanged(()),
        }
    }

    /// The state after a trip at `now_ms`, its open duration and trip number.
    fn open(&self, policy: &Policy, now_ms: u64) -> (BreakerState, u64, u32) {
        let trip = self.trips_in_row.saturating_add(1);
        let open_ms = policy.open_duration_ms(trip);
        let next = BreakerState {
            phase: Phase::Open {
                until_ms: now_ms.saturating_add(open_ms),
            },
            epoch: self.epoch.wrapping_add(1),
            trips_in_row: trip,
            consecutive_failures: 0,
            window: Window::new(policy.window),
        };
        (next, open_ms, trip)
    }

    /// The binary record.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.push(RECORD_VERSION);
        match self.phase {
            Phase::Closed => out.push(0),
            Phase::Open { until_ms } => {
                out.push(1);
                out.extend_from_slice(&until_ms.to_le_bytes());
            }
            Phase::HalfOpen {
                admitted,
                successes,
                last_admit_ms,
            } => {
                out.push(2);
                out.extend_from_slice(&admitted.to_le_bytes());
                out.extend_from_slice(&successes.to_le_bytes());
                out.extend_from_slice(&last_admit_ms.to_le_bytes());
            }
        }
        out.extend_from_slice(&self.epoch.to_le_bytes());
        out.extend_from_slice(&self.trips_in_row.to_le_bytes());
        out.extend_from_slice(&self.consecutive_failures.to_le_bytes());
        self.window.encode(&mut out);
        out
    }

    /// Reads a binary record. `None` when malformed or of another version. A window of another
    /// shape (the configuration changed) is replaced by an empty one of the policy's shape.
    pub fn decode(bytes: &[u8], policy: &Policy) -> Option<Self> {
        let mut r = Reader::new(bytes);
        if r.u8()? != RECORD_VERSION {
            return None;
        }
        let phase = match r.u8()? {
            0 => Phase::Closed,
            1 => Phase::Open { until_ms: r.u64()? },
            2 => Phase::HalfOpen {
                admitted: r.u32()?,
                successes: r.u32()?,
                last_admit_ms: r.u64()?,
            },
            _ => return None,
        };
        let epoch = r.u32()?;
        let trips_in_row = r.u32()?;
        let consecutive_failures = r.u32()?;
        let mut window = Window::decode(&mut r)?;
        if !r.is_empty() {
            return None;
        }
        if !window.matches(policy.window) {
            window = Window::new(policy.window);
        }
        Some(Self {
            phase,
            epoch,
            trips_in_row,
            consecutive_failures,
            window,
        })
    }
}

fn unchanged<D>(decision: D) -> Step<D> {
    Step {
        next: None,
        decision,
        transition: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            window: WindowSpec::Count { size: 10 },
            min_requests: 4,
            failure_rate_percent: 50,
            consecutive_failures: 0,
            open_ms: 1_000,
            max_open_ms: 5_000,
            backoff_multiplier: 2,
            max_probes: 2,
            successes_to_close: 2,
            probe_timeout_ms: 30_000,
        }
    }

    /// Applies a step, returning the new state.
    fn apply<D>(state: &BreakerState, step: Step<D>) -> BreakerState {
        step.next.unwrap_or_else(|| state.clone())
    }

    fn outcome(state: &BreakerState, failure: bool) -> Outcome {
        Outcome {
            epoch: state.epoch,
            probe: !matches!(state.phase, Phase::Closed),
            failure,
        }
    }

    /// Feeds outcomes in closed state; returns the state and the last transition.
    fn feed(
        p: &Policy,
        mut s: BreakerState,
        outcomes: &[bool],
        now: u64,
    ) -> (BreakerState, Option<Transition>) {
        let mut last = None;
        for failure in outcomes {
            let step = s.record(p, now, outcome(&s, *failure));
            last = step.transition;
            s = apply(&s, step);
        }
        (s, last)
    }

    fn trip(p: &Policy, now: u64) -> BreakerState {
        let (s, t) = feed(p, BreakerState::new(p), &[true, true, true, true], now);
        assert!(matches!(t, Some(Transition::Tripped { .. })));
        s
    }

    #[test]
    fn closed_passes_without_writing() {
        let p = policy();
        let s = BreakerState::new(&p);
        let step = s.admit(&p, 0);
        assert_eq!(step.decision, Admission::Pass { epoch: 0 });
        assert!(step.next.is_none());
    }

    #[test]
    fn rate_trips_only_with_min_requests() {
        let p = policy();
        // Three failures: 100% but below M = 4.
        let (s, t) = feed(&p, BreakerState::new(&p), &[true, true, true], 0);
        assert_eq!(t, None);
        assert_eq!(s.name(), StateName::Closed);
        // The fourth reaches M at 100%.
        let (s, t) = feed(&p, s, &[false], 0);
        assert_eq!(t, None, "a success never trips");
        let (s, t) = feed(&p, s, &[true], 0);
        assert_eq!(
            t,
            Some(Transition::Tripped {
                totals: Totals {
                    requests: 5,
                    failures: 4
                },
                consecutive: 1,
                open_ms: 1_000,
                trip: 1
            })
        );
        assert_eq!(s.phase, Phase::Open { until_ms: 1_000 });
        assert_eq!(s.epoch, 1);
    }

    #[test]
    fn rate_exactly_at_threshold_trips() {
        let p = policy();
        let (_, t) = feed(&p, BreakerState::new(&p), &[false, false, true, true], 0);
        assert!(matches!(t, Some(Transition::Tripped { .. })), "2/4 = 50%");
        let (_, t) = feed(
            &p,
            BreakerState::new(&p),
            &[false, false, false, true, true],
            0,
        );
        assert_eq!(t, None, "2/5 = 40%");
    }

    #[test]
    fn consecutive_failures_trip_without_min_requests() {
        let p = Policy {
            failure_rate_percent: 0,
            consecutive_failures: 3,
            min_requests: 10,
            ..policy()
        };
        let (s, t) = feed(
            &p,
            BreakerState::new(&p),
            &[true, true, false, true, true],
            0,
        );
        assert_eq!(t, None);
        let (_, t) = feed(&p, s, &[true], 0);
        assert!(matches!(
            t,
            Some(Transition::Tripped { consecutive: 3, .. })
        ));
    }

    #[test]
    fn time_window_trips_only_on_recent_failures() {
        let p = Policy {
            window: WindowSpec::Time { length_ms: 10_000 },
            ..policy()
        };
        // Three failures at t=0, then a fourth 20 s later: the old ones have left the window.
        let (s, _) = feed(&p, BreakerState::new(&p), &[true, true, true], 0);
        let (s, t) = feed(&p, s, &[true], 20_000);
        assert_eq!(t, None);
        let (_, t) = feed(&p, s, &[true, true, true], 21_000);
        assert!(matches!(t, Some(Transition::Tripped { .. })));
    }

    #[test]
    fn open_rejects_until_its_duration_has_passed() {
        let p = policy();
        let s = trip(&p, 100);
        let step = s.admit(&p, 600);
        assert_eq!(
            step.decision,
            Admission::Reject {
                retry_after_ms: 500
            }
        );
        assert!(step.next.is_none());
    }

    #[test]
    fn half_open_admits_exactly_p_probes_then_closes_after_s_successes() {
        let p = policy();
        let s = trip(&p, 0);
        let step = s.admit(&p, 1_000);
        assert_eq!(step.transition, Some(Transition::HalfOpened));
        assert_eq!(step.decision, Admission::Probe { epoch: 2 });
        let s = apply(&s, step);
        let step = s.admit(&p, 1_001);
        assert_eq!(step.decision, Admission::Probe { epoch: 2 });
        let s = apply(&s, step);
        let step = s.admit(&p, 1_002);
        assert!(matches!(step.decision, Admission::Reject { .. }), "P = 2");
        // One success: still half-open; the second closes.
        let step = s.record(&p, 1_003, outcome(&s, false));
        assert_eq!(step.transition, None);
        let s = apply(&s, step);
        assert!(matches!(
            s.admit(&p, 1_004).decision,
            Admission::Reject { .. }
        ));
        let step = s.record(&p, 1_005, outcome(&s, false));
        assert_eq!(step.transition, Some(Transition::Closed));
        let s = apply(&s, step);
        assert_eq!(s.name(), StateName::Closed);
        assert_eq!(s.trips_in_row, 0);
        assert_eq!(s.window.totals(1_005), Totals::default());
        assert_eq!(s.epoch, 3);
    }

    #[test]
    fn a_failed_probe_reopens_with_a_longer_duration_up_to_the_cap() {
        let p = policy();
        let mut s = trip(&p, 0);
        let mut now = 0;
        let mut durations = vec![];
        for _ in 0..5 {
            let Phase::Open { until_ms } = s.phase else {
                panic!()
            };
            now = until_ms;
            let step = s.admit(&p, now);
            s = apply(&s, step);
            let step = s.record(&p, now, outcome(&s, true));
            let Some(Transition::Reopened { open_ms, .. }) = step.transition else {
                panic!("{:?}", step.transition)
            };
            durations.push(open_ms);
            s = apply(&s, step);
        }
        assert_eq!(durations, vec![2_000, 4_000, 5_000, 5_000, 5_000]);
        assert_eq!(
            s.phase,
            Phase::Open {
                until_ms: now + 5_000
            }
        );
    }

    #[test]
    fn backoff_restarts_after_a_close() {
        let p = Policy {
            max_probes: 1,
            successes_to_close: 1,
            ..policy()
        };
        let s = trip(&p, 0);
        let s = apply(&s, s.admit(&p, 1_000));
        let step = s.record(&p, 1_000, outcome(&s, false));
        assert_eq!(step.transition, Some(Transition::Closed));
        let s = apply(&s, step);
        let (_, t) = feed(&p, s, &[true, true, true, true], 2_000);
        assert!(matches!(
            t,
            Some(Transition::Tripped {
                open_ms: 1_000,
                trip: 1,
                ..
            })
        ));
    }

    #[test]
    fn stale_outcomes_change_nothing() {
        let p = policy();
        let closed = BreakerState::new(&p);
        let s = trip(&p, 0);
        // A request admitted while closed (epoch 0) ends after the trip.
        let step = s.record(
            &p,
            10,
            Outcome {
                epoch: closed.epoch,
                probe: false,
                failure: true,
            },
        );
        assert!(step.next.is_none());
        // A non-probe outcome in half-open changes nothing either.
        let h = apply(&s, s.admit(&p, 1_000));
        let step = h.record(
            &p,
            1_000,
            Outcome {
                epoch: h.epoch,
                probe: false,
                failure: true,
            },
        );
        assert!(step.next.is_none());
    }

    #[test]
    fn a_released_probe_frees_its_slot() {
        let p = Policy {
            max_probes: 1,
            ..policy()
        };
        let s = trip(&p, 0);
        let s = apply(&s, s.admit(&p, 1_000));
        assert!(matches!(
            s.admit(&p, 1_001).decision,
            Admission::Reject { .. }
        ));
        let s = apply(&s, s.release_probe(s.epoch));
        assert!(matches!(
            s.admit(&p, 1_002).decision,
            Admission::Probe { .. }
        ));
        // Releasing for another epoch does nothing.
        assert!(s.release_probe(s.epoch + 1).next.is_none());
    }

    #[test]
    fn slots_of_probes_that_never_report_are_reclaimed_after_the_probe_timeout() {
        let p = Policy {
            max_probes: 1,
            ..policy()
        };
        let s = trip(&p, 0);
        let s = apply(&s, s.admit(&p, 1_000));
        assert!(matches!(
            s.admit(&p, 30_999).decision,
            Admission::Reject { .. }
        ));
        assert!(matches!(
            s.admit(&p, 31_000).decision,
            Admission::Probe { .. }
        ));
    }

    #[test]
    fn open_duration_caps() {
        let p = policy();
        let got: Vec<u64> = (1..=6).map(|t| p.open_duration_ms(t)).collect();
        assert_eq!(got, vec![1_000, 2_000, 4_000, 5_000, 5_000, 5_000]);
        let flat = Policy {
            backoff_multiplier: 1,
            ..policy()
        };
        assert_eq!(flat.open_duration_ms(40), 1_000);
        assert_eq!(p.open_duration_ms(u32::MAX), 5_000);
    }

    #[test]
    fn records_round_trip_in_every_phase() {
        let p = policy();
        let closed = feed(&p, BreakerState::new(&p), &[true, false], 0).0;
        let open = trip(&p, 0);
        let half = apply(&open, open.admit(&p, 5_000));
        for s in [closed, open, half] {
            assert_eq!(BreakerState::decode(&s.encode(), &p).unwrap(), s);
        }
        assert!(BreakerState::decode(&[9], &p).is_none());
        let mut bytes = BreakerState::new(&p).encode();
        bytes.push(0);
        assert!(BreakerState::decode(&bytes, &p).is_none(), "trailing byte");
    }

    #[test]
    fn a_window_of_another_shape_is_replaced() {
        let p = policy();
        let s = feed(&p, BreakerState::new(&p), &[true], 0).0;
        let other = Policy {
            window: WindowSpec::Count { size: 20 },
            ..p
        };
        let back = BreakerState::decode(&s.encode(), &other).unwrap();
        assert_eq!(back.window, Window::new(other.window));
    }
}

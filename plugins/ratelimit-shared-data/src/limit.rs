//! Limit arithmetic: token buckets and sliding windows, in integers only.
//!
//! - [`TokenBucket`]: `capacity` tokens, `refill_tokens` added every `refill_interval`, spread
//!   continuously. The level is kept in fixed point: one token is `interval_ns` units and every
//!   elapsed nanosecond adds `refill_tokens` units, so refill is exact (no float, no drift).
//! - [`SlidingWindow`]: `limit` requests per `window`, windows anchored at a key's first request.
//!   The estimate is the previous window's count weighted by the part of it still inside the
//!   sliding window, plus the current count (the scheme Kong's `sliding` strategy and Cloudflare
//!   use); within a key's first window it is an exact fixed window.
//!
//! A [`LimitState`] is what is stored in shared data (see [`LimitState::encode`]); it carries
//! the time at which it becomes idle (a full bucket, two elapsed windows), so a slot holding it
//! can be taken over by another key without knowing the rule that wrote it.

/// Nanoseconds per second.
pub const NANOS_PER_SEC: u64 = 1_000_000_000;

/// A compiled limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Token bucket.
    Bucket(TokenBucket),
    /// Sliding window.
    Window(SlidingWindow),
}

/// A token bucket: bursts up to `capacity`, then `refill_tokens` per `interval_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenBucket {
    /// Tokens when full (>= 1).
    pub capacity: u32,
    /// Tokens added per interval (>= 1).
    pub refill_tokens: u32,
    /// Refill interval in nanoseconds (>= 1 ms).
    pub interval_ns: u64,
}

/// A sliding window: at most `limit` requests per `window_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlidingWindow {
    /// Requests per window (>= 1).
    pub limit: u32,
    /// Window length in nanoseconds (>= 1 s).
    pub window_ns: u64,
}

/// The stored state of one key under one limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitState {
    /// Token bucket: `level` in units (one token = `interval_ns` units), as of `at_ns`.
    Bucket {
        /// Fixed-point level.
        level: u128,
        /// When `level` was computed.
        at_ns: u64,
    },
    /// Sliding window: counts of the current window starting at `start_ns` and the previous one.
    Window {
        /// Start of the current window.
        start_ns: u64,
        /// Requests counted in the previous window.
        previous: u32,
        /// Requests counted in the current window.
        current: u32,
    },
}

/// The answer of a limit for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Admitted: the state to store, what remains after this request, seconds until full reset.
    Allowed {
        /// State with this request counted.
        next: LimitState,
        /// Requests still admitted right now after this one.
        remaining: u64,
        /// Seconds until the limit is fully available again.
        reset_secs: u64,
    },
    /// Refused: nothing to store.
    Denied {
        /// Seconds until a request would be admitted (>= 1).
        retry_after_secs: u64,
    },
}

/// The policy a limit announces (`RateLimit-Policy`): quota and window in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Requests (bucket: its capacity).
    pub quota: u64,
    /// Seconds (bucket: time to refill from empty).
    pub window_secs: u64,
}

const KIND_BUCKET: u8 = 1;
const KIND_WINDOW: u8 = 2;

fn ceil_div(a: u128, b: u128) -> u128 {
    if b == 0 {
        return 0;
    }
    a.div_ceil(b)
}

fn secs_ceil(nanos: u128) -> u64 {
    u64::try_from(ceil_div(nanos, u128::from(NANOS_PER_SEC))).unwrap_or(u64::MAX)
}

fn sat_u64(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

impl TokenBucket {
    fn token(&self) -> u128 {
        u128::from(self.interval_ns)
    }

    fn full(&self) -> u128 {
        u128::from(self.capacity) * self.token()
    }

    fn rate(&self) -> u128 {
        u128::from(self.refill_tokens)
    }

    /// The level at `now_ns`, refilled from `level` at `at_ns`.
    pub fn refilled(&self, level: u128, at_ns: u64, now_ns: u64) -> u128 {
        let elapsed = u128::from(now_ns.saturating_sub(at_ns));
        level
            .saturating_add(elapsed.saturating_mul(self.rate()))
            .min(self.full())
    }

    fn nanos_to_full(&self, level: u128) -> u128 {
        ceil_div(self.full().saturating_sub(level), self.rate())
    }
}

impl SlidingWindow {
    fn w(&self) -> u128 {
        u128::from(self.window_ns)
    }

    /// The window state rolled forward to `now_ns`.
    pub fn advanced(&self, start_ns: u64, previous: u32, current: u32, now_ns: u64) -> LimitState {
        let window = self.window_ns.max(1);
        let windows = now_ns.saturating_sub(start_ns) / window;
        let (previous, current) = match windows {
            0 => (previous, current),
            1 => (current, 0),
            _ => (0, 0),
        };
        LimitState::Window {
            start_ns: start_ns.saturating_add(windows.saturating_mul(window)),
            previous,
            current,
        }
    }

    /// Weighted count at `elapsed` into the current window, times the window length.
    fn scaled_count(&self, previous: u32, current: u32, elapsed: u128) -> u128 {
        u128::from(previous) * self.w().saturating_sub(elapsed) + u128::from(current) * self.w()
    }

    /// Nanoseconds from `elapsed` until one more request fits.
    fn nanos_until_admitted(&self, previous: u32, current: u32, elapsed: u128) -> u128 {
        let w = self.w();
        let limit = u128::from(self.limit);
        let current = u128::from(current);
        // Still in this window: previous * (w - e') <= (limit - current - 1) * w.
        if current < limit && previous > 0 {
            let room = (limit - current - 1) * w / u128::from(previous);
            let at = w.saturating_sub(room);
            if at < w {
                return at.saturating_sub(elapsed).max(1);
            }
        }
        // Next window: current becomes previous, nothing counted yet.
        let until_next = w.saturating_sub(elapsed);
        if current == 0 {
            return until_next.max(1);
        }
        let room = (limit.saturating_sub(1)) * w / current;
        until_next + w.saturating_sub(room)
    }
}

impl Limit {
    /// The state of a key never seen before: a full bucket, an empty window starting now.
    pub fn initial(&self, now_ns: u64) -> LimitState {
        match self {
            Limit::Bucket(b) => LimitState::Bucket {
                level: b.full(),
                at_ns: now_ns,
            },
            Limit::Window(_) => LimitState::Window {
                start_ns: now_ns,
                previous: 0,
                current: 0,
            },
        }
    }

    /// What this limit announces in `RateLimit-Policy`.
    pub fn policy(&self) -> Policy {
        match self {
            Limit::Bucket(b) => Policy {
                quota: u64::from(b.capacity),
                window_secs: secs_ceil(b.nanos_to_full(0)).max(1),
            },
            Limit::Window(w) => Policy {
                quota: u64::from(w.limit),
                window_secs: secs_ceil(w.w()).max(1),
            },
        }
    }

    /// Counts one request against `state` (`None`: a new key) at `now_ns`.
    ///
    /// A state of the other kind (the rule changed) counts as a new key.
    pub fn check(&self, state: Option<LimitState>, now_ns: u64) -> Verdict {
        let state = match (self, state) {
            (Limit::Bucket(_), Some(s @ LimitState::Bucket { .. }))
            | (Limit::Window(_), Some(s @ LimitState::Window { .. })) => s,
            _ => self.initial(now_ns),
        };
        match (self, state) {
            (Limit::Bucket(b), LimitState::Bucket { level, at_ns }) => {
                let level = b.refilled(level, at_ns, now_ns);
                // A clock that went backwards (another worker's later reading) keeps the later time.
                let at_ns = at_ns.max(now_ns);
                if level >= b.token() {
                    let level = level - b.token();
                    Verdict::Allowed {
                        next: LimitState::Bucket { level, at_ns },
                        remaining: sat_u64(level / b.token()),
                        reset_secs: secs_ceil(b.nanos_to_full(level)),
                    }
                } else {
                    Verdict::Denied {
                        retry_after_secs: secs_ceil(ceil_div(b.token() - level, b.rate())).max(1),
                    }
                }
            }
            (
                Limit::Window(w),
                LimitState::Window {
                    start_ns,
                    previous,
                    current,
                },
            ) => {
                let LimitState::Window {
                    start_ns,
                    previous,
                    current,
                } = w.advanced(start_ns, previous, current, now_ns)
                else {
                    return Verdict::Denied {
                        retry_after_secs: 1,
                    };
                };
                let elapsed = u128::from(now_ns.saturating_sub(start_ns));
                let count = w.scaled_count(previous, current.saturating_add(1), elapsed);
                let cap = u128::from(w.limit) * w.w();
                if count <= cap {
                    let next = LimitState::Window {
                        start_ns,
                        previous,
                        current: current.saturating_add(1),
                    };
                    Verdict::Allowed {
                        next,
                        remaining: sat_u64((cap - count) / w.w().max(1)),
                        reset_secs: secs_ceil(w.w().saturating_sub(elapsed)).max(1),
                    }
                } else {
                    Verdict::Denied {
                        retry_after_secs: secs_ceil(
                            w.nanos_until_admitted(previous, current, elapsed),
                        )
                        .max(1),
                    }
                }
            }
            _ => Verdict::Denied {
                retry_after_secs: 1,
            },
        }
    }

    /// Gives back the request counted by [`Limit::check`] (a later rule denied it).
    /// `counted_start_ns` is the window start the request was counted in.
    pub fn refund(&self, state: LimitState, counted_start_ns: u64, now_ns: u64) -> LimitState {
        match (self, state) {
            (Limit::Bucket(b), LimitState::Bucket { level, at_ns }) => {
                let level = b.refilled(level, at_ns, now_ns);
                LimitState::Bucket {
                    level: level.saturating_add(b.token()).min(b.full()),
                    at_ns: at_ns.max(now_ns),
                }
            }
            (
                Limit::Window(_),
                LimitState::Window {
                    start_ns,
                    previous,
                    current,
                },
            ) => {
                if start_ns == counted_start_ns {
                    LimitState::Window {
                        start_ns,
                        previous,
                        current: current.saturating_sub(1),
                    }
                } else {
                    // The window rolled since: the request is in `previous` (or already gone).
                    LimitState::Window {
                        start_ns,
                        previous: previous.saturating_sub(1),
                        current,
                    }
                }
            }
            (_, other) => other,
        }
    }

    /// When `state` becomes idle: nothing left to remember (a full bucket, windows elapsed).
    pub fn idle_at(&self, state: &LimitState) -> u64 {
        match (self, state) {
            (Limit::Bucket(b), LimitState::Bucket { level, at_ns }) => {
                at_ns.saturating_add(sat_u64(b.nanos_to_full(*level)))
            }
            (
                Limit::Window(w),
                LimitState::Window {
                    start_ns,
                    previous,
                    current,
                },
            ) => {
                if *previous == 0 && *current == 0 {
                    *start_ns
                } else if *current == 0 {
                    start_ns.saturating_add(w.window_ns)
                } else {
                    start_ns.saturating_add(w.window_ns.saturating_mul(2))
                }
            }
            _ => 0,
        }
    }
}

impl LimitState {
    /// The window start (0 for a bucket), to pass to [`Limit::refund`].
    pub fn window_start(&self) -> u64 {
        match self {
            LimitState::Window { start_ns, .. } => *start_ns,
            LimitState::Bucket { .. } => 0,
        }
    }

    /// Stored form: `[kind][idle_at: u64 LE][state]` (bucket: level u128, at u64; window:
    /// start u64, previous u32, current u32).
    pub fn encode(&self, idle_at: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(33);
        match self {
            LimitState::Bucket { level, at_ns } => {
                out.push(KIND_BUCKET);
                out.extend_from_slice(&idle_at.to_le_bytes());
                out.extend_from_slice(&level.to_le_bytes());
                out.extend_from_slice(&at_ns.to_le_bytes());
            }
            LimitState::Window {
                start_ns,
                previous,
                current,
            } => {
                out.push(KIND_WINDOW);
                out.extend_from_slice(&idle_at.to_le_bytes());
                out.extend_from_slice(&start_ns.to_le_bytes());
                out.extend_from_slice(&previous.to_le_bytes());
                out.extend_from_slice(&current.to_le_bytes());
            }
        }
        out
    }

    /// Parses [`LimitState::encode`]'s output: the state and its idle time.
    pub fn decode(bytes: &[u8]) -> Option<(LimitState, u64)> {
        let (&kind, rest) = bytes.split_first()?;
        let (idle, rest) = rest.split_first_chunk::<8>()?;
        let idle_at = u64::from_le_bytes(*idle);
        match kind {
            KIND_BUCKET => {
                let (level, rest) = rest.split_first_chunk::<16>()?;
                let (at, rest) = rest.split_first_chunk::<8>()?;
                rest.is_empty().then_some((
                    LimitState::Bucket {
                        level: u128::from_le_bytes(*level),
                        at_ns: u64::from_le_bytes(*at),
                    },
                    idle_at,
                ))
            }
            KIND_WINDOW => {
                let (start, rest) = rest.split_first_chunk::<8>()?;
                let (previous, rest) = rest.split_first_chunk::<4>()?;
                let (current, rest) = rest.split_first_chunk::<4>()?;
                rest.is_empty().then_some((
                    LimitState::Window {
                        start_ns: u64::from_le_bytes(*start),
                        previous: u32::from_le_bytes(*previous),
                        current: u32::from_le_bytes(*current),
                    },
                    idle_at,
                ))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = NANOS_PER_SEC;

    fn bucket(capacity: u32, refill_tokens: u32, interval_secs: u64) -> Limit {
        Limit::Bucket(TokenBucket {
            capacity,
            refill_tokens,
            interval_ns: interval_secs * S,
        })
    }

    fn window(limit: u32, secs: u64) -> Limit {
        Limit::Window(SlidingWindow {
            limit,
            window_ns: secs * S,
        })
    }

    /// Runs `n` requests at `now`, threading the state; returns admitted count and last state.
    fn run(
        limit: &Limit,
        mut state: Option<LimitState>,
        now: u64,
        n: u32,
    ) -> (u32, Option<LimitState>) {
        let mut admitted = 0;
        for _ in 0..n {
            if let Verdict::Allowed { next, .. } = limit.check(state, now) {
                admitted += 1;
                state = Some(next);
            }
        }
        (admitted, state)
    }

    #[test]
    fn bucket_bursts_to_capacity_then_refills_exactly() {
        let b = bucket(10, 2, 1); // 10 burst, 2 tokens per second
        let t0 = 1_000 * S;
        let (admitted, state) = run(&b, None, t0, 25);
        assert_eq!(admitted, 10);
        assert_eq!(
            b.check(state, t0),
            Verdict::Denied {
                retry_after_secs: 1
            }
        );
        // Half a second: one token.
        let (admitted, state) = run(&b, state, t0 + S / 2, 5);
        assert_eq!(admitted, 1);
        // 3 more seconds: 6 tokens.
        let (admitted, state) = run(&b, state, t0 + S / 2 + 3 * S, 10);
        assert_eq!(admitted, 6);
        // An hour: full, not more.
        let (admitted, _) = run(&b, state, t0 + 3600 * S, 100);
        assert_eq!(admitted, 10);
    }

    #[test]
    fn bucket_fractional_refill_never_drifts() {
        // 1 token per 3 seconds, checked every second for 300 s: exactly 100 tokens.
        let b = bucket(1, 1, 3);
        let t0 = 50 * S;
        let (_, mut state) = run(&b, None, t0, 1);
        let mut admitted = 0;
        for s in 1..=300 {
            let (a, next) = run(&b, state, t0 + s * S, 1);
            admitted += a;
            state = next;
        }
        assert_eq!(admitted, 100);
    }

    #[test]
    fn bucket_remaining_reset_and_retry_after() {
        let b = bucket(5, 1, 2); // a token every 2 s
        let t0 = 7 * S;
        match b.check(None, t0) {
            Verdict::Allowed {
                remaining,
                reset_secs,
                ..
            } => {
                assert_eq!(remaining, 4);
                assert_eq!(reset_secs, 2);
            }
            other => panic!("{other:?}"),
        }
        let (_, state) = run(&b, None, t0, 5);
        assert_eq!(
            b.check(state, t0 + S / 2),
            Verdict::Denied {
                retry_after_secs: 2
            }
        );
        assert_eq!(
            b.policy(),
            Policy {
                quota: 5,
                window_secs: 10
            }
        );
    }

    #[test]
    fn window_counts_and_rolls() {
        let w = window(3, 60);
        let t0 = 100 * S;
        let (admitted, state) = run(&w, None, t0, 10);
        assert_eq!(admitted, 3);
        // Retry after: the previous window's 3 weigh until they decay to 2 -> 20 s into next.
        match w.check(state, t0 + 10 * S) {
            Verdict::Denied { retry_after_secs } => assert_eq!(retry_after_secs, 50 + 20),
            other => panic!("{other:?}"),
        }
        // 30 s into the next window: previous weighs 1.5 -> one more fits.
        let (admitted, state) = run(&w, state, t0 + 90 * S, 10);
        assert_eq!(admitted, 1);
        // Two full windows later everything is forgotten.
        let (admitted, _) = run(&w, state, t0 + 240 * S, 10);
        assert_eq!(admitted, 3);
    }

    #[test]
    fn window_is_exact_inside_the_first_window() {
        let w = window(50, 60);
        let t0 = 5 * S;
        let mut state = None;
        let mut admitted = 0;
        for i in 0..500u64 {
            if let Verdict::Allowed { next, .. } = w.check(state, t0 + i * (S / 10)) {
                admitted += 1;
                state = Some(next);
            }
        }
        assert_eq!(admitted, 50);
    }

    #[test]
    fn refund_gives_back_one_request() {
        let b = bucket(2, 1, 60);
        let t0 = 10 * S;
        let (_, state) = run(&b, None, t0, 2);
        let state = state.unwrap();
        let refunded = b.refund(state, 0, t0);
        assert_eq!(run(&b, Some(refunded), t0, 5).0, 1);

        let w = window(2, 60);
        let (_, state) = run(&w, None, t0, 2);
        let state = state.unwrap();
        let refunded = w.refund(state, state.window_start(), t0);
        assert_eq!(run(&w, Some(refunded), t0, 5).0, 1);
    }

    #[test]
    fn idle_times() {
        let b = bucket(4, 1, 1);
        let t0 = 10 * S;
        let (_, state) = run(&b, None, t0, 2);
        assert_eq!(b.idle_at(&state.unwrap()), t0 + 2 * S);
        let w = window(4, 60);
        let (_, state) = run(&w, None, t0, 1);
        assert_eq!(w.idle_at(&state.unwrap()), t0 + 120 * S);
        assert_eq!(w.idle_at(&w.initial(t0)), t0);
    }

    #[test]
    fn encode_decode_round_trip() {
        for state in [
            LimitState::Bucket {
                level: u128::from(u64::MAX) * 3,
                at_ns: 42,
            },
            LimitState::Window {
                start_ns: 7,
                previous: 3,
                current: 9,
            },
        ] {
            assert_eq!(LimitState::decode(&state.encode(99)), Some((state, 99)));
        }
        assert_eq!(LimitState::decode(&[]), None);
        assert_eq!(LimitState::decode(&[1, 0, 0]), None);
        assert_eq!(LimitState::decode(&[9; 33]), None);
    }

    #[test]
    fn a_state_of_the_other_kind_is_a_new_key() {
        let b = bucket(1, 1, 60);
        let stale = LimitState::Window {
            start_ns: 0,
            previous: 9,
            current: 9,
        };
        assert!(matches!(b.check(Some(stale), S), Verdict::Allowed { .. }));
    }

    #[test]
    fn clock_going_backwards_is_harmless() {
        let b = bucket(2, 1, 1);
        let (_, state) = run(&b, None, 100 * S, 2);
        // Another worker's earlier reading: no refill, no panic.
        assert!(matches!(b.check(state, 99 * S), Verdict::Denied { .. }));
        let w = window(1, 10);
        let (_, state) = run(&w, None, 100 * S, 1);
        assert!(matches!(w.check(state, 99 * S), Verdict::Denied { .. }));
    }
}

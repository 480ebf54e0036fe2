//! The outcome windows a closed breaker judges: the last N outcomes (count) or the outcomes of
//! the last T seconds (time, in ten buckets of T/10 each). Pure data and arithmetic.

/// Buckets of a time window: it slides in steps of a tenth of its length.
pub const TIME_BUCKETS: usize = 10;
/// Largest count window (outcomes kept as bits).
pub const MAX_COUNT: u16 = 1024;

/// The shape of a window, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowSpec {
    /// The last `size` outcomes.
    Count {
        /// N, 1..=[`MAX_COUNT`].
        size: u16,
    },
    /// The outcomes of the last `length_ms` milliseconds.
    Time {
        /// T in milliseconds (at least [`TIME_BUCKETS`]).
        length_ms: u64,
    },
}

/// Requests and failures a window holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    /// Outcomes in the window.
    pub requests: u32,
    /// Failures among them.
    pub failures: u32,
}

/// A window's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Window {
    /// Ring of the last N outcomes (bit set = failure).
    Count(CountWindow),
    /// Time buckets.
    Time(TimeWindow),
}

/// Ring of the last `size` outcomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountWindow {
    size: u16,
    next: u16,
    filled: u16,
    bits: Vec<u64>,
}

/// One bucket of a time window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bucket {
    /// `now_ms / bucket_ms` when this bucket was last used.
    pub index: u64,
    /// Outcomes recorded in it.
    pub requests: u32,
    /// Failures recorded in it.
    pub failures: u32,
}

/// [`TIME_BUCKETS`] buckets of `bucket_ms` each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeWindow {
    bucket_ms: u64,
    buckets: Vec<Bucket>,
}

impl Window {
    /// An empty window of this shape.
    pub fn new(spec: WindowSpec) -> Self {
        match spec {
            WindowSpec::Count { size } => {
                let size = size.clamp(1, MAX_COUNT);
                Window::Count(CountWindow {
                    size,
                    next: 0,
                    filled: 0,
                    bits: vec![0; usize::from(size).div_ceil(64)],
                })
            }
            WindowSpec::Time { length_ms } => Window::Time(TimeWindow {
                bucket_ms: (length_ms / TIME_BUCKETS as u64).max(1),
                buckets: vec![Bucket::default(); TIME_BUCKETS],
            }),
        }
    }

    /// Whether this window has the shape `spec` describes.
    pub fn matches(&self, spec: WindowSpec) -> bool {
        match (self, spec) {
            (Window::Count(w), WindowSpec::Count { size }) => w.size == size,
            (Window::Time(w), WindowSpec::Time { length_ms }) => {
                w.bucket_ms == (length_ms / TIME_BUCKETS as u64).max(1)
            }
            _ => false,
        }
    }

    /// Records one outcome at `now_ms`.
    pub fn record(&mut self, failure: bool, now_ms: u64) {
        match self {
            Window::Count(w) => w.record(failure),
            Window::Time(w) => w.record(failure, now_ms),
        }
    }

    /// What the window holds at `now_ms`.
    pub fn totals(&self, now_ms: u64) -> Totals {
        match self {
            Window::Count(w) => w.totals(),
            Window::Time(w) => w.totals(now_ms),
        }
    }

    /// Appends the binary form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Window::Count(w) => {
                out.push(0);
                out.extend_from_slice(&w.size.to_le_bytes());
                out.extend_from_slice(&w.next.to_le_bytes());
                out.extend_from_slice(&w.filled.to_le_bytes());
                for word in &w.bits {
                    out.extend_from_slice(&word.to_le_bytes());
                }
            }
            Window::Time(w) => {
                out.push(1);
                out.extend_from_slice(&w.bucket_ms.to_le_bytes());
                for b in &w.buckets {
                    out.extend_from_slice(&b.index.to_le_bytes());
                    out.extend_from_slice(&b.requests.to_le_bytes());
                    out.extend_from_slice(&b.failures.to_le_bytes());
                }
            }
        }
    }

    /// Reads the binary form from `input`; `None` when malformed.
    pub fn decode(input: &mut Reader<'_>) -> Option<Self> {
        match input.u8()? {
            0 => {
                let size = input.u16()?;
                if size == 0 || size > MAX_COUNT {
                    return None;
                }
                let next = input.u16()?;
                let filled = input.u16()?;
                if next >= size || filled > size {
                    return None;
                }
                let words = usize::from(size).div_ceil(64);
                let bits = (0..words)
                    .map(|_| input.u64())
                    .collect::<Option<Vec<_>>>()?;
                Some(Window::Count(CountWindow {
                    size,
                    next,
                    filled,
                    bits,
                }))
            }
            1 => {
                let bucket_ms = input.u64()?;
                if bucket_ms == 0 {
                    return None;
                }
                let buckets = (0..TIME_BUCKETS)
                    .map(|_| {
                        Some(Bucket {
                            index: input.u64()?,
                            requests: input.u32()?,
                            failures: input.u32()?,
                        })
                    })
                    .collect::<Option<Vec<_>>>()?;
                Some(Window::Time(TimeWindow { bucket_ms, buckets }))
            }
            _ => None,
        }
    }
}

impl CountWindow {
    fn record(&mut self, failure: bool) {
        let pos = usize::from(self.next);
        if let Some(word) = self.bits.get_mut(pos / 64) {
            let mask = 1u64 << (pos % 64);
            if failure {
                *word |= mask;
            } else {
                *word &= !mask;
            }
        }
        self.next = (self.next + 1) % self.size;
        self.filled = (self.filled + 1).min(self.size);
    }

    fn totals(&self) -> Totals {
        // Bits beyond `filled` are still 0 (never written) until the ring wraps.
        let failures = self.bits.iter().map(|w| w.count_ones()).sum();
        Totals {
            requests: u32::from(self.filled),
            failures,
        }
    }
}

impl TimeWindow {
    fn record(&mut self, failure: bool, now_ms: u64) {
        let index = now_ms / self.bucket_ms;
        let slot = (index % TIME_BUCKETS as u64) as usize;
        if let Some(bucket) = self.buckets.get_mut(slot) {
            if bucket.index != index {
                *bucket = Bucket {
                    index,
                    requests: 0,
                    failures: 0,
                };
            }
            bucket.requests = bucket.requests.saturating_add(1);
            if failure {
                bucket.failures = bucket.failures.saturating_add(1);
            }
        }
    }

    fn totals(&self, now_ms: u64) -> Totals {
        let current = now_ms / self.bucket_ms;
        let oldest = current.saturating_sub(TIME_BUCKETS as u64 - 1);
        self.buckets
            .iter()
            .filter(|b| b.index >= oldest && b.index <= current && b.requests > 0)
            .fold(Totals::default(), |t, b| Totals {
                requests: t.requests.saturating_add(b.requests),
                failures: t.failures.saturating_add(b.failures),
            })
    }
}

/// A cursor over bytes, for the binary records.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads from the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.bytes.split_first_chunk::<N>()?;
        self.bytes = rest;
        Some(*head)
    }

    /// One byte.
    pub fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }

    /// A little-endian u16.
    pub fn u16(&mut self) -> Option<u16> {
        self.take().map(u16::from_le_bytes)
    }

    /// A little-endian u32.
    pub fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }

    /// A little-endian u64.
    pub fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }

    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(w: &Window) -> Window {
        let mut out = Vec::new();
        w.encode(&mut out);
        let mut r = Reader::new(&out);
        let back = Window::decode(&mut r).unwrap();
        assert!(r.is_empty());
        back
    }

    #[test]
    fn count_window_keeps_the_last_n() {
        let mut w = Window::new(WindowSpec::Count { size: 4 });
        for failure in [true, true, false, false] {
            w.record(failure, 0);
        }
        assert_eq!(
            w.totals(0),
            Totals {
                requests: 4,
                failures: 2
            }
        );
        // Two successes push the two failures out.
        w.record(false, 0);
        w.record(false, 0);
        assert_eq!(
            w.totals(0),
            Totals {
                requests: 4,
                failures: 0
            }
        );
        w.record(true, 0);
        assert_eq!(round_trip(&w), w);
        assert_eq!(w.totals(1_000_000).failures, 1, "time does not matter");
    }

    #[test]
    fn count_window_larger_than_a_word() {
        let mut w = Window::new(WindowSpec::Count { size: 100 });
        for i in 0..250 {
            w.record(i % 5 == 0, 0);
        }
        assert_eq!(
            w.totals(0),
            Totals {
                requests: 100,
                failures: 20
            }
        );
        assert_eq!(round_trip(&w), w);
    }

    #[test]
    fn time_window_forgets_old_outcomes() {
        // 10 s window: buckets of 1 s.
        let mut w = Window::new(WindowSpec::Time { length_ms: 10_000 });
        w.record(true, 0);
        w.record(true, 500);
        w.record(false, 4_000);
        assert_eq!(
            w.totals(9_999),
            Totals {
                requests: 3,
                failures: 2
            }
        );
        // At 10 s the first bucket (0..1 s) has left the window.
        assert_eq!(
            w.totals(10_000),
            Totals {
                requests: 1,
                failures: 0
            }
        );
        // A bucket reused a lap later starts empty.
        w.record(false, 10_100);
        assert_eq!(
            w.totals(10_100),
            Totals {
                requests: 2,
                failures: 0
            }
        );
        assert_eq!(w.totals(30_000), Totals::default());
        assert_eq!(round_trip(&w), w);
    }

    #[test]
    fn matches_its_spec_only() {
        let w = Window::new(WindowSpec::Count { size: 5 });
        assert!(w.matches(WindowSpec::Count { size: 5 }));
        assert!(!w.matches(WindowSpec::Count { size: 6 }));
        assert!(!w.matches(WindowSpec::Time { length_ms: 5 }));
    }

    #[test]
    fn malformed_input_is_refused() {
        assert!(Window::decode(&mut Reader::new(&[])).is_none());
        assert!(Window::decode(&mut Reader::new(&[0, 0, 0])).is_none());
        assert!(Window::decode(&mut Reader::new(&[7])).is_none());
        assert!(Window::decode(&mut Reader::new(&[0, 4, 0, 9, 0, 0, 0])).is_none());
    }
}

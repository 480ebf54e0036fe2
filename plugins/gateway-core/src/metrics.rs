//! A plugin's metrics as an enum: defined once per VM, counted by variant.
//!
//! Each plugin lists its metrics as a `Copy` enum implementing [`MetricKind`] (every variant in
//! [`MetricKind::ALL`], a name each, gauges marked). [`MetricSet::define`] asks the host for an
//! id per variant in `on_configure`; [`MetricSet::add`] and [`MetricSet::record`] then cost one
//! host call, none for adding 0. A metric the host refused to define is skipped silently: a
//! metric is never a reason to fail a request. Envoy shows `<name>` as `wasmcustom.<name>`, Kong
//! as `pw.<filter>.<name>`.
//!
//! ```
//! use gateway_core::metrics::{MetricKind, MetricSet};
//! use gateway_core::ports::{HostError, MetricId, MetricsPort};
//! use std::cell::RefCell;
//!
//! #[derive(Debug, Clone, Copy, PartialEq, Eq)]
//! enum Metric { Allowed, InUse }
//!
//! impl MetricKind for Metric {
//!     const ALL: &'static [Self] = &[Metric::Allowed, Metric::InUse];
//!     fn name(self) -> &'static str {
//!         match self { Metric::Allowed => "demo.allowed", Metric::InUse => "demo.in_use" }
//!     }
//!     fn is_gauge(self) -> bool { self == Metric::InUse }
//! }
//!
//! /// A host that keeps metric values by id.
//! #[derive(Default)]
//! struct Host(RefCell<Vec<i64>>);
//! impl MetricsPort for Host {
//!     fn define_counter(&self, _name: &str) -> Result<MetricId, HostError> {
//!         self.0.borrow_mut().push(0);
//!         Ok(MetricId(self.0.borrow().len() as u32 - 1))
//!     }
//!     fn define_gauge(&self, name: &str) -> Result<MetricId, HostError> {
//!         self.define_counter(name)
//!     }
//!     fn increment(&self, id: MetricId, delta: i64) -> Result<(), HostError> {
//!         self.0.borrow_mut()[id.0 as usize] += delta;
//!         Ok(())
//!     }
//!     fn record(&self, id: MetricId, value: u64) -> Result<(), HostError> {
//!         self.0.borrow_mut()[id.0 as usize] = value as i64;
//!         Ok(())
//!     }
//! }
//!
//! let host = Host::default();
//! let metrics = MetricSet::<Metric>::define(&host);
//! metrics.add(&host, Metric::Allowed, 2u32);
//! metrics.record(&host, Metric::InUse, 7);
//! assert_eq!(*host.0.borrow(), vec![2, 7]);
//! ```

use crate::error::ConfigError;
use crate::ports::{HostError, MetricId, MetricsPort};
use std::fmt;
use std::marker::PhantomData;

/// The most variants a [`MetricKind`] may have (the ids live in a fixed array, so a set is
/// `Copy`).
pub const MAX_METRICS: usize = 48;

/// A plugin's metric enum.
pub trait MetricKind: Copy + PartialEq + 'static {
    /// Every variant, in definition order; at most [`MAX_METRICS`].
    const ALL: &'static [Self];

    /// The name given to the host.
    fn name(self) -> &'static str;

    /// Whether the metric is a gauge (set with [`MetricSet::record`]); default: a counter.
    fn is_gauge(self) -> bool {
        false
    }
}

/// The host ids of one [`MetricKind`]'s metrics, optionally under a name prefix.
pub struct MetricSet<K> {
    ids: [Option<MetricId>; MAX_METRICS],
    kind: PhantomData<K>,
}

impl<K> Clone for MetricSet<K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K> Copy for MetricSet<K> {}

impl<K> Default for MetricSet<K> {
    /// No metric defined: every update is skipped (a stream without a valid configuration).
    fn default() -> Self {
        Self {
            ids: [None; MAX_METRICS],
            kind: PhantomData,
        }
    }
}

impl<K> fmt::Debug for MetricSet<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let defined = self.ids.iter().filter(|id| id.is_some()).count();
        f.debug_struct("MetricSet")
            .field("defined", &defined)
            .finish()
    }
}

impl<K: MetricKind> MetricSet<K> {
    /// Defines every metric of `K` under its own name.
    pub fn define<M: MetricsPort + ?Sized>(host: &M) -> Self {
        Self::define_named(host, |kind| kind.name().to_owned())
    }

    /// Defines every metric of `K` as `<prefix>.<name>` (one set per breaker, say).
    pub fn define_with_prefix<M: MetricsPort + ?Sized>(host: &M, prefix: &str) -> Self {
        Self::define_named(host, |kind| format!("{prefix}.{}", kind.name()))
    }

    fn define_named<M: MetricsPort + ?Sized>(host: &M, name: impl Fn(K) -> String) -> Self {
        const { assert!(K::ALL.len() <= MAX_METRICS, "more metrics than MAX_METRICS") };
        let mut set = Self::default();
        for (slot, kind) in set.ids.iter_mut().zip(K::ALL) {
            let name = name(*kind);
            *slot = if kind.is_gauge() {
                host.define_gauge(&name).ok()
            } else {
                host.define_counter(&name).ok()
            };
        }
        set
    }

    fn id(&self, kind: K) -> Option<MetricId> {
        let index = K::ALL.iter().position(|k| *k == kind)?;
        self.ids.get(index).copied().flatten()
    }

    /// Adds `n` to a counter; nothing for 0 (every host call costs). Values above `i64::MAX`
    /// add `i64::MAX`. A gauge is never incremented (Kong's engine traps on that: it increments
    /// counters only), so `add` on a gauge makes no host call.
    pub fn add<M: MetricsPort + ?Sized, N: TryInto<i64>>(&self, host: &M, kind: K, n: N) {
        let n = n.try_into().unwrap_or(i64::MAX);
        if n == 0 || kind.is_gauge() {
            return;
        }
        if let Some(id) = self.id(kind) {
            let _ = host.increment(id, n);
        }
    }

    /// Sets a gauge. A counter is never recorded (Kong's engine traps on that), so `record` on
    /// a counter makes no host call.
    pub fn record<M: MetricsPort + ?Sized>(&self, host: &M, kind: K, value: u64) {
        if !kind.is_gauge() {
            return;
        }
        if let Some(id) = self.id(kind) {
            let _ = host.record(id, value);
        }
    }
}

/// Longest `stat_prefix`.
pub const MAX_STAT_PREFIX: usize = 64;

/// Checks a plugin's `stat_prefix`: letters, digits and `_`, at most [`MAX_STAT_PREFIX`]
/// (no `.`, so that Envoy's tag extraction can take it off the name as one label).
pub fn stat_prefix(value: Option<&str>, field: &str) -> Result<Option<String>, ConfigError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let valid = !value.is_empty()
        && value.len() <= MAX_STAT_PREFIX
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid {
        return Err(ConfigError::invalid(field, "1 to 64 letters, digits or _"));
    }
    Ok(Some(value.to_owned()))
}

/// The metrics of one plugin instance: every name defined through it gets `<prefix>.` in
/// front (`public.jwt_rbac.allowed`), so two instances of a plugin, on two listeners say, keep
/// their own counters, as Envoy's native filters do with their `stat_prefix`. Without a prefix
/// the names are the plugin's own.
pub struct Instance<'a, M: ?Sized> {
    host: &'a M,
    prefix: Option<&'a str>,
}

impl<'a, M: MetricsPort + ?Sized> Instance<'a, M> {
    /// Names defined through `host`, under `prefix` when given.
    pub fn new(host: &'a M, prefix: Option<&'a str>) -> Self {
        Self { host, prefix }
    }

    fn full(&self, name: &str) -> String {
        match self.prefix {
            Some(prefix) => format!("{prefix}.{name}"),
            None => name.to_owned(),
        }
    }
}

impl<M: MetricsPort + ?Sized> MetricsPort for Instance<'_, M> {
    fn define_counter(&self, name: &str) -> Result<MetricId, HostError> {
        self.host.define_counter(&self.full(name))
    }
    fn define_gauge(&self, name: &str) -> Result<MetricId, HostError> {
        self.host.define_gauge(&self.full(name))
    }
    fn increment(&self, id: MetricId, delta: i64) -> Result<(), HostError> {
        self.host.increment(id, delta)
    }
    fn record(&self, id: MetricId, value: u64) -> Result<(), HostError> {
        self.host.record(id, value)
    }
}

#[cfg(all(test, feature = "fake-host"))]
mod tests {
    use super::*;
    use crate::fake::FakeHost;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum M {
        A,
        B,
        Depth,
    }

    impl MetricKind for M {
        const ALL: &'static [Self] = &[M::A, M::B, M::Depth];
        fn name(self) -> &'static str {
            match self {
                M::A => "t.a",
                M::B => "t.b",
                M::Depth => "t.depth",
            }
        }
        fn is_gauge(self) -> bool {
            self == M::Depth
        }
    }

    #[test]
    fn defines_counts_and_skips_zero() {
        let host = FakeHost::default();
        let m = MetricSet::<M>::define(&host);
        m.add(&host, M::A, 2u32);
        m.add(&host, M::A, 0usize);
        m.add(&host, M::B, 3u64);
        m.record(&host, M::Depth, 9);
        assert_eq!(host.metric("t.a"), 2);
        assert_eq!(host.metric("t.b"), 3);
        assert_eq!(host.metric("t.depth"), 9);
        assert_eq!(host.metrics.borrow().len(), 3);
        assert_eq!(
            host.call_count("increment"),
            2,
            "adding 0 makes no host call"
        );
    }

    #[test]
    fn a_gauge_is_only_recorded_and_a_counter_only_added() {
        let host = FakeHost::default();
        let m = MetricSet::<M>::define(&host);
        m.add(&host, M::Depth, 4);
        m.record(&host, M::A, 4);
        assert_eq!(host.call_count("increment"), 0);
        assert_eq!(host.call_count("record"), 0);
        assert_eq!(host.metric("t.depth"), 0);
        assert_eq!(host.metric("t.a"), 0);
    }

    #[test]
    fn prefixed_sets_are_separate() {
        let host = FakeHost::default();
        let one = MetricSet::<M>::define_with_prefix(&host, "cb.one");
        let two = MetricSet::<M>::define_with_prefix(&host, "cb.two");
        one.add(&host, M::A, 1);
        two.add(&host, M::A, 5);
        assert_eq!(host.metric("cb.one.t.a"), 1);
        assert_eq!(host.metric("cb.two.t.a"), 5);
    }

    #[test]
    fn an_instance_prefixes_every_name_and_checks_it() {
        let host = FakeHost::default();
        let m = MetricSet::<M>::define(&Instance::new(&host, Some("public")));
        m.add(&host, M::A, 3);
        assert_eq!(host.metric("public.t.a"), 3);
        let plain = MetricSet::<M>::define(&Instance::new(&host, None));
        plain.add(&host, M::A, 1);
        assert_eq!(host.metric("t.a"), 1);
        assert_eq!(
            stat_prefix(Some("edge_1"), "stat_prefix"),
            Ok(Some("edge_1".into()))
        );
        for bad in ["", "a.b", "a b", &"x".repeat(65)] {
            let err = stat_prefix(Some(bad), "stat_prefix").unwrap_err();
            assert_eq!(err.field, "stat_prefix", "{bad:?}");
        }
    }

    #[test]
    fn an_undefined_set_does_nothing() {
        let host = FakeHost::default();
        MetricSet::<M>::default().add(&host, M::A, 1);
        assert!(host.metrics.borrow().is_empty());
    }
}

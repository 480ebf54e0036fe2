//! Metrics. Envoy shows them as `wasmcustom.<name>`, Kong as `pw.<filter>.<name>`.
//!
//! Per breaker (`<b>` is the breaker name with every character outside `[A-Za-z0-9_-]` turned
//! into `_`): `circuit_breaker.<b>.state` (gauge: 0 closed, 1 open, 2 half-open, set by the
//! worker that made the transition), and counters `.trips`, `.rejected`, `.probes`,
//! `.failures`, `.successes`, `.contended`. Plugin-wide: `circuit_breaker.untracked`,
//! `circuit_breaker.errors`.

use gateway_core::ports::{MetricId, MetricsPort};

/// One breaker's counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Trips (closed -> open and half-open -> open).
    Trips,
    /// Requests refused while open (local reply or fallback).
    Rejected,
    /// Probes admitted in half-open.
    Probes,
    /// Outcomes recorded as failures.
    Failures,
    /// Outcomes recorded as successes.
    Successes,
    /// Admissions or outcomes given up after `max_cas_attempts` lost races.
    Contended,
}

impl Counter {
    const ALL: [Counter; 6] = [
        Counter::Trips,
        Counter::Rejected,
        Counter::Probes,
        Counter::Failures,
        Counter::Successes,
        Counter::Contended,
    ];

    fn suffix(self) -> &'static str {
        match self {
            Counter::Trips => "trips",
            Counter::Rejected => "rejected",
            Counter::Probes => "probes",
            Counter::Failures => "failures",
            Counter::Successes => "successes",
            Counter::Contended => "contended",
        }
    }
}

/// Metric ids of one breaker (`None` where the host refused one).
#[derive(Debug, Clone, Copy, Default)]
pub struct BreakerMetrics {
    state: Option<MetricId>,
    counters: [Option<MetricId>; 6],
}

/// The metric-safe form of a breaker name.
pub fn metric_name(breaker: &str) -> String {
    breaker
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl BreakerMetrics {
    /// Defines the metrics of breaker `name` (once per VM and breaker).
    pub fn define<M: MetricsPort + ?Sized>(host: &M, name: &str) -> Self {
        let base = format!("circuit_breaker.{}", metric_name(name));
        let mut counters = [None; 6];
        for (slot, c) in counters.iter_mut().zip(Counter::ALL) {
            *slot = host.define_counter(&format!("{base}.{}", c.suffix())).ok();
        }
        Self {
            state: host.define_gauge(&format!("{base}.state")).ok(),
            counters,
        }
    }

    /// Adds one to a counter.
    pub fn add<M: MetricsPort + ?Sized>(&self, host: &M, counter: Counter) {
        let index = Counter::ALL.iter().position(|c| *c == counter);
        if let Some(id) = index.and_then(|i| self.counters.get(i).copied().flatten()) {
            let _ = host.increment(id, 1);
        }
    }

    /// Sets the state gauge.
    pub fn set_state<M: MetricsPort + ?Sized>(&self, host: &M, state: u64) {
        if let Some(id) = self.state {
            let _ = host.record(id, state);
        }
    }
}

/// Plugin-wide counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct GlobalMetrics {
    untracked: Option<MetricId>,
    errors: Option<MetricId>,
}

impl GlobalMetrics {
    /// Defines them (once per VM).
    pub fn define<M: MetricsPort + ?Sized>(host: &M) -> Self {
        Self {
            untracked: host.define_counter("circuit_breaker.untracked").ok(),
            errors: host.define_counter("circuit_breaker.errors").ok(),
        }
    }

    /// A request passed without a breaker (no key value, or every breaker slot taken).
    pub fn untracked<M: MetricsPort + ?Sized>(&self, host: &M) {
        if let Some(id) = self.untracked {
            let _ = host.increment(id, 1);
        }
    }

    /// Shared data failed (host error, key collision): the request passed.
    pub fn error<M: MetricsPort + ?Sized>(&self, host: &M) {
        if let Some(id) = self.errors {
            let _ = host.increment(id, 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_core::fake::FakeHost;

    #[test]
    fn names_are_sanitized() {
        assert_eq!(
            metric_name("outbound|80||svc.ns.svc.cluster.local"),
            "outbound_80__svc_ns_svc_cluster_local"
        );
    }

    #[test]
    fn defines_per_breaker() {
        let host = FakeHost::default();
        let m = BreakerMetrics::define(&host, "payments");
        m.add(&host, Counter::Trips);
        m.set_state(&host, 1);
        assert_eq!(host.metric("circuit_breaker.payments.trips"), 1);
        assert_eq!(host.metric("circuit_breaker.payments.state"), 1);
        assert_eq!(host.metrics.borrow().len(), 7);
    }
}

//! Metrics. Envoy shows them as `wasmcustom.<name>`, Kong as `pw.<filter>.<name>`.
//!
//! Per breaker (`<b>` is the breaker name with every character outside `[A-Za-z0-9_-]` turned
//! into `_`): `circuit_breaker.<b>.state` (gauge: 0 closed, 1 open, 2 half-open, set by the
//! worker that made the transition), and counters `.trips`, `.rejected`, `.probes`,
//! `.failures`, `.successes`, `.contended`. Plugin-wide: `circuit_breaker.untracked`,
//! `circuit_breaker.errors`.

use gateway_core::metrics::{MetricKind, MetricSet};

/// One breaker's metric, named `circuit_breaker.<b>.<suffix>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerMetric {
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
    /// Gauge: 0 closed, 1 open, 2 half-open.
    State,
}

impl MetricKind for BreakerMetric {
    const ALL: &'static [Self] = &[
        BreakerMetric::Trips,
        BreakerMetric::Rejected,
        BreakerMetric::Probes,
        BreakerMetric::Failures,
        BreakerMetric::Successes,
        BreakerMetric::Contended,
        BreakerMetric::State,
    ];

    fn name(self) -> &'static str {
        match self {
            BreakerMetric::Trips => "trips",
            BreakerMetric::Rejected => "rejected",
            BreakerMetric::Probes => "probes",
            BreakerMetric::Failures => "failures",
            BreakerMetric::Successes => "successes",
            BreakerMetric::Contended => "contended",
            BreakerMetric::State => "state",
        }
    }

    fn is_gauge(self) -> bool {
        self == BreakerMetric::State
    }
}

/// One breaker's metric ids.
pub type BreakerMetrics = MetricSet<BreakerMetric>;

/// The metric-name form of a breaker name: every character outside `[A-Za-z0-9_-]` becomes `_`.
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

/// Defines the metrics of breaker `name` (once per breaker per VM).
pub fn define_breaker<M: gateway_core::ports::MetricsPort + ?Sized>(
    host: &M,
    name: &str,
) -> BreakerMetrics {
    BreakerMetrics::define_with_prefix(host, &format!("circuit_breaker.{}", metric_name(name)))
}

/// Plugin-wide counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GlobalMetric {
    /// A request passed without a breaker (no key value, or every breaker slot taken).
    Untracked,
    /// Shared data failed (host error, key collision): the request passed.
    Errors,
}

impl MetricKind for GlobalMetric {
    const ALL: &'static [Self] = &[GlobalMetric::Untracked, GlobalMetric::Errors];

    fn name(self) -> &'static str {
        match self {
            GlobalMetric::Untracked => "circuit_breaker.untracked",
            GlobalMetric::Errors => "circuit_breaker.errors",
        }
    }
}

/// The plugin-wide metric ids.
pub type GlobalMetrics = MetricSet<GlobalMetric>;

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
        let m = define_breaker(&host, "payments");
        m.add(&host, BreakerMetric::Trips, 1);
        m.record(&host, BreakerMetric::State, 1);
        assert_eq!(host.metric("circuit_breaker.payments.trips"), 1);
        assert_eq!(host.metric("circuit_breaker.payments.state"), 1);
        assert_eq!(host.metrics.borrow().len(), 7);
    }
}

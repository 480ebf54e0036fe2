//! Metrics the plugin defines. Envoy shows them as `wasmcustom.<name>`, Kong as
//! `pw.<filter>.<name>`.

use gateway_core::ports::{MetricId, MetricsPort};

/// One counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Requests seen (request-headers phase).
    Requests,
    /// CORS preflights answered `204` by the plugin.
    PreflightsAnswered,
    /// CORS preflights refused `403` (origin not allowed).
    PreflightsRejected,
    /// Client header lines removed by anti-spoofing (duplicates counted).
    SpoofedHeadersRemoved,
    /// Request and response rules that matched and acted.
    RulesApplied,
    /// Rules that matched but were skipped (value unavailable on this request or host).
    RulesSkipped,
    /// Correlation ids generated (absent or invalid incoming id).
    CorrelationIdsGenerated,
    /// Traces started (no incoming `traceparent`).
    TraceparentsStarted,
    /// Invalid incoming `traceparent` headers replaced or removed.
    TraceparentsInvalid,
}

impl Metric {
    /// Every metric, in definition order.
    pub const ALL: [Metric; 9] = [
        Metric::Requests,
        Metric::PreflightsAnswered,
        Metric::PreflightsRejected,
        Metric::SpoofedHeadersRemoved,
        Metric::RulesApplied,
        Metric::RulesSkipped,
        Metric::CorrelationIdsGenerated,
        Metric::TraceparentsStarted,
        Metric::TraceparentsInvalid,
    ];

    /// The name given to the host.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Requests => "header_injection.requests",
            Metric::PreflightsAnswered => "header_injection.preflights_answered",
            Metric::PreflightsRejected => "header_injection.preflights_rejected",
            Metric::SpoofedHeadersRemoved => "header_injection.spoofed_headers_removed",
            Metric::RulesApplied => "header_injection.rules_applied",
            Metric::RulesSkipped => "header_injection.rules_skipped",
            Metric::CorrelationIdsGenerated => "header_injection.correlation_ids_generated",
            Metric::TraceparentsStarted => "header_injection.traceparents_started",
            Metric::TraceparentsInvalid => "header_injection.traceparents_invalid",
        }
    }
}

/// The ids of the defined counters (`None` where the host refused one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Metrics {
    ids: [Option<MetricId>; 9],
}

impl Metrics {
    /// Defines every counter once (per VM, in `on_configure`).
    pub fn define<M: MetricsPort + ?Sized>(host: &M) -> Self {
        let mut ids = [None; 9];
        for (slot, metric) in ids.iter_mut().zip(Metric::ALL) {
            *slot = host.define_counter(metric.name()).ok();
        }
        Self { ids }
    }

    /// Adds `n` to a counter (nothing for 0: every host call costs).
    pub fn add<M: MetricsPort + ?Sized>(&self, host: &M, metric: Metric, n: usize) {
        if n == 0 {
            return;
        }
        let index = Metric::ALL.iter().position(|m| *m == metric);
        if let Some(id) = index.and_then(|i| self.ids.get(i).copied().flatten()) {
            let _ = host.increment(id, i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_core::fake::FakeHost;

    #[test]
    fn defines_and_counts() {
        let host = FakeHost::default();
        let metrics = Metrics::define(&host);
        metrics.add(&host, Metric::RulesApplied, 2);
        metrics.add(&host, Metric::RulesApplied, 0);
        metrics.add(&host, Metric::Requests, 1);
        assert_eq!(host.metric("header_injection.rules_applied"), 2);
        assert_eq!(host.metric("header_injection.requests"), 1);
        assert_eq!(host.metrics.borrow().len(), Metric::ALL.len());
    }
}

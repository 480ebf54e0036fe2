//! Metrics the plugin defines. Envoy shows them as `wasmcustom.<name>`, Kong as
//! `pw.<filter>.<name>`.

use gateway_core::metrics::{MetricKind, MetricSet};

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

impl MetricKind for Metric {
    const ALL: &'static [Self] = &[
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

    fn name(self) -> &'static str {
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

/// The ids of the defined metrics (`None` where the host refused one).
pub type Metrics = MetricSet<Metric>;

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

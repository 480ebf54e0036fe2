//! Metrics. Envoy shows them as `wasmcustom.<name>`, Kong as `pw.<filter>.<name>`.
//!
//! - `audit_log.records_written` (counter): records built and sealed by this VM.
//! - `audit_log.records_exported` (counter): records the collector acknowledged (2xx).
//! - `audit_log.records_retried` (counter): records put back after a failed export attempt.
//! - `audit_log.export_failures` (counter): failed export attempts (status, reset, timeout).
//! - `audit_log.records_dropped` (counter): records that will never reach the collector (buffer
//!   full, queue unavailable); each is also logged whole as `audit-log-dropped: {...}`.
//! - `audit_log.buffer_depth` (gauge): records held by the exporter (buffered plus in flight).

use gateway_core::ports::{MetricId, MetricsPort};

/// The counters and the gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// See the module docs.
    Written,
    /// See the module docs.
    Exported,
    /// See the module docs.
    Retried,
    /// See the module docs.
    ExportFailures,
    /// See the module docs.
    Dropped,
}

const COUNTERS: [(Metric, &str); 5] = [
    (Metric::Written, "audit_log.records_written"),
    (Metric::Exported, "audit_log.records_exported"),
    (Metric::Retried, "audit_log.records_retried"),
    (Metric::ExportFailures, "audit_log.export_failures"),
    (Metric::Dropped, "audit_log.records_dropped"),
];

/// Metric ids (`None` where the host refused one).
#[derive(Debug, Clone, Copy, Default)]
pub struct Metrics {
    counters: [Option<MetricId>; 5],
    depth: Option<MetricId>,
}

impl Metrics {
    /// Defines them (once per VM).
    pub fn define<M: MetricsPort + ?Sized>(host: &M) -> Self {
        let mut counters = [None; 5];
        for (slot, (_, name)) in counters.iter_mut().zip(COUNTERS) {
            *slot = host.define_counter(name).ok();
        }
        Self {
            counters,
            depth: host.define_gauge("audit_log.buffer_depth").ok(),
        }
    }

    /// Adds `n` to a counter.
    pub fn add<M: MetricsPort + ?Sized>(&self, host: &M, metric: Metric, n: usize) {
        let index = COUNTERS.iter().position(|(m, _)| *m == metric);
        if let Some(id) = index.and_then(|i| self.counters.get(i).copied().flatten()) {
            let _ = host.increment(id, i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Sets the buffer depth gauge.
    pub fn depth<M: MetricsPort + ?Sized>(&self, host: &M, depth: usize) {
        if let Some(id) = self.depth {
            let _ = host.record(id, depth as u64);
        }
    }
}

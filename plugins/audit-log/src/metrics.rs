//! Metrics. Envoy shows them as `wasmcustom.<name>`, Kong as `pw.<filter>.<name>`.
//!
//! - `audit_log.records_written` (counter): records built and sealed by this VM.
//! - `audit_log.records_exported` (counter): records the collector acknowledged (2xx).
//! - `audit_log.records_retried` (counter): records put back after a failed export attempt.
//! - `audit_log.export_failures` (counter): failed export attempts (status, reset, timeout).
//! - `audit_log.records_dropped` (counter): records that will never reach the collector (buffer
//!   full, queue unavailable); each is also logged whole as `audit-log-dropped: {...}`.
//! - `audit_log.buffer_depth` (gauge): records held by the exporter (buffered plus in flight).

use gateway_core::metrics::{MetricKind, MetricSet};

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
    /// See the module docs (a gauge).
    BufferDepth,
}

impl MetricKind for Metric {
    const ALL: &'static [Self] = &[
        Metric::Written,
        Metric::Exported,
        Metric::Retried,
        Metric::ExportFailures,
        Metric::Dropped,
        Metric::BufferDepth,
    ];

    fn name(self) -> &'static str {
        match self {
            Metric::Written => "audit_log.records_written",
            Metric::Exported => "audit_log.records_exported",
            Metric::Retried => "audit_log.records_retried",
            Metric::ExportFailures => "audit_log.export_failures",
            Metric::Dropped => "audit_log.records_dropped",
            Metric::BufferDepth => "audit_log.buffer_depth",
        }
    }

    fn is_gauge(self) -> bool {
        self == Metric::BufferDepth
    }
}

/// Metric ids (`None` where the host refused one).
pub type Metrics = MetricSet<Metric>;

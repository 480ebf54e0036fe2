//! Metrics the plugin defines. Envoy shows them as `wasmcustom.<name>`, Kong as
//! `pw.<filter>.<name>`.

use gateway_core::metrics::{MetricKind, MetricSet};

/// One metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Requests admitted after at least one rule was checked.
    Allowed,
    /// Requests refused.
    Limited,
    /// Requests that would have been refused, admitted in shadow mode.
    ShadowLimited,
    /// Requests exempt (CIDR or header value).
    Exempt,
    /// Compare-and-swaps lost and retried.
    CasRetries,
    /// Rules whose attempts all lost their compare-and-swap.
    CasExhausted,
    /// Rules whose candidate slots all held other live keys.
    SlotsExhausted,
    /// Idle slots taken over by another key.
    SlotTakeovers,
    /// Host failures the decision needed (shared data, clock, request headers).
    StoreErrors,
    /// Requests given back to a rule after a later rule refused.
    Refunds,
    /// Refunds that could not be written.
    RefundFailures,
    /// Slots ever claimed, summed over every VM: a counter (it never decreases, since Envoy never
    /// deletes a key), so that each VM adds its own claims (Kong's engine increments counters
    /// only; incrementing a gauge traps).
    SlotsInUse,
    /// Rules whose key lacked a part (header absent, no client address).
    KeyMissing,
}

impl MetricKind for Metric {
    const ALL: &'static [Self] = &[
        Metric::Allowed,
        Metric::Limited,
        Metric::ShadowLimited,
        Metric::Exempt,
        Metric::CasRetries,
        Metric::CasExhausted,
        Metric::SlotsExhausted,
        Metric::SlotTakeovers,
        Metric::StoreErrors,
        Metric::Refunds,
        Metric::RefundFailures,
        Metric::SlotsInUse,
        Metric::KeyMissing,
    ];

    fn name(self) -> &'static str {
        match self {
            Metric::Allowed => "ratelimit.allowed",
            Metric::Limited => "ratelimit.limited",
            Metric::ShadowLimited => "ratelimit.shadow_limited",
            Metric::Exempt => "ratelimit.exempt",
            Metric::CasRetries => "ratelimit.cas_retries",
            Metric::CasExhausted => "ratelimit.cas_retries_exhausted",
            Metric::SlotsExhausted => "ratelimit.slots_exhausted",
            Metric::SlotTakeovers => "ratelimit.slot_takeovers",
            Metric::StoreErrors => "ratelimit.store_errors",
            Metric::Refunds => "ratelimit.refunds",
            Metric::RefundFailures => "ratelimit.refund_failures",
            Metric::SlotsInUse => "ratelimit.slots_in_use",
            Metric::KeyMissing => "ratelimit.key_missing",
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
        metrics.add(&host, Metric::Limited, 2);
        metrics.add(&host, Metric::Limited, 0);
        metrics.add(&host, Metric::SlotsInUse, 1);
        assert_eq!(host.metric("ratelimit.limited"), 2);
        assert_eq!(host.metric("ratelimit.slots_in_use"), 1);
        assert_eq!(host.metrics.borrow().len(), Metric::ALL.len());
    }
}

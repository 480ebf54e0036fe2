//! Metrics. Envoy shows them as `wasmcustom.<name>`, Kong as `pw.<filter>.<name>`.
//!
//! `jwt_rbac.allowed`, `jwt_rbac.anonymous`, `jwt_rbac.denied`, `jwt_rbac.denied.<reason>`,
//! `jwt_rbac.cache_hits`, `jwt_rbac.cache_misses`, `jwt_rbac.spoofed_headers_removed`,
//! `jwt_rbac.jwks_fetch_ok`, `jwt_rbac.jwks_fetch_failed`, `jwt_rbac.revocations_fetch_ok`,
//! `jwt_rbac.revocations_fetch_failed`.

use crate::reason::Reason;
use gateway_core::metrics::{MetricKind, MetricSet};
use gateway_core::ports::MetricsPort;

/// One counter (the per-reason ones are [`Metrics::denied`]'s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Requests let through with a verified identity.
    Allowed,
    /// Requests let through without one (anonymous rule, missing token allowed, no rule + allow).
    Anonymous,
    /// Requests denied (every reason).
    Denied,
    /// Tokens found in the verified-token cache.
    CacheHits,
    /// Tokens verified because the cache did not have them.
    CacheMisses,
    /// Client header lines removed by anti-spoofing.
    SpoofedHeadersRemoved,
    /// Remote JWKS fetches that brought usable keys.
    JwksFetchOk,
    /// Remote JWKS fetches that failed (status, timeout, unusable body).
    JwksFetchFailed,
    /// Remote revocation list fetches that brought a valid list.
    RevocationsFetchOk,
    /// Remote revocation list fetches that failed (status, timeout, unusable body).
    RevocationsFetchFailed,
}

impl MetricKind for Metric {
    const ALL: &'static [Self] = &[
        Metric::Allowed,
        Metric::Anonymous,
        Metric::Denied,
        Metric::CacheHits,
        Metric::CacheMisses,
        Metric::SpoofedHeadersRemoved,
        Metric::JwksFetchOk,
        Metric::JwksFetchFailed,
        Metric::RevocationsFetchOk,
        Metric::RevocationsFetchFailed,
    ];

    fn name(self) -> &'static str {
        match self {
            Metric::Allowed => "jwt_rbac.allowed",
            Metric::Anonymous => "jwt_rbac.anonymous",
            Metric::Denied => "jwt_rbac.denied",
            Metric::CacheHits => "jwt_rbac.cache_hits",
            Metric::CacheMisses => "jwt_rbac.cache_misses",
            Metric::SpoofedHeadersRemoved => "jwt_rbac.spoofed_headers_removed",
            Metric::JwksFetchOk => "jwt_rbac.jwks_fetch_ok",
            Metric::JwksFetchFailed => "jwt_rbac.jwks_fetch_failed",
            Metric::RevocationsFetchOk => "jwt_rbac.revocations_fetch_ok",
            Metric::RevocationsFetchFailed => "jwt_rbac.revocations_fetch_failed",
        }
    }
}

/// `jwt_rbac.denied.<reason code>`, one counter per reason.
impl MetricKind for Reason {
    const ALL: &'static [Self] = &Reason::ALL;

    fn name(self) -> &'static str {
        self.code()
    }
}

/// The ids of the defined counters (`None` where the host refused one).
#[derive(Debug, Clone, Copy, Default)]
pub struct Metrics {
    counters: MetricSet<Metric>,
    denied_by: MetricSet<Reason>,
}

impl Metrics {
    /// Defines every counter once (per VM, in `on_configure`).
    pub fn define<M: MetricsPort + ?Sized>(host: &M) -> Self {
        Self {
            counters: MetricSet::define(host),
            denied_by: MetricSet::define_with_prefix(host, "jwt_rbac.denied"),
        }
    }

    /// Adds `n` to a counter (nothing for 0: every host call costs).
    pub fn add<M: MetricsPort + ?Sized>(&self, host: &M, metric: Metric, n: usize) {
        self.counters.add(host, metric, n);
    }

    /// Counts one request denied for `reason` (in `jwt_rbac.denied` and its reason's counter).
    pub fn denied<M: MetricsPort + ?Sized>(&self, host: &M, reason: Reason) {
        self.counters.add(host, Metric::Denied, 1);
        self.denied_by.add(host, reason, 1);
    }
}

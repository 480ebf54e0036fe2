//! Metrics. Envoy shows them as `wasmcustom.<name>`, Kong as `pw.<filter>.<name>`.
//!
//! `jwt_rbac.allowed`, `jwt_rbac.anonymous`, `jwt_rbac.denied`, `jwt_rbac.denied.<reason>`,
//! `jwt_rbac.cache_hits`, `jwt_rbac.cache_misses`, `jwt_rbac.spoofed_headers_removed`,
//! `jwt_rbac.jwks_fetch_ok`, `jwt_rbac.jwks_fetch_failed`, `jwt_rbac.revocations_fetch_ok`,
//! `jwt_rbac.revocations_fetch_failed`.

use crate::reason::Reason;
use gateway_core::ports::{MetricId, MetricsPort};

/// One counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Requests let through with a verified identity.
    Allowed,
    /// Requests let through without one (anonymous rule, missing token allowed, no rule + allow).
    Anonymous,
    /// Requests denied (every reason).
    Denied,
    /// Requests denied for this reason.
    DeniedBy(Reason),
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

const FIXED: [(Metric, &str); 10] = [
    (Metric::Allowed, "jwt_rbac.allowed"),
    (Metric::Anonymous, "jwt_rbac.anonymous"),
    (Metric::Denied, "jwt_rbac.denied"),
    (Metric::CacheHits, "jwt_rbac.cache_hits"),
    (Metric::CacheMisses, "jwt_rbac.cache_misses"),
    (
        Metric::SpoofedHeadersRemoved,
        "jwt_rbac.spoofed_headers_removed",
    ),
    (Metric::JwksFetchOk, "jwt_rbac.jwks_fetch_ok"),
    (Metric::JwksFetchFailed, "jwt_rbac.jwks_fetch_failed"),
    (Metric::RevocationsFetchOk, "jwt_rbac.revocations_fetch_ok"),
    (
        Metric::RevocationsFetchFailed,
        "jwt_rbac.revocations_fetch_failed",
    ),
];

/// The ids of the defined counters (`None` where the host refused one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Metrics {
    fixed: [Option<MetricId>; FIXED.len()],
    by_reason: [Option<MetricId>; Reason::ALL.len()],
}

impl Metrics {
    /// Defines every counter once (per VM, in `on_configure`).
    pub fn define<M: MetricsPort + ?Sized>(host: &M) -> Self {
        let mut metrics = Self::default();
        for (slot, (_, name)) in metrics.fixed.iter_mut().zip(FIXED) {
            *slot = host.define_counter(name).ok();
        }
        for (slot, reason) in metrics.by_reason.iter_mut().zip(Reason::ALL) {
            *slot = host
                .define_counter(&format!("jwt_rbac.denied.{}", reason.code()))
                .ok();
        }
        metrics
    }

    /// Adds `n` to a counter (nothing for 0: every host call costs).
    pub fn add<M: MetricsPort + ?Sized>(&self, host: &M, metric: Metric, n: usize) {
        if n == 0 {
            return;
        }
        let id = match metric {
            Metric::DeniedBy(reason) => Reason::ALL
                .iter()
                .position(|r| *r == reason)
                .and_then(|i| self.by_reason.get(i).copied().flatten()),
            other => FIXED
                .iter()
                .position(|(m, _)| *m == other)
                .and_then(|i| self.fixed.get(i).copied().flatten()),
        };
        if let Some(id) = id {
            let _ = host.increment(id, i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
}

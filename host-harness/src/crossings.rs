//! VM-boundary crossings: every time control passes between the host and the guest.
//!
//! Each crossing costs a real gateway microseconds (issue #15: Envoy pays 0.07-1.6 us per host
//! call, more for one that returns a buffer), so the harness counts them exactly, per stream
//! context and per VM, and tests assert budgets on them.

use std::collections::BTreeMap;

/// Crossings counted over some span (a stream's life, or a VM's since its creation or the last
/// [`crate::Harness::reset_crossings`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Crossings {
    /// Callbacks: the host calling a guest export (`proxy_on_*`, `_initialize`), by export name.
    pub callbacks: BTreeMap<String, u64>,
    /// Host calls: the guest calling an `env` / `wasi_snapshot_preview1` import, by import name.
    pub host_calls: BTreeMap<String, u64>,
    /// Guest allocations: the host calling `proxy_on_memory_allocate` (or `malloc`) to hand a
    /// buffer back to the guest.
    pub allocations: u64,
}

impl Crossings {
    /// Every crossing: callbacks + host calls + allocations.
    pub fn total(&self) -> u64 {
        self.callbacks.values().sum::<u64>()
            + self.host_calls.values().sum::<u64>()
            + self.allocations
    }

    /// Sum of the callbacks.
    pub fn callback_count(&self) -> u64 {
        self.callbacks.values().sum()
    }

    /// Sum of the host calls.
    pub fn host_call_count(&self) -> u64 {
        self.host_calls.values().sum()
    }

    /// Adds `other` into `self` (for a chain of filters).
    pub fn add(&mut self, other: &Crossings) {
        for (k, v) in &other.callbacks {
            *self.callbacks.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.host_calls {
            *self.host_calls.entry(k.clone()).or_default() += v;
        }
        self.allocations += other.allocations;
    }
}

impl std::fmt::Display for Crossings {
    /// `N crossings: C callbacks, H host calls, A allocations` then one `name xN` line each.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} crossings: {} callbacks, {} host calls, {} allocations",
            self.total(),
            self.callback_count(),
            self.host_call_count(),
            self.allocations
        )?;
        for (name, n) in &self.callbacks {
            writeln!(f, "  callback  {name} x{n}")?;
        }
        for (name, n) in &self.host_calls {
            writeln!(f, "  host call {name} x{n}")?;
        }
        Ok(())
    }
}

/// What a VM keeps: its totals and one record per context id.
#[derive(Default)]
pub(crate) struct CrossingLog {
    pub(crate) vm: Crossings,
    pub(crate) contexts: BTreeMap<u32, Crossings>,
}

/// Which kind of crossing.
pub(crate) enum Kind<'a> {
    Callback(&'a str),
    HostCall(&'a str),
    Allocation,
}

impl CrossingLog {
    pub(crate) fn count(&mut self, context: u32, kind: Kind<'_>) {
        let ctx = self.contexts.entry(context).or_default();
        for c in [&mut self.vm, ctx] {
            match &kind {
                Kind::Callback(name) => *c.callbacks.entry((*name).to_string()).or_default() += 1,
                Kind::HostCall(name) => *c.host_calls.entry((*name).to_string()).or_default() += 1,
                Kind::Allocation => c.allocations += 1,
            }
        }
    }
}

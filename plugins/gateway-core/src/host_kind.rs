//! Which proxy-wasm host runs the module, decided once per VM without a call that traps anywhere.
//!
//! Envoy and Kong's engine (ngx_wasm_module) differ in what a filter may do (see
//! ARCHITECTURE.md): Kong traps on foreign functions, on HTTP dispatch outside request phases and
//! ticks, and cannot remove a client's request header before the upstream. A plugin asks
//! [`HostKind`] before it makes such a call, so it never makes one the host lacks.
//!
//! Detection reads the property `xds.node`: Envoy answers it in every context (the node of the
//! bootstrap, possibly empty); Kong's engine does not map `xds.*` at all and answers NotFound
//! without logging. Any host that does not answer it is run by the strictest rules known,
//! Kong's.

/// The host, as far as a plugin needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostKind {
    /// Envoy (or Istio's proxy): every call the suite uses is there.
    Envoy,
    /// Kong's engine, or any host without Envoy's `xds.*` properties: Kong's rules.
    #[default]
    Kong,
}

/// The property only Envoy answers.
pub const ENVOY_ONLY_PROPERTY: &[&str] = &["xds", "node"];

impl HostKind {
    /// The kind for a host that answered [`ENVOY_ONLY_PROPERTY`] (`true`) or not.
    pub fn from_envoy_property(answered: bool) -> Self {
        if answered {
            HostKind::Envoy
        } else {
            HostKind::Kong
        }
    }

    /// Lowercase name, for log lines.
    pub fn name(self) -> &'static str {
        match self {
            HostKind::Envoy => "envoy",
            HostKind::Kong => "kong",
        }
    }

    /// `proxy_call_foreign_function` exists (Envoy's `verify_signature`); it traps on Kong.
    pub fn has_foreign_functions(self) -> bool {
        self == HostKind::Envoy
    }

    /// An HTTP callout may be dispatched from the root context: in `on_configure` and `on_tick`.
    /// Kong allows a dispatch only in `on_request_headers`, `on_request_body`, `on_tick` and
    /// `on_http_call_response`, and its engine crashed dispatching from the root under load;
    /// the suite dispatches from stream contexts there.
    pub fn dispatches_from_root(self) -> bool {
        self == HostKind::Envoy
    }

    /// An HTTP callout may be dispatched from `on_log` (Kong traps there).
    pub fn dispatches_from_log(self) -> bool {
        self == HostKind::Envoy
    }

    /// A removed request header is really gone before the upstream. On Kong the engine only
    /// marks it and nginx's proxy module still forwards it (a replace too): no proxy-wasm call
    /// can keep a client's header from the upstream there.
    pub fn removes_request_headers(self) -> bool {
        self == HostKind::Envoy
    }

    /// The root can act for a waiting stream through `proxy_set_effective_context` (a no-op on
    /// Kong: reading a stream's headers from the root there crashes the worker).
    pub fn switches_context(self) -> bool {
        self == HostKind::Envoy
    }

    /// A filter can set filter state (`proxy_set_property` of its own key, readable by Envoy's
    /// access log). Kong's engine sets only `ngx.*` and `kong.*` properties.
    pub fn has_filter_state(self) -> bool {
        self == HostKind::Envoy
    }

    /// The host has Envoy's `response.flags` (Kong logs an error line for each read).
    pub fn has_response_flags(self) -> bool {
        self == HostKind::Envoy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_answered_envoy_property_means_envoy() {
        assert_eq!(HostKind::from_envoy_property(true), HostKind::Envoy);
        assert_eq!(HostKind::from_envoy_property(false), HostKind::Kong);
        assert_eq!(HostKind::default(), HostKind::Kong);
        assert!(!HostKind::Kong.has_foreign_functions());
        assert!(!HostKind::Kong.removes_request_headers());
        assert!(HostKind::Envoy.dispatches_from_log());
    }
}

//! header-injection: a proxy-wasm HTTP filter for request/response header rules, correlation
//! and trace ids, security response headers, CORS and anti-spoofing.
//!
//! This file only wires proxy-wasm: the root context compiles the configuration in
//! `on_configure`, each HTTP context hands its callbacks to [`stream::Stream`]. Decisions live
//! in the other modules, which never import `proxy_wasm`. See `docs/header-injection.md`.

pub mod config;
pub mod correlation;
pub mod cors;
pub mod ids;
pub mod metrics;
pub mod rules;
pub mod security;
pub mod stream;
pub mod traceparent;

#[cfg(test)]
mod stream_tests;

use config::Settings;
use gateway_core::host_kind::HostKind;
use gateway_core::metrics::Instance;
use gateway_core::proxy_wasm_host::ProxyWasmHost;
use metrics::Metrics;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};
use std::rc::Rc;
use stream::{Flow, Stream};

/// The plugin's root context: what the module's entry point installs, and what the gateway
/// suite runs as one of its jobs.
pub fn root(_context_id: u32) -> Box<dyn RootContext> {
    Box::new(HeaderInjectionRoot::default())
}

#[cfg(all(feature = "module", target_arch = "wasm32"))]
proxy_wasm::main! {{
    proxy_wasm::set_root_context(root);
}}

/// Parses the configuration once per VM and creates a filter per stream.
#[derive(Default)]
struct HeaderInjectionRoot {
    settings: Option<Rc<Settings>>,
    metrics: Metrics,
    host: HostKind,
}

impl Context for HeaderInjectionRoot {}

impl RootContext for HeaderInjectionRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let _phase = ProxyWasmHost::phase();
        let host = ProxyWasmHost;
        let Some(settings) = host.compiled_configuration("header-injection", Settings::from_json)
        else {
            return false;
        };
        self.metrics = Metrics::define(&Instance::new(&host, settings.stat_prefix.as_deref()));
        self.settings = Some(Rc::new(settings));
        self.host = host.host_kind();
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(HeaderInjectionFilter {
            stream: Stream::new(self.settings.clone(), self.metrics).on_host(self.host),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// One HTTP stream.
struct HeaderInjectionFilter {
    stream: Stream,
}

fn action(flow: Flow) -> Action {
    match flow {
        Flow::Continue => Action::Continue,
        Flow::Stop => Action::Pause,
    }
}

impl Context for HeaderInjectionFilter {}

impl HttpContext for HeaderInjectionFilter {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let _phase = ProxyWasmHost::phase();
        action(self.stream.on_request_headers(&ProxyWasmHost))
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let _phase = ProxyWasmHost::phase();
        action(self.stream.on_response_headers(&ProxyWasmHost))
    }
}

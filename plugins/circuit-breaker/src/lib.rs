//! circuit-breaker: a proxy-wasm HTTP filter keeping closed/open/half-open breakers per upstream
//! cluster, route, header or property in shared data, answering at once (or through a fallback
//! route) while open. See `docs/circuit-breaker.md`.
//!
//! This file only wires proxy-wasm: the root context compiles the configuration in
//! `on_configure`, each HTTP context hands its callbacks to [`stream::Stream`]. Decisions live
//! in the other modules ([`breaker`]: the state machine, [`window`]: the windows, [`failure`]:
//! what a failure is), which never import `proxy_wasm`.

pub mod breaker;
pub mod config;
pub mod failure;
pub mod metrics;
pub mod stream;
pub mod window;

#[cfg(test)]
mod stream_tests;

use config::Settings;
use gateway_core::proxy_wasm_host::ProxyWasmHost;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};
use std::rc::Rc;
use stream::{Flow, Runtime, Stream};

/// The plugin's root context: what the module's entry point installs, and what the gateway
/// suite runs as one of its jobs.
pub fn root(_context_id: u32) -> Box<dyn RootContext> {
    Box::new(CircuitBreakerRoot::default())
}

#[cfg(all(feature = "module", target_arch = "wasm32"))]
proxy_wasm::main! {{
    proxy_wasm::set_root_context(root);
}}

/// Parses the configuration once per VM and creates a filter per stream.
#[derive(Default)]
struct CircuitBreakerRoot {
    runtime: Option<Rc<Runtime>>,
}

impl Context for CircuitBreakerRoot {}

impl RootContext for CircuitBreakerRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let _phase = ProxyWasmHost::phase();
        let host = ProxyWasmHost;
        let Some(settings) = host.compiled_configuration("circuit-breaker", Settings::from_json)
        else {
            return false;
        };
        self.runtime = Some(Rc::new(
            Runtime::new(settings, &host).on_host(host.host_kind()),
        ));
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(CircuitBreakerFilter {
            stream: Stream::new(self.runtime.clone()),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// One HTTP stream.
struct CircuitBreakerFilter {
    stream: Stream,
}

fn action(flow: Flow) -> Action {
    match flow {
        Flow::Continue => Action::Continue,
        Flow::Stop => Action::Pause,
    }
}

impl Context for CircuitBreakerFilter {
    fn on_done(&mut self) -> bool {
        let _phase = ProxyWasmHost::phase();
        self.stream.on_log(&ProxyWasmHost);
        true
    }
}

impl HttpContext for CircuitBreakerFilter {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let _phase = ProxyWasmHost::phase();
        action(self.stream.on_request_headers(&ProxyWasmHost))
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let _phase = ProxyWasmHost::phase();
        action(self.stream.on_response_headers(&ProxyWasmHost))
    }

    fn on_log(&mut self) {
        let _phase = ProxyWasmHost::phase();
        self.stream.on_log(&ProxyWasmHost);
    }
}

//! ratelimit-shared-data: a proxy-wasm HTTP filter enforcing token-bucket and sliding-window
//! limits keyed by client IP, identity, API key, header, path, method or route, with state in
//! proxy-wasm shared data so the limit holds across every worker. See
//! `docs/ratelimit-shared-data.md`.
//!
//! This file only wires proxy-wasm: the root context compiles the configuration in
//! `on_configure` (and pre-creates the slot table), each HTTP context hands its callbacks to
//! [`stream::Stream`]. Decisions live in the other modules, which never import `proxy_wasm`:
//! [`limit`] (bucket and window arithmetic), [`slots`] (the bounded slot table), [`limiter`]
//! (check all rules, then commit all), [`key`], [`cidr`], [`answer`].

pub mod answer;
pub mod cidr;
pub mod config;
pub mod key;
pub mod limit;
pub mod limiter;
pub mod metrics;
pub mod slots;
pub mod stream;

#[cfg(test)]
mod stream_tests;

use config::Settings;
use gateway_core::ports::{LogLevel, LogPort};
use gateway_core::proxy_wasm_host::ProxyWasmHost;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};
use std::rc::Rc;
use stream::{Flow, Runtime, Stream};

/// The plugin's root context: what the module's entry point installs, and what the gateway
/// suite runs as one of its jobs.
pub fn root(_context_id: u32) -> Box<dyn RootContext> {
    Box::new(RateLimitRoot::default())
}

#[cfg(all(feature = "module", target_arch = "wasm32"))]
proxy_wasm::main! {{
    proxy_wasm::set_root_context(root);
}}

/// Parses the configuration once per VM and creates a filter per stream.
#[derive(Default)]
struct RateLimitRoot {
    runtime: Option<Rc<Runtime>>,
}

impl Context for RateLimitRoot {}

impl RootContext for RateLimitRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let _phase = ProxyWasmHost::phase();
        let host = ProxyWasmHost;
        let Some(settings) =
            host.compiled_configuration("ratelimit-shared-data", Settings::from_json)
        else {
            return false;
        };
        let runtime = Runtime::new(settings, &host);
        if runtime.settings.shared.prefill && !runtime.settings.rules.is_empty() {
            if let Err(err) = runtime.limiter.table.prefill(&host) {
                host.log(
                    LogLevel::Warn,
                    &format!("ratelimit-shared-data: cannot pre-create slots: {err}"),
                );
            }
        }
        self.runtime = Some(Rc::new(runtime));
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(RateLimitFilter {
            stream: Stream::new(self.runtime.clone()),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// One HTTP stream.
struct RateLimitFilter {
    stream: Stream,
}

fn action(flow: Flow) -> Action {
    match flow {
        Flow::Continue => Action::Continue,
        Flow::Stop => Action::Pause,
    }
}

impl Context for RateLimitFilter {}

impl HttpContext for RateLimitFilter {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let _phase = ProxyWasmHost::phase();
        action(self.stream.on_request_headers(&ProxyWasmHost))
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let _phase = ProxyWasmHost::phase();
        action(self.stream.on_response_headers(&ProxyWasmHost))
    }
}

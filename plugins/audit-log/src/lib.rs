//! audit-log: a proxy-wasm HTTP filter writing one tamper-evident (hash-chained), redacted JSON
//! record per request to the gateway log, Envoy filter state, and an HTTP collector in batches.
//! See `docs/audit-log.md`.
//!
//! This file only wires proxy-wasm: the root context compiles the configuration in
//! `on_configure` and forwards queue, tick and callout callbacks to [`runtime::Runtime`]; each
//! HTTP context hands its callbacks to [`runtime::Stream`]. Decisions live in the other modules
//! ([`record`], [`redact`], [`chain`], [`exporter`]), which never import `proxy_wasm`.
//!
//! The shared-queue and callout ports are implemented here ([`AuditHost`]) because the shared
//! adapter in gateway-core does not implement them yet; every other port delegates to it.

pub mod chain;
pub mod config;
pub mod exporter;
pub mod metrics;
pub mod record;
pub mod redact;
pub mod runtime;

#[cfg(test)]
mod runtime_tests;

use config::{Role, Settings};
use gateway_core::abi;
use gateway_core::headers::HeaderList;
use gateway_core::ports::{
    Clock, HeaderMapKind, HeaderPort, HostError, HttpCallPort, LogLevel, LogPort, MetricId,
    MetricsPort, PropertyPort, RandomSource,
};
use gateway_core::proxy_wasm_host::ProxyWasmHost;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};
use runtime::{BodyKind, BodyPort, QueuePort, Runtime, Stream};
use std::rc::Rc;

/// The plugin's root context: what the module's entry point installs, and what the gateway
/// suite runs as one of its jobs.
pub fn root(_context_id: u32) -> Box<dyn RootContext> {
    Box::new(AuditLogRoot::default())
}

#[cfg(all(feature = "module", target_arch = "wasm32"))]
proxy_wasm::main! {{
    proxy_wasm::set_root_context(root);
}}

/// gateway-core's adapter plus shared queues and callouts.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditHost;

const BASE: ProxyWasmHost = ProxyWasmHost;

impl HeaderPort for AuditHost {
    fn header_list(&self, map: HeaderMapKind) -> Result<HeaderList, HostError> {
        BASE.header_list(map)
    }
    fn header(&self, map: HeaderMapKind, name: &str) -> Result<Option<Vec<u8>>, HostError> {
        BASE.header(map, name)
    }
    fn set_header(&self, map: HeaderMapKind, name: &str, value: &[u8]) -> Result<(), HostError> {
        BASE.set_header(map, name, value)
    }
    fn add_header(&self, map: HeaderMapKind, name: &str, value: &[u8]) -> Result<(), HostError> {
        BASE.add_header(map, name, value)
    }
    fn remove_header(&self, map: HeaderMapKind, name: &str) -> Result<(), HostError> {
        BASE.remove_header(map, name)
    }
}

impl PropertyPort for AuditHost {
    fn property(&self, path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
        BASE.property(path)
    }
    fn set_property(&self, path: &[&str], value: &[u8]) -> Result<(), HostError> {
        BASE.set_property(path, value)
    }
}

impl Clock for AuditHost {
    fn now_unix_nanos(&self) -> Result<u64, HostError> {
        BASE.now_unix_nanos()
    }
}

impl RandomSource for AuditHost {
    fn fill_random(&self, buf: &mut [u8]) -> Result<(), HostError> {
        BASE.fill_random(buf)
    }
}

impl LogPort for AuditHost {
    fn log(&self, level: LogLevel, message: &str) {
        BASE.log(level, message)
    }
}

impl MetricsPort for AuditHost {
    fn define_counter(&self, name: &str) -> Result<MetricId, HostError> {
        BASE.define_counter(name)
    }
    fn define_gauge(&self, name: &str) -> Result<MetricId, HostError> {
        BASE.define_gauge(name)
    }
    fn increment(&self, id: MetricId, delta: i64) -> Result<(), HostError> {
        BASE.increment(id, delta)
    }
    fn record(&self, id: MetricId, value: u64) -> Result<(), HostError> {
        BASE.record(id, value)
    }
}

impl QueuePort for AuditHost {
    fn register_queue(&self, name: &str) -> Result<u32, HostError> {
        abi::register_queue(name)
    }
    fn resolve_queue(&self, vm_id: &str, name: &str) -> Result<Option<u32>, HostError> {
        abi::resolve_queue(vm_id, name)
    }
    fn enqueue(&self, queue: u32, item: &[u8]) -> Result<(), HostError> {
        abi::enqueue(queue, item)
    }
    fn dequeue(&self, queue: u32) -> Result<Option<Vec<u8>>, HostError> {
        abi::dequeue(queue)
    }
}

impl BodyPort for AuditHost {
    fn body_chunk(&self, kind: BodyKind, max: usize) -> Result<Option<Vec<u8>>, HostError> {
        let buffer = match kind {
            BodyKind::Request => proxy_wasm::types::BufferType::HttpRequestBody,
            BodyKind::Response => proxy_wasm::types::BufferType::HttpResponseBody,
        };
        abi::buffer(buffer, 0, max)
    }
}

impl HttpCallPort for AuditHost {
    fn dispatch_http_call(
        &self,
        upstream: &str,
        headers: &[(&str, &[u8])],
        body: &[u8],
        timeout_millis: u64,
    ) -> Result<u32, HostError> {
        let mut text = Vec::with_capacity(headers.len());
        for (name, value) in headers {
            let value = std::str::from_utf8(value).map_err(|_| HostError::BadArgument)?;
            text.push((*name, value));
        }
        BASE.dispatch_http_call(
            upstream,
            text,
            Some(body),
            std::time::Duration::from_millis(timeout_millis),
        )
    }
}

/// Parses the configuration once per VM, owns the chain and the exporter.
#[derive(Default)]
struct AuditLogRoot {
    runtime: Option<Rc<Runtime>>,
}

impl Context for AuditLogRoot {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        _body_size: usize,
        _num_trailers: usize,
    ) {
        let _phase = ProxyWasmHost::phase();
        if let Some(rt) = &self.runtime {
            rt.on_http_call_response(&AuditHost, token_id, callout_status(num_headers));
        }
    }
}

/// The `:status` of the callout answer being delivered; 0 for a failed or timed-out call (no
/// headers: nothing to read).
fn callout_status(num_headers: usize) -> u32 {
    if num_headers == 0 {
        return 0;
    }
    abi::header_value(
        proxy_wasm::types::MapType::HttpCallResponseHeaders,
        ":status",
    )
    .ok()
    .flatten()
    .and_then(|v| std::str::from_utf8(&v).ok()?.trim().parse::<u32>().ok())
    .unwrap_or(0)
}

impl RootContext for AuditLogRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let _phase = ProxyWasmHost::phase();
        let host = AuditHost;
        let Some(settings) = BASE.compiled_configuration("audit-log", Settings::from_json) else {
            return false;
        };
        let role = settings.role;
        let tick = settings.export.tick_ms;
        let exports = role == Role::Exporter || (role == Role::Local && settings.export.enabled);
        let runtime = Runtime::new(settings, &host).on_host(BASE.host_kind());
        if let Some(refusal) = runtime.host_refusal() {
            host.log(
                LogLevel::Error,
                &format!("audit-log: invalid configuration: {refusal}"),
            );
            return false;
        }
        if let Err(err) = runtime.start(&host) {
            host.log(
                LogLevel::Error,
                &format!("audit-log: invalid configuration: export.queue: cannot register: {err}"),
            );
            return false;
        }
        // Where the root may not dispatch (Kong), streams send the batches: no timer.
        if exports && runtime.host().dispatches_from_root() {
            let millis = u32::try_from(tick).unwrap_or(u32::MAX);
            if let Err(err) = ProxyWasmHost.set_tick_period(millis) {
                host.log(
                    LogLevel::Error,
                    &format!("audit-log: cannot start the export timer: {err}"),
                );
                return false;
            }
        }
        self.runtime = Some(Rc::new(runtime));
        true
    }

    fn on_tick(&mut self) {
        let _phase = ProxyWasmHost::phase();
        if let Some(rt) = &self.runtime {
            rt.on_tick(&AuditHost);
        }
    }

    fn on_queue_ready(&mut self, _queue_id: u32) {
        let _phase = ProxyWasmHost::phase();
        if let Some(rt) = &self.runtime {
            rt.on_queue_ready(&AuditHost);
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(AuditLogFilter {
            stream: Stream::new(self.runtime.clone()),
            waiting: false,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// One HTTP stream.
struct AuditLogFilter {
    stream: Stream,
    /// Paused until the answer to the export batch this stream sent (Kong).
    waiting: bool,
}

impl Context for AuditLogFilter {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        _body_size: usize,
        _num_trailers: usize,
    ) {
        let _phase = ProxyWasmHost::phase();
        self.stream
            .on_http_call_response(&AuditHost, token_id, callout_status(num_headers));
        if std::mem::take(&mut self.waiting) {
            let _ = ProxyWasmHost.resume_request();
        }
    }
}

impl HttpContext for AuditLogFilter {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let _phase = ProxyWasmHost::phase();
        if self.stream.on_request_headers(&AuditHost) {
            self.waiting = true;
            return Action::Pause;
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let _phase = ProxyWasmHost::phase();
        self.stream.on_response_headers(&AuditHost);
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, _end_of_stream: bool) -> Action {
        let _phase = ProxyWasmHost::phase();
        self.stream
            .on_body(&AuditHost, BodyKind::Request, body_size);
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, _end_of_stream: bool) -> Action {
        let _phase = ProxyWasmHost::phase();
        self.stream
            .on_body(&AuditHost, BodyKind::Response, body_size);
        Action::Continue
    }

    fn on_log(&mut self) {
        let _phase = ProxyWasmHost::phase();
        self.stream.on_log(&AuditHost);
    }
}

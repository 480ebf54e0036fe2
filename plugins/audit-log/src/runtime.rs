//! Per-VM runtime and per-stream capture: the sinks, the shared queue, the exporter.
//!
//! Generic over host ports: [`gateway_core::ports`] for headers, properties, clock, log, metrics,
//! plus [`QueuePort`] and [`HttpCallPort`] (shared queues and callouts, implemented by `lib.rs`
//! with proxy-wasm hostcalls and by a fake in the tests).

use crate::chain::{Chain, LOG_PREFIX};
use crate::config::{Role, Settings};
use crate::exporter::{Exporter, Outcome};
use crate::metrics::{Metric, Metrics};
use crate::record::{self, BodyCapture, LogFacts, RequestFacts, ResponseFacts};
use gateway_core::host_kind::HostKind;
use gateway_core::ports::{
    Clock, HeaderMapKind, HeaderPort, HostError, HttpCallPort, LogLevel, LogPort, MetricsPort,
    PropertyPort, RandomSource,
};
use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::rc::Rc;

/// Prefix of the log line of a record that will never reach the collector.
pub const DROPPED_PREFIX: &str = "audit-log-dropped: ";

/// Most queue items one `on_queue_ready`/`on_tick` moves into the buffer.
const MAX_DEQUEUE_PER_CALL: usize = 100_000;

/// Shared queues.
pub trait QueuePort {
    /// Registers (or finds) queue `name` owned by this VM's root context.
    fn register_queue(&self, name: &str) -> Result<u32, HostError>;
    /// Finds queue `name` of VM `vm_id`.
    fn resolve_queue(&self, vm_id: &str, name: &str) -> Result<Option<u32>, HostError>;
    /// Appends an item.
    fn enqueue(&self, queue: u32, item: &[u8]) -> Result<(), HostError>;
    /// Takes the oldest item (`Ok(None)` when empty).
    fn dequeue(&self, queue: u32) -> Result<Option<Vec<u8>>, HostError>;
}

/// Which body a call addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// The request body.
    Request,
    /// The response body.
    Response,
}

/// Reads the body chunk of the current callback.
pub trait BodyPort {
    /// Up to `max` bytes of the current chunk (`Ok(None)` when there is none).
    fn body_chunk(&self, kind: BodyKind, max: usize) -> Result<Option<Vec<u8>>, HostError>;
}

/// Every host port the runtime needs.
pub trait Host:
    HeaderPort
    + PropertyPort
    + Clock
    + LogPort
    + MetricsPort
    + RandomSource
    + QueuePort
    + HttpCallPort
    + BodyPort
{
}

impl<T> Host for T where
    T: HeaderPort
        + PropertyPort
        + Clock
        + LogPort
        + MetricsPort
        + RandomSource
        + QueuePort
        + HttpCallPort
        + BodyPort
{
}

/// State of one VM.
#[derive(Debug)]
pub struct Runtime {
    settings: Settings,
    chain: RefCell<Chain>,
    metrics: Metrics,
    queue: Cell<Option<u32>>,
    /// Exporter: this root context got `on_queue_ready`, so it owns the queue (Envoy notifies
    /// only the last registrant; a second exporter context, e.g. Envoy's base VM of the
    /// singleton, must not drain records it never ships).
    owns_queue: Cell<bool>,
    exporter: RefCell<Exporter>,
    host: HostKind,
}

fn chain_id<H: RandomSource + Clock + ?Sized>(host: &H) -> String {
    let mut bytes = [0u8; 8];
    if host.fill_random(&mut bytes).is_err() {
        bytes = host.now_unix_nanos().unwrap_or(0).to_be_bytes();
    }
    let mut id = String::with_capacity(16);
    for b in bytes {
        let _ = write!(id, "{b:02x}");
    }
    id
}

impl Runtime {
    /// A runtime for `settings`: a new chain (random id), metrics defined.
    pub fn new<H: Host + ?Sized>(settings: Settings, host: &H) -> Self {
        let exporter = Exporter::new(settings.export.clone());
        let chain = Chain::new(chain_id(host));
        host.log(
            LogLevel::Info,
            &format!(
                "audit-log chain {} started (role {:?})",
                chain.id(),
                settings.role
            ),
        );
        Self {
            metrics: Metrics::define(&gateway_core::metrics::Instance::new(
                host,
                settings.stat_prefix.as_deref(),
            )),
            chain: RefCell::new(chain),
            queue: Cell::new(None),
            owns_queue: Cell::new(false),
            exporter: RefCell::new(exporter),
            host: HostKind::Envoy,
            settings,
        }
    }

    /// The runtime on `host`. Where `on_log` and the root may not dispatch (Kong), records are
    /// exported from the request phase of a later stream instead: the only place such a host
    /// lets a filter call out safely. Only the properties the host has are read.
    pub fn on_host(mut self, host: HostKind) -> Self {
        self.host = host;
        self
    }

    /// The host this runtime was started on.
    pub fn host(&self) -> HostKind {
        self.host
    }

    /// Why the configuration cannot run on this host (`field: message`), if it cannot: the
    /// shared-queue roles need `proxy_resolve_shared_queue`, which Kong's engine lacks.
    pub fn host_refusal(&self) -> Option<String> {
        let queues = match self.settings.role {
            Role::Local => false,
            Role::Worker => self.settings.export.enabled,
            Role::Exporter => true,
        };
        if self.host.dispatches_from_root() || !queues {
            return None;
        }
        let role = match self.settings.role {
            Role::Worker => "worker",
            _ => "exporter",
        };
        Some(format!(
            "role: {role} needs shared queues, which this host (kong) does not offer \
             (proxy_resolve_shared_queue is not implemented): use role local"
        ))
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The chain id of this VM.
    pub fn chain_id(&self) -> String {
        self.chain.borrow().id().to_owned()
    }

    /// Configure-time work: the exporter registers its queue.
    pub fn start<H: Host + ?Sized>(&self, host: &H) -> Result<(), HostError> {
        if self.settings.role == Role::Exporter {
            let id = host.register_queue(&self.settings.export.queue)?;
            self.queue.set(Some(id));
        }
        Ok(())
    }

    fn drop_record<H: Host + ?Sized>(&self, host: &H, reason: &str, line: &str) {
        self.metrics.add(host, Metric::Dropped, 1);
        host.log(
            LogLevel::Warn,
            &format!("{DROPPED_PREFIX}reason={reason} {line}"),
        );
    }

    /// Seals `record` into this VM's chain and writes it to every sink.
    pub fn write<H: Host + ?Sized>(
        &self,
        host: &H,
        record: serde_json::Map<String, serde_json::Value>,
    ) {
        let line = self.chain.borrow_mut().seal(record);
        self.metrics.add(host, Metric::Written, 1);
        let sinks = &self.settings.sinks;
        if sinks.log {
            host.log(LogLevel::Info, &format!("{LOG_PREFIX}{line}"));
        }
        if !sinks.filter_state_key.is_empty() && self.host.has_filter_state() {
            let _ = host.set_property(&[sinks.filter_state_key.as_str()], line.as_bytes());
        }
        match self.settings.role {
            Role::Worker if self.settings.export.enabled => self.enqueue(host, line),
            Role::Local if self.settings.export.enabled => {
                let now = host.now_unix_nanos().unwrap_or(0);
                let offered = self.exporter.borrow_mut().offer(line, now);
                if let Err(line) = offered {
                    self.drop_record(host, "buffer_full", &line);
                }
                // This runs in `on_log`: where that phase may not dispatch (Kong), the next
                // stream's request phase sends the batch (`on_stream_request`).
                if self.host.dispatches_from_log() {
                    self.pump(host, now);
                }
            }
            _ => {}
        }
    }

    fn enqueue<H: Host + ?Sized>(&self, host: &H, line: String) {
        let export = &self.settings.export;
        let queue = match self.queue.get() {
            Some(q) => Some(q),
            None => {
                let found = host
                    .resolve_queue(&export.queue_vm_id, &export.queue)
                    .ok()
                    .flatten();
                self.queue.set(found);
                found
            }
        };
        let result = match queue {
            Some(q) => host.enqueue(q, line.as_bytes()),
            None => Err(HostError::NotFound),
        };
        if let Err(err) = result {
            if err != HostError::NotFound {
                self.queue.set(None);
            }
            self.drop_record(host, &format!("queue_{}", err).replace(' ', "_"), &line);
        }
    }

    /// Exporter: moves queued records into the buffer, then sends a batch if one is due.
    pub fn on_queue_ready<H: Host + ?Sized>(&self, host: &H) {
        self.owns_queue.set(true);
        let now = host.now_unix_nanos().unwrap_or(0);
        self.drain_queue(host, now);
        self.pump(host, now);
    }

    /// A stream's request phase: where only streams may call out (Kong), a due batch is sent
    /// from here; its answer comes back to that stream ([`Runtime::on_http_call_response`]).
    /// True if a batch was sent.
    pub fn on_stream_request<H: Host + ?Sized>(&self, host: &H) -> bool {
        if self.host.dispatches_from_root()
            || self.settings.role != Role::Local
            || !self.settings.export.enabled
        {
            return false;
        }
        let now = host.now_unix_nanos().unwrap_or(0);
        let expired = self.exporter.borrow_mut().expire(now);
        if let Some(outcome) = expired {
            self.report(host, outcome, "no answer (the stream that sent it ended)");
        }
        let before = self.exporter.borrow().busy();
        self.pump(host, now);
        !before && self.exporter.borrow().busy()
    }

    /// Exporter and local roles: periodic flush (delay, retries). The exporter drains the queue
    /// here too (a missed notification), once it knows it owns the queue.
    pub fn on_tick<H: Host + ?Sized>(&self, host: &H) {
        let now = host.now_unix_nanos().unwrap_or(0);
        if self.owns_queue.get() {
            self.drain_queue(host, now);
        }
        self.pump(host, now);
    }

    fn drain_queue<H: Host + ?Sized>(&self, host: &H, now: u64) {
        let Some(queue) = self
            .queue
            .get()
            .filter(|_| self.settings.role == Role::Exporter)
        else {
            return;
        };
        for _ in 0..MAX_DEQUEUE_PER_CALL {
            match host.dequeue(queue) {
                Ok(Some(item)) => {
                    let line = String::from_utf8_lossy(&item).into_owned();
                    let offered = self.exporter.borrow_mut().offer(line, now);
                    if let Err(line) = offered {
                        self.drop_record(host, "buffer_full", &line);
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
    }

    /// Sends a batch if one is due at `now` (the caller's clock read: one per callback).
    fn pump<H: Host + ?Sized>(&self, host: &H, now: u64) {
        let export = &self.settings.export;
        let batch = self.exporter.borrow_mut().due_batch(now);
        if let Some(batch) = batch {
            let headers: [(&str, &[u8]); 4] = [
                (":method", b"POST"),
                (":path", export.path.as_bytes()),
                (":authority", export.authority.as_bytes()),
                ("content-type", export.format.content_type().as_bytes()),
            ];
            match host.dispatch_http_call(
                &export.upstream,
                &headers,
                &batch.body,
                export.timeout_ms,
            ) {
                Ok(token) => self.exporter.borrow_mut().dispatched(token),
                Err(err) => {
                    let outcome = self.exporter.borrow_mut().dispatch_failed(now);
                    self.report(host, outcome, &format!("dispatch refused: {err}"));
                }
            }
        }
        self.metrics.record(
            host,
            Metric::BufferDepth,
            u64::try_from(self.exporter.borrow().depth()).unwrap_or(u64::MAX),
        );
    }

    fn report<H: Host + ?Sized>(&self, host: &H, outcome: Outcome, why: &str) {
        match outcome {
            Outcome::Exported(n) => self.metrics.add(host, Metric::Exported, n),
            Outcome::Retry { records, delay_ms } => {
                self.metrics.add(host, Metric::ExportFailures, 1);
                self.metrics.add(host, Metric::Retried, records);
                host.log(
                    LogLevel::Warn,
                    &format!(
                        "audit-log export to {} failed ({why}): {records} records kept, retry in {delay_ms} ms",
                        self.settings.export.upstream
                    ),
                );
            }
            Outcome::Unknown => {}
        }
    }

    /// The answer to an export call: `status` 0 when it failed or timed out.
    pub fn on_http_call_response<H: Host + ?Sized>(&self, host: &H, token: u32, status: u32) {
        let now = host.now_unix_nanos().unwrap_or(0);
        let outcome = self.exporter.borrow_mut().on_response(token, status, now);
        let why = if status == 0 {
            "no response (connection failure or timeout)".to_owned()
        } else {
            format!("status {status}")
        };
        self.report(host, outcome, &why);
        self.pump(host, now);
    }

    /// Records held by this VM's exporter.
    pub fn depth(&self) -> usize {
        self.exporter.borrow().depth()
    }
}

/// One HTTP stream: what each phase captured.
#[derive(Debug, Default)]
pub struct Stream {
    runtime: Option<Rc<Runtime>>,
    request: Option<RequestFacts>,
    response: Option<ResponseFacts>,
    request_body: Option<BodyCapture>,
    response_body: Option<BodyCapture>,
    logged: bool,
}

fn number(bytes: &[u8]) -> Option<u64> {
    if let Some(n) = std::str::from_utf8(bytes)
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
    {
        return Some(n);
    }
    // Envoy serializes integer properties as 8 bytes little-endian.
    let arr: [u8; 8] = bytes.try_into().ok()?;
    let n = i64::from_le_bytes(arr);
    u64::try_from(n).ok()
}

fn prop_text<H: PropertyPort + ?Sized>(host: &H, path: &[&str]) -> Option<String> {
    host.property(path)
        .ok()
        .flatten()
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(&v).into_owned())
}

fn prop_number<H: PropertyPort + ?Sized>(host: &H, path: &[&str]) -> Option<u64> {
    host.property(path).ok().flatten().and_then(|v| number(&v))
}

impl Stream {
    /// A stream of a VM whose config was accepted (`None`: pass through, write nothing).
    pub fn new(runtime: Option<Rc<Runtime>>) -> Self {
        Self {
            runtime,
            ..Self::default()
        }
    }

    /// Captures the request headers: one copy of the map. True if this stream sent an export
    /// batch ([`Runtime::on_stream_request`]) and must wait for its answer: Kong's engine frees
    /// a stream that went on, and the answer to a call of a freed stream crashed the worker
    /// (signal 11, seen on Kong 3.9's engine).
    pub fn on_request_headers<H: Host + ?Sized>(&mut self, host: &H) -> bool {
        let Some(rt) = &self.runtime else {
            return false;
        };
        if self.request.is_some() {
            return false;
        }
        let headers = host.header_list(HeaderMapKind::Request).unwrap_or_default();
        let now = host.now_unix_nanos().ok();
        self.request = Some(RequestFacts::capture(&headers, now, &rt.settings));
        rt.on_stream_request(host)
    }

    /// The answer to an export call this stream sent ([`Runtime::on_stream_request`]).
    pub fn on_http_call_response<H: Host + ?Sized>(&self, host: &H, token: u32, status: u32) {
        if let Some(rt) = &self.runtime {
            rt.on_http_call_response(host, token, status);
        }
    }

    /// Captures the response headers: one copy of the map.
    pub fn on_response_headers<H: Host + ?Sized>(&mut self, host: &H) {
        let Some(rt) = &self.runtime else { return };
        let headers = host
            .header_list(HeaderMapKind::Response)
            .unwrap_or_default();
        self.response = Some(ResponseFacts::capture(&headers, &rt.settings));
    }

    /// A body chunk of `size` bytes passed (only read when capture is on and below the cap).
    pub fn on_body<H: Host + ?Sized>(&mut self, host: &H, kind: BodyKind, size: usize) {
        let Some(rt) = &self.runtime else { return };
        let b = &rt.settings.bodies;
        let (on, slot) = match kind {
            BodyKind::Request => (b.request, &mut self.request_body),
            BodyKind::Response => (b.response, &mut self.response_body),
        };
        if !on
            || !rt.settings.has(match kind {
                BodyKind::Request => "request_body",
                BodyKind::Response => "response_body",
            })
        {
            return;
        }
        let capture = slot.get_or_insert_with(BodyCapture::default);
        let room = b.max_bytes.saturating_sub(capture.kept.len());
        if room == 0 {
            // Over the cap: counted, not read.
            capture.bytes = capture.bytes.saturating_add(size as u64);
            capture.truncated |= size > 0;
            return;
        }
        if let Ok(Some(chunk)) = host.body_chunk(kind, size.min(room)) {
            capture.push(&chunk, b.max_bytes);
            let rest = size.saturating_sub(chunk.len());
            if rest > 0 {
                capture.bytes = capture.bytes.saturating_add(rest as u64);
                capture.truncated = true;
            }
        }
    }

    /// Builds, seals and writes the record (once per stream).
    pub fn on_log<H: Host + ?Sized>(&mut self, host: &H) {
        let Some(rt) = self.runtime.clone() else {
            return;
        };
        if self.logged {
            return;
        }
        self.logged = true;
        let s = &rt.settings;
        let request = match self.request.take() {
            Some(r) => r,
            // No request-header phase (e.g. reset early): what the host still has.
            None => RequestFacts::capture(
                &host.header_list(HeaderMapKind::Request).unwrap_or_default(),
                None,
                s,
            ),
        };
        let mut request = request;
        if s.has("decisions") {
            // circuit-breaker runs after this filter in the recommended chain: it removes a
            // client's copy of its marker and sets its own after this filter's request phase.
            // The request map as the host has it now is the one to trust for that field.
            request.breaker = host
                .header(HeaderMapKind::Request, &s.headers.breaker)
                .ok()
                .flatten()
                .map(|v| record::header_text(&v, s));
        }
        request.body = self.request_body.take();
        let mut response = match self.response.take() {
            Some(r) => r,
            // No response-header phase: an earlier filter answered locally (jwt-rbac's 401 or
            // 403 does not pass back through a filter after it), or the stream ended first.
            // The response the host has now is the one the client got; none: nothing to read.
            None => ResponseFacts::capture(
                &host
                    .header_list(HeaderMapKind::Response)
                    .unwrap_or_default(),
                s,
            ),
        };
        response.body = self.response_body.take();
        let mut facts = LogFacts {
            now_nanos: host.now_unix_nanos().unwrap_or(0),
            ..LogFacts::default()
        };
        if s.has("client_ip") {
            facts.source_address = prop_text(host, &["source", "address"]);
        }
        if s.has("bytes_in") {
            facts.bytes_in = prop_number(host, &["request", "total_size"]);
        }
        if s.has("bytes_out") {
            facts.bytes_out = prop_number(host, &["response", "total_size"]);
        }
        if response.status.is_none() && s.has("status") {
            facts.response_code = prop_number(host, &["response", "code"]);
        }
        if s.has("duration_ms") {
            facts.request_duration_nanos = prop_number(host, &["request", "duration"]);
        }
        if s.has("response_flags") && rt.host.has_response_flags() {
            facts.response_flags = prop_number(host, &["response", "flags"]);
        }
        if s.has("upstream") {
            facts.upstream_address = prop_text(host, &["upstream", "address"]);
            facts.cluster = prop_text(host, &["xds", "cluster_name"]);
        }
        let rec = record::build(s, &request, &response, &facts);
        rt.write(host, rec);
    }
}

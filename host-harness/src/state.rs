//! Host state: [`HostState`] lives in each VM's `Store`, [`World`] is shared by all workers of
//! one harness behind an `Arc<Mutex<_>>` (never in statics, so tests run in parallel).

use crate::profile::{Phase, Profile};
use crate::types::{Headers, LocalResponse, LogEntry, LogLevel, StreamEvent};
use crate::Status;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

/// A foreign function the guest can call with `proxy_call_foreign_function`.
pub type ForeignFunction = Arc<dyn Fn(&[u8]) -> Result<Vec<u8>, Status> + Send + Sync>;

/// Fixed settings of a harness, shared by all VMs.
#[derive(Clone)]
pub struct HostConfig {
    pub(crate) profile: Profile,
    pub(crate) kong_shm_kv: bool,
    pub(crate) clusters: BTreeSet<String>,
    pub(crate) filter_name: String,
    pub(crate) vm_id: String,
    pub(crate) root_id: String,
    pub(crate) log_level: LogLevel,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) vm_configuration: Vec<u8>,
    pub(crate) plugin_configuration: Vec<u8>,
    /// Kong: `server_name` and listening port of the server block (`:authority`).
    pub(crate) kong_server: (String, u16),
}

/// State shared by every worker of a harness.
pub(crate) struct World {
    pub(crate) clock_ns: u64,
    pub(crate) rng: u64,
    pub(crate) shared: crate::host::shared_data::SharedData,
    pub(crate) queues: crate::host::queues::Queues,
    pub(crate) metrics: crate::host::metrics::Metrics,
    pub(crate) logs: Vec<LogEntry>,
    pub(crate) callouts: crate::host::callouts::Callouts,
    pub(crate) properties: BTreeMap<Vec<u8>, Vec<u8>>,
    pub(crate) foreign: HashMap<String, ForeignFunction>,
    /// Host calls a test made fail, with the status each returns ([`crate::host::injected`]).
    pub(crate) failing_calls: HashMap<String, Status>,
}

pub(crate) type SharedWorld = Arc<Mutex<World>>;

pub(crate) fn lock(world: &SharedWorld) -> MutexGuard<'_, World> {
    world
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Per-stream state the host keeps for one HTTP context.
#[derive(Default)]
pub(crate) struct StreamState {
    pub(crate) request_headers: Option<Headers>,
    pub(crate) request_trailers: Option<Headers>,
    pub(crate) response_headers: Option<Headers>,
    pub(crate) response_trailers: Option<Headers>,
    /// Body bytes currently offered to the filter (buffered while it pauses).
    pub(crate) request_body: Vec<u8>,
    pub(crate) response_body: Vec<u8>,
    /// Body bytes the filter let through.
    pub(crate) forwarded_request_body: Vec<u8>,
    pub(crate) forwarded_response_body: Vec<u8>,
    pub(crate) request_body_paused: bool,
    pub(crate) response_body_paused: bool,
    pub(crate) local_response: Option<LocalResponse>,
    pub(crate) local_response_pending: bool,
    pub(crate) properties: BTreeMap<Vec<u8>, Vec<u8>>,
    pub(crate) events: Vec<StreamEvent>,
    /// Kong: nginx's request header list (`request_headers` is its view).
    pub(crate) kong_request: Option<crate::host::ngx_headers::NgxRequest>,
    /// Kong: response headers the filter set before the response existed
    /// (`r->headers_out.headers` exists from the start of the request).
    pub(crate) kong_early_response: Headers,
    /// Kong: the request is paused in the request headers/body step (yielded).
    pub(crate) kong_request_paused: bool,
    /// Kong: the response body step returned Pause: the engine buffers the rest of the body.
    pub(crate) kong_response_buffering: bool,
    /// Kong: a local response sent during response headers replaces the response body.
    pub(crate) kong_body_override: Option<Vec<u8>>,
    /// Kong: request body chunks are being read (no `end_of_stream` yet).
    pub(crate) kong_body_reading: bool,
}

/// What a `Store` holds: one VM's view of the host.
pub struct HostState {
    pub(crate) world: SharedWorld,
    pub(crate) config: Arc<HostConfig>,
    pub(crate) worker: usize,
    pub(crate) root_context_id: u32,
    /// Context the host called into; `proxy_set_effective_context` changes it.
    pub(crate) context_id: u32,
    pub(crate) phase: Phase,
    pub(crate) streams: HashMap<u32, StreamState>,
    pub(crate) tick_period_ms: u32,
    pub(crate) next_tick_ns: Option<u64>,
    pub(crate) next_token: u32,
    /// Response being delivered by `proxy_on_http_call_response`.
    pub(crate) callout_response: Option<crate::host::callouts::CalloutResponse>,
    /// Kong: `:dispatch_status` of the call being delivered (socket status, `ok` on success).
    pub(crate) callout_dispatch_status: Option<String>,
    pub(crate) root_done: bool,
    /// Unfinished stdout / stderr lines.
    pub(crate) output_lines: [Vec<u8>; 2],
    /// VM-boundary crossings, per VM and per context ([`crate::Crossings`]).
    pub(crate) crossings: crate::crossings::CrossingLog,
}

impl HostState {
    pub(crate) fn new(world: SharedWorld, config: Arc<HostConfig>, worker: usize) -> HostState {
        // ngx_http_proxy_wasm_dispatch.c, ngx_http_proxy_wasm_dispatch: `static uint32_t
        // callout_ids = 0`: Kong hands out call ids per worker process from 0.
        let next_token = if config.profile.is_kong() { 0 } else { 1 };
        HostState {
            world,
            config,
            worker,
            root_context_id: 1,
            context_id: 1,
            phase: Phase::Init,
            streams: HashMap::new(),
            tick_period_ms: 0,
            next_tick_ns: None,
            next_token,
            callout_response: None,
            callout_dispatch_status: None,
            root_done: false,
            output_lines: [Vec::new(), Vec::new()],
            crossings: Default::default(),
        }
    }

    pub(crate) fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.world)
    }

    pub(crate) fn profile(&self) -> Profile {
        self.config.profile
    }

    /// The stream the current context refers to, if it is a stream.
    pub(crate) fn stream(&mut self) -> Option<&mut StreamState> {
        self.streams.get_mut(&self.context_id)
    }

    /// Counts one crossing, attributed to the current context and to the VM.
    pub(crate) fn crossed(&mut self, kind: crate::crossings::Kind<'_>) {
        self.crossings.count(self.context_id, kind);
    }

    pub(crate) fn log(&self, level: LogLevel, message: String) {
        self.log_as(self.context_id, level, message);
    }

    /// Logs on behalf of a given context (engine lines written outside a callback).
    pub(crate) fn log_as(&self, context_id: u32, level: LogLevel, message: String) {
        let entry = LogEntry {
            worker: self.worker,
            context_id,
            level,
            message,
        };
        self.world().logs.push(entry);
    }
}

//! [`Harness`]: one plugin, several workers, one shared world.

use crate::codec;
use crate::error::HarnessError;
use crate::host::callouts::{Callout, CalloutResponse};
use crate::host::metrics::Metrics;
use crate::host::queues::Queues;
use crate::host::shared_data::SharedData;
use crate::profile::{KongEngine, Phase};
use crate::state::{lock, ForeignFunction, HostConfig, HostState, SharedWorld, World};
use crate::stream::HttpStream;
use crate::vm::{self, Vm};
use crate::{Crossings, LogEntry, LogLevel, Metric, Profile, Status, StreamEvent, StreamType};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use wasmtime::Val;

/// Configures and builds a [`Harness`].
#[derive(Clone)]
pub struct HarnessBuilder {
    config: HostConfig,
    workers: usize,
    properties: BTreeMap<Vec<u8>, Vec<u8>>,
    foreign: HashMap<String, ForeignFunction>,
    start_ns: u64,
    seed: u64,
}

impl Default for HarnessBuilder {
    fn default() -> Self {
        HarnessBuilder {
            config: HostConfig {
                profile: Profile::Envoy,
                kong_shm_kv: true,
                clusters: ["upstream".to_string()].into_iter().collect(),
                filter_name: "plugin".into(),
                vm_id: String::new(),
                root_id: String::new(),
                log_level: LogLevel::Trace,
                env: Vec::new(),
                vm_configuration: Vec::new(),
                plugin_configuration: Vec::new(),
                kong_server: ("localhost".into(), 8000),
            },
            workers: 1,
            properties: BTreeMap::new(),
            foreign: HashMap::new(),
            start_ns: 1_700_000_000_000_000_000,
            seed: 0x9e37_79b9_7f4a_7c15,
        }
    }
}

impl HarnessBuilder {
    /// Host profile (default [`Profile::Envoy`]).
    pub fn profile(mut self, profile: Profile) -> Self {
        self.config.profile = profile;
        self
    }
    /// Plugin configuration bytes (`on_configure`).
    pub fn plugin_config(mut self, config: impl AsRef<[u8]>) -> Self {
        self.config.plugin_configuration = config.as_ref().to_vec();
        self
    }
    /// VM configuration bytes (`on_vm_start`).
    pub fn vm_config(mut self, config: impl AsRef<[u8]>) -> Self {
        self.config.vm_configuration = config.as_ref().to_vec();
        self
    }
    /// Number of workers (VM instances), at least 1 (default 1).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.max(1);
        self
    }
    /// Envoy: clusters `proxy_http_call` accepts (default `["upstream"]`).
    pub fn clusters<I: IntoIterator<Item = S>, S: Into<String>>(mut self, clusters: I) -> Self {
        self.config.clusters = clusters
            .into_iter()
            .map(Into::into)
            .collect::<BTreeSet<_>>();
        self
    }
    /// Kong: whether a `shm_kv` zone is configured (default true); without it shared data traps.
    pub fn kong_shm_kv(mut self, configured: bool) -> Self {
        self.config.kong_shm_kv = configured;
        self
    }
    /// Kong: `server_name` and listening port of the server block the request came in on
    /// (default `localhost`, 8000). ngx_proxy_wasm_maps.c, ngx_proxy_wasm_maps_get_authority
    /// builds `:authority` from them, whatever the client's Host; port 0 leaves it out.
    pub fn kong_server(mut self, name: &str, port: u16) -> Self {
        self.config.kong_server = (name.into(), port);
        self
    }
    /// Filter name used in Kong metric names (default `plugin`).
    pub fn filter_name(mut self, name: &str) -> Self {
        self.config.filter_name = name.into();
        self
    }
    /// Root id (property `plugin_root_id`; default empty).
    pub fn root_id(mut self, id: &str) -> Self {
        self.config.root_id = id.into();
        self
    }
    /// VM id (shared queues are namespaced by it; default empty).
    pub fn vm_id(mut self, id: &str) -> Self {
        self.config.vm_id = id.into();
        self
    }
    /// Log level `proxy_get_log_level` reports (default Trace). Logs are captured regardless.
    pub fn log_level(mut self, level: LogLevel) -> Self {
        self.config.log_level = level;
        self
    }
    /// Adds a WASI environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.config.env.push((key.into(), value.into()));
        self
    }
    /// Sets a harness-wide property (dotted path, e.g. `xds.cluster_name`).
    pub fn property(mut self, path: &str, value: impl AsRef<[u8]>) -> Self {
        let segments: Vec<&str> = path.split('.').collect();
        self.properties
            .insert(codec::property_key(&segments), value.as_ref().to_vec());
        self
    }
    /// Registers a foreign function (e.g. Envoy's `verify_signature`).
    pub fn foreign_function<F>(mut self, name: &str, f: F) -> Self
    where
        F: Fn(&[u8]) -> Result<Vec<u8>, Status> + Send + Sync + 'static,
    {
        self.foreign.insert(name.into(), Arc::new(f));
        self
    }
    /// Virtual clock start, nanoseconds since the Unix epoch.
    pub fn start_time_ns(mut self, ns: u64) -> Self {
        self.start_ns = ns;
        self
    }
    /// Seed of WASI `random_get`.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed.max(1);
        self
    }

    /// Reads a `.wasm` (or `.wat`) file and builds.
    pub fn build_from_file(self, path: impl AsRef<Path>) -> Result<Harness, HarnessError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| HarnessError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        self.build(&bytes)
    }

    /// Compiles (binary or WAT text), instantiates every worker, runs `_initialize` and creates
    /// each root context. Does not call `on_vm_start`/`on_configure`: see [`Harness::configure`].
    pub fn build(self, wasm: &[u8]) -> Result<Harness, HarnessError> {
        let module = vm::compile(wasm)?;
        let mut properties = self.properties;
        if !self.config.profile.is_kong() {
            properties
                .entry(codec::property_key(&["xds", "node"]))
                .or_insert_with(crate::host::properties::envoy_default_node);
        }
        for (name, value) in [
            ("plugin_name", &self.config.filter_name),
            ("plugin_root_id", &self.config.root_id),
            ("plugin_vm_id", &self.config.vm_id),
        ] {
            properties
                .entry(codec::property_key(&[name]))
                .or_insert_with(|| value.as_bytes().to_vec());
        }
        let world = Arc::new(Mutex::new(World {
            clock_ns: self.start_ns,
            rng: self.seed,
            shared: SharedData::default(),
            queues: Queues::default(),
            metrics: Metrics::default(),
            logs: Vec::new(),
            callouts: Default::default(),
            properties,
            foreign: self.foreign,
            failing_calls: HashMap::new(),
        }));
        let config = Arc::new(self.config);
        let mut vms = Vec::with_capacity(self.workers);
        for worker in 0..self.workers {
            let state = HostState::new(world.clone(), config.clone(), worker);
            vms.push(Arc::new(Mutex::new(Vm::new(&module, state)?)));
        }
        let inner = Arc::new(Inner { world, config, vms });
        let workers = (0..inner.vms.len())
            .map(|index| Worker {
                inner: inner.clone(),
                index,
            })
            .collect();
        Ok(Harness { inner, workers })
    }
}

pub(crate) struct Inner {
    pub(crate) world: SharedWorld,
    pub(crate) config: Arc<HostConfig>,
    pub(crate) vms: Vec<Arc<Mutex<Vm>>>,
}

impl Inner {
    pub(crate) fn vm(&self, worker: usize) -> Result<MutexGuard<'_, Vm>, HarnessError> {
        let vm = self
            .vms
            .get(worker)
            .ok_or_else(|| HarnessError::Usage(format!("no worker {worker}")))?;
        Ok(vm.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub(crate) fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.world)
    }

    /// Delivers `on_queue_ready` notifications queued by enqueues (Envoy only).
    pub(crate) fn deliver_queue_ready(&self) -> Result<(), HarnessError> {
        loop {
            let ready = std::mem::take(&mut self.world().queues.ready);
            if ready.is_empty() {
                return Ok(());
            }
            for (worker, ctx, id) in ready {
                let mut vm = self.vm(worker)?;
                vm.call(
                    "proxy_on_queue_ready",
                    ctx,
                    Phase::QueueReady,
                    &[Val::I32(ctx as i32), Val::I32(id as i32)],
                )?;
            }
        }
    }

    fn fire_tick(&self, worker: usize) -> Result<(), HarnessError> {
        let mut vm = self.vm(worker)?;
        let now = self.world().clock_ns;
        let root = vm.state().root_context_id;
        let period = vm.state().tick_period_ms;
        vm.state().next_tick_ns = (period > 0).then(|| now + u64::from(period) * 1_000_000);
        vm.call("proxy_on_tick", root, Phase::Tick, &[Val::I32(root as i32)])?;
        Ok(())
    }

    pub(crate) fn deliver_callout(&self, id: u64, outcome: Delivery) -> Result<(), HarnessError> {
        let callout = {
            let mut world = self.world();
            let pos = world
                .callouts
                .pending
                .iter()
                .position(|c| c.id == id)
                .ok_or(HarnessError::NoSuchCallout(id))?;
            world.callouts.pending.remove(pos)
        };
        let mut vm = self.vm(callout.worker)?;
        let ctx = callout.context_id;
        let Some(engine) = self.config.profile.kong_engine() else {
            let response = match outcome {
                Delivery::Response(r) => Some(r),
                Delivery::Failed { .. } => None,
            };
            let (h, b, t) = response
                .as_ref()
                .map(|r| (r.headers.len(), r.body.len(), r.trailers.len()))
                .unwrap_or((0, 0, 0));
            vm.state().callout_response = response;
            let result = vm.call(
                "proxy_on_http_call_response",
                ctx,
                Phase::CalloutResponse,
                &[
                    Val::I32(ctx as i32),
                    Val::I32(callout.token as i32),
                    Val::I32(h as i32),
                    Val::I32(b as i32),
                    Val::I32(t as i32),
                ],
            );
            vm.state().callout_response = None;
            result?;
            crate::stream::replay_local_response(&self.config, &mut vm, ctx)?;
            drop(vm);
            return self.deliver_queue_ready();
        };
        // ngx_http_proxy_wasm_dispatch.c, ngx_http_proxy_wasm_dispatch_resume_handler and
        // ngx_http_proxy_wasm_dispatch_err.
        let (response, dispatch_status) = match outcome {
            Delivery::Response(mut r) => {
                // The answer comes over HTTP/1.1: the engine's reader
                // (ngx_wasm_socket_tcp_readers.c, ngx_wasm_read_http_response) only reads a
                // body framed by Content-Length or chunked encoding, so the upstream sends one.
                let framed = r
                    .headers
                    .iter()
                    .any(|(n, _)| n == "content-length" || n == "transfer-encoding");
                if !framed {
                    r.headers.push((
                        "content-length".into(),
                        r.body.len().to_string().into_bytes(),
                    ));
                }
                (Some(r), "ok".to_string())
            }
            Delivery::Failed { status, detail } => {
                vm.state().log_as(
                    ctx,
                    LogLevel::Error,
                    format!("dispatch failed: tcp socket - {detail}"),
                );
                // 3.9 (4c610b49): on_http_call_response(token, 0, 0, 0) on connection failures;
                // 3.8: no callback at all.
                let response = (engine >= KongEngine::V39).then(CalloutResponse::default);
                (response, status)
            }
        };
        if let Some(response) = response {
            // ngx_http_proxy_wasm.c, ngx_http_proxy_wasm_on_dispatch_response: the header lines
            // the reader parsed (no `:status`), the body length, and 0 trailers, to `filter->id`.
            let h = response
                .headers
                .iter()
                .filter(|(n, _)| n != ":status")
                .count();
            let b = response.body.len();
            let root = vm.state().root_context_id;
            vm.state().callout_response = Some(response);
            vm.state().callout_dispatch_status = Some(dispatch_status);
            let result = vm.call(
                "proxy_on_http_call_response",
                ctx,
                Phase::CalloutResponse,
                &[
                    Val::I32(root as i32),
                    Val::I32(callout.token as i32),
                    Val::I32(h as i32),
                    Val::I32(b as i32),
                    Val::I32(0),
                ],
            );
            vm.state().callout_response = None;
            vm.state().callout_dispatch_status = None;
            result?;
            crate::stream::replay_local_response(&self.config, &mut vm, ctx)?;
        }
        let more = self
            .world()
            .callouts
            .pending
            .iter()
            .any(|c| c.worker == callout.worker && c.context_id == ctx);
        if !more {
            // "last http dispatch call handled": ngx_wasm_continue + ngx_proxy_wasm_resume.
            if let Some(stream) = vm.state().streams.get_mut(&ctx) {
                if stream.kong_request_paused {
                    stream.kong_request_paused = false;
                    if stream.request_body_paused {
                        stream.request_body_paused = false;
                        let body = std::mem::take(&mut stream.request_body);
                        stream.forwarded_request_body.extend_from_slice(&body);
                    }
                    stream
                        .events
                        .push(StreamEvent::EngineResumed(StreamType::Request));
                }
            }
        }
        Ok(())
    }
}

/// How a callout ends.
pub(crate) enum Delivery {
    Response(CalloutResponse),
    /// A connection failure: Kong's socket status (`:dispatch_status`) and error text.
    Failed {
        status: String,
        detail: String,
    },
}

/// A plugin loaded into one or more workers that share shared data, queues, metrics, logs,
/// properties and the virtual clock.
pub struct Harness {
    inner: Arc<Inner>,
    workers: Vec<Worker>,
}

/// One worker: a VM instance with its own store and root context.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
    index: usize,
}

impl Harness {
    /// A builder with the defaults (Envoy, one worker, empty configuration).
    pub fn builder() -> HarnessBuilder {
        HarnessBuilder::default()
    }

    /// The profile.
    pub fn profile(&self) -> Profile {
        self.inner.config.profile
    }

    /// Runs `on_vm_start` then `on_configure` on every worker; true iff all accepted.
    pub fn configure(&self) -> Result<bool, HarnessError> {
        let mut all = true;
        for w in &self.workers {
            all &= w.configure()?;
        }
        Ok(all)
    }

    /// Worker `i`. Panics when `i >= workers`, like slice indexing.
    pub fn worker(&self, i: usize) -> &Worker {
        &self.workers[i]
    }

    /// All workers.
    pub fn workers(&self) -> &[Worker] {
        &self.workers
    }

    /// Opens an HTTP stream on worker 0.
    pub fn stream(&self) -> Result<HttpStream, HarnessError> {
        self.workers[0].stream()
    }

    /// Sets a harness-wide property (dotted path); streams may override it.
    pub fn set_property(&self, path: &str, value: impl AsRef<[u8]>) {
        let segments: Vec<&str> = path.split('.').collect();
        self.set_property_path(&segments, value);
    }

    /// Sets a harness-wide property by segments (for names that contain dots).
    pub fn set_property_path(&self, segments: &[&str], value: impl AsRef<[u8]>) {
        self.inner
            .world()
            .properties
            .insert(codec::property_key(segments), value.as_ref().to_vec());
    }

    // ---- logs ----

    /// Every log line so far, all workers, in order.
    pub fn logs(&self) -> Vec<LogEntry> {
        self.inner.world().logs.clone()
    }

    /// Messages logged at exactly `level`.
    pub fn logs_at(&self, level: LogLevel) -> Vec<String> {
        self.inner
            .world()
            .logs
            .iter()
            .filter(|l| l.level == level)
            .map(|l| l.message.clone())
            .collect()
    }

    /// Whether any log line contains `text`.
    pub fn logged(&self, text: &str) -> bool {
        self.inner
            .world()
            .logs
            .iter()
            .any(|l| l.message.contains(text))
    }

    /// Forgets the logs.
    pub fn clear_logs(&self) {
        self.inner.world().logs.clear();
    }

    // ---- crossings ----

    /// VM-boundary crossings of every worker's VM added up, since it was created or since
    /// [`Self::reset_crossings`] (see [`Crossings`]).
    pub fn crossings(&self) -> Crossings {
        let mut all = Crossings::default();
        for w in &self.workers {
            all.add(&w.crossings());
        }
        all
    }

    /// Forgets the crossings counted so far, for every VM and every stream.
    pub fn reset_crossings(&self) {
        for w in &self.workers {
            w.reset_crossings();
        }
    }

    // ---- metrics ----

    /// A metric by the name the guest defined, or by its host name (`wasmcustom.a`,
    /// `pw:filter:a`). On kong profiles a dotted name also finds the same name with `_`.
    pub fn metric(&self, name: &str) -> Option<Metric> {
        // The suite's plugins name metrics with `_` where Envoy has `.` on Kong (its Prometheus
        // exporter keeps dots, which Prometheus refuses): on kong profiles `a.b` finds `a_b` too,
        // so one test reads both hosts by the Envoy name.
        let kong_name = self
            .inner
            .config
            .profile
            .is_kong()
            .then(|| name.replace('.', "_"));
        self.inner
            .world()
            .metrics
            .all
            .iter()
            .find(|m| {
                m.name == name || m.host_name == name || kong_name.as_deref() == Some(&m.name)
            })
            .cloned()
    }

    /// All metrics.
    pub fn metrics(&self) -> Vec<Metric> {
        self.inner.world().metrics.all.clone()
    }

    /// The gateway-side name of a guest metric under this profile.
    pub fn host_metric_name(&self, name: &str) -> String {
        let c = &self.inner.config;
        c.profile.metric_name(&c.filter_name, name)
    }

    // ---- shared data ----

    /// Value and cas of a shared-data key (profile lookup rules), None if absent.
    pub fn shared_data(&self, key: impl AsRef<[u8]>) -> Option<(Vec<u8>, u32)> {
        let profile = self.profile();
        self.inner.world().shared.get(profile, key.as_ref()).ok()
    }

    /// Writes shared data from the test side, with the profile's CAS rules (an empty value is
    /// stored, as the guest's non-null empty value is).
    pub fn set_shared_data(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        cas: u32,
    ) -> Result<(), Status> {
        let profile = self.profile();
        match self
            .inner
            .world()
            .shared
            .set(profile, key.as_ref(), value.as_ref(), cas, false)
        {
            Status::Ok => Ok(()),
            s => Err(s),
        }
    }

    /// Deletes shared data from the test side as a guest's null-value set does: Kong removes
    /// the key (CasMismatch when missing or on a cas mismatch), Envoy stores an empty value.
    pub fn delete_shared_data(&self, key: impl AsRef<[u8]>, cas: u32) -> Result<(), Status> {
        let profile = self.profile();
        match self
            .inner
            .world()
            .shared
            .set(profile, key.as_ref(), &[], cas, true)
        {
            Status::Ok => Ok(()),
            s => Err(s),
        }
    }

    /// The key whose value occupies the slot of `key` (Kong: differs after a CRC32 collision).
    pub fn shared_data_owner(&self, key: impl AsRef<[u8]>) -> Option<Vec<u8>> {
        let profile = self.profile();
        self.inner.world().shared.owner(profile, key.as_ref())
    }

    /// Every (key, value, cas) in shared data.
    pub fn shared_data_entries(&self) -> Vec<(Vec<u8>, Vec<u8>, u32)> {
        self.inner.world().shared.entries()
    }

    // ---- queues ----

    /// Registers a queue from the test side (no VM owns it, so no `on_queue_ready`).
    pub fn register_queue(&self, name: &str) -> u32 {
        let vm_id = self.inner.config.vm_id.clone();
        self.inner.world().queues.register(&vm_id, name, None)
    }

    /// Resolves a queue by vm id and name.
    pub fn resolve_queue(&self, vm_id: &str, name: &str) -> Option<u32> {
        self.inner.world().queues.resolve(vm_id, name)
    }

    /// Enqueues from the test side, then delivers `on_queue_ready` to the owner (Envoy).
    pub fn enqueue(&self, queue: u32, item: impl AsRef<[u8]>) -> Result<Status, HarnessError> {
        let profile = self.profile();
        let status = self
            .inner
            .world()
            .queues
            .enqueue(profile, queue, item.as_ref().to_vec());
        self.inner.deliver_queue_ready()?;
        Ok(status)
    }

    /// Items waiting in a queue.
    pub fn queue_items(&self, queue: u32) -> Vec<Vec<u8>> {
        self.inner.world().queues.items(queue)
    }

    // ---- clock, ticks ----

    /// Virtual time, nanoseconds since the Unix epoch.
    pub fn now_ns(&self) -> u64 {
        self.inner.world().clock_ns
    }

    /// Advances the virtual clock, firing in time order every tick that falls due (once per
    /// elapsed period, per worker) and timing out every callout whose deadline passes.
    pub fn advance_clock(&self, by: Duration) -> Result<(), HarnessError> {
        let target = self.now_ns().saturating_add(by.as_nanos() as u64);
        loop {
            let mut next: Option<(u64, Event)> = None;
            for w in 0..self.inner.vms.len() {
                if let Some(at) = self.inner.vm(w)?.state().next_tick_ns {
                    if at <= target && next.as_ref().is_none_or(|(n, _)| at < *n) {
                        next = Some((at, Event::Tick(w)));
                    }
                }
            }
            for c in &self.inner.world().callouts.pending {
                if c.deadline_ns <= target && next.as_ref().is_none_or(|(n, _)| c.deadline_ns < *n)
                {
                    next = Some((c.deadline_ns, Event::Timeout(c.id)));
                }
            }
            let Some((at, event)) = next else { break };
            {
                let mut world = self.inner.world();
                world.clock_ns = world.clock_ns.max(at);
            }
            match event {
                Event::Tick(w) => self.inner.fire_tick(w)?,
                Event::Timeout(id) => {
                    let upstream = self
                        .inner
                        .world()
                        .callouts
                        .pending
                        .iter()
                        .find(|c| c.id == id)
                        .map(|c| c.upstream.clone())
                        .unwrap_or_default();
                    self.inner.deliver_callout(
                        id,
                        Delivery::Failed {
                            status: "timeout".into(),
                            detail: format!("timed out connecting to \"{upstream}\""),
                        },
                    )?
                }
            }
            self.inner.deliver_queue_ready()?;
        }
        self.inner.world().clock_ns = target;
        Ok(())
    }

    // ---- callouts ----

    /// Callouts waiting for an answer, oldest first.
    pub fn callouts(&self) -> Vec<Callout> {
        self.inner.world().callouts.pending.clone()
    }

    /// Answers a callout: `on_http_call_response` runs with its headers, body and trailers.
    /// Kong: the stream resumes after its last pending callout (see [`crate::host::callouts`]).
    pub fn respond_callout(&self, id: u64, response: CalloutResponse) -> Result<(), HarnessError> {
        self.inner.deliver_callout(id, Delivery::Response(response))
    }

    /// Fails a callout (connection refused, reset). Envoy and Kong 3.9: delivered as
    /// `on_http_call_response(token, 0, 0, 0)` (Kong 3.9: `:dispatch_status` is
    /// `broken connection`). Kong 3.8: only the error line `dispatch failed: tcp socket -
    /// Connection refused` is logged and the stream resumes without any callback.
    pub fn fail_callout(&self, id: u64) -> Result<(), HarnessError> {
        self.inner.deliver_callout(
            id,
            Delivery::Failed {
                status: "broken connection".into(),
                detail: "Connection refused".into(),
            },
        )
    }

    /// Fails a callout with a given Kong socket status (`:dispatch_status` on Kong 3.9:
    /// `timeout`, `broken connection`, `resolver failure`, `tls handshake failure`,
    /// `reader failure`), which is also the logged reason. Envoy: as [`Harness::fail_callout`].
    pub fn fail_callout_with(&self, id: u64, dispatch_status: &str) -> Result<(), HarnessError> {
        self.inner.deliver_callout(
            id,
            Delivery::Failed {
                status: dispatch_status.into(),
                detail: dispatch_status.into(),
            },
        )
    }

    /// Makes every later call of the host function `call` (e.g.
    /// `proxy_replace_header_map_value`) return `status` at once without doing anything, as a
    /// host refusing it would; `None` makes it work again. Every worker sees it. Covers the
    /// header-map, property, metric, log, clock, shared-data, queue, callout, timer, local-reply
    /// and effective-context calls.
    pub fn fail_host_call(&self, call: &str, status: Option<Status>) {
        let mut world = self.inner.world();
        match status {
            Some(status) => world.failing_calls.insert(call.to_owned(), status),
            None => world.failing_calls.remove(call),
        };
    }
}

enum Event {
    Tick(usize),
    Timeout(u64),
}

impl Worker {
    /// Index of this worker.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Runs `on_vm_start` (once) then `on_configure`; returns what `on_configure` returned
    /// (false as well when `on_vm_start` refused).
    pub fn configure(&self) -> Result<bool, HarnessError> {
        let mut vm = self.inner.vm(self.index)?;
        let root = vm.state().root_context_id;
        if !vm.started {
            vm.started = true;
            let size = self.inner.config.vm_configuration.len() as i32;
            let ok = vm.call(
                "proxy_on_vm_start",
                root,
                Phase::VmStart,
                &[Val::I32(root as i32), Val::I32(size)],
            )?;
            if ok == Some(0) {
                return Ok(false);
            }
        }
        let size = self.inner.config.plugin_configuration.len() as i32;
        let ok = vm.call(
            "proxy_on_configure",
            root,
            Phase::Configure,
            &[Val::I32(root as i32), Val::I32(size)],
        )?;
        drop(vm);
        self.inner.deliver_queue_ready()?;
        Ok(ok != Some(0))
    }

    /// This VM's crossings since it was created or since [`Self::reset_crossings`].
    pub fn crossings(&self) -> Crossings {
        self.inner
            .vm(self.index)
            .map(|mut vm| vm.state().crossings.vm.clone())
            .unwrap_or_default()
    }

    /// Forgets this VM's crossings (its total and every stream's).
    pub fn reset_crossings(&self) {
        if let Ok(mut vm) = self.inner.vm(self.index) {
            vm.state().crossings = Default::default();
        }
    }

    /// Opens an HTTP stream (creates a context on this worker).
    pub fn stream(&self) -> Result<HttpStream, HarnessError> {
        let mut vm = self.inner.vm(self.index)?;
        let id = vm.next_context_id;
        vm.next_context_id += 1;
        let root = vm.state().root_context_id;
        vm.state().streams.insert(id, Default::default());
        vm.call(
            "proxy_on_context_create",
            id,
            Phase::StreamCreate,
            &[Val::I32(id as i32), Val::I32(root as i32)],
        )?;
        Ok(HttpStream::new(self.inner.clone(), self.index, id))
    }

    /// Fires `on_tick` on this worker now, whatever its period.
    pub fn tick(&self) -> Result<(), HarnessError> {
        self.inner.fire_tick(self.index)?;
        self.inner.deliver_queue_ready()
    }

    /// Current tick period set by the guest (zero when none).
    pub fn tick_period(&self) -> Result<Duration, HarnessError> {
        let ms = self.inner.vm(self.index)?.state().tick_period_ms;
        Ok(Duration::from_millis(u64::from(ms)))
    }

    /// Calls the root context's `on_done`; returns its answer.
    pub fn done(&self) -> Result<bool, HarnessError> {
        let mut vm = self.inner.vm(self.index)?;
        let root = vm.state().root_context_id;
        let r = vm.call("proxy_on_done", root, Phase::Done, &[Val::I32(root as i32)])?;
        Ok(r != Some(0))
    }

    /// Whether the root context called `proxy_done`.
    pub fn proxy_done_called(&self) -> Result<bool, HarnessError> {
        Ok(self.inner.vm(self.index)?.state().root_done)
    }

    /// Log lines of this worker.
    pub fn logs(&self) -> Vec<LogEntry> {
        self.inner
            .world()
            .logs
            .iter()
            .filter(|l| l.worker == self.index)
            .cloned()
            .collect()
    }
}

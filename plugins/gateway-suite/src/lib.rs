//! gateway-suite: any subset of the five plugins as jobs of one proxy-wasm filter, in one VM,
//! one pass per request. See `docs/gateway-suite.md`.
//!
//! Each job is its plugin's own root and stream contexts (the same code as in the plugin's
//! module), so decisions, metrics, logs and local replies are the separate modules'. What the
//! suite changes is the boundary:
//!
//! - the host calls the suite once per callback, not once per plugin;
//! - the jobs share one exchange per callback ([`gateway_core::exchange`]): each header map is
//!   read once and written back once for all of them, so what one job writes (the verified
//!   identity, the correlation id) the next reads from memory;
//! - request phases run in the configured order; response phases in reverse, as Envoy runs a
//!   chain, so a job early in the order sees the response as the client gets it;
//! - what the request phase read and wrote of the request map, and the connection's addresses a
//!   job read, stay with the stream ([`gateway_core::exchange::Carry`]): audit-log's `on_log`
//!   reads the breaker's marker and the client address from memory;
//! - a job that stops the request (a local reply, or a wait for a JWKS) stops the jobs after it;
//!   when it resumes the request, the later jobs run before the suite resumes it for real.
//!
//! The few things only a filter as a whole decides (its configuration, its timer, resuming a
//! request, which context a callout answer is for) go through [`gateway_core::embed`].

pub mod config;

use config::{Job, SuiteConfig};
use gateway_core::ports::{Clock, LogLevel, LogPort};
use gateway_core::proxy_wasm_host::ProxyWasmHost;
use gateway_core::{embed, exchange};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};
use std::cell::RefCell;
use std::rc::{Rc, Weak};

/// The suite's root context.
pub fn root(context_id: u32) -> Box<dyn RootContext> {
    Box::new(SuiteRoot {
        context_id,
        jobs: Vec::new(),
        tick: 0,
    })
}

#[cfg(all(feature = "module", target_arch = "wasm32"))]
proxy_wasm::main! {{
    proxy_wasm::set_root_context(root);
}}

fn job_root(job: Job, context_id: u32) -> Box<dyn RootContext> {
    match job {
        Job::HeaderInjection => header_injection::root(context_id),
        Job::JwtRbac => jwt_rbac::root(context_id),
        Job::AuditLog => audit_log::root(context_id),
        Job::RatelimitSharedData => ratelimit_shared_data::root(context_id),
        Job::CircuitBreaker => circuit_breaker::root(context_id),
    }
}

/// One configured job of the VM.
struct RootJob {
    job: Job,
    root: Box<dyn RootContext>,
    /// Its own tick period (0: none) and when it last ran, milliseconds.
    period: u32,
    last_tick: u64,
}

struct SuiteRoot {
    context_id: u32,
    jobs: Vec<RootJob>,
    /// The VM's tick period: the shortest a job asked for.
    tick: u32,
}

thread_local! {
    /// Every live stream of this VM, for resumes a job's root asks for (jwt-rbac waking the
    /// requests that waited for keys).
    static STREAMS: RefCell<Vec<(u32, Weak<RefCell<Jobs>>)>> = const { RefCell::new(Vec::new()) };
}

fn now_millis() -> u64 {
    ProxyWasmHost.now_unix_nanos().map_or(0, |n| n / 1_000_000)
}

impl SuiteRoot {
    /// Runs the rest of the request phase of the streams a job asked to resume from a root callback.
    fn resume_streams(&self) {
        let resumes = embed::take_resumes();
        if resumes.is_empty() {
            return;
        }
        for id in resumes {
            let stream = STREAMS.with(|s| {
                s.borrow()
                    .iter()
                    .find(|(sid, _)| *sid == id)
                    .and_then(|(_, weak)| weak.upgrade())
            });
            let Some(stream) = stream else {
                continue;
            };
            // Also what a deferred resume of a later job would act for.
            if ProxyWasmHost.set_effective_context(id).is_err() {
                continue;
            }
            if let Ok(mut jobs) = stream.try_borrow_mut() {
                jobs.resume(id);
            };
        }
        let _ = ProxyWasmHost.set_effective_context(self.context_id);
    }
}

impl Context for SuiteRoot {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body: usize, trailers: usize) {
        let _phase = ProxyWasmHost::phase();
        let Some(index) = embed::callout_owner(token) else {
            return;
        };
        if let Some(job) = self.jobs.get_mut(index) {
            embed::run_as(index, || {
                job.root
                    .on_http_call_response(token, headers, body, trailers)
            });
        }
        self.resume_streams();
    }
}

impl RootContext for SuiteRoot {
    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        let _phase = ProxyWasmHost::phase();
        let host = ProxyWasmHost;
        let Some(config) = host.compiled_configuration("gateway-suite", SuiteConfig::from_json)
        else {
            return false;
        };
        let mut jobs = Vec::with_capacity(config.jobs.len());
        for (index, (job, bytes)) in config.jobs.into_iter().enumerate() {
            let mut root = job_root(job, self.context_id);
            let accepted = embed::configure_as(index, job.section(), bytes, || {
                root.on_configure(plugin_configuration_size)
            });
            if !accepted {
                host.log(
                    LogLevel::Error,
                    &format!(
                        "gateway-suite: invalid configuration: {} refused its section (the line above says why)",
                        job.section()
                    ),
                );
                return false;
            }
            jobs.push(RootJob {
                job,
                root,
                period: 0,
                last_tick: 0,
            });
        }
        for (index, period) in embed::ticks() {
            if let Some(job) = jobs.get_mut(index) {
                job.period = period;
            }
        }
        self.tick = jobs
            .iter()
            .map(|j| j.period)
            .filter(|p| *p > 0)
            .min()
            .unwrap_or(0);
        if self.tick > 0 {
            if let Err(err) = host.set_tick_period(self.tick) {
                host.log(
                    LogLevel::Error,
                    &format!("gateway-suite: cannot start the timer: {err}"),
                );
                return false;
            }
        }
        let names: Vec<&str> = jobs.iter().map(|j| j.job.section()).collect();
        host.log(
            LogLevel::Info,
            &format!("gateway-suite: running {}", names.join(" -> ")),
        );
        self.jobs = jobs;
        true
    }

    fn on_tick(&mut self) {
        let _phase = ProxyWasmHost::phase();
        let now = now_millis();
        // A job runs when its own period is (nearly) over: ticks are the shortest period.
        let slack = u64::from(self.tick / 2);
        for (index, job) in self.jobs.iter_mut().enumerate() {
            if job.period == 0 || now.saturating_add(slack) < job.last_tick + u64::from(job.period)
            {
                continue;
            }
            job.last_tick = now;
            embed::run_as(index, || job.root.on_tick());
        }
        self.resume_streams();
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        let _phase = ProxyWasmHost::phase();
        for (index, job) in self.jobs.iter_mut().enumerate() {
            embed::run_as(index, || job.root.on_queue_ready(queue_id));
        }
        self.resume_streams();
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let streams: Vec<Option<Box<dyn HttpContext>>> = self
            .jobs
            .iter()
            .enumerate()
            .map(|(index, job)| embed::run_as(index, || job.root.create_http_context(context_id)))
            .collect();
        let jobs = Rc::new(RefCell::new(Jobs {
            streams,
            paused_at: None,
            request: (0, false),
            carry: exchange::Carry::default(),
        }));
        STREAMS.with(|s| {
            let mut s = s.borrow_mut();
            s.retain(|(_, weak)| weak.strong_count() > 0);
            s.push((context_id, Rc::downgrade(&jobs)));
        });
        Some(Box::new(SuiteStream { context_id, jobs }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// The jobs of one stream, by the index of their job in the root.
struct Jobs {
    streams: Vec<Option<Box<dyn HttpContext>>>,
    /// The job whose request phase stopped the request, if one did.
    paused_at: Option<usize>,
    /// The request-headers callback's arguments, for the jobs run after a resume.
    request: (usize, bool),
    /// What the request phase leaves for the later phases to read from memory.
    carry: exchange::Carry,
}

impl Jobs {
    /// The request phase from job `from` on: `Pause` where a job stops it.
    fn request_from(&mut self, from: usize, stream_id: u32) -> Action {
        let (headers, end) = self.request;
        for index in from..self.streams.len() {
            let Some(Some(stream)) = self.streams.get_mut(index) else {
                continue;
            };
            let action = embed::run_as(index, || stream.on_http_request_headers(headers, end));
            // A job that resumes at once (it paused and answered in the same callback) has
            // not stopped the request.
            let resumed = take_own_resume(stream_id);
            if action == Action::Pause && !resumed {
                self.paused_at = Some(index);
                return Action::Pause;
            }
        }
        exchange::keep(&mut self.carry);
        Action::Continue
    }

    /// A job resumed this stream's request: run the jobs after it, then resume for real if
    /// none of them stops it.
    fn resume(&mut self, stream_id: u32) {
        let Some(at) = self.paused_at.take() else {
            return;
        };
        if self.request_from(at + 1, stream_id) == Action::Continue {
            let _ = ProxyWasmHost.resume_request();
        }
    }

    /// Runs `call` on every job in `order` until one answers other than `Continue`.
    fn each(
        &mut self,
        reverse: bool,
        mut call: impl FnMut(&mut Box<dyn HttpContext>) -> Action,
    ) -> Action {
        let count = self.streams.len();
        for step in 0..count {
            let index = if reverse { count - 1 - step } else { step };
            let Some(Some(stream)) = self.streams.get_mut(index) else {
                continue;
            };
            let action = embed::run_as(index, || call(stream));
            if action != Action::Continue {
                return action;
            }
        }
        Action::Continue
    }
}

/// Takes this stream's own resume out of the ones recorded (true if there was one); others
/// stay for the root to run.
fn take_own_resume(stream_id: u32) -> bool {
    let resumes = embed::take_resumes();
    let own = resumes.contains(&stream_id);
    for id in resumes.into_iter().filter(|id| *id != stream_id) {
        embed::keep_resume(id);
    }
    own
}

/// One HTTP stream: the jobs' stream contexts, run in one pass.
struct SuiteStream {
    context_id: u32,
    jobs: Rc<RefCell<Jobs>>,
}

impl SuiteStream {
    fn with_jobs<T>(&self, default: T, f: impl FnOnce(&mut Jobs) -> T) -> T {
        embed::note_effective(self.context_id);
        match self.jobs.try_borrow_mut() {
            Ok(mut jobs) => {
                exchange::seed(&jobs.carry);
                f(&mut jobs)
            }
            Err(_) => {
                ProxyWasmHost.log(
                    LogLevel::Error,
                    "gateway-suite: a stream callback arrived while the stream was busy",
                );
                default
            }
        }
    }
}

impl Context for SuiteStream {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body: usize, trailers: usize) {
        let _phase = ProxyWasmHost::phase();
        let id = self.context_id;
        self.with_jobs((), |jobs| {
            let Some(index) = embed::callout_owner(token) else {
                return;
            };
            if let Some(Some(stream)) = jobs.streams.get_mut(index) {
                embed::run_as(index, || {
                    stream.on_http_call_response(token, headers, body, trailers)
                });
            }
            if take_own_resume(id) {
                jobs.resume(id);
            }
        });
    }

    fn on_done(&mut self) -> bool {
        let _phase = ProxyWasmHost::phase();
        self.with_jobs(true, |jobs| {
            for (index, stream) in jobs.streams.iter_mut().enumerate() {
                if let Some(stream) = stream {
                    embed::run_as(index, || stream.on_done());
                }
            }
            true
        })
    }
}

impl HttpContext for SuiteStream {
    fn on_http_request_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action {
        let _phase = ProxyWasmHost::phase();
        let id = self.context_id;
        self.with_jobs(Action::Pause, |jobs| {
            jobs.request = (num_headers, end_of_stream);
            jobs.request_from(0, id)
        })
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let _phase = ProxyWasmHost::phase();
        self.with_jobs(Action::Continue, |jobs| {
            jobs.each(false, |s| s.on_http_request_body(body_size, end_of_stream))
        })
    }

    fn on_http_response_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action {
        let _phase = ProxyWasmHost::phase();
        self.with_jobs(Action::Continue, |jobs| {
            jobs.each(true, |s| {
                s.on_http_response_headers(num_headers, end_of_stream)
            })
        })
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let _phase = ProxyWasmHost::phase();
        self.with_jobs(Action::Continue, |jobs| {
            jobs.each(true, |s| s.on_http_response_body(body_size, end_of_stream))
        })
    }

    fn on_log(&mut self) {
        let _phase = ProxyWasmHost::phase();
        self.with_jobs((), |jobs| {
            for (index, stream) in jobs.streams.iter_mut().enumerate() {
                if let Some(stream) = stream {
                    embed::run_as(index, || stream.on_log());
                }
            }
        });
    }
}

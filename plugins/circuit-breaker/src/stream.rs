//! One HTTP stream, and the per-VM runtime it shares with the other streams of its VM.
//!
//! - Request headers: find the breaker (key value -> slot, cached per VM), admit through the
//!   shared record (a closed breaker only reads), then pass, probe, or refuse (local reply or
//!   fallback header).
//! - Response headers: classify the status (and, for a 5xx not already a failure, Envoy's
//!   `response.code_details`/`response.flags`) and record the outcome. The breaker's own local
//!   reply also runs through this callback on Envoy: the stream is marked and skipped.
//! - Log / done: a request that never saw response headers is recorded from the upstream signals
//!   (reset, timeout) if any, and a probe that ends without an outcome gives its slot back.
//!
//! Shared data that cannot be updated after `max_cas_attempts` lost races: an admission that
//! needed a write (open -> half-open, a probe slot) is refused as if open; an outcome is dropped.
//! Both are counted (`contended`). Never is a request let through an open breaker because a write
//! failed.

use crate::breaker::{Admission, BreakerState, Outcome, Step, Transition};
use crate::config::{BreakerSettings, KeyRule, OpenAction, Settings};
use crate::failure::{parse_flags, UpstreamSignals};
use crate::metrics::{define_breaker, BreakerMetric, BreakerMetrics, GlobalMetric, GlobalMetrics};
use gateway_core::host_kind::HostKind;
use gateway_core::metrics::Instance;
use gateway_core::ports::{
    Clock, HeaderMapKind, HeaderPort, LocalReplyPort, LogLevel, LogPort, MetricsPort, PropertyPort,
    SharedDataPort,
};
use gateway_core::shared_record::{self, Change, RecordError};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

/// Everything a stream needs from its host.
pub trait Host:
    HeaderPort + PropertyPort + Clock + LocalReplyPort + LogPort + MetricsPort + SharedDataPort
{
}

impl<T> Host for T where
    T: HeaderPort + PropertyPort + Clock + LocalReplyPort + LogPort + MetricsPort + SharedDataPort
{
}

/// What the host should do after a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on.
    Continue,
    /// Stop: a local reply was sent.
    Stop,
}

/// Longest key value tracked as a breaker name.
const MAX_NAME_LEN: usize = 256;
/// Retry-after sent when an admission was refused because shared data was contended.
const CONTENDED_RETRY_MS: u64 = 1_000;

/// A breaker this VM has met: its name, its slot's shared-data key and its metrics.
#[derive(Debug)]
pub struct Tracked {
    /// The key value.
    pub name: String,
    /// `<prefix>/slot/<n>`.
    pub record_key: String,
    /// Metric ids.
    pub metrics: BreakerMetrics,
}

/// Per-VM state: the compiled settings, metric ids, and the key value -> breaker cache (slots
/// are never reassigned, so the cache never goes stale).
#[derive(Debug)]
pub struct Runtime {
    settings: Settings,
    global: GlobalMetrics,
    breakers: RefCell<HashMap<String, Rc<Tracked>>>,
    full_logged: Cell<bool>,
    error_logged: Cell<bool>,
    host: HostKind,
}

impl Runtime {
    /// A runtime for `settings`; defines the plugin-wide metrics.
    pub fn new<M: MetricsPort + ?Sized>(settings: Settings, host: &M) -> Self {
        Self {
            global: GlobalMetrics::define(&Instance::new(host, settings.stat_prefix.as_deref())),
            settings,
            breakers: RefCell::new(HashMap::new()),
            full_logged: Cell::new(false),
            error_logged: Cell::new(false),
            host: HostKind::Envoy,
        }
    }

    /// The runtime on `host`: Envoy's upstream signals (`response.code_details`,
    /// `response.flags`) are read only where they exist (Kong's engine logs an error line for
    /// each read of one; there, failures count by status and time).
    pub fn on_host(mut self, host: HostKind) -> Self {
        self.host = host;
        self
    }

    fn index_key(&self) -> String {
        format!("{}/index", self.settings.prefix)
    }

    /// The breaker named `name`: from the cache, or a slot found or taken in the shared index.
    fn breaker<H: Host + ?Sized>(&self, host: &H, name: &str) -> Option<Rc<Tracked>> {
        if let Some(t) = self.breakers.borrow().get(name) {
            return Some(Rc::clone(t));
        }
        let max = self.settings.max_breakers as usize;
        let result = shared_record::update(
            host,
            &self.index_key(),
            b"",
            self.settings.max_cas_attempts,
            |payload| assign_slot(payload, name, max),
        );
        let slot = match result {
            Ok(updated) => updated.value,
            Err(err) => {
                self.shared_error(host, &err);
                return None;
            }
        };
        let Some(slot) = slot else {
            if !self.full_logged.replace(true) {
                host.log(
                    LogLevel::Warn,
                    &format!(
                        "circuit-breaker: all {max} breaker slots are taken; requests for further keys (first: {name:?}) pass untracked (max_breakers)"
                    ),
                );
            }
            return None;
        };
        let tracked = Rc::new(Tracked {
            name: name.to_owned(),
            record_key: format!("{}/slot/{slot}", self.settings.prefix),
            metrics: define_breaker(
                &Instance::new(host, self.settings.stat_prefix.as_deref()),
                name,
            ),
        });
        self.breakers
            .borrow_mut()
            .insert(name.to_owned(), Rc::clone(&tracked));
        Some(tracked)
    }

    fn shared_error<H: Host + ?Sized>(&self, host: &H, err: &RecordError) {
        self.global.add(host, GlobalMetric::Errors, 1);
        if !self.error_logged.replace(true) {
            host.log(
                LogLevel::Warn,
                &format!("circuit-breaker: {err}; the request passed (counted in circuit_breaker.errors, logged once per VM)"),
            );
        }
    }
}

/// The slot of `name` in the index payload (one name per line), taking the next free one.
pub fn assign_slot(payload: &[u8], name: &str, max: usize) -> Change<Option<usize>> {
    let mut count = 0;
    if !payload.is_empty() {
        for (i, line) in payload.split(|b| *b == b'\n').enumerate() {
            if line == name.as_bytes() {
                return Change::Keep(Some(i));
            }
            count = i + 1;
        }
    }
    if count >= max {
        return Change::Keep(None);
    }
    let mut next = payload.to_vec();
    if !next.is_empty() {
        next.push(b'\n');
    }
    next.extend_from_slice(name.as_bytes());
    Change::Write(next, Some(count))
}

/// What this stream was admitted as.
#[derive(Debug)]
struct Admitted {
    breaker: Rc<Tracked>,
    epoch: u32,
    probe: bool,
    started_ms: u64,
}

/// The per-stream filter logic.
#[derive(Debug)]
pub struct Stream {
    runtime: Option<Rc<Runtime>>,
    admitted: Option<Admitted>,
    /// The breaker answered (local reply) or diverted (fallback): nothing to record.
    diverted: bool,
    /// The outcome was recorded (or given up).
    finished: bool,
}

impl Stream {
    /// A stream of a VM; `None` (no valid configuration) passes everything.
    pub fn new(runtime: Option<Rc<Runtime>>) -> Self {
        Self {
            runtime,
            admitted: None,
            diverted: false,
            finished: false,
        }
    }

    /// Request headers phase.
    pub fn on_request_headers<H: Host + ?Sized>(&mut self, host: &H) -> Flow {
        let Some(rt) = self.runtime.clone() else {
            return Flow::Continue;
        };
        let settings = &rt.settings;
        let mut spoofed = false;
        for name in &settings.strip_headers {
            if let Ok(Some(_)) = host.header(HeaderMapKind::Request, name) {
                spoofed = true;
                let _ = host.remove_header(HeaderMapKind::Request, name);
            }
        }
        if spoofed {
            // The gateway routed this request with the client's copy of the fallback header; a
            // key read from the route or cluster now names the fallback. Pass it untracked.
            rt.global.add(host, GlobalMetric::Untracked, 1);
            return Flow::Continue;
        }
        let Some(name) = key_value(host, settings) else {
            rt.global.add(host, GlobalMetric::Untracked, 1);
            return Flow::Continue;
        };
        let Some(tracked) = rt.breaker(host, &name) else {
            rt.global.add(host, GlobalMetric::Untracked, 1);
            return Flow::Continue;
        };
        let breaker = settings.breaker(&tracked.name);
        let policy = breaker.policy;
        let now = now_ms(host);
        let initial = BreakerState::new(&policy).encode();
        let result = shared_record::update(
            host,
            &tracked.record_key,
            &initial,
            settings.max_cas_attempts,
            |payload| {
                let state = BreakerState::decode(payload, &policy)
                    .unwrap_or_else(|| BreakerState::new(&policy));
                apply(state.admit(&policy, now))
            },
        );
        let admission = match result {
            Ok(updated) => {
                if let (true, Some(t)) = (updated.wrote, updated.value.1) {
                    announce(host, &tracked, t, now);
                }
                updated.value.0
            }
            Err(RecordError::Contended { .. }) => {
                tracked.metrics.add(host, BreakerMetric::Contended, 1);
                Admission::Reject {
                    retry_after_ms: CONTENDED_RETRY_MS,
                }
            }
            Err(err) => {
                rt.shared_error(host, &err);
                return Flow::Continue;
            }
        };
        match admission {
            Admission::Pass { epoch } | Admission::Probe { epoch } => {
                let probe = matches!(admission, Admission::Probe { .. });
                if probe {
                    tracked.metrics.add(host, BreakerMetric::Probes, 1);
                }
                self.admitted = Some(Admitted {
                    breaker: tracked,
                    epoch,
                    probe,
                    started_ms: now,
                });
                Flow::Continue
            }
            Admission::Reject { retry_after_ms } => {
                tracked.metrics.add(host, BreakerMetric::Rejected, 1);
                self.diverted = true;
                self.refuse(host, breaker, &tracked.name, retry_after_ms)
            }
        }
    }

    fn refuse<H: Host + ?Sized>(
        &self,
        host: &H,
        breaker: &BreakerSettings,
        name: &str,
        retry_after_ms: u64,
    ) -> Flow {
        let seconds = retry_after_ms.div_ceil(1000).max(1);
        match &breaker.on_open {
            OpenAction::Fallback { name, value } => {
                let _ = host.set_header(HeaderMapKind::Request, name, value.as_bytes());
                Flow::Continue
            }
            OpenAction::Reply {
                status,
                body,
                retry_after,
            } => {
                let body = body.clone().unwrap_or_else(|| {
                    format!(
                        r#"{{"error":"circuit_open","breaker":{},"retry_after_seconds":{seconds}}}"#,
                        serde_json::Value::String(name.to_owned())
                    )
                    .into_bytes()
                });
                let seconds = seconds.to_string();
                let mut headers = vec![("content-type", "application/json")];
                if *retry_after {
                    headers.push(("retry-after", seconds.as_str()));
                }
                match host.send_local_reply(*status, &headers, &body) {
                    Ok(()) => Flow::Stop,
                    Err(err) => {
                        host.log(
                            LogLevel::Error,
                            &format!("circuit-breaker: cannot send the open reply: {err}"),
                        );
                        Flow::Stop
                    }
                }
            }
        }
    }

    /// Response headers phase: records the outcome.
    pub fn on_response_headers<H: Host + ?Sized>(&mut self, host: &H) -> Flow {
        if self.diverted || self.finished || self.admitted.is_none() {
            return Flow::Continue;
        }
        let status = host
            .header(HeaderMapKind::Response, ":status")
            .ok()
            .flatten()
            .and_then(|v| std::str::from_utf8(&v).ok()?.trim().parse::<u16>().ok());
        self.finish(host, status);
        Flow::Continue
    }

    /// Log phase (and done): a stream without response headers is settled here.
    pub fn on_log<H: Host + ?Sized>(&mut self, host: &H) {
        if self.diverted || self.finished || self.admitted.is_none() {
            return;
        }
        self.finish(host, None);
    }

    fn finish<H: Host + ?Sized>(&mut self, host: &H, status: Option<u16>) {
        self.finished = true;
        let (Some(rt), Some(admitted)) = (self.runtime.clone(), self.admitted.as_ref()) else {
            return;
        };
        let breaker = rt.settings.breaker(&admitted.breaker.name);
        let failure_policy = &breaker.failure;
        let now = now_ms(host);
        let elapsed = now.saturating_sub(admitted.started_ms);
        let mut failure =
            status.is_some_and(|s| failure_policy.fails_by_status_or_time(s, elapsed));
        if !failure && rt.host.has_response_flags() && failure_policy.wants_signals(status) {
            let details = host.property(&["response", "code_details"]).ok().flatten();
            let flags = host
                .property(&["response", "flags"])
                .ok()
                .flatten()
                .and_then(|f| parse_flags(&f));
            failure = failure_policy.fails_by_signals(&UpstreamSignals {
                details: details.as_deref(),
                flags,
            });
        }
        let tracked = Rc::clone(&admitted.breaker);
        let policy = breaker.policy;
        let (epoch, probe) = (admitted.epoch, admitted.probe);
        let known = status.is_some() || failure;
        if !known && !probe {
            // Ended without an answer (the client went away): nothing to say about the upstream.
            return;
        }
        if known {
            tracked.metrics.add(
                host,
                if failure {
                    BreakerMetric::Failures
                } else {
                    BreakerMetric::Successes
                },
                1,
            );
        }
        let initial = BreakerState::new(&policy).encode();
        let result = shared_record::update(
            host,
            &tracked.record_key,
            &initial,
            rt.settings.max_cas_attempts,
            |payload| {
                let state = BreakerState::decode(payload, &policy)
                    .unwrap_or_else(|| BreakerState::new(&policy));
                if known {
                    apply(state.record(
                        &policy,
                        now,
                        Outcome {
                            epoch,
                            probe,
                            failure,
                        },
                    ))
                } else {
                    apply(state.release_probe(epoch))
                }
            },
        );
        match result {
            Ok(updated) => {
                if let (true, Some(t)) = (updated.wrote, updated.value.1) {
                    announce(host, &tracked, t, now);
                }
            }
            Err(RecordError::Contended { .. }) => {
                tracked.metrics.add(host, BreakerMetric::Contended, 1)
            }
            Err(err) => rt.shared_error(host, &err),
        }
    }
}

/// A step as a shared-record change: write the new state if there is one.
fn apply<D>(step: Step<D>) -> Change<(D, Option<Transition>)> {
    match step.next {
        Some(next) => Change::Write(next.encode(), (step.decision, step.transition)),
        None => Change::Keep((step.decision, step.transition)),
    }
}

/// The one log line and the metrics of a transition, from the worker whose write made it.
fn announce<H: Host + ?Sized>(host: &H, tracked: &Tracked, t: Transition, now: u64) {
    let name = &tracked.name;
    let line = match t {
        Transition::Tripped {
            totals,
            consecutive,
            open_ms,
            trip,
        } => format!(
            "circuit-breaker: breaker {name:?} closed -> open: {}/{} failures in the window, {consecutive} in a row; open for {open_ms} ms (trip {trip} in a row)",
            totals.failures, totals.requests
        ),
        Transition::HalfOpened => {
            format!("circuit-breaker: breaker {name:?} open -> half-open: admitting probes")
        }
        Transition::Closed => format!("circuit-breaker: breaker {name:?} half-open -> closed"),
        Transition::Reopened { open_ms, trip } => format!(
            "circuit-breaker: breaker {name:?} half-open -> open: a probe failed; open for {open_ms} ms (trip {trip} in a row)"
        ),
    };
    host.log(LogLevel::Info, &format!("{line} (at {now} ms)"));
    tracked
        .metrics
        .record(host, BreakerMetric::State, t.to() as u64);
    if t.is_trip() {
        tracked.metrics.add(host, BreakerMetric::Trips, 1);
    }
}

fn now_ms<H: Host + ?Sized>(host: &H) -> u64 {
    host.now_unix_nanos().map_or(0, |n| n / 1_000_000)
}

/// The breaker name for this request, if any.
fn key_value<H: Host + ?Sized>(host: &H, settings: &Settings) -> Option<String> {
    let raw = match &settings.key {
        KeyRule::Fixed(name) => Some(name.as_bytes().to_vec()),
        KeyRule::Header(name) => host.header(HeaderMapKind::Request, name).ok().flatten(),
        KeyRule::Property(path) => {
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            host.property(&path).ok().flatten()
        }
    };
    let name = raw
        .filter(|v| !v.is_empty() && v.len() <= MAX_NAME_LEN && !v.contains(&b'\n'))
        .and_then(|v| String::from_utf8(v).ok());
    name.or_else(|| settings.when_missing.clone())
}

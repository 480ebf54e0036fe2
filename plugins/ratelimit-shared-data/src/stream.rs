//! One HTTP stream: read the request once, decide, answer or annotate the response.
//!
//! Request phase: one copy of the request headers; the client IP (one property read, only if a
//! rule or exemption needs it); exemptions; matching rules and their keys; one clock read; the
//! [`Limiter`]. Refused: a local reply with the answer headers. Admitted: the headers of the most
//! restrictive rule are added to the response (when `headers.on_allowed`).

use crate::answer::{deny_body, quota_headers, QuotaView};
use crate::cidr::{last_forwarded_ip, parse_client_ip};
use crate::config::{FailureMode, HeaderCondition, MissingKey, Rule, Settings};
use crate::key::{self, KeyPart};
use crate::limiter::{Counts, Decision, DenyReason, Item, Limiter};
use crate::metrics::{Metric, Metrics};
use gateway_core::headers::HeaderList;
use gateway_core::matching::strip_query;
use gateway_core::ports::{
    Clock, HeaderMapKind, HeaderPort, LocalReplyPort, LogLevel, LogPort, MetricsPort, PropertyPort,
    SharedDataPort,
};
use std::net::IpAddr;
use std::rc::Rc;

/// Everything a stream needs from its host.
pub trait Host:
    HeaderPort + PropertyPort + Clock + SharedDataPort + LocalReplyPort + LogPort + MetricsPort
{
}

impl<T> Host for T where
    T: HeaderPort + PropertyPort + Clock + SharedDataPort + LocalReplyPort + LogPort + MetricsPort
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

/// Per-VM state shared by every stream: settings, limiter, metric ids.
#[derive(Debug)]
pub struct Runtime {
    /// Compiled settings.
    pub settings: Settings,
    /// The limiter.
    pub limiter: Limiter,
    /// Metric ids.
    pub metrics: Metrics,
}

impl Runtime {
    /// Builds the runtime and defines the metrics.
    pub fn new<M: MetricsPort + ?Sized>(settings: Settings, host: &M) -> Self {
        Self {
            limiter: Limiter::new(&settings.shared),
            metrics: Metrics::define(&gateway_core::metrics::Instance::new(
                host,
                settings.stat_prefix.as_deref(),
            )),
            settings,
        }
    }
}

/// The per-stream filter logic.
#[derive(Debug)]
pub struct Stream {
    runtime: Option<Rc<Runtime>>,
    /// Headers to add to the response (admitted request).
    response_headers: Vec<(&'static str, String)>,
    answered_locally: bool,
}

fn header<'h>(headers: &'h HeaderList, name: &str) -> Option<&'h [u8]> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    v.get(start..end).unwrap_or_default()
}

/// True if the value, or one comma-separated item of it, is listed.
fn value_listed(value: &[u8], values: &[Vec<u8>]) -> bool {
    let value = trim(value);
    values.iter().any(|v| v.as_slice() == value)
        || value
            .split(|b| *b == b',')
            .map(trim)
            .any(|item| values.iter().any(|v| v.as_slice() == item))
}

fn rule_matches(rule: &Rule, method: &[u8], path: &[u8], headers: &HeaderList) -> bool {
    rule.request.matches(method, path)
        && rule.headers.iter().all(|cond| match cond {
            HeaderCondition::Present(name, present) => header(headers, name).is_some() == *present,
            HeaderCondition::Equals(name, value) => {
                header(headers, name).is_some_and(|v| v == value.as_slice())
            }
        })
}

impl Stream {
    /// A stream using `runtime`; `None` (no valid configuration) answers `500`.
    pub fn new(runtime: Option<Rc<Runtime>>) -> Self {
        Self {
            runtime,
            response_headers: Vec::new(),
            answered_locally: false,
        }
    }

    /// Request headers phase.
    pub fn on_request_headers<H: Host + ?Sized>(&mut self, host: &H) -> Flow {
        let Some(runtime) = self.runtime.clone() else {
            host.log(
                LogLevel::Error,
                "ratelimit-shared-data: no valid configuration, answering 500",
            );
            self.answered_locally = true;
            let _ = host.send_local_reply(500, &[], b"");
            return Flow::Stop;
        };
        let settings = &runtime.settings;
        if settings.rules.is_empty() {
            return Flow::Continue;
        }
        let headers = match settings
            .needs_headers
            .then(|| host.header_list(HeaderMapKind::Request))
        {
            None => HeaderList::new(),
            Some(Ok(headers)) => headers,
            Some(Err(err)) => {
                host.log(
                    LogLevel::Warn,
                    &format!("ratelimit-shared-data: cannot read request headers: {err}"),
                );
                runtime.metrics.add(host, Metric::StoreErrors, 1);
                return self.host_failed(host, &runtime);
            }
        };
        for (name, values) in &settings.exempt_headers {
            if header(&headers, name).is_some_and(|v| value_listed(v, values)) {
                runtime.metrics.add(host, Metric::Exempt, 1);
                return Flow::Continue;
            }
        }
        let client_ip = if settings.needs_client_ip {
            client_ip(host, settings, &headers)
        } else {
            None
        };
        if let Some(ip) = client_ip {
            if settings.exempt_cidrs.iter().any(|c| c.contains(ip)) {
                runtime.metrics.add(host, Metric::Exempt, 1);
                return Flow::Continue;
            }
        }
        let method = header(&headers, ":method").unwrap_or_default();
        let path_and_query = header(&headers, ":path").unwrap_or_default();
        let mut items = Vec::new();
        for (index, rule) in settings.rules.iter().enumerate() {
            if !rule_matches(rule, method, path_and_query, &headers) {
                continue;
            }
            let built = key::build(&rule.name, &rule.key, |part| match part {
                KeyPart::ClientIp => client_ip.map(|ip| ip.to_string().into_bytes()),
                KeyPart::Path => Some(strip_query(path_and_query).to_vec()),
                KeyPart::Method => Some(method.to_vec()),
                KeyPart::Route => property(host, &["xds", "route_name"]),
                KeyPart::Cluster => property(host, &["xds", "cluster_name"]),
                KeyPart::ApiKey => header(&headers, &settings.api_key_header).map(<[u8]>::to_vec),
                KeyPart::Header(name) => header(&headers, name).map(<[u8]>::to_vec),
                KeyPart::Property(path) => {
                    let segments: Vec<&str> = path.iter().map(String::as_str).collect();
                    property(host, &segments)
                }
                KeyPart::Constant(c) => Some(c.as_bytes().to_vec()),
            });
            if built.missing {
                runtime.metrics.add(host, Metric::KeyMissing, 1);
                if rule.on_missing_key == MissingKey::Skip {
                    continue;
                }
            }
            items.push(Item {
                rule: index,
                limit: &rule.limit,
                key: built.key,
            });
        }
        if items.is_empty() {
            return Flow::Continue;
        }
        let now_ns = match host.now_unix_nanos() {
            Ok(now) => now,
            Err(_) => {
                runtime.metrics.add(host, Metric::StoreErrors, 1);
                return self.host_failed(host, &runtime);
            }
        };
        let (decision, counts) = runtime.limiter.check(host, &items, now_ns);
        record_counts(host, &runtime.metrics, &counts);
        match decision {
            Decision::Allowed(quota) => {
                runtime.metrics.add(host, Metric::Allowed, 1);
                if let (Some(q), true) = (quota, settings.headers.on_allowed) {
                    if let Some(rule) = settings.rules.get(q.rule) {
                        self.response_headers = quota_headers(
                            &settings.headers,
                            &QuotaView {
                                rule: &rule.name,
                                policy: rule.limit.policy(),
                                remaining: q.remaining,
                                reset_secs: q.reset_secs,
                            },
                        );
                    }
                }
                Flow::Continue
            }
            Decision::Denied {
                rule,
                retry_after_secs,
                reason,
            } => {
                let name = settings.rules.get(rule).map_or("", |r| r.name.as_str());
                if settings.shadow_mode {
                    runtime.metrics.add(host, Metric::ShadowLimited, 1);
                    host.log(
                        LogLevel::Info,
                        &format!(
                            "ratelimit-shared-data: shadow mode: rule {name:?} would refuse ({}), admitted",
                            reason_text(reason)
                        ),
                    );
                    return Flow::Continue;
                }
                runtime.metrics.add(host, Metric::Limited, 1);
                host.log(
                    LogLevel::Debug,
                    &format!(
                        "ratelimit-shared-data: rule {name:?} refused ({})",
                        reason_text(reason)
                    ),
                );
                self.refuse(host, &runtime, rule, retry_after_secs)
            }
        }
    }

    /// A host call the decision needs failed: answer per `shared_data.failure_mode`.
    fn host_failed<H: Host + ?Sized>(&mut self, host: &H, runtime: &Runtime) -> Flow {
        match runtime.settings.shared.failure_mode {
            FailureMode::Open => Flow::Continue,
            FailureMode::Closed => self.refuse(host, runtime, 0, 1),
        }
    }

    fn refuse<H: Host + ?Sized>(
        &mut self,
        host: &H,
        runtime: &Runtime,
        rule: usize,
        retry_after_secs: u64,
    ) -> Flow {
        let settings = &runtime.settings;
        let rule = settings.rules.get(rule);
        let name = rule.map_or("", |r| r.name.as_str());
        let mut headers: Vec<(&str, String)> =
            vec![("content-type", "application/json".to_owned())];
        if settings.headers.retry_after {
            headers.push(("retry-after", retry_after_secs.to_string()));
        }
        if let Some(rule) = rule {
            headers.extend(quota_headers(
                &settings.headers,
                &QuotaView {
                    rule: &rule.name,
                    policy: rule.limit.policy(),
                    remaining: 0,
                    reset_secs: retry_after_secs,
                },
            ));
        }
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let body = deny_body(&settings.deny.message, name, retry_after_secs);
        self.answered_locally = true;
        if let Err(err) = host.send_local_reply(settings.deny.status, &pairs, body.as_bytes()) {
            host.log(
                LogLevel::Warn,
                &format!("ratelimit-shared-data: cannot send the refusal: {err}"),
            );
            return Flow::Continue;
        }
        Flow::Stop
    }

    /// Response headers phase: the quota headers of an admitted request.
    pub fn on_response_headers<H: Host + ?Sized>(&mut self, host: &H) -> Flow {
        if self.answered_locally {
            return Flow::Continue;
        }
        for (name, value) in std::mem::take(&mut self.response_headers) {
            let _ = host.set_header(HeaderMapKind::Response, name, value.as_bytes());
        }
        Flow::Continue
    }
}

fn reason_text(reason: DenyReason) -> &'static str {
    match reason {
        DenyReason::Limit => "limit reached",
        DenyReason::SlotsExhausted => "slots exhausted",
        DenyReason::Contention => "cas retries exhausted",
        DenyReason::StoreError => "shared data failed",
    }
}

fn property<H: Host + ?Sized>(host: &H, path: &[&str]) -> Option<Vec<u8>> {
    host.property(path).ok().flatten().filter(|v| !v.is_empty())
}

fn client_ip<H: Host + ?Sized>(
    host: &H,
    settings: &Settings,
    headers: &HeaderList,
) -> Option<IpAddr> {
    if let Some(name) = &settings.client_ip_header {
        if let Some(ip) = header(headers, name).and_then(last_forwarded_ip) {
            return Some(ip);
        }
    }
    property(host, &["source", "address"]).and_then(|v| parse_client_ip(&v))
}

fn record_counts<H: Host + ?Sized>(host: &H, metrics: &Metrics, counts: &Counts) {
    metrics.add(host, Metric::CasRetries, counts.cas_retries);
    metrics.add(host, Metric::CasExhausted, counts.cas_exhausted);
    metrics.add(host, Metric::SlotsExhausted, counts.slots_exhausted);
    metrics.add(host, Metric::SlotTakeovers, counts.takeovers);
    metrics.add(host, Metric::StoreErrors, counts.store_errors);
    metrics.add(host, Metric::Refunds, counts.refunds);
    metrics.add(host, Metric::RefundFailures, counts.refund_failures);
    metrics.add(host, Metric::SlotsInUse, counts.slots_claimed);
}

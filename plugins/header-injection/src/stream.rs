//! One HTTP stream: reads each header map once, decides in memory, writes the changes back.
//!
//! Request phase, in order: anti-spoofing, correlation id, CORS preflight (answered locally),
//! traceparent, request rules. Response phase: correlation echo, CORS headers, security headers,
//! response rules. A stream the plugin answered locally (preflight) skips the response phase:
//! Envoy runs the filter's response callback on its own local reply, and the reply already
//! carries everything it needs.

use crate::config::Settings;
use crate::correlation::CorrelationDecision;
use crate::cors::CorsPolicy;
use crate::ids;
use crate::metrics::{Metric, Metrics};
use crate::rules::{Outcome, Rule};
use crate::traceparent::TraceDecision;
use gateway_core::headers::{HeaderEdits, HeaderList};
use gateway_core::host_kind::HostKind;
use gateway_core::ports::{
    Clock, HeaderMapKind, HeaderPort, LocalReplyPort, LogLevel, LogPort, MetricsPort, PropertyPort,
    RandomSource,
};
use std::rc::Rc;

/// Everything a stream needs from its host.
pub trait Host:
    HeaderPort + PropertyPort + Clock + RandomSource + LocalReplyPort + LogPort + MetricsPort
{
}

impl<T> Host for T where
    T: HeaderPort + PropertyPort + Clock + RandomSource + LocalReplyPort + LogPort + MetricsPort
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

#[derive(Debug, Default)]
struct State {
    request_seen: bool,
    answered_locally: bool,
    method: Vec<u8>,
    path: Vec<u8>,
    origin: Option<Vec<u8>>,
    correlation_id: Option<String>,
    captured: HeaderList,
}

/// The per-stream filter logic.
#[derive(Debug)]
pub struct Stream {
    settings: Option<Rc<Settings>>,
    metrics: Metrics,
    host: HostKind,
    state: State,
}

impl Stream {
    /// A stream using `settings`; `None` (no valid configuration) fails closed with `500`.
    pub fn new(settings: Option<Rc<Settings>>, metrics: Metrics) -> Self {
        Self {
            settings,
            metrics,
            host: HostKind::Envoy,
            state: State::default(),
        }
    }

    /// The stream on `host`: where the host cannot remove a client's request header (Kong), a
    /// request carrying a protected header is refused with `400 spoofed_identity_header`
    /// instead of stripped.
    pub fn on_host(mut self, host: HostKind) -> Self {
        self.host = host;
        self
    }

    /// Request headers phase.
    pub fn on_request_headers<H: Host + ?Sized>(&mut self, host: &H) -> Flow {
        let Some(settings) = self.settings.clone() else {
            host.log(
                LogLevel::Error,
                "header-injection: no valid configuration, answering 500",
            );
            return self.reply(host, 500, &[]);
        };
        self.metrics.add(host, Metric::Requests, 1);
        let headers = match host.header_list(HeaderMapKind::Request) {
            Ok(headers) => headers,
            Err(err) => {
                host.log(
                    LogLevel::Error,
                    &format!("header-injection: cannot read request headers: {err}"),
                );
                // Without the headers, spoofed identity headers could pass: fail closed.
                return if settings.protected.is_empty() {
                    Flow::Continue
                } else {
                    self.reply(host, 500, &[])
                };
            }
        };
        let mut request = HeaderEdits::new(headers);
        self.state.request_seen = true;
        self.state.method = request.first(":method").unwrap_or_default().to_vec();
        self.state.path = request.first(":path").unwrap_or_default().to_vec();

        let stripped = settings.protected.strip(request.headers_mut());
        for name in &stripped.names {
            request.record_removed(name);
        }
        self.metrics
            .add(host, Metric::SpoofedHeadersRemoved, stripped.lines);
        if stripped.lines > 0 && !self.host.removes_request_headers() {
            // The host would still forward the client's copy: refuse rather than pass it on.
            host.log(
                LogLevel::Debug,
                &format!(
                    "header-injection: refused a request carrying {}: this host cannot remove a client's header",
                    stripped.names.join(", ")
                ),
            );
            return self.reply_with_body(
                host,
                400,
                &[
                    ("content-type", "application/json"),
                    ("cache-control", "no-store"),
                ],
                br#"{"error":"invalid_request","reason":"spoofed_identity_header"}"#,
            );
        }

        self.correlation(&settings, &mut request, host);

        if let Some(cors) = &settings.cors {
            self.state.origin = request.first("origin").map(<[u8]>::to_vec);
            if CorsPolicy::is_preflight(&request) {
                return self.answer_preflight(&settings, cors, &request, host);
            }
        }

        self.traceparent(&settings, &mut request, host);

        let (method, path) = (self.state.method.clone(), self.state.path.clone());
        self.run_rules(
            &settings.request_rules,
            &method,
            &path,
            &mut request,
            |edits, name| edits.first(name).map(<[u8]>::to_vec),
            host,
        );

        self.state.captured = settings
            .captured_request_headers
            .iter()
            .filter_map(|name| request.first(name).map(|v| (name.clone(), v.to_vec())))
            .collect();

        if !self.write(host, &request, HeaderMapKind::Request) {
            return self.reply(host, 500, &[]);
        }
        Flow::Continue
    }

    /// Response headers phase.
    pub fn on_response_headers<H: Host + ?Sized>(&mut self, host: &H) -> Flow {
        if self.state.answered_locally {
            return Flow::Continue;
        }
        let Some(settings) = self.settings.clone() else {
            return Flow::Continue;
        };
        let headers = match host.header_list(HeaderMapKind::Response) {
            Ok(headers) => headers,
            Err(err) => {
                host.log(
                    LogLevel::Warn,
                    &format!("header-injection: cannot read response headers: {err}"),
                );
                return Flow::Continue;
            }
        };
        let mut response = HeaderEdits::new(headers);

        if let (Some(policy), Some(id)) = (&settings.correlation, &self.state.correlation_id) {
            if policy.echo_on_response {
                response.set(&policy.header, id.as_bytes().to_vec());
            }
        }
        if let Some(cors) = &settings.cors {
            cors.apply_response(self.state.origin.as_deref(), &mut response);
        }
        settings.security.apply(&mut response);

        let captured = std::mem::take(&mut self.state.captured);
        let (method, path) = (self.state.method.clone(), self.state.path.clone());
        self.run_rules(
            &settings.response_rules,
            &method,
            &path,
            &mut response,
            |_, name| {
                captured
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
            },
            host,
        );

        let _ = self.write(host, &response, HeaderMapKind::Response);
        Flow::Continue
    }

    fn correlation<H: Host + ?Sized>(
        &mut self,
        settings: &Settings,
        request: &mut HeaderEdits,
        host: &H,
    ) {
        let Some(policy) = &settings.correlation else {
            return;
        };
        let values = request.all(&policy.header);
        self.state.correlation_id = match policy.decide(&values) {
            CorrelationDecision::Keep(id) => Some(id),
            CorrelationDecision::Dedupe(id) => {
                request.set(&policy.header, id.as_bytes().to_vec());
                Some(id)
            }
            CorrelationDecision::Generate => match ids::uuid_v4(host) {
                Ok(id) => {
                    request.set(&policy.header, id.as_bytes().to_vec());
                    self.metrics.add(host, Metric::CorrelationIdsGenerated, 1);
                    Some(id)
                }
                Err(err) => {
                    host.log(
                        LogLevel::Warn,
                        &format!("header-injection: cannot generate a correlation id: {err}"),
                    );
                    request.remove(&policy.header);
                    None
                }
            },
        };
    }

    fn answer_preflight<H: Host + ?Sized>(
        &mut self,
        settings: &Settings,
        cors: &CorsPolicy,
        request: &HeaderEdits,
        host: &H,
    ) -> Flow {
        let reply = cors.preflight(self.state.origin.as_deref().unwrap_or_default());
        let mut headers: Vec<(&str, &str)> = reply
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let correlation_id = self.state.correlation_id.clone();
        if let (Some(policy), Some(id)) = (&settings.correlation, &correlation_id) {
            if policy.echo_on_response {
                headers.push((policy.header.as_str(), id.as_str()));
            }
        }
        // Keep the request map consistent for filters after this one (e.g. an access log).
        let _ = self.write(host, request, HeaderMapKind::Request);
        let metric = if reply.status == 204 {
            Metric::PreflightsAnswered
        } else {
            Metric::PreflightsRejected
        };
        self.metrics.add(host, metric, 1);
        self.reply(host, reply.status, &headers)
    }

    fn traceparent<H: Host + ?Sized>(
        &mut self,
        settings: &Settings,
        request: &mut HeaderEdits,
        host: &H,
    ) {
        let Some(policy) = &settings.traceparent else {
            return;
        };
        let incoming = request.all("traceparent");
        let has_state = request.contains("tracestate");
        match policy.decide(&incoming, has_state, host) {
            Ok(TraceDecision::Keep) => {}
            Ok(TraceDecision::Set {
                traceparent,
                replaced,
            }) => {
                request.set("traceparent", traceparent.into_bytes());
                request.remove("tracestate");
                let metric = if replaced {
                    Metric::TraceparentsInvalid
                } else {
                    Metric::TraceparentsStarted
                };
                self.metrics.add(host, metric, 1);
            }
            Ok(TraceDecision::Remove) => {
                request.remove("traceparent");
                request.remove("tracestate");
                self.metrics.add(host, Metric::TraceparentsInvalid, 1);
            }
            Ok(TraceDecision::RemoveTracestate) => {
                request.remove("tracestate");
            }
            Err(err) => {
                host.log(
                    LogLevel::Warn,
                    &format!("header-injection: cannot generate a traceparent: {err}"),
                );
                if !incoming.is_empty() {
                    request.remove("traceparent");
                }
                request.remove("tracestate");
            }
        }
    }

    fn run_rules<H, F>(
        &self,
        rules: &[Rule],
        method: &[u8],
        path: &[u8],
        target: &mut HeaderEdits,
        lookup: F,
        host: &H,
    ) where
        H: Host + ?Sized,
        F: Fn(&HeaderEdits, &str) -> Option<Vec<u8>>,
    {
        let (mut applied, mut skipped) = (0, 0);
        for rule in rules {
            match rule.apply(method, path, target, &lookup, host) {
                Outcome::NotMatched => {}
                Outcome::Applied => applied += 1,
                Outcome::Skipped(skip) => {
                    skipped += 1;
                    host.log(
                        LogLevel::Debug,
                        &format!("header-injection: {} skipped: {skip}", rule.field),
                    );
                }
            }
        }
        self.metrics.add(host, Metric::RulesApplied, applied);
        self.metrics.add(host, Metric::RulesSkipped, skipped);
    }

    /// Writes `edits`; false if the host refused to remove a request header (a forged identity
    /// header may still be there): that request must not go upstream.
    fn write<H: Host + ?Sized>(&self, host: &H, edits: &HeaderEdits, map: HeaderMapKind) -> bool {
        edits.write(
            host,
            map,
            "header-injection",
            "the host refused a header change",
        )
    }

    fn reply<H: Host + ?Sized>(&mut self, host: &H, status: u32, headers: &[(&str, &str)]) -> Flow {
        self.reply_with_body(host, status, headers, b"")
    }

    fn reply_with_body<H: Host + ?Sized>(
        &mut self,
        host: &H,
        status: u32,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Flow {
        match host.send_local_reply(status, headers, body) {
            Ok(()) => {
                self.state.answered_locally = true;
                Flow::Stop
            }
            Err(err) => {
                host.log(
                    LogLevel::Error,
                    &format!("header-injection: cannot send a local reply: {err}"),
                );
                Flow::Continue
            }
        }
    }
}

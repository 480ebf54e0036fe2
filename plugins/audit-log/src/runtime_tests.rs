//! Native tests of the stream and runtime over gateway-core's fake host, plus an in-memory queue
//! and callout recorder: what each phase reads (once), the sinks, the queue hand-off, the local
//! exporter's dispatch and answers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::chain::verify;
use crate::config::Settings;
use crate::runtime::{BodyKind, BodyPort, QueuePort, Runtime, Stream};
use gateway_core::fake::FakeHost;
use gateway_core::headers::HeaderList;
use gateway_core::host_kind::HostKind;
use gateway_core::ports::{
    Clock, HeaderMapKind, HeaderPort, HostError, HttpCallPort, LogLevel, LogPort, MetricId,
    MetricsPort, PropertyPort, RandomSource,
};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

/// A call the exporter made: upstream, headers, body.
type Sent = (String, Vec<(String, String)>, Vec<u8>);

#[derive(Default)]
struct Host {
    base: FakeHost,
    queue: RefCell<Option<VecDeque<Vec<u8>>>>,
    sent: RefCell<Vec<Sent>>,
    body: RefCell<Vec<u8>>,
}

impl BodyPort for Host {
    fn body_chunk(&self, _kind: BodyKind, max: usize) -> Result<Option<Vec<u8>>, HostError> {
        let body = self.body.borrow();
        Ok(Some(body.iter().take(max).copied().collect()))
    }
}

impl HeaderPort for Host {
    fn header_list(&self, map: HeaderMapKind) -> Result<HeaderList, HostError> {
        self.base.header_list(map)
    }
    fn header(&self, map: HeaderMapKind, name: &str) -> Result<Option<Vec<u8>>, HostError> {
        self.base.header(map, name)
    }
    fn set_header(&self, map: HeaderMapKind, name: &str, value: &[u8]) -> Result<(), HostError> {
        self.base.set_header(map, name, value)
    }
    fn add_header(&self, map: HeaderMapKind, name: &str, value: &[u8]) -> Result<(), HostError> {
        self.base.add_header(map, name, value)
    }
    fn remove_header(&self, map: HeaderMapKind, name: &str) -> Result<(), HostError> {
        self.base.remove_header(map, name)
    }
}
impl PropertyPort for Host {
    fn property(&self, path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
        self.base.property(path)
    }
    fn set_property(&self, path: &[&str], value: &[u8]) -> Result<(), HostError> {
        self.base.set_property(path, value)
    }
}
impl Clock for Host {
    fn now_unix_nanos(&self) -> Result<u64, HostError> {
        self.base.now_unix_nanos()
    }
}
impl RandomSource for Host {
    fn fill_random(&self, buf: &mut [u8]) -> Result<(), HostError> {
        self.base.fill_random(buf)
    }
}
impl LogPort for Host {
    fn log(&self, level: LogLevel, message: &str) {
        self.base.log(level, message)
    }
}
impl MetricsPort for Host {
    fn define_counter(&self, name: &str) -> Result<MetricId, HostError> {
        self.base.define_counter(name)
    }
    fn define_gauge(&self, name: &str) -> Result<MetricId, HostError> {
        self.base.define_gauge(name)
    }
    fn increment(&self, id: MetricId, delta: i64) -> Result<(), HostError> {
        self.base.increment(id, delta)
    }
    fn record(&self, id: MetricId, value: u64) -> Result<(), HostError> {
        self.base.record(id, value)
    }
}
impl QueuePort for Host {
    fn register_queue(&self, _name: &str) -> Result<u32, HostError> {
        self.queue.borrow_mut().get_or_insert_with(VecDeque::new);
        Ok(1)
    }
    fn resolve_queue(&self, _vm_id: &str, _name: &str) -> Result<Option<u32>, HostError> {
        Ok(self.queue.borrow().as_ref().map(|_| 1))
    }
    fn enqueue(&self, _queue: u32, item: &[u8]) -> Result<(), HostError> {
        match self.queue.borrow_mut().as_mut() {
            Some(q) => {
                q.push_back(item.to_vec());
                Ok(())
            }
            None => Err(HostError::NotFound),
        }
    }
    fn dequeue(&self, _queue: u32) -> Result<Option<Vec<u8>>, HostError> {
        Ok(self
            .queue
            .borrow_mut()
            .as_mut()
            .and_then(VecDeque::pop_front))
    }
}
impl HttpCallPort for Host {
    fn dispatch_http_call(
        &self,
        upstream: &str,
        headers: &[(&str, &[u8])],
        body: &[u8],
        _timeout_millis: u64,
    ) -> Result<u32, HostError> {
        let headers = headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), String::from_utf8_lossy(v).into_owned()))
            .collect();
        let mut sent = self.sent.borrow_mut();
        sent.push((upstream.to_owned(), headers, body.to_vec()));
        Ok(u32::try_from(sent.len()).unwrap_or(0))
    }
}

fn runtime(host: &Host, config: &str) -> Rc<Runtime> {
    let rt = Runtime::new(Settings::from_json(config.as_bytes()).unwrap(), host);
    rt.start(host).unwrap();
    Rc::new(rt)
}

fn one_request(host: &Host, rt: &Rc<Runtime>, path: &str) {
    *host.base.request_headers.borrow_mut() = vec![
        (":method".into(), b"GET".to_vec()),
        (":path".into(), path.as_bytes().to_vec()),
        ("x-user-id".into(), b"alice".to_vec()),
        // Not UTF-8: never a trap, lossily decoded.
        ("user-agent".into(), vec![0xff, b'a']),
    ];
    let mut s = Stream::new(Some(rt.clone()));
    s.on_request_headers(host);
    // A later filter changes the request: the record keeps what this phase saw.
    *host.base.request_headers.borrow_mut() = vec![(":path".into(), b"/changed".to_vec())];
    host.base
        .set_response(&[(":status", b"200"), ("x-ratelimit-remaining", b"3")]);
    s.on_response_headers(host);
    s.on_log(host);
    s.on_log(host);
}

fn records(host: &Host) -> Vec<String> {
    host.base
        .logs
        .borrow()
        .iter()
        .filter_map(|(_, m)| m.strip_prefix("audit-log: ").map(str::to_owned))
        .filter(|m| m.starts_with('{'))
        .collect()
}

#[test]
fn each_phase_reads_its_headers_once_and_on_log_writes_one_record() {
    let host = Host::default();
    let rt = runtime(&host, "{}");
    one_request(&host, &rt, "/a?token=t");
    assert_eq!(
        host.base.call_count("header_list"),
        2,
        "request + response map, once each"
    );
    assert_eq!(
        host.base.call_count("header"),
        1,
        "the breaker marker, read once in on_log"
    );
    let recs = records(&host);
    assert_eq!(recs.len(), 1, "on_log twice, one record");
    let rec: serde_json::Value = serde_json::from_str(&recs[0]).unwrap();
    assert_eq!(rec["path"], "/a?token=[REDACTED]");
    assert_eq!(rec["user_agent"], "\u{fffd}a");
    assert_eq!(rec["identity"]["subject"], "alice");
    assert_eq!(rec["decisions"]["ratelimit"], "allowed");
    assert_eq!(
        host.base.properties.borrow().get("audit_record").unwrap(),
        recs[0].as_bytes()
    );
    assert_eq!(host.base.metric("audit_log.records_written"), 1);
}

#[test]
fn a_stream_without_config_writes_nothing() {
    let host = Host::default();
    let mut s = Stream::new(None);
    s.on_request_headers(&host);
    s.on_log(&host);
    assert!(host.base.logs.borrow().is_empty());
    assert_eq!(host.base.call_count("header_list"), 0);
}

#[test]
fn workers_enqueue_and_the_exporter_ships_in_order() {
    let host = Host::default();
    host.register_queue("audit_log").unwrap();
    let worker = runtime(&host, r#"{"export": {"enabled": true}}"#);
    for i in 0..3 {
        one_request(&host, &worker, &format!("/{i}"));
    }
    let queued: Vec<String> = host
        .queue
        .borrow()
        .as_ref()
        .unwrap()
        .iter()
        .map(|i| String::from_utf8(i.clone()).unwrap())
        .collect();
    assert_eq!(queued, records(&host));
    let exporter = runtime(
        &host,
        r#"{"role": "exporter", "export": {"batch_max_records": 2, "upstream": "c"}}"#,
    );
    // Not yet the owner: a tick does not drain.
    exporter.on_tick(&host);
    assert!(host.sent.borrow().is_empty());
    exporter.on_queue_ready(&host);
    let sent = host.sent.borrow().clone();
    assert_eq!(sent.len(), 1, "one call in flight");
    assert_eq!(sent[0].0, "c");
    let body = String::from_utf8(sent[0].2.clone()).unwrap();
    assert_eq!(body.lines().collect::<Vec<_>>(), queued[..2]);
    exporter.on_http_call_response(&host, 1, 200);
    host.base.now_nanos.set(2_000_000_000);
    exporter.on_tick(&host);
    let sent = host.sent.borrow().clone();
    assert_eq!(sent.len(), 2);
    exporter.on_http_call_response(&host, 2, 200);
    assert_eq!(host.base.metric("audit_log.records_exported"), 3);
    let mut all = String::from_utf8(sent[0].2.clone()).unwrap();
    all.push_str(&String::from_utf8(sent[1].2.clone()).unwrap());
    assert!(verify(&all).ok());
}

#[test]
fn local_role_ships_its_own_buffer_and_logs_drops() {
    let host = Host::default();
    let rt = runtime(
        &host,
        r#"{"role": "local", "export": {"enabled": true, "batch_max_records": 1,
            "buffer_max_records": 1, "upstream": "127.0.0.1:9"}}"#,
    );
    one_request(&host, &rt, "/1");
    assert_eq!(host.sent.borrow().len(), 1, "a full batch goes at once");
    one_request(&host, &rt, "/2");
    assert_eq!(host.base.metric("audit_log.records_dropped"), 1);
    let warns: Vec<String> = host
        .base
        .logs
        .borrow()
        .iter()
        .filter(|(l, _)| *l == LogLevel::Warn)
        .map(|(_, m)| m.clone())
        .collect();
    assert!(
        warns[0].starts_with("audit-log-dropped: reason=buffer_full {"),
        "{warns:?}"
    );
    assert!(warns[0].contains("\"path\":\"/2\""));
}

#[test]
fn bodies_are_captured_up_to_the_cap_and_redacted() {
    let host = Host::default();
    let rt = runtime(&host, r#"{"bodies": {"request": true, "max_bytes": 40}}"#);
    let mut s = Stream::new(Some(rt.clone()));
    s.on_request_headers(&host);
    *host.body.borrow_mut() = br#"{"user":"a","#.to_vec();
    s.on_body(&host, BodyKind::Request, 12);
    *host.body.borrow_mut() = br#""password":"p"}"#.to_vec();
    s.on_body(&host, BodyKind::Request, 15);
    // Response capture is off: never read.
    s.on_body(&host, BodyKind::Response, 15);
    s.on_log(&host);
    let rec: serde_json::Value = serde_json::from_str(&records(&host)[0]).unwrap();
    assert_eq!(
        rec["request_body"],
        serde_json::json!({"bytes": 27, "json": {"user": "a", "password": "[REDACTED]"}})
    );
    assert!(rec.get("response_body").is_none());
}

#[test]
fn a_stream_refused_before_this_filter_still_gets_its_record() {
    // An earlier filter (jwt-rbac) answered locally: no request- or response-header callback
    // here; on_log reads what the host still has, the status from `response.code`.
    let host = Host::default();
    let rt = runtime(&host, "{}");
    *host.base.request_headers.borrow_mut() = vec![
        (":method".into(), b"GET".to_vec()),
        (":path".into(), b"/admin".to_vec()),
    ];
    host.base
        .properties
        .borrow_mut()
        .insert("response.code".into(), 401u64.to_le_bytes().to_vec());
    let mut s = Stream::new(Some(rt.clone()));
    s.on_log(&host);
    let rec: serde_json::Value = serde_json::from_str(&records(&host)[0]).unwrap();
    assert_eq!(rec["path"], "/admin");
    assert_eq!(rec["status"], 401);
    assert!(rec["decisions"].get("auth_reason").is_none(), "{rec}");

    // Envoy keeps the refusal's response for the log phase: its status and challenge (the
    // reason) are recorded, the challenge as sent to the client.
    let challenge =
        "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"token_expired\"";
    host.base.set_response(&[
        (":status", b"401"),
        ("www-authenticate", challenge.as_bytes()),
        ("content-type", b"application/json"),
    ]);
    let mut s = Stream::new(Some(rt));
    s.on_log(&host);
    let rec: serde_json::Value = serde_json::from_str(&records(&host)[1]).unwrap();
    assert_eq!(rec["path"], "/admin");
    assert_eq!(rec["status"], 401);
    assert_eq!(rec["decisions"]["auth_reason"], "token_expired", "{rec}");
}

#[test]
fn the_breaker_marker_is_read_as_the_host_has_it_at_log_time() {
    let host = Host::default();
    let rt = runtime(&host, "{}");
    // A client sends its own marker; circuit-breaker (after this filter) removes it and, while
    // open, sets its own. The record follows the host's map at log time, not the client.
    for (at_log, want) in [
        (Some(&b"open"[..]), serde_json::json!("open")),
        (None, serde_json::Value::Null),
    ] {
        *host.base.request_headers.borrow_mut() = vec![
            (":method".into(), b"GET".to_vec()),
            (":path".into(), b"/orders".to_vec()),
            ("x-circuit-breaker".into(), b"forged".to_vec()),
        ];
        let mut s = Stream::new(Some(rt.clone()));
        s.on_request_headers(&host);
        let mut later: HeaderList = vec![(":path".into(), b"/orders".to_vec())];
        if let Some(v) = at_log {
            later.push(("x-circuit-breaker".into(), v.to_vec()));
        }
        *host.base.request_headers.borrow_mut() = later;
        host.base.set_response(&[(":status", b"200")]);
        s.on_response_headers(&host);
        s.on_log(&host);
        let rec: serde_json::Value = serde_json::from_str(records(&host).last().unwrap()).unwrap();
        assert_eq!(rec["decisions"]["breaker"], want, "{rec}");
    }
}

#[test]
fn on_kong_on_log_never_dispatches_and_the_next_request_ships_the_batch() {
    let host = Host::default();
    let settings = Settings::from_json(
        br#"{"role": "local", "export": {"enabled": true, "batch_max_records": 1,
            "upstream": "127.0.0.1:9"}}"#,
    )
    .unwrap();
    let rt = Rc::new(Runtime::new(settings, &host).on_host(HostKind::Kong));
    assert_eq!(rt.host_refusal(), None, "role local runs on kong");
    one_request(&host, &rt, "/1");
    assert!(host.sent.borrow().is_empty(), "no dispatch from on_log");
    assert_eq!(rt.depth(), 1, "the record waits in the buffer");
    // The next request's own request phase sends it; the answer comes back to that stream.
    let mut next = Stream::new(Some(rt.clone()));
    assert!(
        next.on_request_headers(&host),
        "it waits for its batch's answer"
    );
    assert_eq!(host.sent.borrow().len(), 1);
    next.on_http_call_response(&host, 1, 200);
    assert_eq!(host.base.metric("audit_log.records_exported"), 1);
    assert_eq!(rt.depth(), 0);
}

#[test]
fn on_kong_an_answer_lost_with_its_stream_is_retried() {
    let host = Host::default();
    let settings = Settings::from_json(
        br#"{"role": "local", "export": {"enabled": true, "batch_max_records": 1,
            "upstream": "127.0.0.1:9", "timeout_ms": 1000}}"#,
    )
    .unwrap();
    let rt = Rc::new(Runtime::new(settings, &host).on_host(HostKind::Kong));
    one_request(&host, &rt, "/1");
    let mut first = Stream::new(Some(rt.clone()));
    first.on_request_headers(&host);
    assert_eq!(host.sent.borrow().len(), 1);
    // That stream ends without its answer; 2 s later another request gives the batch up and
    // sends it again after the backoff.
    host.base
        .now_nanos
        .set(host.base.now_nanos.get() + 2_100_000_000);
    Stream::new(Some(rt.clone())).on_request_headers(&host);
    assert_eq!(host.base.metric("audit_log.export_failures"), 1);
    assert_eq!(rt.depth(), 1, "nothing lost");
}

#[test]
fn on_kong_the_shared_queue_roles_are_refused_naming_role() {
    let default =
        Runtime::new(Settings::from_json(b"{}").unwrap(), &Host::default()).on_host(HostKind::Kong);
    assert_eq!(
        default.host_refusal(),
        None,
        "role worker without export logs only"
    );
    for role in ["worker", "exporter"] {
        let host = Host::default();
        let settings = Settings::from_json(
            format!(r#"{{"role": "{role}", "export": {{"enabled": true}}}}"#).as_bytes(),
        )
        .unwrap();
        let rt = Runtime::new(settings, &host).on_host(HostKind::Kong);
        let refusal = rt.host_refusal().unwrap();
        assert!(refusal.starts_with("role: "), "{refusal}");
        assert!(refusal.contains("use role local"), "{refusal}");
    }
}

//! `abi-probe`: the test guest of `host-harness`.
//!
//! It does nothing on its own. Tests drive it with request headers named `x-probe-op`, one
//! operation per header line, in order: `<phase>~<op>~<arg>~<arg>...` where `<phase>` is one of
//! `reqh reqb reqt resph respb respt log done callout` and the last argument may contain `~`.
//! Body ops use the request body in `req*` phases and `log`, the response body elsewhere.
//! Every result is reported with [`emit`]: an info log line `probe <key>=<value>` and, in the
//! header phases, a header `x-probe-<key>` on the map of that phase.
//!
//! Plugin configuration is `key=value` lines: `reject` (on_configure returns false),
//! `tick_ms=<n>`, `queue=<name>` (registered on configure; items are drained in on_queue_ready
//! and logged), `log=<message>`, `callout=<upstream>` (dispatch from on_configure),
//! `tick_callout=<upstream>` (dispatch from every on_tick), `tick_effective=<context id>`
//! (on_tick: `proxy_set_effective_context` then read the request's `:path`),
//! `tick_prop=<path>` (on_tick: read a property). VM configuration `callout=<upstream>`
//! dispatches from on_vm_start. Root results are logged as `probe <key>=<value>`; a root's
//! callout response logs `probe root-callout-result=<status|failed>`.
//!
//! The probe does not import `proxy_get_log_level`: Kong declares it with another signature
//! and would refuse to load the module (the harness tests it with a WAT guest).

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType, Status};
use std::time::{Duration, UNIX_EPOCH};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(ProbeRoot::default()) });
}}

#[derive(Default)]
struct ProbeRoot {
    queue: Option<u32>,
    tick_callout: Option<String>,
    tick_effective: Option<u32>,
    tick_prop: Option<String>,
}

fn root_log(key: &str, value: &str) {
    let _ = hostcalls::log(LogLevel::Info, &format!("probe {key}={value}"));
}

fn dispatch(upstream: &str) -> Result<u32, Status> {
    hostcalls::dispatch_http_call(
        upstream,
        vec![
            (":method", "GET"),
            (":path", "/root"),
            (":authority", "probe"),
        ],
        None,
        vec![],
        Duration::from_millis(1000),
    )
}

fn root_dispatch(key: &str, upstream: &str) {
    match dispatch(upstream) {
        Ok(token) => root_log(key, &format!("token:{token}")),
        Err(status) => root_log(key, &status_name(status)),
    }
}

impl Context for ProbeRoot {
    fn on_http_call_response(&mut self, _token: u32, num_headers: usize, _body: usize, _t: usize) {
        let status = hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")
            .ok()
            .flatten();
        let result = match (num_headers, status) {
            (0, None) => "failed".to_string(),
            (_, Some(s)) => s,
            (_, None) => "none".to_string(),
        };
        root_log("root-callout-result", &result);
    }
}

impl RootContext for ProbeRoot {
    fn on_vm_start(&mut self, _size: usize) -> bool {
        let config = self.get_vm_configuration().unwrap_or_default();
        let config = String::from_utf8_lossy(&config).into_owned();
        log::info!("vm start: {config}");
        if let Some(upstream) = config.strip_prefix("callout=") {
            root_dispatch("vm-start-callout", upstream.trim());
        }
        true
    }

    fn on_configure(&mut self, _size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        let config = String::from_utf8_lossy(&config).into_owned();
        for line in config.lines() {
            let (key, value) = line.split_once('=').unwrap_or((line, ""));
            match key.trim() {
                "reject" => {
                    log::error!("configuration rejected: reject");
                    return false;
                }
                "tick_ms" => {
                    let ms = value.trim().parse::<u64>().unwrap_or(0);
                    self.set_tick_period(Duration::from_millis(ms));
                }
                "queue" => match hostcalls::register_shared_queue(value.trim()) {
                    Ok(id) => {
                        log::info!("queue registered: {}={}", value.trim(), id);
                        self.queue = Some(id);
                    }
                    Err(status) => log::error!("queue register failed: {status:?}"),
                },
                "log" => log::warn!("{value}"),
                "callout" => root_dispatch("configure-callout", value.trim()),
                "tick_callout" => self.tick_callout = Some(value.trim().to_string()),
                "tick_effective" => self.tick_effective = value.trim().parse().ok(),
                "tick_prop" => self.tick_prop = Some(value.trim().to_string()),
                _ => {}
            }
        }
        log::info!("configured");
        true
    }

    fn on_tick(&mut self) {
        log::info!("tick at {}", now_nanos());
        if let Ok(id) = hostcalls::define_metric(MetricType::Counter, "probe_ticks") {
            let _ = hostcalls::increment_metric(id, 1);
        }
        if let Some(upstream) = self.tick_callout.clone() {
            root_dispatch("tick-callout", &upstream);
        }
        if let Some(ctx) = self.tick_effective {
            let set = match hostcalls::set_effective_context(ctx) {
                Ok(()) => "ok".to_string(),
                Err(status) => status_name(status),
            };
            root_log("tick-effective", &set);
            let path = match hostcalls::get_map_value(MapType::HttpRequestHeaders, ":path") {
                Ok(Some(v)) => v,
                Ok(None) => "<none>".into(),
                Err(status) => status_name(status),
            };
            root_log("tick-path", &path);
        }
        if let Some(path) = self.tick_prop.clone() {
            let segments: Vec<&str> = path.split('.').collect();
            let out = match hostcalls::get_property(segments) {
                Ok(Some(v)) => String::from_utf8_lossy(&v).into_owned(),
                Ok(None) => "<none>".into(),
                Err(status) => status_name(status),
            };
            root_log("tick-prop", &out);
        }
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        while let Ok(Some(item)) = hostcalls::dequeue_shared_queue(queue_id) {
            log::info!(
                "queue {} item: {}",
                queue_id,
                String::from_utf8_lossy(&item)
            );
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Probe {
            context_id,
            ops: Vec::new(),
            cas: None,
            resume_after_callout: true,
        }))
    }
}

struct Probe {
    context_id: u32,
    ops: Vec<String>,
    cas: Option<u32>,
    resume_after_callout: bool,
}

fn now_nanos() -> u128 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn map_for(phase: &str) -> Option<MapType> {
    match phase {
        "reqh" | "callout" => Some(MapType::HttpRequestHeaders),
        "resph" => Some(MapType::HttpResponseHeaders),
        "reqt" => Some(MapType::HttpRequestTrailers),
        "respt" => Some(MapType::HttpResponseTrailers),
        _ => None,
    }
}

fn status_name(status: Status) -> String {
    format!("{status:?}").to_lowercase()
}

fn level(name: &str) -> LogLevel {
    match name {
        "trace" => LogLevel::Trace,
        "debug" => LogLevel::Debug,
        "warn" => LogLevel::Warn,
        "error" => LogLevel::Error,
        "critical" => LogLevel::Critical,
        _ => LogLevel::Info,
    }
}

/// Report one result: a log line, plus a header in the header phases.
fn emit(phase: &str, key: &str, value: &[u8]) {
    let _ = hostcalls::log(
        LogLevel::Info,
        &format!("probe {key}={}", String::from_utf8_lossy(value)),
    );
    if let Some(map) = map_for(phase) {
        let _ = hostcalls::add_map_value_bytes(map, &format!("x-probe-{key}"), value);
    }
}

impl Probe {
    /// Runs the ops of `phase`; returns Pause if one of them asked for it.
    fn run(&mut self, phase: &str, body_size: usize) -> Action {
        let mut action = Action::Continue;
        let ops: Vec<String> = self.ops.clone();
        for op in ops {
            let mut parts = op.splitn(2, '~');
            if parts.next() != Some(phase) {
                continue;
            }
            let rest = parts.next().unwrap_or("");
            let (name, args) = rest.split_once('~').unwrap_or((rest, ""));
            if self.op(phase, name, args, body_size) == Action::Pause {
                action = Action::Pause;
            }
        }
        action
    }

    fn op(&mut self, phase: &str, name: &str, args: &str, body_size: usize) -> Action {
        let map = map_for(phase).unwrap_or(MapType::HttpRequestHeaders);
        let arg2 = || args.split_once('~').unwrap_or((args, ""));
        match name {
            "pause" => return Action::Pause,
            "log" => {
                let (lvl, msg) = arg2();
                let _ = hostcalls::log(level(lvl), msg);
            }
            "stdout" => println!("{args}"),
            "stderr" => eprintln!("{args}"),
            "panic" => {
                #[allow(clippy::panic)]
                {
                    panic!("probe panic: {args}");
                }
            }
            "add" => {
                let (k, v) = arg2();
                let _ = hostcalls::add_map_value(map, k, v);
            }
            "radd" => {
                let (k, v) = arg2();
                let _ = hostcalls::add_map_value(MapType::HttpResponseHeaders, k, v);
            }
            "set" => {
                let (k, v) = arg2();
                let _ = hostcalls::set_map_value(map, k, Some(v));
            }
            "del" => {
                let _ = hostcalls::set_map_value(map, args, None);
            }
            "get" => match hostcalls::get_map_value_bytes(map, args) {
                Ok(Some(v)) => emit(phase, "got", &v),
                _ => emit(phase, "got", b"<none>"),
            },
            "count" => {
                let map = match args {
                    "response" => MapType::HttpResponseHeaders,
                    "callout" => MapType::HttpCallResponseHeaders,
                    _ => map,
                };
                let n = hostcalls::get_map_bytes(map).map(|m| m.len()).unwrap_or(0);
                emit(phase, "count", n.to_string().as_bytes());
            }
            "replace-all" => {
                let pairs: Vec<(&str, &str)> = args
                    .split('~')
                    .filter_map(|kv| kv.split_once('='))
                    .collect();
                let _ = hostcalls::set_map(map, pairs);
            }
            "respond" => {
                let (code, body) = arg2();
                let code = code.parse().unwrap_or(500);
                let _ = hostcalls::send_http_response(
                    code,
                    vec![("x-probe", "local"), ("x-probe", "again")],
                    Some(body.as_bytes()),
                );
            }
            "body" => {
                let buffer = if phase.starts_with("req") || phase == "log" {
                    BufferType::HttpRequestBody
                } else {
                    BufferType::HttpResponseBody
                };
                let (mode, text) = arg2();
                match mode {
                    "read" => {
                        let b = hostcalls::get_buffer(buffer, 0, body_size)
                            .ok()
                            .flatten()
                            .unwrap_or_default();
                        let _ = hostcalls::log(
                            LogLevel::Info,
                            &format!("probe body={}", String::from_utf8_lossy(&b)),
                        );
                    }
                    "replace" => {
                        let _ = hostcalls::set_buffer(buffer, 0, body_size, text.as_bytes());
                    }
                    "append" => {
                        let _ = hostcalls::set_buffer(buffer, body_size, 0, text.as_bytes());
                    }
                    "prepend" => {
                        let _ = hostcalls::set_buffer(buffer, 0, 0, text.as_bytes());
                    }
                    _ => {}
                }
            }
            "shared-get" => match hostcalls::get_shared_data(args) {
                Ok((value, cas)) => {
                    self.cas = cas;
                    emit(
                        phase,
                        "shared-value",
                        &value.unwrap_or_else(|| b"<none>".to_vec()),
                    );
                    emit(phase, "shared-cas", cas.unwrap_or(0).to_string().as_bytes());
                }
                Err(status) => emit(phase, "shared-get-status", status_name(status).as_bytes()),
            },
            "shared-set" | "shared-set-nocas" | "shared-delete" => {
                let (key, value) = arg2();
                let cas = if name == "shared-set-nocas" {
                    None
                } else {
                    self.cas
                };
                let value = if name == "shared-delete" {
                    None
                } else {
                    Some(value.as_bytes())
                };
                let result = match hostcalls::set_shared_data(key, value, cas) {
                    Ok(()) => "ok".to_string(),
                    Err(status) => status_name(status),
                };
                emit(phase, "shared-set-status", result.as_bytes());
            }
            "incr" => {
                let mut attempts = 0u32;
                let outcome = loop {
                    attempts += 1;
                    if attempts > 1000 {
                        break "gave-up".to_string();
                    }
                    let (value, cas) = match hostcalls::get_shared_data(args) {
                        Ok(v) => v,
                        Err(status) => break status_name(status),
                    };
                    let n: u64 = value
                        .and_then(|v| String::from_utf8(v).ok())
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    let next = (n + 1).to_string();
                    match hostcalls::set_shared_data(args, Some(next.as_bytes()), cas) {
                        Ok(()) => break next,
                        Err(Status::CasMismatch) => continue,
                        Err(status) => break status_name(status),
                    }
                };
                emit(phase, "incr", outcome.as_bytes());
            }
            "resolve" => {
                let (vm, queue) = arg2();
                let out = match hostcalls::resolve_shared_queue(vm, queue) {
                    Ok(Some(id)) => id.to_string(),
                    Ok(None) => "none".into(),
                    Err(status) => status_name(status),
                };
                emit(phase, "queue-id", out.as_bytes());
            }
            "register" => {
                let out = match hostcalls::register_shared_queue(args) {
                    Ok(id) => id.to_string(),
                    Err(status) => status_name(status),
                };
                emit(phase, "queue-id", out.as_bytes());
            }
            "enqueue" => {
                let (id, value) = arg2();
                let id = id.parse().unwrap_or(0);
                let out = match hostcalls::enqueue_shared_queue(id, Some(value.as_bytes())) {
                    Ok(()) => "ok".into(),
                    Err(status) => status_name(status),
                };
                emit(phase, "enqueue", out.as_bytes());
            }
            "dequeue" => {
                let out = match hostcalls::dequeue_shared_queue(args.parse().unwrap_or(0)) {
                    Ok(Some(v)) => v,
                    Ok(None) => b"<empty>".to_vec(),
                    Err(status) => status_name(status).into_bytes(),
                };
                emit(phase, "dequeue", &out);
            }
            "callout" => {
                let mut it = args.splitn(3, '~');
                let upstream = it.next().unwrap_or("");
                let path = it.next().unwrap_or("/");
                let timeout = it.next().and_then(|t| t.parse().ok()).unwrap_or(1000);
                match hostcalls::dispatch_http_call(
                    upstream,
                    vec![
                        (":method", "POST"),
                        (":path", path),
                        (":authority", "probe"),
                    ],
                    Some(b"ping"),
                    vec![("x-trailer", "t")],
                    Duration::from_millis(timeout),
                ) {
                    Ok(token) => {
                        emit(phase, "callout-token", token.to_string().as_bytes());
                        return Action::Pause;
                    }
                    Err(status) => emit(phase, "callout-status", status_name(status).as_bytes()),
                }
            }
            "metric" => {
                let mut it = args.splitn(3, '~');
                let kind = match it.next().unwrap_or("") {
                    "gauge" => MetricType::Gauge,
                    "histogram" => MetricType::Histogram,
                    _ => MetricType::Counter,
                };
                let metric = it.next().unwrap_or("");
                let how = it.next().unwrap_or("");
                let out = match hostcalls::define_metric(kind, metric) {
                    Ok(id) => {
                        let result = if let Some(v) = how.strip_prefix("record:") {
                            hostcalls::record_metric(id, v.parse().unwrap_or(0))
                        } else {
                            hostcalls::increment_metric(id, how.parse().unwrap_or(1))
                        };
                        match result.and_then(|()| hostcalls::get_metric(id)) {
                            Ok(v) => v.to_string(),
                            Err(status) => status_name(status),
                        }
                    }
                    Err(status) => status_name(status),
                };
                emit(phase, "metric", out.as_bytes());
            }
            "prop-get" => {
                let path: Vec<&str> = args.split('.').collect();
                match hostcalls::get_property(path) {
                    Ok(Some(v)) => emit(phase, "prop", &v),
                    Ok(None) => emit(phase, "prop", b"<none>"),
                    Err(status) => emit(phase, "prop", status_name(status).as_bytes()),
                }
            }
            "prop-set" => {
                let (path, value) = arg2();
                let path: Vec<&str> = path.split('.').collect();
                let _ = hostcalls::set_property(path, Some(value.as_bytes()));
            }
            "foreign" => {
                let (function, arg) = arg2();
                match hostcalls::call_foreign_function(function, Some(arg.as_bytes())) {
                    Ok(Some(v)) => emit(phase, "foreign", &v),
                    Ok(None) => emit(phase, "foreign", b"<none>"),
                    Err(status) => emit(phase, "foreign-status", status_name(status).as_bytes()),
                }
            }
            "time" => emit(phase, "time", now_nanos().to_string().as_bytes()),
            "wasi-time" => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                emit(phase, "wasi-time", nanos.to_string().as_bytes());
            }
            "random" => {
                let mut map = std::collections::HashMap::new();
                map.insert(1u8, 2u8);
                emit(phase, "random", map.len().to_string().as_bytes());
            }
            "env" => {
                let vars: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
                emit(phase, "env", vars.join(",").as_bytes());
            }
            "noresume" => self.resume_after_callout = false,
            "dispatch-status" => {
                let out = hostcalls::get_map_value(MapType::HttpCallResponseHeaders, args)
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| "<none>".into());
                emit("reqh", "callout-header", out.as_bytes());
            }
            "effective" => {
                let out = match hostcalls::set_effective_context(args.parse().unwrap_or(0)) {
                    Ok(()) => "ok".to_string(),
                    Err(status) => status_name(status),
                };
                emit(phase, "effective", out.as_bytes());
            }
            "tick-period" => {
                let ms = args.parse().unwrap_or(0);
                let out = match hostcalls::set_tick_period(Duration::from_millis(ms)) {
                    Ok(()) => "ok".to_string(),
                    Err(status) => status_name(status),
                };
                emit(phase, "tick-period", out.as_bytes());
            }
            "body-slice" => {
                let buffer = if phase.starts_with("req") || phase == "log" {
                    BufferType::HttpRequestBody
                } else {
                    BufferType::HttpResponseBody
                };
                let (start, max) = arg2();
                let out = match hostcalls::get_buffer(
                    buffer,
                    start.parse().unwrap_or(0),
                    max.parse().unwrap_or(0),
                ) {
                    Ok(Some(b)) => b,
                    Ok(None) => b"<none>".to_vec(),
                    Err(status) => status_name(status).into_bytes(),
                };
                let _ = hostcalls::log(
                    LogLevel::Info,
                    &format!("probe body-slice={}", String::from_utf8_lossy(&out)),
                );
            }
            "pairs" => {
                let map = match args {
                    "response" => MapType::HttpResponseHeaders,
                    "callout" => MapType::HttpCallResponseHeaders,
                    _ => map,
                };
                let out = match hostcalls::get_map_bytes(map) {
                    Ok(pairs) => pairs
                        .iter()
                        .map(|(k, v)| format!("{k}={}", String::from_utf8_lossy(v)))
                        .collect::<Vec<_>>()
                        .join(","),
                    Err(status) => status_name(status),
                };
                let _ = hostcalls::log(LogLevel::Info, &format!("probe pairs={out}"));
            }
            "resume" => {
                let _ = if args == "response" {
                    hostcalls::resume_http_response()
                } else {
                    hostcalls::resume_http_request()
                };
            }
            "close" => {
                let _ = hostcalls::reset_http_request();
            }
            "done" => {
                let _ = hostcalls::done();
            }
            "grpc" => {
                let out = match hostcalls::dispatch_grpc_call(
                    args,
                    "svc",
                    "method",
                    vec![],
                    None,
                    Duration::from_secs(1),
                ) {
                    Ok(token) => token.to_string(),
                    Err(status) => status_name(status),
                };
                emit(phase, "grpc", out.as_bytes());
            }
            "context" => emit(phase, "context", self.context_id.to_string().as_bytes()),
            _ => {
                let _ = hostcalls::log(LogLevel::Error, &format!("probe: unknown op {name}"));
            }
        }
        Action::Continue
    }
}

impl Context for Probe {
    fn on_http_call_response(
        &mut self,
        _token: u32,
        num_headers: usize,
        body_size: usize,
        num_trailers: usize,
    ) {
        if num_headers == 0 {
            emit("reqh", "callout-result", b"failed");
        } else {
            let status = self
                .get_http_call_response_header_bytes(":status")
                .unwrap_or_default();
            emit("reqh", "callout-result", &status);
            let body = self
                .get_http_call_response_body(0, body_size)
                .unwrap_or_default();
            emit("reqh", "callout-body", &body);
            // Kong has no callout trailer map (reading it is BadArgument, which the SDK turns
            // into a panic) and always passes 0 trailers.
            let n = if num_trailers > 0 {
                self.get_http_call_response_trailers_bytes().len()
            } else {
                0
            };
            emit("reqh", "callout-trailers", n.to_string().as_bytes());
        }
        let _ = self.run("callout", 0);
        if self.resume_after_callout {
            let _ = hostcalls::resume_http_request();
        }
    }

    fn on_done(&mut self) -> bool {
        let _ = self.run("done", 0);
        true
    }
}

impl HttpContext for Probe {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.ops = self
            .get_http_request_headers_bytes()
            .into_iter()
            .filter(|(name, _)| name == "x-probe-op")
            .map(|(_, value)| String::from_utf8_lossy(&value).into_owned())
            .collect();
        emit(
            "reqh",
            "eos",
            if end_of_stream { b"true" } else { b"false" },
        );
        self.run("reqh", 0)
    }

    fn on_http_request_body(&mut self, body_size: usize, _end_of_stream: bool) -> Action {
        self.run("reqb", body_size)
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        self.run("reqt", 0)
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        emit(
            "resph",
            "eos",
            if end_of_stream { b"true" } else { b"false" },
        );
        self.run("resph", 0)
    }

    fn on_http_response_body(&mut self, body_size: usize, _end_of_stream: bool) -> Action {
        self.run("respb", body_size)
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        self.run("respt", 0)
    }

    fn on_log(&mut self) {
        let _ = self.run("log", 0);
    }
}

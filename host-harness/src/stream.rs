//! [`HttpStream`]: one HTTP context, driven phase by phase by the test.

use crate::codec;
use crate::error::HarnessError;
use crate::harness::Inner;
use crate::profile::Phase;
use crate::state::{HostConfig, StreamState};
use crate::vm::Vm;
use crate::{
    Action, Crossings, Headers, LocalResponse, LogEntry, Profile, StreamEvent, StreamType,
};
use std::sync::Arc;
use wasmtime::Val;

/// One HTTP stream (an HTTP context of one worker). Cheap to move between threads.
pub struct HttpStream {
    inner: Arc<Inner>,
    worker: usize,
    id: u32,
}

fn to_headers<K: AsRef<str>, V: AsRef<[u8]>>(headers: &[(K, V)]) -> Headers {
    headers
        .iter()
        .map(|(k, v)| (k.as_ref().to_ascii_lowercase(), v.as_ref().to_vec()))
        .collect()
}

/// After a callback: if the filter sent a local response before the response started, run the
/// filter's response callbacks on it, as Envoy does.
pub(crate) fn replay_local_response(
    config: &HostConfig,
    vm: &mut Vm,
    ctx: u32,
) -> Result<(), HarnessError> {
    let Some(stream) = vm.state().streams.get_mut(&ctx) else {
        return Ok(());
    };
    if !stream.local_response_pending || stream.response_headers.is_some() {
        stream.local_response_pending = false;
        return Ok(());
    }
    stream.local_response_pending = false;
    let Some(local) = stream.local_response.clone() else {
        return Ok(());
    };
    let mut headers: Headers = vec![(":status".into(), local.status.to_string().into_bytes())];
    if config.profile.is_kong() {
        // ngx_http_wasm_local_response.c, ngx_http_wasm_flush_local_response: each header is
        // SET (replace) into `r->headers_out.headers`, which keeps what the filter added during
        // the request; a repeated name keeps its last value.
        headers.append(&mut std::mem::take(&mut stream.kong_early_response));
        for (name, value) in &local.headers {
            crate::host::headers::kong_generic_set(&mut headers, name, value.clone());
        }
    } else {
        headers.extend(local.headers.iter().cloned());
    }
    if !local.body.is_empty() && !headers.iter().any(|(n, _)| n == "content-type") {
        headers.push(("content-type".into(), b"text/plain".to_vec()));
    }
    headers.push((
        "content-length".into(),
        local.body.len().to_string().into_bytes(),
    ));
    stream.response_headers = Some(headers);
    stream.response_body = local.body.clone();
    let n = stream.response_headers.as_ref().map_or(0, Vec::len);
    let eos = local.body.is_empty() && !config.profile.is_kong();
    vm.call(
        "proxy_on_response_headers",
        ctx,
        Phase::ResponseHeaders,
        &[
            Val::I32(ctx as i32),
            Val::I32(n as i32),
            Val::I32(eos as i32),
        ],
    )?;
    if !local.body.is_empty() {
        let len = local.body.len();
        vm.call(
            "proxy_on_response_body",
            ctx,
            Phase::ResponseBody,
            &[Val::I32(ctx as i32), Val::I32(len as i32), Val::I32(1)],
        )?;
    }
    if let Some(stream) = vm.state().streams.get_mut(&ctx) {
        let headers = stream.response_headers.clone().unwrap_or_default();
        let body = std::mem::take(&mut stream.response_body);
        stream.forwarded_response_body.extend_from_slice(&body);
        if let Some(lr) = stream.local_response.as_mut() {
            lr.status = headers
                .iter()
                .find(|(n, _)| n == ":status")
                .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse().ok())
                .unwrap_or(lr.status);
            lr.headers = headers
                .into_iter()
                .filter(|(n, _)| n != ":status")
                .collect();
            lr.body = stream.forwarded_response_body.clone();
        }
    }
    Ok(())
}

impl HttpStream {
    pub(crate) fn new(inner: Arc<Inner>, worker: usize, id: u32) -> HttpStream {
        HttpStream { inner, worker, id }
    }

    /// Context id of this stream.
    pub fn context_id(&self) -> u32 {
        self.id
    }

    /// Worker index this stream runs on.
    pub fn worker(&self) -> usize {
        self.worker
    }

    /// VM-boundary crossings in this stream's context, from its `proxy_on_context_create`
    /// through [`Self::finish`] (on_log, on_done, on_delete); kept after the stream is deleted.
    pub fn crossings(&self) -> Crossings {
        self.inner
            .vm(self.worker)
            .ok()
            .and_then(|mut vm| vm.state().crossings.contexts.get(&self.id).cloned())
            .unwrap_or_default()
    }

    fn profile(&self) -> Profile {
        self.inner.config.profile
    }

    fn with<R>(&self, f: impl FnOnce(&mut StreamState) -> R) -> Result<R, HarnessError> {
        let mut vm = self.inner.vm(self.worker)?;
        let stream = vm
            .state()
            .streams
            .get_mut(&self.id)
            .ok_or_else(|| HarnessError::Usage(format!("stream {} was deleted", self.id)))?;
        Ok(f(stream))
    }

    fn read<R: Default>(&self, f: impl FnOnce(&StreamState) -> R) -> R {
        self.with(|s| f(s)).unwrap_or_default()
    }

    /// Calls a stream callback, applies the profile's Pause rule, replays a local response,
    /// and delivers queue notifications.
    fn drive(&self, export: &str, phase: Phase, args: &[Val]) -> Result<Action, HarnessError> {
        let mut vm = self.inner.vm(self.worker)?;
        let raw = vm.call(export, self.id, phase, args)?.unwrap_or(0);
        let mut action = Action::from_raw(raw);
        let kong = self.profile().is_kong();
        if kong {
            action = kong_action(&mut vm, self.id, phase, action);
        } else if action == Action::Pause && !self.profile().may_pause(phase) {
            action = Action::Continue;
        }
        if let Some(stream) = vm.state().streams.get_mut(&self.id) {
            let paused = action != Action::Continue;
            match phase {
                Phase::RequestBody => {
                    stream.request_body_paused = paused;
                    if !paused {
                        let body = std::mem::take(&mut stream.request_body);
                        stream.forwarded_request_body.extend_from_slice(&body);
                    }
                }
                Phase::ResponseBody if stream.kong_body_override.is_some() => {
                    // The local response sent in response headers replaced the body.
                    stream.response_body.clear();
                    stream.response_body_paused = false;
                }
                Phase::ResponseBody => {
                    stream.response_body_paused = paused;
                    if !paused {
                        let body = std::mem::take(&mut stream.response_body);
                        stream.forwarded_response_body.extend_from_slice(&body);
                    }
                }
                _ => {}
            }
        }
        replay_local_response(&self.inner.config, &mut vm, self.id)?;
        drop(vm);
        self.inner.deliver_queue_ready()?;
        Ok(action)
    }

    fn eos_for_headers(&self, eos: bool) -> bool {
        // ngx_http_proxy_wasm.c, ngx_http_proxy_wasm_on_request_headers and
        // ngx_http_proxy_wasm_on_response_headers pass `eof: 0` (9136e463, 96b4e27e).
        eos && !self.profile().is_kong()
    }

    /// Sets a property of this stream (dotted path, e.g. `source.address`, `request.id`).
    /// Integers are little-endian 8-byte values, as Envoy encodes them.
    pub fn set_property(&self, path: &str, value: impl AsRef<[u8]>) -> Result<(), HarnessError> {
        let segments: Vec<&str> = path.split('.').collect();
        self.set_property_path(&segments, value)
    }

    /// Sets a property of this stream by segments.
    pub fn set_property_path(
        &self,
        segments: &[&str],
        value: impl AsRef<[u8]>,
    ) -> Result<(), HarnessError> {
        let key = codec::property_key(segments);
        let value = value.as_ref().to_vec();
        self.with(|s| {
            s.properties.insert(key, value);
        })
    }

    /// A property stored for this stream (by the test or the guest), else harness-wide (None if
    /// absent). Kong computes some paths from the request instead (see
    /// [`crate::host::properties`]).
    pub fn property(&self, path: &str) -> Option<Vec<u8>> {
        let segments: Vec<&str> = path.split('.').collect();
        let key = codec::property_key(&segments);
        self.read(|s| s.properties.get(&key).cloned())
            .or_else(|| self.inner.world().properties.get(&key).cloned())
    }

    /// `on_request_headers`. Names are lowercased; values are bytes. On Kong the guest always
    /// sees `end_of_stream = false`, and the map becomes nginx's header list (pseudo-headers
    /// apart: `:authority` reads as [`crate::HarnessBuilder::kong_server`], put the client's
    /// Host in a `host` line); see [`Self::upstream_request_headers`].
    pub fn send_request_headers<K: AsRef<str>, V: AsRef<[u8]>>(
        &mut self,
        headers: &[(K, V)],
        end_of_stream: bool,
    ) -> Result<Action, HarnessError> {
        let headers = to_headers(headers);
        let kong = self.profile().is_kong();
        // ngx_http_wasm_headers_request.c, ngx_http_wasm_req_headers_count: the list's
        // elements (pseudo-headers are not in it).
        let n = if kong {
            headers.iter().filter(|(k, _)| !k.starts_with(':')).count()
        } else {
            headers.len()
        };
        self.with(|s| {
            if kong {
                let list = crate::host::ngx_headers::NgxRequest::new(&headers);
                s.request_headers = Some(list.view());
                s.kong_request = Some(list);
            } else {
                s.request_headers = Some(headers);
            }
        })?;
        let eos = self.eos_for_headers(end_of_stream);
        self.drive(
            "proxy_on_request_headers",
            Phase::RequestHeaders,
            &[
                Val::I32(self.id as i32),
                Val::I32(n as i32),
                Val::I32(eos as i32),
            ],
        )
    }

    /// `on_request_body` with one chunk. While the filter pauses, chunks accumulate (Envoy
    /// buffers); on Continue the buffer is forwarded upstream ([`Self::request_body`]).
    /// Kong reads the whole body first: chunks without `end_of_stream` are only buffered (no
    /// callback, Continue), then `on_request_body` runs once with the whole body and
    /// `end_of_stream = true` (ngx_http_proxy_wasm.c, ngx_http_proxy_wasm_on_request_body).
    pub fn send_request_body(
        &mut self,
        chunk: impl AsRef<[u8]>,
        end_of_stream: bool,
    ) -> Result<Action, HarnessError> {
        let chunk = chunk.as_ref().to_vec();
        let kong = self.profile().is_kong();
        let size = self.with(|s| {
            if !s.request_body_paused && !s.kong_body_reading {
                s.request_body.clear();
            }
            s.request_body.extend_from_slice(&chunk);
            s.kong_body_reading = kong && !end_of_stream;
            s.request_body.len()
        })?;
        if kong && !end_of_stream {
            return Ok(Action::Continue);
        }
        self.drive(
            "proxy_on_request_body",
            Phase::RequestBody,
            &[
                Val::I32(self.id as i32),
                Val::I32(size as i32),
                Val::I32(end_of_stream as i32),
            ],
        )
    }

    /// `on_request_trailers` (never called on Kong: the trailers are stored, Continue returned).
    pub fn send_request_trailers<K: AsRef<str>, V: AsRef<[u8]>>(
        &mut self,
        trailers: &[(K, V)],
    ) -> Result<Action, HarnessError> {
        let trailers = to_headers(trailers);
        let n = trailers.len();
        self.with(|s| s.request_trailers = Some(trailers))?;
        // ngx_proxy_wasm.c: no step ever runs proxy_on_request_trailers.
        if self.profile().is_kong() {
            return Ok(Action::Continue);
        }
        self.drive(
            "proxy_on_request_trailers",
            Phase::RequestTrailers,
            &[Val::I32(self.id as i32), Val::I32(n as i32)],
        )
    }

    /// `on_response_headers` (`:status` belongs in the headers). Kong: `end_of_stream` false;
    /// response headers the filter set during the request come first (they were already in
    /// `r->headers_out.headers`).
    pub fn send_response_headers<K: AsRef<str>, V: AsRef<[u8]>>(
        &mut self,
        headers: &[(K, V)],
        end_of_stream: bool,
    ) -> Result<Action, HarnessError> {
        let mut headers = to_headers(headers);
        let kong = self.profile().is_kong();
        let n = self.with(|s| {
            if kong {
                let (pseudo, rest): (Headers, Headers) =
                    headers.drain(..).partition(|(k, _)| k.starts_with(':'));
                headers = pseudo;
                headers.append(&mut std::mem::take(&mut s.kong_early_response));
                headers.extend(rest);
            }
            // ngx_http_wasm_resp_headers_count: the list (`:status` is not in it).
            let n = if kong {
                headers.iter().filter(|(k, _)| !k.starts_with(':')).count()
            } else {
                headers.len()
            };
            s.response_headers = Some(headers);
            n
        })?;
        let eos = self.eos_for_headers(end_of_stream);
        self.drive(
            "proxy_on_response_headers",
            Phase::ResponseHeaders,
            &[
                Val::I32(self.id as i32),
                Val::I32(n as i32),
                Val::I32(eos as i32),
            ],
        )
    }

    /// `on_response_body` with one chunk (buffered while the filter pauses). Kong: after a
    /// Pause the engine buffers the rest of the body without calling the filter (Pause is
    /// returned) and calls it once more at the end of the stream (ngx_proxy_wasm.c, action2rc
    /// `resp_buffering`); a Pause then is logged and ignored (ngx_http_proxy_wasm.c,
    /// ngx_http_proxy_wasm_on_response_body). After a local response sent during response
    /// headers, the upstream body is replaced by it.
    pub fn send_response_body(
        &mut self,
        chunk: impl AsRef<[u8]>,
        end_of_stream: bool,
    ) -> Result<Action, HarnessError> {
        let chunk = chunk.as_ref().to_vec();
        let kong = self.profile().is_kong();
        let (size, buffering) = self.with(|s| {
            if !s.response_body_paused {
                s.response_body.clear();
            }
            s.response_body.extend_from_slice(&chunk);
            (s.response_body.len(), s.kong_response_buffering)
        })?;
        if kong && buffering && !end_of_stream {
            return Ok(Action::Pause);
        }
        self.drive(
            "proxy_on_response_body",
            Phase::ResponseBody,
            &[
                Val::I32(self.id as i32),
                Val::I32(size as i32),
                Val::I32(end_of_stream as i32),
            ],
        )
    }

    /// `on_response_trailers` (never called on Kong).
    pub fn send_response_trailers<K: AsRef<str>, V: AsRef<[u8]>>(
        &mut self,
        trailers: &[(K, V)],
    ) -> Result<Action, HarnessError> {
        let trailers = to_headers(trailers);
        let n = trailers.len();
        self.with(|s| s.response_trailers = Some(trailers))?;
        // ngx_proxy_wasm.c, ngx_proxy_wasm_run_step: the RESP_TRAILERS step needs
        // NGX_WASM_RESPONSE_TRAILERS, which no build defines.
        if self.profile().is_kong() {
            return Ok(Action::Continue);
        }
        self.drive(
            "proxy_on_response_trailers",
            Phase::ResponseTrailers,
            &[Val::I32(self.id as i32), Val::I32(n as i32)],
        )
    }

    /// `on_log` (the access-log phase: absent maps read as NotFound).
    pub fn log(&mut self) -> Result<(), HarnessError> {
        self.drive("proxy_on_log", Phase::Log, &[Val::I32(self.id as i32)])
            .map(|_| ())
    }

    /// `on_done`; returns the guest's answer.
    pub fn done(&mut self) -> Result<bool, HarnessError> {
        let mut vm = self.inner.vm(self.worker)?;
        let r = vm.call(
            "proxy_on_done",
            self.id,
            Phase::Done,
            &[Val::I32(self.id as i32)],
        )?;
        Ok(r != Some(0))
    }

    /// `on_delete`; the stream's host state is dropped afterwards.
    pub fn delete(&mut self) -> Result<(), HarnessError> {
        let mut vm = self.inner.vm(self.worker)?;
        vm.call(
            "proxy_on_delete",
            self.id,
            Phase::Delete,
            &[Val::I32(self.id as i32)],
        )?;
        vm.state().streams.remove(&self.id);
        Ok(())
    }

    /// Ends the stream as the gateway does: Envoy `on_log`, `on_done`, `on_delete`; Kong
    /// `on_done`, `on_log` (both in the LOG step, ngx_proxy_wasm.c ngx_proxy_wasm_on_log calls
    /// proxy_on_done first for ABI < vNEXT), then `on_delete` (DONE step,
    /// ngx_proxy_wasm_on_done calls `proxy_on_context_finalize` = proxy_on_delete).
    pub fn finish(&mut self) -> Result<(), HarnessError> {
        if self.profile().is_kong() {
            self.done()?;
            self.log()?;
        } else {
            self.log()?;
            self.done()?;
        }
        self.delete()
    }

    // ---- observations ----

    /// Request headers as the filter sees them now (pseudo-headers included). What the
    /// upstream receives is [`Self::upstream_request_headers`].
    pub fn request_headers(&self) -> Headers {
        self.read(|s| s.request_headers.clone().unwrap_or_default())
    }

    /// The request header lines the upstream receives (no pseudo-headers).
    ///
    /// Envoy: the current request map. Kong: every element of nginx's header list in order,
    /// removed ones included: ngx_wasm_module only marks a removed header (`hash = 0`) and
    /// nginx's proxy module (ngx_http_proxy_create_request) forwards every element. So a
    /// removed client header still reaches the upstream with its last value; a replaced one
    /// shows its new value in its original place (with duplicates, every line is forwarded
    /// although the filter sees none); added lines and `set_header_map_pairs` lines follow
    /// the client's. See [`crate::host::ngx_headers`] for the exact rules.
    pub fn upstream_request_headers(&self) -> Headers {
        self.read(|s| match &s.kong_request {
            Some(list) => list.upstream(),
            None => s
                .request_headers
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter(|(n, _)| !n.starts_with(':'))
                .collect(),
        })
    }

    /// Response headers as the filter left them.
    pub fn response_headers(&self) -> Headers {
        self.read(|s| s.response_headers.clone().unwrap_or_default())
    }

    /// Request trailers as the filter left them.
    pub fn request_trailers(&self) -> Headers {
        self.read(|s| s.request_trailers.clone().unwrap_or_default())
    }

    /// Response trailers as the filter left them.
    pub fn response_trailers(&self) -> Headers {
        self.read(|s| s.response_trailers.clone().unwrap_or_default())
    }

    /// First value of a request header.
    pub fn request_header(&self, name: &str) -> Option<Vec<u8>> {
        first(&self.request_headers(), name)
    }

    /// Every value of a request header, in order.
    pub fn request_header_values(&self, name: &str) -> Vec<Vec<u8>> {
        all(&self.request_headers(), name)
    }

    /// First value of a response header.
    pub fn response_header(&self, name: &str) -> Option<Vec<u8>> {
        first(&self.response_headers(), name)
    }

    /// Every value of a response header, in order.
    pub fn response_header_values(&self, name: &str) -> Vec<Vec<u8>> {
        all(&self.response_headers(), name)
    }

    /// Request body bytes the filter let through.
    pub fn request_body(&self) -> Vec<u8> {
        self.read(|s| s.forwarded_request_body.clone())
    }

    /// Response body bytes the filter let through.
    pub fn response_body(&self) -> Vec<u8> {
        self.read(|s| s.forwarded_response_body.clone())
    }

    /// Request body bytes the filter holds back (it paused).
    pub fn buffered_request_body(&self) -> Vec<u8> {
        self.read(|s| {
            if s.request_body_paused {
                s.request_body.clone()
            } else {
                Vec::new()
            }
        })
    }

    /// The local response the filter sent, after its response callbacks ran on it.
    pub fn local_response(&self) -> Option<LocalResponse> {
        self.read(|s| s.local_response.clone())
    }

    /// Everything the filter did to the stream, in order.
    pub fn events(&self) -> Vec<StreamEvent> {
        self.read(|s| s.events.clone())
    }

    /// Whether the request was resumed: the filter called `proxy_continue_stream(HttpRequest)`
    /// (on Kong also `HttpResponse`, which resumes the request there), or Kong's engine
    /// resumed it after its last callout ([`StreamEvent::EngineResumed`]).
    pub fn request_resumed(&self) -> bool {
        let kong = self.profile().is_kong();
        self.events().iter().any(|e| match e {
            StreamEvent::Resumed(StreamType::Request)
            | StreamEvent::EngineResumed(StreamType::Request) => true,
            StreamEvent::Resumed(StreamType::Response) => kong,
            _ => false,
        })
    }

    /// Whether the filter resumed the response.
    pub fn response_resumed(&self) -> bool {
        self.events()
            .contains(&StreamEvent::Resumed(StreamType::Response))
    }

    /// Log lines this stream's context wrote.
    pub fn logs(&self) -> Vec<LogEntry> {
        self.inner
            .world()
            .logs
            .iter()
            .filter(|l| l.worker == self.worker && l.context_id == self.id)
            .cloned()
            .collect()
    }
}

/// Kong's handling of a callback's return action (ngx_proxy_wasm.c, action2rc).
fn kong_action(vm: &mut Vm, ctx: u32, phase: Phase, action: Action) -> Action {
    let state = vm.state();
    let Some(stream) = state.streams.get_mut(&ctx) else {
        return action;
    };
    let paused = action == Action::Pause;
    match phase {
        Phase::RequestHeaders | Phase::RequestBody => {
            stream.kong_request_paused = paused && stream.local_response.is_none();
            action
        }
        Phase::ResponseHeaders => {
            if paused {
                if stream.kong_body_override.is_none() {
                    state.log_as(
                        ctx,
                        crate::LogLevel::Warn,
                        "\"ResponseHeaders\" returned \"PAUSE\": local response expected but \
                         none produced"
                            .into(),
                    );
                }
                // ngx_http_wasm_header_filter_handler ignores the rc: the response goes on.
                return Action::Continue;
            }
            action
        }
        Phase::ResponseBody => {
            if paused && stream.kong_response_buffering {
                stream.kong_response_buffering = false;
                state.log_as(
                    ctx,
                    crate::LogLevel::Error,
                    "invalid \"on_response_body\" return action (PAUSE): response body \
                     buffering already requested"
                        .into(),
                );
                return Action::Continue;
            }
            stream.kong_response_buffering = paused;
            action
        }
        _ => action,
    }
}

fn first(headers: &Headers, name: &str) -> Option<Vec<u8>> {
    let name = name.to_ascii_lowercase();
    headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.clone())
}

fn all(headers: &Headers, name: &str) -> Vec<Vec<u8>> {
    let name = name.to_ascii_lowercase();
    headers
        .iter()
        .filter(|(n, _)| *n == name)
        .map(|(_, v)| v.clone())
        .collect()
}

//! `proxy_http_call`: callouts are captured and wait for the test to answer them.
//!
//! Envoy:
//! - the upstream must be a known cluster ([`crate::HarnessBuilder::clusters`]) and the headers
//!   must carry `:method`, `:path` and `:authority`; otherwise BadArgument.
//! - A failure or timeout is delivered as `on_http_call_response(token, 0, 0, 0)`, with no
//!   response maps (reading them is BadArgument).
//!
//! Kong (ngx_proxy_wasm_host.c ngx_proxy_wasm_hfuncs_dispatch_http_call, and
//! ngx_http_proxy_wasm_dispatch.c ngx_http_proxy_wasm_dispatch, 9136e463 and 96b4e27e):
//! - only in the `on_request_headers`, `on_request_body`, `on_tick` and
//!   `on_http_call_response` steps; anywhere else (on_vm_start, on_configure, response
//!   headers/body, on_log, on_done, ...) it traps `host trap (bad usage): can only send HTTP
//!   dispatch during "on_request_headers", "on_request_body", "on_dispatch_response",
//!   "on_tick"`.
//! - no `:method` (`dispatch failed: no :method`), no `:path` (`dispatch failed: no :path`),
//!   or an upstream `ngx_parse_url` rejects (ngx_wasm_socket_tcp.c ngx_wasm_socket_tcp_init:
//!   `dispatch failed: tcp socket - no host` / `invalid port` / `invalid host`): in a request
//!   the engine traps with that message (ngx_http_proxy_wasm_dispatch_err while in a host
//!   call); in a root context (on_tick, fake request) it logs it at error level and returns
//!   InternalFailure. An upstream without a port is valid (port 80, 443 with
//!   `:scheme: https`); DNS and connection errors only show later ([`crate::Harness::fail_callout`]).
//! - other pseudo-headers log `NYI - dispatch_http_call header ":x"`; `Host` and `Connection`
//!   are not sent (the engine writes its own).
//! - tokens count from 0 per worker (`static uint32_t callout_ids = 0`).
//! - a failure or timeout logs `dispatch failed: tcp socket - <reason>` (error). Kong 3.9
//!   (4c610b49) then calls `on_http_call_response(token, 0, 0, 0)`, whose response map is
//!   empty but for `:dispatch_status` (`timeout`, `broken connection`, `resolver failure`,
//!   ...); Kong 3.8 calls nothing: the filter never learns about the failure.
//! - the answer is an HTTP/1.1 response: without a `content-length` or `transfer-encoding`
//!   header the harness adds `content-length` (the engine's reader, ngx_wasm_socket_tcp_readers.c
//!   ngx_wasm_read_http_response, reads only a framed body), so `num_headers` counts it.
//! - `on_http_call_response` gets the root context id as first argument (`filter->id`,
//!   ngx_http_proxy_wasm.c ngx_http_proxy_wasm_on_dispatch_response); the host calls still act
//!   on the stream that dispatched. Its `num_headers` excludes `:status`, `num_trailers` is 0.
//! - when the last pending call of a context finishes (answered or failed) the engine resumes
//!   the request itself (ngx_http_proxy_wasm_dispatch.c,
//!   ngx_http_proxy_wasm_dispatch_resume_handler: `ngx_wasm_continue` and
//!   `ngx_proxy_wasm_resume`), whether or not the filter called `proxy_continue_stream` — unless
//!   `on_http_call_response` trapped. A callback that dispatched and returned Continue is not
//!   paused (ngx_proxy_wasm.c ngx_proxy_wasm_run_step: the returned action overrides the
//!   PAUSE the dispatch set).
//!
//! Bad pointers and malformed maps trap. On success the token is written and Ok returned. The
//! test answers with [`crate::Harness::respond_callout`], fails with
//! [`crate::Harness::fail_callout`] / [`crate::Harness::fail_callout_with`], or lets the virtual
//! clock pass the timeout.

use super::{engine_trap, ok, status, GetState, TrapKind};
use crate::codec;
use crate::error::HostTrap;
use crate::memory;
use crate::profile::KongStep;
use crate::state::HostState;
use crate::{Headers, LogLevel, Status};

/// ngx_proxy_wasm_hfuncs_dispatch_http_call, "check context" (before the arguments are read).
fn kong_step_check(state: &HostState) -> Result<(), HostTrap> {
    if !state.profile().is_kong() {
        return Ok(());
    }
    match state.phase.kong_step() {
        KongStep::ReqHeaders | KongStep::ReqBody | KongStep::Tick | KongStep::DispatchResponse => {
            Ok(())
        }
        _ => Err(engine_trap(
            "proxy_http_call",
            TrapKind::BadUsage,
            "can only send HTTP dispatch during \"on_request_headers\", \"on_request_body\", \"on_dispatch_response\", \"on_tick\"",
        )),
    }
}
use std::time::Duration;
use wasmtime::{Caller, Linker};

/// A callout the guest made and the test has not answered yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callout {
    /// Harness-wide id to answer it with.
    pub id: u64,
    /// Worker that made it.
    pub worker: usize,
    /// Context that made it: `on_http_call_response` runs for it (Envoy passes this id as the
    /// callback's first argument; Kong passes the root context id and acts on this context).
    pub context_id: u32,
    /// Token the guest got back.
    pub token: u32,
    /// Cluster name (Envoy) or `host:port` (Kong).
    pub upstream: String,
    /// Request headers, including pseudo-headers.
    pub headers: Headers,
    /// Request body.
    pub body: Vec<u8>,
    /// Request trailers.
    pub trailers: Headers,
    /// Timeout the guest asked for.
    pub timeout: Duration,
    pub(crate) deadline_ns: u64,
}

impl Callout {
    /// First value of a request header, as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
}

/// An answer to a callout. Put `:status` in the headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CalloutResponse {
    /// Response headers (`:status` included).
    pub headers: Headers,
    /// Response body.
    pub body: Vec<u8>,
    /// Response trailers.
    pub trailers: Headers,
}

impl CalloutResponse {
    /// A response with `:status` set.
    pub fn status(code: u16) -> CalloutResponse {
        CalloutResponse {
            headers: vec![(":status".into(), code.to_string().into_bytes())],
            ..CalloutResponse::default()
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> CalloutResponse {
        self.headers
            .push((name.to_ascii_lowercase(), value.as_ref().to_vec()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl AsRef<[u8]>) -> CalloutResponse {
        self.body = body.as_ref().to_vec();
        self
    }

    /// Adds a trailer.
    pub fn trailer(mut self, name: &str, value: impl AsRef<[u8]>) -> CalloutResponse {
        self.trailers
            .push((name.to_ascii_lowercase(), value.as_ref().to_vec()));
        self
    }
}

/// Pending callouts of a harness.
#[derive(Debug, Default)]
pub(crate) struct Callouts {
    pub(crate) pending: Vec<Callout>,
    pub(crate) next_id: u64,
}

fn valid_envoy_upstream(state: &HostState, upstream: &str, headers: &Headers) -> bool {
    let has = |n: &str| headers.iter().any(|(k, _)| k == n);
    state.config.clusters.contains(upstream) && has(":method") && has(":path") && has(":authority")
}

/// What nginx's `ngx_parse_url` (no URI part, no resolve) says about a dispatch upstream, as
/// ngx_wasm_socket_tcp_init calls it: `None` when valid.
fn ngx_parse_url(upstream: &str) -> Option<&'static str> {
    if upstream.starts_with("unix:") {
        return None;
    }
    let (host, rest) = match upstream.strip_prefix('[') {
        Some(v6) => match v6.find(']') {
            Some(end) => (&upstream[..end + 2], &v6[end + 1..]),
            None => return Some("invalid host"),
        },
        None => match upstream.find(':') {
            Some(i) => (&upstream[..i], &upstream[i..]),
            None => (upstream, ""),
        },
    };
    if upstream.contains('/') || upstream.contains('?') {
        return Some("invalid host");
    }
    if let Some(port) = rest.strip_prefix(':') {
        match port.parse::<u32>() {
            Ok(1..=65535) => {}
            _ => return Some("invalid port"),
        }
    }
    if host.is_empty() {
        return Some("no host");
    }
    None
}

/// Kong's checks of a dispatch: `Err(message)` is the `dispatch failed: ...` text.
fn kong_dispatch_check(state: &HostState, upstream: &str, headers: &Headers) -> Result<(), String> {
    for (name, _) in headers {
        if name.starts_with(':')
            && !matches!(
                name.as_str(),
                ":method" | ":path" | ":authority" | ":scheme"
            )
        {
            state.log(
                LogLevel::Critical,
                format!("NYI - dispatch_http_call header \"{name}\""),
            );
        }
    }
    let non_empty = |n: &str| headers.iter().any(|(k, v)| k == n && !v.is_empty());
    if !non_empty(":method") {
        return Err("dispatch failed: no :method".into());
    }
    if !non_empty(":path") {
        return Err("dispatch failed: no :path".into());
    }
    if let Some(err) = ngx_parse_url(upstream) {
        return Err(format!("dispatch failed: tcp socket - {err}"));
    }
    Ok(())
}

pub fn add_to_linker<T: 'static>(linker: &mut Linker<T>, get: GetState<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_http_call",
        move |mut caller: Caller<'_, T>,
              up: i32,
              ul: i32,
              hp: i32,
              hl: i32,
              bp: i32,
              bl: i32,
              tp: i32,
              tl: i32,
              timeout: i32,
              token_ptr: i32|
              -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_http_call");
            let call = "proxy_http_call";
            kong_step_check(get(caller.data_mut()))?;
            let upstream =
                String::from_utf8_lossy(&memory::read(&mut caller, call, up, ul)?).into_owned();
            let headers = codec::decode_map(call, &memory::read(&mut caller, call, hp, hl)?)?;
            let body = memory::read(&mut caller, call, bp, bl)?;
            let trailers = codec::decode_map(call, &memory::read(&mut caller, call, tp, tl)?)?;
            let state = get(caller.data_mut());
            if let Some(s) = super::injected(state, call) {
                return status(s);
            }
            if state.profile().is_kong() {
                if let Err(message) = kong_dispatch_check(state, &upstream, &headers) {
                    if state.stream().is_some() {
                        // In a host call of a request: ngx_wavm_instance_trap_printf.
                        return Err(engine_trap(call, TrapKind::Plain, &message).into());
                    }
                    // Fake request of a root context: logged (proxy_wasm_log_dispatch_errors
                    // defaults to on), ngx_proxy_wasm_result_err.
                    state.log(LogLevel::Error, message);
                    return status(Status::InternalFailure);
                }
            } else if !valid_envoy_upstream(state, &upstream, &headers) {
                return status(Status::BadArgument);
            }
            let token = state.next_token;
            state.next_token += 1;
            let timeout = Duration::from_millis(u64::from(timeout as u32));
            let (worker, context_id) = (state.worker, state.context_id);
            let mut world = state.world();
            world.callouts.next_id += 1;
            let callout = Callout {
                id: world.callouts.next_id,
                worker,
                context_id,
                token,
                upstream,
                headers,
                body,
                trailers,
                timeout,
                deadline_ns: world.clock_ns + timeout.as_nanos() as u64,
            };
            world.callouts.pending.push(callout);
            drop(world);
            memory::write_u32(&mut caller, call, token_ptr, token)?;
            ok()
        },
    )?;
    Ok(())
}

//! Stream control: `proxy_continue_stream`, `proxy_close_stream`, `proxy_send_local_response`,
//! `proxy_done`, `proxy_set_effective_context`, and the ABI 0.1.0 names
//! (`proxy_continue_request`, `proxy_continue_response`, `proxy_clear_route_cache`).
//!
//! Envoy:
//! - continue/close: recorded as [`crate::StreamEvent`]s on the current stream; BadArgument
//!   for an unknown stream type or in a root context. Resuming the request forwards a body the
//!   filter had buffered.
//! - send_local_response: recorded; after the current callback returns, the harness runs the
//!   filter's own response callbacks on it. BadArgument in a root context. A malformed header
//!   map traps.
//! - done: Ok (recorded). set_effective_context: Ok for a live context, BadArgument otherwise.
//!
//! Kong (ngx_proxy_wasm_host.c, 9136e463 and 96b4e27e):
//! - `proxy_continue_stream` (ngx_proxy_wasm_hfuncs_continue): request *and* response resume
//!   the request (ngx_proxy_wasm_hfuncs_resume_http_request, `ngx_wasm_continue`); any other
//!   stream type logs `NYI - continue stream type: <n>` and is InternalFailure. In a root
//!   context the engine dereferences the NULL request context: crash trap.
//! - `proxy_continue_request` resumes the same way; `proxy_continue_response`,
//!   `proxy_close_stream`, `proxy_done`, `proxy_clear_route_cache` are NYI: trap.
//! - `proxy_set_effective_context` (ngx_proxy_wasm_hfuncs_set_effective_context) does nothing
//!   and returns Ok, whatever the id: the current context does not change.
//! - `proxy_send_local_response` (ngx_proxy_wasm_hfuncs_send_local_response,
//!   ngx_http_wasm_local_response.c ngx_http_wasm_stash_local_response): a status outside
//!   100-999 is BadArgument; a second one traps `local response already stashed`; once the
//!   response body step started it traps `response already sent`; during response headers it
//!   only replaces the status and the body (headers ignored). The body gets a trailing `\n`.
//!   Pending dispatch calls of the context are cancelled (notice `local response produced,
//!   cancelling pending dispatch calls`). In a root context: crash trap (NULL request context).
//!   When it is sent, each header is SET into the response headers, which keep the lines the
//!   filter added during the request: a repeated name keeps only its last value
//!   (ngx_http_wasm_local_response.c, ngx_http_wasm_flush_local_response).

use super::{engine_trap, kong_traps, ok, status, GetState, TrapKind};
use crate::codec;
use crate::error::HostTrap;
use crate::memory;
use crate::profile::Phase;
use crate::state::HostState;
use crate::{LocalResponse, LogLevel, Status, StreamEvent, StreamType};
use wasmtime::{Caller, Linker};

const NO_RCTX: &str = "ngx_http_proxy_wasm_get_rctx returns NULL in a root context and \
                       ngx_proxy_wasm_hfuncs_resume_http_request dereferences it";

fn resume(state: &mut HostState, raw: i32, call: &'static str) -> wasmtime::Result<i32> {
    let kong = state.profile().is_kong();
    let Some(kind) = StreamType::from_raw(raw) else {
        if kong {
            state.log(
                LogLevel::Critical,
                format!("NYI - continue stream type: {raw}"),
            );
            return status(Status::InternalFailure);
        }
        return status(Status::BadArgument);
    };
    if kong && !matches!(kind, StreamType::Request | StreamType::Response) {
        // ngx_proxy_wasm_hfuncs_continue: NGX_LOG_WASM_NYI (alert) + ngx_proxy_wasm_result_err.
        state.log(
            LogLevel::Critical,
            format!("NYI - continue stream type: {raw}"),
        );
        return status(Status::InternalFailure);
    }
    let Some(stream) = state.stream() else {
        if kong {
            return Err(HostTrap::Crash {
                call,
                reason: NO_RCTX,
            }
            .into());
        }
        return status(Status::BadArgument);
    };
    // Kong: both stream types run ngx_wasm_continue on the request's env.
    let resumes_request = kind == StreamType::Request || kong;
    if resumes_request {
        stream.kong_request_paused = false;
        if stream.request_body_paused {
            stream.request_body_paused = false;
            let body = std::mem::take(&mut stream.request_body);
            stream.forwarded_request_body.extend_from_slice(&body);
        }
    }
    match kind {
        StreamType::Request => {}
        StreamType::Response if !kong => {
            if stream.response_body_paused {
                stream.response_body_paused = false;
                let body = std::mem::take(&mut stream.response_body);
                stream.forwarded_response_body.extend_from_slice(&body);
            }
        }
        StreamType::Response => {}
        _ => return status(Status::BadArgument),
    }
    stream.events.push(StreamEvent::Resumed(kind));
    ok()
}

/// Kong's `proxy_send_local_response`; `Ok(None)` when it was stashed (the caller records it).
fn kong_local_response(
    state: &mut HostState,
    code: i32,
    details: String,
    body: Vec<u8>,
    headers: crate::Headers,
) -> wasmtime::Result<i32> {
    let call = "proxy_send_local_response";
    let phase = state.phase;
    let ctx = state.context_id;
    let Some(stream) = state.stream() else {
        return Err(HostTrap::Crash {
            call,
            reason: "ngx_proxy_wasm_hfuncs_send_local_response reads rctx->entered_header_filter \
                     of the NULL request context of a root context",
        }
        .into());
    };
    let mut body = body;
    if !body.is_empty() {
        // ngx_http_wasm_stash_local_response (and the response-headers branch): "append
        // linefeed".
        body.push(b'\n');
    }
    let response_started = stream.response_headers.is_some();
    if response_started && phase == Phase::ResponseHeaders {
        // entered_header_filter && !entered_body_filter: the status and body replace the
        // response's; the headers argument is not used.
        if let Some(map) = stream.response_headers.as_mut() {
            super::headers::set_status(map, code as u32);
        }
        let headers = stream
            .response_headers
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|(n, _)| n != ":status")
            .collect();
        stream.kong_body_override = Some(body.clone());
        stream.forwarded_response_body = body.clone();
        stream.local_response = Some(LocalResponse {
            status: code as u32,
            headers,
            body,
            details,
            grpc_status: None,
        });
        stream.events.push(StreamEvent::LocalResponseSent);
        return ok();
    }
    if response_started || matches!(phase, Phase::ResponseBody | Phase::Log | Phase::Done) {
        // NGX_ABORT: rctx->entered_header_filter.
        return Err(engine_trap(call, TrapKind::BadUsage, "response already sent").into());
    }
    if stream.local_response.is_some() {
        // NGX_BUSY: rctx->local_resp_status already set.
        return Err(engine_trap(call, TrapKind::BadUsage, "local response already stashed").into());
    }
    if !(100..=999).contains(&code) {
        // NGX_DECLINED -> ngx_proxy_wasm_result_badarg.
        return status(Status::BadArgument);
    }
    stream.local_response = Some(LocalResponse {
        status: code as u32,
        headers,
        body,
        details,
        grpc_status: None,
    });
    stream.local_response_pending = true;
    stream.kong_request_paused = false;
    stream.events.push(StreamEvent::LocalResponseSent);
    let worker = state.worker;
    let cancelled = {
        let mut world = state.world();
        let before = world.callouts.pending.len();
        world
            .callouts
            .pending
            .retain(|c| !(c.worker == worker && c.context_id == ctx));
        before != world.callouts.pending.len()
    };
    if cancelled {
        state.log(
            LogLevel::Info,
            "local response produced, cancelling pending dispatch calls".into(),
        );
    }
    ok()
}

pub fn add_to_linker<T: 'static>(linker: &mut Linker<T>, get: GetState<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_continue_stream",
        move |mut caller: Caller<'_, T>, kind: i32| -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_continue_stream");
            if let Some(s) = super::injected(get(caller.data_mut()), "proxy_continue_stream") {
                return status(s);
            }
            resume(get(caller.data_mut()), kind, "proxy_continue_stream")
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_continue_request",
        move |mut caller: Caller<'_, T>| -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_continue_request");
            resume(get(caller.data_mut()), 0, "proxy_continue_request")
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_continue_response",
        move |mut caller: Caller<'_, T>| -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_continue_response");
            kong_traps(get(caller.data_mut()), "proxy_continue_response")?;
            resume(get(caller.data_mut()), 1, "proxy_continue_response")
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_clear_route_cache",
        move |mut caller: Caller<'_, T>| -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_clear_route_cache");
            kong_traps(get(caller.data_mut()), "proxy_clear_route_cache")?;
            if let Some(stream) = get(caller.data_mut()).stream() {
                stream.events.push(StreamEvent::RouteCacheCleared);
            }
            ok()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_close_stream",
        move |mut caller: Caller<'_, T>, kind: i32| -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_close_stream");
            let state = get(caller.data_mut());
            kong_traps(state, "proxy_close_stream")?;
            let (Some(kind), Some(stream)) = (StreamType::from_raw(kind), state.stream()) else {
                return status(Status::BadArgument);
            };
            stream.events.push(StreamEvent::Closed(kind));
            ok()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_send_local_response",
        move |mut caller: Caller<'_, T>,
              code: i32,
              dp: i32,
              dl: i32,
              bp: i32,
              bl: i32,
              hp: i32,
              hl: i32,
              grpc: i32|
              -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_send_local_response");
            let call = "proxy_send_local_response";
            let details = memory::read(&mut caller, call, dp, dl)?;
            let body = memory::read(&mut caller, call, bp, bl)?;
            let headers = codec::decode_map(call, &memory::read(&mut caller, call, hp, hl)?)?;
            if let Some(s) = super::injected(get(caller.data_mut()), call) {
                return status(s);
            }
            let details = String::from_utf8_lossy(&details).into_owned();
            let state = get(caller.data_mut());
            if state.profile().is_kong() {
                return kong_local_response(state, code, details, body, headers);
            }
            let Some(stream) = state.stream() else {
                return status(Status::BadArgument);
            };
            stream.local_response = Some(LocalResponse {
                status: code as u32,
                headers,
                body,
                details,
                grpc_status: (grpc >= 0).then_some(grpc),
            });
            stream.local_response_pending = true;
            stream.events.push(StreamEvent::LocalResponseSent);
            ok()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_done",
        move |mut caller: Caller<'_, T>| -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_done");
            let state = get(caller.data_mut());
            kong_traps(state, "proxy_done")?;
            state.root_done = true;
            ok()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_effective_context",
        move |mut caller: Caller<'_, T>, id: i32| -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_set_effective_context");
            let state = get(caller.data_mut());
            if let Some(s) = super::injected(state, "proxy_set_effective_context") {
                return status(s);
            }
            if state.profile().is_kong() {
                // ngx_proxy_wasm_hfuncs_set_effective_context: only a debug log of the id.
                return ok();
            }
            let id = id as u32;
            if id == state.root_context_id || state.streams.contains_key(&id) {
                state.context_id = id;
                ok()
            } else {
                status(Status::BadArgument)
            }
        },
    )?;
    Ok(())
}

//! Stream control: `proxy_continue_stream`, `proxy_close_stream`, `proxy_send_local_response`,
//! `proxy_done`, `proxy_set_effective_context`, and the ABI 0.1.0 names Envoy still provides
//! (`proxy_continue_request`, `proxy_continue_response`, `proxy_clear_route_cache`).
//!
//! - continue/close: recorded as [`crate::StreamEvent`]s on the current stream; BadArgument
//!   for an unknown stream type or in a root context. Resuming the request forwards a body the
//!   filter had buffered. Kong traps on `proxy_close_stream` and on continuing the response.
//! - send_local_response: recorded; after the current callback returns, the harness runs the
//!   filter's own response callbacks on it (as Envoy does). BadArgument in a root context.
//!   A malformed header map traps.
//! - done: Ok (recorded); traps on Kong. set_effective_context: Ok for a live context,
//!   BadArgument otherwise.

use super::{kong_traps, ok, status, GetState};
use crate::codec;
use crate::memory;
use crate::state::HostState;
use crate::{LocalResponse, Status, StreamEvent, StreamType};
use wasmtime::{Caller, Linker};

fn resume(state: &mut HostState, raw: i32, call: &'static str) -> wasmtime::Result<i32> {
    let Some(kind) = StreamType::from_raw(raw) else {
        return status(Status::BadArgument);
    };
    if kind == StreamType::Response {
        kong_traps(state, call)?;
    }
    let Some(stream) = state.stream() else {
        return status(Status::BadArgument);
    };
    match kind {
        StreamType::Request => {
            if stream.request_body_paused {
                stream.request_body_paused = false;
                let body = std::mem::take(&mut stream.request_body);
                stream.forwarded_request_body.extend_from_slice(&body);
            }
        }
        StreamType::Response => {
            if stream.response_body_paused {
                stream.response_body_paused = false;
                let body = std::mem::take(&mut stream.response_body);
                stream.forwarded_response_body.extend_from_slice(&body);
            }
        }
        _ => return status(Status::BadArgument),
    }
    stream.events.push(StreamEvent::Resumed(kind));
    ok()
}

pub fn add_to_linker<T: 'static>(linker: &mut Linker<T>, get: GetState<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_continue_stream",
        move |mut caller: Caller<'_, T>, kind: i32| -> wasmtime::Result<i32> {
            if let Some(s) = super::injected(get(caller.data_mut()), "proxy_continue_stream") {
                return status(s);
            }
            resume(
                get(caller.data_mut()),
                kind,
                "proxy_continue_stream(HttpResponse)",
            )
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_continue_request",
        move |mut caller: Caller<'_, T>| -> wasmtime::Result<i32> {
            resume(get(caller.data_mut()), 0, "proxy_continue_request")
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_continue_response",
        move |mut caller: Caller<'_, T>| -> wasmtime::Result<i32> {
            resume(get(caller.data_mut()), 1, "proxy_continue_response")
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_clear_route_cache",
        move |mut caller: Caller<'_, T>| -> wasmtime::Result<i32> {
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
            let call = "proxy_send_local_response";
            let details = memory::read(&mut caller, call, dp, dl)?;
            let body = memory::read(&mut caller, call, bp, bl)?;
            let headers = codec::decode_map(call, &memory::read(&mut caller, call, hp, hl)?)?;
            if let Some(s) = super::injected(get(caller.data_mut()), call) {
                return status(s);
            }
            let Some(stream) = get(caller.data_mut()).stream() else {
                return status(Status::BadArgument);
            };
            stream.local_response = Some(LocalResponse {
                status: code as u32,
                headers,
                body,
                details: String::from_utf8_lossy(&details).into_owned(),
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
            let state = get(caller.data_mut());
            if let Some(s) = super::injected(state, "proxy_set_effective_context") {
                return status(s);
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

//! `proxy_get_buffer_bytes`, `proxy_set_buffer_bytes`.
//!
//! - get: copies `[start, start+max)` clamped to the buffer; Ok with a null pointer when that is
//!   empty; NotFound for a buffer that does not exist here (request body in a root context,
//!   callout body outside `on_http_call_response`, gRPC/L4 buffers); BadArgument when
//!   `start + max` overflows.
//! - set (bodies only, Envoy `Buffer::copyFrom`): `start == 0` drains `size` bytes and prepends;
//!   `start >= len` appends; anything else is BadArgument. Other buffers: BadArgument
//!   (NotFound if absent).
//!
//! Kong (ngx_proxy_wasm_host.c ngx_proxy_wasm_get_buffer_helper, ngx_proxy_wasm_hfuncs_get_buffer
//! and ngx_proxy_wasm_hfuncs_set_buffer; ngx_http_wasm_util.c ngx_http_wasm_set_req_body /
//! ngx_http_wasm_set_resp_body; 9136e463 and 96b4e27e):
//! - get request body: in request headers/body and on_log, else trap `can only get request
//!   body during "on_request_body", "on_log"`; get response body: in on_response_body only,
//!   else trap `can only get response body during "on_response_body"`; get the callout body:
//!   in on_http_call_response (and on_log: BadArgument there, no call), else trap `can only get
//!   dispatch response body during "on_http_dispatch_response"`. No body: NotFound. The bytes
//!   returned are the first `min(len, max)` of the buffer: `start` is ignored. gRPC/L4
//!   buffers: `NYI - get_buffer bad buf_type: <n>` and BadArgument. Configurations: anywhere.
//! - set request body: request headers/body only, else trap `can only set request body during
//!   "on_request_body"`; set response body: on_response_body only, else trap `can only set
//!   response body during "on_response_body"`. `start == 0 && size == 0` with data prepends;
//!   otherwise the body is cut at `start` and the data, truncated to `size` bytes
//!   (`size = len` when `start > 0 && size == 0`), appended (ngx_wasm_util.c
//!   ngx_wasm_chain_append): `set_http_request_body(0, body_size, longer)` keeps only
//!   `body_size` bytes of the new body. Other buffers: `NYI - set_buffer bad buf_type` and
//!   BadArgument.
//! - In a root context the steps above do not match: the body calls trap the same way.

use super::{engine_trap, ok, status, GetState, TrapKind};
use crate::error::HostTrap;
use crate::memory;
use crate::profile::KongStep;
use crate::state::HostState;
use crate::{BufferType, LogLevel, Status};
use wasmtime::{Caller, Linker};

/// Kong's buffer read: `Ok(bytes)` or the status / trap.
fn kong_read_buffer(state: &mut HostState, raw: i32) -> Result<Result<Vec<u8>, Status>, HostTrap> {
    let call = "proxy_get_buffer_bytes";
    let step = state.phase.kong_step();
    let Some(kind) = BufferType::from_raw(raw) else {
        state.log(
            LogLevel::Critical,
            format!("NYI - get_buffer bad buf_type: {raw}"),
        );
        return Ok(Err(Status::BadArgument));
    };
    let body = |b: &[u8]| {
        if b.is_empty() {
            Err(Status::NotFound)
        } else {
            Ok(b.to_vec())
        }
    };
    Ok(match kind {
        BufferType::VmConfiguration => Ok(state.config.vm_configuration.clone()),
        BufferType::PluginConfiguration => Ok(state.config.plugin_configuration.clone()),
        BufferType::RequestBody => {
            if !matches!(
                step,
                KongStep::ReqHeaders | KongStep::ReqBody | KongStep::Log
            ) {
                return Err(engine_trap(
                    call,
                    TrapKind::BadUsage,
                    "can only get request body during \"on_request_body\", \"on_log\"",
                ));
            }
            match state.stream() {
                Some(s) => {
                    let all = if s.request_body.is_empty() {
                        s.forwarded_request_body.clone()
                    } else {
                        s.request_body.clone()
                    };
                    body(&all)
                }
                None => Err(Status::NotFound),
            }
        }
        BufferType::ResponseBody => {
            if step != KongStep::RespBody {
                return Err(engine_trap(
                    call,
                    TrapKind::BadUsage,
                    "can only get response body during \"on_response_body\"",
                ));
            }
            match state.stream() {
                Some(s) => body(&s.response_body.clone()),
                None => Err(Status::NotFound),
            }
        }
        BufferType::CalloutResponseBody => {
            if !matches!(step, KongStep::DispatchResponse | KongStep::Log) {
                return Err(engine_trap(
                    call,
                    TrapKind::BadUsage,
                    "can only get dispatch response body during \"on_http_dispatch_response\"",
                ));
            }
            match &state.callout_response {
                Some(r) => body(&r.body),
                None => Err(Status::BadArgument),
            }
        }
        _ => {
            state.log(
                LogLevel::Critical,
                format!("NYI - get_buffer bad buf_type: {raw}"),
            );
            Err(Status::BadArgument)
        }
    })
}

/// Kong's `ngx_wasm_chain_append` after ngx_proxy_wasm_hfuncs_set_buffer's argument fix-up.
pub(crate) fn kong_set_body(buffer: &mut Vec<u8>, start: usize, size: usize, data: &[u8]) {
    if start == 0 && size == 0 && !data.is_empty() {
        // ngx_http_wasm_prepend_req_body / ngx_http_wasm_prepend_resp_body.
        let mut out = data.to_vec();
        out.extend_from_slice(buffer);
        *buffer = out;
        return;
    }
    let size = if start > 0 && size == 0 && !data.is_empty() {
        data.len()
    } else {
        size
    };
    buffer.truncate(start);
    buffer.extend_from_slice(&data[..size.min(data.len())]);
}

fn kong_write_body(
    state: &mut HostState,
    raw: i32,
    start: usize,
    size: usize,
    data: &[u8],
) -> Result<Status, HostTrap> {
    let call = "proxy_set_buffer_bytes";
    let step = state.phase.kong_step();
    let request = match BufferType::from_raw(raw) {
        Some(BufferType::RequestBody) => true,
        Some(BufferType::ResponseBody) => false,
        _ => {
            state.log(
                LogLevel::Critical,
                format!("NYI - set_buffer bad buf_type: {raw}"),
            );
            return Ok(Status::BadArgument);
        }
    };
    if request && !matches!(step, KongStep::ReqHeaders | KongStep::ReqBody) {
        return Err(engine_trap(
            call,
            TrapKind::BadUsage,
            "can only set request body during \"on_request_body\"",
        ));
    }
    if !request && step != KongStep::RespBody {
        return Err(engine_trap(
            call,
            TrapKind::BadUsage,
            "can only set response body during \"on_response_body\"",
        ));
    }
    let Some(stream) = state.stream() else {
        return Ok(Status::InternalFailure);
    };
    let buffer = if request {
        &mut stream.request_body
    } else {
        &mut stream.response_body
    };
    kong_set_body(buffer, start, size, data);
    Ok(Status::Ok)
}

fn read_buffer(state: &mut HostState, raw: i32) -> Result<Vec<u8>, Status> {
    match BufferType::from_raw(raw).ok_or(Status::BadArgument)? {
        BufferType::VmConfiguration => Ok(state.config.vm_configuration.clone()),
        BufferType::PluginConfiguration => Ok(state.config.plugin_configuration.clone()),
        BufferType::CalloutResponseBody => state
            .callout_response
            .as_ref()
            .map(|r| r.body.clone())
            .ok_or(Status::NotFound),
        BufferType::RequestBody => Ok(state.stream().ok_or(Status::NotFound)?.request_body.clone()),
        BufferType::ResponseBody => Ok(state
            .stream()
            .ok_or(Status::NotFound)?
            .response_body
            .clone()),
        _ => Err(Status::NotFound),
    }
}

fn body_mut(state: &mut HostState, raw: i32) -> Result<&mut Vec<u8>, Status> {
    match BufferType::from_raw(raw).ok_or(Status::BadArgument)? {
        BufferType::RequestBody => Ok(&mut state.stream().ok_or(Status::NotFound)?.request_body),
        BufferType::ResponseBody => Ok(&mut state.stream().ok_or(Status::NotFound)?.response_body),
        _ => Err(Status::BadArgument),
    }
}

/// Envoy's `Buffer::copyFrom`.
pub(crate) fn copy_from(buffer: &mut Vec<u8>, start: usize, size: usize, data: &[u8]) -> Status {
    if start == 0 {
        let drained = size.min(buffer.len());
        let rest = buffer.split_off(drained);
        buffer.clear();
        buffer.extend_from_slice(data);
        buffer.extend_from_slice(&rest);
        Status::Ok
    } else if start >= buffer.len() {
        buffer.extend_from_slice(data);
        Status::Ok
    } else {
        Status::BadArgument
    }
}

pub fn add_to_linker<T: 'static>(linker: &mut Linker<T>, get: GetState<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_buffer_bytes",
        move |mut caller: Caller<'_, T>,
              buffer: i32,
              start: i32,
              max: i32,
              ptr_ptr: i32,
              size_ptr: i32|
              -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_get_buffer_bytes");
            let (start, max) = (start as u32 as usize, max as u32 as usize);
            if let Some(s) = super::injected(get(caller.data_mut()), "proxy_get_buffer_bytes") {
                return status(s);
            }
            let state = get(caller.data_mut());
            let data = if state.profile().is_kong() {
                let data = match kong_read_buffer(state, buffer)? {
                    Ok(d) => d,
                    Err(s) => return status(s),
                };
                // ngx_proxy_wasm_hfuncs_get_buffer copies `min(len, max)` bytes from the start
                // of the buffer: `start` is only checked for overflow, never applied.
                if start.checked_add(data.len().min(max)).is_none() {
                    return status(Status::InternalFailure);
                }
                let n = data.len().min(max);
                memory::return_bytes(
                    &mut caller,
                    get,
                    "proxy_get_buffer_bytes",
                    &data[..n],
                    ptr_ptr,
                    size_ptr,
                )?;
                return ok();
            } else {
                match read_buffer(state, buffer) {
                    Ok(d) => d,
                    Err(s) => return status(s),
                }
            };
            let Some(end) = start.checked_add(max) else {
                return status(Status::BadArgument);
            };
            let end = end.min(data.len());
            let slice = data.get(start.min(end)..end).unwrap_or(&[]);
            memory::return_bytes(
                &mut caller,
                get,
                "proxy_get_buffer_bytes",
                slice,
                ptr_ptr,
                size_ptr,
            )?;
            ok()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_buffer_bytes",
        move |mut caller: Caller<'_, T>,
              buffer: i32,
              start: i32,
              size: i32,
              ptr: i32,
              len: i32|
              -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_set_buffer_bytes");
            let data = memory::read(&mut caller, "proxy_set_buffer_bytes", ptr, len)?;
            let state = get(caller.data_mut());
            if state.profile().is_kong() {
                let (start, size) = (start as u32 as usize, size as u32 as usize);
                return status(kong_write_body(state, buffer, start, size, &data)?);
            }
            match body_mut(state, buffer) {
                Ok(body) => status(copy_from(
                    body,
                    start as u32 as usize,
                    size as u32 as usize,
                    &data,
                )),
                Err(s) => status(s),
            }
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_from_follows_envoy() {
        let mut b = b"hello".to_vec();
        assert_eq!(copy_from(&mut b, 0, 5, b"bye"), Status::Ok);
        assert_eq!(b, b"bye");
        assert_eq!(copy_from(&mut b, 0, 0, b">"), Status::Ok);
        assert_eq!(b, b">bye");
        assert_eq!(copy_from(&mut b, 4, 0, b"!"), Status::Ok);
        assert_eq!(b, b">bye!");
        assert_eq!(copy_from(&mut b, 2, 1, b"x"), Status::BadArgument);
    }

    #[test]
    fn kong_set_body_cuts_and_truncates() {
        let mut b = b"hello".to_vec();
        kong_set_body(&mut b, 0, 5, b"goodbye");
        assert_eq!(b, b"goodb");
        kong_set_body(&mut b, 0, 0, b">");
        assert_eq!(b, b">goodb");
        kong_set_body(&mut b, 3, 0, b"XYZ");
        assert_eq!(b, b">goXYZ");
        kong_set_body(&mut b, 0, 2, b"ab");
        assert_eq!(b, b"ab");
    }
}

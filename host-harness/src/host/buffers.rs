//! `proxy_get_buffer_bytes`, `proxy_set_buffer_bytes`.
//!
//! - get: copies `[start, start+max)` clamped to the buffer; Ok with a null pointer when that is
//!   empty; NotFound for a buffer that does not exist here (request body in a root context,
//!   callout body outside `on_http_call_response`, gRPC/L4 buffers); BadArgument when
//!   `start + max` overflows.
//! - set (bodies only, Envoy `Buffer::copyFrom`): `start == 0` drains `size` bytes and prepends;
//!   `start >= len` appends; anything else is BadArgument. Other buffers: BadArgument
//!   (NotFound if absent).

use super::{ok, status, GetState};
use crate::memory;
use crate::state::HostState;
use crate::{BufferType, Status};
use wasmtime::{Caller, Linker};

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
            let (start, max) = (start as u32 as usize, max as u32 as usize);
            if let Some(s) = super::injected(get(caller.data_mut()), "proxy_get_buffer_bytes") {
                return status(s);
            }
            let data = match read_buffer(get(caller.data_mut()), buffer) {
                Ok(d) => d,
                Err(s) => return status(s),
            };
            let Some(end) = start.checked_add(max) else {
                return status(Status::BadArgument);
            };
            let end = end.min(data.len());
            let slice = data.get(start.min(end)..end).unwrap_or(&[]);
            memory::return_bytes(
                &mut caller,
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
            let data = memory::read(&mut caller, "proxy_set_buffer_bytes", ptr, len)?;
            match body_mut(get(caller.data_mut()), buffer) {
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
}

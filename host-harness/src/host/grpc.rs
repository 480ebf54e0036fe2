//! `proxy_grpc_call`, `proxy_grpc_stream`, `proxy_grpc_send`, `proxy_grpc_cancel`,
//! `proxy_grpc_close`, `proxy_get_status`.
//!
//! The harness does not emulate gRPC. Envoy profile: call/stream return InternalFailure (the
//! SDK's error for a call that could not start), send/cancel/close NotFound, get_status Ok with
//! code 2 (UNKNOWN) and no message. Kong profiles: every one of them traps "function not yet
//! implemented" (ngx_proxy_wasm_host.c, `ngx_proxy_wasm_hfuncs[]`: `ngx_proxy_wasm_hfuncs_nop`
//! for `proxy_grpc_call/stream/send/cancel/close` and `proxy_get_status`, 9136e463, 96b4e27e).

use super::{kong_traps, ok, status, GetState};
use crate::memory;
use crate::Status;
use wasmtime::{Caller, Linker};

pub fn add_to_linker<T: 'static>(linker: &mut Linker<T>, get: GetState<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_grpc_call",
        move |mut caller: Caller<'_, T>,
              _: i32,
              _: i32,
              _: i32,
              _: i32,
              _: i32,
              _: i32,
              _: i32,
              _: i32,
              _: i32,
              _: i32,
              _: i32,
              _: i32|
              -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_grpc_call");
            kong_traps(get(caller.data_mut()), "proxy_grpc_call")?;
            status(Status::InternalFailure)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_stream",
        move |mut caller: Caller<'_, T>,
              _: i32,
              _: i32,
              _: i32,
              _: i32,
              _: i32,
              _: i32,
              _: i32,
              _: i32,
              _: i32|
              -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_grpc_stream");
            kong_traps(get(caller.data_mut()), "proxy_grpc_stream")?;
            status(Status::InternalFailure)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_send",
        move |mut caller: Caller<'_, T>, _: i32, _: i32, _: i32, _: i32| -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_grpc_send");
            kong_traps(get(caller.data_mut()), "proxy_grpc_send")?;
            status(Status::NotFound)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_cancel",
        move |mut caller: Caller<'_, T>, _: i32| -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_grpc_cancel");
            kong_traps(get(caller.data_mut()), "proxy_grpc_cancel")?;
            status(Status::NotFound)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_close",
        move |mut caller: Caller<'_, T>, _: i32| -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_grpc_close");
            kong_traps(get(caller.data_mut()), "proxy_grpc_close")?;
            status(Status::NotFound)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_status",
        move |mut caller: Caller<'_, T>,
              code_ptr: i32,
              ptr_ptr: i32,
              size_ptr: i32|
              -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_get_status");
            let call = "proxy_get_status";
            kong_traps(get(caller.data_mut()), call)?;
            memory::write_u32(&mut caller, call, code_ptr, 2)?;
            memory::return_bytes(&mut caller, get, call, &[], ptr_ptr, size_ptr)?;
            ok()
        },
    )?;
    Ok(())
}

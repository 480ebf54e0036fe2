//! `proxy_call_foreign_function`.
//!
//! Envoy: calls a closure registered with [`crate::HarnessBuilder::foreign_function`]; NotFound
//! when no function has that name (Envoy's `verify_signature` exists only when the test
//! registers it). The closure's error status is returned as is. Bad pointers trap.
//!
//! Kong: traps "function not yet implemented" before looking at its arguments
//! (ngx_proxy_wasm_host.c, `ngx_proxy_wasm_hfuncs[]`: `proxy_call_foreign_function` is
//! `ngx_proxy_wasm_hfuncs_nop`, 9136e463 and 96b4e27e); registered functions are ignored.

use super::{kong_traps, ok, status, GetState};
use crate::memory;
use crate::Status;
use wasmtime::{Caller, Linker};

pub fn add_to_linker<T: 'static>(linker: &mut Linker<T>, get: GetState<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_call_foreign_function",
        move |mut caller: Caller<'_, T>,
              np: i32,
              nl: i32,
              ap: i32,
              al: i32,
              ptr_ptr: i32,
              size_ptr: i32|
              -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_call_foreign_function");
            let call = "proxy_call_foreign_function";
            kong_traps(get(caller.data_mut()), call)?;
            let name = memory::read(&mut caller, call, np, nl)?;
            let args = memory::read(&mut caller, call, ap, al)?;
            let name = String::from_utf8_lossy(&name).into_owned();
            if let Some(s) = super::injected(get(caller.data_mut()), call) {
                return status(s);
            }
            let function = get(caller.data_mut()).world().foreign.get(&name).cloned();
            let Some(function) = function else {
                return status(Status::NotFound);
            };
            match function(&args) {
                Ok(result) => {
                    memory::return_bytes(&mut caller, get, call, &result, ptr_ptr, size_ptr)?;
                    ok()
                }
                Err(s) => status(s),
            }
        },
    )?;
    Ok(())
}

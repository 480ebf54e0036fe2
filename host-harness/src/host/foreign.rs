//! `proxy_call_foreign_function`.
//!
//! Calls a closure registered with [`crate::HarnessBuilder::foreign_function`]; NotFound when no
//! function has that name (Envoy's `verify_signature` exists only when the test registers it;
//! Kong has none). The closure's error status is returned as is. Bad pointers trap.

use super::{ok, status, GetState};
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
            let call = "proxy_call_foreign_function";
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
                    memory::return_bytes(&mut caller, call, &result, ptr_ptr, size_ptr)?;
                    ok()
                }
                Err(s) => status(s),
            }
        },
    )?;
    Ok(())
}

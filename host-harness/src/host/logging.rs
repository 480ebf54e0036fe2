//! `proxy_log`, `proxy_get_log_level`.
//!
//! - `proxy_log`: Ok; an unknown level is BadArgument; a bad pointer traps.
//! - `proxy_get_log_level`: Ok with the configured level. Kong: the engine declares it with two
//!   parameters (ngx_proxy_wasm_host.c, `ngx_proxy_wasm_hfuncs[]`, `ngx_wavm_arity_i32x2`,
//!   `ngx_proxy_wasm_hfuncs_nop`): a module importing the ABI's `(i32) -> i32` fails to load
//!   ([`crate::HarnessError::IncompatibleImport`]); with the engine's signature it traps NYI
//!   (`crate::host::add_kong_overrides`).
//! - Kong `proxy_log` (ngx_proxy_wasm_hfuncs_proxy_log): an unknown level logs
//!   `NYI - proxy_log bad log_level: <n>` and is BadArgument.

use super::{kong_traps, ok, status, GetState};
use crate::memory;
use crate::{LogLevel, Status};
use wasmtime::{Caller, Linker};

pub fn add_to_linker<T: 'static>(linker: &mut Linker<T>, get: GetState<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_log",
        move |mut caller: Caller<'_, T>, level: i32, ptr: i32, len: i32| -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_log");
            let message = memory::read(&mut caller, "proxy_log", ptr, len)?;
            let Some(level) = LogLevel::from_raw(level) else {
                let state = get(caller.data_mut());
                if state.profile().is_kong() {
                    state.log(
                        LogLevel::Critical,
                        format!("NYI - proxy_log bad log_level: {level}"),
                    );
                }
                return status(Status::BadArgument);
            };
            let state = get(caller.data_mut());
            if let Some(s) = super::injected(state, "proxy_log") {
                return status(s);
            }
            state.log(level, String::from_utf8_lossy(&message).into_owned());
            ok()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_log_level",
        move |mut caller: Caller<'_, T>, ptr: i32| -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_get_log_level");
            let state = get(caller.data_mut());
            kong_traps(state, "proxy_get_log_level")?;
            let level = state.config.log_level.raw();
            memory::write_u32(&mut caller, "proxy_get_log_level", ptr, level)?;
            ok()
        },
    )?;
    Ok(())
}

//! `proxy_log`, `proxy_get_log_level`.
//!
//! - `proxy_log`: Ok; an unknown level is BadArgument; a bad pointer traps.
//! - `proxy_get_log_level`: Ok with the configured level; traps on Kong.

use super::{kong_traps, ok, status, GetState};
use crate::memory;
use crate::{LogLevel, Status};
use wasmtime::{Caller, Linker};

pub fn add_to_linker<T: 'static>(linker: &mut Linker<T>, get: GetState<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_log",
        move |mut caller: Caller<'_, T>, level: i32, ptr: i32, len: i32| -> wasmtime::Result<i32> {
            let message = memory::read(&mut caller, "proxy_log", ptr, len)?;
            let Some(level) = LogLevel::from_raw(level) else {
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
            let state = get(caller.data_mut());
            kong_traps(state, "proxy_get_log_level")?;
            let level = state.config.log_level.raw();
            memory::write_u32(&mut caller, "proxy_get_log_level", ptr, level)?;
            ok()
        },
    )?;
    Ok(())
}

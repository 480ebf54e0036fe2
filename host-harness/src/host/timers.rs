//! `proxy_get_current_time_nanoseconds`, `proxy_set_tick_period_milliseconds`.
//!
//! Both read/write the harness's virtual clock; both always return Ok (bad pointer traps).
//! A period of 0 stops ticks. Ticks fire from [`crate::Harness::advance_clock`].
//!
//! Kong (ngx_proxy_wasm_host.c, ngx_proxy_wasm_hfuncs_set_tick_period, 9136e463 and
//! 96b4e27e): from an HTTP context it traps `can only set tick_period in root context`; a
//! non-zero period while one is set traps `tick_period already set`.

use super::{engine_trap, ok, status, GetState, TrapKind};
use crate::memory;
use wasmtime::{Caller, Linker};

pub fn add_to_linker<T: 'static>(linker: &mut Linker<T>, get: GetState<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        move |mut caller: Caller<'_, T>, ptr: i32| -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_get_current_time_nanoseconds");
            if let Some(s) =
                super::injected(get(caller.data_mut()), "proxy_get_current_time_nanoseconds")
            {
                return status(s);
            }
            let now = get(caller.data_mut()).world().clock_ns;
            memory::write_u64(&mut caller, "proxy_get_current_time_nanoseconds", ptr, now)?;
            ok()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_tick_period_milliseconds",
        move |mut caller: Caller<'_, T>, period: i32| -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_set_tick_period_milliseconds");
            let state = get(caller.data_mut());
            if let Some(s) = super::injected(state, "proxy_set_tick_period_milliseconds") {
                return status(s);
            }
            let period = period as u32;
            if state.profile().is_kong() {
                let call = "proxy_set_tick_period_milliseconds";
                if state.stream().is_some() {
                    return Err(engine_trap(
                        call,
                        TrapKind::Plain,
                        "can only set tick_period in root context",
                    )
                    .into());
                }
                if period != 0 && state.tick_period_ms != 0 {
                    return Err(
                        engine_trap(call, TrapKind::Plain, "tick_period already set").into(),
                    );
                }
            }
            let now = state.world().clock_ns;
            state.tick_period_ms = period;
            state.next_tick_ns = match period {
                0 => None,
                ms => Some(now + u64::from(ms) * 1_000_000),
            };
            ok()
        },
    )?;
    Ok(())
}

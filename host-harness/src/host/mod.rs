//! The imports the host provides, one module per interface. Each module registers itself with
//! `add_to_linker(&mut Linker<T>, get)` where `get` projects the store data to [`HostState`], so
//! the groups compose (wasmtime style). [`add_to_linker`] registers them all.
//!
//! Rule for every call: a pointer/length outside guest memory or a malformed map encoding is a
//! trap ([`crate::HostTrap`]); an expected failure (missing key, unknown cluster, wrong phase)
//! is a [`crate::Status`] the SDK handles. Calls a profile does not implement trap.

pub mod buffers;
pub mod callouts;
pub mod foreign;
pub mod grpc;
pub mod headers;
pub mod logging;
pub mod metrics;
pub mod ngx_headers;
pub mod properties;
pub mod queues;
pub mod shared_data;
pub mod stream_control;
pub mod timers;
pub mod wasi;

use crate::error::HostTrap;
use crate::state::HostState;
use crate::Status;
use wasmtime::Linker;

/// Projects a store's data to the host state.
pub type GetState<T> = fn(&mut T) -> &mut HostState;

/// Registers every `env` and `wasi_snapshot_preview1` import.
pub fn add_to_linker<T: 'static>(linker: &mut Linker<T>, get: GetState<T>) -> wasmtime::Result<()> {
    logging::add_to_linker(linker, get)?;
    timers::add_to_linker(linker, get)?;
    headers::add_to_linker(linker, get)?;
    buffers::add_to_linker(linker, get)?;
    shared_data::add_to_linker(linker, get)?;
    queues::add_to_linker(linker, get)?;
    callouts::add_to_linker(linker, get)?;
    grpc::add_to_linker(linker, get)?;
    properties::add_to_linker(linker, get)?;
    metrics::add_to_linker(linker, get)?;
    foreign::add_to_linker(linker, get)?;
    stream_control::add_to_linker(linker, get)?;
    wasi::add_to_linker(linker, get)?;
    Ok(())
}

/// Kong: host functions whose engine declaration differs from the `env` one above. Shadows
/// them in `linker` (call after [`add_to_linker`]).
pub(crate) fn add_kong_overrides<T: 'static>(
    linker: &mut Linker<T>,
    get: GetState<T>,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    // ngx_proxy_wasm_host.c, `ngx_proxy_wasm_hfuncs[]` (9136e463, 96b4e27e):
    // "proxy_get_log_level" is `ngx_proxy_wasm_hfuncs_nop` (NYI) declared with
    // `ngx_wavm_arity_i32x2`: two parameters where the ABI (and every SDK) has one. A module
    // importing `(i32) -> i32` fails to load; one importing the engine's signature traps.
    linker.func_wrap(
        "env",
        "proxy_get_log_level",
        move |mut caller: wasmtime::Caller<'_, T>, _: i32, _: i32| -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_get_log_level");
            kong_traps(get(caller.data_mut()), "proxy_get_log_level")?;
            ok()
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

pub(crate) fn ok() -> wasmtime::Result<i32> {
    Ok(Status::Ok.code())
}

pub(crate) fn status(s: Status) -> wasmtime::Result<i32> {
    Ok(s.code())
}

/// The status a test made `call` fail with ([`crate::Harness::fail_host_call`]): the import then
/// returns it at once, changing nothing, as a host refusing the call would.
pub(crate) fn injected(state: &HostState, call: &str) -> Option<Status> {
    state.world().failing_calls.get(call).copied()
}

/// Traps when the profile is Kong: ngx_wasm_module does not implement `call`.
/// ngx_proxy_wasm_host.c, `ngx_proxy_wasm_hfuncs[]` (9136e463 and 96b4e27e): the entry points to
/// `ngx_proxy_wasm_hfuncs_nop`, which returns NGX_WAVM_NYI; ngx_wavm_host.c,
/// ngx_wavm_hfunc_trampoline turns that into the trap "function not yet implemented: <name>".
pub(crate) fn kong_traps(state: &HostState, call: &'static str) -> Result<(), HostTrap> {
    if state.profile().is_kong() {
        return Err(HostTrap::NotImplemented {
            call,
            profile: state.profile().name(),
        });
    }
    Ok(())
}

/// How ngx_wavm_hfunc_trampoline (ngx_wavm_host.c) prefixes a trap message by the host
/// function's return code.
#[derive(Clone, Copy)]
pub(crate) enum TrapKind {
    /// NGX_WAVM_BAD_USAGE: `host trap (bad usage): `.
    BadUsage,
    /// NGX_WAVM_ERROR: `host trap (internal error): `.
    Internal,
    /// NGX_WAVM_OK with a trap message (ngx_proxy_wasm_result_trap(.., NGX_WAVM_OK)): no prefix.
    Plain,
}

/// A trap the Kong engine raises in `call`, with the engine's message.
pub(crate) fn engine_trap(call: &'static str, kind: TrapKind, message: &str) -> HostTrap {
    let prefix = match kind {
        TrapKind::BadUsage => "host trap (bad usage): ",
        TrapKind::Internal => "host trap (internal error): ",
        TrapKind::Plain => "",
    };
    HostTrap::Engine {
        call,
        message: format!("{prefix}{message}"),
    }
}

/// Counts one host call (the guest calling import `call`): the first thing every import does,
/// refused or trapping calls included ([`crate::Crossings::host_calls`]).
pub(crate) fn crossed(state: &mut HostState, call: &str) {
    state.crossed(crate::crossings::Kind::HostCall(call));
}

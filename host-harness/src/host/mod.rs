//! The imports the host provides, one module per interface. Each module registers itself with
//! `add_to_linker(&mut Linker<T>, get)` where `get` projects the store data to [`HostState`], so
//! the groups compose (wasmtime style). [`add_to_linker`] registers them all.
//!
//! Rule for every call: a pointer/length outside guest memory or a malformed map encoding is a
//! trap ([`crate::HostTrap`]); an expected failure (missing key, unknown cluster, wrong phase)
//! is a [`crate::Status`] the SDK handles. Calls a profile does not implement trap.

pub(crate) mod buffers;
pub(crate) mod callouts;
pub(crate) mod foreign;
pub(crate) mod grpc;
pub(crate) mod headers;
pub(crate) mod logging;
pub(crate) mod metrics;
pub(crate) mod properties;
pub(crate) mod queues;
pub(crate) mod shared_data;
pub(crate) mod stream_control;
pub(crate) mod timers;
pub(crate) mod wasi;

use crate::error::HostTrap;
use crate::state::HostState;
use crate::{Profile, Status};
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
pub(crate) fn kong_traps(state: &HostState, call: &'static str) -> Result<(), HostTrap> {
    if state.profile() == Profile::Kong {
        return Err(HostTrap::NotImplemented {
            call,
            profile: "kong",
        });
    }
    Ok(())
}

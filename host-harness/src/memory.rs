//! Bounds-checked access to guest linear memory.
//!
//! Every guest pointer goes through here: a pointer/length pair outside memory is a
//! [`HostTrap::OutOfBounds`], never a status code. Values handed back to the guest are copied
//! into memory the guest allocates with its `proxy_on_memory_allocate` (or `malloc`) export.

use crate::crossings::Kind;
use crate::error::HostTrap;
use crate::host::GetState;
use wasmtime::{Caller, Extern, Memory};

fn memory<T>(caller: &mut Caller<'_, T>) -> Result<Memory, HostTrap> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Ok(m),
        _ => Err(HostTrap::MissingExport("memory")),
    }
}

/// Copies `len` bytes at `ptr` out of the guest.
pub(crate) fn read<T>(
    caller: &mut Caller<'_, T>,
    call: &'static str,
    ptr: i32,
    len: i32,
) -> Result<Vec<u8>, HostTrap> {
    let (p, l) = (ptr as u32, len as u32);
    let mem = memory(caller)?;
    let data = mem.data(&*caller);
    let start = p as usize;
    let end = start.checked_add(l as usize);
    match end.and_then(|end| data.get(start..end)) {
        Some(bytes) => Ok(bytes.to_vec()),
        None => Err(HostTrap::OutOfBounds {
            call,
            ptr: p,
            len: l,
        }),
    }
}

/// Copies `bytes` into the guest at `ptr`.
pub(crate) fn write<T>(
    caller: &mut Caller<'_, T>,
    call: &'static str,
    ptr: i32,
    bytes: &[u8],
) -> Result<(), HostTrap> {
    let mem = memory(caller)?;
    let data = mem.data_mut(&mut *caller);
    let start = ptr as u32 as usize;
    let slot = start
        .checked_add(bytes.len())
        .and_then(|end| data.get_mut(start..end));
    match slot {
        Some(slot) => {
            slot.copy_from_slice(bytes);
            Ok(())
        }
        None => Err(HostTrap::OutOfBounds {
            call,
            ptr: ptr as u32,
            len: bytes.len() as u32,
        }),
    }
}

/// Writes a little-endian u32 at `ptr`.
pub(crate) fn write_u32<T>(
    caller: &mut Caller<'_, T>,
    call: &'static str,
    ptr: i32,
    value: u32,
) -> Result<(), HostTrap> {
    write(caller, call, ptr, &value.to_le_bytes())
}

/// Writes a little-endian u64 at `ptr`.
pub(crate) fn write_u64<T>(
    caller: &mut Caller<'_, T>,
    call: &'static str,
    ptr: i32,
    value: u64,
) -> Result<(), HostTrap> {
    write(caller, call, ptr, &value.to_le_bytes())
}

/// Hands `bytes` to the guest as Envoy does: allocate in the guest, copy, then write the pointer
/// to `ptr_ptr` and the size to `size_ptr`. Empty data is a null pointer with size 0. Each
/// allocation is a crossing ([`crate::Crossings::allocations`]).
pub(crate) fn return_bytes<T>(
    caller: &mut Caller<'_, T>,
    get: GetState<T>,
    call: &'static str,
    bytes: &[u8],
    ptr_ptr: i32,
    size_ptr: i32,
) -> wasmtime::Result<()> {
    return_bytes_with(caller, get, call, bytes, ptr_ptr, size_ptr, false)
}

/// [`return_bytes`], asking the guest to allocate even for empty data when `alloc_empty`:
/// Kong calls `proxy_on_memory_allocate(0)` for an empty value (ngx_proxy_wasm.c,
/// ngx_proxy_wasm_alloc from the header, property and shared-data getters), so the SDK sees an
/// empty value rather than none.
pub(crate) fn return_bytes_with<T>(
    caller: &mut Caller<'_, T>,
    get: GetState<T>,
    call: &'static str,
    bytes: &[u8],
    ptr_ptr: i32,
    size_ptr: i32,
    alloc_empty: bool,
) -> wasmtime::Result<()> {
    let mut addr = 0u32;
    if !bytes.is_empty() || alloc_empty {
        let alloc = caller
            .get_export("proxy_on_memory_allocate")
            .or_else(|| caller.get_export("malloc"))
            .and_then(Extern::into_func)
            .ok_or(HostTrap::MissingExport("proxy_on_memory_allocate"))?;
        let alloc = alloc.typed::<i32, i32>(&*caller)?;
        get(caller.data_mut()).crossed(Kind::Allocation);
        addr = alloc.call(&mut *caller, bytes.len() as i32)? as u32;
        if !bytes.is_empty() {
            write(caller, call, addr as i32, bytes)?;
        }
    }
    write_u32(caller, call, ptr_ptr, addr)?;
    write_u32(caller, call, size_ptr, bytes.len() as u32)?;
    Ok(())
}

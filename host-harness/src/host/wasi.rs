//! The WASI preview1 calls Envoy provides, on the virtual clock and a seeded RNG.
//!
//! - `fd_write` to 1/2: captured as log lines (stdout Info, stderr Error), one per line;
//!   other fds EBADF. `fd_read`: ENOSYS. `fd_close`, `fd_seek`, `fd_fdstat_set_flags`: EBADF
//!   (ESPIPE for seeking 0-2). `fd_fdstat_get` 0-2: a character device. `fd_prestat_get` /
//!   `fd_prestat_dir_name`: EBADF (no preopens).
//! - `environ_*`: [`crate::HarnessBuilder::env`]; `args_*`: none.
//! - `clock_time_get`, `clock_res_get`: the virtual clock (every clock id), 1 ns resolution.
//! - `random_get`: deterministic bytes from the harness seed. `sched_yield`: 0.
//!   `poll_oneoff`: ENOSYS. `proc_exit`: traps with [`crate::HostTrap::ProcExit`].
//! - Bad pointers trap.

use super::GetState;
use crate::error::HostTrap;
use crate::memory;
use crate::state::HostState;
use crate::LogLevel;
use wasmtime::{Caller, Linker};

const W: &str = "wasi_snapshot_preview1";
const SUCCESS: i32 = 0;
const EBADF: i32 = 8;
const ENOSYS: i32 = 52;
const ESPIPE: i32 = 70;

fn capture(state: &mut HostState, fd: i32, data: &[u8]) {
    let (level, slot) = if fd == 1 {
        (LogLevel::Info, 0)
    } else {
        (LogLevel::Error, 1)
    };
    let mut pending = std::mem::take(&mut state.output_lines[slot]);
    pending.extend_from_slice(data);
    while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
        let line: Vec<u8> = pending.drain(..=nl).collect();
        let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
        state.log(level, text);
    }
    state.output_lines[slot] = pending;
}

fn environ(state: &HostState) -> Vec<Vec<u8>> {
    state
        .config
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}\0").into_bytes())
        .collect()
}

fn next_random(state: &HostState) -> u64 {
    let mut world = state.world();
    // xorshift64*
    let mut x = world.rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    world.rng = x;
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

pub fn add_to_linker<T: 'static>(linker: &mut Linker<T>, get: GetState<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        W,
        "fd_write",
        move |mut caller: Caller<'_, T>,
              fd: i32,
              iovs: i32,
              n: i32,
              written_ptr: i32|
              -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "fd_write");
            let call = "fd_write";
            if fd != 1 && fd != 2 {
                return Ok(EBADF);
            }
            let count = (n as u32 as usize).min(1 << 16);
            let vec = memory::read(&mut caller, call, iovs, (count * 8) as i32)?;
            let mut data = Vec::new();
            for iov in vec.chunks_exact(8) {
                let ptr = i32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
                let len = i32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
                data.extend(memory::read(&mut caller, call, ptr, len)?);
            }
            capture(get(caller.data_mut()), fd, &data);
            memory::write_u32(&mut caller, call, written_ptr, data.len() as u32)?;
            Ok(SUCCESS)
        },
    )?;
    linker.func_wrap(
        W,
        "fd_read",
        move |mut caller: Caller<'_, T>, _: i32, _: i32, _: i32, _: i32| -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "fd_read");
            Ok(ENOSYS)
        },
    )?;
    linker.func_wrap(
        W,
        "fd_close",
        move |mut caller: Caller<'_, T>, _: i32| -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "fd_close");
            Ok(EBADF)
        },
    )?;
    linker.func_wrap(
        W,
        "fd_seek",
        move |mut caller: Caller<'_, T>,
              fd: i32,
              _: i64,
              _: i32,
              _: i32|
              -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "fd_seek");
            Ok(if (0..=2).contains(&fd) { ESPIPE } else { EBADF })
        },
    )?;
    linker.func_wrap(
        W,
        "fd_fdstat_get",
        move |mut caller: Caller<'_, T>, fd: i32, ptr: i32| -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "fd_fdstat_get");
            if !(0..=2).contains(&fd) {
                return Ok(EBADF);
            }
            let mut stat = [0u8; 24];
            stat[0] = 2; // character device
            memory::write(&mut caller, "fd_fdstat_get", ptr, &stat)?;
            Ok(SUCCESS)
        },
    )?;
    linker.func_wrap(
        W,
        "fd_fdstat_set_flags",
        move |mut caller: Caller<'_, T>, _: i32, _: i32| -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "fd_fdstat_set_flags");
            Ok(EBADF)
        },
    )?;
    linker.func_wrap(
        W,
        "fd_prestat_get",
        move |mut caller: Caller<'_, T>, _: i32, _: i32| -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "fd_prestat_get");
            Ok(EBADF)
        },
    )?;
    linker.func_wrap(
        W,
        "fd_prestat_dir_name",
        move |mut caller: Caller<'_, T>, _: i32, _: i32, _: i32| -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "fd_prestat_dir_name");
            Ok(EBADF)
        },
    )?;
    linker.func_wrap(
        W,
        "environ_sizes_get",
        move |mut caller: Caller<'_, T>, count_ptr: i32, size_ptr: i32| -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "environ_sizes_get");
            let env = environ(get(caller.data_mut()));
            let size: usize = env.iter().map(Vec::len).sum();
            memory::write_u32(
                &mut caller,
                "environ_sizes_get",
                count_ptr,
                env.len() as u32,
            )?;
            memory::write_u32(&mut caller, "environ_sizes_get", size_ptr, size as u32)?;
            Ok(SUCCESS)
        },
    )?;
    linker.func_wrap(
        W,
        "environ_get",
        move |mut caller: Caller<'_, T>, ptrs: i32, buf: i32| -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "environ_get");
            let env = environ(get(caller.data_mut()));
            let mut at = buf as u32;
            for (i, entry) in env.iter().enumerate() {
                memory::write_u32(&mut caller, "environ_get", ptrs + (i as i32) * 4, at)?;
                memory::write(&mut caller, "environ_get", at as i32, entry)?;
                at += entry.len() as u32;
            }
            Ok(SUCCESS)
        },
    )?;
    linker.func_wrap(
        W,
        "args_sizes_get",
        move |mut caller: Caller<'_, T>, count_ptr: i32, size_ptr: i32| -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "args_sizes_get");
            memory::write_u32(&mut caller, "args_sizes_get", count_ptr, 0)?;
            memory::write_u32(&mut caller, "args_sizes_get", size_ptr, 0)?;
            Ok(SUCCESS)
        },
    )?;
    linker.func_wrap(
        W,
        "args_get",
        move |mut caller: Caller<'_, T>, _: i32, _: i32| -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "args_get");
            Ok(SUCCESS)
        },
    )?;
    linker.func_wrap(
        W,
        "clock_time_get",
        move |mut caller: Caller<'_, T>,
              _id: i32,
              _precision: i64,
              ptr: i32|
              -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "clock_time_get");
            let now = get(caller.data_mut()).world().clock_ns;
            memory::write_u64(&mut caller, "clock_time_get", ptr, now)?;
            Ok(SUCCESS)
        },
    )?;
    linker.func_wrap(
        W,
        "clock_res_get",
        move |mut caller: Caller<'_, T>, _id: i32, ptr: i32| -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "clock_res_get");
            memory::write_u64(&mut caller, "clock_res_get", ptr, 1)?;
            Ok(SUCCESS)
        },
    )?;
    linker.func_wrap(
        W,
        "random_get",
        move |mut caller: Caller<'_, T>, ptr: i32, len: i32| -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "random_get");
            let len = len as u32 as usize;
            let mut bytes = Vec::with_capacity(len);
            while bytes.len() < len {
                bytes.extend_from_slice(&next_random(get(caller.data_mut())).to_le_bytes());
            }
            bytes.truncate(len);
            memory::write(&mut caller, "random_get", ptr, &bytes)?;
            Ok(SUCCESS)
        },
    )?;
    linker.func_wrap(
        W,
        "sched_yield",
        move |mut caller: Caller<'_, T>| -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "sched_yield");
            Ok(SUCCESS)
        },
    )?;
    linker.func_wrap(
        W,
        "poll_oneoff",
        move |mut caller: Caller<'_, T>, _: i32, _: i32, _: i32, _: i32| -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "poll_oneoff");
            Ok(ENOSYS)
        },
    )?;
    linker.func_wrap(
        W,
        "proc_exit",
        move |mut caller: Caller<'_, T>, code: i32| -> wasmtime::Result<()> {
            crate::host::crossed(get(caller.data_mut()), "proc_exit");
            Err(HostTrap::ProcExit(code).into())
        },
    )?;
    Ok(())
}

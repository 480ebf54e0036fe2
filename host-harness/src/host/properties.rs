//! `proxy_get_property`, `proxy_set_property`.
//!
//! Paths arrive as NUL-separated segments. get looks in the current stream's properties (set
//! by the test with [`crate::HttpStream::set_property`] or by the guest), then the harness-wide
//! ones ([`crate::Harness::set_property`]); NotFound when absent or when the profile does not
//! expose the path ([`crate::Profile::has_property`]). An empty value is Ok with a null pointer.
//! set stores on the current stream (exact path; readable back by get); in a root context it is
//! NotFound (Envoy has no filter state there). Bad pointers trap.

use super::{ok, status, GetState};
use crate::codec;
use crate::memory;
use crate::Status;
use wasmtime::{Caller, Linker};

pub fn add_to_linker<T: 'static>(linker: &mut Linker<T>, get: GetState<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_property",
        move |mut caller: Caller<'_, T>,
              pp: i32,
              pl: i32,
              ptr_ptr: i32,
              size_ptr: i32|
              -> wasmtime::Result<i32> {
            let call = "proxy_get_property";
            let path = memory::read(&mut caller, call, pp, pl)?;
            let state = get(caller.data_mut());
            if let Some(s) = super::injected(state, call) {
                return status(s);
            }
            if !state
                .profile()
                .has_property(&codec::property_segments(&path))
            {
                return status(Status::NotFound);
            }
            let mut value = state
                .stream()
                .and_then(|s| s.properties.get(&path).cloned());
            if value.is_none() {
                value = state.world().properties.get(&path).cloned();
            }
            match value {
                Some(v) => {
                    memory::return_bytes(&mut caller, call, &v, ptr_ptr, size_ptr)?;
                    ok()
                }
                None => status(Status::NotFound),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_property",
        move |mut caller: Caller<'_, T>,
              pp: i32,
              pl: i32,
              vp: i32,
              vl: i32|
              -> wasmtime::Result<i32> {
            let call = "proxy_set_property";
            let path = memory::read(&mut caller, call, pp, pl)?;
            let value = memory::read(&mut caller, call, vp, vl)?;
            if let Some(s) = super::injected(get(caller.data_mut()), call) {
                return status(s);
            }
            match get(caller.data_mut()).stream() {
                Some(stream) => {
                    stream.properties.insert(path, value);
                    ok()
                }
                None => status(Status::NotFound),
            }
        },
    )?;
    Ok(())
}

//! Header and trailer maps: `proxy_{get,set}_header_map_pairs`,
//! `proxy_{get,add,replace,remove}_header_map_value`.
//!
//! Names are lowercased on the way in (Envoy's `LowerCaseString`). Values are bytes.
//! - get value: first value of the name; NotFound if absent.
//! - replace: Envoy's `setCopy` removes every value of the name and appends the new one (seen
//!   in Envoy 1.40 by the scenario tests: two `traceparent` lines become one); Kong removes
//!   every value and puts one where the first was. Absent: appended.
//! - add: appends (duplicates kept). remove: removes every value of the name.
//! - set pairs: replaces the whole map.
//! - A map that does not exist yet (response headers during the request phase, callout maps
//!   outside `on_http_call_response`, any stream map in a root context) is BadArgument, or
//!   NotFound in `on_log`; an unknown map type is BadArgument.
//! - Bad pointers and malformed serialized maps trap.

use super::{ok, status, GetState};
use crate::codec;
use crate::memory;
use crate::profile::Phase;
use crate::state::HostState;
use crate::{Headers, MapType, Profile, Status};
use wasmtime::{Caller, Linker};

/// The map the guest addresses, or the status it gets when that map does not exist.
fn map_mut(state: &mut HostState, raw: i32) -> Result<&mut Headers, Status> {
    let missing = if state.phase == Phase::Log {
        Status::NotFound
    } else {
        Status::BadArgument
    };
    let map_type = MapType::from_raw(raw).ok_or(Status::BadArgument)?;
    let slot = match map_type {
        MapType::CalloutResponseHeaders => state.callout_response.as_mut().map(|r| &mut r.headers),
        MapType::CalloutResponseTrailers => {
            state.callout_response.as_mut().map(|r| &mut r.trailers)
        }
        MapType::GrpcInitialMetadata | MapType::GrpcTrailingMetadata => None,
        stream_map => {
            let stream = state.stream().ok_or(Status::BadArgument)?;
            match stream_map {
                MapType::RequestHeaders => stream.request_headers.as_mut(),
                MapType::RequestTrailers => stream.request_trailers.as_mut(),
                MapType::ResponseHeaders => stream.response_headers.as_mut(),
                _ => stream.response_trailers.as_mut(),
            }
        }
    };
    slot.ok_or(missing)
}

fn lower(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_ascii_lowercase()
}

/// Replaces the value of `name` with the profile's semantics.
pub(crate) fn replace(profile: Profile, map: &mut Headers, name: &str, value: Vec<u8>) {
    match (profile, map.iter().position(|(n, _)| n == name)) {
        (Profile::Kong, Some(first)) => {
            map[first].1 = value;
            let mut i = 0;
            map.retain(|(n, _)| {
                i += 1;
                i - 1 == first || n != name
            });
        }
        _ => {
            map.retain(|(n, _)| n != name);
            map.push((name.to_string(), value));
        }
    }
}

pub fn add_to_linker<T: 'static>(linker: &mut Linker<T>, get: GetState<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        move |mut caller: Caller<'_, T>,
              map: i32,
              ptr_ptr: i32,
              size_ptr: i32|
              -> wasmtime::Result<i32> {
            let state = get(caller.data_mut());
            if let Some(s) = super::injected(state, "proxy_get_header_map_pairs") {
                return status(s);
            }
            let bytes = match map_mut(state, map) {
                Ok(m) => codec::encode_map(m),
                Err(s) => return status(s),
            };
            memory::return_bytes(
                &mut caller,
                "proxy_get_header_map_pairs",
                &bytes,
                ptr_ptr,
                size_ptr,
            )?;
            ok()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_header_map_pairs",
        move |mut caller: Caller<'_, T>, map: i32, ptr: i32, size: i32| -> wasmtime::Result<i32> {
            let call = "proxy_set_header_map_pairs";
            let bytes = memory::read(&mut caller, call, ptr, size)?;
            let pairs = codec::decode_map(call, &bytes)?;
            let state = get(caller.data_mut());
            match map_mut(state, map) {
                Ok(m) => *m = pairs,
                Err(s) => return status(s),
            }
            ok()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_value",
        move |mut caller: Caller<'_, T>,
              map: i32,
              key_ptr: i32,
              key_len: i32,
              ptr_ptr: i32,
              size_ptr: i32|
              -> wasmtime::Result<i32> {
            let call = "proxy_get_header_map_value";
            let key = lower(&memory::read(&mut caller, call, key_ptr, key_len)?);
            let state = get(caller.data_mut());
            if let Some(s) = super::injected(state, call) {
                return status(s);
            }
            let value = match map_mut(state, map) {
                Ok(m) => m.iter().find(|(n, _)| *n == key).map(|(_, v)| v.clone()),
                Err(s) => return status(s),
            };
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
        "proxy_add_header_map_value",
        move |mut caller: Caller<'_, T>,
              map: i32,
              kp: i32,
              kl: i32,
              vp: i32,
              vl: i32|
              -> wasmtime::Result<i32> {
            let call = "proxy_add_header_map_value";
            let key = lower(&memory::read(&mut caller, call, kp, kl)?);
            let value = memory::read(&mut caller, call, vp, vl)?;
            if let Some(s) = super::injected(get(caller.data_mut()), call) {
                return status(s);
            }
            match map_mut(get(caller.data_mut()), map) {
                Ok(m) => m.push((key, value)),
                Err(s) => return status(s),
            }
            ok()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_replace_header_map_value",
        move |mut caller: Caller<'_, T>,
              map: i32,
              kp: i32,
              kl: i32,
              vp: i32,
              vl: i32|
              -> wasmtime::Result<i32> {
            let call = "proxy_replace_header_map_value";
            let key = lower(&memory::read(&mut caller, call, kp, kl)?);
            let value = memory::read(&mut caller, call, vp, vl)?;
            let state = get(caller.data_mut());
            if let Some(s) = super::injected(state, call) {
                return status(s);
            }
            let profile = state.profile();
            match map_mut(state, map) {
                Ok(m) => replace(profile, m, &key, value),
                Err(s) => return status(s),
            }
            ok()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        move |mut caller: Caller<'_, T>, map: i32, kp: i32, kl: i32| -> wasmtime::Result<i32> {
            let call = "proxy_remove_header_map_value";
            let key = lower(&memory::read(&mut caller, call, kp, kl)?);
            if let Some(s) = super::injected(get(caller.data_mut()), call) {
                return status(s);
            }
            match map_mut(get(caller.data_mut()), map) {
                Ok(m) => m.retain(|(n, _)| *n != key),
                Err(s) => return status(s),
            }
            ok()
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn replace_differs_by_profile() {
        let mut envoy = h(&[("a", "1"), ("b", "x"), ("a", "2")]);
        replace(Profile::Envoy, &mut envoy, "a", b"3".to_vec());
        assert_eq!(envoy, h(&[("b", "x"), ("a", "3")]));
        let mut kong = h(&[("a", "1"), ("b", "x"), ("a", "2")]);
        replace(Profile::Kong, &mut kong, "a", b"3".to_vec());
        assert_eq!(kong, h(&[("a", "3"), ("b", "x")]));
        replace(Profile::Kong, &mut kong, "c", b"4".to_vec());
        assert_eq!(kong, h(&[("a", "3"), ("b", "x"), ("c", "4")]));
    }
}

//! `proxy_get_shared_data`, `proxy_set_shared_data`: one store for all workers of a harness.
//!
//! | | Envoy | Kong |
//! |---|---|---|
//! | get missing key | NotFound | NotFound |
//! | set, cas = 0 | writes unconditionally | writes only if the key is missing (missing counts as cas 0), else CasMismatch |
//! | set, cas != 0 | CasMismatch unless it equals the stored cas (a missing key is written) | CasMismatch unless it equals the stored cas |
//! | set, null value pointer (SDK `None`) | stores an empty value (key stays) | deletes the key; a missing key is CasMismatch (nothing written) |
//! | set, empty value (non-null pointer) | stores an empty value | stores an empty value |
//! | cas of a write | new, never zero, harness-wide | the entry's cas + 1 (a new entry starts at 1) |
//! | key lookup | exact bytes | CRC32 of the key only: colliding keys share one slot |
//! | no `shm_kv` zone | - | the call traps |
//!
//! Kong sources (9136e463; 96b4e27e has the same code under `ngx_wasm_shm_*` names):
//! ngx_proxy_wasm_host.c, ngx_proxy_wasm_hfuncs_get_shared_data /
//! ngx_proxy_wasm_hfuncs_set_shared_data: ngx_wa_shm_kv_resolve_key returning NGX_DECLINED (no
//! `shm_kv` zone for the key's namespace nor a default `*` one) traps `failed getting value
//! from shm (could not resolve namespace)` / `failed setting value to shm (could not resolve
//! namespace)` (NGX_WAVM_BAD_USAGE); `value.data ? &value : NULL` makes a null pointer a delete.
//! ngx_wa_shm_kv.c, ngx_wa_shm_kv_set_locked: the key is looked up by
//! `ngx_crc32_long(key)` only; `cas != (n ? n->cas : 0)` writes nothing (CasMismatch); a delete
//! of a missing key writes nothing; every write does `n->cas += 1`.
//!
//! Bad pointers trap.

use super::{ok, status, GetState};
use crate::error::HostTrap;
use crate::memory;
use crate::state::HostState;
use crate::{Profile, Status};
use std::collections::HashMap;
use wasmtime::{Caller, Linker};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Slot {
    Exact(Vec<u8>),
    Crc32(u32),
}

#[derive(Debug, Clone)]
struct Entry {
    /// The key that last wrote the slot (differs from the lookup key after a Kong collision).
    key: Vec<u8>,
    value: Vec<u8>,
    cas: u32,
}

/// The shared-data store.
#[derive(Debug, Default)]
pub(crate) struct SharedData {
    entries: HashMap<Slot, Entry>,
    last_cas: u32,
}

fn slot(profile: Profile, key: &[u8]) -> Slot {
    if profile.is_kong() {
        Slot::Crc32(crc32fast::hash(key))
    } else {
        Slot::Exact(key.to_vec())
    }
}

impl SharedData {
    /// Value and cas of `key`.
    pub(crate) fn get(&self, profile: Profile, key: &[u8]) -> Result<(Vec<u8>, u32), Status> {
        self.entries
            .get(&slot(profile, key))
            .map(|e| (e.value.clone(), e.cas))
            .ok_or(Status::NotFound)
    }

    /// The key that owns the slot of `key` (differs from `key` after a Kong CRC32 collision).
    pub(crate) fn owner(&self, profile: Profile, key: &[u8]) -> Option<Vec<u8>> {
        self.entries.get(&slot(profile, key)).map(|e| e.key.clone())
    }

    /// Writes with the profile's CAS and delete rules; `delete` is the Kong null-pointer delete
    /// (Envoy stores an empty value instead).
    pub(crate) fn set(
        &mut self,
        profile: Profile,
        key: &[u8],
        value: &[u8],
        cas: u32,
        delete: bool,
    ) -> Status {
        let slot = slot(profile, key);
        let stored = self.entries.get(&slot).map(|e| e.cas);
        let kong = profile.is_kong();
        let allowed = if kong {
            stored.unwrap_or(0) == cas
        } else {
            cas == 0 || stored.is_none_or(|s| s == cas)
        };
        if !allowed {
            return Status::CasMismatch;
        }
        if kong && delete {
            return match self.entries.remove(&slot) {
                Some(_) => Status::Ok,
                None => Status::CasMismatch,
            };
        }
        let cas = if kong {
            stored.unwrap_or(0).wrapping_add(1)
        } else {
            self.last_cas = self.last_cas.wrapping_add(1).max(1);
            self.last_cas
        };
        let entry = Entry {
            key: key.to_vec(),
            value: value.to_vec(),
            cas,
        };
        self.entries.insert(slot, entry);
        Status::Ok
    }

    /// Every (key, value, cas), sorted by key.
    pub(crate) fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>, u32)> {
        let mut all: Vec<_> = self
            .entries
            .values()
            .map(|e| (e.key.clone(), e.value.clone(), e.cas))
            .collect();
        all.sort();
        all
    }
}

fn check_zone(state: &HostState, call: &'static str) -> Result<(), HostTrap> {
    if state.profile().is_kong() && !state.config.kong_shm_kv {
        return Err(HostTrap::NoShmKv { call });
    }
    Ok(())
}

pub fn add_to_linker<T: 'static>(linker: &mut Linker<T>, get: GetState<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_shared_data",
        move |mut caller: Caller<'_, T>,
              kp: i32,
              kl: i32,
              ptr_ptr: i32,
              size_ptr: i32,
              cas_ptr: i32|
              -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_get_shared_data");
            let call = "proxy_get_shared_data";
            let key = memory::read(&mut caller, call, kp, kl)?;
            let state = get(caller.data_mut());
            if let Some(s) = super::injected(state, call) {
                return status(s);
            }
            check_zone(state, call)?;
            let profile = state.profile();
            let found = state.world().shared.get(profile, &key);
            match found {
                Ok((value, cas)) => {
                    let kong = profile.is_kong();
                    memory::return_bytes_with(
                        &mut caller,
                        get,
                        call,
                        &value,
                        ptr_ptr,
                        size_ptr,
                        kong,
                    )?;
                    memory::write_u32(&mut caller, call, cas_ptr, cas)?;
                    ok()
                }
                Err(s) => status(s),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_shared_data",
        move |mut caller: Caller<'_, T>,
              kp: i32,
              kl: i32,
              vp: i32,
              vl: i32,
              cas: i32|
              -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_set_shared_data");
            let call = "proxy_set_shared_data";
            let key = memory::read(&mut caller, call, kp, kl)?;
            let value = memory::read(&mut caller, call, vp, vl)?;
            let state = get(caller.data_mut());
            if let Some(s) = super::injected(state, call) {
                return status(s);
            }
            check_zone(state, call)?;
            let profile = state.profile();
            let delete = vp == 0;
            let result = state
                .world()
                .shared
                .set(profile, &key, &value, cas as u32, delete);
            status(result)
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envoy_cas_rules() {
        let mut s = SharedData::default();
        assert_eq!(s.set(Profile::Envoy, b"k", b"1", 0, false), Status::Ok);
        let (_, cas) = s.get(Profile::Envoy, b"k").unwrap();
        assert_eq!(
            s.set(Profile::Envoy, b"k", b"2", cas + 7, false),
            Status::CasMismatch
        );
        assert_eq!(s.set(Profile::Envoy, b"k", b"2", cas, false), Status::Ok);
        assert_eq!(s.set(Profile::Envoy, b"k", b"3", 0, false), Status::Ok);
        assert_eq!(s.set(Profile::Envoy, b"new", b"x", 99, false), Status::Ok);
        assert_eq!(s.set(Profile::Envoy, b"k", b"", 0, true), Status::Ok);
        assert_eq!(s.get(Profile::Envoy, b"k").unwrap().0, b"");
    }

    #[test]
    fn kong_cas_rules() {
        let mut s = SharedData::default();
        assert_eq!(
            s.set(Profile::Kong, b"k", b"1", 5, false),
            Status::CasMismatch
        );
        assert_eq!(s.set(Profile::Kong, b"k", b"1", 0, false), Status::Ok);
        assert_eq!(
            s.set(Profile::Kong, b"k", b"2", 0, false),
            Status::CasMismatch
        );
        let (_, cas) = s.get(Profile::Kong, b"k").unwrap();
        assert_eq!(cas, 1);
        assert_eq!(s.set(Profile::Kong, b"k", b"", cas, false), Status::Ok);
        assert_eq!(s.get(Profile::Kong, b"k"), Ok((Vec::new(), 2)));
        assert_eq!(s.set(Profile::Kong, b"k", b"", 2, true), Status::Ok);
        assert_eq!(s.get(Profile::Kong, b"k"), Err(Status::NotFound));
        assert_eq!(
            s.set(Profile::Kong, b"k", b"", 0, true),
            Status::CasMismatch
        );
        // A re-created key starts over at cas 1.
        assert_eq!(s.set(Profile::Kong38, b"k", b"1", 0, false), Status::Ok);
        assert_eq!(s.get(Profile::Kong38, b"k").unwrap().1, 1);
    }
}

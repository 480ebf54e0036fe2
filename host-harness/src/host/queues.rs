//! `proxy_register_shared_queue`, `proxy_resolve_shared_queue`, `proxy_enqueue_shared_queue`,
//! `proxy_dequeue_shared_queue`.
//!
//! Queues are shared by all workers. Registering an existing (vm_id, name) returns the same id;
//! the first registrant owns it and receives `proxy_on_queue_ready` after each enqueue (Envoy
//! only: Kong never calls it: ngx_proxy_wasm.c looks `proxy_on_queue_ready` up in
//! ngx_proxy_wasm_filter_init_abi and nothing calls it, 9136e463/96b4e27e). resolve: NotFound if
//! absent; Kong traps NYI (ngx_proxy_wasm_host.c, `ngx_proxy_wasm_hfuncs[]`:
//! `proxy_resolve_shared_queue` is `ngx_proxy_wasm_hfuncs_nop`). enqueue/dequeue:
//! NotFound for an unknown id; dequeue of an empty queue is Empty. Bad pointers trap.

use super::{kong_traps, ok, status, GetState};
use crate::memory;
use crate::{Profile, Status};
use std::collections::VecDeque;
use wasmtime::{Caller, Linker};

#[derive(Debug)]
struct Queue {
    vm_id: String,
    name: String,
    /// (worker, root context id) of the first registrant; None when registered by the test.
    owner: Option<(usize, u32)>,
    items: VecDeque<Vec<u8>>,
}

/// All shared queues, plus the `on_queue_ready` notifications not delivered yet.
#[derive(Debug, Default)]
pub(crate) struct Queues {
    queues: Vec<Queue>,
    pub(crate) ready: Vec<(usize, u32, u32)>,
}

impl Queues {
    pub(crate) fn register(&mut self, vm_id: &str, name: &str, owner: Option<(usize, u32)>) -> u32 {
        if let Some(id) = self.resolve(vm_id, name) {
            return id;
        }
        self.queues.push(Queue {
            vm_id: vm_id.to_string(),
            name: name.to_string(),
            owner,
            items: VecDeque::new(),
        });
        self.queues.len() as u32
    }

    pub(crate) fn resolve(&self, vm_id: &str, name: &str) -> Option<u32> {
        self.queues
            .iter()
            .position(|q| q.vm_id == vm_id && q.name == name)
            .map(|i| i as u32 + 1)
    }

    fn get_mut(&mut self, id: u32) -> Option<&mut Queue> {
        self.queues.get_mut((id as usize).checked_sub(1)?)
    }

    pub(crate) fn enqueue(&mut self, profile: Profile, id: u32, value: Vec<u8>) -> Status {
        let Some(q) = self.get_mut(id) else {
            return Status::NotFound;
        };
        q.items.push_back(value);
        if let (false, Some((worker, ctx))) = (profile.is_kong(), q.owner) {
            self.ready.push((worker, ctx, id));
        }
        Status::Ok
    }

    pub(crate) fn dequeue(&mut self, id: u32) -> Result<Vec<u8>, Status> {
        let q = self.get_mut(id).ok_or(Status::NotFound)?;
        q.items.pop_front().ok_or(Status::Empty)
    }

    pub(crate) fn items(&self, id: u32) -> Vec<Vec<u8>> {
        (id as usize)
            .checked_sub(1)
            .and_then(|i| self.queues.get(i))
            .map(|q| q.items.iter().cloned().collect())
            .unwrap_or_default()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn add_to_linker<T: 'static>(linker: &mut Linker<T>, get: GetState<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_register_shared_queue",
        move |mut caller: Caller<'_, T>, np: i32, nl: i32, id_ptr: i32| -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_register_shared_queue");
            let call = "proxy_register_shared_queue";
            let name = text(&memory::read(&mut caller, call, np, nl)?);
            let state = get(caller.data_mut());
            if let Some(s) = super::injected(state, call) {
                return status(s);
            }
            let owner = Some((state.worker, state.root_context_id));
            let vm_id = state.config.vm_id.clone();
            let id = state.world().queues.register(&vm_id, &name, owner);
            memory::write_u32(&mut caller, call, id_ptr, id)?;
            ok()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_resolve_shared_queue",
        move |mut caller: Caller<'_, T>,
              vp: i32,
              vl: i32,
              np: i32,
              nl: i32,
              id_ptr: i32|
              -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_resolve_shared_queue");
            let call = "proxy_resolve_shared_queue";
            kong_traps(get(caller.data_mut()), call)?;
            let vm_id = text(&memory::read(&mut caller, call, vp, vl)?);
            let name = text(&memory::read(&mut caller, call, np, nl)?);
            if let Some(s) = super::injected(get(caller.data_mut()), call) {
                return status(s);
            }
            let found = get(caller.data_mut()).world().queues.resolve(&vm_id, &name);
            match found {
                Some(id) => {
                    memory::write_u32(&mut caller, call, id_ptr, id)?;
                    ok()
                }
                None => status(Status::NotFound),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_enqueue_shared_queue",
        move |mut caller: Caller<'_, T>, id: i32, vp: i32, vl: i32| -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_enqueue_shared_queue");
            let value = memory::read(&mut caller, "proxy_enqueue_shared_queue", vp, vl)?;
            let state = get(caller.data_mut());
            if let Some(s) = super::injected(state, "proxy_enqueue_shared_queue") {
                return status(s);
            }
            let profile = state.profile();
            let result = state.world().queues.enqueue(profile, id as u32, value);
            status(result)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_dequeue_shared_queue",
        move |mut caller: Caller<'_, T>,
              id: i32,
              ptr_ptr: i32,
              size_ptr: i32|
              -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_dequeue_shared_queue");
            if let Some(s) = super::injected(get(caller.data_mut()), "proxy_dequeue_shared_queue") {
                return status(s);
            }
            let item = get(caller.data_mut()).world().queues.dequeue(id as u32);
            match item {
                Ok(v) => {
                    memory::return_bytes(
                        &mut caller,
                        get,
                        "proxy_dequeue_shared_queue",
                        &v,
                        ptr_ptr,
                        size_ptr,
                    )?;
                    ok()
                }
                Err(s) => status(s),
            }
        },
    )?;
    Ok(())
}

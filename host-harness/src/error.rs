//! Errors of the harness (returned to the test) and traps (raised inside the guest).

use std::path::PathBuf;

/// A failure the test sees.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The `.wasm` file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a valid module (or invalid WAT).
    #[error("invalid module: {0}")]
    Compile(String),
    /// The module imports something this host does not provide.
    #[error("unknown import `{module}::{name}`: this host does not provide it")]
    UnknownImport {
        /// Import module (`env`, `wasi_snapshot_preview1`, ...).
        module: String,
        /// Import field.
        name: String,
    },
    /// The module exports no `proxy_abi_version_*` marker, or the wrong one.
    #[error("unsupported proxy-wasm ABI: {found}; this host implements proxy_abi_version_0_2_1")]
    UnsupportedAbi {
        /// What was found (`none` or the export name).
        found: String,
    },
    /// The module imports a host function with a signature the profile's host does not
    /// declare: the gateway refuses to load it (Kong declares `proxy_get_log_level` with two
    /// parameters, so an SDK filter importing it does not link).
    #[error("incompatible import type for `{module}::{name}`: the host declares {expected}, the module imports {found}")]
    IncompatibleImport {
        /// Import module.
        module: String,
        /// Import field.
        name: String,
        /// The host's signature.
        expected: String,
        /// The module's signature.
        found: String,
    },
    /// Instantiation failed (signature mismatch, start function trapped).
    #[error("instantiation failed: {0}")]
    Instantiate(String),
    /// A guest callback trapped; the VM is dead afterwards.
    #[error("guest trapped in {callback}: {message}")]
    Trap {
        /// The export being called.
        callback: String,
        /// The trap, with the guest's last critical log line (its panic message) if any.
        message: String,
        /// The underlying wasmtime error; [`HarnessError::host_trap`] finds a [`HostTrap`] in it.
        error: wasmtime::Error,
    },
    /// The VM trapped earlier and cannot be used.
    #[error("vm of worker {worker} is dead after an earlier trap: {message}")]
    VmFailed {
        /// Worker index.
        worker: usize,
        /// The first trap.
        message: String,
    },
    /// The test referred to a callout that is not pending.
    #[error("no pending http callout with id {0}")]
    NoSuchCallout(u64),
    /// The test asked for something the harness cannot do.
    #[error("{0}")]
    Usage(String),
}

impl HarnessError {
    /// The host trap behind a [`HarnessError::Trap`], if the host (not the guest) trapped.
    pub fn host_trap(&self) -> Option<&HostTrap> {
        match self {
            HarnessError::Trap { error, .. } => error.downcast_ref::<HostTrap>(),
            _ => None,
        }
    }
}

/// Why the host made the guest trap.
#[derive(Debug, thiserror::Error)]
pub enum HostTrap {
    /// A guest pointer/length pair is outside linear memory.
    #[error("{call}: out-of-bounds guest memory access at {ptr:#x} (+{len})")]
    OutOfBounds {
        /// The host call.
        call: &'static str,
        /// The pointer.
        ptr: u32,
        /// The length.
        len: u32,
    },
    /// A serialized header map is malformed.
    #[error("{call}: malformed header map encoding: {reason}")]
    BadMapEncoding {
        /// The host call.
        call: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// The active profile does not implement this call: Kong's engine maps it to
    /// `ngx_proxy_wasm_hfuncs_nop`, which traps with "function not yet implemented".
    #[error("host trap (function not yet implemented): {call} ({profile})")]
    NotImplemented {
        /// The host call.
        call: &'static str,
        /// The profile ([`crate::Profile::name`]).
        profile: &'static str,
    },
    /// Shared data used on Kong without a configured `shm_kv` zone
    /// (ngx_wa_shm_kv_resolve_key finds no namespace).
    #[error("{call}: host trap (bad usage): failed {} shm (could not resolve namespace)", if *call == "proxy_get_shared_data" { "getting value from" } else { "setting value to" })]
    NoShmKv {
        /// The host call.
        call: &'static str,
    },
    /// The Kong engine (ngx_wasm_module) raises a trap here; `message` is the engine's trap
    /// text, e.g. `host trap (bad usage): can only send HTTP dispatch during ...`.
    #[error("{call}: {message}")]
    Engine {
        /// The host call.
        call: &'static str,
        /// The engine's trap message.
        message: String,
    },
    /// The Kong engine would dereference a NULL pointer here and crash the nginx worker
    /// (SIGSEGV) instead of trapping; the harness traps so the test sees it.
    #[error("{call}: the Kong engine would crash the nginx worker here ({reason})")]
    Crash {
        /// The host call.
        call: &'static str,
        /// What the engine does, with its source.
        reason: &'static str,
    },
    /// The guest has no `memory` export or no allocator export.
    #[error("guest lacks the `{0}` export the host needs")]
    MissingExport(&'static str),
    /// `proc_exit` was called.
    #[error("proc_exit({0})")]
    ProcExit(i32),
}

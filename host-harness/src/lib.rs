//! A state-based proxy-wasm host on wasmtime that runs real plugin `.wasm` files (ABI 0.2.1,
//! Rust SDK 0.2.5, `wasm32-wasip1`) under `cargo test`, like the Go SDK's proxytest: the host
//! keeps state (headers, bodies, shared data, queues, metrics, logs, clock, callouts) and the
//! test drives callbacks and then reads that state. Nothing is an expectation mock.
//!
//! ```
//! use host_harness::{Action, Harness, Profile};
//!
//! # fn main() -> Result<(), host_harness::HarnessError> {
//! // A tiny guest in WAT: it adds `x-seen: 1` to every request and pauses.
//! let wat = r#"(module
//!   (import "env" "proxy_add_header_map_value"
//!     (func $add (param i32 i32 i32 i32 i32) (result i32)))
//!   (memory (export "memory") 1)
//!   (data (i32.const 16) "x-seen1")
//!   (func (export "proxy_abi_version_0_2_1"))
//!   (func (export "proxy_on_memory_allocate") (param i32) (result i32) i32.const 1024)
//!   (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
//!     (drop (call $add (i32.const 0) (i32.const 16) (i32.const 6) (i32.const 22) (i32.const 1)))
//!     i32.const 1))"#;
//! let h = Harness::builder().profile(Profile::Envoy).workers(2).build(wat.as_bytes())?;
//! assert!(h.configure()?);
//! let mut s = h.worker(1).stream()?;
//! s.set_property("source.address", "127.0.0.1:5000")?;
//! let action = s.send_request_headers(&[(":method", "GET"), (":path", "/")], true)?;
//! assert_eq!(action, Action::Pause);
//! assert_eq!(s.request_header("x-seen"), Some(b"1".to_vec()));
//! s.finish()?;
//! # Ok(())
//! # }
//! ```
//!
//! # The API in short
//!
//! - [`Harness::builder`] -> [`HarnessBuilder`]: `profile`, `plugin_config`, `vm_config`,
//!   `workers`, `clusters` (Envoy callout targets, default `upstream`), `kong_shm_kv`,
//!   `kong_server` (Kong's `:authority`, default `localhost:8000`), `filter_name`, `vm_id`,
//!   `log_level`, `env`, `property`, `foreign_function`, `start_time_ns`, `seed`; then
//!   `build(bytes_or_wat)` / `build_from_file(path)`.
//! - [`Harness`]: `configure() -> bool` (on_vm_start + on_configure on every worker),
//!   `worker(i)`, `stream()`, `set_property`, `logs`/`logs_at`/`logged`, `metric`/`metrics`/
//!   `host_metric_name`, `shared_data`/`set_shared_data`/`delete_shared_data`/
//!   `shared_data_owner`, `register_queue`/`resolve_queue`/`enqueue`/`queue_items`,
//!   `now_ns`/`advance_clock` (fires ticks and callout timeouts),
//!   `callouts`/`respond_callout`/`fail_callout`/`fail_callout_with`, `fail_host_call` (a host
//!   call returns a given status and does nothing, as a refusing host's would).
//! - [`Worker`]: `configure`, `stream`, `tick`, `tick_period`, `done`, `logs`.
//! - [`HttpStream`]: `set_property`, `send_request_headers/body/trailers`,
//!   `send_response_headers/body/trailers` (each returns the [`Action`]), `log`, `done`,
//!   `delete`, `finish`; observe `request_headers` (what the filter sees),
//!   [`HttpStream::upstream_request_headers`] (what the upstream receives), `response_headers`,
//!   `request_header`, `request_body`, `response_body`, `local_response`, `events`,
//!   `request_resumed`, `logs`.
//!
//! Each worker is its own wasmtime `Store`/`Instance`; all workers share one shared-data store,
//! the queues, metrics, logs, properties and the clock (an `Arc<Mutex<_>>` owned by the
//! harness), so CAS races between workers are real and the test can interleave them.
//! [`HttpStream`] is `Send`: streams may also run on threads.
//!
//! # Host calls
//!
//! Every `env` import of proxy-wasm 0.2.5 and the WASI preview1 calls Envoy provides are
//! implemented, one module per interface; the per-call status/trap rules, with the Kong engine
//! source of each, are documented on each module (see [`host`]). General rule: a guest pointer
//! outside memory or a malformed serialized map traps ([`HostTrap`]); an expected failure
//! returns the [`Status`] the SDK handles. A module importing anything else fails to load with
//! [`HarnessError::UnknownImport`] naming module and field (or
//! [`HarnessError::IncompatibleImport`] for a signature the host declares otherwise); a module
//! without `proxy_abi_version_0_2_1` fails with [`HarnessError::UnsupportedAbi`].
//!
//! # Profiles
//!
//! [`Profile::Envoy`] (default); [`Profile::Kong`] = Kong 3.9 (ngx_wasm_module `9136e463`);
//! [`Profile::Kong38`] = Kong 3.8 (`96b4e27e`). [`Profile::name`]: `envoy`, `kong-3.9`,
//! `kong-3.8`. The Kong profiles trap where the engine traps ([`HostTrap::NotImplemented`],
//! [`HostTrap::Engine`] with the engine's message, [`HostTrap::Crash`] where the engine would
//! dereference NULL and kill the worker). The README has the full table; in short (engine
//! sources under `src/`):
//!
//! | | Envoy | Kong | source |
//! |---|---|---|---|
//! | NYI calls (foreign functions, resolve queue, done, close stream, continue response, clear route cache, gRPC) | implemented | trap | `common/proxy_wasm/ngx_proxy_wasm_host.c`, `ngx_proxy_wasm_hfuncs[]` |
//! | `proxy_get_log_level` | level | module does not load | same table (`ngx_wavm_arity_i32x2`) |
//! | `proxy_set_effective_context` | switches | no-op Ok | `ngx_proxy_wasm_hfuncs_set_effective_context` |
//! | dispatch phases | any | request headers/body, tick, callout response | `ngx_proxy_wasm_hfuncs_dispatch_http_call` |
//! | dispatch failure | callback (0, 0, 0) | 3.9 callback + `:dispatch_status`; 3.8 log only; request resumed after the last call | `http/proxy_wasm/ngx_http_proxy_wasm_dispatch.c` |
//! | metrics | `wasmcustom.<name>`, BadArgument | `pw:<f>:<name>` (3.9) / `pw.<f>.<name>` (3.8), CRC32 ids, traps | `ngx_proxy_wasm_hfuncs_*_metric`, `common/metrics/ngx_wa_metrics.c` |
//! | shared data | cas 0 unconditional | CAS exact, null deletes, CRC32 keys, no zone traps | `ngx_proxy_wasm_hfuncs_*_shared_data`, `common/shm/ngx_wa_shm_kv.c` |
//! | request headers | map | nginx list: removed lines still go upstream, builtin headers, replace of duplicates clears | `http/ngx_http_wasm_headers*.c` |
//! | `:authority` | as sent | `server_name:port` ([`HarnessBuilder::kong_server`]) | `common/proxy_wasm/ngx_proxy_wasm_maps.c` |
//! | properties | all set, `xds.node` default | engine table, `not_supported`/NYI log lines, `xds.*` NotFound | `common/proxy_wasm/ngx_proxy_wasm_properties.c` |
//! | bodies | copyFrom | start ignored on get, truncating set, request body once | `ngx_proxy_wasm_hfuncs_get/set_buffer`, `http/proxy_wasm/ngx_http_proxy_wasm.c` |
//! | Pause, end_of_stream, trailers, queue ready | as sent | engine rules | `common/proxy_wasm/ngx_proxy_wasm.c` |
//! | stream end | log, done, delete | done, log, delete | `ngx_proxy_wasm_on_log` |

mod codec;
mod crossings;
mod error;
mod harness;
pub mod host;
mod memory;
mod profile;
mod state;
mod stream;
mod types;
mod vm;

pub use crossings::Crossings;
pub use error::{HarnessError, HostTrap};
pub use harness::{Harness, HarnessBuilder, Worker};
pub use host::callouts::{Callout, CalloutResponse};
pub use profile::Profile;
pub use state::{ForeignFunction, HostState};
pub use stream::HttpStream;
pub use types::{
    Action, BufferType, Headers, LocalResponse, LogEntry, LogLevel, MapType, Metric, MetricType,
    Status, StreamEvent, StreamType,
};

/// Path of the `abi-probe` test guest built by this crate's build script, or the reason it
/// could not be built.
pub fn abi_probe_wasm() -> Result<&'static str, &'static str> {
    match env!("ABI_PROBE_WASM") {
        "" => Err(env!("ABI_PROBE_ERROR")),
        path => Ok(path),
    }
}

//! Host-agnostic core shared by every plugin of the suite.
//!
//! - [`error`]: the config error type (`field.path: message`) and JSON parsing that names the field.
//! - [`headers`]: RFC 9110 header-name and header-value validation, header-list helpers.
//! - [`json_read`]: config read by hand from a parsed JSON value, naming the field of a refusal.
//! - [`matching`]: request matching by path (exact, prefix, regex) and method.
//! - [`host_kind`]: which host runs the module (Envoy or Kong's engine), and what it allows.
//! - [`identity`]: the identity header names every plugin agrees on by default.
//! - [`antispoof`]: removal of client-supplied copies of trusted headers.
//! - [`ports`]: small traits for everything a plugin asks of its host.
//! - [`proxy_wasm_host`]: the one adapter implementing those traits with proxy-wasm hostcalls.
//! - [`exchange`]: what the adapter keeps for one callback (each map, the clock, properties read
//!   once; header writes sent once).
//! - [`embed`]: the few decisions the gateway suite takes for the plugins it runs as jobs.
//! - [`shared_record`]: read-modify-write of a keyed record in shared data, bounded cas retries.
//!
//! Decision code depends on [`ports`] only, never on `proxy_wasm`, so it runs natively in unit
//! tests (with [`fake::FakeHost`] behind the `fake-host` feature).

pub mod abi;
pub mod antispoof;
pub mod embed;
pub mod error;
pub mod exchange;
#[cfg(feature = "fake-host")]
pub mod fake;
pub mod headers;
pub mod host_kind;
pub mod identity;
pub mod json_read;
pub mod matching;
pub mod metrics;
pub mod ports;
pub mod proxy_wasm_host;
pub mod shared_record;

pub use error::{ConfigError, ConfigErrorKind};

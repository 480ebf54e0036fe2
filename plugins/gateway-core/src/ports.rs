//! Host ports: the small traits through which plugin logic talks to its host.
//!
//! Decision code is generic over these traits and never imports `proxy_wasm`. The proxy-wasm
//! adapter ([`crate::proxy_wasm_host::ProxyWasmHost`]) implements them with real hostcalls; the
//! `fake-host` feature provides an in-memory implementation for native tests.
//!
//! Every call crosses the VM boundary and copies: read a header map once per phase, then decide
//! on the copy.

use crate::headers::HeaderList;
use thiserror::Error;

/// A host call that did not succeed, by the status the host returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum HostError {
    /// The key, header, property or metric does not exist.
    #[error("not found")]
    NotFound,
    /// The host refused an argument.
    #[error("bad argument")]
    BadArgument,
    /// The host could not serialize the value.
    #[error("serialization failure")]
    SerializationFailure,
    /// The host could not parse the input.
    #[error("parse failure")]
    ParseFailure,
    /// Nothing to return.
    #[error("empty")]
    Empty,
    /// Shared data changed since it was read (compare-and-swap lost).
    #[error("cas mismatch")]
    CasMismatch,
    /// The host failed internally.
    #[error("internal failure")]
    InternalFailure,
    /// The call is not available on this host (e.g. not implemented by Kong).
    #[error("unsupported by host")]
    Unsupported,
    /// A status this crate does not know, by number.
    #[error("unexpected host status {0}")]
    Other(u32),
}

/// Which header map a call addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderMapKind {
    /// Headers going to the upstream.
    Request,
    /// Headers going to the client.
    Response,
}

/// Read and write the request or response headers of the current stream, as bytes.
pub trait HeaderPort {
    /// Every header pair, in order, pseudo-headers included. One copy of the whole map.
    fn header_list(&self, map: HeaderMapKind) -> Result<HeaderList, HostError>;
    /// The value of `name` (`Ok(None)` when absent).
    fn header(&self, map: HeaderMapKind, name: &str) -> Result<Option<Vec<u8>>, HostError>;
    /// Replaces every line of `name` with one line holding `value`.
    fn set_header(&self, map: HeaderMapKind, name: &str, value: &[u8]) -> Result<(), HostError>;
    /// Adds one more line `name: value`.
    fn add_header(&self, map: HeaderMapKind, name: &str, value: &[u8]) -> Result<(), HostError>;
    /// Removes every line of `name`.
    fn remove_header(&self, map: HeaderMapKind, name: &str) -> Result<(), HostError>;
}

/// Host properties (`source.address`, `xds.route_name`, filter state...).
pub trait PropertyPort {
    /// The raw value at `path` (`Ok(None)` when the host has no such property).
    fn property(&self, path: &[&str]) -> Result<Option<Vec<u8>>, HostError>;
    /// Sets a property (on Envoy, filter state readable as `%FILTER_STATE(wasm.<key>)%`).
    fn set_property(&self, path: &[&str], value: &[u8]) -> Result<(), HostError>;
}

/// Wall-clock time from the host.
pub trait Clock {
    /// Nanoseconds since the Unix epoch.
    fn now_unix_nanos(&self) -> Result<u64, HostError>;
}

/// Cryptographically secure random bytes.
pub trait RandomSource {
    /// Fills `buf` entirely.
    fn fill_random(&self, buf: &mut [u8]) -> Result<(), HostError>;
}

/// Log levels, as proxy-wasm defines them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Finest detail.
    Trace,
    /// Diagnostics (e.g. a rule skipped because a property is missing).
    Debug,
    /// Normal events.
    Info,
    /// Something an operator should look at.
    Warn,
    /// A failure (e.g. a config refused).
    Error,
}

/// Writes to the host's log.
pub trait LogPort {
    /// Logs one line. Never fails: a lost log line must not fail a request.
    fn log(&self, level: LogLevel, message: &str);
}

/// Identifier of a defined metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MetricId(pub u32);

/// Host metrics. Envoy exposes them as `wasmcustom.<name>`, Kong as `pw.<filter>.<name>`.
pub trait MetricsPort {
    /// Defines (or finds) a counter.
    fn define_counter(&self, name: &str) -> Result<MetricId, HostError>;
    /// Defines (or finds) a gauge.
    fn define_gauge(&self, name: &str) -> Result<MetricId, HostError>;
    /// Adds `delta` to a counter or gauge.
    fn increment(&self, id: MetricId, delta: i64) -> Result<(), HostError>;
    /// Sets a gauge.
    fn record(&self, id: MetricId, value: u64) -> Result<(), HostError>;
}

/// A shared-data entry and the version (cas) it was read at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SharedEntry {
    /// The value; `None` when the key does not exist.
    pub value: Option<Vec<u8>>,
    /// Version to pass back to [`SharedDataPort::set_shared_data`]; 0 when the key is missing.
    pub cas: u32,
}

/// Key-value data shared by every VM (worker) of the plugin.
///
/// Hosts differ (see ARCHITECTURE.md): on Envoy cas 0 writes unconditionally, on Kong a write
/// succeeds only if cas equals the stored one (missing key = 0) and keys collide by CRC32. So:
/// always write back the cas you read, retry a bounded number of times on
/// [`HostError::CasMismatch`], and store the full key inside the value.
pub trait SharedDataPort {
    /// Reads `key`.
    fn shared_data(&self, key: &str) -> Result<SharedEntry, HostError>;
    /// Writes `key` if its version is still `cas`; [`HostError::CasMismatch`] otherwise.
    fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> Result<(), HostError>;
}

/// Answers the client directly, without the upstream.
pub trait LocalReplyPort {
    /// Sends a local response. The caller must then stop the request (pause).
    fn send_local_reply(
        &self,
        status: u32,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), HostError>;
}

/// Outgoing HTTP calls (JWKS fetch, log shipping). Defined for later plugins; not implemented by
/// the adapter yet. `upstream` is a cluster name on Envoy and `host:port` on Kong.
pub trait HttpCallPort {
    /// Dispatches a call and returns its token; the answer arrives in a later callback.
    fn dispatch_http_call(
        &self,
        upstream: &str,
        headers: &[(&str, &[u8])],
        body: &[u8],
        timeout_millis: u64,
    ) -> Result<u32, HostError>;
}

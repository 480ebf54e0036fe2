//! The one proxy-wasm adapter: implements every port with real hostcalls.
//!
//! - Header and property getters use the SDK's `*_bytes` variants: the string getters panic on
//!   non-UTF-8 values, and a panic traps the VM.
//! - Host statuses come back as [`HostError`]s.
//! - Random bytes come from WASI `random_get` (via `getrandom`), which Envoy and Kong provide.
//!
//! This is the only module of the suite that imports `proxy_wasm::hostcalls`.

use crate::headers::HeaderList;
use crate::ports::{
    Clock, HeaderMapKind, HeaderPort, HostError, LocalReplyPort, LogLevel, LogPort, MetricId,
    MetricsPort, PropertyPort, RandomSource, SharedDataPort, SharedEntry,
};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType, MetricType, Status};
use std::time::UNIX_EPOCH;

/// The current proxy-wasm host. Zero-sized: the host keeps the state.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProxyWasmHost;

impl ProxyWasmHost {
    /// The plugin configuration bytes (`on_configure`); empty when the host gives none.
    pub fn plugin_configuration(&self) -> Result<Vec<u8>, HostError> {
        hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .map(Option::unwrap_or_default)
            .map_err(host_error)
    }

    /// Reads the plugin configuration and compiles it with `compile`. On failure it logs the one
    /// line `<plugin>: invalid configuration: <reason>` (the reason names the field) and returns
    /// `None`: `on_configure` then returns false and the gateway refuses the configuration.
    pub fn compiled_configuration<T, E: std::fmt::Display>(
        &self,
        plugin: &str,
        compile: impl FnOnce(&[u8]) -> Result<T, E>,
    ) -> Option<T> {
        let compiled = self
            .plugin_configuration()
            .map_err(|err| format!("cannot read the configuration: {err}"))
            .and_then(|bytes| compile(&bytes).map_err(|err| err.to_string()));
        match compiled {
            Ok(config) => Some(config),
            Err(message) => {
                self.log(
                    LogLevel::Error,
                    &format!("{plugin}: invalid configuration: {message}"),
                );
                None
            }
        }
    }
}

fn map_type(map: HeaderMapKind) -> MapType {
    match map {
        HeaderMapKind::Request => MapType::HttpRequestHeaders,
        HeaderMapKind::Response => MapType::HttpResponseHeaders,
    }
}

/// Turns a proxy-wasm status into a typed error.
pub fn host_error(status: Status) -> HostError {
    match status {
        Status::NotFound => HostError::NotFound,
        Status::BadArgument => HostError::BadArgument,
        Status::SerializationFailure => HostError::SerializationFailure,
        Status::ParseFailure => HostError::ParseFailure,
        Status::Empty => HostError::Empty,
        Status::CasMismatch => HostError::CasMismatch,
        Status::InternalFailure => HostError::InternalFailure,
        other => HostError::Other(other as u32),
    }
}

impl HeaderPort for ProxyWasmHost {
    fn header_list(&self, map: HeaderMapKind) -> Result<HeaderList, HostError> {
        hostcalls::get_map_bytes(map_type(map)).map_err(host_error)
    }

    fn header(&self, map: HeaderMapKind, name: &str) -> Result<Option<Vec<u8>>, HostError> {
        hostcalls::get_map_value_bytes(map_type(map), name).map_err(host_error)
    }

    fn set_header(&self, map: HeaderMapKind, name: &str, value: &[u8]) -> Result<(), HostError> {
        hostcalls::set_map_value_bytes(map_type(map), name, Some(value)).map_err(host_error)
    }

    fn add_header(&self, map: HeaderMapKind, name: &str, value: &[u8]) -> Result<(), HostError> {
        hostcalls::add_map_value_bytes(map_type(map), name, value).map_err(host_error)
    }

    fn remove_header(&self, map: HeaderMapKind, name: &str) -> Result<(), HostError> {
        hostcalls::remove_map_value(map_type(map), name).map_err(host_error)
    }
}

impl PropertyPort for ProxyWasmHost {
    fn property(&self, path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
        hostcalls::get_property(path.to_vec()).map_err(host_error)
    }

    fn set_property(&self, path: &[&str], value: &[u8]) -> Result<(), HostError> {
        hostcalls::set_property(path.to_vec(), Some(value)).map_err(host_error)
    }
}

impl Clock for ProxyWasmHost {
    fn now_unix_nanos(&self) -> Result<u64, HostError> {
        let now = hostcalls::get_current_time().map_err(host_error)?;
        let since = now
            .duration_since(UNIX_EPOCH)
            .map_err(|_| HostError::InternalFailure)?;
        u64::try_from(since.as_nanos()).map_err(|_| HostError::InternalFailure)
    }
}

impl RandomSource for ProxyWasmHost {
    fn fill_random(&self, buf: &mut [u8]) -> Result<(), HostError> {
        getrandom::fill(buf).map_err(|_| HostError::InternalFailure)
    }
}

impl LogPort for ProxyWasmHost {
    fn log(&self, level: LogLevel, message: &str) {
        let level = match level {
            LogLevel::Trace => proxy_wasm::types::LogLevel::Trace,
            LogLevel::Debug => proxy_wasm::types::LogLevel::Debug,
            LogLevel::Info => proxy_wasm::types::LogLevel::Info,
            LogLevel::Warn => proxy_wasm::types::LogLevel::Warn,
            LogLevel::Error => proxy_wasm::types::LogLevel::Error,
        };
        // A lost log line must not fail the request.
        let _ = hostcalls::log(level, message);
    }
}

impl MetricsPort for ProxyWasmHost {
    fn define_counter(&self, name: &str) -> Result<MetricId, HostError> {
        hostcalls::define_metric(MetricType::Counter, name)
            .map(MetricId)
            .map_err(host_error)
    }

    fn define_gauge(&self, name: &str) -> Result<MetricId, HostError> {
        hostcalls::define_metric(MetricType::Gauge, name)
            .map(MetricId)
            .map_err(host_error)
    }

    fn increment(&self, id: MetricId, delta: i64) -> Result<(), HostError> {
        hostcalls::increment_metric(id.0, delta).map_err(host_error)
    }

    fn record(&self, id: MetricId, value: u64) -> Result<(), HostError> {
        hostcalls::record_metric(id.0, value).map_err(host_error)
    }
}

impl SharedDataPort for ProxyWasmHost {
    fn shared_data(&self, key: &str) -> Result<SharedEntry, HostError> {
        let (value, cas) = hostcalls::get_shared_data(key).map_err(host_error)?;
        Ok(SharedEntry {
            value,
            cas: cas.unwrap_or(0),
        })
    }

    fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
        let cas = (cas != 0).then_some(cas);
        hostcalls::set_shared_data(key, Some(value), cas).map_err(host_error)
    }
}

impl LocalReplyPort for ProxyWasmHost {
    fn send_local_reply(
        &self,
        status: u32,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), HostError> {
        let body = (!body.is_empty()).then_some(body);
        hostcalls::send_http_response(status, headers.to_vec(), body).map_err(host_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_errors() {
        assert_eq!(host_error(Status::NotFound), HostError::NotFound);
        assert_eq!(host_error(Status::CasMismatch), HostError::CasMismatch);
        assert_eq!(host_error(Status::Ok), HostError::Other(0));
    }
}

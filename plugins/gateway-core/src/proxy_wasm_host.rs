//! The one proxy-wasm adapter: implements every port with real host calls.
//!
//! - The calls go through [`crate::abi`], not the SDK's `hostcalls`, which panic (trapping the
//!   VM) on any status they do not expect: every host status comes back as a [`HostError`].
//! - Header values and properties are bytes: clients may send anything, never assume UTF-8.
//! - Random bytes come from WASI `random_get` (via `getrandom`), which Envoy and Kong provide.

use crate::abi;
use crate::headers::HeaderList;
use crate::host_kind::{HostKind, ENVOY_ONLY_PROPERTY};
use crate::ports::{
    Clock, HeaderMapKind, HeaderPort, HostError, LocalReplyPort, LogLevel, LogPort, MetricId,
    MetricsPort, PropertyPort, RandomSource, SharedDataPort, SharedEntry,
};
use proxy_wasm::types::{BufferType, MapType, MetricType, Status};
use std::sync::atomic::{AtomicU8, Ordering};

const KIND_ENVOY: u8 = 1;
const KIND_KONG: u8 = 2;
/// [`ProxyWasmHost::host_kind`], once read (0: not yet).
static HOST_KIND: AtomicU8 = AtomicU8::new(0);

/// A metric name as the host should get it. On Kong every `.` becomes `_`: Kong 3.9's
/// Prometheus exporter turns `pw:<filter>:<name>` into `pw_<filter>_<name>` by replacing only
/// the `:`, and a `.` left in a Prometheus name makes the scrape invalid. Envoy keeps the dots
/// (its Prometheus output turns them into `_` itself, and its tag extraction reads them).
pub fn host_metric_name(kind: HostKind, name: &str) -> std::borrow::Cow<'_, str> {
    match kind {
        HostKind::Envoy => std::borrow::Cow::Borrowed(name),
        HostKind::Kong => std::borrow::Cow::Owned(name.replace('.', "_")),
    }
}

/// The current proxy-wasm host. Zero-sized: the host keeps the state.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProxyWasmHost;

impl ProxyWasmHost {
    /// Which host this is ([`HostKind`]): one property read the first time, then remembered
    /// for the VM (a module instance is one VM: the static is per VM).
    pub fn host_kind(&self) -> HostKind {
        match HOST_KIND.load(Ordering::Relaxed) {
            KIND_ENVOY => HostKind::Envoy,
            KIND_KONG => HostKind::Kong,
            _ => {
                let kind =
                    HostKind::from_envoy_property(abi::property_answered(ENVOY_ONLY_PROPERTY));
                let code = match kind {
                    HostKind::Envoy => KIND_ENVOY,
                    HostKind::Kong => KIND_KONG,
                };
                HOST_KIND.store(code, Ordering::Relaxed);
                kind
            }
        }
    }

    /// The plugin configuration bytes (`on_configure`); empty when the host gives none.
    pub fn plugin_configuration(&self) -> Result<Vec<u8>, HostError> {
        abi::buffer(BufferType::PluginConfiguration, 0, usize::MAX).map(Option::unwrap_or_default)
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

/// Turns a proxy-wasm status (from the SDK's calls) into a typed error.
pub fn host_error(status: Status) -> HostError {
    abi::status_error(status as u32)
}

impl HeaderPort for ProxyWasmHost {
    fn header_list(&self, map: HeaderMapKind) -> Result<HeaderList, HostError> {
        abi::header_pairs(map_type(map))
    }

    fn header(&self, map: HeaderMapKind, name: &str) -> Result<Option<Vec<u8>>, HostError> {
        abi::header_value(map_type(map), name)
    }

    fn set_header(&self, map: HeaderMapKind, name: &str, value: &[u8]) -> Result<(), HostError> {
        abi::replace_header(map_type(map), name, value)
    }

    fn add_header(&self, map: HeaderMapKind, name: &str, value: &[u8]) -> Result<(), HostError> {
        abi::add_header(map_type(map), name, value)
    }

    fn remove_header(&self, map: HeaderMapKind, name: &str) -> Result<(), HostError> {
        abi::remove_header(map_type(map), name)
    }
}

impl PropertyPort for ProxyWasmHost {
    fn property(&self, path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
        abi::property(path)
    }

    fn set_property(&self, path: &[&str], value: &[u8]) -> Result<(), HostError> {
        abi::set_property(path, value)
    }
}

impl Clock for ProxyWasmHost {
    fn now_unix_nanos(&self) -> Result<u64, HostError> {
        abi::now_nanos()
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
        let _ = abi::log(level as u32, message);
    }
}

impl MetricsPort for ProxyWasmHost {
    fn define_counter(&self, name: &str) -> Result<MetricId, HostError> {
        let name = host_metric_name(self.host_kind(), name);
        abi::define_metric(MetricType::Counter as u32, &name).map(MetricId)
    }

    fn define_gauge(&self, name: &str) -> Result<MetricId, HostError> {
        let name = host_metric_name(self.host_kind(), name);
        abi::define_metric(MetricType::Gauge as u32, &name).map(MetricId)
    }

    fn increment(&self, id: MetricId, delta: i64) -> Result<(), HostError> {
        abi::increment_metric(id.0, delta)
    }

    fn record(&self, id: MetricId, value: u64) -> Result<(), HostError> {
        abi::record_metric(id.0, value)
    }
}

impl SharedDataPort for ProxyWasmHost {
    fn shared_data(&self, key: &str) -> Result<SharedEntry, HostError> {
        let (value, cas) = abi::shared_data(key)?;
        Ok(SharedEntry { value, cas })
    }

    fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
        abi::set_shared_data(key, value, cas)
    }
}

impl LocalReplyPort for ProxyWasmHost {
    fn send_local_reply(
        &self,
        status: u32,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), HostError> {
        abi::send_local_response(status, headers, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kong_metric_names_have_no_dot() {
        assert_eq!(
            host_metric_name(HostKind::Kong, "jwt_rbac.denied.kid_unknown"),
            "jwt_rbac_denied_kid_unknown"
        );
        assert_eq!(
            host_metric_name(HostKind::Envoy, "jwt_rbac.allowed"),
            "jwt_rbac.allowed"
        );
    }

    #[test]
    fn statuses_map_to_errors() {
        assert_eq!(host_error(Status::NotFound), HostError::NotFound);
        assert_eq!(host_error(Status::CasMismatch), HostError::CasMismatch);
        assert_eq!(host_error(Status::Ok), HostError::Other(0));
    }
}

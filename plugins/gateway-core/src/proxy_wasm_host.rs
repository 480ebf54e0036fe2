//! The one proxy-wasm adapter: implements every port with real host calls.
//!
//! - The calls go through [`crate::abi`], not the SDK's `hostcalls`, which panic (trapping the
//!   VM) on any status they do not expect: every host status comes back as a [`HostError`].
//! - Header values and properties are bytes: clients may send anything, never assume UTF-8.
//! - Random bytes come from WASI `random_get` (via `getrandom`), which Envoy and Kong provide.

use crate::abi;
use crate::embed;
use crate::exchange::{self, Phase, Wire};
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

    /// Opens the phase of one callback ([`exchange`]): each header map, the clock and each
    /// property read once until it ends, header writes sent once when it ends. Every callback
    /// of a plugin opens one first thing: `let _phase = ProxyWasmHost::phase();`.
    pub fn phase() -> Phase<'static, AbiWire> {
        Phase::open(&AbiWire)
    }

    /// The plugin configuration bytes (`on_configure`); empty when the host gives none. In the
    /// gateway suite, the job's own section.
    pub fn plugin_configuration(&self) -> Result<Vec<u8>, HostError> {
        if let Some((_, bytes)) = embed::section() {
            return Ok(bytes);
        }
        abi::buffer(BufferType::PluginConfiguration, 0, usize::MAX).map(Option::unwrap_or_default)
    }

    /// Asks for `on_tick` every `millis` (0: never). In the suite, the suite runs the timer.
    pub fn set_tick_period(&self, millis: u32) -> Result<(), HostError> {
        if embed::note_tick(millis) {
            return Ok(());
        }
        abi::set_tick_period_millis(millis)
    }

    /// Later calls act for `context_id`. This callback's header writes go to the context they
    /// were made in first.
    pub fn set_effective_context(&self, context_id: u32) -> Result<(), HostError> {
        exchange::write_now(&AbiWire);
        embed::note_effective(context_id);
        abi::set_effective_context(context_id)
    }

    /// Resumes the current stream's paused request, its header writes sent first. In the
    /// suite, the suite resumes once its later jobs ran.
    pub fn resume_request(&self) -> Result<(), HostError> {
        exchange::write_now(&AbiWire);
        if embed::defer_resume() {
            return Ok(());
        }
        abi::resume_request()
    }

    /// Sends an HTTP callout through the SDK (its dispatcher records the token to route the
    /// answer back to the calling context; it panics on statuses other than Ok, BadArgument and
    /// InternalFailure, the two a host refuses a callout with). In the suite, the answer goes
    /// to the job that sent it.
    pub fn dispatch_http_call(
        &self,
        upstream: &str,
        headers: Vec<(&str, &str)>,
        body: Option<&[u8]>,
        timeout: std::time::Duration,
    ) -> Result<u32, HostError> {
        let token =
            proxy_wasm::hostcalls::dispatch_http_call(upstream, headers, body, Vec::new(), timeout)
                .map_err(host_error)?;
        embed::note_callout(token);
        Ok(token)
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
                let line = match embed::section() {
                    Some((section, _)) => format!(
                        "gateway-suite: invalid configuration: {}",
                        embed::section_path(section, &message)
                    ),
                    None => format!("{plugin}: invalid configuration: {message}"),
                };
                self.log(LogLevel::Error, &line);
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

/// The host calls behind the [`exchange`].
#[derive(Debug, Clone, Copy, Default)]
pub struct AbiWire;

impl Wire for AbiWire {
    fn read_map(&self, map: HeaderMapKind) -> Result<HeaderList, HostError> {
        abi::header_pairs(map_type(map))
    }

    fn read_one(&self, map: HeaderMapKind, name: &str) -> Result<Option<Vec<u8>>, HostError> {
        abi::header_value(map_type(map), name)
    }

    fn replace(&self, map: HeaderMapKind, name: &str, value: &[u8]) -> Result<(), HostError> {
        abi::replace_header(map_type(map), name, value)
    }

    fn add(&self, map: HeaderMapKind, name: &str, value: &[u8]) -> Result<(), HostError> {
        abi::add_header(map_type(map), name, value)
    }

    fn remove(&self, map: HeaderMapKind, name: &str) -> Result<(), HostError> {
        abi::remove_header(map_type(map), name)
    }

    fn write_map(&self, map: HeaderMapKind, pairs: &HeaderList) -> Result<(), HostError> {
        // Envoy replaces the whole map (route cache cleared as for one header). Kong's engine
        // clears and re-adds through its own setters, which cannot remove a request header:
        // single calls there, as before.
        if ProxyWasmHost.host_kind() != HostKind::Envoy {
            return Err(HostError::Unsupported);
        }
        abi::set_header_pairs(map_type(map), pairs)
    }

    fn refused(&self, map: HeaderMapKind, name: &str, error: HostError) {
        ProxyWasmHost.log(
            LogLevel::Warn,
            &format!("gateway: the host refused to write the {map:?} header {name}: {error}"),
        );
    }
}

impl HeaderPort for ProxyWasmHost {
    fn header_list(&self, map: HeaderMapKind) -> Result<HeaderList, HostError> {
        exchange::header_list(&AbiWire, map)
    }

    fn header(&self, map: HeaderMapKind, name: &str) -> Result<Option<Vec<u8>>, HostError> {
        exchange::header(&AbiWire, map, name)
    }

    fn set_header(&self, map: HeaderMapKind, name: &str, value: &[u8]) -> Result<(), HostError> {
        if exchange::set(map, name, value) {
            return Ok(());
        }
        abi::replace_header(map_type(map), name, value)
    }

    fn add_header(&self, map: HeaderMapKind, name: &str, value: &[u8]) -> Result<(), HostError> {
        if exchange::add(map, name, value) {
            return Ok(());
        }
        abi::add_header(map_type(map), name, value)
    }

    fn remove_header(&self, map: HeaderMapKind, name: &str) -> Result<(), HostError> {
        // At once, in a phase or not: the exchange only drops the name from its copy.
        exchange::remove(&AbiWire, map, name)
    }
}

impl PropertyPort for ProxyWasmHost {
    fn property(&self, path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
        if !exchange::active() {
            return abi::property(path);
        }
        exchange::property(&abi::encode_path(path), || abi::property(path))
    }

    fn set_property(&self, path: &[&str], value: &[u8]) -> Result<(), HostError> {
        exchange::forget_property(&abi::encode_path(path));
        abi::set_property(path, value)
    }
}

impl Clock for ProxyWasmHost {
    fn now_unix_nanos(&self) -> Result<u64, HostError> {
        exchange::now(abi::now_nanos)
    }
}

/// Random bytes drawn from the host at a time: one `random_get` serves several requests' ids
/// (a request id and a trace id take 24 bytes) instead of two crossings per request.
const RANDOM_POOL: usize = 256;

std::thread_local! {
    /// Unused bytes of the last draw; each byte is handed out once.
    static RANDOM: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl RandomSource for ProxyWasmHost {
    fn fill_random(&self, buf: &mut [u8]) -> Result<(), HostError> {
        if buf.len() > RANDOM_POOL {
            return getrandom::fill(buf).map_err(|_| HostError::InternalFailure);
        }
        RANDOM.with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.len() < buf.len() {
                let mut fresh = vec![0u8; RANDOM_POOL];
                getrandom::fill(&mut fresh).map_err(|_| HostError::InternalFailure)?;
                *pool = fresh;
            }
            let rest = pool.len() - buf.len();
            buf.copy_from_slice(&pool[rest..]);
            // Handed out: never again.
            pool.truncate(rest);
            Ok(())
        })
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
        // What the phase wrote so far is written first, as a chain of separate filters would
        // have: a later callback (audit-log's on_log) reads the request as it stood.
        exchange::write_now(&AbiWire);
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

//! `proxy_get_property`, `proxy_set_property`.
//!
//! Paths arrive as NUL-separated segments. Values the test sets live on the stream
//! ([`crate::HttpStream::set_property`]) or harness-wide ([`crate::Harness::set_property`]).
//!
//! Envoy: get looks in the current stream's properties (set by the test or the guest), then the
//! harness-wide ones; NotFound when absent; `kong.*` is NotFound. `xds.node` reads as a small
//! serialized `Node` (`id: "host-harness"`) unless the test set it. set stores on the current
//! stream (readable back by get); in a root context it is NotFound. An empty value is Ok with
//! a null pointer. Bad pointers trap.
//!
//! Kong (ngx_proxy_wasm_properties.c, ngx_proxy_wasm_properties_get/_set and the `pw2ngx`
//! table; identical at 9136e463 and 96b4e27e but for the debug-only `worker_id`):
//! - a path of the table whose getter is `not_supported` (`response.code_details`,
//!   `response.flags`, `connection.termination_details`, `node`, `cluster_name`,
//!   `cluster_metadata`, `listener_direction`, `listener_metadata`, `route_name`,
//!   `route_metadata`, `upstream_host_metadata`) logs `"<path>" property not supported` at
//!   error level and is NotFound; one whose getter is `nyi` (`response.grpc_status`,
//!   `response.trailers`, `plugin_vm_id`, the `upstream.*` TLS/SAN/local/failure ones, the
//!   `connection.*` peer-certificate ones) logs `NYI - "<path>" property` (nginx alert: the
//!   harness's Critical) and is NotFound. Even if the test set them.
//! - paths mapped to an nginx variable (`request.path`, `request.method`, `source.address`,
//!   `response.code`, ...) and `ngx.*` read the test's value; in a root context they log
//!   `cannot get ngx properties outside of a request` and return InternalFailure.
//! - `request.headers.<name>`, `request.id` (`x-request-id`), `request.referer` (`referer`)
//!   read the request header map, `response.headers.<name>` the response map: the test's
//!   properties of those names are not used.
//! - `plugin_name` is the filter name; `plugin_root_id` is `0` (get_filter_root_id formats the
//!   `ngx_str_t` cache with `%i`, i.e. its zero length).
//! - in a root context, the getters that read the request (`request.id`, `request.referer`,
//!   `request.headers.*`, `response.headers.*`, `request.time`, `upstream.address/port`,
//!   `connection.id`, `plugin_name`) dereference a NULL request context or filter chain: crash
//!   trap.
//! - `kong.*` (the host namespace Kong builds with, NGX_WASM_HOST_PROPERTY_NAMESPACE): the
//!   test's value; in a root context `cannot get host properties outside of a request` and
//!   InternalFailure.
//! - any other path (`xds.*`, `wasm.*`, ...) is NotFound, silently.
//! - set: `ngx.*`, the nginx-variable paths and `kong.*` are stored on the stream (root:
//!   `cannot set ngx/host properties outside of a request`, InternalFailure); any other path
//!   is NotFound (ngx_proxy_wasm_properties_set declines it).

use super::{ok, status, GetState};
use crate::codec;
use crate::error::HostTrap;
use crate::memory;
use crate::state::HostState;
use crate::{LogLevel, MapType, Status};
use wasmtime::{Caller, Linker};

/// Where a supported Kong property comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KongSource {
    /// Mapped to an nginx variable (or `ngx.*` itself).
    NgxVar,
    /// A request header (`request.id`, `request.referer`).
    RequestHeader(&'static str),
    /// `request.headers.*`.
    RequestHeaders,
    /// `response.headers.*`.
    ResponseHeaders,
    /// A getter reading the request context (`request.time`, `upstream.*`, `connection.id`).
    Request,
    /// `connection.mtls` (reads nginx variables).
    Mtls,
    FilterName,
    RootId,
    /// `kong.*`.
    Host,
}

/// A path in Kong's property table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KongProperty {
    Supported(KongSource),
    Nyi,
    NotSupported,
    Unknown,
}

/// ngx_proxy_wasm_properties.c, `pw2ngx[]` (9136e463 = 96b4e27e, release build).
const NGX_MAPPED: &[&str] = &[
    "request.path",
    "request.url_path",
    "request.host",
    "request.scheme",
    "request.method",
    "request.useragent",
    "request.protocol",
    "request.query",
    "request.duration",
    "request.size",
    "request.total_size",
    "response.code",
    "response.size",
    "response.total_size",
    "destination.address",
    "destination.port",
    "connection.requested_server_name",
    "connection.tls_version",
    "connection.subject_local_certificate",
    "source.address",
    "source.port",
];

const NYI: &[&str] = &[
    "response.grpc_status",
    "response.trailers",
    "upstream.tls_version",
    "upstream.subject_local_certificate",
    "upstream.subject_peer_certificate",
    "upstream.dns_san_local_certificate",
    "upstream.dns_san_peer_certificate",
    "upstream.uri_san_local_certificate",
    "upstream.uri_san_peer_certificate",
    "upstream.sha256_peer_certificate_digest",
    "upstream.local_address",
    "upstream.transport_failure_reason",
    "connection.subject_peer_certificate",
    "connection.dns_san_local_certificate",
    "connection.dns_san_peer_certificate",
    "connection.uri_san_local_certificate",
    "connection.uri_san_peer_certificate",
    "connection.sha256_peer_certificate_digest",
    "plugin_vm_id",
];

const NOT_SUPPORTED: &[&str] = &[
    "response.code_details",
    "response.flags",
    "connection.termination_details",
    "node",
    "cluster_name",
    "cluster_metadata",
    "listener_direction",
    "listener_metadata",
    "route_name",
    "route_metadata",
    "upstream_host_metadata",
];

/// Looks a dotted path up as ngx_proxy_wasm_properties_get does: the table (with its
/// `request.headers.*` / `response.headers.*` wildcards), then the `ngx.` and `kong.` prefixes.
pub(crate) fn kong_lookup(path: &str) -> KongProperty {
    use KongProperty::*;
    use KongSource::*;
    if NGX_MAPPED.contains(&path) {
        return Supported(NgxVar);
    }
    if NYI.contains(&path) {
        return Nyi;
    }
    if NOT_SUPPORTED.contains(&path) {
        return NotSupported;
    }
    match path {
        "request.id" => return Supported(RequestHeader("x-request-id")),
        "request.referer" => return Supported(RequestHeader("referer")),
        "request.time" | "upstream.address" | "upstream.port" | "connection.id" => {
            return Supported(Request)
        }
        "connection.mtls" => return Supported(Mtls),
        "plugin_name" => return Supported(FilterName),
        "plugin_root_id" => return Supported(RootId),
        _ => {}
    }
    if path.len() > "request.headers.".len() && path.starts_with("request.headers.") {
        return Supported(RequestHeaders);
    }
    if path.len() > "response.headers.".len() && path.starts_with("response.headers.") {
        return Supported(ResponseHeaders);
    }
    // `p.len > prefix_len && memcmp(prefix)`: the bare prefix is not a property.
    if path.len() > 4 && path.starts_with("ngx.") {
        return Supported(NgxVar);
    }
    if path.len() > 5 && path.starts_with("kong.") {
        return Supported(Host);
    }
    Unknown
}

/// A harness-side property value (stream first, then harness-wide).
fn stored(state: &mut HostState, key: &[u8]) -> Option<Vec<u8>> {
    let value = state.stream().and_then(|s| s.properties.get(key).cloned());
    value.or_else(|| state.world().properties.get(key).cloned())
}

const ROOT_CRASH: &str = "the property getter dereferences the NULL request context (or empty \
                          filter chain) of a root context (ngx_proxy_wasm_properties.c)";

/// Kong's get: `Ok(Some(v))`, `Ok(None)` (NotFound) or `Err(status)`; traps for crashes.
fn kong_get(
    state: &mut HostState,
    key: &[u8],
) -> Result<Result<Option<Vec<u8>>, Status>, HostTrap> {
    let call = "proxy_get_property";
    let path = codec::property_segments(key).join(".");
    let in_request = state.stream().is_some();
    let source = match kong_lookup(&path) {
        KongProperty::Unknown => return Ok(Ok(None)),
        KongProperty::NotSupported => {
            state.log(
                LogLevel::Error,
                format!("\"{path}\" property not supported"),
            );
            return Ok(Ok(None));
        }
        KongProperty::Nyi => {
            state.log(LogLevel::Critical, format!("NYI - \"{path}\" property"));
            return Ok(Ok(None));
        }
        KongProperty::Supported(source) => source,
    };
    match source {
        KongSource::NgxVar | KongSource::Mtls if !in_request => {
            state.log(
                LogLevel::Error,
                "cannot get ngx properties outside of a request".into(),
            );
            Ok(Err(Status::InternalFailure))
        }
        KongSource::Host if !in_request => {
            state.log(
                LogLevel::Error,
                "cannot get host properties outside of a request".into(),
            );
            Ok(Err(Status::InternalFailure))
        }
        KongSource::RequestHeader(_)
        | KongSource::RequestHeaders
        | KongSource::ResponseHeaders
        | KongSource::Request
        | KongSource::FilterName
            if !in_request =>
        {
            Err(HostTrap::Crash {
                call,
                reason: ROOT_CRASH,
            })
        }
        KongSource::NgxVar | KongSource::Mtls | KongSource::Request | KongSource::Host => {
            Ok(Ok(stored(state, key)))
        }
        KongSource::RequestHeader(name) => Ok(Ok(header(state, MapType::RequestHeaders, name))),
        KongSource::RequestHeaders => Ok(Ok(header(
            state,
            MapType::RequestHeaders,
            &path["request.headers.".len()..].to_ascii_lowercase(),
        ))),
        KongSource::ResponseHeaders => Ok(Ok(header(
            state,
            MapType::ResponseHeaders,
            &path["response.headers.".len()..].to_ascii_lowercase(),
        ))),
        KongSource::FilterName => Ok(Ok(Some(state.config.filter_name.clone().into_bytes()))),
        KongSource::RootId => Ok(Ok(Some(b"0".to_vec()))),
    }
}

/// A header of the current stream's request or response map (first live value).
fn header(state: &mut HostState, map: MapType, name: &str) -> Option<Vec<u8>> {
    let stream = state.stream()?;
    match map {
        MapType::RequestHeaders => match &stream.kong_request {
            Some(list) => list.get(name),
            None => None,
        },
        _ => stream
            .response_headers
            .as_ref()
            .unwrap_or(&stream.kong_early_response)
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone()),
    }
}

/// Kong's set: the status to return.
fn kong_set(state: &mut HostState, key: Vec<u8>, value: Vec<u8>) -> Status {
    let path = codec::property_segments(&key).join(".");
    let in_request = state.stream().is_some();
    let ngx = match kong_lookup(&path) {
        KongProperty::Supported(KongSource::NgxVar) => true,
        KongProperty::Supported(KongSource::Host) => false,
        _ => return Status::NotFound,
    };
    if !in_request {
        let what = if ngx { "ngx" } else { "host" };
        state.log(
            LogLevel::Error,
            format!("cannot set {what} properties outside of a request"),
        );
        return Status::InternalFailure;
    }
    if let Some(stream) = state.stream() {
        stream.properties.insert(key, value);
    }
    Status::Ok
}

/// Envoy's `xds.node` when the test did not set one: a serialized `envoy.config.core.v3.Node`
/// with `id: "host-harness"` (field 1, length-delimited).
pub(crate) fn envoy_default_node() -> Vec<u8> {
    let id = b"host-harness";
    let mut out = vec![0x0a, id.len() as u8];
    out.extend_from_slice(id);
    out
}

pub fn add_to_linker<T: 'static>(linker: &mut Linker<T>, get: GetState<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_property",
        move |mut caller: Caller<'_, T>,
              pp: i32,
              pl: i32,
              ptr_ptr: i32,
              size_ptr: i32|
              -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_get_property");
            let call = "proxy_get_property";
            let path = memory::read(&mut caller, call, pp, pl)?;
            let state = get(caller.data_mut());
            if let Some(s) = super::injected(state, call) {
                return status(s);
            }
            let value = if state.profile().is_kong() {
                match kong_get(state, &path)? {
                    Ok(v) => v,
                    Err(s) => return status(s),
                }
            } else if codec::property_segments(&path).first().map(String::as_str) == Some("kong") {
                None
            } else {
                stored(state, &path)
            };
            let kong = get(caller.data_mut()).profile().is_kong();
            match value {
                Some(v) => {
                    memory::return_bytes_with(&mut caller, get, call, &v, ptr_ptr, size_ptr, kong)?;
                    ok()
                }
                None => status(Status::NotFound),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_property",
        move |mut caller: Caller<'_, T>,
              pp: i32,
              pl: i32,
              vp: i32,
              vl: i32|
              -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_set_property");
            let call = "proxy_set_property";
            let path = memory::read(&mut caller, call, pp, pl)?;
            let value = memory::read(&mut caller, call, vp, vl)?;
            let state = get(caller.data_mut());
            if let Some(s) = super::injected(state, call) {
                return status(s);
            }
            if state.profile().is_kong() {
                return status(kong_set(state, path, value));
            }
            match state.stream() {
                Some(stream) => {
                    stream.properties.insert(path, value);
                    ok()
                }
                None => status(Status::NotFound),
            }
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kong_table_lookup() {
        assert_eq!(
            kong_lookup("request.path"),
            KongProperty::Supported(KongSource::NgxVar)
        );
        assert_eq!(kong_lookup("response.flags"), KongProperty::NotSupported);
        assert_eq!(kong_lookup("plugin_vm_id"), KongProperty::Nyi);
        assert_eq!(kong_lookup("xds.node"), KongProperty::Unknown);
        assert_eq!(kong_lookup("ngx."), KongProperty::Unknown);
        assert_eq!(
            kong_lookup("request.headers.x-a"),
            KongProperty::Supported(KongSource::RequestHeaders)
        );
        assert_eq!(
            kong_lookup("kong.route_id"),
            KongProperty::Supported(KongSource::Host)
        );
        assert_eq!(kong_lookup("worker_id"), KongProperty::Unknown);
    }
}

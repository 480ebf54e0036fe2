//! Header and trailer maps: `proxy_{get,set}_header_map_pairs`,
//! `proxy_{get,add,replace,remove}_header_map_value`.
//!
//! Names are lowercased on the way in. Values are bytes. Bad pointers and malformed
//! serialized maps trap.
//!
//! Envoy:
//! - get value: first value of the name; NotFound if absent.
//! - replace: Envoy's `setCopy` removes every value of the name and appends the new one (seen
//!   in Envoy 1.40 by the scenario tests: two `traceparent` lines become one). Absent: appended.
//! - add: appends (duplicates kept). remove: removes every value of the name.
//! - set pairs: replaces the whole map.
//! - A map that does not exist yet (response headers during the request phase, callout maps
//!   outside `on_http_call_response`, any stream map in a root context) is BadArgument, or
//!   NotFound in `on_log`; an unknown map type is BadArgument.
//!
//! Kong (ngx_proxy_wasm_host.c, ngx_proxy_wasm_maps.c, ngx_http_wasm_headers*.c; 9136e463 and
//! 96b4e27e unless noted):
//! - Request headers are nginx's list ([`crate::host::ngx_headers`]: remove marks, replace of
//!   a duplicated name clears every value, builtin headers, the upstream sees every line).
//!   Response headers follow the same generic helper (without builtin pointers).
//! - Pseudo-headers are computed (ngx_proxy_wasm_maps.c, `ngx_proxy_wasm_maps_special_keys`):
//!   `:path`, `:method` (settable), `:scheme` (`http` unless the test sent one) and
//!   `:authority` = `server_name:port` of the server block
//!   ([`crate::HarnessBuilder::kong_server`], ngx_proxy_wasm_maps_get_authority), both
//!   read-only (a set logs `cannot set read-only ":authority" header`); `:status` of the
//!   response (a set outside 100-599 logs `ignoring attempt to set invalid response status`).
//!   Removing `:path`, `:method` or `:status` passes a NULL value to their setter: crash trap.
//!   Pairs list the pseudo-headers first (ngx_proxy_wasm_pairs_marshal writes the extras
//!   first), then the live lines.
//! - The response map exists from the start of the request (`r->headers_out.headers`): during
//!   the request it is empty (no BadArgument) and lines set then stay in the response.
//! - Writes (ngx_proxy_wasm_hfuncs_set_header_check): request headers only during request
//!   headers/body (or `on_http_call_response` before the response), else trap `can only set
//!   request headers before response is produced`; response headers only until
//!   `on_response_headers` (or `on_http_call_response` before they are sent), else trap
//!   `can only set response headers before "on_response_body"`. Other maps: `NYI - set_map bad
//!   map_type: <n>` and BadArgument.
//! - Trailer and gRPC maps: `NYI - get_map bad map_type: <n>`; pairs BadArgument, value
//!   NotFound. Callout maps outside `on_http_call_response`: pairs BadArgument, value NotFound;
//!   inside, `:status` and (3.9) `:dispatch_status` come first.
//! - In a root context (on_configure, on_tick, their callout responses) the request context is
//!   NULL and ngx_proxy_wasm_maps_get_map dereferences it: reading the request or response map
//!   crashes the worker (crash trap); a write traps as above (or crashes in a callout response).
//! - `builtin` request headers refuse an add while present: `cannot add new "<Name>" builtin
//!   request header` (error log, Ok); `Content-Length` must be a number (`attempt to set
//!   invalid Content-Length request header: "<v>"`).

use super::ngx_headers::NgxRequest;
use super::{engine_trap, ok, status, GetState, TrapKind};
use crate::codec;
use crate::error::HostTrap;
use crate::memory;
use crate::profile::{KongEngine, KongStep, Phase};
use crate::state::HostState;
use crate::{Headers, LogLevel, MapType, Status};
use wasmtime::{Caller, Linker};

/// The map the guest addresses, or the status it gets when that map does not exist (Envoy).
fn map_mut(state: &mut HostState, raw: i32) -> Result<&mut Headers, Status> {
    let missing = if state.phase == Phase::Log {
        Status::NotFound
    } else {
        Status::BadArgument
    };
    let map_type = MapType::from_raw(raw).ok_or(Status::BadArgument)?;
    let slot = match map_type {
        MapType::CalloutResponseHeaders => state.callout_response.as_mut().map(|r| &mut r.headers),
        MapType::CalloutResponseTrailers => {
            state.callout_response.as_mut().map(|r| &mut r.trailers)
        }
        MapType::GrpcInitialMetadata | MapType::GrpcTrailingMetadata => None,
        stream_map => {
            let stream = state.stream().ok_or(Status::BadArgument)?;
            match stream_map {
                MapType::RequestHeaders => stream.request_headers.as_mut(),
                MapType::RequestTrailers => stream.request_trailers.as_mut(),
                MapType::ResponseHeaders => stream.response_headers.as_mut(),
                _ => stream.response_trailers.as_mut(),
            }
        }
    };
    slot.ok_or(missing)
}

fn lower(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_ascii_lowercase()
}

/// Envoy's replace (`setCopy`): every value removed, the new one appended.
pub(crate) fn replace(map: &mut Headers, name: &str, value: Vec<u8>) {
    map.retain(|(n, _)| n != name);
    map.push((name.to_string(), value));
}

/// Sets `:status` in a response map (first, if absent).
pub(crate) fn set_status(map: &mut Headers, code: u32) {
    let value = code.to_string().into_bytes();
    match map.iter_mut().find(|(n, _)| n == ":status") {
        Some(slot) => slot.1 = value,
        None => map.insert(0, (":status".into(), value)),
    }
}

// ---- Kong ----

/// A Kong outcome that is not a plain status.
enum KongErr {
    Status(Status),
    Trap(HostTrap),
}

impl From<Status> for KongErr {
    fn from(s: Status) -> Self {
        KongErr::Status(s)
    }
}

impl From<HostTrap> for KongErr {
    fn from(t: HostTrap) -> Self {
        KongErr::Trap(t)
    }
}

fn finish(result: Result<(), KongErr>) -> wasmtime::Result<i32> {
    match result {
        Ok(()) => ok(),
        Err(KongErr::Status(s)) => status(s),
        Err(KongErr::Trap(t)) => Err(t.into()),
    }
}

const NULL_RCTX: &str = "ngx_proxy_wasm_maps.c, ngx_proxy_wasm_maps_get_map dereferences the \
                         NULL request context of a root context";

fn nyi_get_map(state: &HostState, raw: i32) {
    state.log(
        LogLevel::Critical,
        format!("NYI - get_map bad map_type: {raw}"),
    );
}

fn nyi_set_map(state: &HostState, raw: i32) -> KongErr {
    state.log(
        LogLevel::Critical,
        format!("NYI - set_map bad map_type: {raw}"),
    );
    KongErr::Status(Status::BadArgument)
}

/// The request-line pseudo-headers as ngx_proxy_wasm_maps_special_keys computes them.
fn kong_special(state: &mut HostState, key: &str) -> Option<Vec<u8>> {
    let (server, port) = state.config.kong_server.clone();
    let stream = state.stream()?;
    let pseudo = |name: &str| {
        stream
            .kong_request
            .as_ref()
            .and_then(|r| r.pseudo.iter().find(|(n, _)| n == name))
            .map(|(_, v)| v.clone())
    };
    match key {
        ":path" | ":method" => Some(pseudo(key).unwrap_or_default()),
        ":scheme" => Some(pseudo(key).unwrap_or_else(|| b"http".to_vec())),
        // ngx_proxy_wasm_maps_get_authority: `server_name` (or the hostname), then `:port` when
        // the local port is known.
        ":authority" => Some(if port == 0 {
            server.into_bytes()
        } else {
            format!("{server}:{port}").into_bytes()
        }),
        _ => None,
    }
}

fn kong_request_list(state: &mut HostState) -> Option<&mut NgxRequest> {
    let stream = state.stream()?;
    Some(stream.kong_request.get_or_insert_with(NgxRequest::default))
}

fn refresh_request_view(state: &mut HostState) {
    if let Some(stream) = state.stream() {
        if let Some(list) = &stream.kong_request {
            stream.request_headers = Some(list.view());
        }
    }
}

/// The response map on Kong: the response's headers, or the early list before it exists.
fn kong_response_map(state: &mut HostState) -> Option<&mut Headers> {
    let stream = state.stream()?;
    Some(match stream.response_headers.as_mut() {
        Some(map) => map,
        None => &mut stream.kong_early_response,
    })
}

fn kong_get_pairs(state: &mut HostState, raw: i32) -> Result<Headers, KongErr> {
    match MapType::from_raw(raw) {
        Some(MapType::RequestHeaders) => {
            if state.stream().is_none() {
                return Err(HostTrap::Crash {
                    call: "proxy_get_header_map_pairs",
                    reason: NULL_RCTX,
                }
                .into());
            }
            let mut out = Headers::new();
            for key in [":path", ":method", ":scheme", ":authority"] {
                if let Some(v) = kong_special(state, key).filter(|v| !v.is_empty()) {
                    out.push((key.to_string(), v));
                }
            }
            let live = kong_request_list(state)
                .map(|l| l.live())
                .unwrap_or_default();
            out.extend(live);
            Ok(out)
        }
        Some(MapType::ResponseHeaders) => {
            let map = kong_response_map(state).ok_or(HostTrap::Crash {
                call: "proxy_get_header_map_pairs",
                reason: NULL_RCTX,
            })?;
            let mut out: Headers = map
                .iter()
                .filter(|(n, _)| n == ":status")
                .cloned()
                .collect();
            out.extend(map.iter().filter(|(n, _)| !n.starts_with(':')).cloned());
            Ok(out)
        }
        Some(MapType::CalloutResponseHeaders) => {
            let engine = state.profile().kong_engine();
            let dispatch_status = state.callout_dispatch_status.clone();
            let response = state.callout_response.as_ref().ok_or(Status::BadArgument)?;
            let mut out: Headers = response
                .headers
                .iter()
                .filter(|(n, _)| n == ":status")
                .cloned()
                .collect();
            if engine >= Some(KongEngine::V39) {
                if let Some(s) = dispatch_status {
                    out.push((":dispatch_status".into(), s.into_bytes()));
                }
            }
            out.extend(
                response
                    .headers
                    .iter()
                    .filter(|(n, _)| n != ":status")
                    .cloned(),
            );
            Ok(out)
        }
        Some(MapType::CalloutResponseTrailers) => Err(Status::BadArgument.into()),
        _ => {
            nyi_get_map(state, raw);
            Err(Status::BadArgument.into())
        }
    }
}

fn kong_get_value(state: &mut HostState, raw: i32, key: &str) -> Result<Vec<u8>, KongErr> {
    let call = "proxy_get_header_map_value";
    match MapType::from_raw(raw) {
        Some(MapType::RequestHeaders) => {
            if state.stream().is_none() {
                return Err(HostTrap::Crash {
                    call,
                    reason: NULL_RCTX,
                }
                .into());
            }
            if let Some(v) = kong_special(state, key) {
                return Ok(v);
            }
            kong_request_list(state)
                .and_then(|l| l.get(key))
                .ok_or(Status::NotFound.into())
        }
        Some(MapType::ResponseHeaders) => {
            let map = kong_response_map(state).ok_or(HostTrap::Crash {
                call,
                reason: NULL_RCTX,
            })?;
            if key.starts_with(':') && key != ":status" {
                // Not a special key of the response map: looked up in the list, where no
                // pseudo-header lives.
                return Err(Status::NotFound.into());
            }
            map.iter()
                .find(|(n, _)| n == key)
                .map(|(_, v)| v.clone())
                .ok_or(Status::NotFound.into())
        }
        Some(MapType::CalloutResponseHeaders) => {
            let engine = state.profile().kong_engine();
            if key == ":dispatch_status" && engine >= Some(KongEngine::V39) {
                if let (Some(_), Some(s)) =
                    (&state.callout_response, &state.callout_dispatch_status)
                {
                    return Ok(s.clone().into_bytes());
                }
            }
            let response = state.callout_response.as_ref().ok_or(Status::NotFound)?;
            response
                .headers
                .iter()
                .find(|(n, _)| n == key)
                .map(|(_, v)| v.clone())
                .ok_or(Status::NotFound.into())
        }
        Some(MapType::CalloutResponseTrailers) => Err(Status::NotFound.into()),
        _ => {
            nyi_get_map(state, raw);
            Err(Status::NotFound.into())
        }
    }
}

/// ngx_proxy_wasm_hfuncs_set_header_check.
fn kong_set_check(state: &mut HostState, call: &'static str, raw: i32) -> Result<MapType, KongErr> {
    let step = state.phase.kong_step();
    let is_stream = state.stream().is_some();
    let (request_started_response, header_sent) = match state.stream() {
        Some(s) => (s.response_headers.is_some(), s.response_headers.is_some()),
        None => (false, false),
    };
    match MapType::from_raw(raw) {
        Some(MapType::RequestHeaders) => match step {
            KongStep::ReqHeaders | KongStep::ReqBody => Ok(MapType::RequestHeaders),
            KongStep::DispatchResponse if !is_stream => Err(HostTrap::Crash {
                call,
                reason: "ngx_proxy_wasm_hfuncs_set_header_check reads \
                         rctx->entered_header_filter of a root context's NULL request context",
            }
            .into()),
            KongStep::DispatchResponse if !request_started_response => Ok(MapType::RequestHeaders),
            _ => Err(engine_trap(
                call,
                TrapKind::BadUsage,
                "can only set request headers before response is produced",
            )
            .into()),
        },
        Some(MapType::ResponseHeaders) => match step {
            KongStep::ReqHeaders | KongStep::ReqBody | KongStep::RespHeaders => {
                Ok(MapType::ResponseHeaders)
            }
            KongStep::DispatchResponse if !is_stream => Err(HostTrap::Crash {
                call,
                reason: "ngx_proxy_wasm_hfuncs_set_header_check reads rctx->r->header_sent \
                         of a root context's NULL request context",
            }
            .into()),
            KongStep::DispatchResponse if !header_sent => Ok(MapType::ResponseHeaders),
            _ => Err(engine_trap(
                call,
                TrapKind::BadUsage,
                "can only set response headers before \"on_response_body\"",
            )
            .into()),
        },
        _ => Err(nyi_set_map(state, raw)),
    }
}

/// A map operation (ngx_proxy_wasm_maps_set's `map_op`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Set,
    Add,
    Remove,
}

/// ngx_proxy_wasm_maps_set on Kong's request or response map, after the check.
fn kong_map_op(
    state: &mut HostState,
    call: &'static str,
    map: MapType,
    key: &str,
    value: Vec<u8>,
    op: Op,
) -> Result<(), KongErr> {
    if map == MapType::RequestHeaders {
        match key {
            ":path" | ":method" => {
                if op == Op::Remove {
                    return Err(HostTrap::Crash {
                        call,
                        reason: "ngx_proxy_wasm_maps_set_path/set_method read the NULL value \
                                 of a remove (ngx_proxy_wasm_maps.c)",
                    }
                    .into());
                }
                if let Some(list) = kong_request_list(state) {
                    match list.pseudo.iter_mut().find(|(n, _)| n == key) {
                        Some(slot) => slot.1 = value,
                        None => list.pseudo.push((key.to_string(), value)),
                    }
                }
                refresh_request_view(state);
                return Ok(());
            }
            ":scheme" | ":authority" => {
                state.log(
                    LogLevel::Error,
                    format!("cannot set read-only \"{key}\" header"),
                );
                return Ok(());
            }
            _ => {}
        }
        if key == "content-length" {
            // ngx_http_wasm_headers_request.c, ngx_http_wasm_set_cl_header_handler.
            let bad = match op {
                Op::Remove => false,
                Op::Add if value.is_empty() => true,
                _ => !value.is_empty() && !value.iter().all(u8::is_ascii_digit),
            };
            if bad {
                state.log(
                    LogLevel::Error,
                    format!(
                        "attempt to set invalid Content-Length request header: \"{}\"",
                        String::from_utf8_lossy(&value)
                    ),
                );
                return Ok(());
            }
        }
        let refused = match kong_request_list(state) {
            Some(list) => match op {
                Op::Set => {
                    list.set(key, value);
                    None
                }
                Op::Add => list.add(key, value),
                Op::Remove => {
                    list.remove(key);
                    None
                }
            },
            None => None,
        };
        if let Some(line) = refused {
            state.log(LogLevel::Error, line);
        }
        refresh_request_view(state);
        return Ok(());
    }
    // Response headers.
    if key == ":status" {
        if op == Op::Remove {
            return Err(HostTrap::Crash {
                call,
                reason: "ngx_proxy_wasm_maps_set_response_status reads the NULL value of a \
                         remove (ngx_proxy_wasm_maps.c)",
            }
            .into());
        }
        let code = std::str::from_utf8(&value)
            .ok()
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|c| (100..=599).contains(c));
        match code {
            Some(code) => {
                if let Some(map) = kong_response_map(state) {
                    set_status(map, code);
                }
            }
            None => state.log(
                LogLevel::Warn,
                format!(
                    "ignoring attempt to set invalid response status: \"{}\"",
                    String::from_utf8_lossy(&value)
                ),
            ),
        }
        return Ok(());
    }
    let Some(map) = kong_response_map(state) else {
        return Ok(());
    };
    match op {
        Op::Add => map.push((key.to_string(), value)),
        Op::Remove => map.retain(|(n, _)| n != key),
        Op::Set => kong_generic_set(map, key, value),
    }
    Ok(())
}

/// ngx_http_wasm_set_header_helper's SET on a list of live lines: one match is updated in
/// place, several are all cleared (the restart keeps `found`), none appends.
pub(crate) fn kong_generic_set(map: &mut Headers, name: &str, value: Vec<u8>) {
    let matches = map.iter().filter(|(n, _)| n == name).count();
    match matches {
        0 => map.push((name.to_string(), value)),
        1 => {
            if let Some(slot) = map.iter_mut().find(|(n, _)| n == name) {
                slot.1 = value;
            }
        }
        _ => map.retain(|(n, _)| n != name),
    }
}

fn kong_set_pairs(state: &mut HostState, raw: i32, pairs: Headers) -> Result<(), KongErr> {
    let call = "proxy_set_header_map_pairs";
    let map = kong_set_check(state, call, raw)?;
    // ngx_http_wasm_clear_req_headers / ngx_http_wasm_clear_resp_headers, then
    // ngx_proxy_wasm_maps_set_all (NGX_PROXY_WASM_MAP_SET for each pair).
    match map {
        MapType::RequestHeaders => {
            if let Some(list) = kong_request_list(state) {
                list.clear();
            }
            refresh_request_view(state);
        }
        _ => {
            if let Some(m) = kong_response_map(state) {
                m.retain(|(n, _)| n.starts_with(':'));
            }
        }
    }
    for (key, value) in pairs {
        kong_map_op(state, call, map, &key, value, Op::Set)?;
    }
    Ok(())
}

fn kong_set_value(
    state: &mut HostState,
    call: &'static str,
    raw: i32,
    key: &str,
    value: Vec<u8>,
    op: Op,
) -> Result<(), KongErr> {
    let map = kong_set_check(state, call, raw)?;
    kong_map_op(state, call, map, key, value, op)
}

pub fn add_to_linker<T: 'static>(linker: &mut Linker<T>, get: GetState<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        move |mut caller: Caller<'_, T>,
              map: i32,
              ptr_ptr: i32,
              size_ptr: i32|
              -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_get_header_map_pairs");
            let state = get(caller.data_mut());
            if let Some(s) = super::injected(state, "proxy_get_header_map_pairs") {
                return status(s);
            }
            let bytes = if state.profile().is_kong() {
                match kong_get_pairs(state, map) {
                    Ok(m) => codec::encode_map(&m),
                    Err(e) => return finish(Err(e)),
                }
            } else {
                match map_mut(state, map) {
                    Ok(m) => codec::encode_map(m),
                    Err(s) => return status(s),
                }
            };
            memory::return_bytes(
                &mut caller,
                get,
                "proxy_get_header_map_pairs",
                &bytes,
                ptr_ptr,
                size_ptr,
            )?;
            ok()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_header_map_pairs",
        move |mut caller: Caller<'_, T>, map: i32, ptr: i32, size: i32| -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_set_header_map_pairs");
            let call = "proxy_set_header_map_pairs";
            let bytes = memory::read(&mut caller, call, ptr, size)?;
            let pairs = codec::decode_map(call, &bytes)?;
            let state = get(caller.data_mut());
            if state.profile().is_kong() {
                return finish(kong_set_pairs(state, map, pairs));
            }
            match map_mut(state, map) {
                Ok(m) => *m = pairs,
                Err(s) => return status(s),
            }
            ok()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_value",
        move |mut caller: Caller<'_, T>,
              map: i32,
              key_ptr: i32,
              key_len: i32,
              ptr_ptr: i32,
              size_ptr: i32|
              -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_get_header_map_value");
            let call = "proxy_get_header_map_value";
            let key = lower(&memory::read(&mut caller, call, key_ptr, key_len)?);
            let state = get(caller.data_mut());
            if let Some(s) = super::injected(state, call) {
                return status(s);
            }
            let value = if state.profile().is_kong() {
                match kong_get_value(state, map, &key) {
                    Ok(v) => Some(v),
                    Err(KongErr::Status(Status::NotFound)) => None,
                    Err(e) => return finish(Err(e)),
                }
            } else {
                match map_mut(state, map) {
                    Ok(m) => m.iter().find(|(n, _)| *n == key).map(|(_, v)| v.clone()),
                    Err(s) => return status(s),
                }
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
        "proxy_add_header_map_value",
        move |mut caller: Caller<'_, T>,
              map: i32,
              kp: i32,
              kl: i32,
              vp: i32,
              vl: i32|
              -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_add_header_map_value");
            let call = "proxy_add_header_map_value";
            let key = lower(&memory::read(&mut caller, call, kp, kl)?);
            let value = memory::read(&mut caller, call, vp, vl)?;
            let state = get(caller.data_mut());
            if let Some(s) = super::injected(state, call) {
                return status(s);
            }
            if state.profile().is_kong() {
                return finish(kong_set_value(state, call, map, &key, value, Op::Add));
            }
            match map_mut(state, map) {
                Ok(m) => m.push((key, value)),
                Err(s) => return status(s),
            }
            ok()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_replace_header_map_value",
        move |mut caller: Caller<'_, T>,
              map: i32,
              kp: i32,
              kl: i32,
              vp: i32,
              vl: i32|
              -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_replace_header_map_value");
            let call = "proxy_replace_header_map_value";
            let key = lower(&memory::read(&mut caller, call, kp, kl)?);
            let value = memory::read(&mut caller, call, vp, vl)?;
            let state = get(caller.data_mut());
            if let Some(s) = super::injected(state, call) {
                return status(s);
            }
            if state.profile().is_kong() {
                return finish(kong_set_value(state, call, map, &key, value, Op::Set));
            }
            match map_mut(state, map) {
                Ok(m) => replace(m, &key, value),
                Err(s) => return status(s),
            }
            ok()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        move |mut caller: Caller<'_, T>, map: i32, kp: i32, kl: i32| -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_remove_header_map_value");
            let call = "proxy_remove_header_map_value";
            let key = lower(&memory::read(&mut caller, call, kp, kl)?);
            let state = get(caller.data_mut());
            if let Some(s) = super::injected(state, call) {
                return status(s);
            }
            if state.profile().is_kong() {
                return finish(kong_set_value(
                    state,
                    call,
                    map,
                    &key,
                    Vec::new(),
                    Op::Remove,
                ));
            }
            match map_mut(state, map) {
                Ok(m) => m.retain(|(n, _)| *n != key),
                Err(s) => return status(s),
            }
            ok()
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn replace_differs_by_profile() {
        let mut envoy = h(&[("a", "1"), ("b", "x"), ("a", "2")]);
        replace(&mut envoy, "a", b"3".to_vec());
        assert_eq!(envoy, h(&[("b", "x"), ("a", "3")]));
        let mut kong = h(&[("a", "1"), ("b", "x"), ("a", "2")]);
        kong_generic_set(&mut kong, "a", b"3".to_vec());
        assert_eq!(kong, h(&[("b", "x")]));
        kong_generic_set(&mut kong, "b", b"y".to_vec());
        kong_generic_set(&mut kong, "c", b"4".to_vec());
        assert_eq!(kong, h(&[("b", "y"), ("c", "4")]));
    }
}

//! The proxy-wasm 0.2.1 host functions the suite calls, declared here so that every status the
//! host returns comes back as a value. One exception: HTTP callouts still go through the SDK
//! (`dispatch_http_call`), whose dispatcher has to record each call's token to route the answer
//! back; it panics on statuses other than Ok, BadArgument and InternalFailure, the two a host
//! refuses a callout with.
//!
//! The SDK's `hostcalls` panic on any status they do not expect: Envoy answers `BadArgument` to a
//! second write of a read-only filter-state key, a host may refuse a header write, and the SDK's
//! header-map decoder unwraps the UTF-8 of every header name. A panic traps the VM, and then every
//! stream on that worker fails until the host replaces it. Here nothing panics: a status other
//! than `Ok` is a [`HostError`], a malformed answer from the host is `SerializationFailure`, and a
//! name that is not UTF-8 is decoded lossily (header names are tokens; such a name can only be
//! garbage, and must not take the VM down).
//!
//! Memory the host returns was allocated in this module's memory through the SDK's exported
//! `proxy_on_memory_allocate` (a `Vec<u8>` of exactly that capacity, leaked), so it is taken back
//! as one.

use crate::headers::HeaderList;
use crate::ports::HostError;
use proxy_wasm::types::{BufferType, MapType, StreamType};

mod raw {
    // Same wasm signatures as the SDK's declarations of these imports (module `env`), with the
    // status as a plain integer: a status the SDK's enum does not list must not be read as one.
    #[link(wasm_import_module = "env")]
    extern "C" {
        pub fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
        pub fn proxy_set_effective_context(context_id: u32) -> u32;
        pub fn proxy_continue_stream(stream_type: u32) -> u32;
        pub fn proxy_call_foreign_function(
            function_name_data: *const u8,
            function_name_size: usize,
            arguments_data: *const u8,
            arguments_size: usize,
            results_data: *mut *mut u8,
            results_size: *mut usize,
        ) -> u32;
        pub fn proxy_register_shared_queue(
            name_data: *const u8,
            name_size: usize,
            return_id: *mut u32,
        ) -> u32;
        pub fn proxy_resolve_shared_queue(
            vm_id_data: *const u8,
            vm_id_size: usize,
            name_data: *const u8,
            name_size: usize,
            return_id: *mut u32,
        ) -> u32;
        pub fn proxy_enqueue_shared_queue(
            queue_id: u32,
            value_data: *const u8,
            value_size: usize,
        ) -> u32;
        pub fn proxy_dequeue_shared_queue(
            queue_id: u32,
            return_value_data: *mut *mut u8,
            return_value_size: *mut usize,
        ) -> u32;
        pub fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
        pub fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
        pub fn proxy_get_buffer_bytes(
            buffer_type: u32,
            start: usize,
            max_size: usize,
            return_buffer_data: *mut *mut u8,
            return_buffer_size: *mut usize,
        ) -> u32;
        pub fn proxy_get_header_map_pairs(
            map_type: u32,
            return_map_data: *mut *mut u8,
            return_map_size: *mut usize,
        ) -> u32;
        pub fn proxy_set_header_map_pairs(
            map_type: u32,
            map_data: *const u8,
            map_size: usize,
        ) -> u32;
        pub fn proxy_get_header_map_value(
            map_type: u32,
            key_data: *const u8,
            key_size: usize,
            return_value_data: *mut *mut u8,
            return_value_size: *mut usize,
        ) -> u32;
        pub fn proxy_replace_header_map_value(
            map_type: u32,
            key_data: *const u8,
            key_size: usize,
            value_data: *const u8,
            value_size: usize,
        ) -> u32;
        pub fn proxy_add_header_map_value(
            map_type: u32,
            key_data: *const u8,
            key_size: usize,
            value_data: *const u8,
            value_size: usize,
        ) -> u32;
        pub fn proxy_remove_header_map_value(
            map_type: u32,
            key_data: *const u8,
            key_size: usize,
        ) -> u32;
        pub fn proxy_get_property(
            path_data: *const u8,
            path_size: usize,
            return_value_data: *mut *mut u8,
            return_value_size: *mut usize,
        ) -> u32;
        pub fn proxy_set_property(
            path_data: *const u8,
            path_size: usize,
            value_data: *const u8,
            value_size: usize,
        ) -> u32;
        pub fn proxy_get_shared_data(
            key_data: *const u8,
            key_size: usize,
            return_value_data: *mut *mut u8,
            return_value_size: *mut usize,
            return_cas: *mut u32,
        ) -> u32;
        pub fn proxy_set_shared_data(
            key_data: *const u8,
            key_size: usize,
            value_data: *const u8,
            value_size: usize,
            cas: u32,
        ) -> u32;
        #[allow(clippy::too_many_arguments)]
        pub fn proxy_send_local_response(
            status_code: u32,
            status_code_details_data: *const u8,
            status_code_details_size: usize,
            body_data: *const u8,
            body_size: usize,
            headers_data: *const u8,
            headers_size: usize,
            grpc_status: i32,
        ) -> u32;
        pub fn proxy_define_metric(
            metric_type: u32,
            name_data: *const u8,
            name_size: usize,
            return_id: *mut u32,
        ) -> u32;
        pub fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
        pub fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
    }
}

const OK: u32 = 0;
const NOT_FOUND: u32 = 1;
const BAD_ARGUMENT: u32 = 2;
const SERIALIZATION_FAILURE: u32 = 3;
const PARSE_FAILURE: u32 = 4;
const EMPTY: u32 = 7;
const CAS_MISMATCH: u32 = 8;
const INTERNAL_FAILURE: u32 = 10;

/// A proxy-wasm status other than `Ok`, as an error.
pub fn status_error(status: u32) -> HostError {
    match status {
        NOT_FOUND => HostError::NotFound,
        BAD_ARGUMENT => HostError::BadArgument,
        SERIALIZATION_FAILURE => HostError::SerializationFailure,
        PARSE_FAILURE => HostError::ParseFailure,
        EMPTY => HostError::Empty,
        CAS_MISMATCH => HostError::CasMismatch,
        INTERNAL_FAILURE => HostError::InternalFailure,
        other => HostError::Other(other),
    }
}

fn check(status: u32) -> Result<(), HostError> {
    if status == OK {
        Ok(())
    } else {
        Err(status_error(status))
    }
}

/// Takes back `size` bytes the host wrote at `data` (see the module docs).
///
/// # Safety
/// `data` is null, or was allocated by `proxy_on_memory_allocate(size)` and not taken yet.
unsafe fn take(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() || size == 0 {
        // A zero-size allocation is a dangling, never-freed pointer; nothing to take back.
        return Vec::new();
    }
    // SAFETY: the caller's contract: a leaked `Vec<u8>` with capacity `size`, now initialised.
    unsafe { Vec::from_raw_parts(data, size, size) }
}

/// Runs a host call that may return bytes: its status, and on `Ok` the bytes it wrote (`None`
/// when it wrote nothing).
fn with_returned(call: impl FnOnce(*mut *mut u8, *mut usize) -> u32) -> (u32, Option<Vec<u8>>) {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    let status = call(&mut data, &mut size);
    // SAFETY: on `Ok` the host allocated `size` bytes through `proxy_on_memory_allocate`.
    let bytes = (status == OK && !data.is_null()).then(|| unsafe { take(data, size) });
    (status, bytes)
}

/// [`with_returned`] for the getters: `Ok(None)` on `NotFound` or when nothing is returned.
fn returned_bytes(
    call: impl FnOnce(*mut *mut u8, *mut usize) -> u32,
) -> Result<Option<Vec<u8>>, HostError> {
    match with_returned(call) {
        (OK, bytes) => Ok(bytes),
        (NOT_FOUND, _) => Ok(None),
        (other, _) => Err(status_error(other)),
    }
}

/// `proxy_log`.
pub fn log(level: u32, message: &str) -> Result<(), HostError> {
    // SAFETY: pointer and length of a live `str`.
    check(unsafe { raw::proxy_log(level, message.as_ptr(), message.len()) })
}

/// `proxy_get_current_time_nanoseconds`.
pub fn now_nanos() -> Result<u64, HostError> {
    let mut nanos = 0u64;
    // SAFETY: a valid out-pointer.
    check(unsafe { raw::proxy_get_current_time_nanoseconds(&mut nanos) })?;
    Ok(nanos)
}

/// `proxy_get_buffer_bytes`: up to `max` bytes of `buffer` from `start`.
pub fn buffer(buffer: BufferType, start: usize, max: usize) -> Result<Option<Vec<u8>>, HostError> {
    returned_bytes(|data, size| {
        // SAFETY: valid out-pointers.
        unsafe { raw::proxy_get_buffer_bytes(buffer as u32, start, max, data, size) }
    })
}

/// `proxy_get_header_map_pairs`, decoded.
pub fn header_pairs(map: MapType) -> Result<HeaderList, HostError> {
    let bytes = returned_bytes(|data, size| {
        // SAFETY: valid out-pointers.
        unsafe { raw::proxy_get_header_map_pairs(map as u32, data, size) }
    })?;
    match bytes {
        None => Ok(Vec::new()),
        Some(bytes) => decode_pairs(&bytes).ok_or(HostError::SerializationFailure),
    }
}

/// `proxy_set_header_map_pairs`: the whole map at once.
pub fn set_header_pairs(map: MapType, pairs: &HeaderList) -> Result<(), HostError> {
    let pairs: Vec<(&str, &[u8])> = pairs
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    let bytes = encode_pairs(&pairs);
    // SAFETY: pointer and length of a live buffer.
    check(unsafe { raw::proxy_set_header_map_pairs(map as u32, bytes.as_ptr(), bytes.len()) })
}

/// `proxy_get_header_map_value` (`Ok(None)` when absent).
pub fn header_value(map: MapType, name: &str) -> Result<Option<Vec<u8>>, HostError> {
    returned_bytes(|data, size| {
        // SAFETY: pointer and length of a live `str`; valid out-pointers.
        unsafe {
            raw::proxy_get_header_map_value(map as u32, name.as_ptr(), name.len(), data, size)
        }
    })
}

/// `proxy_replace_header_map_value`.
pub fn replace_header(map: MapType, name: &str, value: &[u8]) -> Result<(), HostError> {
    // SAFETY: pointers and lengths of live slices.
    check(unsafe {
        raw::proxy_replace_header_map_value(
            map as u32,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

/// `proxy_add_header_map_value`.
pub fn add_header(map: MapType, name: &str, value: &[u8]) -> Result<(), HostError> {
    // SAFETY: pointers and lengths of live slices.
    check(unsafe {
        raw::proxy_add_header_map_value(
            map as u32,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

/// `proxy_remove_header_map_value`.
pub fn remove_header(map: MapType, name: &str) -> Result<(), HostError> {
    // SAFETY: pointer and length of a live `str`.
    check(unsafe { raw::proxy_remove_header_map_value(map as u32, name.as_ptr(), name.len()) })
}

/// `proxy_get_property` (`Ok(None)` when the host has no such property).
pub fn property(path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
    let path = encode_path(path);
    returned_bytes(|data, size| {
        // SAFETY: pointer and length of a live buffer; valid out-pointers.
        unsafe { raw::proxy_get_property(path.as_ptr(), path.len(), data, size) }
    })
}

/// Whether the host answers `proxy_get_property(path)` with `Ok` (an empty value included).
pub fn property_answered(path: &[&str]) -> bool {
    let path = encode_path(path);
    let (status, _) = with_returned(|data, size| {
        // SAFETY: pointer and length of a live buffer; valid out-pointers.
        unsafe { raw::proxy_get_property(path.as_ptr(), path.len(), data, size) }
    });
    status == OK
}

/// `proxy_set_property`.
pub fn set_property(path: &[&str], value: &[u8]) -> Result<(), HostError> {
    let path = encode_path(path);
    // SAFETY: pointers and lengths of live buffers.
    check(unsafe {
        raw::proxy_set_property(path.as_ptr(), path.len(), value.as_ptr(), value.len())
    })
}

/// `proxy_get_shared_data`: the value and its cas (`None` and 0 when the key is absent).
pub fn shared_data(key: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
    let mut cas = 0u32;
    let answer = with_returned(|data, size| {
        // SAFETY: pointer and length of a live `str`; valid out-pointers.
        unsafe { raw::proxy_get_shared_data(key.as_ptr(), key.len(), data, size, &mut cas) }
    });
    match answer {
        (OK, value) => Ok((value, cas)),
        (NOT_FOUND, _) => Ok((None, 0)),
        (other, _) => Err(status_error(other)),
    }
}

/// `proxy_set_shared_data` (`cas` 0: unconditional).
pub fn set_shared_data(key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
    // SAFETY: pointers and lengths of live slices.
    check(unsafe {
        raw::proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas)
    })
}

/// `proxy_send_local_response`, no gRPC status.
pub fn send_local_response(
    status: u32,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(), HostError> {
    let headers = encode_pairs(headers);
    let body_data = if body.is_empty() {
        std::ptr::null()
    } else {
        body.as_ptr()
    };
    // SAFETY: pointers and lengths of live buffers (no details string; no body when empty).
    check(unsafe {
        raw::proxy_send_local_response(
            status,
            std::ptr::null(),
            0,
            body_data,
            body.len(),
            headers.as_ptr(),
            headers.len(),
            -1,
        )
    })
}

/// `proxy_define_metric` (`kind` 0 counter, 1 gauge, 2 histogram).
pub fn define_metric(kind: u32, name: &str) -> Result<u32, HostError> {
    let mut id = 0u32;
    // SAFETY: pointer and length of a live `str`; a valid out-pointer.
    check(unsafe { raw::proxy_define_metric(kind, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

/// `proxy_increment_metric`.
pub fn increment_metric(id: u32, delta: i64) -> Result<(), HostError> {
    // SAFETY: plain values.
    check(unsafe { raw::proxy_increment_metric(id, delta) })
}

/// `proxy_record_metric`.
pub fn record_metric(id: u32, value: u64) -> Result<(), HostError> {
    // SAFETY: plain values.
    check(unsafe { raw::proxy_record_metric(id, value) })
}

/// `proxy_set_tick_period_milliseconds`.
pub fn set_tick_period_millis(period: u32) -> Result<(), HostError> {
    // SAFETY: a plain value.
    check(unsafe { raw::proxy_set_tick_period_milliseconds(period) })
}

/// `proxy_set_effective_context`: later calls act for `context_id` (`BadArgument`: no such
/// context, e.g. a stream the client closed).
pub fn set_effective_context(context_id: u32) -> Result<(), HostError> {
    // SAFETY: a plain value.
    check(unsafe { raw::proxy_set_effective_context(context_id) })
}

/// `proxy_continue_stream(HttpRequest)`: resumes the current stream's request.
pub fn resume_request() -> Result<(), HostError> {
    // SAFETY: a plain value.
    check(unsafe { raw::proxy_continue_stream(StreamType::HttpRequest as u32) })
}

/// `proxy_call_foreign_function` (`Ok(None)`: an empty result).
pub fn call_foreign_function(name: &str, arguments: &[u8]) -> Result<Option<Vec<u8>>, HostError> {
    let answer = with_returned(|data, size| {
        // SAFETY: pointers and lengths of live buffers; valid out-pointers.
        unsafe {
            raw::proxy_call_foreign_function(
                name.as_ptr(),
                name.len(),
                arguments.as_ptr(),
                arguments.len(),
                data,
                size,
            )
        }
    });
    match answer {
        (OK, result) => Ok(result),
        (other, _) => Err(status_error(other)),
    }
}

/// `proxy_register_shared_queue`: the queue's id.
pub fn register_queue(name: &str) -> Result<u32, HostError> {
    let mut id = 0u32;
    // SAFETY: pointer and length of a live `str`; a valid out-pointer.
    check(unsafe { raw::proxy_register_shared_queue(name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

/// `proxy_resolve_shared_queue` (`Ok(None)`: no such queue).
pub fn resolve_queue(vm_id: &str, name: &str) -> Result<Option<u32>, HostError> {
    let mut id = 0u32;
    // SAFETY: pointers and lengths of live `str`s; a valid out-pointer.
    let status = unsafe {
        raw::proxy_resolve_shared_queue(
            vm_id.as_ptr(),
            vm_id.len(),
            name.as_ptr(),
            name.len(),
            &mut id,
        )
    };
    match status {
        OK => Ok(Some(id)),
        NOT_FOUND => Ok(None),
        other => Err(status_error(other)),
    }
}

/// `proxy_enqueue_shared_queue`.
pub fn enqueue(queue: u32, item: &[u8]) -> Result<(), HostError> {
    // SAFETY: pointer and length of a live slice.
    check(unsafe { raw::proxy_enqueue_shared_queue(queue, item.as_ptr(), item.len()) })
}

/// `proxy_dequeue_shared_queue` (`Ok(None)`: the queue is empty).
pub fn dequeue(queue: u32) -> Result<Option<Vec<u8>>, HostError> {
    let answer = with_returned(|data, size| {
        // SAFETY: valid out-pointers.
        unsafe { raw::proxy_dequeue_shared_queue(queue, data, size) }
    });
    match answer {
        (OK, item) => Ok(item),
        (EMPTY, _) => Ok(None),
        (other, _) => Err(status_error(other)),
    }
}

/// A property path as the ABI wants it: the segments joined by NUL.
pub fn encode_path(path: &[&str]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.iter().map(|p| p.len() + 1).sum());
    for (i, part) in path.iter().enumerate() {
        if i > 0 {
            out.push(0);
        }
        out.extend_from_slice(part.as_bytes());
    }
    out
}

/// Header pairs as the ABI wants them: the count, every (name, value) length, then each name and
/// value followed by a NUL; all integers u32 little-endian.
pub fn encode_pairs<V: AsRef<[u8]>>(pairs: &[(&str, V)]) -> Vec<u8> {
    let size = 4 + pairs
        .iter()
        .map(|(n, v)| 10 + n.len() + v.as_ref().len())
        .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    out.extend_from_slice(&len(pairs.len()));
    for (name, value) in pairs {
        out.extend_from_slice(&len(name.len()));
        out.extend_from_slice(&len(value.as_ref().len()));
    }
    for (name, value) in pairs {
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(value.as_ref());
        out.push(0);
    }
    out
}

/// Decodes [`encode_pairs`]' format with every bound checked: `None` if it is malformed. A name
/// that is not UTF-8 is decoded lossily.
pub fn decode_pairs(bytes: &[u8]) -> Option<HeaderList> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let word = |at: usize| -> Option<usize> {
        let b = bytes.get(at..at.checked_add(4)?)?;
        usize::try_from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])).ok()
    };
    let count = word(0)?;
    let mut data = count.checked_mul(8)?.checked_add(4)?;
    if data > bytes.len() {
        return None;
    }
    let mut pairs = Vec::with_capacity(count);
    for i in 0..count {
        let name_len = word(4 + i * 8)?;
        let value_len = word(8 + i * 8)?;
        let name = bytes.get(data..data.checked_add(name_len)?)?;
        data = data.checked_add(name_len)?.checked_add(1)?;
        let value = bytes.get(data..data.checked_add(value_len)?)?;
        data = data.checked_add(value_len)?.checked_add(1)?;
        pairs.push((String::from_utf8_lossy(name).into_owned(), value.to_vec()));
    }
    Some(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip_and_bad_input_is_refused_not_trapped() {
        let encoded = encode_pairs(&[(":path", "/a"), ("x-empty", ""), ("k", "v=1")]);
        let decoded = decode_pairs(&encoded);
        assert_eq!(
            decoded,
            Some(vec![
                (":path".to_owned(), b"/a".to_vec()),
                ("x-empty".to_owned(), Vec::new()),
                ("k".to_owned(), b"v=1".to_vec()),
            ])
        );
        assert_eq!(decode_pairs(&[]), Some(Vec::new()));
        let none: &[(&str, &[u8])] = &[];
        assert_eq!(decode_pairs(&encode_pairs(none)), Some(Vec::new()));
        // Every truncation of a valid encoding is refused, never read out of bounds.
        for cut in 1..encoded.len() - 1 {
            assert_eq!(decode_pairs(&encoded[..cut]), None, "cut at {cut}");
        }
        // A count that would overflow, or claims more pairs than there are bytes.
        assert_eq!(decode_pairs(&u32::MAX.to_le_bytes()), None);
        assert_eq!(decode_pairs(&[2, 0, 0, 0, 1, 0, 0, 0]), None);
    }

    #[test]
    fn a_non_utf8_header_name_is_decoded_lossily() {
        let mut bytes = 1u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(&2u32.to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&[0xff, b'a', 0, b'v', 0]);
        assert_eq!(
            decode_pairs(&bytes),
            Some(vec![("\u{fffd}a".to_owned(), b"v".to_vec())])
        );
    }

    #[test]
    fn property_paths_are_nul_joined() {
        assert_eq!(encode_path(&[]), b"");
        assert_eq!(encode_path(&["source", "address"]), b"source\0address");
    }

    #[test]
    fn statuses_map_to_errors() {
        assert_eq!(status_error(NOT_FOUND), HostError::NotFound);
        assert_eq!(status_error(CAS_MISMATCH), HostError::CasMismatch);
        assert_eq!(status_error(99), HostError::Other(99));
        assert_eq!(check(OK), Ok(()));
    }
}

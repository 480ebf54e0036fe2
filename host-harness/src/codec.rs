//! The proxy-wasm wire formats: header maps and property paths.
//!
//! A map is `u32 count`, then `count` pairs of `u32 name_len, u32 value_len`, then for each pair
//! the name bytes, a NUL, the value bytes, a NUL (all little-endian). A property path is its
//! segments joined by NUL.

use crate::error::HostTrap;
use crate::types::Headers;

/// Serializes a map the way the SDK's `deserialize_map_bytes` reads it.
pub(crate) fn encode_map(map: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + map.len() * 10);
    out.extend_from_slice(&(map.len() as u32).to_le_bytes());
    for (name, value) in map {
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    }
    for (name, value) in map {
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(value);
        out.push(0);
    }
    out
}

fn u32_at(bytes: &[u8], at: usize) -> Option<usize> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

/// Parses a serialized map; names are lowercased (as Envoy's `LowerCaseString` does).
/// An empty buffer is an empty map. Any inconsistency is a trap.
pub(crate) fn decode_map(call: &'static str, bytes: &[u8]) -> Result<Headers, HostTrap> {
    let bad = |reason| HostTrap::BadMapEncoding { call, reason };
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let count = u32_at(bytes, 0).ok_or(bad("truncated count"))?;
    let mut data = count
        .checked_mul(8)
        .and_then(|n| n.checked_add(4))
        .filter(|&n| n <= bytes.len())
        .ok_or(bad("count exceeds buffer"))?;
    let mut map = Vec::with_capacity(count);
    for i in 0..count {
        let name_len = u32_at(bytes, 4 + i * 8).ok_or(bad("truncated sizes"))?;
        let value_len = u32_at(bytes, 8 + i * 8).ok_or(bad("truncated sizes"))?;
        let name = take(bytes, &mut data, name_len).ok_or(bad("name overflows buffer"))?;
        let value = take(bytes, &mut data, value_len).ok_or(bad("value overflows buffer"))?;
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        map.push((name, value.to_vec()));
    }
    Ok(map)
}

/// Takes `len` bytes at `*at` followed by a NUL terminator.
fn take<'a>(bytes: &'a [u8], at: &mut usize, len: usize) -> Option<&'a [u8]> {
    let end = at.checked_add(len)?;
    let out = bytes.get(*at..end)?;
    if *bytes.get(end)? != 0 {
        return None;
    }
    *at = end + 1;
    Some(out)
}

/// The NUL-joined key of a dotted property path (`source.address` -> `source\0address`).
pub(crate) fn property_key<S: AsRef<str>>(segments: &[S]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, s) in segments.iter().enumerate() {
        if i > 0 {
            out.push(0);
        }
        out.extend_from_slice(s.as_ref().as_bytes());
    }
    out
}

/// Splits a NUL-joined property key back into segments (for display and profile checks).
pub(crate) fn property_segments(key: &[u8]) -> Vec<String> {
    key.split(|&b| b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_round_trip_keeps_duplicates_and_bytes() {
        let map = vec![
            ("a".to_string(), b"1".to_vec()),
            ("a".to_string(), vec![0xff, 0xfe]),
            ("b".to_string(), Vec::new()),
        ];
        assert_eq!(decode_map("t", &encode_map(&map)).unwrap(), map);
    }

    #[test]
    fn bad_maps_are_rejected() {
        assert!(decode_map("t", &[5, 0, 0, 0]).is_err());
        assert!(decode_map("t", &[1, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, b'a', 0, 0]).is_err());
        assert!(decode_map("t", &[1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, b'a', 1, 0]).is_err());
        assert_eq!(decode_map("t", &[]).unwrap(), Vec::new());
    }

    #[test]
    fn property_paths_join_with_nul() {
        assert_eq!(
            property_key(&["source", "address"]),
            b"source\0address".to_vec()
        );
        assert_eq!(property_segments(b"a\0b"), vec!["a", "b"]);
    }
}

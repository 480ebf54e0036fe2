//! Generated values: UUID v4, lowercase hex, timestamps.

use gateway_core::ports::{Clock, HostError, RandomSource};

/// A random (version 4, RFC 9562) UUID, lowercase, hyphenated.
pub fn uuid_v4<R: RandomSource + ?Sized>(random: &R) -> Result<String, HostError> {
    let mut bytes = [0u8; 16];
    random.fill_random(&mut bytes)?;
    Ok(format_uuid_v4(bytes))
}

/// Formats 16 random bytes as a v4 UUID (sets the version and variant bits).
pub fn format_uuid_v4(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex(&bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// How a `time` value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum TimeFormat {
    /// `2025-11-24T19:16:00.123Z` (RFC 3339, UTC, milliseconds).
    Rfc3339,
    /// Seconds since the Unix epoch, e.g. `1764011760`.
    UnixSeconds,
    /// Milliseconds since the Unix epoch, e.g. `1764011760123`.
    UnixMillis,
}

/// The current host time in `format`.
pub fn now<C: Clock + ?Sized>(clock: &C, format: TimeFormat) -> Result<String, HostError> {
    let nanos = clock.now_unix_nanos()?;
    Ok(format_time(nanos, format))
}

/// Formats nanoseconds since the epoch.
pub fn format_time(unix_nanos: u64, format: TimeFormat) -> String {
    let millis = unix_nanos / 1_000_000;
    let secs = millis / 1000;
    match format {
        TimeFormat::UnixSeconds => secs.to_string(),
        TimeFormat::UnixMillis => millis.to_string(),
        TimeFormat::Rfc3339 => {
            let days = secs / 86_400;
            let rem = secs % 86_400;
            let (y, m, d) = civil_from_days(days);
            format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
                rem / 3600,
                (rem % 3600) / 60,
                rem % 60,
                millis % 1000
            )
        }
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_sets_version_and_variant() {
        let id = format_uuid_v4([0xff; 16]);
        assert_eq!(id, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let id = format_uuid_v4([0; 16]);
        assert_eq!(id, "00000000-0000-4000-8000-000000000000");
    }

    #[test]
    fn time_formats() {
        // 2025-11-24T19:16:00.123Z
        let nanos = 1_764_011_760_123_456_789;
        assert_eq!(
            format_time(nanos, TimeFormat::Rfc3339),
            "2025-11-24T19:16:00.123Z"
        );
        assert_eq!(format_time(nanos, TimeFormat::UnixSeconds), "1764011760");
        assert_eq!(format_time(nanos, TimeFormat::UnixMillis), "1764011760123");
        assert_eq!(
            format_time(0, TimeFormat::Rfc3339),
            "1970-01-01T00:00:00.000Z"
        );
        // Leap day.
        assert_eq!(
            format_time(951_782_400 * 1_000_000_000, TimeFormat::Rfc3339),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0x00, 0xab, 0x1f]), "00ab1f");
    }
}

//! Whether a finished request is a failure: its status, its duration, and (where the host has
//! them) Envoy's response flags and details. Pure functions.

use crate::config::FailurePolicy;

/// Envoy `response.flags` bits (`StreamInfo::CoreResponseFlag`): upstream request timeout.
pub const FLAG_UPSTREAM_TIMEOUT: u64 = 0x4;
/// Upstream remote reset (UR), connection failure (UF), connection termination (UC).
pub const FLAG_UPSTREAM_RESETS: u64 = 0x10 | 0x20 | 0x40;

/// What the host told about how the upstream exchange ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UpstreamSignals<'a> {
    /// `response.code_details` (Envoy), e.g. `upstream_reset_before_response_started{...}`.
    pub details: Option<&'a [u8]>,
    /// `response.flags` (Envoy), a bit set.
    pub flags: Option<u64>,
}

impl UpstreamSignals<'_> {
    /// The upstream timed out.
    pub fn timed_out(&self) -> bool {
        self.flags.is_some_and(|f| f & FLAG_UPSTREAM_TIMEOUT != 0)
            || self.details.is_some_and(|d| {
                d.starts_with(b"upstream_response_timeout")
                    || d.starts_with(b"upstream_per_try_timeout")
                    || d.starts_with(b"upstream_max_stream_duration_reached")
            })
    }

    /// The upstream reset the stream or could not be connected to.
    pub fn reset(&self) -> bool {
        self.flags.is_some_and(|f| f & FLAG_UPSTREAM_RESETS != 0)
            || self
                .details
                .is_some_and(|d| d.starts_with(b"upstream_reset"))
    }
}

impl FailurePolicy {
    /// Whether a response with `status` after `elapsed_ms` is a failure by status or duration.
    pub fn fails_by_status_or_time(&self, status: u16, elapsed_ms: u64) -> bool {
        self.status_codes.contains(&status)
            || self
                .slow_response_ms
                .is_some_and(|limit| elapsed_ms > limit)
    }

    /// Whether the host's upstream signals are worth reading for `status`: only for statuses a
    /// proxy makes up on a reset or timeout (5xx) that are not already failures.
    pub fn wants_signals(&self, status: Option<u16>) -> bool {
        (self.resets || self.timeouts) && status.is_none_or(|s| s >= 500)
    }

    /// Whether the upstream signals make it a failure.
    pub fn fails_by_signals(&self, signals: &UpstreamSignals<'_>) -> bool {
        (self.resets && signals.reset()) || (self.timeouts && signals.timed_out())
    }
}

/// Parses Envoy's `response.flags` property (an int64, little-endian).
pub fn parse_flags(bytes: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = bytes.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> FailurePolicy {
        FailurePolicy {
            status_codes: vec![500, 502, 503, 504],
            resets: true,
            timeouts: true,
            slow_response_ms: Some(1000),
        }
    }

    #[test]
    fn statuses_and_slowness() {
        let p = policy();
        assert!(p.fails_by_status_or_time(503, 0));
        assert!(!p.fails_by_status_or_time(404, 0), "a 4xx is not a failure");
        assert!(!p.fails_by_status_or_time(501, 0));
        assert!(!p.fails_by_status_or_time(200, 1000));
        assert!(p.fails_by_status_or_time(200, 1001));
        let p = FailurePolicy {
            status_codes: vec![429],
            ..policy()
        };
        assert!(
            p.fails_by_status_or_time(429, 0),
            "a 4xx counts when listed"
        );
    }

    #[test]
    fn resets_and_timeouts_from_flags_or_details() {
        let p = policy();
        let reset = UpstreamSignals {
            details: Some(b"upstream_reset_before_response_started{connection_failure}"),
            flags: None,
        };
        assert!(p.fails_by_signals(&reset));
        let timeout = UpstreamSignals {
            details: None,
            flags: Some(FLAG_UPSTREAM_TIMEOUT),
        };
        assert!(p.fails_by_signals(&timeout));
        assert!(!p.fails_by_signals(&UpstreamSignals {
            details: Some(b"via_upstream"),
            flags: Some(0)
        }));
        assert!(
            !p.fails_by_signals(&UpstreamSignals::default()),
            "kong: none"
        );
        let off = FailurePolicy {
            resets: false,
            ..policy()
        };
        assert!(!off.fails_by_signals(&reset));
        assert!(off.fails_by_signals(&timeout));
    }

    #[test]
    fn signals_are_read_only_when_they_can_matter() {
        let p = policy();
        assert!(!p.wants_signals(Some(200)));
        assert!(p.wants_signals(Some(501)));
        assert!(p.wants_signals(None));
        assert_eq!(parse_flags(&0x10u64.to_le_bytes()), Some(0x10));
        assert_eq!(parse_flags(b"x"), None);
    }
}

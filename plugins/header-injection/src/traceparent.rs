//! W3C Trace Context (`traceparent`, `tracestate`) validation and propagation.
//!
//! Only version `00` is accepted: `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`,
//! lowercase hex, neither id all zeros, exactly one header line. A valid traceparent passes
//! unchanged with its `tracestate`; an invalid one is replaced (or removed) and `tracestate` is
//! dropped, as the specification requires when the parent is not trusted.

use crate::ids::hex;
use gateway_core::ports::{HostError, RandomSource};
use serde::Deserialize;

/// `traceparent` as written in config.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct TraceparentConfig {
    /// Turn trace-context handling on or off. Default `true`.
    pub enabled: bool,
    /// Start a new trace when the request has no traceparent. Default `true`.
    pub start_when_absent: bool,
    /// Replace an invalid traceparent with a new one (`true`), or just remove it (`false`).
    /// Default `true`.
    pub replace_invalid: bool,
    /// Set the sampled flag (`01`) on traces the plugin starts. Default `false` (`00`).
    pub sampled: bool,
}

impl Default for TraceparentConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            start_when_absent: true,
            replace_invalid: true,
            sampled: false,
        }
    }
}

/// The compiled policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceparentPolicy {
    start_when_absent: bool,
    replace_invalid: bool,
    sampled: bool,
}

/// What the request phase must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceDecision {
    /// Valid (or absent and not starting): leave both headers alone.
    Keep,
    /// Set this traceparent (replacing any) and drop `tracestate`.
    Set {
        /// The new traceparent.
        traceparent: String,
        /// True if an invalid one was replaced, false if a trace was started.
        replaced: bool,
    },
    /// Remove the invalid traceparent and `tracestate`.
    Remove,
    /// No traceparent and none started: drop an orphan `tracestate`.
    RemoveTracestate,
}

impl TraceparentPolicy {
    /// Compiles the config; `None` when disabled.
    pub fn try_new(config: &TraceparentConfig) -> Option<Self> {
        config.enabled.then_some(Self {
            start_when_absent: config.start_when_absent,
            replace_invalid: config.replace_invalid,
            sampled: config.sampled,
        })
    }

    /// Decides from every incoming traceparent value and whether a tracestate is present.
    pub fn decide<R: RandomSource + ?Sized>(
        &self,
        traceparents: &[Vec<u8>],
        has_tracestate: bool,
        random: &R,
    ) -> Result<TraceDecision, HostError> {
        let absent = traceparents.is_empty();
        let valid = matches!(traceparents, [only] if is_valid(only));
        if valid {
            return Ok(TraceDecision::Keep);
        }
        let start = if absent {
            self.start_when_absent
        } else {
            self.replace_invalid
        };
        if start {
            return Ok(TraceDecision::Set {
                traceparent: self.generate(random)?,
                replaced: !absent,
            });
        }
        Ok(match (absent, has_tracestate) {
            (false, _) => TraceDecision::Remove,
            (true, true) => TraceDecision::RemoveTracestate,
            (true, false) => TraceDecision::Keep,
        })
    }

    fn generate<R: RandomSource + ?Sized>(&self, random: &R) -> Result<String, HostError> {
        let mut bytes = [0u8; 24];
        random.fill_random(&mut bytes)?;
        // An all-zero id is invalid; force a bit on the (astronomically unlikely) zero draw.
        if bytes[..16].iter().all(|b| *b == 0) {
            bytes[15] = 1;
        }
        if bytes[16..].iter().all(|b| *b == 0) {
            bytes[23] = 1;
        }
        let flags = if self.sampled { "01" } else { "00" };
        Ok(format!(
            "00-{}-{}-{flags}",
            hex(&bytes[..16]),
            hex(&bytes[16..])
        ))
    }
}

/// True if `value` is a valid version-00 traceparent.
pub fn is_valid(value: &[u8]) -> bool {
    if value.len() != 55 {
        return false;
    }
    let fields = [(0, 2), (3, 32), (36, 16), (53, 2)];
    let dashes_ok = [2, 35, 52].iter().all(|i| value[*i] == b'-');
    let hex_ok = fields.iter().all(|(start, len)| {
        value[*start..start + len]
            .iter()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    });
    let nonzero = |start: usize, len: usize| value[start..start + len].iter().any(|b| *b != b'0');
    dashes_ok && hex_ok && &value[..2] == b"00" && nonzero(3, 32) && nonzero(36, 16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_core::fake::FakeHost;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn policy(json: &str) -> TraceparentPolicy {
        let config: TraceparentConfig = serde_json::from_str(json).unwrap();
        TraceparentPolicy::try_new(&config).unwrap()
    }

    #[test]
    fn validation() {
        assert!(is_valid(VALID.as_bytes()));
        assert!(!is_valid(VALID.to_uppercase().as_bytes()));
        assert!(!is_valid(
            b"00-00000000000000000000000000000000-00f067aa0ba902b7-01"
        ));
        assert!(!is_valid(
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"
        ));
        assert!(!is_valid(
            b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        ));
        assert!(!is_valid(
            b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        ));
        assert!(!is_valid(
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-"
        ));
        assert!(!is_valid(
            b"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        ));
        assert!(!is_valid(
            b"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01"
        ));
        assert!(!is_valid(b""));
    }

    #[test]
    fn valid_is_kept() {
        let host = FakeHost::default();
        let d = policy("{}")
            .decide(&[VALID.as_bytes().to_vec()], true, &host)
            .unwrap();
        assert_eq!(d, TraceDecision::Keep);
    }

    #[test]
    fn absent_starts_invalid_replaced() {
        let host = FakeHost::default();
        let p = policy("{}");
        match p.decide(&[], false, &host).unwrap() {
            TraceDecision::Set {
                traceparent,
                replaced,
            } => {
                assert!(is_valid(traceparent.as_bytes()), "{traceparent}");
                assert!(traceparent.ends_with("-00"));
                assert!(!replaced);
            }
            other => panic!("{other:?}"),
        }
        let d = p.decide(&[b"garbage".to_vec()], true, &host).unwrap();
        assert!(matches!(d, TraceDecision::Set { replaced: true, .. }));
        // Two lines, even valid ones, are invalid.
        let two = vec![VALID.as_bytes().to_vec(), VALID.as_bytes().to_vec()];
        assert!(matches!(
            p.decide(&two, false, &host).unwrap(),
            TraceDecision::Set { replaced: true, .. }
        ));
    }

    #[test]
    fn configurable_off_switches() {
        let host = FakeHost::default();
        let p = policy(r#"{"start_when_absent": false, "replace_invalid": false}"#);
        assert_eq!(p.decide(&[], false, &host).unwrap(), TraceDecision::Keep);
        assert_eq!(
            p.decide(&[], true, &host).unwrap(),
            TraceDecision::RemoveTracestate
        );
        assert_eq!(
            p.decide(&[b"bad".to_vec()], true, &host).unwrap(),
            TraceDecision::Remove
        );
    }

    #[test]
    fn sampled_flag() {
        let host = FakeHost::default();
        let p = policy(r#"{"sampled": true}"#);
        match p.decide(&[], false, &host).unwrap() {
            TraceDecision::Set { traceparent, .. } => assert!(traceparent.ends_with("-01")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn random_failure_is_an_error_not_a_trap() {
        let host = FakeHost::default();
        host.random_fails.set(true);
        assert!(policy("{}").decide(&[], false, &host).is_err());
    }
}

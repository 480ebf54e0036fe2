//! What a host did with one step ([`Observed`]), the expectation checker ([`check`]) and the
//! comparer of two hosts ([`compare`]).
//!
//! Any runner (real Envoy here, the wasmtime harness elsewhere) produces one [`Observed`] per
//! step; `check` turns it into mismatches against the step's [`Expect`], `compare` into
//! differences between two hosts on status, upstream reach and every header the expectations name.

use std::collections::BTreeSet;
use std::fmt;

use crate::scenario::{parse_side_ref, Expect, Side};

/// Header lines: lowercase names, raw values, in order, duplicates kept.
pub type HeaderList = Vec<(String, Vec<u8>)>;

/// What one host did with one step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Status returned to the client.
    pub status: u16,
    /// Whether the request reached the upstream.
    pub upstream_reached: bool,
    /// Headers the upstream received (empty when not reached).
    pub upstream_headers: HeaderList,
    /// Headers returned to the client.
    pub response_headers: HeaderList,
    /// Body returned to the client.
    pub body: Vec<u8>,
}

impl Observed {
    /// The headers of one side.
    pub fn headers(&self, side: Side) -> &HeaderList {
        match side {
            Side::Upstream => &self.upstream_headers,
            Side::Response => &self.response_headers,
        }
    }

    /// Every value of `name` (lowercase) on `side`, in order.
    pub fn values(&self, side: Side, name: &str) -> Vec<&[u8]> {
        self.headers(side)
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
            .collect()
    }

    /// The first value of `name` on `side`.
    pub fn first(&self, side: Side, name: &str) -> Option<&[u8]> {
        self.values(side, name).first().copied()
    }
}

/// One expectation that did not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// What was checked, e.g. `status`, `response header x-request-id matches ^...$`.
    pub what: String,
    pub expected: String,
    pub observed: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: expected {}, observed {}",
            self.what, self.expected, self.observed
        )
    }
}

fn show(v: Option<&[u8]>) -> String {
    match v {
        None => "(absent)".into(),
        Some(v) => match std::str::from_utf8(v) {
            Ok(s) if s.len() > 120 => {
                let cut: String = s.chars().take(120).collect();
                format!("{cut:?}... ({} bytes)", s.len())
            }
            Ok(s) => format!("{s:?}"),
            Err(_) => format!("bytes {v:02x?}"),
        },
    }
}

fn show_all(vs: &[&[u8]]) -> String {
    if vs.is_empty() {
        return "(absent)".into();
    }
    let shown: Vec<String> = vs.iter().map(|v| show(Some(v))).collect();
    format!("[{}]", shown.join(", "))
}

/// Checks `observed` against `expect`; empty means every expectation held.
pub fn check(expect: &Expect, observed: &Observed) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let mut miss = |what: String, expected: String, observed: String| {
        out.push(Mismatch {
            what,
            expected,
            observed,
        })
    };
    if let Some(status) = expect.status {
        if status != observed.status {
            miss(
                "status".into(),
                status.to_string(),
                observed.status.to_string(),
            );
        }
    }
    if let Some(reached) = expect.upstream_reached {
        if reached != observed.upstream_reached {
            miss(
                "upstream reached".into(),
                reached.to_string(),
                observed.upstream_reached.to_string(),
            );
        }
    }
    if expect.checks_upstream() && !observed.upstream_reached {
        miss(
            "upstream_* expectations".into(),
            "the upstream to be reached".into(),
            "it was not".into(),
        );
    }
    let sides = [
        (
            Side::Response,
            &expect.response_headers,
            &expect.response_headers_match,
            &expect.response_headers_absent,
        ),
        (
            Side::Upstream,
            &expect.upstream_headers,
            &expect.upstream_headers_match,
            &expect.upstream_headers_absent,
        ),
    ];
    for (side, equal, matching, absent) in sides {
        if side == Side::Upstream && !observed.upstream_reached {
            continue;
        }
        let label = side.label();
        for (name, want) in equal {
            let name = name.to_ascii_lowercase();
            let got = observed.first(side, &name);
            if got != Some(want.as_bytes()) {
                miss(
                    format!("{label} header {name}"),
                    format!("{want:?}"),
                    show_all(&observed.values(side, &name)),
                );
            }
        }
        for (name, re) in matching {
            let name = name.to_ascii_lowercase();
            let got = observed.first(side, &name);
            let ok = match (regex_lite::Regex::new(re), got) {
                (Ok(re), Some(v)) => re.is_match(&String::from_utf8_lossy(v)),
                _ => false,
            };
            if !ok {
                miss(
                    format!("{label} header {name}"),
                    format!("to match /{re}/"),
                    show(got),
                );
            }
        }
        for name in absent {
            let name = name.to_ascii_lowercase();
            let got = observed.values(side, &name);
            if !got.is_empty() {
                miss(
                    format!("{label} header {name}"),
                    "(absent)".into(),
                    show_all(&got),
                );
            }
        }
    }
    if observed.upstream_reached {
        for (name, count) in &expect.upstream_header_count {
            let name = name.to_ascii_lowercase();
            let got = observed.values(Side::Upstream, &name);
            if got.len() != *count {
                miss(
                    format!("upstream header count {name}"),
                    count.to_string(),
                    format!("{} {}", got.len(), show_all(&got)),
                );
            }
        }
    }
    for (a, b) in &expect.same_value {
        let (Ok((sa, na)), Ok((sb, nb))) = (parse_side_ref(a), parse_side_ref(b)) else {
            miss(
                format!("same_value {a} {b}"),
                "valid references".into(),
                "invalid".into(),
            );
            continue;
        };
        let (va, vb) = (observed.first(sa, &na), observed.first(sb, &nb));
        if va.is_none() || va != vb {
            miss(
                format!("same_value {a} = {b}"),
                format!("equal values, {a} = {}", show(va)),
                format!("{b} = {}", show(vb)),
            );
        }
    }
    if let Some(needle) = &expect.response_body_contains {
        let body = String::from_utf8_lossy(&observed.body);
        if !body.contains(needle.as_str()) {
            miss(
                "response body".into(),
                format!("to contain {needle:?}"),
                show(Some(&observed.body)),
            );
        }
    }
    out
}

/// How a named header is compared between two hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Compare {
    /// Every value, byte for byte (headers with exact expected values, absent headers, counts).
    Values,
    /// Only the number of values (headers expected to match a pattern: ids differ per host).
    Count,
}

/// The headers `expect` names, per side, and how to compare each.
fn named_headers(expect: &Expect) -> BTreeSet<(Side, String, Compare)> {
    let mut named = BTreeSet::new();
    let lower = |s: &String| s.to_ascii_lowercase();
    for n in expect
        .response_headers
        .keys()
        .chain(&expect.response_headers_absent)
    {
        named.insert((Side::Response, lower(n), Compare::Values));
    }
    for n in expect
        .upstream_headers
        .keys()
        .chain(&expect.upstream_headers_absent)
    {
        named.insert((Side::Upstream, lower(n), Compare::Values));
    }
    for n in expect.response_headers_match.keys() {
        named.insert((Side::Response, lower(n), Compare::Count));
    }
    // Counted headers may carry generated values (ids): the hosts must agree on the count.
    for n in expect
        .upstream_headers_match
        .keys()
        .chain(expect.upstream_header_count.keys())
    {
        named.insert((Side::Upstream, lower(n), Compare::Count));
    }
    for (a, b) in &expect.same_value {
        for r in [a, b] {
            if let Ok((side, name)) = parse_side_ref(r) {
                named.insert((side, name, Compare::Count));
            }
        }
    }
    // A header compared by value need not also be compared by count.
    let by_value: BTreeSet<(Side, String)> = named
        .iter()
        .filter(|(_, _, c)| *c == Compare::Values)
        .map(|(s, n, _)| (*s, n.clone()))
        .collect();
    named.retain(|(s, n, c)| *c == Compare::Values || !by_value.contains(&(*s, n.clone())));
    named
}

/// One disagreement between two hosts on one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// What differs, e.g. `status`, `upstream header x-user-id`.
    pub what: String,
    pub a: String,
    pub b: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} vs {}", self.what, self.a, self.b)
    }
}

/// Compares two hosts' outcomes of the same step: status, upstream reach, and every header the
/// expectations name (by value, or by count for pattern-matched headers such as generated ids).
pub fn compare(expect: &Expect, a: &Observed, b: &Observed) -> Vec<Difference> {
    let mut out = Vec::new();
    if a.status != b.status {
        out.push(Difference {
            what: "status".into(),
            a: a.status.to_string(),
            b: b.status.to_string(),
        });
    }
    if a.upstream_reached != b.upstream_reached {
        out.push(Difference {
            what: "upstream reached".into(),
            a: a.upstream_reached.to_string(),
            b: b.upstream_reached.to_string(),
        });
    }
    for (side, name, how) in named_headers(expect) {
        if side == Side::Upstream && !(a.upstream_reached && b.upstream_reached) {
            continue;
        }
        let (va, vb) = (a.values(side, &name), b.values(side, &name));
        let differs = match how {
            Compare::Values => va != vb,
            Compare::Count => va.len() != vb.len(),
        };
        if differs {
            let kind = if how == Compare::Count {
                " (count)"
            } else {
                ""
            };
            out.push(Difference {
                what: format!("{} header {name}{kind}", side.label()),
                a: show_all(&va),
                b: show_all(&vb),
            });
        }
    }
    out
}

/// Differences between two runs of the same steps, labelled by step name.
pub fn compare_runs(
    steps: &[crate::scenario::Step],
    a: &[Observed],
    b: &[Observed],
) -> Vec<(String, Difference)> {
    let mut out = Vec::new();
    if a.len() != b.len() {
        out.push((
            "(run)".into(),
            Difference {
                what: "steps observed".into(),
                a: a.len().to_string(),
                b: b.len().to_string(),
            },
        ));
    }
    for ((step, oa), ob) in steps.iter().zip(a).zip(b) {
        out.extend(
            compare(&step.expect, oa, ob)
                .into_iter()
                .map(|d| (step.name.clone(), d)),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> HeaderList {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    fn expect(json: &str) -> Expect {
        let e: Expect = serde_json::from_str(json).unwrap();
        e.validate().unwrap();
        e
    }

    fn observed() -> Observed {
        Observed {
            status: 200,
            upstream_reached: true,
            upstream_headers: h(&[
                ("x-correlation-id", "1234"),
                ("x-env", "prod"),
                ("x-f", "a"),
            ]),
            response_headers: h(&[("x-correlation-id", "1234"), ("x-frame-options", "DENY")]),
            body: b"{\"ok\":true}".to_vec(),
        }
    }

    #[test]
    fn check_passes_when_everything_holds() {
        let e = expect(
            r#"{"status": 200, "upstream_reached": true,
                "response_headers": {"X-Frame-Options": "DENY"},
                "upstream_headers_match": {"x-correlation-id": "^[0-9]+$"},
                "upstream_headers_absent": ["x-user-id"],
                "upstream_header_count": {"x-f": 1},
                "same_value": [["upstream:x-correlation-id", "response:x-correlation-id"]],
                "response_body_contains": "ok"}"#,
        );
        assert_eq!(check(&e, &observed()), vec![]);
    }

    #[test]
    fn check_reports_each_failed_expectation() {
        let e = expect(
            r#"{"status": 204, "upstream_reached": false,
                "response_headers": {"x-frame-options": "SAMEORIGIN"},
                "response_headers_match": {"x-request-id": "."},
                "response_headers_absent": ["x-correlation-id"],
                "same_value": [["response:x-frame-options", "response:x-correlation-id"]],
                "response_body_contains": "nope"}"#,
        );
        let what: Vec<String> = check(&e, &observed()).into_iter().map(|m| m.what).collect();
        assert_eq!(
            what,
            vec![
                "status",
                "upstream reached",
                "response header x-frame-options",
                "response header x-request-id",
                "response header x-correlation-id",
                "same_value response:x-frame-options = response:x-correlation-id",
                "response body",
            ]
        );
    }

    #[test]
    fn upstream_expectations_fail_when_upstream_not_reached() {
        let e = expect(r#"{"upstream_headers_absent": ["x-user-id"]}"#);
        let o = Observed {
            upstream_reached: false,
            ..observed()
        };
        assert_eq!(check(&e, &o).len(), 1);
    }

    #[test]
    fn compare_uses_values_for_exact_headers_and_counts_for_patterns() {
        let e = expect(
            r#"{"response_headers": {"x-frame-options": "DENY"},
                "upstream_headers_match": {"x-correlation-id": "."},
                "upstream_headers_absent": ["x-user-id"]}"#,
        );
        let a = observed();
        let mut b = observed();
        b.upstream_headers[0].1 = b"5678".to_vec();
        assert_eq!(compare(&e, &a, &b), vec![]);
        b.upstream_headers
            .push(("x-user-id".into(), b"admin".to_vec()));
        b.response_headers[1].1 = b"SAMEORIGIN".to_vec();
        b.status = 201;
        let what: Vec<String> = compare(&e, &a, &b).into_iter().map(|d| d.what).collect();
        assert_eq!(
            what,
            vec![
                "status",
                "upstream header x-user-id",
                "response header x-frame-options"
            ]
        );
    }
}

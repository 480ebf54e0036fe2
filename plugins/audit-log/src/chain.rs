//! Tamper evidence: a hash chain per VM, and its verifier.
//!
//! Each VM (one per Envoy worker, one per Kong worker) keeps one chain, named by a random nonce
//! drawn at configure time (`chain`). Records carry `chain`, `seq` (0, 1, 2, ...), `prev` (the
//! `hash` of the previous record of the chain; 64 zeros for seq 0) and `hash`: SHA-256, lowercase
//! hex, over the canonical form of the record without `hash` (JSON, object keys sorted by byte
//! order, no whitespace, serde_json's escaping and number format). A deleted, reordered, inserted
//! or altered record breaks the chain at a point the verifier names.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// `prev` of the first record of a chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The prefix of a record line in the gateway log.
pub const LOG_PREFIX: &str = "audit-log: ";

/// The canonical text of a JSON value: keys sorted, no whitespace.
pub fn canonical(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(*k) {
                    write_canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// SHA-256 of the canonical form of `record` without its `hash` field, lowercase hex.
pub fn record_hash(record: &Map<String, Value>) -> String {
    if record.contains_key("hash") {
        let mut copy = record.clone();
        copy.remove("hash");
        return hex_sha256(&canonical(&Value::Object(copy)));
    }
    hex_sha256(&canonical(&Value::Object(record.clone())))
}

fn hex_sha256(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut hex = String::with_capacity(64);
    for b in digest {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// One VM's chain.
#[derive(Debug, Clone)]
pub struct Chain {
    id: String,
    next_seq: u64,
    prev: String,
}

impl Chain {
    /// A new chain named `id` (e.g. hex of random bytes).
    pub fn new(id: String) -> Self {
        Self {
            id,
            next_seq: 0,
            prev: GENESIS.to_owned(),
        }
    }

    /// The chain id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Adds `chain`, `seq`, `prev` and `hash` to `record`, advances the chain, and returns the
    /// record as one JSON line (no newline).
    pub fn seal(&mut self, mut record: Map<String, Value>) -> String {
        record.insert("chain".into(), Value::from(self.id.clone()));
        record.insert("seq".into(), Value::from(self.next_seq));
        record.insert("prev".into(), Value::from(self.prev.clone()));
        let mut value = Value::Object(record);
        let hash = hex_sha256(&canonical(&value));
        if let Value::Object(map) = &mut value {
            map.insert("hash".into(), Value::from(hash.clone()));
        }
        self.prev = hash;
        self.next_seq = self.next_seq.saturating_add(1);
        canonical(&value)
    }
}

/// The verifier's findings on one chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainReport {
    /// Records read for this chain.
    pub records: u64,
    /// The first broken or missing link, if any.
    pub first_error: Option<String>,
    next_seq: u64,
    prev: String,
}

/// The verifier's findings on a whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// By chain id.
    pub chains: BTreeMap<String, ChainReport>,
    /// Lines that look like records but are not (line number, reason).
    pub malformed: Vec<(usize, String)>,
}

impl Report {
    /// True if every chain is intact and no record line was malformed.
    pub fn ok(&self) -> bool {
        self.malformed.is_empty() && self.chains.values().all(|c| c.first_error.is_none())
    }

    /// Total records read.
    pub fn records(&self) -> u64 {
        self.chains.values().map(|c| c.records).sum()
    }
}

/// The JSON text of a record line: a bare `{...}` line (NDJSON), or the text after
/// [`LOG_PREFIX`] in a gateway log line. Other lines are not records.
fn record_text(line: &str) -> Option<&str> {
    let trimmed = line.trim();
    if trimmed.starts_with('{') {
        return Some(trimmed);
    }
    // Envoy's own prefix may end in the same words (`wasm log audit-log audit-log: `): the record
    // starts after the first occurrence followed by `{`.
    line.match_indices(LOG_PREFIX).find_map(|(at, _)| {
        let rest = line.get(at + LOG_PREFIX.len()..)?.trim();
        rest.starts_with('{').then_some(rest)
    })
}

/// Parses the record at the start of `json`. After it, only the context nginx appends to a log
/// line of Kong's error log may follow (` while logging request, client: ...`, or `, client:
/// ...`); anything else makes the line malformed.
fn record_json(json: &str) -> Result<Value, String> {
    let mut stream = serde_json::Deserializer::from_str(json).into_iter::<Value>();
    let value = match stream.next() {
        Some(Ok(value)) => value,
        Some(Err(e)) => return Err(e.to_string()),
        None => return Err("no record".into()),
    };
    let rest = json.get(stream.byte_offset()..).unwrap_or("").trim_end();
    if rest.is_empty() || rest.starts_with(" while ") || rest.starts_with(", client: ") {
        Ok(value)
    } else {
        Err("trailing characters after the record".into())
    }
}

/// Checks every chain in `text` (NDJSON or gateway log lines, chains interleaved in any way).
/// Per chain: the first record must be seq 0 with `prev` = [`GENESIS`], each next record seq+1
/// with `prev` = the previous `hash`, and each `hash` must match the record's content.
pub fn verify(text: &str) -> Report {
    let mut report = Report::default();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let Some(json) = record_text(line) else {
            continue;
        };
        let record = match record_json(json) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                report.malformed.push((number, "not a json object".into()));
                continue;
            }
            Err(e) => {
                report
                    .malformed
                    .push((number, format!("invalid json: {e}")));
                continue;
            }
        };
        let fields = (
            record.get("chain").and_then(Value::as_str),
            record.get("seq").and_then(Value::as_u64),
            record.get("prev").and_then(Value::as_str),
            record.get("hash").and_then(Value::as_str),
        );
        let (Some(chain), Some(seq), Some(prev), Some(hash)) = fields else {
            report
                .malformed
                .push((number, "missing chain, seq, prev or hash".into()));
            continue;
        };
        let state = report
            .chains
            .entry(chain.to_owned())
            .or_insert_with(|| ChainReport {
                prev: GENESIS.to_owned(),
                ..ChainReport::default()
            });
        state.records += 1;
        if state.first_error.is_some() {
            continue;
        }
        let problem = if record_hash(&record) != hash {
            Some(format!(
                "line {number}: seq {seq}: altered (hash does not match content)"
            ))
        } else if seq > state.next_seq {
            Some(format!(
                "line {number}: seq {seq}: missing record(s) seq {}..={}",
                state.next_seq,
                seq - 1
            ))
        } else if seq < state.next_seq {
            Some(format!(
                "line {number}: seq {seq}: out of order or duplicate (expected seq {})",
                state.next_seq
            ))
        } else if prev != state.prev {
            Some(format!(
                "line {number}: seq {seq}: prev does not match the hash of seq {} (record replaced)",
                seq.wrapping_sub(1)
            ))
        } else {
            None
        };
        match problem {
            Some(p) => state.first_error = Some(p),
            None => {
                state.next_seq = seq + 1;
                state.prev = hash.to_owned();
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn records(n: u64, chain: &str) -> Vec<String> {
        let mut c = Chain::new(chain.into());
        (0..n)
            .map(|i| {
                let Value::Object(m) = json!({"path": format!("/r/{i}"), "status": 200}) else {
                    unreachable!()
                };
                c.seal(m)
            })
            .collect()
    }

    #[test]
    fn canonical_sorts_keys_at_every_level() {
        let v = json!({"b": 1, "a": {"d": [1, {"z": 1, "y": "é\n"}], "c": null}});
        assert_eq!(
            canonical(&v),
            r#"{"a":{"c":null,"d":[1,{"y":"é\n","z":1}]},"b":1}"#
        );
    }

    #[test]
    fn an_intact_file_verifies_with_interleaved_chains_and_log_prefixes() {
        let a = records(5, "aaaa");
        let b = records(3, "bbbb");
        let mut lines = Vec::new();
        for (i, rec) in a.iter().enumerate() {
            lines.push(format!(
                "[info][wasm] wasm log audit_log: {LOG_PREFIX}{rec}"
            ));
            if let Some(r) = b.get(i) {
                lines.push(r.clone());
            }
            lines.push("some other log line".into());
        }
        let report = verify(&lines.join("\n"));
        assert!(report.ok(), "{report:?}");
        assert_eq!(report.records(), 8);
        assert_eq!(report.chains.len(), 2);
        // The line is canonical: re-hashing what was written gives the stored hash.
        let first: Map<String, Value> = serde_json::from_str(&a[0]).unwrap();
        assert_eq!(first.get("prev").unwrap(), GENESIS);
        assert_eq!(
            first.get("hash").unwrap().as_str().unwrap(),
            record_hash(&first)
        );
    }

    #[test]
    fn kong_error_log_lines_with_nginx_context_verify() {
        let a = records(3, "kkkk");
        let lines: Vec<String> = a
            .iter()
            .map(|rec| {
                format!(
                    "2026/12/04 01:02:03 [info] 12#0: *7 [proxy-wasm][\"audit_log\" #1] {LOG_PREFIX}{rec} \
                     while logging request, client: 127.0.0.1, server: localhost, request: \"GET / HTTP/1.1\", \
                     host: \"127.0.0.1:8000\""
                )
            })
            .collect();
        let report = verify(&lines.join("\n"));
        assert!(report.ok(), "{report:?}");
        assert_eq!(report.records(), 3);
        let tampered = lines[1].replace("while logging", "and more while logging");
        let report = verify(&[lines[0].clone(), tampered, lines[2].clone()].join("\n"));
        assert!(!report.ok(), "other trailing text is not a record");
    }

    #[test]
    fn a_deleted_record_is_detected() {
        let mut a = records(5, "c1");
        a.remove(2);
        let r = verify(&a.join("\n"));
        assert!(!r.ok());
        let e = r.chains["c1"].first_error.clone().unwrap();
        assert!(e.contains("missing record(s) seq 2..=2"), "{e}");
    }

    #[test]
    fn a_deleted_first_record_is_detected() {
        let mut a = records(3, "c1");
        a.remove(0);
        let e = verify(&a.join("\n")).chains["c1"]
            .first_error
            .clone()
            .unwrap();
        assert!(e.contains("missing record(s) seq 0..=0"), "{e}");
    }

    #[test]
    fn reordered_records_are_detected() {
        let mut a = records(5, "c1");
        a.swap(1, 3);
        let e = verify(&a.join("\n")).chains["c1"]
            .first_error
            .clone()
            .unwrap();
        assert!(e.starts_with("line 2: seq 3: missing"), "{e}");
        let mut a = records(5, "c1");
        a.swap(1, 2);
        let e = verify(&a.join("\n")).chains["c1"]
            .first_error
            .clone()
            .unwrap();
        assert!(e.contains("seq 2: missing"), "{e}");
    }

    #[test]
    fn an_altered_record_is_detected() {
        let mut a = records(4, "c1");
        a[2] = a[2].replace("\"status\":200", "\"status\":201");
        let e = verify(&a.join("\n")).chains["c1"]
            .first_error
            .clone()
            .unwrap();
        assert_eq!(e, "line 3: seq 2: altered (hash does not match content)");
    }

    #[test]
    fn a_recomputed_forgery_breaks_the_next_link() {
        let mut a = records(4, "c1");
        let mut m: Map<String, Value> = serde_json::from_str(&a[1]).unwrap();
        m.insert("status".into(), json!(500));
        let h = record_hash(&m);
        m.insert("hash".into(), json!(h));
        a[1] = canonical(&Value::Object(m));
        let e = verify(&a.join("\n")).chains["c1"]
            .first_error
            .clone()
            .unwrap();
        assert!(e.starts_with("line 3: seq 2: prev does not match"), "{e}");
    }

    #[test]
    fn a_duplicated_record_and_garbage_are_detected() {
        let mut a = records(3, "c1");
        a.insert(2, a[1].clone());
        assert!(verify(&a.join("\n")).chains["c1"]
            .first_error
            .clone()
            .unwrap()
            .contains("out of order or duplicate"));
        let r = verify(&format!("{LOG_PREFIX}{{\"chain\": 1"));
        assert_eq!(r.malformed.len(), 1);
        assert!(!r.ok());
    }
}

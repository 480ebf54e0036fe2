//! The batch exporter: a bounded buffer, batches by count/bytes/delay, one call in flight,
//! retries with exponential backoff. A pure state machine: the caller dispatches the HTTP call
//! and reports back, so it is unit-tested natively and driven the same way by the Envoy
//! singleton (`role: exporter`) and by each Kong worker (`role: local`).
//!
//! Never a silent loss: a record that does not fit is handed back to the caller, which counts it
//! (`audit_log.records_dropped`) and logs it whole (`audit-log-dropped: {...}`). Records of a
//! failed batch go back to the front of the buffer, in order, and are retried until delivered;
//! they keep counting against the bound, so a long outage drops new records, never old ones.

use crate::config::{ExportConfig, ExportFormat};
use serde_json::{json, Value};
use std::collections::VecDeque;

/// A batch to send: NDJSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Records, one per line, each ending in `\n`.
    pub body: Vec<u8>,
    /// How many records.
    pub records: usize,
}

/// What an export attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The collector took `n` records (2xx).
    Exported(usize),
    /// The attempt failed (status, connection failure or timeout); `n` records will be retried
    /// after `delay_ms`.
    Retry {
        /// Records put back.
        records: usize,
        /// Backoff before the next attempt.
        delay_ms: u64,
    },
    /// Not the token of the call in flight: ignored.
    Unknown,
}

#[derive(Debug)]
struct InFlight {
    token: u32,
    records: Vec<(String, u64)>,
    /// When the batch was taken (ns): a call whose answer never comes (its stream ended first,
    /// on a host where a stream sends it) is given up after the timeout.
    since: u64,
}

/// The exporter state.
#[derive(Debug)]
pub struct Exporter {
    cfg: ExportConfig,
    /// Record line and the time it was buffered (ns).
    buffer: VecDeque<(String, u64)>,
    bytes: usize,
    in_flight: Option<InFlight>,
    in_flight_bytes: usize,
    failures: u32,
    retry_at: u64,
}

impl Exporter {
    /// An empty exporter.
    pub fn new(cfg: ExportConfig) -> Self {
        Self {
            cfg,
            buffer: VecDeque::new(),
            bytes: 0,
            in_flight: None,
            in_flight_bytes: 0,
            failures: 0,
            retry_at: 0,
        }
    }

    /// Records held: buffered plus in flight.
    pub fn depth(&self) -> usize {
        self.buffer.len() + self.in_flight.as_ref().map_or(0, |f| f.records.len())
    }

    /// True if a call is in flight.
    pub fn busy(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Buffers a record line, or hands it back if the buffer is full.
    pub fn offer(&mut self, record: String, now_nanos: u64) -> Result<(), String> {
        let size = record.len() + 1;
        let held_bytes = self.bytes + self.in_flight_bytes;
        if self.depth() >= self.cfg.buffer_max_records
            || held_bytes.saturating_add(size) > self.cfg.buffer_max_bytes
        {
            return Err(record);
        }
        self.bytes += size;
        self.buffer.push_back((record, now_nanos));
        Ok(())
    }

    /// The next batch if one is due: nothing in flight, past any backoff, and the buffer holds a
    /// full batch (records or bytes) or its oldest record waited `batch_max_delay_ms`.
    /// The caller must then call [`Exporter::dispatched`] or [`Exporter::dispatch_failed`].
    pub fn due_batch(&mut self, now_nanos: u64) -> Option<Batch> {
        if self.in_flight.is_some() || self.buffer.is_empty() || now_nanos < self.retry_at {
            return None;
        }
        let oldest = self.buffer.front().map_or(now_nanos, |(_, at)| *at);
        let waited = now_nanos.saturating_sub(oldest)
            >= self.cfg.batch_max_delay_ms.saturating_mul(1_000_000);
        let full = self.buffer.len() >= self.cfg.batch_max_records
            || self.bytes >= self.cfg.batch_max_bytes;
        if !(waited || full || self.failures > 0) {
            return None;
        }
        let mut body = Vec::new();
        let mut taken = Vec::new();
        while let Some((line, _)) = self.buffer.front() {
            let size = line.len() + 1;
            if !taken.is_empty()
                && (taken.len() >= self.cfg.batch_max_records
                    || body.len() + size > self.cfg.batch_max_bytes)
            {
                break;
            }
            let Some(entry) = self.buffer.pop_front() else {
                break;
            };
            body.extend_from_slice(entry.0.as_bytes());
            body.push(b'\n');
            self.bytes = self.bytes.saturating_sub(size);
            self.in_flight_bytes += size;
            taken.push(entry);
        }
        let records = taken.len();
        if self.cfg.format == ExportFormat::OtlpJson {
            body = otlp_json(taken.iter().map(|(line, _)| line.as_str()));
        }
        self.in_flight = Some(InFlight {
            token: 0,
            records: taken,
            since: now_nanos,
        });
        Some(Batch { body, records })
    }

    /// The host accepted the call: its answer will carry `token`.
    pub fn dispatched(&mut self, token: u32) {
        if let Some(f) = self.in_flight.as_mut() {
            f.token = token;
        }
    }

    /// Gives up on a call unanswered for a second past its timeout: its batch goes back, retried
    /// after backoff, as for a failed call. Hosts that always answer (Envoy) never get here; on
    /// Kong a stream sends the call, and the answer is lost when that stream ends first.
    pub fn expire(&mut self, now_nanos: u64) -> Option<Outcome> {
        let since = self.in_flight.as_ref()?.since;
        let limit = self
            .cfg
            .timeout_ms
            .saturating_add(1_000)
            .saturating_mul(1_000_000);
        (now_nanos.saturating_sub(since) > limit).then(|| self.fail(now_nanos))
    }

    /// The host refused the call: the batch goes back, retried after backoff.
    pub fn dispatch_failed(&mut self, now_nanos: u64) -> Outcome {
        self.fail(now_nanos)
    }

    /// The answer to call `token`: `status` 0 means failed or timed out.
    pub fn on_response(&mut self, token: u32, status: u32, now_nanos: u64) -> Outcome {
        match &self.in_flight {
            Some(f) if f.token == token => {}
            _ => return Outcome::Unknown,
        }
        if (200..300).contains(&status) {
            let n = self.in_flight.take().map_or(0, |f| f.records.len());
            self.in_flight_bytes = 0;
            self.failures = 0;
            self.retry_at = 0;
            Outcome::Exported(n)
        } else {
            self.fail(now_nanos)
        }
    }

    fn fail(&mut self, now_nanos: u64) -> Outcome {
        let records = self.in_flight.take().map_or_else(Vec::new, |f| f.records);
        let n = records.len();
        for entry in records.into_iter().rev() {
            self.bytes += entry.0.len() + 1;
            self.buffer.push_front(entry);
        }
        self.in_flight_bytes = 0;
        let shift = self.failures.min(20);
        self.failures = self.failures.saturating_add(1);
        let delay_ms = self
            .cfg
            .retry_initial_ms
            .saturating_mul(1u64 << shift)
            .min(self.cfg.retry_max_ms);
        self.retry_at = now_nanos.saturating_add(delay_ms.saturating_mul(1_000_000));
        Outcome::Retry {
            records: n,
            delay_ms,
        }
    }
}

/// An OTLP/HTTP JSON `ExportLogsServiceRequest` holding one log record per audit record: body the
/// record line as written (so its hash still verifies), attributes `audit.chain`, `audit.seq`,
/// `audit.hash`, and `timeUnixNano` left 0 (the record's own `time` is in the body).
pub fn otlp_json<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<u8> {
    let log_records: Vec<Value> = lines
        .map(|line| {
            let rec: Value = serde_json::from_str(line).unwrap_or(Value::Null);
            let text = |k: &str| {
                rec.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let seq = rec.get("seq").and_then(Value::as_u64).unwrap_or_default();
            json!({
                "timeUnixNano": "0",
                "severityNumber": 9,
                "severityText": "INFO",
                "body": {"stringValue": line},
                "attributes": [
                    {"key": "audit.chain", "value": {"stringValue": text("chain")}},
                    {"key": "audit.seq", "value": {"intValue": seq.to_string()}},
                    {"key": "audit.hash", "value": {"stringValue": text("hash")}}
                ]
            })
        })
        .collect();
    json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "gateway"}}]},
        "scopeLogs": [{"scope": {"name": "audit-log"}, "logRecords": log_records}]
    }]})
    .to_string()
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn cfg(batch: usize, buffer: usize) -> ExportConfig {
        ExportConfig {
            batch_max_records: batch,
            buffer_max_records: buffer,
            batch_max_delay_ms: 100,
            retry_initial_ms: 50,
            retry_max_ms: 150,
            ..ExportConfig::default()
        }
    }

    #[test]
    fn batches_by_count_then_by_delay() {
        let mut e = Exporter::new(cfg(3, 10));
        for i in 0..4 {
            e.offer(format!("r{i}"), 0).unwrap();
        }
        let b = e.due_batch(0).unwrap();
        assert_eq!(b.body, b"r0\nr1\nr2\n");
        e.dispatched(7);
        assert_eq!(e.due_batch(0), None, "one call in flight");
        assert_eq!(e.on_response(8, 200, 0), Outcome::Unknown);
        assert_eq!(e.on_response(7, 200, 0), Outcome::Exported(3));
        assert_eq!(e.due_batch(50 * MS), None, "one record, not old enough");
        assert_eq!(e.due_batch(100 * MS).unwrap().body, b"r3\n");
    }

    #[test]
    fn otlp_json_body_carries_each_record_line() {
        let mut e = Exporter::new(ExportConfig {
            format: ExportFormat::OtlpJson,
            ..cfg(2, 10)
        });
        e.offer(r#"{"chain":"c","hash":"h0","seq":0}"#.into(), 0)
            .unwrap();
        e.offer(r#"{"chain":"c","hash":"h1","seq":1}"#.into(), 0)
            .unwrap();
        let b = e.due_batch(0).unwrap();
        let v: Value = serde_json::from_slice(&b.body).unwrap();
        let recs = &v["resourceLogs"][0]["scopeLogs"][0]["logRecords"];
        assert_eq!(recs.as_array().unwrap().len(), 2);
        assert_eq!(
            recs[1]["body"]["stringValue"],
            r#"{"chain":"c","hash":"h1","seq":1}"#
        );
        assert_eq!(recs[1]["attributes"][1]["value"]["intValue"], "1");
        assert_eq!(recs[0]["attributes"][2]["value"]["stringValue"], "h0");
    }

    #[test]
    fn batches_by_bytes() {
        let mut e = Exporter::new(ExportConfig {
            batch_max_bytes: 8,
            ..cfg(100, 100)
        });
        for r in ["aaa", "bbb", "ccc"] {
            e.offer(r.into(), 0).unwrap();
        }
        assert_eq!(e.due_batch(0).unwrap().body, b"aaa\nbbb\n");
    }

    #[test]
    fn failures_retry_in_order_with_capped_backoff() {
        let mut e = Exporter::new(cfg(2, 10));
        for i in 0..3 {
            e.offer(format!("r{i}"), 0).unwrap();
        }
        e.due_batch(0).unwrap();
        e.dispatched(1);
        assert_eq!(
            e.on_response(1, 0, 0),
            Outcome::Retry {
                records: 2,
                delay_ms: 50
            }
        );
        assert_eq!(e.due_batch(49 * MS), None, "backoff");
        assert_eq!(e.due_batch(50 * MS).unwrap().body, b"r0\nr1\n");
        e.dispatched(2);
        assert!(matches!(
            e.on_response(2, 503, 50 * MS),
            Outcome::Retry { delay_ms: 100, .. }
        ));
        e.due_batch(150 * MS).unwrap();
        assert!(matches!(
            e.dispatch_failed(150 * MS),
            Outcome::Retry { delay_ms: 150, .. }
        ));
        e.due_batch(300 * MS).unwrap();
        e.dispatched(3);
        assert!(matches!(
            e.on_response(3, 500, 300 * MS),
            Outcome::Retry { delay_ms: 150, .. }
        ));
        assert_eq!(e.depth(), 3);
        let b = e.due_batch(450 * MS).unwrap();
        assert_eq!(b.body, b"r0\nr1\n");
        e.dispatched(4);
        assert_eq!(e.on_response(4, 204, 450 * MS), Outcome::Exported(2));
        assert_eq!(
            e.due_batch(450 * MS).unwrap().body,
            b"r2\n",
            "backoff reset; r2 waited long enough"
        );
    }

    #[test]
    fn a_full_buffer_hands_the_new_record_back() {
        let mut e = Exporter::new(cfg(2, 3));
        for i in 0..3 {
            e.offer(format!("r{i}"), 0).unwrap();
        }
        e.due_batch(0).unwrap();
        assert_eq!(
            e.offer("r3".into(), 0),
            Err("r3".into()),
            "in-flight records count"
        );
        assert_eq!(e.depth(), 3);
        let mut small = Exporter::new(ExportConfig {
            buffer_max_bytes: 6,
            ..cfg(1, 10)
        });
        small.offer("aa".into(), 0).unwrap();
        assert_eq!(small.offer("bbbb".into(), 0), Err("bbbb".into()));
    }
}

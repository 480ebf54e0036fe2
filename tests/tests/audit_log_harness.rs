//! audit-log in the wasmtime harness, both host profiles: record content and redaction, filter
//! state, the hash chains of two workers checked by the verifier (a deleted, reordered or altered
//! record is detected), workers handing records to a shared queue, the exporter (`role:
//! exporter`, the Envoy singleton's config) batching them with callouts answered, failed and
//! timed out, overflow counted and logged, Kong's `role: local` exporting on each worker's ticker,
//! and config refusals naming the field.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use audit_log::chain::verify;
use host_harness::{CalloutResponse, Harness, LogLevel, Profile};
use serde_json::{json, Value};

const PROFILES: [Profile; 2] = [Profile::Envoy, Profile::Kong];
const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";

fn harness(profile: Profile, workers: usize, config: &Value) -> Harness {
    let h = Harness::builder()
        .profile(profile)
        .plugin_config(config.to_string())
        .workers(workers)
        .property("xds.cluster_name", "orders")
        .property("upstream.address", "10.0.0.7:8080")
        .build_from_file(suite_tests::paths::plugin_wasm("audit-log").unwrap())
        .unwrap();
    assert!(h.configure().unwrap(), "{:?}", h.logs_at(LogLevel::Error));
    h
}

/// One request through `worker`, answered `status`; returns the filter state it left.
fn request(h: &Harness, worker: usize, path: &str, status: &str) -> Option<Vec<u8>> {
    let mut s = h.worker(worker).stream().unwrap();
    s.set_property("source.address", "192.0.2.10:53000")
        .unwrap();
    s.set_property("request.total_size", 321u64.to_le_bytes())
        .unwrap();
    s.set_property("response.total_size", 654u64.to_le_bytes())
        .unwrap();
    s.send_request_headers(
        &[
            (":method", "GET"),
            (":authority", "api.example.com"),
            // Kong keeps the client's Host as a header line (its `:authority` is nginx's
            // server_name:port); Envoy has only `:authority`, the same value here.
            ("host", "api.example.com"),
            (":path", path),
            ("x-request-id", "rid-1"),
            ("x-correlation-id", "corr-1"),
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            ("user-agent", "curl/8.5"),
            ("x-forwarded-for", "198.51.100.1, 203.0.113.9"),
            ("authorization", &format!("Bearer {JWT}")),
            ("cookie", "session=s3cret"),
            ("x-tenant", "acme"),
            ("x-user-id", "alice"),
            ("x-user-roles", "admin,ops"),
            ("x-auth-method", "jwt"),
            ("x-auth-status", "verified"),
        ],
        true,
    )
    .unwrap();
    h.advance_clock(Duration::from_millis(3)).unwrap();
    s.send_response_headers(
        &[
            (":status", status),
            ("set-cookie", "id=1"),
            ("x-ratelimit-remaining", "9"),
        ],
        true,
    )
    .unwrap();
    s.log().unwrap();
    let state = s.property("audit_record");
    s.done().unwrap();
    s.delete().unwrap();
    state
}

/// The records written to the gateway log, in order.
fn logged(h: &Harness) -> Vec<String> {
    h.logs_at(LogLevel::Info)
        .into_iter()
        .filter_map(|m| m.strip_prefix("audit-log: ").map(str::to_owned))
        .filter(|m| m.starts_with('{'))
        .collect()
}

#[test]
fn record_content_and_redaction_on_both_hosts() {
    for profile in PROFILES {
        let h = harness(
            profile,
            1,
            &json!({"trusted_hops": 1, "request_headers": ["authorization", "cookie", "x-tenant"],
                    "response_headers": ["set-cookie"]}),
        );
        let state = request(
            &h,
            0,
            &format!("/orders?id=7&access_token={JWT}&x=1"),
            "201",
        );
        let lines = logged(&h);
        assert_eq!(lines.len(), 1, "{profile:?}");
        let rec: Value = serde_json::from_str(&lines[0]).unwrap();
        let want = json!({
            "method": "GET", "authority": "api.example.com",
            "path": "/orders?id=7&access_token=[REDACTED]&x=1",
            "status": 201, "request_id": "rid-1", "correlation_id": "corr-1",
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "user_agent": "curl/8.5", "client_ip": "203.0.113.9",
            "duration_ms": 3.0, "bytes_in": 321, "bytes_out": 654,
            "identity": {"subject": "alice", "roles": ["admin", "ops"], "credential": "jwt"},
            "decisions": {"auth": "verified", "ratelimit": "allowed", "ratelimit_remaining": "9"},
            "request_headers": {"authorization": "[REDACTED]", "cookie": "[REDACTED]", "x-tenant": "acme"},
            "response_headers": {"set-cookie": "[REDACTED]"},
            "seq": 0,
            "prev": audit_log::chain::GENESIS,
        });
        for (k, v) in want.as_object().unwrap() {
            assert_eq!(rec.get(k), Some(v), "{profile:?} field {k}: {rec}");
        }
        let time = rec["time"].as_str().unwrap();
        assert!(
            time.starts_with("2023-11-14T22:13:20.003") && time.ends_with('Z'),
            "{time}"
        );
        match profile {
            // Envoy: cluster and upstream address are properties the host offers.
            Profile::Envoy => assert_eq!(
                rec["upstream"],
                json!({"cluster": "orders", "address": "10.0.0.7:8080"})
            ),
            // Kong hides xds.*: the field is left out, nothing fails.
            Profile::Kong | Profile::Kong38 => {
                assert_eq!(rec["upstream"], json!({"address": "10.0.0.7:8080"}))
            }
        }
        let text = lines[0].as_str();
        assert!(!text.contains(JWT) && !text.contains("s3cret"), "{text}");
        // The same line is the filter state (Envoy's access log reads it); Kong has none.
        let want = (profile == Profile::Envoy).then_some(lines[0].as_bytes());
        assert_eq!(state.as_deref(), want, "{profile:?}");
        assert_eq!(h.metric("audit_log.records_written").unwrap().value, 1);
        assert!(verify(&lines.join("\n")).ok());
    }
}

#[test]
fn selected_fields_only() {
    let h = harness(Profile::Envoy, 1, &json!({"fields": ["method", "status"]}));
    request(&h, 0, "/", "503");
    let rec: Value = serde_json::from_str(&logged(&h)[0]).unwrap();
    let mut keys: Vec<&str> = rec
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(keys, ["chain", "hash", "method", "prev", "seq", "status"]);
}

#[test]
fn two_workers_two_chains_verified_and_tampering_detected() {
    for profile in PROFILES {
        let h = harness(profile, 2, &json!({}));
        for i in 0..10 {
            request(&h, i % 2, &format!("/r/{i}"), "200");
        }
        let lines = logged(&h);
        assert_eq!(lines.len(), 10);
        let report = verify(&lines.join("\n"));
        assert!(report.ok(), "{report:?}");
        assert_eq!(report.chains.len(), 2, "one chain per worker VM");
        assert!(report.chains.values().all(|c| c.records == 5));

        // Deleted: worker 0's third record (line index 4).
        let mut deleted = lines.clone();
        deleted.remove(4);
        assert!(!verify(&deleted.join("\n")).ok());
        // Reordered within a chain.
        let mut reordered = lines.clone();
        reordered.swap(2, 4);
        assert!(!verify(&reordered.join("\n")).ok());
        // Altered.
        let mut altered = lines.clone();
        altered[6] = altered[6].replace("/r/6", "/r/X");
        let r = verify(&altered.join("\n"));
        let broken: Vec<&String> = r
            .chains
            .values()
            .filter_map(|c| c.first_error.as_ref())
            .collect();
        assert_eq!(broken.len(), 1);
        assert!(broken[0].contains("altered"), "{broken:?}");
        // Interleaving of chains does not matter.
        let mut interleaved: Vec<String> = lines.iter().step_by(2).cloned().collect();
        interleaved.extend(lines.iter().skip(1).step_by(2).cloned());
        assert!(verify(&interleaved.join("\n")).ok());
    }
}

fn export_config(role: &str, extra: Value) -> Value {
    let mut export = json!({"enabled": true, "queue": "audit_log", "upstream": "collector",
        "batch_max_records": 3, "batch_max_delay_ms": 500, "buffer_max_records": 6,
        "retry_initial_ms": 100, "retry_max_ms": 400, "timeout_ms": 1000, "tick_ms": 50});
    if let (Some(e), Some(x)) = (export.as_object_mut(), extra.as_object()) {
        for (k, v) in x {
            e.insert(k.clone(), v.clone());
        }
    }
    json!({"role": role, "export": export})
}

fn exporter(profile: Profile, extra: Value) -> Harness {
    let h = Harness::builder()
        .profile(profile)
        .vm_id("audit")
        .clusters(["collector"])
        .plugin_config(export_config("exporter", extra).to_string())
        .build_from_file(suite_tests::paths::plugin_wasm("audit-log").unwrap())
        .unwrap();
    assert!(h.configure().unwrap(), "{:?}", h.logs_at(LogLevel::Error));
    h
}

fn body_lines(body: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(body)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn workers_hand_records_to_the_shared_queue() {
    // The queue is registered from the test side (as the exporter VM would) under vm_id "".
    let h = Harness::builder()
        .plugin_config(json!({"export": {"enabled": true}}).to_string())
        .workers(2)
        .build_from_file(suite_tests::paths::plugin_wasm("audit-log").unwrap())
        .unwrap();
    assert!(h.configure().unwrap());
    let q = h.register_queue("audit_log");
    for i in 0..4 {
        request(&h, i % 2, &format!("/q/{i}"), "200");
    }
    let items: Vec<String> = h
        .queue_items(q)
        .into_iter()
        .map(|i| String::from_utf8(i).unwrap())
        .collect();
    assert_eq!(items, logged(&h), "the queued records are the logged ones");
    assert!(verify(&items.join("\n")).ok());
}

#[test]
fn a_worker_without_its_queue_counts_and_logs_what_it_drops() {
    let h = harness(Profile::Envoy, 1, &json!({"export": {"enabled": true}}));
    request(&h, 0, "/lost", "200");
    assert_eq!(h.metric("audit_log.records_dropped").unwrap().value, 1);
    let warn = h.logs_at(LogLevel::Warn);
    assert!(
        warn.iter().any(
            |w| w.starts_with("audit-log-dropped: reason=queue_not_found {") && w.contains("/lost")
        ),
        "{warn:?}"
    );
}

/// Sealed records from a worker harness, as the exporter would dequeue them.
fn records(n: usize) -> Vec<String> {
    let h = harness(Profile::Envoy, 1, &json!({"fields": ["path", "status"]}));
    for i in 0..n {
        request(&h, 0, &format!("/e/{i}"), "200");
    }
    logged(&h)
}

#[test]
fn exporter_batches_by_count_and_by_delay_and_acknowledges() {
    let h = exporter(Profile::Envoy, json!({}));
    let q = h
        .resolve_queue("audit", "audit_log")
        .expect("the exporter registered its queue");
    let recs = records(4);
    for r in &recs {
        h.enqueue(q, r).unwrap();
    }
    // 3 records make a batch at once (on_queue_ready).
    let calls = h.callouts();
    assert_eq!(calls.len(), 1);
    let c = &calls[0];
    assert_eq!(c.upstream, "collector");
    let header = |n: &str| {
        c.headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    assert_eq!(header(":method").as_deref(), Some("POST"));
    assert_eq!(header(":path").as_deref(), Some("/v1/audit"));
    assert_eq!(
        header("content-type").as_deref(),
        Some("application/x-ndjson")
    );
    assert_eq!(body_lines(&c.body), recs[..3]);
    h.respond_callout(c.id, CalloutResponse::status(200))
        .unwrap();
    assert_eq!(h.metric("audit_log.records_exported").unwrap().value, 3);
    // The 4th waits for the delay, then goes alone (ticker).
    h.advance_clock(Duration::from_millis(400)).unwrap();
    assert!(h.callouts().is_empty());
    h.advance_clock(Duration::from_millis(200)).unwrap();
    let calls = h.callouts();
    assert_eq!(calls.len(), 1);
    assert_eq!(body_lines(&calls[0].body), recs[3..]);
    h.respond_callout(calls[0].id, CalloutResponse::status(204))
        .unwrap();
    assert_eq!(h.metric("audit_log.records_exported").unwrap().value, 4);
    assert_eq!(h.metric("audit_log.buffer_depth").unwrap().value, 0);
}

#[test]
fn exporter_retries_failed_and_timed_out_calls_with_backoff_in_order() {
    let h = exporter(Profile::Envoy, json!({}));
    let q = h.resolve_queue("audit", "audit_log").unwrap();
    let recs = records(3);
    for r in &recs {
        h.enqueue(q, r).unwrap();
    }
    // Failed (connection refused): kept, retried after 100 ms.
    let c = h.callouts().remove(0);
    h.fail_callout(c.id).unwrap();
    assert_eq!(h.metric("audit_log.export_failures").unwrap().value, 1);
    assert_eq!(h.metric("audit_log.records_retried").unwrap().value, 3);
    assert_eq!(h.metric("audit_log.buffer_depth").unwrap().value, 3);
    assert!(h.callouts().is_empty());
    h.advance_clock(Duration::from_millis(100)).unwrap();
    // Answered 503: retried after 200 ms.
    let c = h.callouts().remove(0);
    assert_eq!(body_lines(&c.body), recs);
    h.respond_callout(c.id, CalloutResponse::status(503))
        .unwrap();
    h.advance_clock(Duration::from_millis(150)).unwrap();
    assert!(h.callouts().is_empty(), "backoff doubled");
    h.advance_clock(Duration::from_millis(50)).unwrap();
    // Timed out (1 s): retried after 400 ms.
    let c = h.callouts().remove(0);
    h.advance_clock(Duration::from_millis(1000)).unwrap();
    assert!(h.callouts().iter().all(|x| x.id != c.id), "timed out");
    assert_eq!(h.metric("audit_log.export_failures").unwrap().value, 3);
    h.advance_clock(Duration::from_millis(400)).unwrap();
    let c = h.callouts().remove(0);
    assert_eq!(body_lines(&c.body), recs, "same records, same order");
    h.respond_callout(c.id, CalloutResponse::status(200))
        .unwrap();
    assert_eq!(h.metric("audit_log.records_exported").unwrap().value, 3);
    assert_eq!(
        h.metric("audit_log.records_dropped").map_or(0, |m| m.value),
        0
    );
    let warns = h.logs_at(LogLevel::Warn);
    assert!(warns.iter().any(|w| w.contains("status 503")), "{warns:?}");
    assert!(warns.iter().any(|w| w.contains("no response")), "{warns:?}");
}

#[test]
fn exporter_overflow_counts_and_logs_exactly_what_it_dropped() {
    let h = exporter(Profile::Envoy, json!({}));
    let q = h.resolve_queue("audit", "audit_log").unwrap();
    let recs = records(9);
    for r in &recs {
        h.enqueue(q, r).unwrap();
    }
    // Buffer of 6 (3 in flight + 3 waiting): records 6, 7, 8 are dropped and logged whole.
    assert_eq!(h.metric("audit_log.records_dropped").unwrap().value, 3);
    let dropped: Vec<String> = h
        .logs_at(LogLevel::Warn)
        .into_iter()
        .filter_map(|w| {
            w.strip_prefix("audit-log-dropped: reason=buffer_full ")
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(dropped, recs[6..]);
    let mut delivered = Vec::new();
    for _ in 0..2 {
        h.advance_clock(Duration::from_millis(600)).unwrap();
        let c = h.callouts().remove(0);
        delivered.extend(body_lines(&c.body));
        h.respond_callout(c.id, CalloutResponse::status(200))
            .unwrap();
    }
    assert_eq!(delivered, recs[..6]);
    // The verifier sees the gap where the dropped records were... nowhere: they were the tail.
    // Delivered plus dropped is everything, in order.
    delivered.extend(dropped);
    assert!(verify(&delivered.join("\n")).ok());
}

#[test]
fn refused_configs_name_the_field() {
    for (config, field) in [
        (json!({"fields": ["time", "nope"]}), "fields[1]"),
        (
            json!({"redact_headers": ["bad header"]}),
            "redact_headers[0]",
        ),
        (
            json!({"role": "exporter", "export": {"tick_ms": 0}}),
            "export.tick_ms",
        ),
        (json!({"sinks": {"typo": true}}), "sinks.typo"),
    ] {
        let h = Harness::builder()
            .plugin_config(config.to_string())
            .build_from_file(suite_tests::paths::plugin_wasm("audit-log").unwrap())
            .unwrap();
        assert!(!h.configure().unwrap(), "{config}");
        let errors = h.logs_at(LogLevel::Error);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with(&format!("audit-log: invalid configuration: {field}")),
            "{errors:?}"
        );
    }
}

#[test]
fn exporter_otlp_json_format() {
    let h = exporter(
        Profile::Envoy,
        json!({"format": "otlp_json", "path": "/v1/logs"}),
    );
    let q = h.resolve_queue("audit", "audit_log").unwrap();
    let recs = records(3);
    for r in &recs {
        h.enqueue(q, r).unwrap();
    }
    let c = h.callouts().remove(0);
    let header = |n: &str| {
        c.headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    assert_eq!(header("content-type").as_deref(), Some("application/json"));
    assert_eq!(header(":path").as_deref(), Some("/v1/logs"));
    let v: Value = serde_json::from_slice(&c.body).unwrap();
    let logs = v["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
        .as_array()
        .unwrap();
    let bodies: Vec<String> = logs
        .iter()
        .map(|l| l["body"]["stringValue"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        bodies, recs,
        "each record line, unchanged: its hash still verifies"
    );
    assert!(verify(&bodies.join("\n")).ok());
    h.respond_callout(c.id, CalloutResponse::status(200))
        .unwrap();
    assert_eq!(h.metric("audit_log.records_exported").unwrap().value, 3);
}

#[test]
fn bodies_captured_as_redacted_json_up_to_the_cap() {
    for profile in PROFILES {
        let h = harness(
            profile,
            1,
            &json!({"fields": ["path", "request_body", "response_body"],
                    "bodies": {"request": true, "response": true, "max_bytes": 48}}),
        );
        let mut s = h.stream().unwrap();
        s.send_request_headers(&[(":method", "POST"), (":path", "/login")], false)
            .unwrap();
        s.send_request_body(r#"{"user": "alice", "#, false).unwrap();
        s.send_request_body(r#""password": "hunter2"}"#, true)
            .unwrap();
        s.send_response_headers(&[(":status", "200")], false)
            .unwrap();
        s.send_response_body(format!(r#"{{"token": "{JWT}"}}"#), false)
            .unwrap();
        s.send_response_body("x".repeat(30), true).unwrap();
        s.finish().unwrap();
        let line = logged(&h).remove(0);
        let rec: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            rec["request_body"],
            json!({"bytes": 40, "json": {"user": "alice", "password": "[REDACTED]"}}),
            "{profile:?}"
        );
        assert_eq!(
            rec["response_body"]["truncated"],
            json!(true),
            "{profile:?}: {rec}"
        );
        assert!(!line.contains("hunter2") && !line.contains(JWT));
    }
}

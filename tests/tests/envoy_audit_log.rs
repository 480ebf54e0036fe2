//! audit-log in a real Envoy (`--concurrency 2`): workers run the HTTP filter (`role: worker`)
//! and hand records to a shared queue; a singleton VM (`bootstrap_extensions`,
//! `envoy.bootstrap.wasm`, `singleton: true`, same vm_id, `role: exporter`) drains it and POSTs
//! NDJSON batches to a collector: a std-only HTTP server on 127.0.0.1 in this test process that
//! counts distinct records (by hash). A mix of allowed (200), denied (403 direct response) and
//! failing (503: upstream refuses connections) requests. Waits are bounded; behaviour is asserted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use suite_tests::{paths, Connection, Envoy, EnvoyConfig, RawRequest, Upstream};

/// The collector: accepts POSTs of NDJSON, answers 200 (or, while down, closes the connection
/// without answering), keeps every record line it got.
struct Collector {
    addr: SocketAddr,
    down: Arc<AtomicBool>,
    lines: Arc<Mutex<Vec<String>>>,
    posts: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Collector {
    fn start() -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let c = Collector {
            addr: listener.local_addr().unwrap(),
            down: Arc::new(AtomicBool::new(false)),
            lines: Arc::new(Mutex::new(Vec::new())),
            posts: Arc::new(AtomicU64::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (down, lines, posts, stop) = (
            c.down.clone(),
            c.lines.clone(),
            c.posts.clone(),
            c.stop.clone(),
        );
        std::thread::spawn(move || {
            // Bounded: the test sets `stop` when done; at most 10 minutes anyway.
            let deadline = Instant::now() + Duration::from_secs(600);
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (down, lines, posts, stop) =
                            (down.clone(), lines.clone(), posts.clone(), stop.clone());
                        std::thread::spawn(move || serve(stream, &down, &lines, &posts, &stop));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        c
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    fn distinct(&self) -> usize {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| v["hash"].as_str().map(str::to_owned))
            .collect::<BTreeSet<_>>()
            .len()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(
    stream: TcpStream,
    down: &AtomicBool,
    lines: &Mutex<Vec<String>>,
    posts: &AtomicU64,
    stop: &AtomicBool,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    for _ in 0..1_000_000 {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let mut length = 0usize;
        let mut first = true;
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    if first && !stop.load(Ordering::SeqCst) {
                        continue;
                    }
                    return;
                }
                Err(_) => return,
            }
            first = false;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if down.load(Ordering::SeqCst) {
            // Down: the connection dies without an answer.
            return;
        }
        {
            let mut all = lines.lock().unwrap();
            for l in String::from_utf8_lossy(&body).lines() {
                if !l.trim().is_empty() {
                    all.push(l.to_owned());
                }
            }
        }
        posts.fetch_add(1, Ordering::SeqCst);
        if writer
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}

fn worker_config() -> Value {
    json!({
        "export": {"enabled": true, "queue": "audit_log", "queue_vm_id": "audit-log"},
        "sinks": {"log": true}
    })
}

fn exporter_config(buffer: usize) -> Value {
    json!({
        "role": "exporter",
        "sinks": {"log": false, "filter_state_key": ""},
        "export": {"enabled": true, "queue": "audit_log", "upstream": "audit_collector",
                   "authority": "collector", "batch_max_records": 200, "batch_max_delay_ms": 100,
                   "buffer_max_records": buffer, "buffer_max_bytes": 64 * 1024 * 1024,
                   "retry_initial_ms": 50, "retry_max_ms": 500, "timeout_ms": 2000, "tick_ms": 50}
    })
}

/// The chain of the test: audit-log filter, singleton exporter, a route per outcome, the
/// collector cluster, and Envoy's own access log writing the filter state.
fn start(upstream: &Upstream, collector: &Collector, buffer: usize, access_log: &str) -> Envoy {
    let mut b = EnvoyConfig::new(upstream.addr())
        .filter("audit-log", worker_config())
        .bootstrap()
        .unwrap();
    let wasm = paths::plugin_wasm("audit-log").unwrap();
    b["bootstrap_extensions"] = json!([{
        "name": "envoy.bootstrap.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.wasm.v3.WasmService",
            "singleton": true,
            "config": {
                "name": "audit-exporter",
                "root_id": "audit-exporter",
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                  "value": exporter_config(buffer).to_string()},
                "vm_config": {"vm_id": "audit-log", "runtime": "envoy.wasm.runtime.v8",
                              "code": {"local": {"filename": wasm.display().to_string()}}}
            }
        }
    }]);
    let clusters = b["static_resources"]["clusters"].as_array_mut().unwrap();
    let cluster = |name: &str, addr: SocketAddr| {
        json!({"name": name, "type": "STATIC", "connect_timeout": "1s",
               "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                   {"endpoint": {"address": {"socket_address": {
                       "address": "127.0.0.1", "port_value": addr.port()}}}}]}]}})
    };
    clusters.push(cluster("audit_collector", collector.addr));
    // A port nobody listens on: requests routed there fail (503).
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    clusters.push(cluster("dead", closed));
    let hcm = &mut b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"];
    hcm["route_config"]["virtual_hosts"][0]["routes"] = json!([
        {"match": {"prefix": "/denied"}, "direct_response": {"status": 403}},
        {"match": {"prefix": "/failing"}, "route": {"cluster": "dead", "timeout": "5s"}},
        {"match": {"prefix": "/"}, "route": {"cluster": "upstream", "timeout": "30s"}}
    ]);
    hcm["access_log"] = json!([{
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": access_log,
            "log_format": {"text_format_source": {"inline_string": "AUDIT %FILTER_STATE(wasm.audit_record:PLAIN)%\n"}}
        }
    }]);
    Envoy::start_bootstrap(&b, 2).unwrap()
}

/// Sends `n` requests over `conns` keep-alive connections on threads; 1 in 10 denied, 1 in 10
/// failing, the rest allowed. Returns the statuses seen, counted.
fn load(envoy: &Envoy, n: usize, conns: usize, tag: &str) -> [usize; 3] {
    let addr = envoy.addr();
    let handles: Vec<_> = (0..conns)
        .map(|c| {
            let tag = tag.to_owned();
            std::thread::spawn(move || {
                let mut seen = [0usize; 3];
                let mut conn = Connection::open(addr).unwrap();
                for i in (c..n).step_by(conns) {
                    let path = match i % 10 {
                        3 => format!("/denied/{tag}/{i}"),
                        7 => format!("/failing/{tag}/{i}"),
                        _ => format!("/ok/{tag}/{i}?token=secret-{i}"),
                    };
                    let req = RawRequest::new("GET", &path, "api.example.com");
                    let resp = match conn.send(&req) {
                        Ok(r) => r,
                        Err(_) => {
                            conn = Connection::open(addr).unwrap();
                            conn.send(&req).unwrap()
                        }
                    };
                    match resp.status {
                        200 => seen[0] += 1,
                        403 => seen[1] += 1,
                        _ => seen[2] += 1,
                    }
                }
                seen
            })
        })
        .collect();
    let mut total = [0usize; 3];
    for h in handles {
        let s = h.join().unwrap();
        for k in 0..3 {
            total[k] += s[k];
        }
    }
    total
}

fn stat(envoy: &Envoy, name: &str) -> u64 {
    envoy
        .stats()
        .unwrap()
        .get(&format!("wasmcustom.audit_log.{name}"))
        .copied()
        .unwrap_or(0)
}

/// Waits (bounded) until `done` holds.
fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    done()
}

fn requests() -> usize {
    std::env::var("AUDIT_LOG_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

#[test]
fn every_request_gives_exactly_one_record_at_the_collector_and_chains_verify() {
    let n = requests();
    let upstream = Upstream::start().unwrap();
    let collector = Collector::start();
    let dir = std::env::temp_dir().join(format!("audit-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let access = dir.join("access.log");
    let envoy = start(
        &upstream,
        &collector,
        100_000,
        &access.display().to_string(),
    );
    let seen = load(&envoy, n, 16, "all");
    assert_eq!(seen[0] + seen[1] + seen[2], n);
    assert!(seen[1] > 0 && seen[2] > 0, "a mix: {seen:?}");
    let delivered = wait_until(Duration::from_secs(60), || collector.distinct() >= n);
    assert!(
        delivered,
        "{} of {n} records at the collector; stats: exported {} dropped {}",
        collector.distinct(),
        stat(&envoy, "records_exported"),
        stat(&envoy, "records_dropped")
    );
    std::thread::sleep(Duration::from_millis(500));
    let lines = collector.lines();
    assert_eq!(collector.distinct(), n, "exactly N distinct records");
    assert_eq!(lines.len(), n, "no duplicates");
    let report = audit_log::chain::verify(&lines.join("\n"));
    assert!(report.ok(), "{report:?}");
    // One chain per worker VM that served traffic (a keep-alive connection stays on the worker
    // that accepted it, so with few connections one worker may take them all).
    let busy = envoy
        .worker_connections()
        .unwrap()
        .iter()
        .filter(|(_, v)| *v > 0)
        .count();
    assert!(busy >= 1, "no worker took a connection");
    assert_eq!(
        report.chains.len(),
        busy,
        "one chain per worker that served"
    );
    // Content: statuses of the mix, query redacted.
    let recs: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let count = |s: u64| recs.iter().filter(|r| r["status"] == s).count();
    assert_eq!(count(200), seen[0]);
    assert_eq!(count(403), seen[1]);
    assert_eq!(count(503), seen[2]);
    assert!(lines.iter().all(|l| !l.contains("secret-")));
    let sample = recs.iter().find(|r| r["status"] == 200).unwrap();
    for field in [
        "time",
        "request_id",
        "method",
        "authority",
        "path",
        "duration_ms",
        "bytes_in",
        "bytes_out",
        "client_ip",
        "upstream",
    ] {
        assert!(sample.get(field).is_some(), "{field} missing in {sample}");
    }
    assert_eq!(stat(&envoy, "records_written"), n as u64);
    assert_eq!(stat(&envoy, "records_exported"), n as u64);
    assert_eq!(stat(&envoy, "records_dropped"), 0);
    // The gateway log holds the same records (sink 1), and verifies on its own.
    // Envoy flushes its log file periodically: wait (bounded) for every record line.
    let mut log = envoy.log();
    wait_until(Duration::from_secs(30), || {
        log = envoy.log();
        audit_log::chain::verify(&log).records() >= n as u64
    });
    let log_report = audit_log::chain::verify(&log);
    assert!(log_report.ok(), "{:?}", log_report.chains);
    assert_eq!(log_report.records(), n as u64);
    // Sink 2: Envoy's access log wrote the filter state, the same line as the collector got.
    let access_records = || -> Vec<String> {
        std::fs::read_to_string(&access)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix("AUDIT "))
            .filter(|l| l.starts_with('{'))
            .map(str::to_owned)
            .collect()
    };
    wait_until(Duration::from_secs(30), || access_records().len() >= n);
    let mut from_access = access_records();
    assert_eq!(
        from_access.len(),
        n,
        "one access-log line with the record per request"
    );
    let mut from_collector = lines.clone();
    from_access.sort();
    from_collector.sort();
    assert_eq!(from_access, from_collector);
    drop(envoy);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn collector_down_for_a_stretch_then_back_gets_everything() {
    let n = requests().min(4_000);
    let upstream = Upstream::start().unwrap();
    let collector = Collector::start();
    let envoy = start(&upstream, &collector, 100_000, "/dev/null");
    load(&envoy, n / 4, 2, "before");
    collector.set_down(true);
    load(&envoy, n / 2, 2, "during");
    assert!(
        wait_until(Duration::from_secs(20), || stat(&envoy, "export_failures")
            > 0),
        "exports failed while down"
    );
    collector.set_down(false);
    load(&envoy, n - n / 4 - n / 2, 2, "after");
    let ok = wait_until(Duration::from_secs(60), || collector.distinct() >= n);
    assert!(ok, "{} of {n} delivered", collector.distinct());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(collector.distinct(), n);
    assert_eq!(stat(&envoy, "records_dropped"), 0);
    assert!(stat(&envoy, "records_retried") > 0);
    let report = audit_log::chain::verify(&collector.lines().join("\n"));
    // A batch the collector read but did not answer may arrive twice; distinct records are
    // exactly N, and nothing is missing from any chain.
    let missing = report
        .chains
        .values()
        .filter_map(|c| c.first_error.as_ref())
        .filter(|e| e.contains("missing"))
        .count();
    assert_eq!(missing, 0, "{report:?}");
}

#[test]
fn buffer_too_small_dropped_count_equals_records_missing() {
    let n = requests().min(2_000);
    let upstream = Upstream::start().unwrap();
    let collector = Collector::start();
    let envoy = start(&upstream, &collector, 300, "/dev/null");
    collector.set_down(true);
    load(&envoy, n, 2, "small");
    assert!(wait_until(Duration::from_secs(20), || stat(
        &envoy,
        "records_dropped"
    ) > 0));
    collector.set_down(false);
    let settled = wait_until(Duration::from_secs(60), || {
        stat(&envoy, "buffer_depth") == 0
            && collector.distinct() as u64 + stat(&envoy, "records_dropped") >= n as u64
    });
    assert!(
        settled,
        "delivered {} dropped {}",
        collector.distinct(),
        stat(&envoy, "records_dropped")
    );
    let dropped = stat(&envoy, "records_dropped");
    let missing = n as u64 - collector.distinct() as u64;
    let all: Vec<(String, u64)> = envoy
        .stats()
        .unwrap()
        .into_iter()
        .filter(|(k, _)| k.contains("audit_log"))
        .collect();
    println!("stats: {all:?}; distinct {}", collector.distinct());
    assert!(dropped > 0);
    assert_eq!(
        dropped, missing,
        "dropped count reported equals records missing"
    );
    // Each dropped record is in the log, whole.
    let logged_drops = || {
        envoy
            .log()
            .matches("audit-log-dropped: reason=buffer_full {")
            .count() as u64
    };
    // Envoy flushes its log file periodically: wait (bounded).
    wait_until(Duration::from_secs(30), || logged_drops() >= dropped);
    assert_eq!(logged_drops(), dropped);
}

//! The demo's audit collector: receives the NDJSON batches audit-log's exporter POSTs, keeps the
//! records (deduplicated by `hash`, as the audit-log docs ask of collectors) and, when given a
//! file, appends each new record to it, so `cargo xtask audit-verify <file>` can check the chains.
//!
//! - `POST /v1/audit`: one record per line; answers `{"accepted": n, "duplicates": d}`;
//! - `GET /__collector/stats`: `{"records": n, "batches": b, "duplicates": d, "malformed": m}`;
//! - `GET /__collector/records`: every record kept, as NDJSON (what `audit-verify` reads);
//! - `POST /__collector/reset`: forget everything (the file is left alone).

use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::sync::Mutex;

use serde_json::{json, Value};

use crate::http::{Request, Response};

/// Where batches are accepted.
pub const AUDIT_PATH: &str = "/v1/audit";
/// Records kept in memory at most; later ones are still counted and written to the file.
pub const MAX_KEPT: usize = 100_000;

#[derive(Debug, Default)]
struct State {
    lines: Vec<String>,
    hashes: HashSet<String>,
    records: u64,
    batches: u64,
    duplicates: u64,
    malformed: u64,
}

/// The collector: its records and an optional NDJSON file.
#[derive(Debug)]
pub struct Collector {
    state: Mutex<State>,
    file: Option<Mutex<File>>,
}

impl Collector {
    /// A collector that keeps records in memory and, with `file`, appends them to it.
    pub fn new(file: Option<File>) -> Collector {
        Collector {
            state: Mutex::new(State::default()),
            file: file.map(Mutex::new),
        }
    }

    /// Answers one request on the collector's listener.
    pub fn respond(&self, req: &Request) -> Response {
        match (req.method.as_str(), req.path()) {
            ("POST", AUDIT_PATH) => self.accept(&req.body),
            ("GET", "/__collector/stats") => match self.state.lock() {
                Ok(s) => Response::json(
                    200,
                    &json!({"records": s.records, "batches": s.batches,
                            "duplicates": s.duplicates, "malformed": s.malformed}),
                ),
                Err(_) => busy(),
            },
            ("GET", "/__collector/records") => match self.state.lock() {
                Ok(s) => {
                    let mut body = s.lines.join("\n");
                    if !body.is_empty() {
                        body.push('\n');
                    }
                    Response {
                        status: 200,
                        headers: vec![("content-type".into(), b"application/x-ndjson".to_vec())],
                        body: body.into_bytes(),
                    }
                }
                Err(_) => busy(),
            },
            ("POST", "/__collector/reset") => match self.state.lock() {
                Ok(mut s) => {
                    *s = State::default();
                    Response::json(200, &json!({"records": 0}))
                }
                Err(_) => busy(),
            },
            _ => Response::json(
                404,
                &json!({"error": "not found", "endpoints": [AUDIT_PATH, "/__collector/stats",
                        "/__collector/records", "/__collector/reset"]}),
            ),
        }
    }

    fn accept(&self, body: &[u8]) -> Response {
        let Ok(mut s) = self.state.lock() else {
            return busy();
        };
        s.batches += 1;
        let (mut accepted, mut duplicates) = (0u64, 0u64);
        let mut fresh = String::new();
        for line in String::from_utf8_lossy(body).lines() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            // Deduplicate by `hash`; a line without one is kept (the verifier will say why).
            let hash = serde_json::from_str::<Value>(line)
                .ok()
                .and_then(|v| v["hash"].as_str().map(str::to_string));
            match hash {
                Some(h) => {
                    if !s.hashes.insert(h) {
                        duplicates += 1;
                        continue;
                    }
                }
                None => s.malformed += 1,
            }
            accepted += 1;
            s.records += 1;
            if s.lines.len() < MAX_KEPT {
                s.lines.push(line.to_string());
            }
            fresh.push_str(line);
            fresh.push('\n');
        }
        s.duplicates += duplicates;
        if let Some(file) = &self.file {
            let written = file
                .lock()
                .map_err(|_| ())
                .and_then(|mut f| f.write_all(fresh.as_bytes()).map_err(|_| ()));
            if written.is_err() {
                // Not acknowledged: the exporter keeps the batch and sends it again.
                return Response::json(500, &json!({"error": "cannot write the audit file"}));
            }
        }
        Response::json(
            200,
            &json!({"accepted": accepted, "duplicates": duplicates}),
        )
    }
}

fn busy() -> Response {
    Response::json(500, &json!({"error": "collector state unavailable"}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, target: &str, body: &str) -> Request {
        Request {
            method: method.into(),
            target: target.into(),
            http10: false,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        }
    }

    fn json_of(resp: &Response) -> Value {
        serde_json::from_slice(&resp.body).unwrap()
    }

    #[test]
    fn keeps_records_once_and_writes_them_to_the_file() {
        let path = std::env::temp_dir().join(format!(
            "demo-collector-{}-{:?}.ndjson",
            std::process::id(),
            std::thread::current().id()
        ));
        let c = Collector::new(Some(File::create(&path).unwrap()));
        let batch = "{\"hash\":\"a\",\"seq\":0}\n{\"hash\":\"b\",\"seq\":1}\n";
        let resp = c.respond(&req("POST", AUDIT_PATH, batch));
        assert_eq!(json_of(&resp), json!({"accepted": 2, "duplicates": 0}));
        let resp = c.respond(&req(
            "POST",
            AUDIT_PATH,
            "{\"hash\":\"b\",\"seq\":1}\nnot json\n",
        ));
        assert_eq!(json_of(&resp), json!({"accepted": 1, "duplicates": 1}));
        let stats = json_of(&c.respond(&req("GET", "/__collector/stats", "")));
        assert_eq!(
            stats,
            json!({"records": 3, "batches": 2, "duplicates": 1, "malformed": 1})
        );
        let all = c.respond(&req("GET", "/__collector/records", ""));
        let expected = "{\"hash\":\"a\",\"seq\":0}\n{\"hash\":\"b\",\"seq\":1}\nnot json\n";
        assert_eq!(String::from_utf8(all.body).unwrap(), expected);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), expected);
        let _ = std::fs::remove_file(&path);
        c.respond(&req("POST", "/__collector/reset", ""));
        let stats = json_of(&c.respond(&req("GET", "/__collector/stats", "")));
        assert_eq!(stats["records"], 0);
        assert_eq!(c.respond(&req("GET", "/nope", "")).status, 404);
    }
}

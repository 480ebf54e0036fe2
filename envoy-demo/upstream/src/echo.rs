//! What the upstream answers: the echo, its `x-echo-*` controls, and the `/__upstream/*`
//! control endpoints.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use serde_json::{json, Value};

use crate::http::{is_token, Headers, Request, Response};

/// Paths under this prefix are control endpoints: never echoed, never counted.
pub const CONTROL_PREFIX: &str = "/__upstream/";

/// State shared by every connection.
#[derive(Debug, Default)]
pub struct Upstream {
    requests: AtomicU64,
    failing: AtomicBool,
    /// Bench mode: every non-control request gets the same small answer, without the echo.
    fixed: bool,
    last: Mutex<Option<Value>>,
}

impl Upstream {
    /// A new upstream; `failing` starts it in fail mode (every echo request gets a 503).
    pub fn new(failing: bool) -> Upstream {
        Upstream {
            failing: AtomicBool::new(failing),
            ..Upstream::default()
        }
    }

    /// A bench upstream: every request outside [`CONTROL_PREFIX`] gets `200 {"ok":true}`, with
    /// no echo, no `last` and no controls, so that in a benchmark the proxy in front, not this
    /// server, runs out of CPU first. Requests are still counted.
    pub fn fixed() -> Upstream {
        Upstream {
            fixed: true,
            ..Upstream::default()
        }
    }

    /// Answers one request.
    pub fn respond(&self, req: &Request) -> Response {
        if req.path().starts_with(CONTROL_PREFIX) {
            return self.control(req);
        }
        self.requests.fetch_add(1, Ordering::SeqCst);
        if self.fixed {
            return Response {
                status: 200,
                headers: vec![("content-type".into(), b"application/json".to_vec())],
                body: br#"{"ok":true}"#.to_vec(),
            };
        }
        let echoed = echo_json(req);
        if let Ok(mut last) = self.last.lock() {
            *last = Some(last_json(req, &echoed));
        }
        if self.failing.load(Ordering::SeqCst) {
            return Response::json(503, &json!({"error": "upstream is in fail mode"}));
        }
        match echo_controls(req) {
            Ok((status, headers)) => {
                let mut resp = Response::json(status, &echoed);
                if headers.iter().any(|(n, _)| n == "content-type") {
                    resp.headers.clear();
                }
                resp.headers.extend(headers);
                resp
            }
            Err(msg) => Response::json(400, &json!({ "error": msg })),
        }
    }

    fn mode(&self) -> &'static str {
        if self.failing.load(Ordering::SeqCst) {
            "fail"
        } else {
            "ok"
        }
    }

    fn control(&self, req: &Request) -> Response {
        match (req.method.as_str(), req.path()) {
            ("GET", "/__upstream/stats") => Response::json(
                200,
                &json!({"requests": self.requests.load(Ordering::SeqCst), "mode": self.mode()}),
            ),
            ("GET", "/__upstream/last") => {
                let last = self.last.lock().map(|l| l.clone()).unwrap_or_default();
                Response::json(200, &last.unwrap_or(Value::Null))
            }
            ("POST", "/__upstream/mode") => {
                let body = String::from_utf8_lossy(&req.body);
                let wanted = body.trim().trim_matches('"');
                match wanted {
                    "fail" => self.failing.store(true, Ordering::SeqCst),
                    "ok" => self.failing.store(false, Ordering::SeqCst),
                    _ => {
                        return Response::json(
                            400,
                            &json!({"error": "mode must be `fail` or `ok`"}),
                        )
                    }
                }
                Response::json(200, &json!({"mode": self.mode()}))
            }
            ("POST", "/__upstream/reset") => {
                self.requests.store(0, Ordering::SeqCst);
                if let Ok(mut last) = self.last.lock() {
                    *last = None;
                }
                Response::json(200, &json!({"requests": 0}))
            }
            _ => Response::json(404, &json!({"error": "unknown control endpoint"})),
        }
    }
}

/// The echo body: `{"method", "path", "headers": [[name, value]], "body"}`.
pub fn echo_json(req: &Request) -> Value {
    let headers: Vec<Value> = req
        .headers
        .iter()
        .map(|(n, v)| json!([n, String::from_utf8_lossy(v)]))
        .collect();
    json!({
        "method": req.method,
        "path": req.target,
        "headers": headers,
        "body": String::from_utf8_lossy(&req.body),
    })
}

/// What `/__upstream/last` returns: the echo plus the exact header bytes, hex-encoded.
fn last_json(req: &Request, echoed: &Value) -> Value {
    let raw: Vec<Value> = req
        .headers
        .iter()
        .map(|(n, v)| json!([n, hex(v)]))
        .collect();
    let mut last = echoed.clone();
    if let Value::Object(map) = &mut last {
        map.insert("headers_hex".into(), Value::Array(raw));
    }
    last
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads `x-echo-status` and `x-echo-header: name=value` from the request.
fn echo_controls(req: &Request) -> Result<(u16, Headers), String> {
    let status = match req.header_values("x-echo-status").next() {
        None => 200,
        Some(v) => std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.trim().parse::<u16>().ok())
            .filter(|s| (200..=599).contains(s))
            .ok_or("x-echo-status must be a number from 200 to 599")?,
    };
    let mut headers = Vec::new();
    for v in req.header_values("x-echo-header") {
        let Some(eq) = v.iter().position(|b| *b == b'=') else {
            return Err("x-echo-header must be `name=value`".into());
        };
        let name = String::from_utf8_lossy(&v[..eq])
            .trim()
            .to_ascii_lowercase();
        if !is_token(name.as_bytes()) {
            return Err(format!("x-echo-header: invalid header name `{name}`"));
        }
        if matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) {
            return Err(format!(
                "x-echo-header: `{name}` is set by the upstream itself"
            ));
        }
        headers.push((name, v[eq + 1..].trim_ascii().to_vec()));
    }
    Ok((status, headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, target: &str, headers: &[(&str, &[u8])], body: &[u8]) -> Request {
        Request {
            method: method.into(),
            target: target.into(),
            http10: false,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_vec()))
                .collect(),
            body: body.to_vec(),
        }
    }

    fn body(resp: &Response) -> Value {
        serde_json::from_slice(&resp.body).unwrap()
    }

    #[test]
    fn echoes_what_it_received() {
        let up = Upstream::new(false);
        let resp = up.respond(&req(
            "POST",
            "/a?b=1",
            &[("x-a", b"1"), ("x-a", b"2"), ("x-raw", b"\xffA")],
            b"hi",
        ));
        assert_eq!(resp.status, 200);
        assert_eq!(
            resp.headers,
            vec![("content-type".to_string(), b"application/json".to_vec())]
        );
        assert_eq!(
            body(&resp),
            json!({"method": "POST", "path": "/a?b=1",
                   "headers": [["x-a", "1"], ["x-a", "2"], ["x-raw", "\u{fffd}A"]], "body": "hi"})
        );
    }

    #[test]
    fn obeys_echo_controls() {
        let up = Upstream::new(false);
        let resp = up.respond(&req(
            "GET",
            "/",
            &[
                ("x-echo-status", b"418"),
                ("x-echo-header", b"cache-control=no-store"),
                ("x-echo-header", b"X-Two=a=b"),
            ],
            b"",
        ));
        assert_eq!(resp.status, 418);
        assert_eq!(
            resp.headers[1..],
            [
                ("cache-control".to_string(), b"no-store".to_vec()),
                ("x-two".to_string(), b"a=b".to_vec())
            ]
        );
        for bad in [&b"x"[..], b"bad name=1", b"content-length=3"] {
            let resp = up.respond(&req("GET", "/", &[("x-echo-header", bad)], b""));
            assert_eq!(resp.status, 400);
        }
        let resp = up.respond(&req("GET", "/", &[("x-echo-status", b"99")], b""));
        assert_eq!(resp.status, 400);
    }

    #[test]
    fn bench_mode_answers_a_fixed_body_and_still_counts() {
        let up = Upstream::fixed();
        let resp = up.respond(&req("GET", "/x", &[("x-echo-status", b"503")], b""));
        assert_eq!(
            (resp.status, resp.body.as_slice()),
            (200, &br#"{"ok":true}"#[..])
        );
        let stats = up.respond(&req("GET", "/__upstream/stats", &[], b""));
        assert!(String::from_utf8_lossy(&stats.body).contains(r#""requests":1"#));
    }

    #[test]
    fn counts_echo_requests_but_not_control_requests() {
        let up = Upstream::new(false);
        let stats = |up: &Upstream| body(&up.respond(&req("GET", "/__upstream/stats", &[], b"")));
        assert_eq!(stats(&up), json!({"requests": 0, "mode": "ok"}));
        up.respond(&req("GET", "/x", &[("x-a", b"\xff")], b""));
        up.respond(&req("GET", "/y", &[], b""));
        assert_eq!(stats(&up)["requests"], 2);
        let last = body(&up.respond(&req("GET", "/__upstream/last", &[], b"")));
        assert_eq!(last["path"], "/y");
        up.respond(&req("POST", "/__upstream/reset", &[], b""));
        assert_eq!(stats(&up)["requests"], 0);
        let resp = up.respond(&req("GET", "/x", &[("x-a", b"\xff")], b""));
        assert_eq!(resp.status, 200);
        let last = body(&up.respond(&req("GET", "/__upstream/last", &[], b"")));
        assert_eq!(last["headers_hex"], json!([["x-a", "ff"]]));
    }

    #[test]
    fn fail_mode_answers_503_and_can_be_switched() {
        let up = Upstream::new(true);
        assert_eq!(up.respond(&req("GET", "/", &[], b"")).status, 503);
        let resp = up.respond(&req("POST", "/__upstream/mode", &[], b"ok"));
        assert_eq!(body(&resp), json!({"mode": "ok"}));
        assert_eq!(up.respond(&req("GET", "/", &[], b"")).status, 200);
        up.respond(&req("POST", "/__upstream/mode", &[], b"fail\n"));
        assert_eq!(up.respond(&req("GET", "/", &[], b"")).status, 503);
        assert_eq!(
            up.respond(&req("POST", "/__upstream/mode", &[], b"maybe"))
                .status,
            400
        );
        assert_eq!(
            up.respond(&req("GET", "/__upstream/nope", &[], b"")).status,
            404
        );
    }
}

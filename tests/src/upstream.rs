//! The echo upstream (`demo-upstream`) as a child process, killed on drop.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::client::{self, RawRequest};
use crate::paths;

/// How long the upstream may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running echo upstream on 127.0.0.1.
pub struct Upstream {
    child: Child,
    addr: SocketAddr,
}

/// What the upstream last received, from `GET /__upstream/last`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceivedRequest {
    pub method: String,
    pub path: String,
    /// Lowercase names, exact value bytes, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: String,
}

impl Upstream {
    /// Starts `demo-upstream --listen 127.0.0.1:0` and reads the bound address.
    pub fn start() -> Result<Upstream> {
        Self::start_with(&[])
    }

    /// Starts it with extra arguments (e.g. `--fail`).
    pub fn start_with(extra_args: &[&str]) -> Result<Upstream> {
        let bin = paths::upstream_bin()?;
        let mut child = Command::new(&bin)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("demo-upstream printed no address within {START_TIMEOUT:?}");
            }
        };
        let addr = match line.trim().parse() {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "demo-upstream printed `{}` instead of its address",
                    line.trim()
                );
            }
        };
        Ok(Upstream { child, addr })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn control(&self, method: &str, path: &str, body: &str) -> Result<Value> {
        let req = RawRequest::new(method, path, "127.0.0.1")
            .header("connection", "close")
            .body(body);
        let resp = client::send(self.addr, &req)?;
        if resp.status != 200 {
            bail!(
                "{method} {path}: upstream answered {}: {}",
                resp.status,
                resp.text()
            );
        }
        serde_json::from_slice(&resp.body).with_context(|| format!("{path}: not JSON"))
    }

    /// How many (non-control) requests the upstream has received.
    pub fn request_count(&self) -> Result<u64> {
        self.control("GET", "/__upstream/stats", "")?["requests"]
            .as_u64()
            .ok_or_else(|| anyhow!("/__upstream/stats without a request count"))
    }

    /// The last request received, if any.
    pub fn last_request(&self) -> Result<Option<ReceivedRequest>> {
        let last = self.control("GET", "/__upstream/last", "")?;
        if last.is_null() {
            return Ok(None);
        }
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let mut headers = Vec::new();
        for pair in last["headers_hex"].as_array().into_iter().flatten() {
            let name = text(&pair[0]);
            let value = decode_hex(pair[1].as_str().unwrap_or_default())
                .ok_or_else(|| anyhow!("/__upstream/last: bad hex for {name}"))?;
            headers.push((name, value));
        }
        Ok(Some(ReceivedRequest {
            method: text(&last["method"]),
            path: text(&last["path"]),
            headers,
            body: text(&last["body"]),
        }))
    }

    /// Fail mode on (every request gets 503) or off.
    pub fn set_failing(&self, failing: bool) -> Result<()> {
        self.control(
            "POST",
            "/__upstream/mode",
            if failing { "fail" } else { "ok" },
        )
        .map(|_| ())
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

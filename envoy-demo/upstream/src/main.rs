//! `demo-upstream`: a small threaded HTTP/1.1 server that echoes each request as JSON, and for
//! the Envoy demo also a token issuer and an audit collector, each on its own listener.
//!
//! ```text
//! demo-upstream [--listen 127.0.0.1:8080] [--fail | --bench]
//!               [--auth-listen 127.0.0.1:8081]
//!               [--collector-listen 127.0.0.1:8082] [--collector-file audit.ndjson]
//! ```
//!
//! The first line on stdout is the echo's bound address (`127.0.0.1:PORT`), so launchers can pass
//! port 0; then one line `auth <addr>` / `collector <addr>` per extra listener.
//! Request headers `x-echo-status: <code>` and `x-echo-header: <name>=<value>` shape the answer;
//! `GET /__upstream/stats` counts echoed requests, `GET /__upstream/last` shows the last one,
//! `POST /__upstream/mode` with body `fail` or `ok` switches fail mode (503 to everything),
//! `POST /__upstream/reset` zeroes the count. `--bench` answers every other request with a fixed
//! `200 {"ok":true}` instead of the echo, for `cargo xtask bench`. The issuer is described in `demo_upstream::auth`,
//! the collector in `demo_upstream::collector`.

use std::io::{BufReader, BufWriter, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use demo_upstream::auth::Issuer;
use demo_upstream::collector::Collector;
use demo_upstream::echo::Upstream;
use demo_upstream::http::{read_request, write_response, ReadError, Response};
use demo_upstream::Service;

/// Connections served at once per listener; more are answered 503 and closed.
const MAX_CONNECTIONS: usize = 4096;
/// How long an idle keep-alive connection stays open.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

const USAGE: &str = "usage: demo-upstream [--listen 127.0.0.1:8080] [--fail | --bench] \
[--auth-listen 127.0.0.1:8081] [--collector-listen 127.0.0.1:8082] [--collector-file FILE]";

struct Args {
    listen: String,
    fail: bool,
    bench: bool,
    auth_listen: Option<String>,
    collector_listen: Option<String>,
    collector_file: Option<String>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        listen: "127.0.0.1:8080".into(),
        fail: false,
        bench: false,
        auth_listen: None,
        collector_listen: None,
        collector_file: None,
    };
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--listen" => parsed.listen = value("--listen")?,
            "--fail" => parsed.fail = true,
            "--bench" => parsed.bench = true,
            "--auth-listen" => parsed.auth_listen = Some(value("--auth-listen")?),
            "--collector-listen" => parsed.collector_listen = Some(value("--collector-listen")?),
            "--collector-file" => parsed.collector_file = Some(value("--collector-file")?),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    if parsed.bench && parsed.fail {
        return Err("--bench and --fail exclude each other".into());
    }
    if parsed.collector_file.is_some() && parsed.collector_listen.is_none() {
        return Err("--collector-file needs --collector-listen".into());
    }
    Ok(parsed)
}

fn bind(addr: &str) -> Result<(TcpListener, SocketAddr), String> {
    let listener = TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("no local address for {addr}: {e}"))?;
    Ok((listener, local))
}

/// Binds every listener first (so a busy port fails before anything is served), then serves.
fn run(args: Args) -> Result<(), String> {
    let mut services: Vec<(TcpListener, Arc<dyn Service>)> = Vec::new();
    let mut lines = Vec::new();
    let (listener, addr) = bind(&args.listen)?;
    lines.push(addr.to_string());
    let upstream = if args.bench {
        Upstream::fixed()
    } else {
        Upstream::new(args.fail)
    };
    services.push((listener, Arc::new(upstream)));
    if let Some(auth) = &args.auth_listen {
        let (listener, addr) = bind(auth)?;
        let issuer = Issuer::generate().map_err(|e| e.to_string())?;
        lines.push(format!("auth {addr}"));
        services.push((listener, Arc::new(issuer)));
    }
    if let Some(collector) = &args.collector_listen {
        let (listener, addr) = bind(collector)?;
        let file = match &args.collector_file {
            None => None,
            Some(path) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("cannot open {path}: {e}"))?,
            ),
        };
        lines.push(format!("collector {addr}"));
        services.push((listener, Arc::new(Collector::new(file))));
    }
    let mut stdout = std::io::stdout();
    if writeln!(stdout, "{}", lines.join("\n"))
        .and_then(|()| stdout.flush())
        .is_err()
    {
        // Nobody reads stdout; keep serving anyway.
    }
    let mut threads = Vec::new();
    for (listener, service) in services {
        let spawned = std::thread::Builder::new()
            .name("accept".into())
            .spawn(move || accept_loop(&listener, &service))
            .map_err(|e| format!("cannot start a listener thread: {e}"))?;
        threads.push(spawned);
    }
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("demo-upstream: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// Accepts connections forever, one thread each, at most [`MAX_CONNECTIONS`] at once.
fn accept_loop(listener: &TcpListener, service: &Arc<dyn Service>) {
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            let busy = Response::json(503, &serde_json::json!({"error": "too many connections"}));
            let _ = write_response(&mut &stream, &busy, false, true);
            continue;
        }
        let service = Arc::clone(service);
        let active_conn = Arc::clone(&active);
        let spawned = std::thread::Builder::new()
            .name("conn".into())
            .spawn(move || {
                serve(stream, service.as_ref());
                active_conn.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Serves requests on one connection until it closes, fails, or asks to close.
fn serve(stream: TcpStream, service: &dyn Service) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::with_capacity(16 * 1024, read_half);
    let mut writer = BufWriter::with_capacity(16 * 1024, &stream);
    loop {
        let req = match read_request(&mut reader, &mut writer) {
            Ok(req) => req,
            Err(ReadError::Closed | ReadError::Io) => return,
            Err(e) => {
                let (status, msg) = match e {
                    ReadError::HeadTooLarge => (431, "request head too large".to_string()),
                    ReadError::BodyTooLarge => (413, "request body too large".to_string()),
                    ReadError::Bad(why) => (400, why.to_string()),
                    ReadError::Closed | ReadError::Io => (400, String::new()),
                };
                let resp = Response::json(status, &serde_json::json!({ "error": msg }));
                let _ = write_response(&mut writer, &resp, false, true);
                return;
            }
        };
        let resp = service.respond(&req);
        let keep_alive = req.keep_alive();
        if write_response(&mut writer, &resp, req.method == "HEAD", !keep_alive).is_err()
            || !keep_alive
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn start() -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let upstream = Arc::new(Upstream::new(false));
        std::thread::spawn(move || {
            for stream in listener.incoming().take(8) {
                let upstream = Arc::clone(&upstream);
                std::thread::spawn(move || serve(stream.unwrap(), upstream.as_ref()));
            }
        });
        addr
    }

    fn exchange(addr: std::net::SocketAddr, raw: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(raw).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn serves_keep_alive_requests_over_tcp() {
        let addr = start();
        let out = exchange(
            addr,
            b"GET /a HTTP/1.1\r\nhost: x\r\n\r\nPOST /b HTTP/1.1\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
        );
        assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 2, "{out}");
        assert!(
            out.contains(r#""path":"/b""#) && out.contains(r#""body":"hi""#),
            "{out}"
        );
        assert!(out.contains("connection: close"), "{out}");
    }

    #[test]
    fn bad_request_gets_400_and_server_keeps_running() {
        let addr = start();
        let out = exchange(addr, b"NOT HTTP\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 400"), "{out}");
        let out = exchange(
            addr,
            b"GET /__upstream/stats HTTP/1.1\r\nconnection: close\r\n\r\n",
        );
        assert!(out.contains(r#""requests":0"#), "{out}");
    }

    #[test]
    fn parses_arguments() {
        let a = parse_args(
            ["--listen", "127.0.0.1:0", "--fail"]
                .map(String::from)
                .into_iter(),
        )
        .unwrap();
        assert_eq!((a.listen.as_str(), a.fail), ("127.0.0.1:0", true));
        assert!(parse_args(["--bogus".to_string()].into_iter()).is_err());
        let bench = |args: &[&str]| parse_args(args.iter().map(|a| a.to_string()));
        assert!(bench(&["--bench"]).is_ok_and(|a| a.bench && !a.fail));
        assert!(bench(&["--bench", "--fail"]).is_err());
        assert!(parse_args(["--listen".to_string()].into_iter()).is_err());
        let a = parse_args(
            [
                "--auth-listen",
                "127.0.0.1:1",
                "--collector-listen",
                "127.0.0.1:2",
                "--collector-file",
                "a.ndjson",
            ]
            .map(String::from)
            .into_iter(),
        )
        .unwrap();
        assert_eq!(a.auth_listen.as_deref(), Some("127.0.0.1:1"));
        assert_eq!(a.collector_listen.as_deref(), Some("127.0.0.1:2"));
        assert_eq!(a.collector_file.as_deref(), Some("a.ndjson"));
        assert!(
            parse_args(["--collector-file", "a"].map(String::from).into_iter()).is_err(),
            "a file without a collector"
        );
    }
}

//! `cargo xtask demo [--once]`: Envoy with `envoy-demo/envoy.yaml` in front of the echo upstream,
//! and a walkthrough of each plugin with real requests.
//!
//! The yaml is used as-is unless one of its fixed ports (10000 listener, 9901 admin, 8080
//! upstream) is busy: then exactly that `port_value:` line is rewritten in a copy under
//! `target/xtask-demo/`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::envoy::{self, local};
use crate::exec::banner;
use crate::http::{self, Response};
use crate::{dist, tools, workspace};

/// The fixed ports in `envoy-demo/envoy.yaml`.
const LISTENER_PORT: u16 = 10000;
const ADMIN_PORT: u16 = 9901;
const UPSTREAM_PORT: u16 = 8080;

/// What one walkthrough request showed.
struct Seen {
    resp: Response,
    /// Whether the upstream's request count went up.
    reached: bool,
    /// The headers the upstream received (from the echo body), when reached.
    upstream_headers: Vec<(String, String)>,
}

impl Seen {
    fn upstream(&self, name: &str) -> Option<&str> {
        self.upstream_headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One step of the walkthrough.
struct Step {
    plugin: &'static str,
    title: &'static str,
    method: &'static str,
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
    /// Response headers worth showing.
    show: &'static [&'static str],
    /// Upstream-side headers worth showing.
    show_upstream: &'static [&'static str],
    check: fn(&Seen) -> Result<(), String>,
}

fn want(cond: bool, msg: &str) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(msg.to_string())
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `00-<32 hex>-<16 hex>-<2 hex>`.
fn is_traceparent(v: &str) -> bool {
    let parts: Vec<&str> = v.split('-').collect();
    parts.len() == 4
        && parts[0] == "00"
        && is_hex(parts[1], 32)
        && is_hex(parts[2], 16)
        && is_hex(parts[3], 2)
}

/// What each plugin's walkthrough shows. New plugins add their steps here.
const STEPS: &[Step] = &[
    Step {
        plugin: "header-injection",
        title: "security headers are added to every response",
        method: "GET",
        path: "/api/orders",
        headers: &[],
        show: &[
            "strict-transport-security",
            "x-content-type-options",
            "x-frame-options",
            "referrer-policy",
            "content-security-policy",
        ],
        show_upstream: &[],
        check: |s| {
            want(s.resp.status == 200, "status 200")?;
            want(
                s.resp.header("strict-transport-security").is_some(),
                "strict-transport-security set",
            )?;
            want(
                s.resp.header("x-content-type-options") == Some("nosniff"),
                "x-content-type-options: nosniff",
            )?;
            want(
                s.resp.header("x-frame-options") == Some("DENY"),
                "x-frame-options: DENY",
            )
        },
    },
    Step {
        plugin: "header-injection",
        title: "a correlation id is generated, forwarded upstream and echoed to the client",
        method: "GET",
        path: "/api/orders",
        headers: &[],
        show: &["x-correlation-id"],
        show_upstream: &["x-correlation-id"],
        check: |s| {
            let id = s.resp.header("x-correlation-id");
            want(id.is_some(), "x-correlation-id on the response")?;
            want(
                s.upstream("x-correlation-id") == id,
                "the upstream saw the same x-correlation-id",
            )
        },
    },
    Step {
        plugin: "header-injection",
        title: "a valid incoming correlation id is kept",
        method: "GET",
        path: "/api/orders",
        headers: &[("x-correlation-id", "demo-42")],
        show: &["x-correlation-id"],
        show_upstream: &["x-correlation-id"],
        check: |s| {
            want(
                s.resp.header("x-correlation-id") == Some("demo-42"),
                "x-correlation-id: demo-42 on the response",
            )?;
            want(
                s.upstream("x-correlation-id") == Some("demo-42"),
                "x-correlation-id: demo-42 upstream",
            )
        },
    },
    Step {
        plugin: "header-injection",
        title: "a CORS preflight is answered by the gateway; the upstream never sees it",
        method: "OPTIONS",
        path: "/api/orders",
        headers: &[
            ("origin", "https://app.example.com"),
            ("access-control-request-method", "POST"),
        ],
        show: &[
            "access-control-allow-origin",
            "access-control-allow-methods",
            "access-control-max-age",
            "vary",
        ],
        show_upstream: &[],
        check: |s| {
            want(
                (200..300).contains(&s.resp.status),
                "a 2xx answer to the preflight",
            )?;
            want(
                s.resp.header("access-control-allow-origin") == Some("https://app.example.com"),
                "access-control-allow-origin: https://app.example.com",
            )?;
            want(!s.reached, "the upstream received no request")
        },
    },
    Step {
        plugin: "header-injection",
        title: "spoofed identity headers from the client are removed (any case, `_` variants)",
        method: "GET",
        path: "/api/orders",
        headers: &[
            ("x-user-id", "admin"),
            ("x_user_id", "admin"),
            ("x-user-roles", "admin"),
        ],
        show: &[],
        show_upstream: &["x-user-id", "x_user_id", "x-user-roles"],
        check: |s| {
            want(s.reached, "the request reached the upstream")?;
            let leaked = s
                .upstream_headers
                .iter()
                .any(|(n, _)| n.replace('_', "-").starts_with("x-user-"));
            want(!leaked, "no x-user-* header upstream")
        },
    },
    Step {
        plugin: "header-injection",
        title: "a W3C traceparent is started when the client sent none",
        method: "GET",
        path: "/api/orders",
        headers: &[],
        show: &[],
        show_upstream: &["traceparent"],
        check: |s| {
            want(
                s.upstream("traceparent").is_some_and(is_traceparent),
                "a valid traceparent upstream",
            )
        },
    },
];

struct Ports {
    listener: u16,
    admin: u16,
    upstream: u16,
}

/// The config Envoy runs: the yaml itself, or a copy with busy ports replaced.
fn demo_config(meta_target: &std::path::Path) -> Result<(PathBuf, Ports)> {
    let original = workspace::root().join("envoy-demo").join("envoy.yaml");
    let mut yaml = std::fs::read_to_string(&original)
        .with_context(|| format!("cannot read {}", original.display()))?;
    let mut ports = Ports {
        listener: LISTENER_PORT,
        admin: ADMIN_PORT,
        upstream: UPSTREAM_PORT,
    };
    let mut rewritten = false;
    for (fixed, role, slot) in [
        (LISTENER_PORT, "listener", &mut ports.listener),
        (ADMIN_PORT, "admin", &mut ports.admin),
        (UPSTREAM_PORT, "upstream", &mut ports.upstream),
    ] {
        if envoy::port_is_free(fixed) {
            continue;
        }
        let line = format!("port_value: {fixed}\n");
        if yaml.matches(&line).count() != 1 {
            bail!(
                "{} must contain `{}` exactly once",
                original.display(),
                line.trim()
            );
        }
        let port = envoy::free_port()?;
        println!("port {fixed} ({role}) is busy: using {port} instead");
        yaml = yaml.replace(&line, &format!("port_value: {port}\n"));
        *slot = port;
        rewritten = true;
    }
    if !rewritten {
        return Ok((original, ports));
    }
    let dir = meta_target.join("xtask-demo");
    std::fs::create_dir_all(&dir)?;
    let copy = dir.join("envoy.yaml");
    std::fs::write(&copy, yaml)?;
    println!("running a copy with those ports: {}", copy.display());
    Ok((copy, ports))
}

fn upstream_count(upstream: SocketAddr) -> Result<u64> {
    let stats = http::request(upstream, "GET", "/__upstream/stats", &[], "")?;
    let json: Value = serde_json::from_str(&stats.body)?;
    json["requests"]
        .as_u64()
        .context("upstream stats without a count")
}

fn curl_line(step: &Step, listener: u16) -> String {
    let mut s = format!("curl -si http://127.0.0.1:{listener}{}", step.path);
    if step.method != "GET" {
        s.push_str(&format!(" -X {}", step.method));
    }
    for (n, v) in step.headers {
        s.push_str(&format!(" -H '{n}: {v}'"));
    }
    s
}

fn run_step(step: &Step, listener: SocketAddr, upstream: SocketAddr) -> Result<Seen> {
    let before = upstream_count(upstream)?;
    let resp = http::request(listener, step.method, step.path, step.headers, "")?;
    let reached = upstream_count(upstream)? > before;
    let mut upstream_headers = Vec::new();
    if reached {
        if let Ok(echo) = serde_json::from_str::<Value>(&resp.body) {
            for pair in echo["headers"].as_array().into_iter().flatten() {
                if let (Some(n), Some(v)) = (pair[0].as_str(), pair[1].as_str()) {
                    upstream_headers.push((n.to_string(), v.to_string()));
                }
            }
        }
    }
    Ok(Seen {
        resp,
        reached,
        upstream_headers,
    })
}

pub fn run(args: &[String]) -> Result<()> {
    let mut once = false;
    for a in args {
        match a.as_str() {
            "--once" => once = true,
            other => bail!("demo: unknown argument `{other}` (only --once)"),
        }
    }
    banner("demo: build and install");
    dist::run()?;
    let envoy_bin = tools::ensure_envoy()?;
    let upstream_bin = envoy::build_upstream()?;
    let target_dir = workspace::metadata()?.target_dir;
    let (config, ports) = demo_config(&target_dir)?;

    banner("demo: start the echo upstream and Envoy");
    let upstream_addr = local(ports.upstream);
    let _upstream = envoy::start_upstream(&upstream_bin, upstream_addr, None)?;
    println!("echo upstream: http://{upstream_addr}");
    let log = target_dir.join("xtask-demo-envoy.log");
    let mut envoy_proc =
        envoy::start_envoy(&envoy_bin, &config, local(ports.admin), 2, &log, None)?;
    println!(
        "envoy: http://127.0.0.1:{} (admin http://127.0.0.1:{}, config {}, log {})",
        ports.listener,
        ports.admin,
        config.display(),
        log.display()
    );

    let listener = local(ports.listener);
    let mut failed = Vec::new();
    let mut plugin = "";
    for (i, step) in STEPS.iter().enumerate() {
        if step.plugin != plugin {
            plugin = step.plugin;
            banner(&format!("demo: {plugin}"));
        }
        println!("\n[{}] {}", i + 1, step.title);
        println!("  $ {}", curl_line(step, ports.listener));
        let outcome = run_step(step, listener, upstream_addr)
            .map_err(|e| format!("{e:#}"))
            .and_then(|seen| {
                println!(
                    "  status {}; reached upstream: {}",
                    seen.resp.status,
                    if seen.reached { "yes" } else { "no" }
                );
                for name in step.show {
                    println!(
                        "  < {name}: {}",
                        seen.resp.header(name).unwrap_or("(absent)")
                    );
                }
                for name in step.show_upstream {
                    println!(
                        "  upstream saw {name}: {}",
                        seen.upstream(name).unwrap_or("(absent)")
                    );
                }
                (step.check)(&seen)
            });
        match outcome {
            Ok(()) => println!("  ok"),
            Err(why) => {
                println!("  FAILED: expected {why}");
                failed.push(step.title);
            }
        }
    }
    banner("demo: summary");
    if failed.is_empty() {
        println!("all {} walkthrough steps held", STEPS.len());
    } else {
        println!("{} of {} steps FAILED:", failed.len(), STEPS.len());
        for f in &failed {
            println!("  - {f}");
        }
    }
    if once {
        if !failed.is_empty() {
            bail!("{} demo step(s) failed", failed.len());
        }
        return Ok(());
    }
    println!(
        "\nEnvoy keeps running on http://127.0.0.1:{}: try the curl lines above. Ctrl-C stops it.",
        ports.listener
    );
    envoy_proc.wait()
}

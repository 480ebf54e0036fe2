//! `cargo xtask demo [--once] [--suite]`: Envoy with `envoy-demo/envoy.yaml` (all five plugins
//! in one chain; with `--suite`, `envoy-demo/envoy-suite.yaml`: the same five as one
//! gateway-suite filter) in front of the demo upstream, its token issuer and its audit
//! collector, and a walkthrough of every plugin with real requests. The walkthrough and its
//! checks are the same for both files.
//!
//! The yaml is used as-is unless one of its fixed ports (10000 listener, 9901 admin, 8080
//! upstream, 8081 token issuer, 8082 audit collector) is busy: then exactly that `port_value:`
//! line is rewritten in a copy under `target/xtask-demo/`. The ports used are written to
//! `target/demo-ports.env` ([`PORTS_FILE`]), which the Envoy guide's second shell sources.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use serde_json::Value;

use crate::envoy::{self, local};
use crate::exec::banner;
use crate::http::{self, Response};
use crate::{dist, tools, workspace};

/// The fixed ports in `envoy-demo/envoy.yaml`, and what listens there.
const FIXED_PORTS: [(u16, &str); 5] = [
    (10000, "listener"),
    (9901, "admin"),
    (8080, "upstream"),
    (8081, "token issuer"),
    (8082, "audit collector"),
];

/// The file under the target directory that holds the ports of the running demo, as shell
/// variables ([`ports_env`]).
pub const PORTS_FILE: &str = "demo-ports.env";

/// The ports in use (the fixed ones, or their replacements).
#[derive(Debug, Clone, Copy)]
struct Ports {
    listener: u16,
    admin: u16,
    upstream: u16,
    auth: u16,
    collector: u16,
}

/// The walkthrough's state: where things are, the token, and how many requests went through
/// the gateway (each must leave one audit record).
struct Demo {
    ports: Ports,
    token: String,
    sent: u64,
    audit_file: PathBuf,
}

impl Demo {
    fn listener(&self) -> SocketAddr {
        local(self.ports.listener)
    }

    fn upstream(&self) -> SocketAddr {
        local(self.ports.upstream)
    }

    /// One request through the gateway; `$TOKEN` in a header value is the demo token.
    fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)]) -> Result<Response> {
        let owned: Vec<(&str, String)> = headers
            .iter()
            .map(|(n, v)| (*n, v.replace("$TOKEN", &self.token)))
            .collect();
        let refs: Vec<(&str, &str)> = owned.iter().map(|(n, v)| (*n, v.as_str())).collect();
        self.sent += 1;
        http::request(self.listener(), method, path, &refs, "")
    }

    fn upstream_count(&self) -> Result<u64> {
        let stats = http::request(self.upstream(), "GET", "/__upstream/stats", &[], "")?;
        let json: Value = serde_json::from_str(&stats.body)?;
        json["requests"]
            .as_u64()
            .context("upstream stats without a count")
    }

    /// The curl line a reader can copy for a request through the gateway.
    fn curl(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> String {
        let mut s = format!("curl -si http://127.0.0.1:{}{path}", self.ports.listener);
        if method != "GET" {
            s.push_str(&format!(" -X {method}"));
        }
        for (n, v) in headers {
            if v.contains('$') {
                s.push_str(&format!(" -H \"{n}: {v}\""));
            } else {
                s.push_str(&format!(" -H '{n}: {v}'"));
            }
        }
        s
    }
}

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

    fn body_json(&self) -> Value {
        serde_json::from_str(&self.resp.body).unwrap_or(Value::Null)
    }
}

/// One request and what must hold about its answer.
struct Req {
    method: &'static str,
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
    /// Response headers worth showing.
    show: &'static [&'static str],
    /// Upstream-side headers worth showing.
    show_upstream: &'static [&'static str],
    check: fn(&Seen) -> Result<(), String>,
}

enum Action {
    /// A single request, shown and checked the same way for every step.
    Request(Req),
    /// Several requests or a look elsewhere: prints its own curl lines and findings.
    Custom(fn(&mut Demo) -> Result<(), String>),
}

/// One step of the walkthrough.
struct Step {
    plugin: &'static str,
    title: &'static str,
    action: Action,
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

const AUTH: (&str, &str) = ("authorization", "Bearer $TOKEN");

/// The walkthrough, in chain order. New steps go here.
const STEPS: &[Step] = &[
    Step {
        plugin: "header-injection",
        title: "security headers are added to every response",
        action: Action::Request(Req {
            method: "GET",
            path: "/public/orders",
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
                    s.resp.header("strict-transport-security") == Some("max-age=31536000"),
                    "strict-transport-security: max-age=31536000 (asked for in envoy.yaml)",
                )?;
                want(
                    s.resp.header("x-content-type-options") == Some("nosniff"),
                    "x-content-type-options: nosniff",
                )?;
                want(
                    s.resp.header("x-frame-options") == Some("SAMEORIGIN"),
                    "x-frame-options: SAMEORIGIN",
                )
            },
        }),
    },
    Step {
        plugin: "header-injection",
        title: "a correlation id and a W3C traceparent are created and forwarded upstream",
        action: Action::Request(Req {
            method: "GET",
            path: "/public/orders",
            headers: &[],
            show: &["x-correlation-id"],
            show_upstream: &["x-correlation-id", "traceparent"],
            check: |s| {
                let id = s.resp.header("x-correlation-id");
                want(id.is_some(), "x-correlation-id on the response")?;
                want(
                    s.upstream("x-correlation-id") == id,
                    "the upstream saw the same x-correlation-id",
                )?;
                want(
                    s.upstream("traceparent").is_some_and(is_traceparent),
                    "a valid traceparent upstream",
                )
            },
        }),
    },
    Step {
        plugin: "header-injection",
        title: "a CORS preflight is answered at the edge, before authentication; the upstream never sees it",
        action: Action::Request(Req {
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
        }),
    },
    Step {
        plugin: "header-injection",
        title: "identity headers sent by the client are removed (any case, `_` variants)",
        action: Action::Request(Req {
            method: "GET",
            path: "/public/orders",
            headers: &[
                ("x-user-id", "admin"),
                ("x_user_id", "admin"),
                ("x-user-roles", "admin"),
            ],
            show: &[],
            show_upstream: &["x-user-id", "x_user_id", "x-user-roles", "x-auth-status"],
            check: |s| {
                want(s.reached, "the request reached the upstream")?;
                let leaked = s
                    .upstream_headers
                    .iter()
                    .any(|(n, _)| n.replace('_', "-").starts_with("x-user-"));
                want(!leaked, "no x-user-* header upstream")?;
                want(
                    s.upstream("x-auth-status") == Some("anonymous"),
                    "x-auth-status: anonymous upstream (jwt-rbac, /public/ is open)",
                )
            },
        }),
    },
    Step {
        plugin: "jwt-rbac",
        title: "the demo issuer mints an ES256 token; jwt-rbac fetches its JWKS through Envoy",
        action: Action::Custom(mint_token),
    },
    Step {
        plugin: "jwt-rbac",
        title: "no token: 401 with a WWW-Authenticate challenge and a reason code",
        action: Action::Request(Req {
            method: "GET",
            path: "/api/orders",
            headers: &[],
            show: &["www-authenticate"],
            show_upstream: &[],
            check: |s| {
                want(s.resp.status == 401, "status 401")?;
                want(
                    s.resp
                        .header("www-authenticate")
                        .is_some_and(|v| v.starts_with("Bearer realm=\"demo\"")),
                    "www-authenticate: Bearer realm=\"demo\"",
                )?;
                want(
                    s.body_json()["reason"] == "token_missing",
                    "reason token_missing in the body",
                )?;
                want(!s.reached, "the upstream received no request")
            },
        }),
    },
    Step {
        plugin: "jwt-rbac",
        title: "a valid token: 200, and the upstream sees the verified identity, not the spoofed one",
        action: Action::Request(Req {
            method: "GET",
            path: "/api/orders",
            headers: &[AUTH, ("x-user-id", "admin")],
            show: &[],
            show_upstream: &[
                "x-user-id",
                "x-user-email",
                "x-user-roles",
                "x-auth-status",
                "x-auth-method",
                "authorization",
            ],
            check: |s| {
                want(s.resp.status == 200, "status 200")?;
                want(s.upstream("x-user-id") == Some("alice"), "x-user-id: alice")?;
                want(
                    s.upstream("x-user-roles") == Some("reader"),
                    "x-user-roles: reader",
                )?;
                want(
                    s.upstream("x-auth-status") == Some("verified"),
                    "x-auth-status: verified",
                )?;
                want(
                    s.upstream("authorization").is_none(),
                    "the token is not forwarded upstream",
                )
            },
        }),
    },
    Step {
        plugin: "jwt-rbac",
        title: "a valid token without the role `admin` on /admin/: 403 insufficient_scope",
        action: Action::Request(Req {
            method: "GET",
            path: "/admin/users",
            headers: &[AUTH],
            show: &["www-authenticate"],
            show_upstream: &[],
            check: |s| {
                want(s.resp.status == 403, "status 403")?;
                want(
                    s.resp
                        .header("www-authenticate")
                        .is_some_and(|v| v.contains("error=\"insufficient_scope\"")),
                    "www-authenticate with error=\"insufficient_scope\"",
                )?;
                want(
                    s.body_json()["reason"] == "insufficient_role",
                    "reason insufficient_role in the body",
                )?;
                want(!s.reached, "the upstream received no request")
            },
        }),
    },
    Step {
        plugin: "ratelimit-shared-data",
        title: "a burst on /api/search: 5 admitted per user, then 429 with RateLimit and Retry-After",
        action: Action::Custom(burst),
    },
    Step {
        plugin: "circuit-breaker",
        title: "the upstream fails: the breaker opens and the fallback answers; the upstream is spared",
        action: Action::Custom(trip_breaker),
    },
    Step {
        plugin: "audit-log",
        title: "one audit record per request of this walkthrough reached the collector; the hash chains verify",
        action: Action::Custom(audit_records),
    },
];

/// The demo token; shows its claims and the JWKS.
fn mint_token(demo: &mut Demo) -> Result<(), String> {
    let auth = demo.ports.auth;
    println!("  $ TOKEN=$(curl -s 'http://127.0.0.1:{auth}/token?sub=alice&roles=reader')");
    println!("  $ curl -s http://127.0.0.1:{auth}/.well-known/jwks.json");
    let resp = http::request(local(auth), "GET", "/token?sub=alice&roles=reader", &[], "")
        .map_err(|e| format!("a token from the issuer ({e:#})"))?;
    want(resp.status == 200, "200 from the issuer's /token")?;
    let token = resp.body.trim().to_string();
    let parts: Vec<&str> = token.split('.').collect();
    want(parts.len() == 3, "a compact JWT (three parts)")?;
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1])
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .ok_or("a JSON payload in the token")?;
    println!("  token claims: {claims}");
    let jwks = http::request(local(auth), "GET", "/.well-known/jwks.json", &[], "")
        .map_err(|e| format!("the JWKS ({e:#})"))?;
    let kid = serde_json::from_str::<Value>(&jwks.body)
        .ok()
        .and_then(|j| j["keys"][0]["kid"].as_str().map(str::to_string))
        .ok_or("a JWKS with one key")?;
    println!(
        "  JWKS: one EC P-256 key, kid {kid} (drawn when the issuer started; demo only, never stored)"
    );
    demo.token = token;
    Ok(())
}

/// A bounded burst on the rate-limited path.
fn burst(demo: &mut Demo) -> Result<(), String> {
    const BURST: usize = 8;
    println!(
        "  $ for i in $(seq {BURST}); do curl -s -o /dev/null -w '%{{http_code}} ' -H \"authorization: Bearer $TOKEN\" http://127.0.0.1:{}/api/search; done; echo",
        demo.ports.listener
    );
    println!("  $ {}", demo.curl("GET", "/api/search", &[AUTH]));
    let mut statuses = Vec::new();
    let mut first_ok = None;
    let mut first_refused = None;
    for _ in 0..BURST {
        let resp = demo
            .send("GET", "/api/search", &[AUTH])
            .map_err(|e| format!("an answer ({e:#})"))?;
        statuses.push(resp.status);
        if resp.status == 200 && first_ok.is_none() {
            first_ok = Some(resp);
        } else if resp.status == 429 && first_refused.is_none() {
            first_refused = Some(resp);
        }
    }
    let shown: Vec<String> = statuses.iter().map(u16::to_string).collect();
    println!("  statuses: {}", shown.join(" "));
    if let Some(ok) = &first_ok {
        println!("  first 200:");
        for name in ["ratelimit-policy", "ratelimit", "x-ratelimit-remaining"] {
            println!("    < {name}: {}", ok.header(name).unwrap_or("(absent)"));
        }
    }
    let refused = first_refused.ok_or("at least one 429")?;
    println!("  first 429:");
    for name in ["retry-after", "ratelimit-policy", "ratelimit"] {
        println!(
            "    < {name}: {}",
            refused.header(name).unwrap_or("(absent)")
        );
    }
    println!("    body: {}", refused.body.trim());
    let admitted = statuses.iter().filter(|s| **s == 200).count();
    // 5 at once; one more if the burst took over 2 s (one token every 2 s).
    want(
        (5..=6).contains(&admitted),
        &format!("5 admitted (6 if the burst was slow), not {admitted}"),
    )?;
    want(
        statuses[..5].iter().all(|s| *s == 200),
        "the first 5 admitted",
    )?;
    want(
        refused.header("retry-after").is_some(),
        "retry-after on the 429",
    )?;
    want(
        refused
            .header("ratelimit")
            .is_some_and(|v| v.contains("r=0")),
        "ratelimit: ...;r=0 on the 429",
    )?;
    want(
        refused.header("ratelimit-policy").is_some(),
        "ratelimit-policy on the 429",
    )?;
    let body: Value = serde_json::from_str(&refused.body).unwrap_or(Value::Null);
    want(
        body["error"] == "rate_limited",
        "{\"error\":\"rate_limited\"} in the 429 body",
    )
}

/// The breaker's metrics, as admin /stats shows them.
fn breaker_stats(admin: u16) -> Vec<String> {
    http::request(
        local(admin),
        "GET",
        "/stats?filter=circuit_breaker.upstream",
        &[],
        "",
    )
    .map(|r| r.body.lines().map(str::to_string).collect())
    .unwrap_or_default()
}

/// Failing upstream answers trip the breaker; then the fallback answers without the upstream.
fn trip_breaker(demo: &mut Demo) -> Result<(), String> {
    const MAX_FAILING: usize = 6;
    const WHILE_OPEN: usize = 3;
    let failing = [AUTH, ("x-echo-status", "503")];
    println!(
        "  $ for i in $(seq {MAX_FAILING}); do curl -s -o /dev/null -w '%{{http_code}} ' -H \"authorization: Bearer $TOKEN\" -H 'x-echo-status: 503' http://127.0.0.1:{}/api/orders; done; echo",
        demo.ports.listener
    );
    println!("  $ {}", demo.curl("GET", "/api/orders", &[AUTH]));
    println!(
        "  $ curl -s http://127.0.0.1:{}/__upstream/stats",
        demo.ports.upstream
    );
    println!(
        "  $ curl -s http://127.0.0.1:{}/stats | grep circuit_breaker",
        demo.ports.admin
    );
    let count = |d: &Demo| {
        d.upstream_count()
            .map_err(|e| format!("upstream stats ({e:#})"))
    };
    let mut seen = Vec::new();
    let mut upstream_failures = 0;
    let mut tripped = false;
    for _ in 0..MAX_FAILING {
        let before = count(demo)?;
        let resp = demo
            .send("GET", "/api/orders", &failing)
            .map_err(|e| format!("an answer ({e:#})"))?;
        let reached = count(demo)? > before;
        if resp.header("x-served-by") == Some("fallback") {
            seen.push(format!("{} (fallback)", resp.status));
            tripped = true;
            break;
        }
        seen.push(format!(
            "{}{}",
            resp.status,
            if reached { " (upstream)" } else { "" }
        ));
        if resp.status == 503 && reached {
            upstream_failures += 1;
        }
    }
    println!(
        "  with x-echo-status: 503: {} (the walkthrough stops at the first fallback; the loop above \
         goes on: 503 503 503 200 200 200)",
        seen.join(", ")
    );
    want(upstream_failures >= 1, "503s from the upstream first")?;
    want(
        tripped,
        &format!("the fallback within {MAX_FAILING} failing requests"),
    )?;
    let before = count(demo)?;
    let mut fallback = None;
    for _ in 0..WHILE_OPEN {
        let resp = demo
            .send("GET", "/api/orders", &[AUTH])
            .map_err(|e| format!("an answer ({e:#})"))?;
        if resp.header("x-served-by") != Some("fallback") {
            return Err(format!(
                "the fallback while open, got {} {}",
                resp.status,
                resp.body.trim()
            ));
        }
        fallback = Some(resp);
    }
    let after = count(demo)?;
    if let Some(f) = &fallback {
        println!(
            "  then {WHILE_OPEN} healthy requests while open: {} x-served-by: fallback",
            f.status
        );
        println!("    body: {}", f.body.trim());
    }
    println!("  upstream request count: {before} before, {after} after");
    for line in breaker_stats(demo.ports.admin) {
        if line.contains(".state:") || line.contains(".trips:") || line.contains(".rejected:") {
            println!("    {line}");
        }
    }
    want(
        after == before,
        "the upstream count unchanged while the breaker is open",
    )?;
    println!(
        "  (the breaker stays open 10 s, then one probe decides: closed again if it succeeds)"
    );
    println!(
        "  (Envoy's own route timeout, 5 s, and retry_policy, connection failures and resets only,\n   run in the router after the breaker: it sees one outcome per client request)"
    );
    Ok(())
}

/// Waits for the collector to hold a record of every request, then verifies the chains.
fn audit_records(demo: &mut Demo) -> Result<(), String> {
    let collector = demo.ports.collector;
    println!("  $ curl -s http://127.0.0.1:{collector}/__collector/records > audit.ndjson");
    println!("  $ cargo xtask audit-verify audit.ndjson");
    println!(
        "  (this run's copy, written by the collector: cargo xtask audit-verify {})",
        demo.audit_file.display()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut records = 0;
    loop {
        if let Ok(r) = http::request(local(collector), "GET", "/__collector/stats", &[], "") {
            if let Ok(v) = serde_json::from_str::<Value>(&r.body) {
                records = v["records"].as_u64().unwrap_or(0);
            }
        }
        if records >= demo.sent || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "  {records} records at the collector for {} requests through the gateway",
        demo.sent
    );
    let text = std::fs::read_to_string(&demo.audit_file)
        .map_err(|e| format!("the audit file {} ({e})", demo.audit_file.display()))?;
    let report = audit_log::chain::verify(&text);
    for (chain, c) in &report.chains {
        match &c.first_error {
            None => println!("    chain {chain}: {} records, intact", c.records),
            Some(e) => println!("    chain {chain}: {} records, BROKEN: {e}", c.records),
        }
    }
    let parsed: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let statuses: std::collections::BTreeSet<u64> =
        parsed.iter().filter_map(|r| r["status"].as_u64()).collect();
    let shown: Vec<String> = statuses.iter().map(u64::to_string).collect();
    println!("    statuses recorded: {}", shown.join(", "));
    if let Some(r) = parsed
        .iter()
        .find(|r| r["identity"]["subject"] == "alice" && r["status"] == 200)
    {
        println!(
            "    e.g. {} {} -> {}: identity {}, decisions {}",
            r["method"].as_str().unwrap_or("?"),
            r["path"].as_str().unwrap_or("?"),
            r["status"],
            r["identity"],
            r["decisions"]
        );
    }
    if let Some(r) = parsed.iter().find(|r| r["status"] == 403) {
        println!(
            "    e.g. {} {} -> 403 (jwt-rbac answered; read in on_log): decisions {}",
            r["method"].as_str().unwrap_or("?"),
            r["path"].as_str().unwrap_or("?"),
            r["decisions"]
        );
    }
    if let Some(r) = parsed.iter().find(|r| r["status"] == 429) {
        println!(
            "    e.g. {} {} -> 429: decisions {}",
            r["method"].as_str().unwrap_or("?"),
            r["path"].as_str().unwrap_or("?"),
            r["decisions"]
        );
    }
    want(
        records == demo.sent,
        &format!("{} records, one per request", demo.sent),
    )?;
    want(report.malformed.is_empty(), "no malformed record")?;
    want(report.ok(), "every chain intact")?;
    for status in [200, 401, 403, 429] {
        want(
            statuses.contains(&status),
            &format!("a record with status {status}"),
        )?;
    }
    want(
        parsed
            .iter()
            .any(|r| r["identity"]["subject"] == "alice" && r["decisions"]["auth"] == "verified"),
        "a record with identity alice, auth verified",
    )?;
    // jwt-rbac's refusals never pass back through audit-log (behind it in the chain); their
    // records take the status and challenge from the response Envoy keeps for the log phase.
    // The record keeps the challenge's reason code: token_missing for a 401 without a token.
    for (status, code) in [(401, "token_missing"), (403, "insufficient_role")] {
        want(
            parsed
                .iter()
                .any(|r| r["status"] == status && r["decisions"]["auth_reason"] == code),
            &format!("a {status} record with decisions auth_reason {code}"),
        )?;
    }
    // audit-log runs before ratelimit-shared-data, so its response callback runs after
    // ratelimit's: a 429 is recorded with the headers ratelimit set on it.
    want(
        parsed.iter().any(|r| {
            r["status"] == 429
                && r["decisions"]["ratelimit"] == "limited"
                && r["decisions"]["ratelimit_remaining"] == "0"
        }),
        "a 429 record with decisions ratelimit: limited, ratelimit_remaining: \"0\"",
    )?;
    // The breaker's fallback answers are recorded with its marker, read in on_log after the
    // breaker set it (and no upstream address: Envoy answered them itself).
    want(
        parsed.iter().any(|r| {
            r["path"] == "/api/orders"
                && r["status"] == 200
                && r["upstream"]["address"].is_null()
                && r["decisions"]["breaker"] == "open"
        }),
        "a record of a fallback answer (/api/orders, 200, no upstream address, decisions breaker: open)",
    )?;
    // A client's own copy of the marker never makes it into a record.
    want(
        parsed
            .iter()
            .filter(|r| r["decisions"]["breaker"].is_string())
            .all(|r| r["upstream"]["address"].is_null()),
        "decisions.breaker only on answers that did not reach the upstream",
    )?;
    want(
        !demo.token.is_empty() && !text.contains(&demo.token),
        "the token never appears in a record",
    )
}

/// Runs a single-request step and prints what was seen.
fn run_request(demo: &mut Demo, req: &Req) -> Result<(), String> {
    println!("  $ {}", demo.curl(req.method, req.path, req.headers));
    let before = demo.upstream_count().map_err(|e| format!("{e:#}"))?;
    let resp = demo
        .send(req.method, req.path, req.headers)
        .map_err(|e| format!("an answer ({e:#})"))?;
    let reached = demo.upstream_count().map_err(|e| format!("{e:#}"))? > before;
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
    let seen = Seen {
        resp,
        reached,
        upstream_headers,
    };
    println!(
        "  status {}; reached upstream: {}",
        seen.resp.status,
        if seen.reached { "yes" } else { "no" }
    );
    for name in req.show {
        println!(
            "  < {name}: {}",
            seen.resp.header(name).unwrap_or("(absent)")
        );
    }
    if !seen.reached && seen.resp.status >= 400 {
        println!("  body: {}", seen.resp.body.trim());
    }
    for name in req.show_upstream {
        let value = seen.upstream(name).unwrap_or("(absent)");
        println!("  upstream saw {name}: {value}");
    }
    (req.check)(&seen)
}

/// The config Envoy runs: the yaml itself, or a copy with busy ports replaced.
fn demo_config(meta_target: &Path, file: &str) -> Result<(PathBuf, Ports)> {
    let original = workspace::root().join("envoy-demo").join(file);
    let mut yaml = std::fs::read_to_string(&original)
        .with_context(|| format!("cannot read {}", original.display()))?;
    let mut used = [0u16; 5];
    let mut rewritten = false;
    for (i, (fixed, role)) in FIXED_PORTS.iter().enumerate() {
        used[i] = *fixed;
        let line = format!("port_value: {fixed}\n");
        if yaml.matches(&line).count() != 1 {
            bail!(
                "{} must contain `{}` exactly once",
                original.display(),
                line.trim()
            );
        }
        if envoy::port_is_free(*fixed) {
            continue;
        }
        let port = envoy::free_port()?;
        println!("port {fixed} ({role}) is busy: using {port} instead");
        yaml = yaml.replace(&line, &format!("port_value: {port}\n"));
        used[i] = port;
        rewritten = true;
    }
    let ports = Ports {
        listener: used[0],
        admin: used[1],
        upstream: used[2],
        auth: used[3],
        collector: used[4],
    };
    if !rewritten {
        return Ok((original, ports));
    }
    let copy = meta_target.join("xtask-demo").join(file);
    std::fs::write(&copy, yaml)?;
    println!("running a copy with those ports: {}", copy.display());
    Ok((copy, ports))
}

/// Waits (at most 20 s) until jwt-rbac has fetched the issuer's JWKS once, as Envoy's stats
/// show it, so that the first step needing a key does not depend on how fast that went.
/// The walkthrough goes on either way; a step that needs the keys then says what it got.
fn wait_for_first_jwks(admin: SocketAddr) {
    const STAT: &str = "wasmcustom.jwt_rbac.jwks_fetch_ok";
    let started = std::time::Instant::now();
    let deadline = started + std::time::Duration::from_secs(20);
    loop {
        let fetched = http::request(admin, "GET", &format!("/stats?filter={STAT}"), &[], "")
            .ok()
            .and_then(|r| {
                r.body.lines().find_map(|l| {
                    l.strip_prefix(STAT)?
                        .strip_prefix(": ")?
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
            })
            .unwrap_or(0);
        if fetched > 0 {
            println!(
                "jwt-rbac fetched the issuer's JWKS ({} ms after Envoy was ready)",
                started.elapsed().as_millis()
            );
            return;
        }
        if std::time::Instant::now() > deadline {
            println!("jwt-rbac has not fetched the issuer's JWKS after 20 s; going on");
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

pub fn run(args: &[String]) -> Result<()> {
    let mut once = false;
    let mut file = "envoy.yaml";
    for a in args {
        match a.as_str() {
            "--once" => once = true,
            "--suite" => file = "envoy-suite.yaml",
            other => bail!("demo: unknown argument `{other}` (only --once, --suite)"),
        }
    }
    banner("demo: build and install");
    dist::run()?;
    let envoy_bin = tools::ensure_envoy()?;
    let upstream_bin = envoy::build_upstream()?;
    let target_dir = workspace::metadata()?.target_dir;
    let work = target_dir.join("xtask-demo");
    std::fs::create_dir_all(&work)?;
    let (config, ports) = demo_config(&target_dir, file)?;
    println!("Envoy config: envoy-demo/{file}");
    let ports_file = target_dir.join(PORTS_FILE);
    std::fs::write(&ports_file, ports_env(&ports))
        .with_context(|| format!("cannot write {}", ports_file.display()))?;
    let source_line = format!(". {}", shown(&ports_file));
    println!(
        "ports of this run: {} (in another shell: {source_line})",
        ports_file.display()
    );

    banner("demo: start the demo upstream (echo, token issuer, audit collector) and Envoy");
    let audit_file = work.join("audit.ndjson");
    let _ = std::fs::remove_file(&audit_file);
    let service_args: Vec<String> = vec![
        "--listen".into(),
        local(ports.upstream).to_string(),
        "--auth-listen".into(),
        local(ports.auth).to_string(),
        "--collector-listen".into(),
        local(ports.collector).to_string(),
        "--collector-file".into(),
        audit_file.display().to_string(),
    ];
    let _services = envoy::start_service(
        "demo upstream",
        &upstream_bin,
        &service_args,
        &[
            (local(ports.upstream), "/__upstream/stats"),
            (local(ports.auth), "/.well-known/jwks.json"),
            (local(ports.collector), "/__collector/stats"),
        ],
        None,
    )?;
    println!(
        "echo upstream:   http://127.0.0.1:{}  (GET /__upstream/stats)",
        ports.upstream
    );
    println!(
        "token issuer:    http://127.0.0.1:{}  (GET /token, GET /.well-known/jwks.json; demo only)",
        ports.auth
    );
    println!(
        "audit collector: http://127.0.0.1:{}  (GET /__collector/records; also written to {})",
        ports.collector,
        audit_file.display()
    );
    let log = work.join("envoy.log");
    let mut envoy_proc =
        envoy::start_envoy(&envoy_bin, &config, local(ports.admin), 2, &log, None)?;
    println!(
        "envoy:           http://127.0.0.1:{}  (admin http://127.0.0.1:{}, config {}, log {})",
        ports.listener,
        ports.admin,
        config.display(),
        log.display()
    );

    wait_for_first_jwks(local(ports.admin));

    let mut demo = Demo {
        ports,
        token: String::new(),
        sent: 0,
        audit_file,
    };
    let mut failed = Vec::new();
    let mut plugin = "";
    for (i, step) in STEPS.iter().enumerate() {
        if step.plugin != plugin {
            plugin = step.plugin;
            banner(&format!("demo: {plugin}"));
        }
        println!("\n[{}] {}", i + 1, step.title);
        let outcome = match &step.action {
            Action::Request(req) => run_request(&mut demo, req),
            Action::Custom(f) => f(&mut demo),
        };
        match outcome {
            Ok(()) => println!("  ok"),
            Err(why) => {
                println!("  FAILED: expected {why}");
                failed.push(step.title);
            }
        }
    }
    banner("demo: summary");
    let plugins: std::collections::BTreeSet<&str> = STEPS.iter().map(|s| s.plugin).collect();
    if failed.is_empty() {
        let how = if file == "envoy.yaml" {
            "in one chain"
        } else {
            "as one gateway-suite filter"
        };
        println!(
            "all {} walkthrough steps held: {} plugins {how} ({})",
            STEPS.len(),
            plugins.len(),
            plugins.into_iter().collect::<Vec<_>>().join(", ")
        );
    } else {
        println!("{} of {} steps FAILED:", failed.len(), STEPS.len());
        for f in &failed {
            println!("  - {f}");
        }
        println!("Envoy's log: {}", log.display());
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
    println!(
        "\nIn another shell, the ports of this run and a token for them:\n\n  {source_line}\n  \
         TOKEN=$(curl -sf \"http://127.0.0.1:$DEMO_ISSUER/token?sub=alice&roles=reader\")\n"
    );
    envoy_proc.wait()
}

/// `ports` as shell variables, for `. target/demo-ports.env`.
fn ports_env(ports: &Ports) -> String {
    format!(
        "# The ports of the running `cargo xtask demo` (it rewrites this file when it starts).\n\
         DEMO_LISTENER={}\nDEMO_ADMIN={}\nDEMO_UPSTREAM={}\nDEMO_ISSUER={}\nDEMO_COLLECTOR={}\n",
        ports.listener, ports.admin, ports.upstream, ports.auth, ports.collector
    )
}

/// `path` relative to the current directory when it is under it (`target/demo-ports.env` from
/// the checkout), else as it is.
fn shown(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ports_file_sets_every_port_the_guide_reads() {
        let env = ports_env(&Ports {
            listener: 10000,
            admin: 9901,
            upstream: 41000,
            auth: 41001,
            collector: 41002,
        });
        for line in [
            "DEMO_LISTENER=10000",
            "DEMO_ADMIN=9901",
            "DEMO_UPSTREAM=41000",
            "DEMO_ISSUER=41001",
            "DEMO_COLLECTOR=41002",
        ] {
            assert!(env.lines().any(|l| l == line), "{line}");
        }
        // Section 2 of the Envoy guide runs in a second shell: it reads the ports from the file
        // and names none of the fixed ones (with them taken, it reached another process).
        let guide =
            std::fs::read_to_string(workspace::root().join("docs/getting-started-envoy.md"))
                .unwrap();
        let section = guide.split("\n## ").find(|s| s.starts_with("2. ")).unwrap();
        assert!(section.contains(&format!(". target/{PORTS_FILE}")));
        for (port, role) in FIXED_PORTS {
            assert!(!section.contains(&format!(":{port}")), "{role} port {port}");
        }
        for var in [
            "DEMO_LISTENER",
            "DEMO_ADMIN",
            "DEMO_ISSUER",
            "DEMO_COLLECTOR",
        ] {
            assert!(section.contains(&format!("${var}")), "{var}");
            assert!(env.contains(&format!("{var}=")), "{var}");
        }
    }

    #[test]
    fn every_plugin_has_its_steps_together() {
        // Chain order, but audit-log last: its step checks the records of all the others.
        let walkthrough = [
            "header-injection",
            "jwt-rbac",
            "ratelimit-shared-data",
            "circuit-breaker",
            "audit-log",
        ];
        let mut order: Vec<&str> = STEPS.iter().map(|s| s.plugin).collect();
        order.dedup();
        assert_eq!(order, walkthrough);
    }

    #[test]
    fn the_yaml_has_each_fixed_port_once() {
        for file in ["envoy.yaml", "envoy-suite.yaml"] {
            let yaml = std::fs::read_to_string(workspace::root().join("envoy-demo").join(file))
                .expect(file);
            for (port, role) in FIXED_PORTS {
                assert_eq!(
                    yaml.matches(&format!("port_value: {port}\n")).count(),
                    1,
                    "{file}: {role}"
                );
            }
        }
    }

    /// envoy-suite.yaml is envoy.yaml with the five filters as one: the same plugin configs, as
    /// the suite's sections, and the same everything else.
    #[test]
    fn the_suite_yaml_runs_the_chains_configs() {
        let read = |f: &str| -> Value {
            let text =
                std::fs::read_to_string(workspace::root().join("envoy-demo").join(f)).expect(f);
            serde_norway::from_str(&text).expect(f)
        };
        let chain = read("envoy.yaml");
        let suite = read("envoy-suite.yaml");
        let filters = |v: &Value| -> Vec<Value> {
            v["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
                ["http_filters"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        };
        let config_of = |f: &Value| -> Value {
            let text = f["typed_config"]["config"]["configuration"]["value"]
                .as_str()
                .unwrap_or("null");
            serde_json::from_str(text).expect("a JSON configuration")
        };
        let mut sections = serde_json::Map::new();
        for f in filters(&chain) {
            if let Some(name) = f["name"].as_str().filter(|n| !n.starts_with("envoy.")) {
                sections.insert(name.replace('-', "_"), config_of(&f));
            }
        }
        let suite_filters = filters(&suite);
        assert_eq!(suite_filters.len(), 2, "gateway-suite and the router");
        assert_eq!(config_of(&suite_filters[0]), Value::Object(sections));
        let without_filters = |mut v: Value| {
            v["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
                ["typed_config"]["http_filters"] = Value::Null;
            v
        };
        assert_eq!(without_filters(chain), without_filters(suite));
    }

    #[test]
    fn curl_lines_quote_the_token_for_the_shell() {
        let demo = Demo {
            ports: Ports {
                listener: 10000,
                admin: 9901,
                upstream: 8080,
                auth: 8081,
                collector: 8082,
            },
            token: "secret".into(),
            sent: 0,
            audit_file: PathBuf::new(),
        };
        assert_eq!(
            demo.curl("OPTIONS", "/a", &[AUTH, ("x-a", "1")]),
            "curl -si http://127.0.0.1:10000/a -X OPTIONS -H \"authorization: Bearer $TOKEN\" -H 'x-a: 1'"
        );
        assert!(is_traceparent(
            "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01"
        ));
        assert!(!is_traceparent("00-xyz-0123456789abcdef-01"));
    }
}

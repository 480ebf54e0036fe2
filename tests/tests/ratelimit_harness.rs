//! ratelimit-shared-data in the wasmtime harness: several workers over one shared-data store, a
//! virtual clock, both host profiles. Bucket and window arithmetic, refill, burst, multi-rule,
//! exemptions, shadow mode, a missing key part, slot exhaustion, a forced CRC32 key collision,
//! workers racing on one key on threads (admitted == limit exactly), and a million distinct
//! clients within the bound.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use host_harness::{Action, Harness, LogLevel, Profile};
use serde_json::{json, Value};

const PROFILES: [Profile; 2] = [Profile::Envoy, Profile::Kong];
const PLUGIN: &str = "ratelimit-shared-data";

fn harness(profile: Profile, workers: usize, config: &Value) -> Harness {
    let h = Harness::builder()
        .profile(profile)
        .plugin_config(config.to_string())
        .workers(workers)
        .build_from_file(suite_tests::paths::plugin_wasm(PLUGIN).unwrap())
        .unwrap();
    assert!(h.configure().unwrap(), "{:?}", h.logs_at(LogLevel::Error));
    h
}

/// What one request got.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    admitted: bool,
    status: u32,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One request from `ip` on `worker` with extra headers; the upstream answers 200.
fn call(h: &Harness, worker: usize, ip: &str, path: &str, extra: &[(&str, &str)]) -> Answer {
    let mut s = h.worker(worker).stream().unwrap();
    s.set_property("source.address", format!("{ip}:40000"))
        .unwrap();
    let mut headers = vec![(":method", "GET"), (":path", path), (":authority", "api")];
    headers.extend_from_slice(extra);
    let action = s.send_request_headers(&headers, true).unwrap();
    let answer = match s.local_response() {
        Some(r) => {
            assert_eq!(action, Action::Pause);
            Answer {
                admitted: false,
                status: r.status,
                headers: r
                    .headers
                    .iter()
                    .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned()))
                    .collect(),
                body: String::from_utf8_lossy(&r.body).into_owned(),
            }
        }
        None => {
            assert_eq!(action, Action::Continue);
            s.send_response_headers(&[(":status", "200")], true)
                .unwrap();
            Answer {
                admitted: true,
                status: 200,
                headers: s
                    .response_headers()
                    .iter()
                    .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned()))
                    .collect(),
                body: String::new(),
            }
        }
    };
    s.finish().unwrap();
    answer
}

/// `n` requests alternating over the workers; how many were admitted.
fn burst(h: &Harness, workers: usize, ip: &str, path: &str, n: usize) -> usize {
    (0..n)
        .filter(|i| call(h, i % workers, ip, path, &[]).admitted)
        .count()
}

fn metric(h: &Harness, name: &str) -> i64 {
    h.metric(name).map_or(0, |m| m.value)
}

fn per_ip_bucket(capacity: u32, refill_tokens: u32, interval_ms: u64) -> Value {
    json!({"rules": [{"name": "per-ip", "key": ["client_ip"],
        "token_bucket": {"capacity": capacity, "refill_tokens": refill_tokens,
                         "refill_interval_ms": interval_ms}}]})
}

#[test]
fn token_bucket_burst_and_refill_on_the_virtual_clock() {
    for profile in PROFILES {
        let h = harness(profile, 3, &per_ip_bucket(5, 1, 1000));
        assert_eq!(burst(&h, 3, "192.0.2.1", "/", 12), 5, "{profile:?}");
        let refused = call(&h, 1, "192.0.2.1", "/", &[]);
        assert_eq!(refused.status, 429);
        assert_eq!(refused.header("retry-after"), Some("1"));
        assert_eq!(refused.header("ratelimit"), Some("\"per-ip\";r=0;t=1"));
        assert_eq!(
            refused.header("ratelimit-policy"),
            Some("\"per-ip\";q=5;w=5")
        );
        let body: Value = serde_json::from_str(&refused.body).unwrap();
        assert_eq!(body["error"], "rate_limited");
        assert_eq!(body["policy"], "per-ip");
        // 2.5 s: two tokens.
        h.advance_clock(Duration::from_millis(2500)).unwrap();
        assert_eq!(burst(&h, 3, "192.0.2.1", "/", 6), 2, "{profile:?}");
        // A long pause refills to capacity, never more.
        h.advance_clock(Duration::from_secs(3600)).unwrap();
        assert_eq!(burst(&h, 3, "192.0.2.1", "/", 20), 5, "{profile:?}");
        // Another client has its own bucket.
        assert_eq!(burst(&h, 3, "192.0.2.2", "/", 20), 5, "{profile:?}");
        assert_eq!(metric(&h, "ratelimit.allowed"), 17);
        assert_eq!(metric(&h, "ratelimit.limited"), 12 - 5 + 1 + 4 + 15 + 15);
    }
}

#[test]
fn admitted_responses_carry_remaining_quota() {
    for profile in PROFILES {
        let mut config = per_ip_bucket(3, 3, 60_000);
        config["headers"] = json!({"x_ratelimit": true});
        let h = harness(profile, 2, &config);
        let first = call(&h, 0, "192.0.2.9", "/", &[]);
        assert_eq!(first.header("ratelimit"), Some("\"per-ip\";r=2;t=20"));
        assert_eq!(first.header("x-ratelimit-limit"), Some("3"));
        assert_eq!(first.header("x-ratelimit-remaining"), Some("2"));
        let second = call(&h, 1, "192.0.2.9", "/", &[]);
        assert_eq!(second.header("x-ratelimit-remaining"), Some("1"));
    }
}

#[test]
fn sliding_window_arithmetic() {
    for profile in PROFILES {
        let config = json!({"rules": [{"name": "w", "key": ["client_ip"],
            "window": {"limit": 4, "seconds": 60}}]});
        let h = harness(profile, 2, &config);
        assert_eq!(burst(&h, 2, "192.0.2.1", "/", 10), 4, "{profile:?}");
        // Retry after: into the next window until the previous 4 weigh 3 (15 s in).
        h.advance_clock(Duration::from_secs(20)).unwrap();
        let refused = call(&h, 0, "192.0.2.1", "/", &[]);
        assert_eq!(refused.header("retry-after"), Some("55"), "{profile:?}");
        // 40 s into the next window: previous weighs 4 * 20/60 = 1.33, so 2 more fit.
        h.advance_clock(Duration::from_secs(80)).unwrap();
        assert_eq!(burst(&h, 2, "192.0.2.1", "/", 10), 2, "{profile:?}");
        // Two windows later: all 4 again.
        h.advance_clock(Duration::from_secs(120)).unwrap();
        assert_eq!(burst(&h, 2, "192.0.2.1", "/", 10), 4, "{profile:?}");
    }
}

#[test]
fn no_rule_spends_a_token_when_another_refuses() {
    for profile in PROFILES {
        let config = json!({"rules": [
            {"name": "client", "key": ["client_ip"], "window": {"limit": 5, "seconds": 60}},
            {"name": "scarce", "match": {"path": {"prefix": "/scarce"}}, "key": [{"constant": "all"}],
             "window": {"limit": 2, "seconds": 60}}
        ]});
        let h = harness(profile, 2, &config);
        assert_eq!(burst(&h, 2, "192.0.2.1", "/scarce", 8), 2, "{profile:?}");
        let refused = call(&h, 0, "192.0.2.1", "/scarce", &[]);
        assert_eq!(refused.header("ratelimit"), Some("\"scarce\";r=0;t=90"));
        // The client rule spent only the 2 admitted requests.
        assert_eq!(burst(&h, 2, "192.0.2.1", "/other", 10), 3, "{profile:?}");
        // The most restrictive rule's headers on an admitted response.
        let h = harness(profile, 2, &config);
        let first = call(&h, 0, "192.0.2.1", "/scarce", &[]);
        assert_eq!(first.header("ratelimit"), Some("\"scarce\";r=1;t=60"));
    }
}

#[test]
fn exemptions_by_client_cidr_and_role() {
    for profile in PROFILES {
        let mut config = per_ip_bucket(1, 1, 60_000);
        config["exemptions"] = json!({"client_cidrs": ["10.0.0.0/8"],
            "headers": [{"name": "x-user-roles", "values": ["premium", "internal"]}]});
        let h = harness(profile, 2, &config);
        assert_eq!(burst(&h, 2, "10.1.2.3", "/", 10), 10, "{profile:?}");
        let premium = (0..10)
            .filter(|i| {
                call(
                    &h,
                    i % 2,
                    "192.0.2.5",
                    "/",
                    &[("x-user-roles", "reader,premium")],
                )
                .admitted
            })
            .count();
        assert_eq!(premium, 10);
        assert_eq!(burst(&h, 2, "192.0.2.5", "/", 10), 1, "{profile:?}");
        assert_eq!(metric(&h, "ratelimit.exempt"), 20);
    }
}

#[test]
fn leaving_the_identity_header_out_never_escapes_a_per_user_limit() {
    for profile in PROFILES {
        let config = json!({"rules": [{"name": "per-user", "key": [{"header": "x-user-id"}],
            "token_bucket": {"capacity": 3, "refill_tokens": 1, "refill_interval_ms": 60_000}}]});
        let h = harness(profile, 2, &config);
        // Header-less requests from many addresses share one counter: 3 of 10 pass.
        let anonymous = (0..10)
            .filter(|i| call(&h, i % 2, &format!("192.0.2.{i}"), "/", &[]).admitted)
            .count();
        assert_eq!(anonymous, 3, "{profile:?}");
        assert_eq!(metric(&h, "ratelimit.key_missing"), 10, "{profile:?}");
        // A named user, even one named like the marker, still has a counter of their own.
        for user in ["alice", "%-"] {
            let admitted = (0..5)
                .filter(|i| call(&h, i % 2, "192.0.2.1", "/", &[("x-user-id", user)]).admitted)
                .count();
            assert_eq!(admitted, 3, "{profile:?} {user}");
        }
    }
}

#[test]
fn shadow_mode_counts_and_logs_but_never_blocks() {
    for profile in PROFILES {
        let mut config = per_ip_bucket(2, 1, 60_000);
        config["shadow_mode"] = json!(true);
        let h = harness(profile, 2, &config);
        assert_eq!(burst(&h, 2, "192.0.2.1", "/", 10), 10, "{profile:?}");
        assert_eq!(metric(&h, "ratelimit.shadow_limited"), 8);
        assert_eq!(metric(&h, "ratelimit.limited"), 0);
        assert!(h.logged("shadow mode: rule \"per-ip\" would refuse"));
    }
}

#[test]
fn slot_exhaustion_follows_the_policy_and_idle_slots_are_taken_over() {
    for profile in PROFILES {
        let mut config = per_ip_bucket(2, 2, 10_000);
        config["shared_data"] = json!({"slots": 1, "probes": 1, "on_slots_exhausted": "deny"});
        let h = harness(profile, 2, &config);
        assert_eq!(burst(&h, 2, "192.0.2.1", "/", 1), 1);
        // b finds the only slot held by a's live bucket: refused, counted, never merged.
        let refused = call(&h, 1, "192.0.2.2", "/", &[]);
        assert_eq!(refused.status, 429, "{profile:?}");
        assert_eq!(metric(&h, "ratelimit.slots_exhausted"), 1);
        // a still has exactly its one remaining token.
        assert_eq!(burst(&h, 2, "192.0.2.1", "/", 5), 1, "{profile:?}");
        // Once a's bucket is full again (10 s), b takes the slot over.
        h.advance_clock(Duration::from_secs(10)).unwrap();
        assert_eq!(burst(&h, 2, "192.0.2.2", "/", 5), 2, "{profile:?}");
        assert_eq!(metric(&h, "ratelimit.slot_takeovers"), 1);
        assert_eq!(h.shared_data_entries().len(), 1);

        // Default policy: allow, counted.
        let mut config = per_ip_bucket(2, 2, 10_000);
        config["shared_data"] = json!({"slots": 1, "probes": 1});
        let h = harness(profile, 2, &config);
        call(&h, 0, "192.0.2.1", "/", &[]);
        assert!(call(&h, 1, "192.0.2.2", "/", &[]).admitted);
        assert_eq!(metric(&h, "ratelimit.slots_exhausted"), 1);
    }
}

/// `10.226.118.64|8080` and `172.31.45.240|8080` share a CRC32: Kong's shared data would put
/// them in one entry, and they share this plugin's first probe slot on both hosts.
#[test]
fn a_forced_crc32_collision_never_merges_two_clients() {
    let a = "10.226.118.64";
    let b = "172.31.45.240";
    assert_eq!(
        crc32(format!("{a}|8080").as_bytes()),
        crc32(format!("{b}|8080").as_bytes())
    );
    for profile in PROFILES {
        let config = json!({"rules": [{"name": "r", "key": ["client_ip", {"header": "x-port"}],
            "window": {"limit": 3, "seconds": 60}}]});
        let h = harness(profile, 2, &config);
        let port = [("x-port", "8080")];
        let n = |ip: &str| {
            (0..10)
                .filter(|i| call(&h, i % 2, ip, "/", &port).admitted)
                .count()
        };
        assert_eq!(n(a), 3, "{profile:?}");
        assert_eq!(n(b), 3, "{profile:?}: b must have its own counter");
        // Their records are in two slots, each holding its own full key.
        let owners: Vec<String> = h
            .shared_data_entries()
            .iter()
            .filter(|(_, v, _)| !v.is_empty())
            .map(|(_, v, _)| String::from_utf8_lossy(v).into_owned())
            .collect();
        assert_eq!(owners.len(), 2, "{profile:?}");
        assert!(owners.iter().any(|v| v.contains("r|10.226.118.64|8080")));
        assert!(owners.iter().any(|v| v.contains("r|172.31.45.240|8080")));

        // With a single slot the second client can never share the first one's counter.
        let config = json!({"rules": [{"name": "r", "key": ["client_ip", {"header": "x-port"}],
            "window": {"limit": 3, "seconds": 60}}],
            "shared_data": {"slots": 1, "probes": 1, "on_slots_exhausted": "deny"}});
        let h = harness(profile, 2, &config);
        let n = |ip: &str| {
            (0..10)
                .filter(|i| call(&h, i % 2, ip, "/", &port).admitted)
                .count()
        };
        assert_eq!(n(a), 3);
        assert_eq!(
            n(b),
            0,
            "{profile:?}: b refused (slots exhausted), never merged"
        );
        assert_eq!(metric(&h, "ratelimit.slots_exhausted"), 10);
    }
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Workers on threads racing on one key: exactly the limit is admitted, every run.
#[test]
fn racing_workers_admit_exactly_the_limit() {
    const WORKERS: usize = 4;
    const LIMIT: usize = 200;
    for profile in PROFILES {
        for (name, limit) in [
            ("window", json!({"window": {"limit": LIMIT, "seconds": 60}})),
            (
                "bucket",
                json!({"token_bucket": {"capacity": LIMIT, "refill_tokens": 1, "refill_interval_ms": 3_600_000}}),
            ),
        ] {
            let mut rule = json!({"name": "global", "key": [{"constant": "all"}]});
            rule.as_object_mut()
                .unwrap()
                .extend(limit.as_object().unwrap().clone());
            let h = harness(profile, WORKERS, &json!({"rules": [rule]}));
            let admitted: usize = std::thread::scope(|scope| {
                let threads: Vec<_> = (0..WORKERS)
                    .map(|w| {
                        let worker = h.worker(w);
                        scope.spawn(move || {
                            let mut admitted = 0;
                            for _ in 0..(10 * LIMIT / WORKERS) {
                                let mut s = worker.stream().unwrap();
                                s.set_property("source.address", "192.0.2.1:1").unwrap();
                                s.send_request_headers(&[(":method", "GET"), (":path", "/")], true)
                                    .unwrap();
                                if s.local_response().is_none() {
                                    admitted += 1;
                                }
                                s.finish().unwrap();
                            }
                            admitted
                        })
                    })
                    .collect();
                threads.into_iter().map(|t| t.join().unwrap()).sum()
            });
            assert_eq!(admitted, LIMIT, "{profile:?} {name}");
            assert_eq!(metric(&h, "ratelimit.allowed"), LIMIT as i64);
            assert_eq!(metric(&h, "ratelimit.cas_retries_exhausted"), 0);
            eprintln!(
                "{profile:?} {name}: cas retries {}",
                metric(&h, "ratelimit.cas_retries")
            );
        }
    }
}

#[test]
fn a_refused_config_names_the_field() {
    let h = Harness::builder()
        .plugin_config(r#"{"rules": [{"name": "a", "window": {"limit": 0, "seconds": 1}}]}"#)
        .build_from_file(suite_tests::paths::plugin_wasm(PLUGIN).unwrap())
        .unwrap();
    assert!(!h.configure().unwrap());
    let errors = h.logs_at(LogLevel::Error);
    assert!(
        errors
            .iter()
            .any(|l| l.contains("rules[0].window.limit: must be at least 1")),
        "{errors:?}"
    );
}

/// A million distinct client keys: the store never holds more than the configured slots.
///
/// Every request carries `KEYS_PER_REQUEST` client ids (`x-client-0..`), each the key of its
/// own rule, so 1,000,000 distinct keys take 1,000,000 / `KEYS_PER_REQUEST` requests: the
/// debug-built harness spends about 30 us per host call, and one key per request would take
/// minutes. One probe per key halves the reads (the bound is the slot count whatever the probes).
/// Envoy (which never deletes a key) gets the full million; Kong, 200,000. The virtual clock
/// advances as clients arrive, so buckets refill and idle slots are taken over.
#[test]
fn a_million_distinct_clients_stay_within_the_slot_bound() {
    const SLOTS: usize = 4096;
    const KEYS: u32 = 1_000_000;
    const KEYS_PER_REQUEST: u32 = 16;
    let rules: Vec<Value> = (0..KEYS_PER_REQUEST)
        .map(|r| {
            json!({"name": format!("c{r}"), "key": [{"header": format!("x-client-{r}")}],
                   "token_bucket": {"capacity": 10, "refill_tokens": 10, "refill_interval_ms": 1000}})
        })
        .collect();
    let config = json!({"rules": rules, "headers": {"on_allowed": false},
        "shared_data": {"slots": SLOTS, "probes": 1}});
    let scale = std::env::var("RATELIMIT_MILLION_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(KEYS);
    for profile in PROFILES {
        let keys = if profile == Profile::Envoy {
            scale
        } else {
            scale / 5
        };
        let requests = keys.div_ceil(KEYS_PER_REQUEST);
        let h = harness(profile, 2, &config);
        let started = Instant::now();
        let done: u32 = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..2u32)
                .map(|w| {
                    let worker = h.worker(w as usize);
                    let h = &h;
                    scope.spawn(move || {
                        let mut n = 0;
                        let mut i = w;
                        let names: Vec<String> = (0..KEYS_PER_REQUEST)
                            .map(|r| format!("x-client-{r}"))
                            .collect();
                        while i < requests && started.elapsed() < Duration::from_secs(120) {
                            // Time passes: buckets refill and idle slots are taken over.
                            if w == 0 && n % 100 == 0 {
                                h.advance_clock(Duration::from_millis(250)).unwrap();
                            }
                            let ids: Vec<String> = (0..KEYS_PER_REQUEST)
                                .map(|r| format!("client-{}", i * KEYS_PER_REQUEST + r))
                                .collect();
                            let mut headers: Vec<(&str, &str)> =
                                vec![(":method", "GET"), (":path", "/")];
                            headers.extend(
                                names
                                    .iter()
                                    .map(String::as_str)
                                    .zip(ids.iter().map(String::as_str)),
                            );
                            let mut s = worker.stream().unwrap();
                            s.send_request_headers(&headers, true).unwrap();
                            assert!(s.local_response().is_none());
                            s.finish().unwrap();
                            n += 1;
                            i += 2;
                        }
                        n
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).sum()
        });
        let entries = h.shared_data_entries();
        let bytes: usize = entries.iter().map(|(k, v, _)| k.len() + v.len()).sum();
        eprintln!(
            "{profile:?}: {done} requests, {} keys in {:?}: {} entries, {bytes} bytes, slots in use {}, takeovers {}, exhausted {}",
            done * KEYS_PER_REQUEST,
            started.elapsed(),
            entries.len(),
            metric(&h, "ratelimit.slots_in_use"),
            metric(&h, "ratelimit.slot_takeovers"),
            metric(&h, "ratelimit.slots_exhausted"),
        );
        assert_eq!(done, requests, "{profile:?}: ran out of time");
        assert!(
            entries.len() <= SLOTS,
            "{profile:?}: {} entries",
            entries.len()
        );
        // Slot key (<= 10 bytes) + record (2 + key <= 24 + state 33) per slot.
        assert!(bytes <= SLOTS * 80, "{profile:?}: {bytes} bytes");
        assert!(metric(&h, "ratelimit.slots_in_use") <= SLOTS as i64);
        assert!(metric(&h, "ratelimit.slot_takeovers") > 0);
    }
}

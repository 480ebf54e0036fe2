//! jwt-rbac in the wasmtime harness, both host profiles: the must-reject list (none traps the
//! VM), identity injection, anti-spoofing on anonymous/failed/allowed paths, roles and scopes,
//! the token cache, config refusals, and the signature path (Envoy's `verify_signature` on the
//! envoy profile, pure Rust on kong or when forced).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod jwt_rbac_support;

use host_harness::{Action, Harness, LogLevel, Profile};
use jwt_rbac_support::mint::*;
use jwt_rbac_support::{config, es384_config, must_reject, verify_signature, PLUGIN};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const PROFILES: [Profile; 2] = [Profile::Envoy, Profile::Kong];
/// Where the host strips a client's header and the root fetches remote documents and wakes
/// waiting requests: Envoy. Kong's engine does neither; `kong_engine.rs` tests what the plugin
/// does there instead (refuses spoofed identity headers, fetches from the waiting request).
const ENVOY: [Profile; 1] = [Profile::Envoy];

/// A harness for `profile`; the envoy profile offers `verify_signature` as Envoy does.
fn harness(profile: Profile, config: &Value) -> (Harness, Arc<AtomicUsize>) {
    let (h, calls) = harness_unconfigured(profile, config);
    assert!(h.configure().unwrap(), "{:?}", h.logs_at(LogLevel::Error));
    (h, calls)
}

/// [`harness`] before `on_configure`.
fn harness_unconfigured(profile: Profile, config: &Value) -> (Harness, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut builder = Harness::builder()
        .profile(profile)
        .workers(2)
        .filter_name(PLUGIN)
        .plugin_config(config.to_string());
    if profile == Profile::Envoy {
        builder =
            builder.foreign_function("verify_signature", verify_signature(Arc::clone(&calls)));
    }
    let h = builder
        .build_from_file(suite_tests::paths::plugin_wasm(PLUGIN).unwrap())
        .unwrap();
    (h, calls)
}

#[derive(Debug)]
struct Answer {
    status: u32,
    challenge: String,
    body: Value,
    upstream: Vec<(String, Vec<u8>)>,
}

impl Answer {
    fn upstream(&self, name: &str) -> Vec<String> {
        self.upstream
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect()
    }
}

fn call(h: &Harness, worker: usize, method: &str, path: &str, extra: &[(&str, &[u8])]) -> Answer {
    let mut s = h.worker(worker).stream().unwrap();
    let mut headers: Vec<(&str, &[u8])> = vec![
        (":method", method.as_bytes()),
        (":path", path.as_bytes()),
        (":authority", b"api.example.com"),
    ];
    headers.extend_from_slice(extra);
    let action = s.send_request_headers(&headers, true).unwrap();
    let answer = match s.local_response() {
        Some(r) => {
            assert_eq!(action, Action::Pause);
            Answer {
                status: r.status,
                challenge: r
                    .headers
                    .iter()
                    .find(|(n, _)| n == "www-authenticate")
                    .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default(),
                body: serde_json::from_slice(&r.body).unwrap(),
                upstream: Vec::new(),
            }
        }
        None => {
            assert_eq!(action, Action::Continue);
            Answer {
                status: 200,
                challenge: String::new(),
                body: Value::Null,
                upstream: s.request_headers(),
            }
        }
    };
    s.finish().unwrap();
    answer
}

fn metric(h: &Harness, name: &str) -> i64 {
    h.metric(name).map_or(0, |m| m.value)
}

fn bearer(token: &str) -> Vec<u8> {
    format!("Bearer {token}").into_bytes()
}

#[test]
fn must_reject_list_under_both_profiles_without_trapping() {
    let cases = must_reject();
    for profile in PROFILES {
        let (h, _) = harness(profile, &config());
        for (i, (case, token, reason)) in cases.iter().enumerate() {
            let auth = bearer(token);
            let a = call(&h, i % 2, "GET", "/orders", &[("authorization", &auth)]);
            assert_eq!(a.status, 401, "{profile:?} {case}: {a:?}");
            assert_eq!(a.body["reason"], *reason, "{profile:?} {case}");
            assert_eq!(a.body["error"], "invalid_token", "{profile:?} {case}");
            assert_eq!(
                a.challenge,
                format!(
                    "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"{reason}\""
                ),
                "{profile:?} {case}"
            );
            assert!(
                metric(&h, &format!("jwt_rbac.denied.{reason}")) > 0,
                "{profile:?} {case}"
            );
        }
        // Both VMs still serve: nothing trapped.
        let good = sign("RS256", "rsa-1", &good_claims());
        for worker in 0..2 {
            assert_eq!(
                call(
                    &h,
                    worker,
                    "GET",
                    "/orders",
                    &[("authorization", &bearer(&good))]
                )
                .status,
                200
            );
        }
        assert_eq!(
            metric(&h, "jwt_rbac.denied"),
            cases.len() as i64,
            "{profile:?}"
        );
    }
}

#[test]
fn allowed_path_injects_identity_and_strips_token_and_spoofed_headers() {
    for profile in ENVOY {
        let (h, _) = harness(profile, &config());
        for alg in ["RS256", "ES256", "EdDSA"] {
            let token = sign(alg, kid_for(alg), &good_claims());
            let auth = bearer(&token);
            let a = call(
                &h,
                0,
                "GET",
                "/orders",
                &[
                    ("authorization", &auth),
                    ("x-user-id", b"admin"),
                    ("X-User-Id", b"root"),
                    ("x_user_id", b"x"),
                    ("x-user_roles", b"admin"),
                    ("x-auth-status", b"verified"),
                ],
            );
            assert_eq!(a.status, 200, "{profile:?} {alg}: {a:?}");
            assert_eq!(a.upstream("x-user-id"), ["alice"], "{profile:?} {alg}");
            assert!(a.upstream("x_user_id").is_empty());
            assert!(a.upstream("x-user_roles").is_empty());
            assert_eq!(a.upstream("x-user-roles"), ["reader,admin"]);
            assert_eq!(a.upstream("x-user-scopes"), ["orders:read orders:write"]);
            assert_eq!(a.upstream("x-user-email"), ["alice@example.com"]);
            assert_eq!(a.upstream("x-jwt-issuer"), ["https://issuer.example.com"]);
            assert_eq!(a.upstream("x-auth-status"), ["verified"]);
            assert_eq!(a.upstream("x-auth-method"), ["jwt"]);
            assert!(a.upstream("authorization").is_empty(), "token forwarded");
        }
    }
}

#[test]
fn spoofed_identity_headers_stripped_on_anonymous_and_failed_paths() {
    let spoofed: [(&str, &[u8]); 4] = [
        ("x-user-id", b"admin"),
        ("x_user_id", b"admin"),
        ("X-USER-ROLES", b"admin"),
        ("x-auth-method", b"jwt"),
    ];
    for profile in ENVOY {
        let (h, _) = harness(profile, &config());
        for path in ["/health", "/public/page"] {
            let a = call(&h, 1, "GET", path, &spoofed);
            assert_eq!(a.status, 200, "{profile:?} {path}");
            for (name, _) in spoofed {
                assert!(a.upstream(name).is_empty(), "{profile:?} {path}: {name}");
                assert!(a.upstream(&name.replace('_', "-")).is_empty());
            }
            assert_eq!(a.upstream("x-auth-status"), ["anonymous"]);
        }
        // Failed path: nothing reaches the upstream, and the harness shows the map cleaned.
        let mut s = h.worker(0).stream().unwrap();
        let mut headers: Vec<(&str, &[u8])> = vec![
            (":method", b"GET"),
            (":path", b"/orders"),
            (":authority", b"a"),
        ];
        headers.extend_from_slice(&spoofed);
        headers.push(("authorization", b"Bearer garbage"));
        assert_eq!(
            s.send_request_headers(&headers, true).unwrap(),
            Action::Pause
        );
        assert_eq!(s.local_response().unwrap().status, 401);
        for (name, _) in spoofed {
            assert!(
                s.request_header(name).is_none(),
                "{profile:?} failed path: {name}"
            );
        }
        s.finish().unwrap();
    }
}

#[test]
fn missing_token_roles_and_scopes() {
    for profile in PROFILES {
        let (h, _) = harness(profile, &config());
        let a = call(&h, 0, "GET", "/orders", &[]);
        assert_eq!(
            (a.status, a.challenge.as_str()),
            (401, "Bearer realm=\"api\"")
        );
        assert_eq!(a.body["reason"], "token_missing");

        let reader = sign("ES256", "ec-1", &claims_with(json!({"roles": ["reader"]})));
        let a = call(
            &h,
            1,
            "GET",
            "/admin",
            &[("authorization", &bearer(&reader))],
        );
        assert_eq!(a.status, 403);
        assert_eq!(
            a.challenge,
            "Bearer realm=\"api\", error=\"insufficient_scope\", error_description=\"insufficient_role\""
        );
        assert_eq!(
            a.body,
            json!({"error": "insufficient_scope", "reason": "insufficient_role"})
        );
        let a = call(
            &h,
            1,
            "DELETE",
            "/orders/7",
            &[("authorization", &bearer(&reader))],
        );
        assert_eq!(
            (a.status, a.body["reason"].as_str()),
            (403, Some("insufficient_scope"))
        );
        let admin = sign("ES256", "ec-1", &good_claims());
        assert_eq!(
            call(
                &h,
                0,
                "GET",
                "/admin",
                &[("authorization", &bearer(&admin))]
            )
            .status,
            200
        );
    }
}

#[test]
fn signature_path_host_call_on_envoy_pure_rust_on_kong_or_forced() {
    let rs = sign("RS256", "rsa-1", &good_claims());
    let es = sign("ES256", "ec-1", &good_claims());
    let ed = sign("EdDSA", "ed-1", &good_claims());
    for (profile, forced, host_path) in [
        (Profile::Envoy, false, true),
        (Profile::Envoy, true, false),
        (Profile::Kong, false, false),
    ] {
        let mut cfg = config();
        cfg["cache"] = json!({"max_entries": 0});
        if forced {
            cfg["crypto"] = json!("pure_rust");
        }
        let (h, calls) = harness(profile, &cfg);
        let logs = h.logs_at(LogLevel::Info);
        let line = logs
            .iter()
            .map(|l| format!("{l:?}"))
            .find(|l| l.contains("provider main"))
            .unwrap_or_else(|| panic!("no signature path log line: {logs:?}"));
        assert_eq!(
            line.contains("RS256 via host verify_signature"),
            host_path,
            "{line}"
        );
        assert_eq!(
            line.contains("ES256 via host verify_signature"),
            host_path,
            "{line}"
        );
        assert!(line.contains("EdDSA via pure rust"), "{line}");
        let detection = calls.load(Ordering::SeqCst);
        for token in [&rs, &es, &ed] {
            assert_eq!(
                call(&h, 0, "GET", "/x", &[("authorization", &bearer(token))]).status,
                200
            );
        }
        let bad = jwt_rbac_support::must_reject()
            .into_iter()
            .filter(|(_, _, r)| *r == "signature_invalid")
            .collect::<Vec<_>>();
        for (case, token, _) in &bad {
            let a = call(&h, 1, "GET", "/x", &[("authorization", &bearer(token))]);
            assert_eq!(a.body["reason"], "signature_invalid", "{profile:?} {case}");
        }
        let used = calls.load(Ordering::SeqCst) - detection;
        if host_path {
            // RS256 + ES256 good, bad RS256 + bad ES256 (r=0/s=0 never reach the host).
            assert_eq!(used, 4, "{profile:?}");
        } else {
            assert_eq!(used, 0, "{profile:?} forced={forced}");
        }
    }
}

/// ES384 in the default build: Envoy's `verify_signature` checks it; where no host does (Kong,
/// or `crypto: pure_rust`) a config allowing it is refused at load, naming the field.
#[test]
fn es384_through_the_host_and_refused_where_there_is_none() {
    let cfg = es384_config();
    let (h, calls) = harness(Profile::Envoy, &cfg);
    let line = h
        .logs_at(LogLevel::Info)
        .iter()
        .map(|l| format!("{l:?}"))
        .find(|l| l.contains("provider main"))
        .unwrap();
    assert!(line.contains("ES384 via host verify_signature"), "{line}");
    let before = calls.load(Ordering::SeqCst);
    let good = sign("ES384", "ec384-1", &good_claims());
    let a = call(&h, 0, "GET", "/x", &[("authorization", &bearer(&good))]);
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.upstream("x-user-id"), ["alice"]);
    let forged = with_signature(&good, |sig| sig[95] ^= 1);
    let a = call(&h, 1, "GET", "/x", &[("authorization", &bearer(&forged))]);
    assert_eq!(
        (a.status, &a.body["reason"]),
        (401, &json!("signature_invalid"))
    );
    assert_eq!(
        calls.load(Ordering::SeqCst) - before,
        2,
        "both checked by the host"
    );

    for (profile, forced) in [(Profile::Kong, false), (Profile::Envoy, true)] {
        let mut cfg = cfg.clone();
        if forced {
            cfg["crypto"] = json!("pure_rust");
        }
        // Only Envoy offers the function (forced to pure Rust here, the plugin does not ask).
        let (h, _) = harness_unconfigured(profile, &cfg);
        assert!(!h.configure().unwrap(), "{profile:?} forced={forced}");
        let errors = format!("{:?}", h.logs_at(LogLevel::Error));
        assert!(
            errors.contains("providers.main.algorithms[1]") && errors.contains("es384"),
            "{profile:?} forced={forced}: {errors}"
        );
    }
}

#[test]
fn cache_hits_for_reused_tokens_per_worker() {
    for profile in PROFILES {
        let (h, _) = harness(profile, &config());
        let token = sign("RS256", "rsa-1", &good_claims());
        for _ in 0..3 {
            for worker in 0..2 {
                assert_eq!(
                    call(
                        &h,
                        worker,
                        "GET",
                        "/x",
                        &[("authorization", &bearer(&token))]
                    )
                    .status,
                    200
                );
            }
        }
        assert_eq!(
            metric(&h, "jwt_rbac.cache_misses"),
            2,
            "{profile:?}: one per worker"
        );
        assert_eq!(metric(&h, "jwt_rbac.cache_hits"), 4, "{profile:?}");
        assert_eq!(metric(&h, "jwt_rbac.allowed"), 6, "{profile:?}");
    }
}

#[test]
fn refused_configs_log_the_field() {
    for profile in PROFILES {
        for (cfg, field) in [
            (
                json!({"providers": {"main": {"algorithms": ["none"], "jwks": jwks(&["rsa-1"])}}}),
                "providers.main.algorithms[0]",
            ),
            (
                json!({"providers": {"main": {"algorithms": ["RS256"], "jwks": jwks(&["rsa-1"]), "isuer": "x"}}}),
                "providers.main.isuer",
            ),
            (
                json!({"providers": {"main": {"algorithms": ["RS256"], "jwks": jwks(&["rsa-1"])}}, "rules": [{"requires": {"provider": "other"}}]}),
                "rules[0].requires.provider",
            ),
        ] {
            let h = Harness::builder()
                .profile(profile)
                .plugin_config(cfg.to_string())
                .build_from_file(suite_tests::paths::plugin_wasm(PLUGIN).unwrap())
                .unwrap();
            assert!(!h.configure().unwrap(), "{profile:?} accepted {cfg}");
            let logs = format!("{:?}", h.logs_at(LogLevel::Error));
            assert!(logs.contains(field), "{profile:?}: {logs}");
        }
    }
}

/// A provider whose keys come from a remote JWKS: `jwks` cluster on Envoy, `127.0.0.1:9999` on
/// Kong; refresh every 10 s, unknown-kid refresh at most every 2 s, backoff up to 4 s.
fn remote_config(profile: Profile, wait: u64) -> Value {
    let upstream = match profile {
        Profile::Kong => "127.0.0.1:9999",
        _ => "jwks",
    };
    json!({
        "providers": {"main": {
            "algorithms": ["RS256"],
            "remote_jwks": {"upstream": upstream, "path": "/jwks.json", "authority": "idp.example.com",
                            "refresh_seconds": 10, "unknown_kid_refresh_seconds": 2,
                            "max_backoff_seconds": 4, "max_wait_seconds": wait}
        }},
        "rules": [{"requires": {"provider": "main"}}],
        "cache": {"max_entries": 0}
    })
}

fn remote_harness(profile: Profile, wait: u64) -> Harness {
    let h = Harness::builder()
        .profile(profile)
        .workers(2)
        .clusters(["upstream", "jwks"])
        .filter_name(PLUGIN)
        .plugin_config(remote_config(profile, wait).to_string())
        .build_from_file(suite_tests::paths::plugin_wasm(PLUGIN).unwrap())
        .unwrap();
    assert!(h.configure().unwrap(), "{:?}", h.logs_at(LogLevel::Error));
    h
}

fn status_with(h: &Harness, worker: usize, token: &str) -> (u32, Value) {
    let a = call(h, worker, "GET", "/x", &[("authorization", &bearer(token))]);
    (a.status, a.body)
}

/// A provider's JWKS with an encryption key beside its signing key (Keycloak publishes one in
/// every realm): the signing key is used, the other is skipped and named in a warning.
#[test]
fn remote_jwks_with_an_encryption_key_beside_the_signing_key() {
    use host_harness::CalloutResponse;
    let token = sign("RS256", "rsa-1", &good_claims());
    for profile in ENVOY {
        let h = remote_harness(profile, 0);
        let c = h.callouts().remove(0);
        let mut enc = public_jwk("rsa-2");
        enc["kid"] = json!("enc-1");
        enc["use"] = json!("enc");
        enc["alg"] = json!("RSA-OAEP");
        let body = json!({"keys": [enc, public_jwk("rsa-1")]});
        h.respond_callout(c.id, CalloutResponse::status(200).body(body.to_string()))
            .unwrap();
        assert_eq!(status_with(&h, c.worker, &token).0, 200, "{profile:?}");
        assert_eq!(metric(&h, "jwt_rbac.jwks_fetch_ok"), 1, "{profile:?}");
        let warnings = format!("{:?}", h.logs_at(LogLevel::Warn));
        assert!(
            warnings.contains("provider main: jwks key skipped: kid \\\"enc-1\\\" (keys[0]"),
            "{profile:?}: {warnings}"
        );
        // The other worker adopts the same keys from shared data.
        h.advance_clock(Duration::from_secs(1)).unwrap();
        assert_eq!(status_with(&h, 1 - c.worker, &token).0, 200, "{profile:?}");
    }
}

#[test]
fn remote_jwks_fetched_once_shared_refreshed_rotated_and_backed_off() {
    use host_harness::CalloutResponse;
    let t1 = sign("RS256", "rsa-1", &good_claims());
    let t2 = sign("RS256", "rsa-2", &good_claims());
    for profile in ENVOY {
        let h = remote_harness(profile, 0);
        // One fetch for the whole gateway, not one per worker.
        let callouts = h.callouts();
        assert_eq!(callouts.len(), 1, "{profile:?}: {callouts:?}");
        let c = &callouts[0];
        let header = |n: &str| {
            c.headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        };
        assert_eq!(header(":path").as_deref(), Some("/jwks.json"));
        assert_eq!(header(":authority").as_deref(), Some("idp.example.com"));

        // Before any keys: 503 with a reason, for either worker.
        let (status, body) = status_with(&h, 1, &t1);
        assert_eq!(
            (status, body["reason"].as_str()),
            (503, Some("jwks_unavailable")),
            "{profile:?}"
        );

        h.respond_callout(
            c.id,
            CalloutResponse::status(200).body(jwks(&["rsa-1"]).to_string()),
        )
        .unwrap();
        assert_eq!(
            status_with(&h, c.worker, &t1).0,
            200,
            "{profile:?} fetching worker"
        );
        // The other worker adopts the shared keys on its next tick, without fetching.
        h.advance_clock(Duration::from_secs(1)).unwrap();
        assert_eq!(
            status_with(&h, 1 - c.worker, &t1).0,
            200,
            "{profile:?} other worker"
        );
        assert!(h.callouts().is_empty(), "{profile:?}: {:?}", h.callouts());
        assert_eq!(metric(&h, "jwt_rbac.jwks_fetch_ok"), 1);

        // Rotation, step 1: the periodic refresh brings the overlap (rsa-1 and rsa-2).
        h.advance_clock(Duration::from_secs(10)).unwrap();
        let callouts = h.callouts();
        assert_eq!(callouts.len(), 1, "{profile:?}: one refresh");
        h.respond_callout(
            callouts[0].id,
            CalloutResponse::status(200).body(jwks(&["rsa-1", "rsa-2"]).to_string()),
        )
        .unwrap();
        h.advance_clock(Duration::from_secs(1)).unwrap();
        for worker in 0..2 {
            assert_eq!(
                status_with(&h, worker, &t1).0,
                200,
                "{profile:?} old key in overlap"
            );
            assert_eq!(
                status_with(&h, worker, &t2).0,
                200,
                "{profile:?} new key in overlap"
            );
        }
        // Step 2: the old key is removed.
        h.advance_clock(Duration::from_secs(10)).unwrap();
        let callouts = h.callouts();
        assert_eq!(callouts.len(), 1);
        h.respond_callout(
            callouts[0].id,
            CalloutResponse::status(200).body(jwks(&["rsa-2"]).to_string()),
        )
        .unwrap();
        h.advance_clock(Duration::from_secs(1)).unwrap();
        for worker in 0..2 {
            assert_eq!(status_with(&h, worker, &t2).0, 200);
            assert_eq!(
                status_with(&h, worker, &t1).1["reason"],
                "kid_unknown",
                "{profile:?}"
            );
        }

        // An unknown kid asks for a refresh (rate-limited); a failed fetch keeps the keys.
        h.advance_clock(Duration::from_secs(2)).unwrap();
        let callouts = h.callouts();
        assert_eq!(
            callouts.len(),
            1,
            "{profile:?}: unknown kid refresh: {callouts:?}"
        );
        h.respond_callout(callouts[0].id, CalloutResponse::status(500).body("oops"))
            .unwrap();
        assert_eq!(metric(&h, "jwt_rbac.jwks_fetch_failed"), 1);
        assert_eq!(
            status_with(&h, 0, &t2).0,
            200,
            "{profile:?}: last good keys kept"
        );
        assert_eq!(status_with(&h, 1, &t2).0, 200);
        // Garbage and a connection failure count as failures too, with growing backoff.
        let mut failures = 1;
        let mut waited = 0;
        for _ in 0..40 {
            h.advance_clock(Duration::from_secs(1)).unwrap();
            waited += 1;
            if let Some(c) = h.callouts().first() {
                if failures % 2 == 1 {
                    h.respond_callout(c.id, CalloutResponse::status(200).body("{not json"))
                        .unwrap();
                } else {
                    if let Err(e) = h.fail_callout(c.id) {
                        panic!("{e}: {:?}", h.logs());
                    }
                }
                failures += 1;
                if failures == 4 {
                    break;
                }
            }
        }
        assert_eq!(metric(&h, "jwt_rbac.jwks_fetch_failed"), 4, "{profile:?}");
        assert!(
            waited >= 1 + 2 + 4,
            "{profile:?}: backoff 1, 2, 4 s; waited {waited}"
        );
        assert_eq!(status_with(&h, 0, &t2).0, 200);
    }
}

/// Random and mangled tokens and headers: always an answer, never a trap, on both profiles.
#[test]
fn random_garbage_never_traps() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let good = sign("ES256", "ec-1", &good_claims());
    for profile in PROFILES {
        let (h, _) = harness(profile, &config());
        for i in 0..150 {
            let token: Vec<u8> = match i % 3 {
                0 => (0..rng.gen_range(0..300))
                    .map(|_| rng.gen::<u8>())
                    .collect(),
                1 => {
                    let mut t = good.clone().into_bytes();
                    for _ in 0..rng.gen_range(1..6) {
                        let at = rng.gen_range(0..t.len());
                        t[at] = b"._-=+/ A0\xff\x00"[rng.gen_range(0..11)];
                    }
                    t
                }
                _ => {
                    let dots = ".".repeat(rng.gen_range(0..8));
                    format!("{}{dots}{}", &good[..rng.gen_range(0..good.len())], "x").into_bytes()
                }
            };
            let mut value = b"Bearer ".to_vec();
            value.extend(
                token
                    .iter()
                    .filter(|b| **b != b'\r' && **b != b'\n' && **b != 0),
            );
            let a = call(&h, i % 2, "GET", "/orders", &[("authorization", &value)]);
            assert!(a.status == 401 || a.status == 200, "{profile:?}: {a:?}");
        }
        assert_eq!(
            call(
                &h,
                0,
                "GET",
                "/orders",
                &[("authorization", &bearer(&good))]
            )
            .status,
            200
        );
        assert_eq!(
            call(
                &h,
                1,
                "GET",
                "/orders",
                &[("authorization", &bearer(&good))]
            )
            .status,
            200
        );
    }
}

#[test]
fn requests_before_the_first_jwks_wait_then_pass_or_get_503() {
    use host_harness::CalloutResponse;
    let t1 = sign("RS256", "rsa-1", &good_claims());
    let auth = bearer(&t1);
    let headers: Vec<(&str, &[u8])> = vec![
        (":method", b"GET"),
        (":path", b"/x"),
        (":authority", b"api"),
        ("authorization", &auth),
        ("x-user-id", b"spoofed"),
    ];
    for profile in ENVOY {
        // Keys arrive during the wait: the paused requests on both workers go on, verified.
        let h = remote_harness(profile, 3);
        let mut s0 = h.worker(0).stream().unwrap();
        let mut s1 = h.worker(1).stream().unwrap();
        assert_eq!(
            s0.send_request_headers(&headers, true).unwrap(),
            Action::Pause
        );
        assert_eq!(
            s1.send_request_headers(&headers, true).unwrap(),
            Action::Pause
        );
        assert!(s0.local_response().is_none() && !s0.request_resumed());
        let c = h.callouts()[0].clone();
        h.respond_callout(
            c.id,
            CalloutResponse::status(200).body(jwks(&["rsa-1"]).to_string()),
        )
        .unwrap();
        h.advance_clock(Duration::from_secs(1)).unwrap();
        for s in [&s0, &s1] {
            assert!(
                s.local_response().is_none(),
                "{profile:?}: {:?}",
                s.local_response()
            );
            assert!(s.request_resumed(), "{profile:?}: not resumed");
            assert_eq!(
                s.request_header("x-user-id"),
                Some(b"alice".to_vec()),
                "{profile:?}"
            );
        }
        s0.finish().unwrap();
        s1.finish().unwrap();

        // No keys within the wait: 503 jwks_unavailable, and the VM still serves.
        let h = remote_harness(profile, 2);
        let mut s = h.worker(1).stream().unwrap();
        assert_eq!(
            s.send_request_headers(&headers, true).unwrap(),
            Action::Pause
        );
        h.advance_clock(Duration::from_secs(3)).unwrap();
        let reply = s.local_response().expect("a 503 after the wait");
        assert_eq!(reply.status, 503, "{profile:?}");
        let body: Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(body["reason"], "jwks_unavailable");
        s.finish().unwrap();
        // A stream that went away while waiting is skipped without harm.
        let mut gone = h.worker(0).stream().unwrap();
        assert_eq!(
            gone.send_request_headers(&headers, true).unwrap(),
            Action::Pause
        );
        gone.finish().unwrap();
        h.advance_clock(Duration::from_secs(3)).unwrap();
        // The worker is alive (no trap): a new request waits in turn.
        let mut again = h.worker(0).stream().unwrap();
        assert_eq!(
            again.send_request_headers(&headers, true).unwrap(),
            Action::Pause
        );
        again.finish().unwrap();
    }
}

#[test]
fn verified_payload_header_and_filter_state() {
    for profile in PROFILES {
        let mut cfg = config();
        cfg["identity"] = json!({"payload_header": "x-jwt-claims", "filter_state_key": "jwt_sub"});
        let (h, _) = harness(profile, &cfg);
        let token = sign("ES256", "ec-1", &good_claims());
        let auth = bearer(&token);
        let mut s = h.worker(0).stream().unwrap();
        let mut headers: Vec<(&str, &[u8])> = vec![
            (":method", b"GET"),
            (":path", b"/x"),
            (":authority", b"api"),
            ("authorization", &auth),
        ];
        // A forged copy is stripped on Envoy; Kong refuses it (kong_engine.rs).
        if profile == Profile::Envoy {
            headers.push(("x_jwt_claims", b"e30"));
        }
        assert_eq!(
            s.send_request_headers(&headers, true).unwrap(),
            Action::Continue
        );
        let values = s.request_header_values("x-jwt-claims");
        assert_eq!(values.len(), 1, "{profile:?}");
        assert!(s.request_header("x_jwt_claims").is_none());
        let decoded = base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            &values[0],
        )
        .unwrap();
        let claims: Value = serde_json::from_slice(&decoded).unwrap();
        assert_eq!(claims["sub"], "alice", "{profile:?}");
        if profile == Profile::Envoy {
            assert_eq!(s.property("jwt_sub"), Some(b"alice".to_vec()));
        }
        s.finish().unwrap();
    }
}

#[test]
fn api_keys_under_both_profiles() {
    use sha2::Digest;
    let digest: String = sha2::Sha256::digest(b"partner-secret-1")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut cfg = config();
    cfg["providers"]["partners"] = json!({"api_keys": {"keys": [
        {"id": "key-1", "sha256": digest, "principal": "partner-a", "roles": ["partner"]}
    ]}});
    cfg["rules"] = json!([{"requires": {"any_of": ["main", "partners"]}}]);
    for profile in PROFILES {
        let (h, _) = harness(profile, &cfg);
        // A forged `x_api_key_id` is stripped on Envoy; Kong refuses it (kong_engine.rs).
        let forged: &[(&str, &[u8])] = if profile == Profile::Envoy {
            &[
                ("x-api-key", b"partner-secret-1"),
                ("x_api_key_id", b"spoofed"),
            ]
        } else {
            &[("x-api-key", b"partner-secret-1")]
        };
        let a = call(&h, 0, "GET", "/x", forged);
        assert_eq!(a.status, 200, "{profile:?}: {a:?}");
        assert_eq!(a.upstream("x-api-key-id"), ["key-1"]);
        assert!(a.upstream("x_api_key_id").is_empty());
        assert_eq!(a.upstream("x-user-id"), ["partner-a"]);
        assert_eq!(a.upstream("x-auth-method"), ["api-key"]);
        assert!(a.upstream("x-api-key").is_empty());
        let a = call(&h, 1, "GET", "/x", &[("x-api-key", b"partner-secret-2")]);
        assert_eq!(
            (a.status, a.body["reason"].as_str()),
            (401, Some("api_key_invalid"))
        );
    }
}

/// Inline keys plus a remote revocation list: `revocations` cluster on Envoy, `127.0.0.1:9998`
/// on Kong; refresh every 5 s, backoff up to 4 s; the token cache stays on.
fn revocations_harness(profile: Profile) -> Harness {
    let upstream = match profile {
        Profile::Kong => "127.0.0.1:9998",
        _ => "revocations",
    };
    let config = json!({
        "providers": {"main": {
            "algorithms": ["RS256"],
            "jwks": jwks(&["rsa-1"]),
            "revoked_jti": ["from-config"],
            "remote_revocations": {"upstream": upstream, "path": "/revoked.json",
                                   "authority": "idp.example.com", "refresh_seconds": 5,
                                   "max_backoff_seconds": 4}
        }},
        "rules": [{"requires": {"provider": "main"}}]
    });
    let h = Harness::builder()
        .profile(profile)
        .workers(2)
        .clusters(["upstream", "revocations"])
        .filter_name(PLUGIN)
        .plugin_config(config.to_string())
        .build_from_file(suite_tests::paths::plugin_wasm(PLUGIN).unwrap())
        .unwrap();
    assert!(h.configure().unwrap(), "{:?}", h.logs_at(LogLevel::Error));
    h
}

#[test]
fn remote_revocation_list_fetched_once_shared_refreshed_and_kept_on_failure() {
    use host_harness::CalloutResponse;
    let token = |claims: Value| sign("RS256", "rsa-1", &claims_with(claims));
    let j1 = token(json!({"jti": "j-1"}));
    let j2 = token(json!({"jti": "j-2", "sid": "s-1"}));
    let from_config = token(json!({"jti": "from-config"}));
    for profile in ENVOY {
        let h = revocations_harness(profile);
        let callouts = h.callouts();
        assert_eq!(callouts.len(), 1, "{profile:?}: one fetch: {callouts:?}");
        let c = &callouts[0];
        let path = c.headers.iter().find(|(k, _)| k == ":path").map(|(_, v)| v);
        assert_eq!(path.map(|v| &v[..]), Some(&b"/revoked.json"[..]));

        // Before any list: only the config's ids are revoked. j-1 lands in the cache.
        for worker in 0..2 {
            assert_eq!(status_with(&h, worker, &j1).0, 200, "{profile:?}");
            assert_eq!(
                status_with(&h, worker, &from_config).1["reason"],
                "token_revoked"
            );
        }

        // The list revokes j-1: a cached token is refused too, first by the fetching worker,
        // then by the other one after its tick, without a second fetch.
        h.respond_callout(
            c.id,
            CalloutResponse::status(200).body(json!({"jti": ["j-1"]}).to_string()),
        )
        .unwrap();
        let (status, body) = status_with(&h, c.worker, &j1);
        assert_eq!(
            (status, body["reason"].as_str()),
            (401, Some("token_revoked"))
        );
        h.advance_clock(Duration::from_secs(1)).unwrap();
        let (status, body) = status_with(&h, 1 - c.worker, &j1);
        assert_eq!(
            (status, body["reason"].as_str()),
            (401, Some("token_revoked")),
            "{profile:?} other worker"
        );
        assert_eq!(status_with(&h, 1 - c.worker, &j2).0, 200);
        assert!(h.callouts().is_empty(), "{profile:?}: {:?}", h.callouts());
        assert_eq!(metric(&h, "jwt_rbac.revocations_fetch_ok"), 1);

        // A failed refresh keeps the last good list.
        h.advance_clock(Duration::from_secs(5)).unwrap();
        let callouts = h.callouts();
        assert_eq!(callouts.len(), 1, "{profile:?}: one refresh");
        h.respond_callout(callouts[0].id, CalloutResponse::status(503).body("down"))
            .unwrap();
        assert_eq!(metric(&h, "jwt_rbac.revocations_fetch_failed"), 1);
        for worker in 0..2 {
            assert_eq!(status_with(&h, worker, &j1).0, 401, "{profile:?} kept");
        }

        // After the backoff the next list un-revokes j-1 and revokes session s-1.
        let mut answered = false;
        for _ in 0..10 {
            h.advance_clock(Duration::from_secs(1)).unwrap();
            if let Some(c) = h.callouts().first() {
                h.respond_callout(
                    c.id,
                    CalloutResponse::status(200)
                        .body(json!({"jti": [], "sid": ["s-1"]}).to_string()),
                )
                .unwrap();
                answered = true;
                break;
            }
        }
        assert!(answered, "{profile:?}: no retry after the failure");
        h.advance_clock(Duration::from_secs(1)).unwrap();
        for worker in 0..2 {
            assert_eq!(
                status_with(&h, worker, &j1).0,
                200,
                "{profile:?} un-revoked"
            );
            assert_eq!(
                status_with(&h, worker, &j2).1["reason"],
                "token_revoked",
                "{profile:?} sid"
            );
        }
        assert_eq!(metric(&h, "jwt_rbac.revocations_fetch_ok"), 2);
        assert!(
            h.logs_at(LogLevel::Error).is_empty(),
            "{:?}",
            h.logs_at(LogLevel::Error)
        );
    }
}

/// A remote JWKS whose upstream names no cluster: Envoy refuses the call, and the log names the
/// field and the cluster (it used to be a warning naming neither, and every request waited).
#[test]
fn an_unknown_jwks_cluster_is_reported_naming_the_field_and_the_cluster() {
    let mut cfg = remote_config(Profile::Envoy, 0);
    cfg["providers"]["main"]["remote_jwks"]["upstream"] = json!("idp_cluster");
    let h = Harness::builder()
        .profile(Profile::Envoy)
        .clusters(["upstream"])
        .plugin_config(cfg.to_string())
        .build_from_file(suite_tests::paths::plugin_wasm(PLUGIN).unwrap())
        .unwrap();
    assert!(h.configure().unwrap(), "{:?}", h.logs_at(LogLevel::Error));
    let errors = h.logs_at(LogLevel::Error).join("\n");
    assert!(
        errors.contains("providers.main.remote_jwks.upstream: cannot call \"idp_cluster\"")
            && errors.contains("no such cluster on envoy"),
        "{errors}"
    );
}

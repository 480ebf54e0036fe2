//! jwt-rbac in a real Envoy (two workers, V8): the must-reject list over real HTTP, the allowed
//! path with identity headers at the echo upstream, 403s, anti-spoofing, metrics, the signature
//! path Envoy's own `verify_signature` takes (BoringSSL, checking our protobuf and DER encoding),
//! a refused config, and a remote JWKS and a remote revocation list served by real HTTP processes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod jwt_rbac_support;

use jwt_rbac_support::mint::*;
use jwt_rbac_support::{config, es384_config, must_reject, PLUGIN};
use serde_json::{json, Value};
use suite_tests::{client, Envoy, EnvoyConfig, RawRequest, RawResponse, Upstream};

fn start(config: Value) -> (Upstream, Envoy) {
    let upstream = Upstream::start().unwrap();
    let envoy = Envoy::start(&EnvoyConfig::new(upstream.addr()).filter(PLUGIN, config)).unwrap();
    (upstream, envoy)
}

fn get(envoy: &Envoy, method: &str, path: &str, headers: &[(&str, &str)]) -> RawResponse {
    let mut req = RawRequest::new(method, path, "api.example.com");
    for (n, v) in headers {
        req = req.header(n, v);
    }
    client::send(envoy.addr(), &req).unwrap()
}

/// GET `path`, with `Authorization: Bearer <token>` when a token is given.
fn get_bearer(envoy: &Envoy, path: &str, token: Option<&str>) -> RawResponse {
    match token {
        Some(t) => get(
            envoy,
            "GET",
            path,
            &[("authorization", &format!("Bearer {t}"))],
        ),
        None => get(envoy, "GET", path, &[]),
    }
}

/// Envoy's `verify_signature` was found and never failed.
fn assert_host_crypto_used_without_errors(envoy: &Envoy) {
    let stats = envoy.stats().unwrap();
    assert_eq!(stats.get("wasmcustom.jwt_rbac.host_crypto"), Some(&1));
    assert_eq!(
        stats
            .get("wasmcustom.jwt_rbac.host_crypto_errors")
            .copied()
            .unwrap_or(0),
        0
    );
}

fn body(resp: &RawResponse) -> Value {
    serde_json::from_slice(&resp.body).unwrap_or(Value::Null)
}

#[test]
fn must_reject_list_allowed_path_403_and_spoofing_over_real_http() {
    let (upstream, envoy) = start(config());
    let cases = must_reject();
    for (case, token, reason) in &cases {
        let resp = get(
            &envoy,
            "GET",
            "/orders",
            &[("authorization", &format!("Bearer {token}"))],
        );
        assert_eq!(resp.status, 401, "{case}: {}", resp.text());
        assert_eq!(
            body(&resp),
            json!({"error": "invalid_token", "reason": reason}),
            "{case}"
        );
        assert_eq!(
            resp.header("www-authenticate").as_deref(),
            Some(
                format!(
                    "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"{reason}\""
                )
                .as_str()
            ),
            "{case}"
        );
        let echoed = resp.text();
        assert!(
            !echoed.contains(&token[token.len().saturating_sub(16)..]),
            "{case}: token echoed"
        );
    }
    assert_eq!(
        upstream.request_count().unwrap(),
        0,
        "a rejected request reached the upstream"
    );

    // Missing token.
    let resp = get(&envoy, "GET", "/orders", &[]);
    assert_eq!(resp.status, 401);
    assert_eq!(
        resp.header("www-authenticate").as_deref(),
        Some("Bearer realm=\"api\"")
    );
    assert_eq!(body(&resp)["reason"], "token_missing");

    // Allowed, with spoofed identity headers that must not survive.
    for alg in ["RS256", "ES256", "EdDSA"] {
        let token = sign(alg, kid_for(alg), &good_claims());
        let resp = get(
            &envoy,
            "GET",
            "/orders/1",
            &[
                ("authorization", &format!("Bearer {token}")),
                ("x-user-id", "admin"),
                ("x_user_id", "root"),
                ("X-User-Roles", "admin"),
                ("x-auth-status", "verified"),
            ],
        );
        assert_eq!(resp.status, 200, "{alg}: {}", resp.text());
        let received = upstream.last_request().unwrap().expect("upstream reached");
        let values = |name: &str| -> Vec<String> {
            received
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                .collect()
        };
        assert_eq!(values("x-user-id"), ["alice"], "{alg}");
        assert!(values("x_user_id").is_empty(), "{alg}");
        assert_eq!(values("x-user-roles"), ["reader,admin"], "{alg}");
        assert_eq!(
            values("x-user-scopes"),
            ["orders:read orders:write"],
            "{alg}"
        );
        assert_eq!(values("x-auth-status"), ["verified"], "{alg}");
        assert_eq!(values("x-auth-method"), ["jwt"], "{alg}");
        assert!(values("authorization").is_empty(), "{alg}: token forwarded");
    }

    // Anonymous paths: spoofed headers stripped too.
    for path in ["/health", "/public/page"] {
        let resp = get(
            &envoy,
            "GET",
            path,
            &[("x-user-id", "admin"), ("X_USER_ROLES", "admin")],
        );
        assert_eq!(resp.status, 200, "{path}");
        let received = upstream.last_request().unwrap().unwrap();
        let leaked: Vec<&String> = received
            .headers
            .iter()
            .map(|(n, _)| n)
            .filter(|n| {
                n.to_ascii_lowercase()
                    .replace('_', "-")
                    .starts_with("x-user-")
            })
            .collect();
        assert!(leaked.is_empty(), "{path}: {leaked:?}");
    }

    // 403: role and scope.
    let reader = sign("ES256", "ec-1", &claims_with(json!({"roles": ["reader"]})));
    let auth = format!("Bearer {reader}");
    let resp = get(&envoy, "GET", "/admin/users", &[("authorization", &auth)]);
    assert_eq!(resp.status, 403);
    assert_eq!(
        resp.header("www-authenticate").as_deref(),
        Some("Bearer realm=\"api\", error=\"insufficient_scope\", error_description=\"insufficient_role\"")
    );
    assert_eq!(
        body(&resp),
        json!({"error": "insufficient_scope", "reason": "insufficient_role"})
    );
    let resp = get(&envoy, "DELETE", "/orders/1", &[("authorization", &auth)]);
    assert_eq!(
        (resp.status, body(&resp)["reason"].clone()),
        (403, json!("insufficient_scope"))
    );

    // Metrics, summed over both workers.
    let stats = envoy.stats().unwrap();
    let stat = |name: &str| {
        stats
            .get(&format!("wasmcustom.{name}"))
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(stat("jwt_rbac.denied.token_malformed"), 5);
    assert_eq!(stat("jwt_rbac.denied.alg_none"), 3);
    assert_eq!(stat("jwt_rbac.denied.insufficient_role"), 1);
    assert_eq!(stat("jwt_rbac.allowed"), 3);
    assert_eq!(stat("jwt_rbac.anonymous"), 2);
    assert_eq!(stat("jwt_rbac.denied"), cases.len() as u64 + 3);

    // Envoy's verify_signature was found and answered every call (no fallback to pure Rust).
    assert_eq!(stat("jwt_rbac.host_crypto"), 1);
    assert_eq!(stat("jwt_rbac.host_crypto_errors"), 0);
}

#[test]
fn pure_rust_forced_still_verifies_and_rejects() {
    let mut cfg = config();
    cfg["crypto"] = json!("pure_rust");
    cfg["cache"] = json!({"max_entries": 0});
    let (_upstream, envoy) = start(cfg);
    for alg in ["RS256", "ES256"] {
        let token = sign(alg, kid_for(alg), &good_claims());
        let resp = get(
            &envoy,
            "GET",
            "/x",
            &[("authorization", &format!("Bearer {token}"))],
        );
        assert_eq!(resp.status, 200, "{alg}");
    }
    for (case, token, reason) in must_reject()
        .into_iter()
        .filter(|(_, _, r)| *r == "signature_invalid")
    {
        let resp = get(
            &envoy,
            "GET",
            "/x",
            &[("authorization", &format!("Bearer {token}"))],
        );
        assert_eq!(body(&resp)["reason"], reason, "{case}");
    }
    let stats = envoy.stats().unwrap();
    assert_eq!(stats.get("wasmcustom.jwt_rbac.host_crypto"), Some(&0));
}

#[test]
fn host_crypto_path_rejects_bad_signatures_without_cache() {
    let mut cfg = config();
    cfg["cache"] = json!({"max_entries": 0});
    let (_upstream, envoy) = start(cfg);
    for (case, token, reason) in must_reject()
        .into_iter()
        .filter(|(_, _, r)| *r == "signature_invalid")
    {
        let resp = get(
            &envoy,
            "GET",
            "/x",
            &[("authorization", &format!("Bearer {token}"))],
        );
        assert_eq!(body(&resp)["reason"], reason, "{case}");
    }
    let token = sign("RS256", "rsa-1", &good_claims());
    for _ in 0..4 {
        let resp = get(
            &envoy,
            "GET",
            "/x",
            &[("authorization", &format!("Bearer {token}"))],
        );
        assert_eq!(resp.status, 200);
    }
    assert_host_crypto_used_without_errors(&envoy);
    let stats = envoy.stats().unwrap();
    assert_eq!(stats.get("wasmcustom.jwt_rbac.allowed"), Some(&4));
}

/// ES384 in the default build is BoringSSL's work, through `verify_signature` (no pure-Rust
/// P-384 in the wasm): good tokens pass, a flipped signature bit and r = 0 do not.
#[test]
fn es384_verified_by_envoys_verify_signature() {
    let cfg = es384_config();
    let (upstream, envoy) = start(cfg);
    let good = sign("ES384", "ec384-1", &good_claims());
    let flipped = with_signature(&good, |sig| sig[95] ^= 1);
    let zero_r = with_signature(&good, |sig| sig[..48].fill(0));
    for _ in 0..3 {
        let resp = get_bearer(&envoy, "/x", Some(&good));
        assert_eq!(resp.status, 200, "{}", resp.text());
    }
    assert_eq!(upstream.request_count().unwrap(), 3);
    for token in [flipped, zero_r] {
        let resp = get_bearer(&envoy, "/x", Some(&token));
        assert_eq!(
            (resp.status, body(&resp)["reason"].clone()),
            (401, json!("signature_invalid"))
        );
    }
    assert_eq!(upstream.request_count().unwrap(), 3);
    assert_host_crypto_used_without_errors(&envoy);
}

#[test]
fn a_refused_config_keeps_envoy_from_serving() {
    let upstream = Upstream::start().unwrap();
    let cfg = json!({"providers": {"main": {"algorithms": ["none"], "jwks": jwks(&["rsa-1"])}}});
    let err = match Envoy::start(&EnvoyConfig::new(upstream.addr()).filter(PLUGIN, cfg)) {
        Ok(_) => panic!("Envoy started with a refused config"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("providers.main.algorithms[0]"), "{err}");
}

/// A JSON endpoint on 127.0.0.1 (a JWKS, a revocation list): serves whatever it holds, counts
/// fetches, stops on drop.
struct JsonServer {
    addr: std::net::SocketAddr,
    body: std::sync::Arc<std::sync::Mutex<String>>,
    fetches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl JsonServer {
    fn start(body: String) -> JsonServer {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let body = std::sync::Arc::new(std::sync::Mutex::new(body));
        let fetches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (b, f, s) = (body.clone(), fetches.clone(), stop.clone());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
                let Ok((mut conn, _)) = listener.accept() else {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                };
                let _ = conn.set_nonblocking(false);
                let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(2)));
                let mut buf = [0u8; 4096];
                let mut request = Vec::new();
                while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 65536 {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                if f.fetch_add(1, Ordering::SeqCst) == 0 {
                    // The first answer comes late: requests meanwhile wait for the keys.
                    std::thread::sleep(std::time::Duration::from_millis(1500));
                }
                let body = b.lock().unwrap().clone();
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(response.as_bytes());
            }
        });
        JsonServer {
            addr,
            body,
            fetches,
            stop,
            thread: Some(thread),
        }
    }

    fn serve(&self, body: String) {
        *self.body.lock().unwrap() = body;
    }

    fn fetches(&self) -> usize {
        self.fetches.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for JsonServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Polls `f` every 100 ms until it is true, at most `secs` seconds.
fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

#[test]
fn remote_jwks_from_a_real_server_with_key_rotation() {
    let server = JsonServer::start(jwks(&["rsa-1"]).to_string());
    let upstream = Upstream::start().unwrap();
    let cfg = json!({
        "providers": {"main": {
            "algorithms": ["RS256"],
            "remote_jwks": {"upstream": "jwks", "path": "/jwks.json", "authority": "idp.example.com",
                            "refresh_seconds": 2, "unknown_kid_refresh_seconds": 1,
                            "max_wait_seconds": 10}
        }},
        "rules": [{"requires": {"provider": "main"}}],
        "cache": {"max_entries": 0}
    });
    let mut bootstrap = EnvoyConfig::new(upstream.addr())
        .filter(PLUGIN, cfg)
        .bootstrap()
        .unwrap();
    bootstrap["static_resources"]["clusters"].as_array_mut().unwrap().push(json!({
        "name": "jwks",
        "type": "STATIC",
        "connect_timeout": "2s",
        "load_assignment": {"cluster_name": "jwks", "endpoints": [{"lb_endpoints": [{"endpoint": {"address":
            {"socket_address": {"address": "127.0.0.1", "port_value": server.addr.port()}}}}]}]}
    }));
    let envoy = Envoy::start_bootstrap(&bootstrap, 2).unwrap();
    let t1 = format!("Bearer {}", sign("RS256", "rsa-1", &good_claims()));
    let t2 = format!("Bearer {}", sign("RS256", "rsa-2", &good_claims()));
    let status = |auth: &str| get(&envoy, "GET", "/x", &[("authorization", auth)]).status;

    // The first request arrives before any keys (the server answers after 1.5 s): it waits
    // (max_wait_seconds 10), then passes with the verified identity.
    let first = get(
        &envoy,
        "GET",
        "/x",
        &[("authorization", &t1), ("x-user-id", "spoofed")],
    );
    assert_eq!(first.status, 200, "{}", first.text());
    let received = upstream.last_request().unwrap().expect("upstream reached");
    let user: Vec<&Vec<u8>> = received
        .headers
        .iter()
        .filter(|(n, _)| n == "x-user-id")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(user, [&b"alice".to_vec()]);
    assert!(
        eventually(20, || status(&t1) == 200),
        "keys never arrived: {}",
        server.fetches()
    );
    let started = std::time::Instant::now();
    let fetches_at_start = server.fetches();

    // Overlap: the IdP publishes rsa-2 next to rsa-1; rsa-1 tokens never fail meanwhile.
    server.serve(jwks(&["rsa-1", "rsa-2"]).to_string());
    let published = server.fetches();
    assert!(
        eventually(20, || {
            assert_eq!(status(&t1), 200, "an rsa-1 token failed during the overlap");
            server.fetches() > published + 1
        }),
        "no refresh"
    );
    for _ in 0..10 {
        assert_eq!(status(&t1), 200, "rsa-1 during overlap");
        assert_eq!(status(&t2), 200, "rsa-2 during overlap");
    }

    // rsa-1 removed: its tokens become unknown, rsa-2 keeps working.
    server.serve(jwks(&["rsa-2"]).to_string());
    assert!(
        eventually(20, || {
            assert_eq!(status(&t2), 200, "an rsa-2 token failed during the removal");
            status(&t1) == 401
        }),
        "rsa-1 never removed"
    );
    // Every worker adopts the shared keys within a tick (1 s).
    std::thread::sleep(std::time::Duration::from_millis(1500));
    for _ in 0..6 {
        let resp = get(&envoy, "GET", "/x", &[("authorization", &t1)]);
        assert_eq!(body(&resp)["reason"], "kid_unknown");
    }

    // One gateway, one fetcher: about one fetch per refresh period (2 s) plus unknown-kid
    // refreshes (at most one a second), not one per worker.
    let elapsed = started.elapsed().as_secs() as usize;
    let fetched = server.fetches() - fetches_at_start;
    assert!(fetched <= elapsed + 3, "{fetched} fetches in {elapsed} s");
    let stats = envoy.stats().unwrap();
    assert_eq!(
        stats
            .get("wasmcustom.jwt_rbac.jwks_fetch_failed")
            .copied()
            .unwrap_or(0),
        0
    );
    assert!(
        stats
            .get("wasmcustom.jwt_rbac.jwks_fetch_ok")
            .copied()
            .unwrap_or(0)
            >= 3
    );
}

#[test]
fn remote_revocation_list_from_a_real_server_revokes_and_unrevokes() {
    let server = JsonServer::start(json!({"jti": []}).to_string());
    let upstream = Upstream::start().unwrap();
    let cfg = json!({
        "providers": {"main": {
            "algorithms": ["RS256"],
            "jwks": jwks(&["rsa-1"]),
            "remote_revocations": {"upstream": "revocations", "path": "/revoked.json",
                                   "refresh_seconds": 1}
        }},
        "rules": [{"requires": {"provider": "main"}}]
    });
    let mut bootstrap = EnvoyConfig::new(upstream.addr())
        .filter(PLUGIN, cfg)
        .bootstrap()
        .unwrap();
    bootstrap["static_resources"]["clusters"].as_array_mut().unwrap().push(json!({
        "name": "revocations",
        "type": "STATIC",
        "connect_timeout": "2s",
        "load_assignment": {"cluster_name": "revocations", "endpoints": [{"lb_endpoints": [{"endpoint": {"address":
            {"socket_address": {"address": "127.0.0.1", "port_value": server.addr.port()}}}}]}]}
    }));
    let envoy = Envoy::start_bootstrap(&bootstrap, 2).unwrap();
    let revoked = format!(
        "Bearer {}",
        sign("RS256", "rsa-1", &claims_with(json!({"jti": "j-1"})))
    );
    let other = format!(
        "Bearer {}",
        sign("RS256", "rsa-1", &claims_with(json!({"jti": "j-2"})))
    );
    let answer = |auth: &str| {
        let resp = get(&envoy, "GET", "/x", &[("authorization", auth)]);
        (
            resp.status,
            body(&resp)["reason"].as_str().map(str::to_owned),
        )
    };
    // Tokens pass (and are cached) while the list is empty.
    assert!(
        eventually(20, || server.fetches() >= 1 && answer(&revoked).0 == 200),
        "no first fetch"
    );

    // Revoke j-1: refused with token_revoked once the list is fetched, on every worker, even
    // though the token sits in the verified-token cache; j-2 is never refused.
    server.serve(json!({"jti": ["j-1"]}).to_string());
    assert!(
        eventually(20, || {
            assert_eq!(answer(&other).0, 200, "an unrelated token was refused");
            answer(&revoked).0 == 401
        }),
        "j-1 never revoked"
    );
    std::thread::sleep(std::time::Duration::from_millis(1500));
    for _ in 0..6 {
        assert_eq!(answer(&revoked), (401, Some("token_revoked".to_owned())));
        assert_eq!(answer(&other).0, 200);
    }

    // Un-revoke: allowed again after the next refresh.
    server.serve(json!({"jti": []}).to_string());
    assert!(
        eventually(20, || answer(&revoked).0 == 200),
        "j-1 never un-revoked"
    );
    std::thread::sleep(std::time::Duration::from_millis(1500));
    for _ in 0..6 {
        assert_eq!(answer(&revoked).0, 200);
    }
    let stats = envoy.stats().unwrap();
    let stat = |name: &str| stats.get(name).copied().unwrap_or(0);
    assert!(stat("wasmcustom.jwt_rbac.revocations_fetch_ok") >= 2);
    assert_eq!(stat("wasmcustom.jwt_rbac.revocations_fetch_failed"), 0);
}

/// jwt-rbac's refusals are local replies that never pass back through a filter behind it, so
/// audit-log (next in the chain, as in the demo) gets no response callback for them. Its record,
/// built in `on_log`, still carries the status and the challenge Envoy answered with.
#[test]
fn refusals_are_audited_with_their_challenge_by_the_filter_behind() {
    let upstream = Upstream::start().unwrap();
    let envoy = Envoy::start(
        &EnvoyConfig::new(upstream.addr())
            .filter(PLUGIN, config())
            .filter("audit-log", json!({})),
    )
    .unwrap();
    let reader = sign(
        "ES256",
        kid_for("ES256"),
        &claims_with(json!({"roles": ["reader"]})),
    );
    let expired = sign(
        "ES256",
        kid_for("ES256"),
        &claims_with(json!({"exp": 1_000_000_000, "iat": 999_000_000})),
    );
    let sent = [
        ("/orders/1", None, 401),
        ("/orders/2", Some(expired.as_str()), 401),
        ("/admin/users", Some(reader.as_str()), 403),
        ("/orders/3", Some(reader.as_str()), 200),
    ];
    for (path, token, status) in &sent {
        assert_eq!(get_bearer(&envoy, path, *token).status, *status, "{path}");
    }
    let records = |envoy: &Envoy| -> Vec<Value> {
        envoy
            .log()
            .lines()
            // Envoy's prefix ends in the plugin's name too (`wasm log audit-log audit-log: `).
            .filter_map(|l| {
                l.match_indices("audit-log: ")
                    .find_map(|(at, m)| serde_json::from_str(&l[at + m.len()..]).ok())
            })
            .collect()
    };
    // Envoy flushes its log file every 10 s by default: wait up to 20 s.
    let mut seen = Vec::new();
    for _ in 0..200 {
        seen = records(&envoy);
        if seen.len() >= sent.len() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let reason = |path: &str| -> (Value, Value) {
        let r = seen
            .iter()
            .find(|r| r["path"] == path)
            .unwrap_or_else(|| panic!("no record of {path}: {seen:?}"));
        (r["status"].clone(), r["decisions"]["auth_reason"].clone())
    };
    // The record keeps the reason code of the challenge, not the whole header.
    assert_eq!(reason("/orders/1"), (json!(401), json!("token_missing")));
    assert_eq!(reason("/orders/2"), (json!(401), json!("token_expired")));
    assert_eq!(
        reason("/admin/users"),
        (json!(403), json!("insufficient_role"))
    );
    assert_eq!(reason("/orders/3"), (json!(200), Value::Null));
    let text = seen
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        !text.contains(&expired[expired.len() - 16..])
            && !text.contains(&reader[reader.len() - 16..]),
        "a token reached an audit record"
    );
}

/// `identity.filter_state_key`: the verified `sub` as Envoy filter state, read back the way an
/// operator would, by Envoy's own access log (`%FILTER_STATE(wasm.<key>:PLAIN)%`); absent on a
/// refused request and on an anonymous one.
#[test]
fn verified_subject_reaches_envoys_access_log_as_filter_state() {
    let upstream = Upstream::start().unwrap();
    let mut cfg = config();
    cfg["identity"] = json!({"filter_state_key": "jwt_sub"});
    let mut b = EnvoyConfig::new(upstream.addr())
        .filter(PLUGIN, cfg)
        .bootstrap()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("jwt-rbac-access-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("access.log");
    let _ = std::fs::remove_file(&log);
    b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["access_log"] = json!([{
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": log.display().to_string(),
            "log_format": {"text_format_source": {"inline_string":
                "%REQ(:PATH)% %RESPONSE_CODE% sub=%FILTER_STATE(wasm.jwt_sub:PLAIN)%\n"}}
        }
    }]);
    let envoy = Envoy::start_bootstrap(&b, 2).unwrap();
    let token = sign("RS256", "rsa-1", &good_claims());
    let sent = [
        ("/orders/1", Some(token.as_str()), 200),
        ("/orders/2", None, 401),
        ("/health", None, 200),
    ];
    for (path, token, status) in sent {
        assert_eq!(get_bearer(&envoy, path, token).status, status, "{path}");
    }
    // Access logs are flushed every second by default: wait (bounded) for all three lines.
    let mut text = String::new();
    for _ in 0..100 {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.lines().count() >= sent.len() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let line = |path: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{path} ")))
            .unwrap_or_else(|| panic!("no access log line for {path}: {text}"))
            .to_owned()
    };
    assert_eq!(line("/orders/1"), "/orders/1 200 sub=alice");
    assert_eq!(line("/orders/2"), "/orders/2 401 sub=-");
    assert_eq!(line("/health"), "/health 200 sub=-");
    drop(envoy);
    let _ = std::fs::remove_dir_all(&dir);
}

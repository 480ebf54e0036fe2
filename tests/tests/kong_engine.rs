//! Kong's engine, row by row (issue #14): what the five modules did in Kong 3.9's real engine
//! (ngx_wasm_module `9136e463`), reproduced under the harness's kong profiles, and what they do
//! now. Each test names the row it stands for. The kong-demo chain runs end to end too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod jwt_rbac_support;

use host_harness::{Action, CalloutResponse, Harness, HttpStream, LogLevel, Profile};
use jwt_rbac_support::mint::*;
use jwt_rbac_support::{config, PLUGIN};
use serde_json::{json, Value};
use std::time::Duration;

/// The engines of Kong 3.9 and 3.8 (the only Kong versions whose engine has metrics).
const KONG: [Profile; 2] = [Profile::Kong, Profile::Kong38];

fn build(profile: Profile, plugin: &str, config: &Value) -> Harness {
    Harness::builder()
        .profile(profile)
        .workers(2)
        .filter_name(&plugin.replace('-', "_"))
        .plugin_config(config.to_string())
        .build_from_file(suite_tests::paths::plugin_wasm(plugin).unwrap())
        .unwrap()
}

fn configured(profile: Profile, plugin: &str, config: &Value) -> Harness {
    let h = build(profile, plugin, config);
    assert!(
        h.configure().unwrap(),
        "{profile:?} {plugin}: {:?}",
        h.logs_at(LogLevel::Error)
    );
    h
}

fn get<'a>(path: &'a str, extra: &[(&'a str, &'a [u8])]) -> Vec<(&'a str, &'a [u8])> {
    let mut headers: Vec<(&str, &[u8])> = vec![
        (":method", b"GET"),
        (":path", path.as_bytes()),
        (":authority", b"api.example.com"),
    ];
    headers.extend_from_slice(extra);
    headers
}

fn upstream_values(s: &HttpStream, name: &str) -> Vec<String> {
    s.upstream_request_headers()
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name) || n.replace('_', "-") == name)
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .collect()
}

fn bearer(token: &str) -> Vec<u8> {
    format!("Bearer {token}").into_bytes()
}

fn reason(s: &HttpStream) -> (u32, Value) {
    let r = s.local_response().expect("a local reply");
    let body = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status, body)
}

/// Row "jwt-rbac": the verify_signature probe trapped in on_configure and took every worker
/// down. Now the default config (crypto auto) loads and checks tokens in pure Rust.
#[test]
fn jwt_rbac_default_config_loads_and_verifies_without_foreign_functions() {
    let token = sign("RS256", "rsa-1", &good_claims());
    for profile in KONG {
        let h = configured(profile, PLUGIN, &config());
        let mut s = h.stream().unwrap();
        let auth = bearer(&token);
        let action = s
            .send_request_headers(&get("/orders/1", &[("authorization", &auth)]), true)
            .unwrap();
        assert_eq!(
            action,
            Action::Continue,
            "{profile:?}: {:?}",
            s.local_response()
        );
        assert_eq!(upstream_values(&s, "x-user-id"), ["alice"], "{profile:?}");
        let bad = with_signature(&token, |sig| sig[0] ^= 1);
        let mut s = h.stream().unwrap();
        let auth = bearer(&bad);
        s.send_request_headers(&get("/orders/1", &[("authorization", &auth)]), true)
            .unwrap();
        assert_eq!(reason(&s).1["reason"], "signature_invalid", "{profile:?}");
    }
}

/// Row "jwt-rbac identity" and "header-injection": a client's `x-user-id: admin` (or
/// `X_User_Roles`, `x-auth-status: verified`) reached the upstream beside the verified one. The
/// engine cannot remove it, so such a request is refused.
#[test]
fn a_spoofed_identity_header_never_reaches_the_upstream() {
    let token = sign("RS256", "rsa-1", &good_claims());
    let auth = bearer(&token);
    for profile in KONG {
        let jwt = configured(profile, PLUGIN, &config());
        let headers = configured(profile, "header-injection", &json!({}));
        for h in [&jwt, &headers] {
            for (name, value) in [
                ("x-user-id", &b"admin"[..]),
                ("X_User_Roles", b"admin"),
                ("x-auth-status", b"verified"),
            ] {
                for path in ["/health", "/orders/1"] {
                    let mut s = h.stream().unwrap();
                    let extra: [(&str, &[u8]); 2] = [(name, value), ("authorization", &auth)];
                    let action = s.send_request_headers(&get(path, &extra), true).unwrap();
                    assert_eq!(action, Action::Pause, "{profile:?} {name} {path}");
                    let (status, body) = reason(&s);
                    assert_eq!(status, 400, "{profile:?} {name} {path}");
                    assert_eq!(body["reason"], "spoofed_identity_header");
                }
            }
        }
        // A clean request: exactly the verified identity reaches the upstream.
        let mut s = jwt.stream().unwrap();
        s.send_request_headers(&get("/orders/1", &[("authorization", &auth)]), true)
            .unwrap();
        assert_eq!(upstream_values(&s, "x-user-id"), ["alice"], "{profile:?}");
        assert_eq!(upstream_values(&s, "x-auth-status"), ["verified"]);
        // What the docs say: on Kong the credential still reaches the upstream.
        assert_eq!(upstream_values(&s, "authorization").len(), 1, "{profile:?}");
    }
}

fn remote_config() -> Value {
    json!({
        "providers": {"main": {
            "algorithms": ["RS256"],
            "remote_jwks": {"upstream": "127.0.0.1:9999", "path": "/jwks.json",
                            "authority": "idp.example.com", "refresh_seconds": 10,
                            "timeout_ms": 2000}
        }},
        "rules": [{"requires": {"provider": "main"}}],
        "cache": {"max_entries": 0},
        "kong_version": "3.9"
    })
}

/// Kong 3.8's engine never calls a filter back when its fetch fails and lets the waiting
/// request through: remote documents on Kong are refused unless the config says 3.9.
#[test]
fn jwt_rbac_remote_documents_need_kong_3_9_said() {
    for profile in KONG {
        let mut cfg = remote_config();
        cfg.as_object_mut().unwrap().remove("kong_version");
        let h = build(profile, PLUGIN, &cfg);
        assert!(!h.configure().unwrap(), "{profile:?}");
        let errors = format!("{:?}", h.logs_at(LogLevel::Error));
        assert!(errors.contains("providers.main.remote_jwks: "), "{errors}");
    }
    // Envoy reports every failed call: no such setting needed there.
    let mut cfg = remote_config();
    cfg.as_object_mut().unwrap().remove("kong_version");
    cfg["providers"]["main"]["remote_jwks"]["upstream"] = json!("jwks");
    let h = Harness::builder()
        .profile(Profile::Envoy)
        .clusters(["jwks"])
        .plugin_config(cfg.to_string())
        .build_from_file(suite_tests::paths::plugin_wasm(PLUGIN).unwrap())
        .unwrap();
    assert!(h.configure().unwrap(), "{:?}", h.logs_at(LogLevel::Error));
}

/// Row "jwt-rbac remote JWKS": the fetch in on_configure trapped (dispatch phase rule), and
/// waking waiting streams from the root crashed a worker. Now nothing is fetched before a
/// request needs it; each waiting request fetches in its own request phase and resumes from
/// its own answer.
#[test]
fn jwt_rbac_remote_jwks_is_fetched_by_the_requests_that_need_it() {
    let token = sign("RS256", "rsa-1", &good_claims());
    let auth = bearer(&token);
    {
        let profile = Profile::Kong;
        let h = configured(profile, PLUGIN, &remote_config());
        assert!(
            h.callouts().is_empty(),
            "{profile:?}: no dispatch at configure"
        );
        let mut first = h.worker(0).stream().unwrap();
        let mut second = h.worker(0).stream().unwrap();
        for s in [&mut first, &mut second] {
            let action = s
                .send_request_headers(&get("/x", &[("authorization", &auth)]), true)
                .unwrap();
            assert_eq!(action, Action::Pause, "{profile:?}");
            assert!(s.local_response().is_none());
        }
        let calls = h.callouts();
        assert_eq!(calls.len(), 2, "{profile:?}: one fetch per waiting request");
        assert_eq!(calls[0].upstream, "127.0.0.1:9999");
        assert_ne!(
            calls[0].context_id, calls[1].context_id,
            "each from its stream"
        );
        let body = json!({"keys": [public_jwk("rsa-1")]}).to_string();
        for c in &calls {
            h.respond_callout(c.id, CalloutResponse::status(200).body(&body))
                .unwrap();
        }
        for s in [&first, &second] {
            assert!(
                s.request_resumed(),
                "{profile:?}: resumed from its own context"
            );
            assert!(s.local_response().is_none(), "{:?}", s.local_response());
            assert_eq!(upstream_values(s, "x-user-id"), ["alice"]);
        }
        // Later requests use the keys at once; the other worker adopts them on its tick.
        h.advance_clock(Duration::from_secs(1)).unwrap();
        for worker in [0, 1] {
            let mut s = h.worker(worker).stream().unwrap();
            let action = s
                .send_request_headers(&get("/x", &[("authorization", &auth)]), true)
                .unwrap();
            assert_eq!(action, Action::Continue, "{profile:?} worker {worker}");
        }
        assert_eq!(h.callouts().len(), 0);
        assert_eq!(h.metric("jwt_rbac.jwks_fetch_ok").unwrap().value, 2);
    }
}

/// A fetch that fails answers the waiting request `503 jwks_unavailable`, and backs off.
#[test]
fn jwt_rbac_a_failed_first_fetch_is_a_503_for_the_request_that_waited() {
    let token = sign("RS256", "rsa-1", &good_claims());
    let auth = bearer(&token);
    {
        let profile = Profile::Kong;
        let h = configured(profile, PLUGIN, &remote_config());
        let mut s = h.stream().unwrap();
        s.send_request_headers(&get("/x", &[("authorization", &auth)]), true)
            .unwrap();
        let c = h.callouts().remove(0);
        h.respond_callout(c.id, CalloutResponse::status(500))
            .unwrap();
        let (status, body) = reason(&s);
        assert_eq!(status, 503, "{profile:?}");
        assert_eq!(body["reason"], "jwks_unavailable", "{profile:?}");
        // During the backoff the next request is answered at once, without a fetch.
        let mut s = h.stream().unwrap();
        s.send_request_headers(&get("/x", &[("authorization", &auth)]), true)
            .unwrap();
        assert_eq!(reason(&s).0, 503, "{profile:?}");
        assert!(h.callouts().is_empty());
    }
}

/// Row "ratelimit-shared-data": the first request of every new client got a 500 (a gauge was
/// incremented, and the engine increments counters only).
#[test]
fn ratelimit_the_first_request_of_a_new_client_is_admitted() {
    let cfg = json!({"rules": [{"name": "per-ip", "key": ["client_ip"],
                                "window": {"limit": 2, "seconds": 10}}]});
    for profile in KONG {
        let h = configured(profile, "ratelimit-shared-data", &cfg);
        let mut statuses = Vec::new();
        for i in 0..4 {
            let mut s = h.worker(i % 2).stream().unwrap();
            s.set_property("source.address", "192.0.2.7:4000").unwrap();
            s.send_request_headers(&get("/a", &[]), true).unwrap();
            statuses.push(s.local_response().map_or(200, |r| r.status));
        }
        assert_eq!(statuses, [200, 200, 429, 429], "{profile:?}");
        assert_eq!(h.metric("ratelimit.slots_in_use").unwrap().value, 1);
    }
}

fn audit_request(h: &Harness, worker: usize, path: &str) {
    let mut s = h.worker(worker).stream().unwrap();
    s.set_property("source.address", "192.0.2.10:53000")
        .unwrap();
    s.send_request_headers(&get(path, &[]), true).unwrap();
    // A batch this request sent is answered while it waits, as the collector would.
    for c in h.callouts() {
        h.respond_callout(c.id, CalloutResponse::status(200))
            .unwrap();
    }
    s.send_response_headers(&[(":status", "200")], true)
        .unwrap();
    s.finish().unwrap();
}

/// Row "audit-log": 2,000 records logged, 100 at the collector, 19 traps (dispatch from
/// on_log), 20 chains instead of 2, and an error line per request for `response.flags`. Now
/// every record reaches the collector, sent from later requests' request phases.
#[test]
fn audit_log_every_record_reaches_the_collector_without_a_trap() {
    let cfg = json!({"role": "local", "export": {"enabled": true, "upstream": "127.0.0.1:8082",
                     "batch_max_records": 10}});
    for profile in KONG {
        let h = configured(profile, "audit-log", &cfg);
        let mut exported = Vec::new();
        for i in 0..200 {
            audit_request(&h, i % 2, &format!("/r/{i}"));
            h.advance_clock(Duration::from_millis(5)).unwrap();
        }
        // Idle for a while, then one request per worker carries what is left.
        h.advance_clock(Duration::from_secs(2)).unwrap();
        assert!(
            h.callouts().is_empty(),
            "{profile:?}: no dispatch outside requests"
        );
        for worker in [0, 1] {
            let mut s = h.worker(worker).stream().unwrap();
            s.send_request_headers(&get("/flush", &[]), true).unwrap();
            for c in h.callouts() {
                exported.push(c.body.clone());
                h.respond_callout(c.id, CalloutResponse::status(200))
                    .unwrap();
            }
        }
        let written = h.metric("audit_log.records_written").unwrap().value;
        let sent = h.metric("audit_log.records_exported").unwrap().value;
        assert_eq!(written, 200, "{profile:?}");
        assert_eq!(sent, 200, "{profile:?}: every record at the collector");
        assert_eq!(
            h.metric("audit_log.records_dropped").map_or(0, |m| m.value),
            0
        );
        let errors = h.logs_at(LogLevel::Error);
        assert!(
            !errors.iter().any(|l| l.contains("response.flags")),
            "{profile:?}: {errors:?}"
        );
        let chains: std::collections::BTreeSet<String> = h
            .logs_at(LogLevel::Info)
            .iter()
            .filter_map(|l| l.split("audit-log chain ").nth(1))
            .filter_map(|l| l.split(' ').next().map(str::to_owned))
            .collect();
        assert_eq!(
            chains.len(),
            2,
            "{profile:?}: one chain per worker: {chains:?}"
        );
    }
}

/// The shared-queue roles need a call the engine lacks: refused at load, naming `role`.
#[test]
fn audit_log_queue_roles_are_refused_at_load() {
    for profile in KONG {
        let h = build(
            profile,
            "audit-log",
            &json!({"role": "worker", "export": {"enabled": true}}),
        );
        assert!(!h.configure().unwrap(), "{profile:?}");
        let errors = format!("{:?}", h.logs_at(LogLevel::Error));
        assert!(errors.contains("invalid configuration: role: "), "{errors}");
    }
}

/// The kong-demo chain (kong-demo/kong.yml, in order) runs under the kong profile: no trap,
/// and what Kong's guide promises comes out.
#[test]
fn the_kong_demo_chain_runs_without_a_trap() {
    let text =
        std::fs::read_to_string(suite_tests::paths::workspace_root().join("kong-demo/kong.yml"))
            .unwrap();
    let doc: Value = serde_norway::from_str(&text).unwrap();
    let filters = doc["filter_chains"][0]["filters"]
        .as_array()
        .unwrap()
        .clone();
    let secret = b"demo-only-secret-0123456789abcdef";
    let header = r#"{"alg":"HS256","kid":"demo","typ":"JWT"}"#;
    let payload = json!({"iss": "https://issuer.example.com", "aud": "api", "sub": "alice",
                         "exp": FAR_FUTURE})
    .to_string();
    let input = format!("{}.{}", b64(header), b64(&payload));
    let token = assemble(header, &payload, &hmac("HS256", secret, input.as_bytes()));
    for profile in KONG {
        let chain: Vec<Harness> = filters
            .iter()
            .map(|f| {
                let name = f["name"].as_str().unwrap().replace('_', "-");
                let config = match &f["config"] {
                    Value::String(s) => serde_json::from_str(s).unwrap(),
                    other => other.clone(),
                };
                configured(profile, &name, &config)
            })
            .collect();
        let auth = format!("Bearer {token}");
        for (path, extra, want) in [
            ("/healthz", vec![], 200),
            ("/api/orders", vec![], 401),
            ("/api/orders", vec![("authorization", auth.as_str())], 200),
            ("/api/orders", vec![("x-user-id", "admin")], 400),
        ] {
            let mut headers: Vec<(String, Vec<u8>)> = get(path, &[])
                .into_iter()
                .map(|(n, v)| (n.to_owned(), v.to_vec()))
                .collect();
            headers.extend(
                extra
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())),
            );
            let mut status = 200;
            let mut streams = Vec::new();
            for (i, h) in chain.iter().enumerate() {
                let mut s = h.stream().unwrap();
                s.set_property("source.address", "192.0.2.10:53000")
                    .unwrap();
                let pairs: Vec<(&str, &[u8])> = headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_slice()))
                    .collect();
                s.send_request_headers(&pairs, true)
                    .unwrap_or_else(|e| panic!("{profile:?} filter {i} {path}: {e}"));
                if let Some(r) = s.local_response() {
                    status = r.status;
                    streams.push(s);
                    break;
                }
                headers = s.request_headers();
                streams.push(s);
            }
            assert_eq!(status, want, "{profile:?} {path} {extra:?}");
            // Kong runs response steps in chain order.
            for s in &mut streams {
                if s.local_response().is_none() {
                    s.send_response_headers(&[(":status", "200")], true)
                        .unwrap_or_else(|e| panic!("{profile:?} {path}: {e}"));
                }
                s.finish().unwrap();
            }
        }
        for h in &chain {
            for c in h.callouts() {
                h.respond_callout(c.id, CalloutResponse::status(200))
                    .unwrap();
            }
        }
    }
}

/// Kong's engine speaks TLS to a dispatch target only when the call carries `:scheme: https`:
/// a remote JWKS at `host:443` gets it, any other port plain HTTP.
#[test]
fn jwt_rbac_fetches_a_port_443_jwks_over_tls_on_kong() {
    for (upstream, tls) in [("sso.example.com:443", true), ("127.0.0.1:9999", false)] {
        let mut cfg = remote_config();
        cfg["providers"]["main"]["remote_jwks"]["upstream"] = json!(upstream);
        let h = configured(Profile::Kong, PLUGIN, &cfg);
        let token = sign("RS256", "rsa-1", &good_claims());
        let auth = bearer(&token);
        let mut s = h.stream().unwrap();
        s.send_request_headers(&get("/x", &[("authorization", &auth)]), true)
            .unwrap();
        let c = h.callouts().remove(0);
        assert_eq!(c.upstream, upstream);
        assert_eq!(
            c.header(":scheme").as_deref(),
            tls.then_some("https"),
            "{upstream}"
        );
    }
}

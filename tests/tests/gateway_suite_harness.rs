//! gateway-suite (`dist/gateway-suite.wasm`) in the wasmtime harness, both host profiles: the
//! five plugins as jobs of one filter. The verified identity reaches the upstream and the audit
//! record; a client's forged identity never does; a 429 and a breaker 503 are recorded as the
//! client got them; a refused section is named by its path; the crossings of an ordinary GET
//! are counted against the budget.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod gateway_suite_support;
mod jwt_rbac_support;

use gateway_suite_support::{config, token};
use host_harness::{Harness, LogLevel, Profile};
use jwt_rbac_support::mint::*;
use serde_json::{json, Value};

const PROFILES: [Profile; 2] = [Profile::Envoy, Profile::Kong];

fn harness(profile: Profile, config: &Value) -> Harness {
    let h = Harness::builder()
        .profile(profile)
        .plugin_config(config.to_string())
        .build_from_file(suite_tests::paths::plugin_wasm("gateway-suite").unwrap())
        .unwrap();
    assert!(
        h.configure().unwrap(),
        "{profile:?}: {:?}",
        h.logs_at(LogLevel::Error)
    );
    h
}

/// What one request showed, read before the stream ends.
struct Seen {
    status: u32,
    reply_body: Vec<u8>,
    upstream: Vec<(String, Vec<u8>)>,
    response: Vec<(String, Vec<u8>)>,
}

impl Seen {
    fn upstream_values(&self, name: &str) -> Vec<String> {
        self.upstream
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    fn has_response_header(&self, name: &str) -> bool {
        self.response.iter().any(|(n, _)| n == name)
    }
}

/// Sends a GET with `headers`; answers `status` if it reaches the upstream.
fn get(h: &Harness, headers: &[(&str, &str)], status: &str) -> Seen {
    let mut s = h.stream().unwrap();
    s.set_property("source.address", "192.0.2.10:53000")
        .unwrap();
    let mut all = vec![
        (":method", "GET"),
        (":path", "/api/orders"),
        (":authority", "api.example.com"),
        ("host", "api.example.com"),
        (":scheme", "http"),
    ];
    all.extend_from_slice(headers);
    s.send_request_headers(&all, true).unwrap();
    let reached = s.local_response().is_none();
    let upstream = if reached {
        s.send_response_headers(&[(":status", status)], true)
            .unwrap();
        s.upstream_request_headers()
    } else {
        Vec::new()
    };
    let local = s.local_response();
    let seen = Seen {
        status: local
            .as_ref()
            .map_or_else(|| status.parse().unwrap(), |r| r.status),
        reply_body: local.map(|r| r.body).unwrap_or_default(),
        upstream,
        response: s.response_headers(),
    };
    s.finish().unwrap();
    seen
}

fn records(h: &Harness) -> Vec<Value> {
    h.logs_at(LogLevel::Info)
        .into_iter()
        .filter_map(|m| m.strip_prefix("audit-log: ").map(str::to_owned))
        .filter(|m| m.starts_with('{'))
        .map(|m| serde_json::from_str(&m).unwrap())
        .collect()
}

#[test]
fn identity_reaches_the_upstream_and_the_record_and_forged_identity_never_does() {
    for profile in PROFILES {
        let h = harness(profile, &config(100));
        let auth = format!("Bearer {}", token("alice", &["ops"]));
        // Envoy strips the client's copies; Kong's engine cannot remove a request header, so
        // there the suite refuses the request (400 spoofed_identity_header), as the modules do.
        let s = get(
            &h,
            &[
                ("authorization", auth.as_str()),
                ("x-user-id", "mallory"),
                ("x-user-roles", "admin"),
            ],
            "200",
        );
        if profile.is_kong() {
            assert_eq!(s.status, 400, "{profile:?}");
            assert!(String::from_utf8_lossy(&s.reply_body).contains("spoofed_identity_header"));
        } else {
            assert_eq!(s.status, 200, "{profile:?}");
            assert_eq!(
                s.upstream_values("x-user-id"),
                ["alice"],
                "{:?}",
                s.upstream
            );
            assert!(
                !s.upstream_values("x-user-roles")
                    .contains(&"admin".to_owned()),
                "{:?}",
                s.upstream
            );
            // header-injection's correlation id reached the upstream too.
            assert_eq!(
                s.upstream_values("x-correlation-id").len(),
                1,
                "{:?}",
                s.upstream
            );
        }

        let s = get(&h, &[("authorization", auth.as_str())], "200");
        assert_eq!(s.status, 200, "{profile:?}");
        let record = records(&h).pop().unwrap();
        assert_eq!(record["identity"]["subject"], "alice", "{record}");
        assert_eq!(record["status"], 200, "{record}");
        // The response the client got carries header-injection's security headers.
        assert!(s.has_response_header("x-content-type-options"));
    }
}

#[test]
fn a_refusal_and_a_429_and_a_breaker_503_are_recorded_as_the_client_got_them() {
    for profile in PROFILES {
        let h = harness(profile, &config(1));
        let no_token = get(&h, &[], "200");
        assert_eq!(no_token.status, 401, "{profile:?}");

        let auth = format!("Bearer {}", token("bob", &["ops"]));
        let first = get(&h, &[("authorization", auth.as_str())], "200");
        assert_eq!(first.status, 200, "{profile:?}");
        let limited = get(&h, &[("authorization", auth.as_str())], "200");
        assert_eq!(limited.status, 429, "{profile:?}");
        assert!(limited.has_response_header("retry-after"));

        // Upstream failures (another user each, under the limit): two in a row open the
        // breaker, which then answers at once.
        for user in ["carol", "dave"] {
            let auth = format!("Bearer {}", token(user, &["ops"]));
            let failed = get(&h, &[("authorization", auth.as_str())], "503");
            assert!(
                !failed.upstream.is_empty(),
                "{profile:?}: reached the upstream"
            );
        }
        let erin = format!("Bearer {}", token("erin", &["ops"]));
        let open = get(&h, &[("authorization", erin.as_str())], "200");
        assert_eq!(open.status, 503, "{profile:?}");
        assert!(open.upstream.is_empty());

        let statuses: Vec<Value> = records(&h).iter().map(|r| r["status"].clone()).collect();
        assert_eq!(
            statuses,
            [
                json!(401),
                json!(200),
                json!(429),
                json!(503),
                json!(503),
                json!(503)
            ],
            "{profile:?}"
        );
        let recs = records(&h);
        assert_eq!(
            recs[0]["decisions"]["auth_reason"], "token_missing",
            "{}",
            recs[0]
        );
        assert_eq!(recs[2]["decisions"]["ratelimit"], "limited", "{}", recs[2]);
        // header-injection ran before jwt-rbac refused: the refused request has its
        // correlation id in the record too, as with separate filters.
        assert!(recs[0]["correlation_id"].is_string(), "{}", recs[0]);
        // The breaker's own answer: the client got 503 and so does the record, with the
        // verified identity (jwt-rbac ran before the breaker stopped the request).
        assert_eq!(recs[5]["identity"]["subject"], "erin", "{}", recs[5]);
    }
}

#[test]
fn a_refused_section_is_named_by_its_path_and_nothing_runs() {
    for profile in PROFILES {
        let bad = json!({"header_injection": {},
            "jwt_rbac": {"providers": {"sso": {"audiences": "api"}}}});
        let h = Harness::builder()
            .profile(profile)
            .plugin_config(bad.to_string())
            .build_from_file(suite_tests::paths::plugin_wasm("gateway-suite").unwrap())
            .unwrap();
        assert!(!h.configure().unwrap(), "{profile:?}");
        let errors = h.logs_at(LogLevel::Error);
        assert!(
            errors.iter().any(|e| e.starts_with(
                "gateway-suite: invalid configuration: jwt_rbac.providers.sso.audiences: "
            )),
            "{errors:?}"
        );
        let unknown = json!({"jwt_rbca": {}});
        let h = Harness::builder()
            .profile(profile)
            .plugin_config(unknown.to_string())
            .build_from_file(suite_tests::paths::plugin_wasm("gateway-suite").unwrap())
            .unwrap();
        assert!(!h.configure().unwrap());
        let errors = h.logs_at(LogLevel::Error);
        assert!(
            errors
                .iter()
                .any(|e| e
                    .starts_with("gateway-suite: invalid configuration: jwt_rbca: unknown field")),
            "{errors:?}"
        );
    }
}

#[test]
fn a_subset_runs_alone_in_the_configured_order() {
    let h = harness(
        Profile::Envoy,
        &json!({"order": ["ratelimit_shared_data", "header_injection"],
                "header_injection": {},
                "ratelimit_shared_data": {"rules": [{"name": "ip", "key": ["client_ip"],
                    "window": {"limit": 1, "seconds": 60}}]}}),
    );
    let info = h.logs_at(LogLevel::Info);
    assert!(
        info.iter()
            .any(|l| l == "gateway-suite: running ratelimit_shared_data -> header_injection"),
        "{info:?}"
    );
    let ok = get(&h, &[], "200");
    assert_eq!(ok.status, 200);
    // The limiter ran first: header-injection's correlation id is made after it.
    assert_eq!(ok.upstream_values("x-correlation-id").len(), 1);
    let limited = get(&h, &[], "200");
    assert_eq!(limited.status, 429);
    // header-injection's response phase ran on the 429 too, though its request phase never
    // ran (the limiter stopped the request first): the security headers are there.
    assert!(limited.has_response_header("x-content-type-options"));
}

/// jwt-rbac waiting for a provider's first keys (Envoy: the root fetches and wakes the paused
/// requests): when the keys arrive, the jobs after jwt-rbac run before the suite resumes each
/// request. Two requests of one user, a limit of 1: one goes on with its verified identity, the
/// limiter (which ran only after the wake) answers the other 429.
#[test]
fn after_a_wait_for_keys_the_later_jobs_run_before_the_request_goes_on() {
    use host_harness::{Action, CalloutResponse};
    let config = json!({
        "header_injection": {},
        "jwt_rbac": {"providers": {"main": {"algorithms": ["RS256"],
            "remote_jwks": {"upstream": "jwks", "path": "/jwks.json", "authority": "idp.example.com",
                            "max_wait_seconds": 3}}},
            "rules": [{"requires": {"provider": "main"}}]},
        "ratelimit_shared_data": {"rules": [{"name": "per-user", "key": [{"header": "x-user-id"}],
            "window": {"limit": 1, "seconds": 60}}]}
    });
    let h = Harness::builder()
        .profile(Profile::Envoy)
        .workers(2)
        .clusters(["upstream", "jwks"])
        .plugin_config(config.to_string())
        .build_from_file(suite_tests::paths::plugin_wasm("gateway-suite").unwrap())
        .unwrap();
    assert!(h.configure().unwrap(), "{:?}", h.logs_at(LogLevel::Error));
    let auth = format!("Bearer {}", sign("RS256", "rsa-1", &good_claims()));
    let headers = [
        (":method", "GET"),
        (":path", "/x"),
        (":authority", "api"),
        ("authorization", auth.as_str()),
    ];
    let mut streams = Vec::new();
    for worker in 0..2 {
        let mut s = h.worker(worker).stream().unwrap();
        assert_eq!(
            s.send_request_headers(&headers, true).unwrap(),
            Action::Pause
        );
        assert!(s.local_response().is_none() && !s.request_resumed());
        streams.push(s);
    }
    let callout = h.callouts()[0].clone();
    h.respond_callout(
        callout.id,
        CalloutResponse::status(200).body(jwks(&["rsa-1"]).to_string()),
    )
    .unwrap();
    h.advance_clock(std::time::Duration::from_secs(1)).unwrap();
    let resumed: Vec<bool> = streams.iter().map(|s| s.request_resumed()).collect();
    let limited: Vec<Option<u32>> = streams
        .iter()
        .map(|s| s.local_response().map(|r| r.status))
        .collect();
    assert_eq!(
        resumed.iter().filter(|r| **r).count(),
        1,
        "{resumed:?} {limited:?}"
    );
    assert_eq!(
        limited.iter().flatten().collect::<Vec<_>>(),
        [&429],
        "{limited:?}"
    );
    let on = streams.iter().find(|s| s.request_resumed()).unwrap();
    assert_eq!(on.request_header("x-user-id"), Some(b"alice".to_vec()));
    // header-injection ran before the wait: its correlation id went on with the request.
    assert!(on.request_header("x-correlation-id").is_some());
    for mut s in streams {
        s.finish().unwrap();
    }
}

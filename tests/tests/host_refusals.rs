//! Every plugin, under both host profiles, with each host call it makes refused by the host: the
//! call returns a non-Ok status and changes nothing (`Harness::fail_host_call`). Every request
//! must still get an answer, and the VM must never trap: a trap takes down every stream on that
//! worker. The SDK's `hostcalls` panicked on statuses they did not expect (a refused header write,
//! a read-only filter-state key...); the plugins call the host through `gateway_core::abi`, which
//! hands every status back as a value.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use host_harness::{Harness, LogLevel, Profile, Status};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const PROFILES: [Profile; 2] = [Profile::Envoy, Profile::Kong];

/// Every host call the five plugins make on a request's path (and from their root contexts),
/// except `proxy_http_call`: callouts go through the SDK, whose dispatcher must record their
/// tokens (see `gateway_core::abi`).
const CALLS: &[&str] = &[
    "proxy_get_header_map_pairs",
    "proxy_get_header_map_value",
    "proxy_replace_header_map_value",
    "proxy_add_header_map_value",
    "proxy_remove_header_map_value",
    "proxy_get_property",
    "proxy_set_property",
    "proxy_increment_metric",
    "proxy_record_metric",
    "proxy_log",
    "proxy_get_current_time_nanoseconds",
    "proxy_get_shared_data",
    "proxy_set_shared_data",
    "proxy_send_local_response",
    "proxy_get_buffer_bytes",
    "proxy_enqueue_shared_queue",
    "proxy_dequeue_shared_queue",
    "proxy_call_foreign_function",
];

/// Statuses hosts answer with when they refuse a call.
const STATUSES: [Status; 3] = [
    Status::InternalFailure,
    Status::BadArgument,
    Status::NotFound,
];

/// One request: method, path, extra headers, and what the upstream answers if it gets there.
struct Request {
    method: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    upstream_status: &'static str,
}

fn get(
    path: &'static str,
    headers: &[(&'static str, &str)],
    upstream_status: &'static str,
) -> Request {
    Request {
        method: "GET",
        path,
        headers: headers.iter().map(|(n, v)| (*n, (*v).to_owned())).collect(),
        upstream_status,
    }
}

struct Case {
    plugin: &'static str,
    config: Value,
    requests: Vec<Request>,
}

fn cases() -> Vec<Case> {
    let key_digest = hex(&Sha256::digest(b"secret-key-1"));
    vec![
        Case {
            plugin: "header-injection",
            config: json!({"cors": {"allowed_origins": ["https://app.example.com"], "max_age": 600}}),
            requests: vec![
                get(
                    "/a",
                    &[
                        ("origin", "https://app.example.com"),
                        (
                            "traceparent",
                            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                        ),
                    ],
                    "200",
                ),
                Request {
                    method: "OPTIONS",
                    path: "/a",
                    headers: vec![
                        ("origin", "https://app.example.com".into()),
                        ("access-control-request-method", "POST".into()),
                    ],
                    upstream_status: "200",
                },
            ],
        },
        Case {
            plugin: "jwt-rbac",
            config: json!({
                "providers": {"partners": {"api_keys": {"keys": [
                    {"id": "key-1", "sha256": key_digest, "principal": "alice", "roles": ["admin"]}
                ]}}},
                "identity": {"filter_state_key": "jwt_rbac.sub"},
                "rules": [
                    {"match": {"path": {"prefix": "/public/"}}, "requires": "anonymous"},
                    {"requires": {"provider": "partners"}, "roles": {"any_of": ["admin"]}}
                ]
            }),
            requests: vec![
                get(
                    "/orders",
                    &[("x-api-key", "secret-key-1"), ("x-user-id", "spoofed")],
                    "200",
                ),
                get("/orders", &[], "200"),
                get("/orders", &[("x-api-key", "wrong")], "200"),
                get("/public/x", &[("x-user-roles", "admin")], "200"),
            ],
        },
        Case {
            plugin: "ratelimit-shared-data",
            config: json!({
                "rules": [{"name": "per-user", "key": [{"header": "x-user-id"}],
                           "token_bucket": {"capacity": 1, "refill_interval_ms": 60000}}],
                "headers": {"ietf": true, "x_ratelimit": true}
            }),
            requests: vec![
                get("/a", &[("x-user-id", "u1")], "200"),
                get("/a", &[("x-user-id", "u1")], "200"),
                get("/a", &[], "200"),
            ],
        },
        Case {
            plugin: "audit-log",
            config: json!({}),
            requests: vec![
                get(
                    "/a",
                    &[("authorization", "Bearer abc"), ("x-user-id", "u1")],
                    "200",
                ),
                get("/b", &[], "503"),
            ],
        },
        Case {
            plugin: "circuit-breaker",
            config: json!({
                "key": {"source": "cluster"},
                "defaults": {"consecutive_failures": 2, "min_requests": 2,
                             "open": {"duration_ms": 60000}, "on_open": {"mode": "fallback"}}
            }),
            requests: vec![
                get("/a", &[], "503"),
                get("/a", &[], "503"),
                get("/a", &[], "503"),
                get("/a", &[], "200"),
            ],
        },
    ]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn harness(case: &Case, profile: Profile) -> Harness {
    let h = Harness::builder()
        .profile(profile)
        .workers(1)
        .filter_name(case.plugin)
        .property("xds.cluster_name", "orders")
        .plugin_config(case.config.to_string())
        .build_from_file(suite_tests::paths::plugin_wasm(case.plugin).unwrap())
        .unwrap();
    assert!(
        h.configure().unwrap(),
        "{}: {:?}",
        case.plugin,
        h.logs_at(LogLevel::Error)
    );
    h
}

/// Sends every request of `case` through, to the end of each stream; `Err` names the first
/// harness error (a trap).
fn run(h: &Harness, case: &Case) -> Result<(), String> {
    for r in &case.requests {
        let what = format!("{} {}", r.method, r.path);
        let mut s = h.worker(0).stream().map_err(|e| format!("{what}: {e}"))?;
        let mut headers: Vec<(&str, &[u8])> = vec![
            (":method", r.method.as_bytes()),
            (":path", r.path.as_bytes()),
            (":authority", b"api.example.com"),
            (":scheme", b"http"),
        ];
        headers.extend(r.headers.iter().map(|(n, v)| (*n, v.as_bytes())));
        s.set_property("source.address", "192.0.2.7:40000")
            .map_err(|e| format!("{what}: {e}"))?;
        s.send_request_headers(&headers, true)
            .map_err(|e| format!("{what}: request headers: {e}"))?;
        if s.local_response().is_none() {
            s.send_response_headers(
                &[
                    (":status", r.upstream_status),
                    ("content-type", "text/plain"),
                ],
                false,
            )
            .map_err(|e| format!("{what}: response headers: {e}"))?;
            s.send_response_body(b"ok", true)
                .map_err(|e| format!("{what}: response body: {e}"))?;
        }
        s.finish()
            .map_err(|e| format!("{what}: log/done/delete: {e}"))?;
    }
    Ok(())
}

#[test]
fn no_refused_host_call_traps_any_plugin() {
    let mut failures = Vec::new();
    for case in cases() {
        for profile in PROFILES {
            let h = harness(&case, profile);
            run(&h, &case)
                .unwrap_or_else(|e| panic!("{} {profile:?} without refusals: {e}", case.plugin));
            for call in CALLS {
                for status in STATUSES {
                    h.fail_host_call(call, Some(status));
                    let refused = run(&h, &case);
                    h.fail_host_call(call, None);
                    // The same VM still serves: nothing trapped, nothing was left half done.
                    let after = run(&h, &case);
                    if let Err(e) = refused.and(after) {
                        failures.push(format!(
                            "{} {profile:?} {call} -> {status:?}: {e}",
                            case.plugin
                        ));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// One request on worker 0: the local reply's status, or 0 if it went on upstream (answered 200).
fn status_of(h: &Harness, headers: &[(&str, &str)]) -> u32 {
    let mut s = h.worker(0).stream().unwrap();
    let mut all = vec![
        (":method", "GET"),
        (":path", "/orders"),
        (":authority", "api"),
    ];
    all.extend_from_slice(headers);
    s.send_request_headers(&all, true).unwrap();
    let status = s.local_response().map_or(0, |r| r.status);
    if status == 0 {
        s.send_response_headers(&[(":status", "200")], true)
            .unwrap();
    }
    s.finish().unwrap();
    status
}

#[test]
fn a_refused_removal_of_a_forged_identity_header_fails_closed() {
    // If the host will not remove the client's `x-user-id`, the upstream would see it: the
    // request is refused (500) instead, by both plugins that strip identity headers. The same
    // holds for a credential jwt-rbac strips.
    for plugin in ["jwt-rbac", "header-injection"] {
        let case = cases().into_iter().find(|c| c.plugin == plugin).unwrap();
        for profile in PROFILES {
            let h = harness(&case, profile);
            let key = ("x-api-key", "secret-key-1");
            // Kong's engine cannot remove a client's header at all: a forged one is refused
            // with 400 before any removal (kong_engine.rs), whatever the host call says.
            let (forged, forged_refused) = if profile.is_kong() {
                (400, 400)
            } else {
                (0, 500)
            };
            assert_eq!(
                status_of(&h, &[key, ("x-user-id", "admin")]),
                forged,
                "{plugin} {profile:?}"
            );
            h.fail_host_call(
                "proxy_remove_header_map_value",
                Some(Status::InternalFailure),
            );
            assert_eq!(
                status_of(&h, &[key, ("x-user-id", "admin")]),
                forged_refused,
                "{plugin} {profile:?}"
            );
            // No forged header: header-injection has nothing to remove; jwt-rbac still removes
            // the API key (providers strip their credential by default), so it refuses too:
            // the key must not reach the upstream either.
            let expected = if plugin == "jwt-rbac" { 500 } else { 0 };
            assert_eq!(status_of(&h, &[key]), expected, "{plugin} {profile:?}");
            let errors = h.logs_at(LogLevel::Error);
            // On Kong header-injection never asks to remove a header (it refused the forged
            // requests first), so there is no refusal to log.
            let removal_asked = !(profile.is_kong() && plugin == "header-injection");
            assert_eq!(
                errors
                    .iter()
                    .any(|l| l.contains("refused to remove a request header")),
                removal_asked,
                "{plugin} {profile:?}: {errors:?}"
            );
        }
    }
}

#[test]
fn a_refused_header_write_is_logged_and_the_decision_stands() {
    // Identity headers the host will not write are missing upstream (never forged); the request
    // still gets jwt-rbac's decision, and the refusal is in the log.
    let case = cases()
        .into_iter()
        .find(|c| c.plugin == "jwt-rbac")
        .unwrap();
    for profile in PROFILES {
        let h = harness(&case, profile);
        h.fail_host_call(
            "proxy_replace_header_map_value",
            Some(Status::InternalFailure),
        );
        h.fail_host_call("proxy_add_header_map_value", Some(Status::InternalFailure));
        assert_eq!(
            status_of(&h, &[("x-api-key", "secret-key-1")]),
            0,
            "{profile:?}"
        );
        assert_eq!(status_of(&h, &[]), 401, "{profile:?}");
        assert_eq!(status_of(&h, &[("x-api-key", "wrong")]), 401, "{profile:?}");
        let warned = h
            .logs_at(LogLevel::Warn)
            .iter()
            .any(|l| l.contains("cannot update request headers"));
        assert!(warned, "{profile:?}: {:?}", h.logs_at(LogLevel::Warn));
    }
}

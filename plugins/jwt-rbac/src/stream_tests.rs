//! Whole-stream tests against the in-memory host: anti-spoofing on every path, identity
//! injection, denials and their replies, token stripping, cache, preflight bypass.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../../tests/fixtures/jwt-rbac/mint.rs"]
mod mint;

use crate::cache::TokenCache;
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::stream::{Flow, Shared, Stream};
use gateway_core::fake::FakeHost;
use gateway_core::ports::HeaderMapKind::Request;
use mint::*;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::rc::Rc;

const NOW_NANOS: u64 = 1_800_000_000_000_000_000;

fn config() -> Value {
    json!({
        "providers": {
            "main": {
                "issuer": "https://issuer.example.com",
                "audiences": ["api"],
                "algorithms": ["RS256", "ES256", "EdDSA"],
                "jwks": all_jwks()
            },
            "cookie": {
                "algorithms": ["HS256"],
                "jwks": jwks(&["hs-1"]),
                "from": [{"cookie": "jwt"}, {"query": "access_token"}],
                "forward": true
            }
        },
        "rules": [
            {"match": {"path": {"exact": "/health"}}, "requires": "anonymous"},
            {"match": {"path": {"prefix": "/admin"}}, "requires": {"provider": "main"},
             "roles": {"any_of": ["admin"]}},
            {"match": {"path": {"prefix": "/orders"}, "methods": ["DELETE"]}, "requires": {"provider": "main"},
             "scopes": {"all_of": ["orders:delete"]}},
            {"match": {"path": {"prefix": "/public"}}, "requires": {"allow_missing": ["main"]}},
            {"match": {"path": {"prefix": "/both"}}, "requires": {"all_of": ["main", "cookie"]}},
            {"match": {"path": {"prefix": "/either"}}, "requires": {"any_of": ["cookie", "main"]}},
            {"match": {"path": {"prefix": "/"}, "methods": ["GET", "POST", "DELETE", "OPTIONS"]},
             "requires": {"provider": "main"}}
        ],
        "cors_preflight_bypass": true
    })
}

struct Vm {
    shared: Shared,
}

impl Vm {
    fn new(config: &Value, host: &FakeHost) -> Vm {
        let settings = Settings::from_json(config.to_string().as_bytes()).unwrap();
        Vm {
            shared: Shared {
                metrics: Metrics::define(host),
                cache: Rc::new(RefCell::new(TokenCache::new(settings.cache_entries))),
                crypto: None,
                remote: Rc::new(RefCell::new(Vec::new())),
                revocations: Rc::new(RefCell::new(Vec::new())),
                waiting: Rc::new(RefCell::new(Vec::new())),
                stream_fetches: Rc::new(std::cell::Cell::new((0, 0))),
                host: gateway_core::host_kind::HostKind::Envoy,
                settings: Some(Rc::new(settings)),
            },
        }
    }

    fn run(&self, host: &FakeHost) -> Flow {
        host.now_nanos.set(NOW_NANOS);
        Stream::new(self.shared.clone(), 1).on_request_headers(host)
    }
}

const SPOOFED: [(&str, &[u8]); 5] = [
    ("x-user-id", b"admin"),
    ("X-User-Id", b"root"),
    ("x_user_id", b"x"),
    ("x-user_roles", b"admin"),
    ("x-auth-status", b"verified"),
];

fn request(method: &str, path: &str, extra: &[(&str, &[u8])]) -> FakeHost {
    let mut headers: Vec<(&str, &[u8])> = vec![
        (":method", method.as_bytes()),
        (":path", path.as_bytes()),
        (":authority", b"api.example.com"),
    ];
    headers.extend_from_slice(extra);
    FakeHost::with_request(&headers)
}

fn bearer(token: &str) -> Vec<u8> {
    format!("Bearer {token}").into_bytes()
}

fn reply(host: &FakeHost) -> (u32, String, Value) {
    let r = host.local_reply.borrow().clone().expect("a local reply");
    let challenge = r
        .headers
        .iter()
        .find(|(n, _)| n == "www-authenticate")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    (
        r.status,
        challenge,
        serde_json::from_slice(&r.body).unwrap(),
    )
}

fn assert_no_spoofed(host: &FakeHost) {
    for name in ["x-user-id", "x_user_id", "x-user_roles", "x-user-roles"] {
        assert!(
            host.values(Request, name).is_empty(),
            "{name} reached upstream"
        );
    }
}

#[test]
fn allowed_request_gets_identity_and_loses_spoofed_headers_and_token() {
    let token = sign("RS256", "rsa-1", &good_claims());
    let auth = bearer(&token);
    let mut extra = SPOOFED.to_vec();
    extra.push(("authorization", &auth));
    let host = request("GET", "/orders/1", &extra);
    let vm = Vm::new(&config(), &host);
    assert_eq!(vm.run(&host), Flow::Continue);
    assert!(host.local_reply.borrow().is_none());
    assert_eq!(host.values(Request, "x-user-id"), ["alice"]);
    assert_eq!(host.values(Request, "x-user-email"), ["alice@example.com"]);
    assert_eq!(
        host.values(Request, "x-jwt-issuer"),
        ["https://issuer.example.com"]
    );
    assert_eq!(host.values(Request, "x-user-roles"), ["reader,admin"]);
    assert_eq!(
        host.values(Request, "x-user-scopes"),
        ["orders:read orders:write"]
    );
    assert_eq!(host.values(Request, "x-auth-status"), ["verified"]);
    assert_eq!(host.values(Request, "x-auth-method"), ["jwt"]);
    assert!(host.values(Request, "x_user_id").is_empty());
    assert!(host.values(Request, "X-User-Id").len() <= 1);
    assert!(
        host.values(Request, "authorization").is_empty(),
        "token stripped by default"
    );
    assert_eq!(host.metric("jwt_rbac.allowed"), 1);
    assert_eq!(host.metric("jwt_rbac.spoofed_headers_removed"), 5);
}

#[test]
fn failed_request_is_401_and_spoofed_headers_are_gone_too() {
    let token = sign(
        "RS256",
        "rsa-1",
        &claims_with(json!({"exp": 1_700_000_000})),
    );
    let auth = bearer(&token);
    let mut extra = SPOOFED.to_vec();
    extra.push(("authorization", &auth));
    let host = request("GET", "/orders/1", &extra);
    let vm = Vm::new(&config(), &host);
    assert_eq!(vm.run(&host), Flow::Stop);
    let (status, challenge, body) = reply(&host);
    assert_eq!(status, 401);
    assert_eq!(
        challenge,
        "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"token_expired\""
    );
    assert_eq!(
        body,
        json!({"error": "invalid_token", "reason": "token_expired"})
    );
    let r = host.local_reply.borrow().clone().unwrap();
    let text = String::from_utf8_lossy(&r.body).into_owned()
        + &r.headers
            .iter()
            .map(|(_, v)| v.as_str())
            .collect::<String>();
    assert!(!text.contains(&token[..20]), "token echoed");
    assert_no_spoofed(&host);
    assert_eq!(host.metric("jwt_rbac.denied"), 1);
    assert_eq!(host.metric("jwt_rbac.denied.token_expired"), 1);
}

#[test]
fn missing_token_is_401_without_error_code_in_challenge() {
    let host = request("GET", "/orders", &SPOOFED);
    let vm = Vm::new(&config(), &host);
    assert_eq!(vm.run(&host), Flow::Stop);
    let (status, challenge, body) = reply(&host);
    assert_eq!(status, 401);
    assert_eq!(challenge, "Bearer realm=\"api\"");
    assert_eq!(body["reason"], "token_missing");
    assert_no_spoofed(&host);
}

#[test]
fn anonymous_paths_strip_spoofed_headers_and_mark_anonymous() {
    for path in ["/health", "/public/x"] {
        let host = request("GET", path, &SPOOFED);
        let vm = Vm::new(&config(), &host);
        assert_eq!(vm.run(&host), Flow::Continue, "{path}");
        assert_no_spoofed(&host);
        assert_eq!(
            host.values(Request, "x-auth-status"),
            ["anonymous"],
            "{path}"
        );
        assert_eq!(host.metric("jwt_rbac.anonymous"), 1);
    }
}

#[test]
fn allow_missing_still_rejects_an_invalid_token() {
    let host = request(
        "GET",
        "/public/x",
        &[("authorization", b"Bearer not.a.jwt")],
    );
    let vm = Vm::new(&config(), &host);
    assert_eq!(vm.run(&host), Flow::Stop);
    assert_eq!(reply(&host).2["reason"], "token_malformed");
    let token = sign("ES256", "ec-1", &good_claims());
    let auth = bearer(&token);
    let host = request("GET", "/public/x", &[("authorization", &auth)]);
    assert_eq!(vm.run(&host), Flow::Continue);
    assert_eq!(host.values(Request, "x-auth-status"), ["verified"]);
}

#[test]
fn roles_and_scopes_are_403() {
    let reader = sign("EdDSA", "ed-1", &claims_with(json!({"roles": ["reader"]})));
    let auth = bearer(&reader);
    let host = request("GET", "/admin/users", &[("authorization", &auth)]);
    let vm = Vm::new(&config(), &host);
    assert_eq!(vm.run(&host), Flow::Stop);
    let (status, challenge, body) = reply(&host);
    assert_eq!(status, 403);
    assert_eq!(
        challenge,
        "Bearer realm=\"api\", error=\"insufficient_scope\", error_description=\"insufficient_role\""
    );
    assert_eq!(
        body,
        json!({"error": "insufficient_scope", "reason": "insufficient_role"})
    );

    let host = request("DELETE", "/orders/1", &[("authorization", &auth)]);
    assert_eq!(vm.run(&host), Flow::Stop);
    assert_eq!(reply(&host).2["reason"], "insufficient_scope");

    let deleter = sign(
        "EdDSA",
        "ed-1",
        &claims_with(json!({"scope": null, "scp": ["orders:delete"]})),
    );
    let auth = bearer(&deleter);
    let host = request("DELETE", "/orders/1", &[("authorization", &auth)]);
    assert_eq!(vm.run(&host), Flow::Continue);
    assert_eq!(host.values(Request, "x-user-scopes"), ["orders:delete"]);
}

#[test]
fn no_rule_is_403_by_default_and_anonymous_when_allowed() {
    let host = request("PATCH", "/orders/1", &SPOOFED);
    let vm = Vm::new(&config(), &host);
    assert_eq!(vm.run(&host), Flow::Stop);
    let (status, challenge, body) = reply(&host);
    assert_eq!((status, challenge.as_str()), (403, ""));
    assert_eq!(body, json!({"error": "access_denied", "reason": "no_rule"}));
    let mut allow = config();
    allow["no_rule"] = json!("allow");
    let host = request("PATCH", "/orders/1", &SPOOFED);
    let vm = Vm::new(&allow, &host);
    assert_eq!(vm.run(&host), Flow::Continue);
    assert_no_spoofed(&host);
}

#[test]
fn cookie_and_query_sources_all_of_and_any_of() {
    let hs = sign("HS256", "hs-1", &claims_with(json!({"sub": "cookie-user"})));
    let rs = sign("RS256", "rsa-1", &good_claims());
    let auth = bearer(&rs);
    let cookie = format!("a=1; jwt={hs}").into_bytes();
    let host = request(
        "GET",
        "/both",
        &[("authorization", &auth), ("cookie", &cookie)],
    );
    let vm = Vm::new(&config(), &host);
    assert_eq!(vm.run(&host), Flow::Continue);
    assert_eq!(
        host.values(Request, "x-user-id"),
        ["alice"],
        "first provider's claims"
    );
    assert!(host.values(Request, "authorization").is_empty());
    assert_eq!(
        host.values(Request, "cookie"),
        [String::from_utf8_lossy(&cookie)],
        "forward: true"
    );

    // all_of with one missing.
    let host = request("GET", "/both", &[("authorization", &auth)]);
    assert_eq!(vm.run(&host), Flow::Stop);
    assert_eq!(reply(&host).2["reason"], "token_missing");

    // any_of: the query token of `cookie` suffices.
    let host = request("GET", &format!("/either?access_token={hs}"), &[]);
    assert_eq!(vm.run(&host), Flow::Continue);
    assert_eq!(host.values(Request, "x-user-id"), ["cookie-user"]);
    // any_of: a bad cookie token but a good bearer passes; the reason of a total failure is the first.
    let bad = b"a=1; jwt=bad.token.x".to_vec();
    let host = request(
        "GET",
        "/either",
        &[("cookie", &bad), ("authorization", &auth)],
    );
    assert_eq!(vm.run(&host), Flow::Continue);
    let host = request("GET", "/either", &[("cookie", &bad)]);
    assert_eq!(vm.run(&host), Flow::Stop);
    assert_eq!(reply(&host).2["reason"], "token_malformed");
}

#[test]
fn cache_counts_hits_and_misses_and_expires() {
    let token = sign("ES256", "ec-1", &claims_with(json!({"exp": 1_800_000_100})));
    let auth = bearer(&token);
    let host = request("GET", "/x", &[("authorization", &auth)]);
    let headers = host.request_headers.borrow().clone();
    let vm = Vm::new(&config(), &host);
    assert_eq!(vm.run(&host), Flow::Continue);
    host.request_headers.replace(headers.clone());
    assert_eq!(vm.run(&host), Flow::Continue);
    assert_eq!(host.values(Request, "x-user-id"), ["alice"]);
    assert_eq!(vm.shared.cache.borrow().len(), 1);
    assert_eq!(host.metric("jwt_rbac.cache_misses"), 1);
    assert_eq!(host.metric("jwt_rbac.cache_hits"), 1);
    // Past exp (and past the skew): the cached entry is not used.
    host.request_headers.replace(headers);
    host.now_nanos.set(NOW_NANOS + 200 * 1_000_000_000);
    assert_eq!(
        Stream::new(vm.shared.clone(), 1).on_request_headers(&host),
        Flow::Stop
    );
    assert_eq!(reply(&host).2["reason"], "token_expired");
}

#[test]
fn cors_preflight_bypass() {
    let host = request(
        "OPTIONS",
        "/orders",
        &[
            ("origin", b"https://app.example.com"),
            ("access-control-request-method", b"POST"),
        ],
    );
    let vm = Vm::new(&config(), &host);
    assert_eq!(vm.run(&host), Flow::Continue);
    let host = request("OPTIONS", "/orders", &[]);
    assert_eq!(vm.run(&host), Flow::Stop, "not a preflight: needs a token");
}

#[test]
fn duplicate_authorization_headers_are_malformed() {
    let token = sign("RS256", "rsa-1", &good_claims());
    let auth = bearer(&token);
    let host = request(
        "GET",
        "/x",
        &[("authorization", &auth), ("authorization", &auth)],
    );
    let vm = Vm::new(&config(), &host);
    assert_eq!(vm.run(&host), Flow::Stop);
    assert_eq!(reply(&host).2["reason"], "token_malformed");
}

#[test]
fn no_configuration_fails_closed() {
    let host = request("GET", "/x", &SPOOFED);
    let shared = Shared {
        settings: None,
        metrics: Metrics::default(),
        cache: Rc::new(RefCell::new(TokenCache::new(0))),
        crypto: None,
        remote: Rc::new(RefCell::new(Vec::new())),
        revocations: Rc::new(RefCell::new(Vec::new())),
        waiting: Rc::new(RefCell::new(Vec::new())),
        stream_fetches: Rc::new(std::cell::Cell::new((0, 0))),
        host: gateway_core::host_kind::HostKind::Envoy,
    };
    assert_eq!(Stream::new(shared, 1).on_request_headers(&host), Flow::Stop);
    assert_eq!(reply(&host).0, 500);
}

#[test]
fn claim_headers_refuse_crlf_and_objects() {
    let token = sign(
        "RS256",
        "rsa-1",
        &claims_with(json!({"sub": "a\r\nx-user-roles: admin", "email": {"x": 1}})),
    );
    let auth = bearer(&token);
    let host = request("GET", "/x", &[("authorization", &auth)]);
    let vm = Vm::new(&config(), &host);
    assert_eq!(vm.run(&host), Flow::Continue);
    assert!(host.values(Request, "x-user-id").is_empty());
    assert!(host.values(Request, "x-user-email").is_empty());
}

#[test]
fn payload_header_and_filter_state() {
    let token = sign("RS256", "rsa-1", &good_claims());
    let auth = bearer(&token);
    let mut extra = SPOOFED.to_vec();
    extra.push(("x-jwt-claims", b"e30"));
    extra.push(("authorization", &auth));
    let host = request("GET", "/x", &extra);
    let mut cfg = config();
    cfg["identity"] = json!({"payload_header": "x-jwt-claims", "filter_state_key": "jwt_rbac.sub"});
    let vm = Vm::new(&cfg, &host);
    assert_eq!(vm.run(&host), Flow::Continue);
    let values = host.values(Request, "x-jwt-claims");
    assert_eq!(values.len(), 1);
    let decoded = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        &values[0],
    )
    .unwrap();
    let claims: Value = serde_json::from_slice(&decoded).unwrap();
    assert_eq!(claims, good_claims());
    assert_eq!(
        host.properties.borrow().get("jwt_rbac.sub").cloned(),
        Some(b"alice".to_vec())
    );
}

#[test]
fn api_keys_as_a_second_credential() {
    use sha2::{Digest, Sha256};
    let digest: String = Sha256::digest(b"partner-secret-1")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut cfg = config();
    cfg["providers"]["partners"] = json!({"api_keys": {"keys": [
        {"id": "key-1", "sha256": digest, "principal": "partner-a", "roles": ["partner"], "scopes": ["orders:read"]}
    ]}});
    cfg["rules"] = json!([
        {"match": {"path": {"prefix": "/partner"}}, "requires": {"provider": "partners"},
         "roles": {"any_of": ["partner"]}},
        {"requires": {"any_of": ["main", "partners"]}}
    ]);
    let host = request(
        "GET",
        "/partner/orders",
        &[
            ("x-api-key", b"partner-secret-1"),
            ("x-api-key-id", b"spoofed"),
        ],
    );
    let vm = Vm::new(&cfg, &host);
    assert_eq!(vm.run(&host), Flow::Continue);
    assert_eq!(host.values(Request, "x-user-id"), ["partner-a"]);
    assert_eq!(host.values(Request, "x-api-key-id"), ["key-1"]);
    assert_eq!(host.values(Request, "x-auth-method"), ["api-key"]);
    assert_eq!(host.values(Request, "x-user-roles"), ["partner"]);
    assert_eq!(host.values(Request, "x-user-scopes"), ["orders:read"]);
    assert!(host.values(Request, "x-api-key").is_empty(), "key stripped");

    let host = request("GET", "/partner/orders", &[("x-api-key", b"wrong")]);
    assert_eq!(vm.run(&host), Flow::Stop);
    let (status, _, body) = reply(&host);
    assert_eq!(
        (status, body["reason"].as_str()),
        (401, Some("api_key_invalid"))
    );

    // any_of: a JWT also works on the other routes.
    let token = sign("RS256", "rsa-1", &good_claims());
    let auth = bearer(&token);
    let host = request("GET", "/orders", &[("authorization", &auth)]);
    assert_eq!(vm.run(&host), Flow::Continue);
    assert_eq!(host.values(Request, "x-auth-method"), ["jwt"]);
    assert!(host.values(Request, "x-api-key-id").is_empty());
}

#[test]
fn on_kong_a_spoofed_identity_header_is_refused_on_every_path() {
    // Kong's engine cannot remove a client's header before the upstream: refuse instead.
    for path in ["/health", "/orders/1"] {
        for (name, value) in SPOOFED {
            let host = request("GET", path, &[(name, value)]);
            let mut vm = Vm::new(&config(), &host);
            vm.shared.host = gateway_core::host_kind::HostKind::Kong;
            assert_eq!(vm.run(&host), Flow::Stop, "{path} {name}");
            let (status, challenge, body) = reply(&host);
            assert_eq!(status, 400, "{path} {name}");
            assert_eq!(body["reason"], "spoofed_identity_header");
            assert_eq!(body["error"], "invalid_request");
            assert!(challenge.is_empty(), "no challenge for a 400: {challenge}");
        }
    }
    let host = request("GET", "/health", &[]);
    let mut vm = Vm::new(&config(), &host);
    vm.shared.host = gateway_core::host_kind::HostKind::Kong;
    assert_eq!(vm.run(&host), Flow::Continue, "a clean request passes");
}

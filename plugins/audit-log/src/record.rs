//! The record: what is captured per phase, and the JSON object built from it in `on_log`.
//!
//! Request headers are captured in the request-header phase (later filters may change or remove
//! them), response headers in the response-header phase, properties in `on_log`. Every read is
//! defensive: an absent header or property leaves its field out, never fails the request.

use crate::config::Settings;
use crate::redact;
use gateway_core::headers::{first, HeaderList};
use serde_json::{json, Map, Value};

/// What the request-header phase saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFacts {
    /// Host clock at the request headers.
    pub start_nanos: Option<u64>,
    /// `:method`.
    pub method: Option<String>,
    /// `:authority`.
    pub authority: Option<String>,
    /// `:path`, query already redacted.
    pub path: Option<String>,
    /// Request id header.
    pub request_id: Option<String>,
    /// Correlation id header.
    pub correlation_id: Option<String>,
    /// Trace id from `traceparent` (32 hex digits).
    pub trace_id: Option<String>,
    /// `user-agent` (JWT-like values redacted).
    pub user_agent: Option<String>,
    /// `x-forwarded-for`, every line joined by commas.
    pub forwarded_for: Option<String>,
    /// Identity subject.
    pub subject: Option<String>,
    /// Identity roles.
    pub roles: Option<String>,
    /// Credential type.
    pub credential: Option<String>,
    /// Auth outcome header.
    pub auth_status: Option<String>,
    /// Circuit-breaker fallback marker.
    pub breaker: Option<String>,
    /// Configured request headers, redacted.
    pub headers: Vec<(String, String)>,
    /// The request body, when captured.
    pub body: Option<BodyCapture>,
}

/// A body as it streamed through: its size, and its first `max_bytes` bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BodyCapture {
    /// Bytes seen in all.
    pub bytes: u64,
    /// The first bytes, up to the cap.
    pub kept: Vec<u8>,
    /// More bytes came than the cap.
    pub truncated: bool,
}

impl BodyCapture {
    /// Appends a chunk, keeping at most `max` bytes in all.
    pub fn push(&mut self, chunk: &[u8], max: usize) {
        self.bytes = self.bytes.saturating_add(chunk.len() as u64);
        let room = max.saturating_sub(self.kept.len());
        if chunk.len() > room {
            self.truncated = true;
        }
        if let Some(part) = chunk.get(..room.min(chunk.len())) {
            self.kept.extend_from_slice(part);
        }
    }

    /// The record's view: `{"bytes", "json"}` with fields redacted when the kept bytes are one
    /// complete JSON document; otherwise `{"bytes", "truncated", "omitted"}` without content.
    pub fn describe(&self, s: &Settings) -> Value {
        let parsed = if self.truncated {
            None
        } else {
            serde_json::from_slice::<Value>(&self.kept).ok()
        };
        match parsed {
            Some(mut v) => {
                redact::json_fields(&mut v, &s.bodies.redact_json_fields, s.redact_jwt_like);
                json!({"bytes": self.bytes, "json": v})
            }
            None => json!({
                "bytes": self.bytes,
                "truncated": self.truncated,
                "omitted": if self.truncated { "over bodies.max_bytes" } else { "not json" },
            }),
        }
    }
}

/// What the response-header phase saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseFacts {
    /// `:status`.
    pub status: Option<u16>,
    /// Auth failure reason header (redacted if JWT-like).
    pub auth_reason: Option<String>,
    /// Rate-limit remaining header.
    pub ratelimit_remaining: Option<String>,
    /// Configured response headers, redacted.
    pub headers: Vec<(String, String)>,
    /// The response body, when captured.
    pub body: Option<BodyCapture>,
}

/// Host properties read in `on_log` (all optional: Kong has few of them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFacts {
    /// Host clock in `on_log`.
    pub now_nanos: u64,
    /// `source.address` (`ip:port`).
    pub source_address: Option<String>,
    /// `request.total_size`.
    pub bytes_in: Option<u64>,
    /// `response.total_size`.
    pub bytes_out: Option<u64>,
    /// `response.code`.
    pub response_code: Option<u64>,
    /// `response.flags` (Envoy bitmask).
    pub response_flags: Option<u64>,
    /// `request.duration` in nanoseconds.
    pub request_duration_nanos: Option<u64>,
    /// `upstream.address`.
    pub upstream_address: Option<String>,
    /// `xds.cluster_name`.
    pub cluster: Option<String>,
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A header value as a record keeps it: lossily decoded, and redacted when it looks like a JWT
/// (with `redact_jwt_like`).
pub fn header_text(bytes: &[u8], s: &Settings) -> String {
    let v = text(bytes);
    if s.redact_jwt_like && redact::contains_jwt_like(&v) {
        redact::REDACTED.to_owned()
    } else {
        v
    }
}

fn get(headers: &HeaderList, name: &str) -> Option<String> {
    first(headers, name).map(text)
}

/// The trace id of a `traceparent` value (`00-<32 hex>-<16 hex>-<2 hex>`), if well-formed.
pub fn trace_id(traceparent: &str) -> Option<String> {
    let mut parts = traceparent.trim().split('-');
    let _version = parts.next()?;
    let id = parts.next()?;
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) && id != "0".repeat(32))
        .then(|| id.to_ascii_lowercase())
}

/// Longest header value a record keeps, bytes: a longer one is cut (after redaction, so a cut
/// never hides a token from it) and marked with its full length. A gateway whose header limits
/// were raised would otherwise write a multi-megabyte log line per request.
pub const MAX_VALUE_BYTES: usize = 1024;

/// `value`, cut to [`MAX_VALUE_BYTES`] at a character boundary and marked `…[cut, N bytes]`.
pub fn capped(mut value: String) -> String {
    if value.len() <= MAX_VALUE_BYTES {
        return value;
    }
    let full = value.len();
    let mut end = MAX_VALUE_BYTES;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value.truncate(end);
    value.push_str(&format!("…[cut, {full} bytes]"));
    value
}

fn captured(headers: &HeaderList, names: &[String], s: &Settings) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for name in names {
        let values: Vec<String> = gateway_core::headers::all(headers, name)
            .map(|v| redact::header_value(name, &text(v), &s.redact_headers, s.redact_jwt_like))
            .collect();
        if !values.is_empty() {
            out.push((name.clone(), capped(values.join(", "))));
        }
    }
    out
}

/// The reason code of an authentication challenge (`www-authenticate`), as jwt-rbac and other
/// RFC 6750 filters write it: `error_description` (jwt-rbac's stable code, e.g.
/// `token_expired`), else `error`; a bare `Bearer realm=...` challenge means no token came
/// (`token_missing`). Another scheme's challenge is kept as written, capped.
pub fn challenge_reason(challenge: &str) -> String {
    // `name="value"`, found without a substring searcher (a few hundred bytes of wasm each).
    let attribute = |name: &[u8]| {
        let bytes = challenge.as_bytes();
        let at = bytes
            .windows(name.len())
            .position(|w| w == name)?
            .checked_add(name.len())?;
        let rest = challenge.get(at..)?;
        rest.split('"').next().map(str::to_owned)
    };
    if let Some(code) = attribute(b"error_description=\"").filter(|c| !c.is_empty()) {
        return code;
    }
    if let Some(code) = attribute(b"error=\"").filter(|c| !c.is_empty()) {
        return code;
    }
    let bearer = challenge
        .get(..6)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("bearer"));
    if bearer {
        return "token_missing".to_owned();
    }
    capped(challenge.to_owned())
}

impl RequestFacts {
    /// Captures the request headers (one copy of the map, read once).
    pub fn capture(headers: &HeaderList, start_nanos: Option<u64>, s: &Settings) -> Self {
        let h = &s.headers;
        let jwt = s.redact_jwt_like;
        let forwarded: Vec<String> = gateway_core::headers::all(headers, &h.forwarded_for)
            .map(text)
            .collect();
        let safe = |v: Option<String>| {
            v.map(|v| {
                if jwt && redact::contains_jwt_like(&v) {
                    redact::REDACTED.to_owned()
                } else {
                    capped(v)
                }
            })
        };
        Self {
            start_nanos,
            method: get(headers, ":method"),
            // Kong's engine answers `:authority` with nginx's server_name:port; the client's
            // Host is its `host` line there (Envoy has only `:authority`).
            authority: get(headers, "host").or_else(|| get(headers, ":authority")),
            path: get(headers, ":path").map(|p| redact::path(&p, &s.redact_query_params, jwt)),
            request_id: safe(get(headers, &h.request_id)),
            correlation_id: safe(get(headers, &h.correlation_id)),
            trace_id: get(headers, &h.traceparent).and_then(|t| trace_id(&t)),
            user_agent: safe(get(headers, "user-agent")),
            forwarded_for: (!forwarded.is_empty()).then(|| forwarded.join(",")),
            subject: safe(get(headers, &h.user_id)),
            roles: safe(get(headers, &h.user_roles)),
            credential: safe(get(headers, &h.auth_method)),
            auth_status: safe(get(headers, &h.auth_status)),
            breaker: safe(get(headers, &h.breaker)),
            headers: captured(headers, &s.request_headers, s),
            body: None,
        }
    }
}

impl ResponseFacts {
    /// Captures the response headers.
    pub fn capture(headers: &HeaderList, s: &Settings) -> Self {
        let h = &s.headers;
        let reason = get(headers, &h.auth_reason).map(|v| {
            if s.redact_jwt_like && redact::contains_jwt_like(&v) {
                redact::REDACTED.to_owned()
            } else {
                challenge_reason(&v)
            }
        });
        Self {
            status: get(headers, ":status").and_then(|v| v.trim().parse().ok()),
            auth_reason: reason,
            ratelimit_remaining: get(headers, &h.ratelimit_remaining),
            headers: captured(headers, &s.response_headers, s),
            body: None,
        }
    }
}

/// The client IP: with `trusted_hops` N > 0 and at least N entries in `X-Forwarded-For`, the
/// N-th entry from the right (the address the outermost trusted proxy saw); otherwise the peer
/// address (`source.address` without its port).
pub fn client_ip(
    forwarded_for: Option<&str>,
    source: Option<&str>,
    trusted_hops: u32,
) -> Option<String> {
    if trusted_hops > 0 {
        if let Some(xff) = forwarded_for {
            let entries: Vec<&str> = xff
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .collect();
            let n = trusted_hops as usize;
            if entries.len() >= n {
                if let Some(ip) = entries.get(entries.len() - n) {
                    return Some((*ip).to_owned());
                }
            }
        }
    }
    source.map(strip_port)
}

fn strip_port(address: &str) -> String {
    if let Some(rest) = address.strip_prefix('[') {
        if let Some((ip, _)) = rest.split_once(']') {
            return ip.to_owned();
        }
    }
    match address.rsplit_once(':') {
        Some((ip, port)) if !ip.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            ip.to_owned()
        }
        _ => address.to_owned(),
    }
}

/// RFC 3339 UTC with nanoseconds: `2026-11-24T20:15:03.123456789Z`.
pub fn rfc3339(nanos: u64) -> String {
    let secs = nanos / 1_000_000_000;
    let frac = nanos % 1_000_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{frac:09}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

fn put(rec: &mut Map<String, Value>, s: &Settings, field: &str, value: Option<Value>) {
    if let Some(v) = value {
        if s.has(field) {
            rec.insert(field.to_owned(), v);
        }
    }
}

fn object(pairs: Vec<(&str, Option<Value>)>) -> Option<Value> {
    let map: Map<String, Value> = pairs
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
        .collect();
    (!map.is_empty()).then_some(Value::Object(map))
}

fn headers_object(list: &[(String, String)]) -> Option<Value> {
    object(
        list.iter()
            .map(|(k, v)| (k.as_str(), Some(json!(v))))
            .collect(),
    )
}

/// Builds the record (without its chain fields).
pub fn build(
    s: &Settings,
    req: &RequestFacts,
    resp: &ResponseFacts,
    log: &LogFacts,
) -> Map<String, Value> {
    let mut rec = Map::new();
    let status = resp
        .status
        .map(u64::from)
        .or(log.response_code.filter(|c| *c != 0));
    let duration_nanos = log
        .request_duration_nanos
        .or_else(|| req.start_nanos.map(|s| log.now_nanos.saturating_sub(s)));
    put(&mut rec, s, "time", Some(json!(rfc3339(log.now_nanos))));
    put(
        &mut rec,
        s,
        "request_id",
        req.request_id.clone().map(Value::from),
    );
    put(
        &mut rec,
        s,
        "correlation_id",
        req.correlation_id.clone().map(Value::from),
    );
    put(
        &mut rec,
        s,
        "trace_id",
        req.trace_id.clone().map(Value::from),
    );
    put(&mut rec, s, "method", req.method.clone().map(Value::from));
    put(
        &mut rec,
        s,
        "authority",
        req.authority.clone().map(Value::from),
    );
    put(&mut rec, s, "path", req.path.clone().map(Value::from));
    put(&mut rec, s, "status", status.map(Value::from));
    // Milliseconds with microsecond precision, as a decimal number.
    put(
        &mut rec,
        s,
        "duration_ms",
        duration_nanos.map(|n| json!((n / 1000) as f64 / 1000.0)),
    );
    put(&mut rec, s, "bytes_in", log.bytes_in.map(Value::from));
    put(&mut rec, s, "bytes_out", log.bytes_out.map(Value::from));
    let ip = client_ip(
        req.forwarded_for.as_deref(),
        log.source_address.as_deref(),
        s.trusted_hops,
    );
    put(&mut rec, s, "client_ip", ip.map(Value::from));
    put(
        &mut rec,
        s,
        "user_agent",
        req.user_agent.clone().map(Value::from),
    );
    let roles = req.roles.as_ref().map(|r| {
        Value::from(
            r.split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(Value::from)
                .collect::<Vec<_>>(),
        )
    });
    put(
        &mut rec,
        s,
        "identity",
        object(vec![
            ("subject", req.subject.clone().map(Value::from)),
            ("roles", roles),
            ("credential", req.credential.clone().map(Value::from)),
        ]),
    );
    let ratelimit = match (status, &resp.ratelimit_remaining) {
        (Some(429), _) => Some(json!("limited")),
        (_, Some(_)) => Some(json!("allowed")),
        _ => None,
    };
    put(
        &mut rec,
        s,
        "decisions",
        object(vec![
            ("auth", req.auth_status.clone().map(Value::from)),
            ("auth_reason", resp.auth_reason.clone().map(Value::from)),
            ("ratelimit", ratelimit),
            (
                "ratelimit_remaining",
                resp.ratelimit_remaining.clone().map(Value::from),
            ),
            ("breaker", req.breaker.clone().map(Value::from)),
        ]),
    );
    put(
        &mut rec,
        s,
        "upstream",
        object(vec![
            ("cluster", log.cluster.clone().map(Value::from)),
            ("address", log.upstream_address.clone().map(Value::from)),
        ]),
    );
    put(
        &mut rec,
        s,
        "response_flags",
        log.response_flags.map(Value::from),
    );
    put(&mut rec, s, "request_headers", headers_object(&req.headers));
    put(
        &mut rec,
        s,
        "response_headers",
        headers_object(&resp.headers),
    );
    put(
        &mut rec,
        s,
        "request_body",
        req.body.as_ref().map(|b| b.describe(s)),
    );
    put(
        &mut rec,
        s,
        "response_body",
        resp.body.as_ref().map(|b| b.describe(s)),
    );
    rec
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(pairs: &[(&str, &str)]) -> HeaderList {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
            .collect()
    }

    fn settings(json: &str) -> Settings {
        Settings::from_json(json.as_bytes()).unwrap()
    }

    #[test]
    fn time_is_rfc3339_with_nanos() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339(1_795_000_000_123_456_789),
            "2026-11-18T11:06:40.123456789Z"
        );
        assert_eq!(
            rfc3339(951_782_400_000_000_001),
            "2000-02-29T00:00:00.000000001Z"
        );
    }

    #[test]
    fn client_ip_trusts_only_the_configured_hops() {
        let xff = Some("1.1.1.1, 2.2.2.2, 3.3.3.3");
        assert_eq!(client_ip(xff, Some("9.9.9.9:5000"), 0).unwrap(), "9.9.9.9");
        assert_eq!(client_ip(xff, Some("9.9.9.9:5000"), 1).unwrap(), "3.3.3.3");
        assert_eq!(client_ip(xff, Some("9.9.9.9:5000"), 2).unwrap(), "2.2.2.2");
        assert_eq!(client_ip(xff, Some("9.9.9.9:5000"), 4).unwrap(), "9.9.9.9");
        assert_eq!(client_ip(None, Some("[::1]:80"), 1).unwrap(), "::1");
        assert_eq!(client_ip(None, None, 1), None);
    }

    #[test]
    fn full_record_content_and_redaction() {
        let s = settings(
            r#"{"trusted_hops": 1, "request_headers": ["authorization", "x-tenant", "cookie"],
                "response_headers": ["set-cookie", "content-type"]}"#,
        );
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";
        let req = RequestFacts::capture(
            &list(&[
                (":method", "POST"),
                (":authority", "api.example.com"),
                (
                    ":path",
                    &format!("/orders?id=7&access_token={jwt}&token=abc"),
                ),
                ("x-request-id", "rid-1"),
                ("x-correlation-id", "corr-1"),
                (
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                ),
                ("user-agent", "curl/8"),
                ("x-forwarded-for", "10.0.0.1, 203.0.113.9"),
                ("authorization", &format!("Bearer {jwt}")),
                ("cookie", "session=s3cret"),
                ("x-tenant", "acme"),
                ("x-user-id", "alice"),
                ("x-user-roles", "admin, ops"),
                ("x-auth-method", "jwt"),
                ("x-auth-status", "verified"),
            ]),
            Some(1_000_000_000),
            &s,
        );
        let resp = ResponseFacts::capture(
            &list(&[
                (":status", "201"),
                ("set-cookie", "a=b"),
                ("content-type", "application/json"),
                ("x-ratelimit-remaining", "41"),
            ]),
            &s,
        );
        let log = LogFacts {
            now_nanos: 1_003_500_000,
            source_address: Some("127.0.0.1:4000".into()),
            bytes_in: Some(120),
            bytes_out: Some(300),
            response_flags: Some(0),
            cluster: Some("upstream".into()),
            upstream_address: Some("127.0.0.1:8080".into()),
            ..LogFacts::default()
        };
        let rec = Value::Object(build(&s, &req, &resp, &log));
        let expected = json!({
            "time": "1970-01-01T00:00:01.003500000Z",
            "request_id": "rid-1",
            "correlation_id": "corr-1",
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "method": "POST",
            "authority": "api.example.com",
            "path": "/orders?id=7&access_token=[REDACTED]&token=[REDACTED]",
            "status": 201,
            "duration_ms": 3.5,
            "bytes_in": 120,
            "bytes_out": 300,
            "client_ip": "203.0.113.9",
            "user_agent": "curl/8",
            "identity": {"subject": "alice", "roles": ["admin", "ops"], "credential": "jwt"},
            "decisions": {"auth": "verified", "ratelimit": "allowed", "ratelimit_remaining": "41"},
            "upstream": {"cluster": "upstream", "address": "127.0.0.1:8080"},
            "response_flags": 0,
            "request_headers": {"authorization": "[REDACTED]", "cookie": "[REDACTED]", "x-tenant": "acme"},
            "response_headers": {"set-cookie": "[REDACTED]", "content-type": "application/json"}
        });
        assert_eq!(rec, expected);
        assert!(!rec.to_string().contains(jwt));
        assert!(!rec.to_string().contains("s3cret"));
    }

    #[test]
    fn fields_are_selectable_and_absent_facts_leave_fields_out() {
        let s = settings(r#"{"fields": ["method", "status", "identity"]}"#);
        let req = RequestFacts::capture(&list(&[(":method", "GET")]), None, &s);
        let resp = ResponseFacts::default();
        let log = LogFacts {
            response_code: Some(503),
            ..LogFacts::default()
        };
        let rec = Value::Object(build(&s, &req, &resp, &log));
        assert_eq!(rec, json!({"method": "GET", "status": 503}));
    }

    #[test]
    fn denied_and_limited_decisions() {
        let s = settings("{}");
        let req = RequestFacts::capture(&list(&[("x-circuit-breaker", "open")]), None, &s);
        let resp = ResponseFacts::capture(
            &list(&[
                (":status", "429"),
                ("www-authenticate", "Bearer error=\"invalid_token\""),
            ]),
            &s,
        );
        let rec = build(&s, &req, &resp, &LogFacts::default());
        assert_eq!(
            rec.get("decisions").unwrap(),
            &json!({"ratelimit": "limited", "breaker": "open", "auth_reason": "invalid_token"})
        );
    }

    #[test]
    fn auth_reason_is_the_reason_code_of_the_challenge() {
        for (challenge, code) in [
            (
                "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"token_expired\"",
                "token_expired",
            ),
            ("Bearer realm=\"api\"", "token_missing"),
            ("bearer realm=\"api\", error=\"insufficient_scope\"", "insufficient_scope"),
            ("Basic realm=\"x\"", "Basic realm=\"x\""),
        ] {
            assert_eq!(challenge_reason(challenge), code, "{challenge}");
        }
    }

    #[test]
    fn a_huge_captured_header_is_cut_and_marked() {
        let s = settings(r#"{"request_headers": ["x-big"], "redact_jwt_like": true}"#);
        let big = "é".repeat(2_000_000);
        let req = RequestFacts::capture(
            &list(&[("x-big", big.as_str()), ("user-agent", big.as_str())]),
            None,
            &s,
        );
        let value = &req.headers[0].1;
        assert!(value.len() < MAX_VALUE_BYTES + 40, "{}", value.len());
        assert!(
            value.ends_with("…[cut, 4000000 bytes]"),
            "{}",
            &value[value.len() - 30..]
        );
        assert!(req
            .user_agent
            .as_deref()
            .unwrap()
            .ends_with("…[cut, 4000000 bytes]"));
    }

    #[test]
    fn bodies_only_as_redacted_json() {
        let s = settings(r#"{"bodies": {"request": true, "max_bytes": 64}}"#);
        let mut body = BodyCapture::default();
        body.push(br#"{"user": "alice", "#, 64);
        body.push(br#""password": "hunter2"}"#, 64);
        assert_eq!(
            body.describe(&s),
            json!({"bytes": 40, "json": {"user": "alice", "password": "[REDACTED]"}})
        );
        let mut form = BodyCapture::default();
        form.push(b"user=a&password=hunter2", 64);
        assert_eq!(
            form.describe(&s),
            json!({"bytes": 23, "truncated": false, "omitted": "not json"})
        );
        let mut big = BodyCapture::default();
        big.push(&[b'x'; 50], 64);
        big.push(&[b'x'; 50], 64);
        assert_eq!(big.kept.len(), 64);
        assert_eq!(
            big.describe(&s),
            json!({"bytes": 100, "truncated": true, "omitted": "over bodies.max_bytes"})
        );
    }

    #[test]
    fn trace_ids() {
        assert_eq!(trace_id("00-zz"), None);
        assert_eq!(
            trace_id(&format!("00-{}-00f067aa0ba902b7-01", "0".repeat(32))),
            None
        );
    }
}

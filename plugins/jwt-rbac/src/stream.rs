//! One HTTP stream: reads the request headers once, decides in memory, writes changes back.
//!
//! Order: anti-spoofing (every path), CORS preflight bypass, rule, tokens (cache, then
//! validation), roles and scopes, identity headers, token stripping. A denial answers locally
//! with 401/403 and a stable reason code; nothing of the token or the keys is echoed.

use crate::cache::TokenCache;
use crate::claims;
use crate::config::{NoRule, Settings};
use crate::extract::{self, Found};
use crate::metrics::{Metric, Metrics};
use crate::policy::{self, Requirement, Rule};
use crate::reason::Reason;
use crate::remote::{RemoteState, Tracked};
use crate::revocation::RevocationState;
use crate::validate::Verified;
use crate::verify::HostCrypto;
use gateway_core::headers::HeaderEdits;
use gateway_core::host_kind::HostKind;
use gateway_core::ports::{
    Clock, HeaderMapKind, HeaderPort, LocalReplyPort, LogLevel, LogPort, MetricsPort, PropertyPort,
    SharedDataPort,
};
use std::cell::RefCell;
use std::rc::Rc;

/// Everything a stream needs from its host.
pub trait Host:
    HeaderPort + Clock + LocalReplyPort + LogPort + MetricsPort + SharedDataPort + PropertyPort
{
}

impl<T> Host for T where
    T: HeaderPort + Clock + LocalReplyPort + LogPort + MetricsPort + SharedDataPort + PropertyPort
{
}

/// What the host should do after a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on.
    Continue,
    /// Stop: a local reply was sent.
    Stop,
}

/// State shared by every stream of a VM.
#[derive(Clone)]
pub struct Shared {
    /// Compiled configuration (`None`: refused; streams fail closed with 500).
    pub settings: Option<Rc<Settings>>,
    /// Counters.
    pub metrics: Metrics,
    /// Verified tokens.
    pub cache: Rc<RefCell<TokenCache>>,
    /// Host signature checks, when the host offers them and config allows.
    pub crypto: Option<Rc<dyn HostCrypto>>,
    /// Remote JWKS state, one entry per provider (unused for inline providers).
    pub remote: Rc<RefCell<Vec<RemoteState>>>,
    /// Remote revocation lists, one entry per provider (unused without `remote_revocations`).
    pub revocations: Rc<RefCell<Vec<RevocationState>>>,
    /// Requests paused until a remote JWKS has keys: `(context id, since)` (Envoy only: on
    /// Kong a request waits for its own fetch, see `lib.rs`).
    pub waiting: Rc<RefCell<Vec<(u32, i64)>>>,
    /// First fetches streams of this VM sent for themselves (Kong): how many since when.
    pub stream_fetches: Rc<std::cell::Cell<(usize, i64)>>,
    /// The host, decided once in `on_configure`.
    pub host: HostKind,
}

/// Most requests one VM keeps paused while waiting for a first JWKS; more get 503 at once.
pub const MAX_WAITING: usize = 1024;

/// The outcome of authentication.
enum Auth {
    Anonymous,
    Verified(Vec<(usize, Rc<Verified>)>),
}

/// The per-stream logic.
pub struct Stream {
    shared: Shared,
    context_id: u32,
    may_wait: bool,
}

impl Stream {
    /// A stream of a VM; `context_id` is what the root resumes it by after a wait. Only where
    /// the root can act for a stream (Envoy) does a request wait for keys another fetch brings.
    pub fn new(shared: Shared, context_id: u32) -> Self {
        let may_wait = shared.host.switches_context();
        Self {
            shared,
            context_id,
            may_wait,
        }
    }

    /// A stream run again by the root after its wait: it answers, never waits again.
    pub fn after_wait(shared: Shared, context_id: u32, timed_out: bool) -> Self {
        Self {
            shared,
            context_id,
            may_wait: !timed_out,
        }
    }

    /// Request headers phase.
    pub fn on_request_headers<H: Host + ?Sized>(&mut self, host: &H) -> Flow {
        let Some(settings) = self.shared.settings.clone() else {
            host.log(
                LogLevel::Error,
                "jwt-rbac: no valid configuration, answering 500",
            );
            return self.deny(host, "api", Reason::Internal);
        };
        let headers = match host.header_list(HeaderMapKind::Request) {
            Ok(headers) => headers,
            Err(err) => {
                host.log(
                    LogLevel::Error,
                    &format!("jwt-rbac: cannot read request headers: {err}"),
                );
                return self.deny(host, &settings.realm, Reason::Internal);
            }
        };
        let mut request = HeaderEdits::new(headers);
        let stripped = settings.protected.strip(request.headers_mut());
        for name in &stripped.names {
            request.record_removed(name);
        }
        self.shared
            .metrics
            .add(host, Metric::SpoofedHeadersRemoved, stripped.lines);
        if stripped.lines > 0 && !self.shared.host.removes_request_headers() {
            // The host would still forward the client's copy beside the one injected here.
            return self.deny(host, &settings.realm, Reason::SpoofedIdentityHeader);
        }

        let method = request.first(":method").unwrap_or_default().to_vec();
        let path = request.first(":path").unwrap_or_default().to_vec();

        if settings.cors_preflight_bypass
            && method == b"OPTIONS"
            && request.contains("origin")
            && request.contains("access-control-request-method")
        {
            return self.pass_anonymous(host, &settings, &mut request);
        }

        let Some(rule) = policy::first_match(&settings.rules, &method, &path) else {
            return match settings.no_rule {
                NoRule::Allow => self.pass_anonymous(host, &settings, &mut request),
                NoRule::Deny => self.deny_after(host, &settings, &request, Reason::NoRule),
            };
        };

        let now = match host.now_unix_nanos() {
            Ok(nanos) => i64::try_from(nanos / 1_000_000_000).unwrap_or(i64::MAX),
            Err(err) => {
                host.log(LogLevel::Error, &format!("jwt-rbac: no clock: {err}"));
                return self.deny_after(host, &settings, &request, Reason::Internal);
            }
        };
        let mut found_sources = Vec::new();
        let auth = match self.authenticate(host, &settings, rule, &request, now, &mut found_sources)
        {
            Ok(auth) => auth,
            Err(Reason::JwksUnavailable)
                if self.may_wait
                    && settings.jwks_max_wait_seconds > 0
                    && self.shared.waiting.borrow().len() < MAX_WAITING =>
            {
                // Paused, untouched: the root runs this request again when keys arrive or the
                // wait is over (`Stream::after_wait`).
                let mut waiting = self.shared.waiting.borrow_mut();
                if !waiting.iter().any(|(id, _)| *id == self.context_id) {
                    waiting.push((self.context_id, now));
                }
                return Flow::Stop;
            }
            Err(reason) => return self.deny_after(host, &settings, &request, reason),
        };
        let verified = match auth {
            Auth::Anonymous => return self.pass_anonymous(host, &settings, &mut request),
            Auth::Verified(v) => v,
        };
        if let Err(reason) = authorize(&settings, rule, &verified) {
            return self.deny_after(host, &settings, &request, reason);
        }
        for (index, source) in &found_sources {
            if settings.providers.get(*index).is_some_and(|p| !p.forward) {
                extract::strip(source, &mut request);
            }
        }
        inject(&settings, &verified, &mut request);
        if let (Some(key), Some((_, first)), true) = (
            &settings.identity.filter_state_key,
            verified.first(),
            self.shared.host.has_filter_state(),
        ) {
            if let Some(Ok(sub)) = first.claims.get("sub").map(|s| match s {
                serde_json::Value::String(s) => Ok(s.as_bytes()),
                _ => Err(()),
            }) {
                if let Err(err) = host.set_property(&[key.as_str()], sub) {
                    host.log(
                        LogLevel::Debug,
                        &format!("jwt-rbac: cannot set filter state {key}: {err}"),
                    );
                }
            }
        }
        if !self.write(host, &request) {
            return self.deny(host, &settings.realm, Reason::Internal);
        }
        self.shared.metrics.add(host, Metric::Allowed, 1);
        Flow::Continue
    }

    fn authenticate<H: Host + ?Sized>(
        &self,
        host: &H,
        settings: &Settings,
        rule: &Rule,
        request: &HeaderEdits,
        now: i64,
        found_sources: &mut Vec<(usize, crate::config::TokenSource)>,
    ) -> Result<Auth, Reason> {
        let (providers, all, missing_ok) = match &rule.requires {
            Requirement::Anonymous => return Ok(Auth::Anonymous),
            Requirement::AnyOf(p) => (p, false, false),
            Requirement::AllOf(p) => (p, true, false),
            Requirement::AllowMissing(p) => (p, false, true),
        };
        let mut verified = Vec::new();
        let mut first_error = None;
        let mut any_token = false;
        for &index in providers {
            let Some(provider) = settings.providers.get(index) else {
                continue;
            };
            let found = match extract::find(&provider.sources, request) {
                Ok(found) => found,
                Err(reason) => {
                    any_token = true;
                    first_error.get_or_insert(reason);
                    if all {
                        return Err(reason);
                    }
                    continue;
                }
            };
            let Some(Found { token, source }) = found else {
                if all {
                    return Err(Reason::TokenMissing);
                }
                continue;
            };
            any_token = true;
            found_sources.push((index, source));
            match self.validate(host, settings, index, &token, now) {
                Ok(v) => {
                    verified.push((index, v));
                    if !all {
                        break;
                    }
                }
                Err(reason) => {
                    if all {
                        return Err(reason);
                    }
                    first_error.get_or_insert(reason);
                }
            }
        }
        if !verified.is_empty() {
            return Ok(Auth::Verified(verified));
        }
        if missing_ok && !any_token {
            return Ok(Auth::Anonymous);
        }
        Err(first_error.unwrap_or(Reason::TokenMissing))
    }

    /// Validates (or finds in the cache) a token, then checks the remote revocation list, on
    /// cache hits too: a list fetched after the token was cached still revokes it.
    fn validate<H: Host + ?Sized>(
        &self,
        host: &H,
        settings: &Settings,
        index: usize,
        token: &[u8],
        now: i64,
    ) -> Result<Rc<Verified>, Reason> {
        let verified = self.verify_token(host, settings, index, token, now)?;
        let has_list = settings
            .providers
            .get(index)
            .is_some_and(|p| p.revocations.is_some());
        if has_list
            && self
                .shared
                .revocations
                .borrow()
                .get(index)
                .is_some_and(|state| state.list.revokes(&verified.claims))
        {
            return Err(Reason::TokenRevoked);
        }
        Ok(verified)
    }

    fn verify_token<H: Host + ?Sized>(
        &self,
        host: &H,
        settings: &Settings,
        index: usize,
        token: &[u8],
        now: i64,
    ) -> Result<Rc<Verified>, Reason> {
        let provider = settings.providers.get(index).ok_or(Reason::Internal)?;
        if let Some(api_keys) = &provider.api_keys {
            return api_keys
                .check(token)
                .map(Rc::new)
                .ok_or(Reason::ApiKeyInvalid);
        }
        let enabled = self.shared.cache.borrow().enabled();

        if enabled && token.len() <= provider.validator.max_token_bytes {
            if let Some(hit) = self.shared.cache.borrow_mut().get(index, token, now) {
                self.shared.metrics.add(host, Metric::CacheHits, 1);
                return Ok(hit);
            }
            self.shared.metrics.add(host, Metric::CacheMisses, 1);
        }
        let crypto = self.shared.crypto.as_deref();
        let verified = if provider.remote.is_some() {
            let keys = |adopt: bool| {
                let mut states = self.shared.remote.borrow_mut();
                let state = states.get_mut(index)?;
                // Keys another worker fetched may be in shared data before our next tick.
                let changed = adopt && state.adopt(host, &provider.name);
                Some((Rc::clone(&state.keys), changed))
            };
            let (mut current, _) = keys(false).unwrap_or_default();
            if current.is_empty() {
                current = keys(true).map(|(k, _)| k).unwrap_or_default();
            }
            if current.is_empty() {
                return Err(Reason::JwksUnavailable);
            }
            let mut result = provider
                .validator
                .validate_with(&current, token, now, crypto);
            if result == Err(Reason::KidUnknown) {
                if let Some((fresh, true)) = keys(true) {
                    result = provider.validator.validate_with(&fresh, token, now, crypto);
                }
            }
            if result == Err(Reason::KidUnknown) {
                if let Some(state) = self.shared.remote.borrow_mut().get_mut(index) {
                    state.kid_miss = true;
                }
            }
            Rc::new(result?)
        } else {
            Rc::new(provider.validator.validate(token, now, crypto)?)
        };
        if enabled {
            self.shared
                .cache
                .borrow_mut()
                .insert(index, token, Rc::clone(&verified), now);
        }
        Ok(verified)
    }

    fn pass_anonymous<H: Host + ?Sized>(
        &self,
        host: &H,
        settings: &Settings,
        request: &mut HeaderEdits,
    ) -> Flow {
        request.set(&settings.identity.status_header, b"anonymous".to_vec());
        if !self.write(host, request) {
            return self.deny(host, &settings.realm, Reason::Internal);
        }
        self.shared.metrics.add(host, Metric::Anonymous, 1);
        Flow::Continue
    }

    fn deny_after<H: Host + ?Sized>(
        &self,
        host: &H,
        settings: &Settings,
        request: &HeaderEdits,
        reason: Reason,
    ) -> Flow {
        // Keep the request map clean for filters and access logs after this one.
        let _ = self.write(host, request);
        self.deny(host, &settings.realm, reason)
    }

    fn deny<H: Host + ?Sized>(&self, host: &H, realm: &str, reason: Reason) -> Flow {
        self.shared.metrics.denied(host, reason);
        let challenge = challenge(realm, reason);
        let body = format!(
            "{{\"error\":\"{}\",\"reason\":\"{}\"}}",
            reason.error(),
            reason.code()
        );
        let mut headers: Vec<(&str, &str)> = vec![
            ("content-type", "application/json"),
            ("cache-control", "no-store"),
        ];
        if let Some(challenge) = &challenge {
            headers.push(("www-authenticate", challenge));
        }
        if let Err(err) = host.send_local_reply(reason.status(), &headers, body.as_bytes()) {
            host.log(
                LogLevel::Error,
                &format!("jwt-rbac: cannot send the {} reply: {err}", reason.status()),
            );
        }
        Flow::Stop
    }

    /// Writes the request edits; false if the host refused to remove a header (a forged
    /// identity header or the credential may still be there): the request must not go upstream.
    fn write<H: Host + ?Sized>(&self, host: &H, request: &HeaderEdits) -> bool {
        request.write(
            host,
            HeaderMapKind::Request,
            "jwt-rbac",
            "cannot update request headers",
        )
    }
}

/// The `WWW-Authenticate` value for 401 and 403 (`None` for other statuses).
pub fn challenge(realm: &str, reason: Reason) -> Option<String> {
    match reason.status() {
        401 if reason == Reason::TokenMissing => Some(format!("Bearer realm=\"{realm}\"")),
        401 | 403 if reason != Reason::NoRule => Some(format!(
            "Bearer realm=\"{realm}\", error=\"{}\", error_description=\"{}\"",
            reason.error(),
            reason.code()
        )),
        _ => None,
    }
}

fn authorize(
    settings: &Settings,
    rule: &Rule,
    verified: &[(usize, Rc<Verified>)],
) -> Result<(), Reason> {
    if let Some(check) = &rule.roles {
        let roles = all_roles(settings, verified);
        if !check.satisfied_by(&roles) {
            return Err(Reason::InsufficientRole);
        }
    }
    if let Some(check) = &rule.scopes {
        let scopes = all_scopes(verified);
        if !check.satisfied_by(&scopes) {
            return Err(Reason::InsufficientScope);
        }
    }
    Ok(())
}

fn all_roles(settings: &Settings, verified: &[(usize, Rc<Verified>)]) -> Vec<String> {
    let mut roles = Vec::new();
    for (index, v) in verified {
        if let Some(p) = settings.providers.get(*index) {
            for r in policy::roles(&v.claims, &p.roles_claim) {
                if !roles.contains(&r) {
                    roles.push(r);
                }
            }
        }
    }
    roles
}

fn all_scopes(verified: &[(usize, Rc<Verified>)]) -> Vec<String> {
    let mut scopes = Vec::new();
    for (_, v) in verified {
        for s in policy::scopes(&v.claims) {
            if !scopes.contains(&s) {
                scopes.push(s);
            }
        }
    }
    scopes
}

fn inject(settings: &Settings, verified: &[(usize, Rc<Verified>)], request: &mut HeaderEdits) {
    let identity = &settings.identity;
    request.set(&identity.status_header, b"verified".to_vec());
    let api_key_id = verified
        .first()
        .and_then(|(_, v)| v.claims.get("api_key_id"))
        .filter(|_| {
            verified
                .first()
                .and_then(|(i, _)| settings.providers.get(*i))
                .is_some_and(|p| p.api_keys.is_some())
        })
        .and_then(serde_json::Value::as_str);
    match api_key_id {
        Some(id) => {
            request.set(&identity.method_header, b"api-key".to_vec());
            request.set(gateway_core::identity::API_KEY_ID, id.as_bytes().to_vec());
        }
        None => request.set(&identity.method_header, b"jwt".to_vec()),
    }
    if let Some((_, first)) = verified.first() {
        for mapping in &identity.claims {
            if let Some(value) =
                policy::lookup(&first.claims, &mapping.claim).and_then(claims::header_value)
            {
                request.set(&mapping.header, value.into_bytes());
            }
        }
    }
    let join_valid = |items: Vec<String>, sep: &str| {
        let text = items.join(sep);
        (!text.is_empty() && gateway_core::headers::is_valid_value(text.as_bytes())).then_some(text)
    };
    if let Some(roles) = join_valid(all_roles(settings, verified), ",") {
        request.set(&identity.roles_header, roles.into_bytes());
    }
    if let Some(scopes) = join_valid(all_scopes(verified), " ") {
        request.set(&identity.scopes_header, scopes.into_bytes());
    }
    if let (Some(header), Some((_, first))) = (&identity.payload_header, verified.first()) {
        use base64::Engine;
        let json = serde_json::Value::Object(first.claims.clone()).to_string();
        let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
        request.set(header, encoded.into_bytes());
    }
}

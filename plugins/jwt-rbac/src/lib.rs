//! jwt-rbac: a proxy-wasm HTTP filter that authenticates JWTs (inline or remote JWKS; HS*, RS*,
//! PS*, ES256, EdDSA, ES384 through the host or feature `es384`; RFC 8725 hardening) and
//! authorizes roles and scopes per route, then injects verified identity headers.
//!
//! This file only wires proxy-wasm: the root context compiles the configuration in
//! `on_configure`, detects host crypto, and drives remote JWKS and revocation list fetches
//! (`on_tick`, `on_http_call_response`); each HTTP context hands its callback to [`stream::Stream`].
//! Decisions live in the other modules, which never import `proxy_wasm` (except
//! [`host_crypto`], the adapter of Envoy's `verify_signature`). See `docs/jwt-rbac.md`.

pub mod alg;
pub mod api_keys;
pub mod cache;
pub mod claims;
pub mod config;
pub mod config_read;
pub mod der;
pub mod extract;
pub mod fast_rsa;
pub mod host_crypto;
pub mod jwk;
pub mod metrics;
pub mod policy;
pub mod reason;
pub mod remote;
pub mod revocation;
pub mod stream;
pub mod token;
pub mod validate;
pub mod verify;

#[cfg(test)]
mod stream_tests;

use cache::TokenCache;
use config::{CryptoMode, Settings};
use gateway_core::abi;
use gateway_core::host_kind::HostKind;
use gateway_core::metrics::Instance;
use gateway_core::ports::{Clock, HostError, LogLevel, LogPort};
use gateway_core::proxy_wasm_host::ProxyWasmHost;
use metrics::Metrics;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};
use remote::{Doc, RemoteJwks, RemoteState, Tracked};
use revocation::RevocationState;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use stream::{Flow, Shared, Stream};

/// Most first fetches (a provider with no keys yet) one VM keeps in flight on a host whose root
/// cannot wake a waiting stream (Kong): each waiting request fetches for itself, up to this many
/// at once; more get `503 jwks_unavailable` at once.
pub const MAX_STREAM_FETCHES: usize = 8;

/// The plugin's root context: what the module's entry point installs, and what the gateway
/// suite runs as one of its jobs.
pub fn root(context_id: u32) -> Box<dyn RootContext> {
    Box::new(JwtRbacRoot {
        context_id,
        shared: None,
        configuring: false,
        host: HostKind::default(),
    })
}

#[cfg(all(feature = "module", target_arch = "wasm32"))]
proxy_wasm::main! {{
    proxy_wasm::set_root_context(root);
}}

/// Parses the configuration once per VM, fetches remote JWKS, creates a filter per stream.
struct JwtRbacRoot {
    context_id: u32,
    shared: Option<Shared>,
    /// True while `on_configure` runs. On Envoy that includes the main thread's copy of the
    /// plugin, configured before the cluster manager is up: a fetch it starts may never be
    /// answered, so the lease it takes must not hold the workers off for a whole timeout.
    configuring: bool,
    /// The host, decided in `on_configure`. Only where the root may dispatch (Envoy) does it
    /// fetch; elsewhere a request that needs a document fetches it from its own stream.
    host: HostKind,
}

/// How long a fetch started in `on_configure` holds the lease, seconds: one tick.
const CONFIGURE_LEASE_SECS: i64 = 1;

fn now_secs() -> i64 {
    ProxyWasmHost
        .now_unix_nanos()
        .map(|n| i64::try_from(n / 1_000_000_000).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl JwtRbacRoot {
    /// Adopts the keys and revocation lists other workers fetched and starts the fetches that
    /// are due.
    fn refresh_remote(&self) {
        let Some(shared) = &self.shared else {
            return;
        };
        let Some(settings) = &shared.settings else {
            return;
        };
        let now = now_secs();
        let arrived = self.refresh(&shared.remote, settings, &shared.metrics, now);
        self.refresh(&shared.revocations, settings, &shared.metrics, now);
        self.wake(arrived);
    }

    /// For every provider with a remote document `S`: adopts what another worker fetched and
    /// starts a fetch if one is due. True if a document changed.
    fn refresh<S: Tracked>(
        &self,
        states: &RefCell<Vec<S>>,
        settings: &Settings,
        metrics: &Metrics,
        now: i64,
    ) -> bool {
        let host = ProxyWasmHost;
        let mut changed = false;
        let mut states = states.borrow_mut();
        for (provider, state) in settings.providers.iter().zip(states.iter_mut()) {
            let Some(remote) = S::remote(provider) else {
                continue;
            };
            if state.adopt(&host, &provider.name) {
                changed = true;
                host.log(
                    LogLevel::Info,
                    &format!(
                        "jwt-rbac: provider {}: {} {} from shared {}",
                        provider.name,
                        state.count(),
                        S::ITEMS,
                        S::NAME
                    ),
                );
            }
            if !self.host.dispatches_from_root() || !state.due(remote, now) {
                continue;
            }
            match self.fetch(S::DOC, &provider.name, remote, now) {
                Some(Ok(token)) => {
                    state.started(now);
                    *state.schedule().in_flight = Some(token);
                }
                Some(Err(status)) => {
                    state.started(now);
                    refused_fetch(state, metrics, &provider.name, remote, status, now);
                }
                None => {}
            }
        }
        changed
    }

    /// Takes the fetch lease of `doc` and sends the request: `None` if another worker holds
    /// the lease, else the call's token or the host's refusal.
    fn fetch(
        &self,
        doc: Doc,
        provider: &str,
        remote: &RemoteJwks,
        now: i64,
    ) -> Option<Result<u32, HostError>> {
        let timeout = Duration::from_millis(remote.timeout_ms);
        let hold = if self.configuring {
            CONFIGURE_LEASE_SECS
        } else {
            i64::try_from(timeout.as_secs()).unwrap_or(60) + 1
        };
        let until = now.saturating_add(hold);
        if !remote::take_lease(&ProxyWasmHost, doc, provider, now, until) {
            return None;
        }
        Some(send_fetch(remote, false))
    }

    /// Runs paused requests again: all of them when keys arrived, else those whose wait is over
    /// (they get their answer, `503 jwks_unavailable` if there are still no keys).
    fn wake(&self, keys_arrived: bool) {
        let Some(shared) = &self.shared else {
            return;
        };
        if !self.host.switches_context() {
            return;
        }
        let Some(settings) = &shared.settings else {
            return;
        };
        let now = now_secs();
        let due: Vec<(u32, bool)> = {
            let mut waiting = shared.waiting.borrow_mut();
            let mut due = Vec::new();
            waiting.retain(|(id, since)| {
                let timed_out = now.saturating_sub(*since) >= settings.jwks_max_wait_seconds;
                if keys_arrived || timed_out {
                    due.push((*id, timed_out));
                    false
                } else {
                    true
                }
            });
            due
        };
        if due.is_empty() {
            return;
        }
        for (id, timed_out) in due {
            // A stream gone meanwhile (client closed) is no longer a context: skip it.
            if ProxyWasmHost.set_effective_context(id).is_err() {
                continue;
            }
            let mut stream = Stream::after_wait(shared.clone(), id, timed_out);
            if stream.on_request_headers(&ProxyWasmHost) == Flow::Continue {
                let _ = ProxyWasmHost.resume_request();
            }
        }
        // Later root calls (http_call, logs) must act as the root again.
        let _ = ProxyWasmHost.set_effective_context(self.context_id);
    }
}

impl Context for JwtRbacRoot {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body_size: usize, _: usize) {
        let _phase = ProxyWasmHost::phase();
        let mut arrived = false;
        if let Some(shared) = &self.shared {
            if let Some(settings) = &shared.settings {
                let answer = |revocations: bool| {
                    let metrics = &shared.metrics;
                    if revocations {
                        fetch_answer(
                            &shared.revocations,
                            settings,
                            metrics,
                            token,
                            headers,
                            body_size,
                        )
                    } else {
                        fetch_answer(&shared.remote, settings, metrics, token, headers, body_size)
                    }
                };
                if answer(true).is_some() {
                    return;
                }
                arrived = answer(false).unwrap_or(false);
            }
        }
        self.wake(arrived);
    }
}

/// The `:status` and body of a callout answer (body only up to `max` bytes, else empty).
fn callout_answer(headers: usize, body_size: usize, max: usize) -> (Option<Vec<u8>>, Vec<u8>) {
    // A failed call (reset, timeout) has no header map: only read what the host announced.
    let status = (headers > 0)
        .then(|| {
            abi::header_value(
                proxy_wasm::types::MapType::HttpCallResponseHeaders,
                ":status",
            )
            .ok()
            .flatten()
        })
        .flatten();
    let body = if body_size > 0 && body_size <= max {
        abi::buffer(
            proxy_wasm::types::BufferType::HttpCallResponseBody,
            0,
            body_size,
        )
        .ok()
        .flatten()
        .unwrap_or_default()
    } else {
        Vec::new()
    };
    (status, body)
}

/// On Kong a request that needs a remote document waits for its own fetch. Only Kong 3.9's
/// engine calls the filter back when that fetch fails (ngx_wasm_module 4c610b49); 3.8's logs
/// "dispatch failed" and lets the waiting request through undecided. The engine cannot be told
/// apart at run time, so a config with remote documents must say it runs on 3.9.
fn remote_needs_kong_3_9(settings: &Settings, host: HostKind) -> Result<(), String> {
    if host.dispatches_from_root() || settings.kong_version == Some(config::KongVersion::V3_9) {
        return Ok(());
    }
    let Some(provider) = settings
        .providers
        .iter()
        .find(|p| p.remote.is_some() || p.revocations.is_some())
    else {
        return Ok(());
    };
    let field = if provider.remote.is_some() {
        "remote_jwks"
    } else {
        "remote_revocations"
    };
    Err(format!(
        "providers.{}.{field}: on kong only 3.9's engine reports a failed fetch to the request \
         waiting for it (3.8's lets it through): set \"kong_version\": \"3.9\" on kong 3.9, \
         or give the keys in jwks",
        provider.name
    ))
}

/// The host refused to send a fetch: back off, count it, and say which field to fix. Envoy
/// refuses a call to a cluster it does not have (`BadArgument`), Kong one to a target that is
/// not `host:port`: that is a configuration error the operator must see, named by its field.
fn refused_fetch<S: Tracked>(
    state: &mut S,
    metrics: &Metrics,
    provider: &str,
    remote: &RemoteJwks,
    status: HostError,
    now: i64,
) {
    let host = ProxyWasmHost;
    state.failed(&host, remote, provider, now);
    metrics.add(&host, S::FAILED, 1);
    log_refused_fetch(
        provider,
        (S::FIELD, S::NAME),
        &remote.upstream,
        status,
        *state.schedule().backoff,
    );
}

fn log_refused_fetch(
    provider: &str,
    (field, doc): (&str, &str),
    upstream: &str,
    status: HostError,
    backoff: i64,
) {
    // A refused target is a configuration error the operator must fix, named by its field.
    let (level, why) = if status == HostError::BadArgument {
        (
            LogLevel::Error,
            "no such cluster on envoy; not host:port on kong",
        )
    } else {
        (LogLevel::Warn, "the gateway refused the call")
    };
    ProxyWasmHost.log(
        level,
        &format!(
            "jwt-rbac: providers.{provider}.{field}.upstream: cannot call {upstream:?} for the \
             {doc} ({why}: {status:?}); retry in {backoff} s"
        ),
    );
}

/// Sends the fetch of one remote document (the answer comes back to the calling context).
///
/// `kong`: Kong's engine speaks TLS to a dispatch target only when the call says `:scheme:
/// https` (ngx_wasm_module's `ngx_http_proxy_wasm_dispatch.c`); a `host:443` target gets it. On
/// Envoy the cluster decides.
fn send_fetch(remote: &RemoteJwks, kong: bool) -> Result<u32, HostError> {
    let mut headers = vec![
        (":method", "GET"),
        (":path", remote.path.as_str()),
        (":authority", remote.authority.as_str()),
        ("accept", "application/json"),
    ];
    if kong && remote.upstream.ends_with(":443") {
        headers.push((":scheme", "https"));
    }
    let timeout = Duration::from_millis(remote.timeout_ms);
    ProxyWasmHost.dispatch_http_call(&remote.upstream, headers, None, timeout)
}

/// Handles a fetch answer for a document of kind `S` (a provider's JWKS or revocation list):
/// `None` if `token` is not one of the root's fetches, else whether a usable document arrived.
fn fetch_answer<S: Tracked>(
    states: &RefCell<Vec<S>>,
    settings: &Settings,
    metrics: &Metrics,
    token: u32,
    headers: usize,
    body_size: usize,
) -> Option<bool> {
    let index = states
        .borrow_mut()
        .iter_mut()
        .position(|s| *s.schedule().in_flight == Some(token))?;
    Some(apply_answer(
        states, settings, metrics, index, token, headers, body_size,
    ))
}

/// Applies the answer to the fetch `token` of provider `index`'s document `S`: installs and
/// shares a usable document, or backs off. True if a usable document arrived.
fn apply_answer<S: Tracked>(
    states: &RefCell<Vec<S>>,
    settings: &Settings,
    metrics: &Metrics,
    index: usize,
    token: u32,
    headers: usize,
    body_size: usize,
) -> bool {
    let mut states = states.borrow_mut();
    let (Some(state), Some(provider)) = (states.get_mut(index), settings.providers.get(index))
    else {
        return false;
    };
    if *state.schedule().in_flight == Some(token) {
        *state.schedule().in_flight = None;
    }
    let Some(remote) = S::remote(provider) else {
        return false;
    };
    let host = ProxyWasmHost;
    let now = now_secs();
    let (status, body) = callout_answer(headers, body_size, S::MAX_BYTES);
    let usable = (status.as_deref() == Some(b"200"))
        .then(|| S::parse_noting(&body))
        .flatten();
    let Some((value, skipped)) = usable else {
        state.failed(&host, remote, &provider.name, now);
        metrics.add(&host, S::FAILED, 1);
        let backoff = *state.schedule().backoff;
        log_fetch_failed(
            &provider.name,
            S::NAME,
            status.as_deref(),
            body_size,
            (state.count(), S::ITEMS),
            backoff,
        );
        return false;
    };
    let stored = state.fetched(&host, &provider.name, value, &body, now);
    metrics.add(&host, S::OK, 1);
    log_fetched(
        &provider.name,
        S::NAME,
        &skipped,
        (state.count(), S::ITEMS),
        stored.is_ok(),
    );
    true
}

/// The log line of a fetch whose answer was not usable (not generic: one copy in the module).
fn log_fetch_failed(
    provider: &str,
    doc: &str,
    status: Option<&[u8]>,
    body_size: usize,
    (count, items): (usize, &str),
    backoff: i64,
) {
    let status = status.map_or_else(
        || "none".to_owned(),
        |s| String::from_utf8_lossy(s).into_owned(),
    );
    ProxyWasmHost.log(
        LogLevel::Warn,
        &format!(
            "jwt-rbac: provider {provider}: {doc} fetch failed (status {status}, {body_size} \
             bytes); keeping {count} {items}, retry in {backoff} s"
        ),
    );
}

/// The log lines of a usable fetch: one per item skipped, then what is in use.
fn log_fetched(
    provider: &str,
    doc: &str,
    skipped: &[String],
    (count, items): (usize, &str),
    shared: bool,
) {
    let host = ProxyWasmHost;
    for skipped in skipped {
        host.log(
            LogLevel::Warn,
            &format!("jwt-rbac: provider {provider}: {doc} key skipped: {skipped}"),
        );
    }
    let note = if shared {
        ""
    } else {
        " (not shared: shared data refused)"
    };
    host.log(
        LogLevel::Info,
        &format!("jwt-rbac: provider {provider}: fetched {count} {items}{note}"),
    );
}

impl RootContext for JwtRbacRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let _phase = ProxyWasmHost::phase();
        let host = ProxyWasmHost;
        let Some(settings) = host.compiled_configuration("jwt-rbac", Settings::from_json) else {
            return false;
        };
        self.host = host.host_kind();
        // Kong's engine traps on any foreign function call: never probe for one there.
        let crypto = host_crypto::EnvoyVerifySignature::detect(
            settings.crypto == CryptoMode::Auto && self.host.has_foreign_functions(),
        );
        if let Err(err) = host_crypto::check_host_only(&settings, crypto.is_some()) {
            host.log(
                LogLevel::Error,
                &format!("jwt-rbac: invalid configuration: {err}"),
            );
            return false;
        }
        for line in host_crypto::describe(&settings, crypto.is_some()) {
            host.log(LogLevel::Info, &line);
        }
        if let Err(err) = remote_needs_kong_3_9(&settings, self.host) {
            host.log(
                LogLevel::Error,
                &format!("jwt-rbac: invalid configuration: {err}"),
            );
            return false;
        }
        if !self.host.removes_request_headers() {
            for provider in settings.providers.iter().filter(|p| !p.forward) {
                host.log(
                    LogLevel::Warn,
                    &format!(
                        "jwt-rbac: provider {}: forward false does not hold on kong: the \
                         upstream gets the credential (no request header can be removed)",
                        provider.name
                    ),
                );
            }
        }
        let any_remote = settings
            .providers
            .iter()
            .any(|p| p.remote.is_some() || p.revocations.is_some());
        self.shared = Some(Shared {
            metrics: Metrics::define(&Instance::new(&host, settings.stat_prefix.as_deref())),
            cache: Rc::new(RefCell::new(TokenCache::new(settings.cache_entries))),
            crypto: crypto.map(|c| Rc::new(c) as Rc<dyn verify::HostCrypto>),
            waiting: Rc::new(RefCell::new(Vec::new())),
            remote: Rc::new(RefCell::new(vec![
                RemoteState::default();
                settings.providers.len()
            ])),
            revocations: Rc::new(RefCell::new(vec![
                RevocationState::default();
                settings.providers.len()
            ])),
            stream_fetches: Rc::new(std::cell::Cell::new((0, 0))),
            host: self.host,
            settings: Some(Rc::new(settings)),
        });
        if any_remote {
            // Ticks adopt what other workers fetched; only on Envoy do they fetch too.
            if let Err(status) = ProxyWasmHost.set_tick_period(1000) {
                host.log(
                    LogLevel::Error,
                    &format!("jwt-rbac: cannot set the tick period: {status:?}"),
                );
            }
            self.configuring = true;
            self.refresh_remote();
            self.configuring = false;
        }
        true
    }

    fn on_tick(&mut self) {
        let _phase = ProxyWasmHost::phase();
        self.refresh_remote();
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let shared = self.shared.clone().unwrap_or_else(|| Shared {
            settings: None,
            metrics: Metrics::default(),
            cache: Rc::new(RefCell::new(TokenCache::new(0))),
            crypto: None,
            remote: Rc::new(RefCell::new(Vec::new())),
            revocations: Rc::new(RefCell::new(Vec::new())),
            waiting: Rc::new(RefCell::new(Vec::new())),
            stream_fetches: Rc::new(std::cell::Cell::new((0, 0))),
            host: self.host,
        });
        Some(Box::new(JwtRbacFilter {
            stream: Stream::new(shared.clone(), context_id),
            shared,
            context_id,
            fetches: Vec::new(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// One HTTP stream.
struct JwtRbacFilter {
    stream: Stream,
    shared: Shared,
    context_id: u32,
    /// This stream's own fetches in flight (hosts whose root cannot wake it: Kong).
    fetches: Vec<StreamFetch>,
}

/// A fetch a stream sent for itself.
#[derive(Debug, Clone, Copy)]
struct StreamFetch {
    token: u32,
    provider: usize,
    doc: Doc,
}

impl JwtRbacFilter {
    /// On a host whose root cannot wake a stream (Kong), a request that needs a remote document
    /// fetches it itself, in its own request phase (the only place such a host lets it), and
    /// waits for that answer: the first keys of a provider (up to [`MAX_STREAM_FETCHES`] at once
    /// per VM), or a due refresh (one per gateway, under the shared lease). True if it sent one.
    fn start_fetches(&mut self) -> bool {
        let Some(settings) = self.shared.settings.clone() else {
            return false;
        };
        if !settings
            .providers
            .iter()
            .any(|p| p.remote.is_some() || p.revocations.is_some())
        {
            return false;
        }
        let now = now_secs();
        self.start::<RemoteState>(&self.shared.remote.clone(), &settings, now);
        self.start::<RevocationState>(&self.shared.revocations.clone(), &settings, now);
        !self.fetches.is_empty()
    }

    fn start<S: Tracked>(&mut self, states: &RefCell<Vec<S>>, settings: &Settings, now: i64) {
        let host = ProxyWasmHost;
        for (index, provider) in settings.providers.iter().enumerate() {
            let Some(remote) = S::remote(provider) else {
                continue;
            };
            {
                let mut states = states.borrow_mut();
                let Some(state) = states.get_mut(index) else {
                    continue;
                };
                if state.blocks() {
                    // Another worker may have fetched it since the last tick.
                    if state.adopt(&host, &provider.name) || now < *state.schedule().not_before {
                        continue;
                    }
                    let hold = i64::try_from(remote.timeout_ms / 1000).unwrap_or(60) + 1;
                    // At most MAX_STREAM_FETCHES per hold window (a fetch's longest life).
                    let (mut sent, mut since) = self.shared.stream_fetches.get();
                    if now >= since.saturating_add(hold) {
                        (sent, since) = (0, now);
                    }
                    if sent >= MAX_STREAM_FETCHES {
                        continue;
                    }
                    self.shared.stream_fetches.set((sent + 1, since));
                } else {
                    let hold = i64::try_from(remote.timeout_ms / 1000).unwrap_or(60) + 1;
                    if !state.due(remote, now)
                        || !remote::take_lease(&host, S::DOC, &provider.name, now, now + hold)
                    {
                        continue;
                    }
                }
            }
            let sent = send_fetch(remote, true);
            let mut states = states.borrow_mut();
            let Some(state) = states.get_mut(index) else {
                continue;
            };
            state.started(now);
            match sent {
                Ok(token) => self.fetches.push(StreamFetch {
                    token,
                    provider: index,
                    doc: S::DOC,
                }),
                Err(status) => {
                    refused_fetch(
                        state,
                        &self.shared.metrics,
                        &provider.name,
                        remote,
                        status,
                        now,
                    );
                }
            }
        }
    }
}

impl Context for JwtRbacFilter {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body_size: usize, _: usize) {
        let _phase = ProxyWasmHost::phase();
        let Some(at) = self.fetches.iter().position(|f| f.token == token) else {
            return;
        };
        let fetch = self.fetches.swap_remove(at);
        if let Some(settings) = self.shared.settings.clone() {
            let metrics = &self.shared.metrics;
            match fetch.doc {
                Doc::Jwks => {
                    apply_answer(
                        &self.shared.remote,
                        &settings,
                        metrics,
                        fetch.provider,
                        token,
                        headers,
                        body_size,
                    );
                }
                Doc::Revocations => {
                    apply_answer(
                        &self.shared.revocations,
                        &settings,
                        metrics,
                        fetch.provider,
                        token,
                        headers,
                        body_size,
                    );
                }
            }
        }
        if !self.fetches.is_empty() {
            return;
        }
        // Every answer is in: decide now, never wait again (503 if there are still no keys).
        let mut stream = Stream::after_wait(self.shared.clone(), self.context_id, true);
        if stream.on_request_headers(&ProxyWasmHost) == Flow::Continue {
            let _ = ProxyWasmHost.resume_request();
        }
    }
}

impl HttpContext for JwtRbacFilter {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let _phase = ProxyWasmHost::phase();
        if !self.shared.host.dispatches_from_root() && self.start_fetches() {
            return Action::Pause;
        }
        match self.stream.on_request_headers(&ProxyWasmHost) {
            Flow::Continue => Action::Continue,
            Flow::Stop => Action::Pause,
        }
    }
}

#[cfg(test)]
mod host_tests {
    use super::*;

    fn settings(extra: &str) -> Settings {
        let config = format!(
            r#"{{"providers": {{"sso": {{"algorithms": ["RS256"],
                "remote_jwks": {{"upstream": "127.0.0.1:9999"}}}}}}{extra}}}"#
        );
        Settings::from_json(config.as_bytes()).unwrap()
    }

    #[test]
    fn remote_documents_on_kong_need_kong_3_9_said() {
        let err = remote_needs_kong_3_9(&settings(""), HostKind::Kong).unwrap_err();
        assert!(err.starts_with("providers.sso.remote_jwks: "), "{err}");
        assert!(err.contains("\"kong_version\": \"3.9\""), "{err}");
        let err = remote_needs_kong_3_9(&settings(r#", "kong_version": "3.8""#), HostKind::Kong)
            .unwrap_err();
        assert!(err.contains("3.8's lets it through"), "{err}");
        assert!(
            remote_needs_kong_3_9(&settings(r#", "kong_version": "3.9""#), HostKind::Kong).is_ok()
        );
        assert!(remote_needs_kong_3_9(&settings(""), HostKind::Envoy).is_ok());
    }
}

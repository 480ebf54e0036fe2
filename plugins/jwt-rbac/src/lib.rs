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
use gateway_core::ports::{Clock, HostError, LogLevel, LogPort};
use gateway_core::proxy_wasm_host::{host_error, ProxyWasmHost};
use metrics::Metrics;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};
use remote::{Doc, RemoteJwks, RemoteState, Tracked};
use revocation::RevocationState;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use stream::{Flow, Shared, Stream};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        Box::new(JwtRbacRoot {
            context_id,
            shared: None,
            configuring: false,
        })
    });
}}

/// Parses the configuration once per VM, fetches remote JWKS, creates a filter per stream.
struct JwtRbacRoot {
    context_id: u32,
    shared: Option<Shared>,
    /// True while `on_configure` runs. On Envoy that includes the main thread's copy of the
    /// plugin, configured before the cluster manager is up: a fetch it starts may never be
    /// answered, so the lease it takes must not hold the workers off for a whole timeout.
    configuring: bool,
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
            if !state.due(remote, now) {
                continue;
            }
            match self.fetch(S::DOC, &provider.name, remote, now) {
                Some(Ok(token)) => {
                    state.started(now);
                    *state.schedule().in_flight = Some(token);
                }
                Some(Err(status)) => {
                    state.started(now);
                    state.failed(&host, remote, &provider.name, now);
                    metrics.add(&host, S::FAILED, 1);
                    host.log(
                        LogLevel::Warn,
                        &format!(
                            "jwt-rbac: provider {}: cannot call {} for the {} ({status:?}); retry in {} s",
                            provider.name,
                            remote.upstream,
                            S::NAME,
                            *state.schedule().backoff
                        ),
                    );
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
        let headers = vec![
            (":method", "GET"),
            (":path", remote.path.as_str()),
            (":authority", remote.authority.as_str()),
            ("accept", "application/json"),
        ];
        // Through the SDK: its dispatcher must record the token to route the answer back (it
        // panics on statuses other than Ok, BadArgument and InternalFailure; hosts answer a
        // refused call with those two).
        Some(
            self.dispatch_http_call(&remote.upstream, headers, None, vec![], timeout)
                .map_err(host_error),
        )
    }

    /// Runs paused requests again: all of them when keys arrived, else those whose wait is over
    /// (they get their answer, `503 jwks_unavailable` if there are still no keys).
    fn wake(&self, keys_arrived: bool) {
        let Some(shared) = &self.shared else {
            return;
        };
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
            if abi::set_effective_context(id).is_err() {
                continue;
            }
            let mut stream = Stream::after_wait(shared.clone(), id, timed_out);
            if stream.on_request_headers(&ProxyWasmHost) == Flow::Continue {
                let _ = abi::resume_request();
            }
        }
        // Later root calls (http_call, logs) must act as the root again.
        let _ = abi::set_effective_context(self.context_id);
    }
}

impl Context for JwtRbacRoot {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body_size: usize, _: usize) {
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

/// Handles a fetch answer for a document of kind `S` (a provider's JWKS or revocation list):
/// `None` if `token` is not one of its fetches, else whether a usable document arrived.
fn fetch_answer<S: Tracked>(
    states: &RefCell<Vec<S>>,
    settings: &Settings,
    metrics: &Metrics,
    token: u32,
    headers: usize,
    body_size: usize,
) -> Option<bool> {
    let mut states = states.borrow_mut();
    let index = states
        .iter_mut()
        .position(|s| *s.schedule().in_flight == Some(token))?;
    let (Some(state), Some(provider)) = (states.get_mut(index), settings.providers.get(index))
    else {
        return Some(false);
    };
    *state.schedule().in_flight = None;
    let Some(remote) = S::remote(provider) else {
        return Some(false);
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
        host.log(
            LogLevel::Warn,
            &format!(
                "jwt-rbac: provider {}: {} fetch failed (status {}, {body_size} bytes); keeping {} {}, retry in {} s",
                provider.name,
                S::NAME,
                status.map(|s| String::from_utf8_lossy(&s).into_owned()).unwrap_or_else(|| "none".into()),
                state.count(),
                S::ITEMS,
                *state.schedule().backoff
            ),
        );
        return Some(false);
    };
    for skipped in skipped {
        host.log(
            LogLevel::Warn,
            &format!(
                "jwt-rbac: provider {}: {} key skipped: {skipped}",
                provider.name,
                S::NAME
            ),
        );
    }
    let stored = state.fetched(&host, &provider.name, value, &body, now);
    metrics.add(&host, S::OK, 1);
    host.log(
        LogLevel::Info,
        &format!(
            "jwt-rbac: provider {}: fetched {} {}{}",
            provider.name,
            state.count(),
            S::ITEMS,
            if stored.is_ok() {
                ""
            } else {
                " (not shared: shared data refused)"
            }
        ),
    );
    Some(true)
}

impl RootContext for JwtRbacRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let host = ProxyWasmHost;
        let Some(settings) = host.compiled_configuration("jwt-rbac", Settings::from_json) else {
            return false;
        };
        let crypto = host_crypto::EnvoyVerifySignature::detect(settings.crypto == CryptoMode::Auto);
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
        let any_remote = settings
            .providers
            .iter()
            .any(|p| p.remote.is_some() || p.revocations.is_some());
        self.shared = Some(Shared {
            metrics: Metrics::define(&host),
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
            settings: Some(Rc::new(settings)),
        });
        if any_remote {
            if let Err(status) = abi::set_tick_period_millis(1000) {
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
        });
        Some(Box::new(JwtRbacFilter {
            stream: Stream::new(shared, context_id),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// One HTTP stream.
struct JwtRbacFilter {
    stream: Stream,
}

impl Context for JwtRbacFilter {}

impl HttpContext for JwtRbacFilter {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        match self.stream.on_request_headers(&ProxyWasmHost) {
            Flow::Continue => Action::Continue,
            Flow::Stop => Action::Pause,
        }
    }
}

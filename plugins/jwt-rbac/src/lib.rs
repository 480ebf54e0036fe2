//! jwt-rbac: a proxy-wasm HTTP filter that authenticates JWTs (inline JWKS; HS*, RS*, PS*,
//! ES256, ES384, EdDSA; RFC 8725 hardening) and authorizes roles and scopes per route, then
//! injects verified identity headers.
//!
//! This file only wires proxy-wasm: the root context compiles the configuration in
//! `on_configure` and detects host crypto, each HTTP context hands its callback to
//! [`stream::Stream`]. Decisions live in the other modules, which never import `proxy_wasm`
//! (except [`host_crypto`], the adapter of Envoy's `verify_signature`). See `docs/jwt-rbac.md`.

pub mod alg;
pub mod cache;
pub mod claims;
pub mod config;
pub mod der;
pub mod extract;
pub mod host_crypto;
pub mod jwk;
pub mod metrics;
pub mod policy;
pub mod reason;
pub mod stream;
pub mod token;
pub mod validate;
pub mod verify;

#[cfg(test)]
mod stream_tests;

use cache::TokenCache;
use config::{CryptoMode, Settings};
use gateway_core::ports::{LogLevel, LogPort};
use gateway_core::proxy_wasm_host::ProxyWasmHost;
use metrics::Metrics;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};
use std::cell::RefCell;
use std::rc::Rc;
use stream::{Flow, Shared, Stream};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(JwtRbacRoot::default())
    });
}}

/// Parses the configuration once per VM and creates a filter per stream.
#[derive(Default)]
struct JwtRbacRoot {
    shared: Option<Shared>,
}

impl Context for JwtRbacRoot {}

impl RootContext for JwtRbacRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let host = ProxyWasmHost;
        let compiled = host
            .plugin_configuration()
            .map_err(|err| format!("cannot read the configuration: {err}"))
            .and_then(|bytes| Settings::from_json(&bytes).map_err(|err| err.to_string()));
        match compiled {
            Ok(settings) => {
                let crypto =
                    host_crypto::EnvoyVerifySignature::detect(settings.crypto == CryptoMode::Auto);
                for line in host_crypto::describe(&settings, crypto.is_some()) {
                    host.log(LogLevel::Info, &line);
                }
                self.shared = Some(Shared {
                    metrics: Metrics::define(&host),
                    cache: Rc::new(RefCell::new(TokenCache::new(settings.cache_entries))),
                    crypto: crypto.map(|c| Rc::new(c) as Rc<dyn verify::HostCrypto>),
                    settings: Some(Rc::new(settings)),
                });
                true
            }
            Err(message) => {
                host.log(
                    LogLevel::Error,
                    &format!("jwt-rbac: invalid configuration: {message}"),
                );
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let shared = self.shared.clone().unwrap_or_else(|| Shared {
            settings: None,
            metrics: Metrics::default(),
            cache: Rc::new(RefCell::new(TokenCache::new(0))),
            crypto: None,
        });
        Some(Box::new(JwtRbacFilter {
            stream: Stream::new(shared),
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

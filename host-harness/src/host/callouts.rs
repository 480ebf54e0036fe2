//! `proxy_http_call`: callouts are captured and wait for the test to answer them.
//!
//! - Envoy: the upstream must be a known cluster ([`crate::HarnessBuilder::clusters`]) and the
//!   headers must carry `:method`, `:path` and `:authority`; otherwise BadArgument.
//! - Kong: the upstream must look like `host:port`; otherwise BadArgument.
//! - Bad pointers and malformed maps trap. On success the token is written and Ok returned.
//!
//! The test answers with [`crate::Harness::respond_callout`], fails with
//! [`crate::Harness::fail_callout`], or lets the virtual clock pass the timeout. A failure or
//! timeout is delivered as Envoy does: `on_http_call_response(token, 0, 0, 0)`, with no response
//! maps (reading them is BadArgument).

use super::{ok, status, GetState};
use crate::codec;
use crate::memory;
use crate::state::HostState;
use crate::{Headers, Profile, Status};
use std::time::Duration;
use wasmtime::{Caller, Linker};

/// A callout the guest made and the test has not answered yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callout {
    /// Harness-wide id to answer it with.
    pub id: u64,
    /// Worker that made it.
    pub worker: usize,
    /// Context that made it (the one `on_http_call_response` is delivered to).
    pub context_id: u32,
    /// Token the guest got back.
    pub token: u32,
    /// Cluster name (Envoy) or `host:port` (Kong).
    pub upstream: String,
    /// Request headers, including pseudo-headers.
    pub headers: Headers,
    /// Request body.
    pub body: Vec<u8>,
    /// Request trailers.
    pub trailers: Headers,
    /// Timeout the guest asked for.
    pub timeout: Duration,
    pub(crate) deadline_ns: u64,
}

impl Callout {
    /// First value of a request header, as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
}

/// An answer to a callout. Put `:status` in the headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CalloutResponse {
    /// Response headers (`:status` included).
    pub headers: Headers,
    /// Response body.
    pub body: Vec<u8>,
    /// Response trailers.
    pub trailers: Headers,
}

impl CalloutResponse {
    /// A response with `:status` set.
    pub fn status(code: u16) -> CalloutResponse {
        CalloutResponse {
            headers: vec![(":status".into(), code.to_string().into_bytes())],
            ..CalloutResponse::default()
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> CalloutResponse {
        self.headers
            .push((name.to_ascii_lowercase(), value.as_ref().to_vec()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl AsRef<[u8]>) -> CalloutResponse {
        self.body = body.as_ref().to_vec();
        self
    }

    /// Adds a trailer.
    pub fn trailer(mut self, name: &str, value: impl AsRef<[u8]>) -> CalloutResponse {
        self.trailers
            .push((name.to_ascii_lowercase(), value.as_ref().to_vec()));
        self
    }
}

/// Pending callouts of a harness.
#[derive(Debug, Default)]
pub(crate) struct Callouts {
    pub(crate) pending: Vec<Callout>,
    pub(crate) next_id: u64,
}

fn valid_upstream(state: &HostState, upstream: &str, headers: &Headers) -> bool {
    match state.profile() {
        Profile::Envoy => {
            let has = |n: &str| headers.iter().any(|(k, _)| k == n);
            state.config.clusters.contains(upstream)
                && has(":method")
                && has(":path")
                && has(":authority")
        }
        Profile::Kong => {
            let Some((host, port)) = upstream.rsplit_once(':') else {
                return false;
            };
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
                && port.parse::<u16>().is_ok()
        }
    }
}

pub fn add_to_linker<T: 'static>(linker: &mut Linker<T>, get: GetState<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_http_call",
        move |mut caller: Caller<'_, T>,
              up: i32,
              ul: i32,
              hp: i32,
              hl: i32,
              bp: i32,
              bl: i32,
              tp: i32,
              tl: i32,
              timeout: i32,
              token_ptr: i32|
              -> wasmtime::Result<i32> {
            let call = "proxy_http_call";
            let upstream =
                String::from_utf8_lossy(&memory::read(&mut caller, call, up, ul)?).into_owned();
            let headers = codec::decode_map(call, &memory::read(&mut caller, call, hp, hl)?)?;
            let body = memory::read(&mut caller, call, bp, bl)?;
            let trailers = codec::decode_map(call, &memory::read(&mut caller, call, tp, tl)?)?;
            let state = get(caller.data_mut());
            if let Some(s) = super::injected(state, call) {
                return status(s);
            }
            if !valid_upstream(state, &upstream, &headers) {
                return status(Status::BadArgument);
            }
            let token = state.next_token;
            state.next_token += 1;
            let timeout = Duration::from_millis(u64::from(timeout as u32));
            let (worker, context_id) = (state.worker, state.context_id);
            let mut world = state.world();
            world.callouts.next_id += 1;
            let callout = Callout {
                id: world.callouts.next_id,
                worker,
                context_id,
                token,
                upstream,
                headers,
                body,
                trailers,
                timeout,
                deadline_ns: world.clock_ns + timeout.as_nanos() as u64,
            };
            world.callouts.pending.push(callout);
            drop(world);
            memory::write_u32(&mut caller, call, token_ptr, token)?;
            ok()
        },
    )?;
    Ok(())
}

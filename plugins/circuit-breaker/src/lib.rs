//! circuit-breaker: a proxy-wasm HTTP filter keeping closed/open/half-open breakers per upstream
//! cluster, route, header or property in shared data, answering at once (or via a fallback
//! route) while open. See `docs/circuit-breaker.md`.

pub mod breaker;
pub mod config;
pub mod window;

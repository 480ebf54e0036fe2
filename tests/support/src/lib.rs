//! Helpers shared by the integration tests (`suite-tests`) and `xtask`: the raw HTTP/1.1 client
//! ([`client`]) and the Envoy config fragments both generate ([`envoy_config`]). It depends on
//! nothing heavy, so `cargo xtask` builds fast.

pub mod client;
pub mod envoy_config;

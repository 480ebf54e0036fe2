//! Every plugin crate defines the wasm entry point `_initialize` (`proxy_wasm::main!`), and a
//! host binary that links several plugins for their config types gets each one. Nothing calls
//! it on the host, so let the linker keep the first (GNU ld and lld; Linux, like the suite).
fn main() {
    println!("cargo:rustc-link-arg=-Wl,--allow-multiple-definition");
}

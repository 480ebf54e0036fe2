//! Mints distinct tokens for `cargo xtask bench` (test keys of `tests/fixtures/jwt-rbac`):
//! `cargo run --release -p jwt-rbac --example bench_tokens -- <RS256|ES256> <count> <out file>`
//! writes one token per line, each with its own `jti` (`bench-<i>`), issuer
//! `https://issuer.example.com`, audience `api`, `exp` in 2100, signed by `rsa-1` or `ec-1`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../../tests/fixtures/jwt-rbac/mint.rs"]
mod mint;

use serde_json::json;
use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [alg, count, out] = args.as_slice() else {
        panic!("usage: bench_tokens <RS256|ES256> <count> <out file>");
    };
    assert!(matches!(alg.as_str(), "RS256" | "ES256"), "RS256 or ES256");
    let count: usize = count.parse().expect("a count");
    let kid = mint::kid_for(alg);
    let mut text = String::with_capacity(count * 700);
    for i in 0..count {
        let claims = mint::claims_with(json!({"sub": "bench", "jti": format!("bench-{i}"),
                                              "email": null, "scope": null}));
        text.push_str(&mint::sign(alg, kid, &claims));
        text.push('\n');
    }
    // Written whole, then renamed: a half-written file is never taken for a finished one.
    let tmp = format!("{out}.tmp");
    std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .expect("write the tokens");
    std::fs::rename(&tmp, out).expect("rename the tokens file");
}

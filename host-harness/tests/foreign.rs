//! proxy_call_foreign_function: registered closures, NotFound otherwise (Envoy); Kong traps.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::*;
use host_harness::{Profile, Status};

#[test]
fn registered_function_is_called_with_bytes() {
    {
        let profile = Profile::Envoy;
        let h = harness(
            probe(profile)
                .foreign_function("reverse", |args| Ok(args.iter().rev().copied().collect())),
        );
        let s = run(
            &h,
            0,
            &[
                "reqh~foreign~reverse~abc",
                "reqh~foreign~verify_signature~x",
            ],
        );
        assert_eq!(header(&s, "x-probe-foreign").as_deref(), Some("cba"));
        assert_eq!(
            header(&s, "x-probe-foreign-status").as_deref(),
            Some("notfound")
        );
    }
}

#[test]
fn verify_signature_hook_and_error_statuses() {
    let h = harness(
        probe(Profile::Envoy)
            .foreign_function("verify_signature", |_args| Ok(vec![0x08, 0x01]))
            .foreign_function("broken", |_| Err(Status::BadArgument)),
    );
    let s = run(
        &h,
        0,
        &[
            "reqh~foreign~verify_signature~payload",
            "reqh~foreign~broken~",
        ],
    );
    assert_eq!(s.request_header("x-probe-foreign"), Some(vec![0x08, 0x01]));
    assert_eq!(
        header(&s, "x-probe-foreign-status").as_deref(),
        Some("badargument")
    );
}

#[test]
fn kong_traps_even_for_registered_functions() {
    for profile in KONGS {
        let h = harness(probe(profile).foreign_function("reverse", |args| Ok(args.to_vec())));
        let mut s = h.stream().unwrap();
        let err = s
            .send_request_headers(&request(&["reqh~foreign~reverse~abc"]), false)
            .unwrap_err();
        assert!(
            matches!(
                err.host_trap(),
                Some(host_harness::HostTrap::NotImplemented {
                    call: "proxy_call_foreign_function",
                    ..
                })
            ),
            "{err}"
        );
    }
}

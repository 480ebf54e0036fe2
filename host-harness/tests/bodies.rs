//! Body buffers: read, replace, append, prepend, buffering while paused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::*;
use host_harness::Action;

#[test]
fn body_rewrites_follow_envoy_copy_from() {
    for profile in PROFILES {
        let h = harness(probe(profile));
        let mut s = run(
            &h,
            0,
            &[
                "reqb~body~replace~NEW",
                "reqb~body~append~!",
                "reqb~body~prepend~>",
            ],
        );
        s.send_request_body("old body", true).unwrap();
        assert_eq!(s.request_body(), b">NEW!");
    }
}

#[test]
fn paused_chunks_accumulate_until_continue() {
    let h = harness(probe(host_harness::Profile::Envoy));
    let mut s = run(&h, 0, &["reqb~pause", "reqb~body~read"]);
    assert_eq!(s.send_request_body("ab", false).unwrap(), Action::Pause);
    assert_eq!(s.send_request_body("cd", false).unwrap(), Action::Pause);
    assert!(h.logged("probe body=abcd"));
    assert_eq!(s.buffered_request_body(), b"abcd");
    assert!(s.request_body().is_empty());
}

#[test]
fn resuming_forwards_the_buffered_body() {
    let h = harness(probe(host_harness::Profile::Envoy));
    let mut s = run(&h, 0, &["reqb~pause", "reqt~resume~request"]);
    s.send_request_body("held", false).unwrap();
    assert!(s.request_body().is_empty());
    s.send_request_trailers(&[("x-t", "1")]).unwrap();
    assert_eq!(s.request_body(), b"held");
}

#[test]
fn response_body_rewrite() {
    for profile in PROFILES {
        let h = harness(probe(profile));
        let mut s = run(&h, 0, &["respb~body~replace~masked"]);
        s.send_response_headers(&[(":status", "200")], false)
            .unwrap();
        s.send_response_body("secret", true).unwrap();
        assert_eq!(s.response_body(), b"masked");
    }
}

//! Body buffers: read, replace, append, prepend, buffering while paused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::*;
use host_harness::{Action, LogLevel, Profile};

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

#[test]
fn kong_truncates_a_longer_replacement_to_the_replaced_size() {
    // ngx_http_wasm_set_req_body: body->len = min(body->len, max), then the chain is cut at
    // `start` and the data appended.
    let h = harness(probe(Profile::Envoy));
    let mut s = run(&h, 0, &["reqb~body~replace~much longer"]);
    s.send_request_body("short", true).unwrap();
    assert_eq!(s.request_body(), b"much longer");
    for profile in KONGS {
        let h = harness(probe(profile));
        let mut s = run(&h, 0, &["reqb~body~replace~much longer"]);
        s.send_request_body("short", true).unwrap();
        assert_eq!(s.request_body(), b"much ", "{profile:?}");
    }
}

#[test]
fn kong_reads_the_whole_request_body_once() {
    let h = harness(probe(Profile::Envoy));
    let mut s = run(&h, 0, &["reqb~body~read"]);
    s.send_request_body("ab", false).unwrap();
    s.send_request_body("cd", true).unwrap();
    assert!(h.logged("probe body=ab") && h.logged("probe body=cd"));
    for profile in KONGS {
        let h = harness(probe(profile));
        let mut s = run(&h, 0, &["reqb~body~read"]);
        assert_eq!(s.send_request_body("ab", false).unwrap(), Action::Continue);
        assert!(!h.logged("probe body="));
        s.send_request_body("cd", true).unwrap();
        let bodies: Vec<String> = h
            .logs_at(LogLevel::Info)
            .into_iter()
            .filter(|m| m.starts_with("probe body="))
            .collect();
        assert_eq!(bodies, ["probe body=abcd"], "{profile:?}");
        assert_eq!(s.request_body(), b"abcd");
    }
}

#[test]
fn kong_get_buffer_ignores_start() {
    // ngx_proxy_wasm_hfuncs_get_buffer copies min(len, max) bytes from the buffer's start.
    for (profile, expect) in [
        (Profile::Envoy, "cde"),
        (Profile::Kong, "abc"),
        (Profile::Kong38, "abc"),
    ] {
        let h = harness(probe(profile));
        let mut s = run(&h, 0, &["reqb~body-slice~2~3"]);
        s.send_request_body("abcdef", true).unwrap();
        assert!(
            h.logged(&format!("probe body-slice={expect}")),
            "{profile:?}"
        );
    }
}

#[test]
fn kong_body_calls_are_limited_to_their_steps() {
    for profile in KONGS {
        for (op, message) in [
            (
                "resph~body~read",
                "can only get response body during \"on_response_body\"",
            ),
            (
                "resph~body~replace~x",
                "can only set response body during \"on_response_body\"",
            ),
        ] {
            let h = harness(probe(profile));
            let mut s = run(&h, 0, &[op]);
            let err = s
                .send_response_headers(&[(":status", "200")], false)
                .unwrap_err();
            assert!(
                err.to_string()
                    .contains(&format!("host trap (bad usage): {message}")),
                "{profile:?} {op}: {err}"
            );
        }
        // The request body is readable in on_log.
        let h = harness(probe(profile));
        let mut s = run(&h, 0, &["log~body-slice~0~10"]);
        s.send_request_body("payload", true).unwrap();
        s.finish().unwrap();
        assert!(h.logged("probe body-slice=payload"));
    }
}

#[test]
fn kong_buffers_the_response_body_after_a_pause() {
    let ops = ["respb~pause", "respb~body~read"];
    let h = harness(probe(Profile::Envoy));
    let mut s = run(&h, 0, &ops);
    s.send_response_headers(&[(":status", "200")], false)
        .unwrap();
    assert_eq!(s.send_response_body("ab", false).unwrap(), Action::Pause);
    assert_eq!(s.send_response_body("cd", false).unwrap(), Action::Pause);
    assert!(h.logged("probe body=abcd"));
    for profile in KONGS {
        let h = harness(probe(profile));
        let mut s = run(&h, 0, &ops);
        s.send_response_headers(&[(":status", "200")], false)
            .unwrap();
        assert_eq!(s.send_response_body("ab", false).unwrap(), Action::Pause);
        assert_eq!(s.send_response_body("cd", false).unwrap(), Action::Pause);
        assert!(
            !h.logged("probe body=abcd"),
            "{profile:?}: no callback while buffering"
        );
        assert_eq!(s.send_response_body("ef", true).unwrap(), Action::Continue);
        assert!(h.logged("probe body=abcdef"));
        assert!(h.logs_at(LogLevel::Error).contains(
            &"invalid \"on_response_body\" return action (PAUSE): response body buffering already requested"
                .to_string()
        ));
        assert_eq!(s.response_body(), b"abcdef");
    }
}

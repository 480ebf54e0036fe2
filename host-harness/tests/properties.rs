//! Properties: host-wide and per-stream, profile visibility, set by the guest and read back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::*;
use host_harness::Profile;

#[test]
fn stream_and_host_properties_are_readable() {
    for profile in PROFILES {
        let h = harness(probe(profile).property("xds.cluster_name", "upstream"));
        h.set_property("xds.route_name", "default");
        let mut s = h.stream().unwrap();
        s.set_property("source.address", "127.0.0.1:5000").unwrap();
        s.set_property("request.id", "abc").unwrap();
        s.send_request_headers(
            &request(&[
                "reqh~prop-get~source.address",
                "reqh~prop-get~request.id",
                "reqh~prop-get~xds.cluster_name",
                "reqh~prop-get~xds.route_name",
                "reqh~prop-get~missing.thing",
            ]),
            false,
        )
        .unwrap();
        let got: Vec<String> = s
            .request_header_values("x-probe-prop")
            .into_iter()
            .map(|v| String::from_utf8(v).unwrap())
            .collect();
        let xds = if profile == Profile::Envoy {
            ["upstream", "default"]
        } else {
            ["<none>", "<none>"]
        };
        assert_eq!(
            got,
            vec!["127.0.0.1:5000", "abc", xds[0], xds[1], "<none>"],
            "{profile:?}"
        );
    }
}

#[test]
fn stream_properties_override_host_ones_and_do_not_leak() {
    let h = harness(probe(Profile::Envoy).property("source.address", "10.0.0.1:1"));
    let mut a = h.stream().unwrap();
    a.set_property("source.address", "10.0.0.2:2").unwrap();
    a.send_request_headers(&request(&["reqh~prop-get~source.address"]), false)
        .unwrap();
    let b = run(&h, 0, &["reqh~prop-get~source.address"]);
    assert_eq!(header(&a, "x-probe-prop").as_deref(), Some("10.0.0.2:2"));
    assert_eq!(header(&b, "x-probe-prop").as_deref(), Some("10.0.0.1:1"));
}

#[test]
fn guest_set_property_is_readable_back() {
    for profile in PROFILES {
        let h = harness(probe(profile));
        let s = run(
            &h,
            0,
            &[
                "reqh~prop-set~wasm.decision~allow",
                "reqh~prop-get~wasm.decision",
            ],
        );
        assert_eq!(header(&s, "x-probe-prop").as_deref(), Some("allow"));
        assert_eq!(s.property("wasm.decision"), Some(b"allow".to_vec()));
    }
}

#[test]
fn profile_specific_properties() {
    let h = harness(
        probe(Profile::Kong)
            .property("kong.route_id", "r1")
            .property("response.flags", "-"),
    );
    let s = run(
        &h,
        0,
        &[
            "reqh~prop-get~kong.route_id",
            "reqh~prop-get~response.flags",
        ],
    );
    assert_eq!(
        s.request_header_values("x-probe-prop"),
        vec![b"r1".to_vec(), b"<none>".to_vec()]
    );
    let h = harness(
        probe(Profile::Envoy)
            .property("kong.route_id", "r1")
            .property("response.flags", "-"),
    );
    let s = run(
        &h,
        0,
        &[
            "reqh~prop-get~kong.route_id",
            "reqh~prop-get~response.flags",
        ],
    );
    assert_eq!(
        s.request_header_values("x-probe-prop"),
        vec![b"<none>".to_vec(), b"-".to_vec()]
    );
    let s = run(&h, 0, &["reqh~prop-get~plugin_name"]);
    assert_eq!(header(&s, "x-probe-prop").as_deref(), Some("plugin"));
}

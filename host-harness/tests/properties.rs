//! Properties: host-wide and per-stream, profile visibility, set by the guest and read back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::*;
use host_harness::{HostTrap, LogLevel, Profile};
use std::time::Duration;

#[test]
fn stream_and_host_properties_are_readable() {
    for profile in PROFILES {
        let h = harness(probe(profile).property("xds.cluster_name", "upstream"));
        h.set_property("xds.route_name", "default");
        let mut s = h.stream().unwrap();
        s.set_property("source.address", "127.0.0.1:5000").unwrap();
        s.set_property("request.id", "abc").unwrap();
        let mut req = request(&[
            "reqh~prop-get~source.address",
            "reqh~prop-get~request.id",
            "reqh~prop-get~xds.cluster_name",
            "reqh~prop-get~xds.route_name",
            "reqh~prop-get~missing.thing",
        ]);
        req.push(("x-request-id".into(), b"from-header".to_vec()));
        s.send_request_headers(&req, false).unwrap();
        let got: Vec<String> = s
            .request_header_values("x-probe-prop")
            .into_iter()
            .map(|v| String::from_utf8(v).unwrap())
            .collect();
        // Kong: xds.* is not in the property table; request.id is the x-request-id header.
        let (id, xds) = if profile.is_kong() {
            ("from-header", ["<none>", "<none>"])
        } else {
            ("abc", ["upstream", "default"])
        };
        assert_eq!(
            got,
            vec!["127.0.0.1:5000", id, xds[0], xds[1], "<none>"],
            "{profile:?}"
        );
        // Unknown paths are silent on Kong.
        assert!(!h.logged("property not supported"));
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
        // Kong only stores ngx.*, nginx-variable and kong.* paths (ngx_proxy_wasm_properties_set).
        let path = if profile.is_kong() {
            "kong.decision"
        } else {
            "wasm.decision"
        };
        let h = harness(probe(profile));
        let s = run(
            &h,
            0,
            &[
                &format!("reqh~prop-set~{path}~allow"),
                &format!("reqh~prop-get~{path}"),
            ],
        );
        assert_eq!(header(&s, "x-probe-prop").as_deref(), Some("allow"));
        assert_eq!(s.property(path), Some(b"allow".to_vec()));
    }
    // Elsewhere Kong declines (NotFound), which the SDK's set_property turns into a panic.
    for profile in KONGS {
        let h = harness(probe(profile));
        let mut s = h.stream().unwrap();
        let err = s
            .send_request_headers(&request(&["reqh~prop-set~wasm.decision~allow"]), false)
            .unwrap_err();
        assert!(err.to_string().contains("unexpected status: 1"), "{err}");
    }
}

#[test]
fn kong_logs_unsupported_and_nyi_properties() {
    for profile in KONGS {
        let h = harness(
            probe(profile)
                .property("response.flags", "-")
                .property("node", "n")
                .property("plugin_vm_id", "vm"),
        );
        let s = run(
            &h,
            0,
            &[
                "reqh~prop-get~response.flags",
                "reqh~prop-get~node",
                "reqh~prop-get~route_name",
                "reqh~prop-get~plugin_vm_id",
                "reqh~prop-get~upstream.tls_version",
                "reqh~prop-get~xds.node",
                "reqh~prop-get~plugin_name",
                "reqh~prop-get~plugin_root_id",
                "reqh~prop-get~request.headers.x-probe-op",
            ],
        );
        let got: Vec<String> = s
            .request_header_values("x-probe-prop")
            .into_iter()
            .map(|v| String::from_utf8(v).unwrap())
            .collect();
        assert_eq!(
            got[..8],
            ["<none>", "<none>", "<none>", "<none>", "<none>", "<none>", "plugin", "0"],
            "{profile:?}"
        );
        assert_eq!(got[8], "reqh~prop-get~response.flags");
        let errors = h.logs_at(LogLevel::Error);
        for path in ["response.flags", "node", "route_name"] {
            assert!(
                errors.contains(&format!("\"{path}\" property not supported")),
                "{path}: {errors:?}"
            );
        }
        let alerts = h.logs_at(LogLevel::Critical);
        for path in ["plugin_vm_id", "upstream.tls_version"] {
            assert!(
                alerts.contains(&format!("NYI - \"{path}\" property")),
                "{path}: {alerts:?}"
            );
        }
        assert!(!h.logged("xds.node"));
    }
}

#[test]
fn kong_root_context_property_rules_and_envoy_default_node() {
    for profile in KONGS {
        let h = harness(
            probe(profile)
                .property("source.address", "1.2.3.4")
                .plugin_config("tick_ms=10\ntick_prop=source.address"),
        );
        h.advance_clock(Duration::from_millis(10)).unwrap();
        assert!(h.logged("cannot get ngx properties outside of a request"));
        assert!(
            h.logged("probe tick-prop=internalfailure"),
            "{:?}",
            h.logs()
        );
        let h = harness(probe(profile).plugin_config("tick_ms=10\ntick_prop=kong.route_id"));
        h.advance_clock(Duration::from_millis(10)).unwrap();
        assert!(h.logged("cannot get host properties outside of a request"));
        let h = harness(probe(profile).plugin_config("tick_ms=10\ntick_prop=plugin_name"));
        let err = h.advance_clock(Duration::from_millis(10)).unwrap_err();
        assert!(
            matches!(err.host_trap(), Some(HostTrap::Crash { .. })),
            "{err}"
        );
        let h = harness(probe(profile).plugin_config("tick_ms=10\ntick_prop=xds.node"));
        h.advance_clock(Duration::from_millis(10)).unwrap();
        assert!(h.logged("probe tick-prop=<none>"));
    }
    // Envoy: xds.node is there in any context unless the test set it.
    let h = harness(probe(Profile::Envoy).plugin_config("tick_ms=10\ntick_prop=xds.node"));
    h.advance_clock(Duration::from_millis(10)).unwrap();
    assert!(
        h.logged("probe tick-prop=\n\u{c}host-harness"),
        "{:?}",
        h.logs()
    );
    let h = harness(probe(Profile::Envoy).property("xds.node", "custom"));
    let s = run(&h, 0, &["reqh~prop-get~xds.node"]);
    assert_eq!(header(&s, "x-probe-prop").as_deref(), Some("custom"));
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

//! Shared data: CAS rules per profile, real races between workers, Kong's CRC32 slots.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::*;
use host_harness::{HarnessError, HostTrap, Profile, Status};

fn logged_by(s: &host_harness::HttpStream, text: &str) -> bool {
    s.logs().iter().any(|l| l.message == text)
}

#[test]
fn two_workers_race_and_exactly_one_wins() {
    for profile in PROFILES {
        let h = harness(probe(profile).workers(2));
        h.set_shared_data("k", "0", 0).unwrap();
        let ops = ["reqh~shared-get~k", "reqb~shared-set~k~mine"];
        let mut a = run(&h, 0, &ops);
        let mut b = run(&h, 1, &ops);
        assert_eq!(
            header(&a, "x-probe-shared-cas"),
            header(&b, "x-probe-shared-cas")
        );
        a.send_request_body("", true).unwrap();
        b.send_request_body("", true).unwrap();
        assert!(logged_by(&a, "probe shared-set-status=ok"), "{profile:?}");
        assert!(
            logged_by(&b, "probe shared-set-status=casmismatch"),
            "{profile:?}"
        );
    }
}

#[test]
fn creating_a_missing_key_races_differently() {
    // Envoy: cas 0 writes unconditionally, so both creators "win" (a lost update).
    // Kong: a missing key counts as cas 0, so the second creator gets CasMismatch.
    for (profile, second) in [(Profile::Envoy, "ok"), (Profile::Kong, "casmismatch")] {
        let h = harness(probe(profile).workers(2));
        let ops = ["reqh~shared-get~fresh", "reqb~shared-set~fresh~v"];
        let mut a = run(&h, 0, &ops);
        let mut b = run(&h, 1, &ops);
        assert_eq!(
            header(&a, "x-probe-shared-value").as_deref(),
            Some("<none>")
        );
        a.send_request_body("", true).unwrap();
        b.send_request_body("", true).unwrap();
        assert!(logged_by(&a, "probe shared-set-status=ok"));
        assert!(
            logged_by(&b, &format!("probe shared-set-status={second}")),
            "{profile:?}"
        );
    }
}

#[test]
fn n_workers_incrementing_with_cas_retry_count_exactly() {
    const WORKERS: usize = 4;
    const PER_WORKER: usize = 25;
    for profile in PROFILES {
        let h = harness(probe(profile).workers(WORKERS));
        if profile == Profile::Envoy {
            // Envoy: create the key first, or two first writers (cas 0) both win.
            h.set_shared_data("counter", "0", 0).unwrap();
        }
        std::thread::scope(|scope| {
            for w in 0..WORKERS {
                let worker = h.worker(w).clone();
                scope.spawn(move || {
                    for _ in 0..PER_WORKER {
                        let mut s = worker.stream().unwrap();
                        s.send_request_headers(&request(&["reqh~incr~counter"]), true)
                            .unwrap();
                        assert_ne!(s.request_header("x-probe-incr"), Some(b"gave-up".to_vec()));
                        s.finish().unwrap();
                    }
                });
            }
        });
        let (value, _) = h.shared_data("counter").unwrap();
        assert_eq!(
            value,
            (WORKERS * PER_WORKER).to_string().into_bytes(),
            "{profile:?}"
        );
    }
}

#[test]
fn every_set_gets_a_new_cas_and_stale_cas_mismatches() {
    for profile in PROFILES {
        let h = harness(probe(profile));
        h.set_shared_data("k", "1", 0).unwrap();
        let (_, cas1) = h.shared_data("k").unwrap();
        h.set_shared_data("k", "2", cas1).unwrap();
        let (_, cas2) = h.shared_data("k").unwrap();
        assert_ne!(cas1, cas2);
        assert_eq!(h.set_shared_data("k", "3", cas1), Err(Status::CasMismatch));
        // cas 0 on an existing key: Envoy writes, Kong refuses.
        let expected = if profile == Profile::Envoy {
            Ok(())
        } else {
            Err(Status::CasMismatch)
        };
        assert_eq!(h.set_shared_data("k", "4", 0), expected, "{profile:?}");
    }
}

#[test]
fn delete_keeps_an_empty_key_on_envoy_and_removes_it_on_kong() {
    let h = harness(probe(Profile::Envoy));
    run(
        &h,
        0,
        &["reqh~shared-set-nocas~k~v", "reqh~shared-delete~k"],
    );
    let (value, cas) = h.shared_data("k").unwrap();
    assert!(value.is_empty());
    assert_ne!(cas, 0);

    for profile in KONGS {
        let h = harness(probe(profile));
        let s = run(
            &h,
            0,
            &[
                "reqh~shared-get~k",
                "reqh~shared-set~k~v",
                "reqh~shared-get~k",
                // Non-null empty value: stored.
                "reqh~shared-set~k~",
                "reqh~shared-get~k",
                // Null value: deleted.
                "reqh~shared-delete~k",
            ],
        );
        assert_eq!(
            s.request_header_values("x-probe-shared-set-status"),
            vec![b"ok".to_vec(), b"ok".to_vec(), b"ok".to_vec()]
        );
        // ngx_wa_shm_kv_set_locked: n->cas += 1 per write, from 0.
        assert_eq!(
            s.request_header_values("x-probe-shared-cas"),
            vec![b"0".to_vec(), b"1".to_vec(), b"2".to_vec()]
        );
        // The empty value reads back as an empty value, not as none.
        assert_eq!(
            s.request_header_values("x-probe-shared-value"),
            vec![b"<none>".to_vec(), b"v".to_vec(), b"".to_vec()]
        );
        assert!(h.shared_data("k").is_none());
        // Deleting a missing key writes nothing: CasMismatch.
        let s = run(&h, 0, &["reqh~shared-delete~k"]);
        assert_eq!(
            header(&s, "x-probe-shared-set-status").as_deref(),
            Some("casmismatch")
        );
        assert_eq!(
            h.delete_shared_data("k", 0),
            Err(host_harness::Status::CasMismatch)
        );
    }
}

#[test]
fn kong_keys_collide_by_crc32() {
    let (a, b) = ("10.226.118.64|8080", "172.31.45.240|8080");
    assert_eq!(crc32fast::hash(a.as_bytes()), crc32fast::hash(b.as_bytes()));

    let h = harness(probe(Profile::Kong));
    let s = run(
        &h,
        0,
        &[
            &format!("reqh~shared-set-nocas~{a}~from-a"),
            &format!("reqh~shared-get~{b}"),
        ],
    );
    assert_eq!(
        header(&s, "x-probe-shared-value").as_deref(),
        Some("from-a")
    );
    assert_eq!(h.shared_data_owner(b), Some(a.as_bytes().to_vec()));

    let h = harness(probe(Profile::Envoy));
    let s = run(
        &h,
        0,
        &[
            &format!("reqh~shared-set-nocas~{a}~from-a"),
            &format!("reqh~shared-get~{b}"),
        ],
    );
    assert_eq!(
        header(&s, "x-probe-shared-value").as_deref(),
        Some("<none>")
    );
}

#[test]
fn kong_without_shm_kv_traps() {
    let h = harness(probe(Profile::Kong).kong_shm_kv(false));
    let mut s = h.stream().unwrap();
    let err = s
        .send_request_headers(&request(&["reqh~shared-get~k"]), false)
        .unwrap_err();
    assert!(
        matches!(err.host_trap(), Some(HostTrap::NoShmKv { .. })),
        "{err}"
    );
    // ngx_proxy_wasm_hfuncs_get_shared_data: ngx_wa_shm_kv_resolve_key -> NGX_DECLINED.
    assert!(
        err.to_string().contains(
            "host trap (bad usage): failed getting value from shm (could not resolve namespace)"
        ),
        "{err}"
    );
    let h = harness(probe(Profile::Kong38).kong_shm_kv(false));
    let mut s = h.stream().unwrap();
    let err = s
        .send_request_headers(&request(&["reqh~shared-set-nocas~k~v"]), false)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("failed setting value to shm (could not resolve namespace)"),
        "{err}"
    );
    // The VM is dead afterwards, as a trapped VM is in the gateway.
    let err = h.stream().err().unwrap();
    assert!(matches!(err, HarnessError::VmFailed { .. }), "{err}");
}

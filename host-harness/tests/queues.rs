//! Shared queues: register/resolve/enqueue/dequeue and on_queue_ready delivery.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::*;
use host_harness::{HostTrap, Profile, Status};

#[test]
fn registration_is_shared_and_the_first_registrant_gets_on_queue_ready() {
    let h = harness(probe(Profile::Envoy).plugin_config("queue=jobs").workers(2));
    let id = h.resolve_queue("", "jobs").unwrap();
    assert_eq!(
        h.logs_at(host_harness::LogLevel::Info)
            .iter()
            .filter(|m| *m == &format!("queue registered: jobs={id}"))
            .count(),
        2
    );
    assert_eq!(h.enqueue(id, "from-test").unwrap(), Status::Ok);
    let line = format!("queue {id} item: from-test");
    let owner_logs: Vec<String> = h.worker(0).logs().into_iter().map(|l| l.message).collect();
    assert!(owner_logs.contains(&line), "{owner_logs:?}");
    assert!(!h.worker(1).logs().iter().any(|l| l.message == line));
    assert!(h.queue_items(id).is_empty());
}

#[test]
fn guest_side_resolve_enqueue_and_dequeue() {
    let h = harness(probe(Profile::Envoy).plugin_config("queue=jobs").workers(2));
    let id = h.resolve_queue("", "jobs").unwrap();
    let s = run(
        &h,
        1,
        &[
            "reqh~resolve~~jobs",
            &format!("reqh~enqueue~{id}~hello"),
            "reqh~resolve~~nope",
        ],
    );
    assert_eq!(
        s.request_header_values("x-probe-queue-id"),
        vec![id.to_string().into_bytes(), b"none".to_vec()]
    );
    assert_eq!(header(&s, "x-probe-enqueue").as_deref(), Some("ok"));
    assert!(h.logged(&format!("queue {id} item: hello")));

    let other = h.register_queue("manual");
    h.enqueue(other, "a").unwrap();
    let s = run(
        &h,
        0,
        &[
            &format!("reqh~dequeue~{other}"),
            &format!("reqh~dequeue~{other}"),
            "reqh~dequeue~999",
            "reqh~enqueue~999~x",
        ],
    );
    assert_eq!(
        s.request_header_values("x-probe-dequeue"),
        vec![b"a".to_vec(), b"<empty>".to_vec(), b"notfound".to_vec()]
    );
    assert_eq!(header(&s, "x-probe-enqueue").as_deref(), Some("notfound"));
}

#[test]
fn kong_never_calls_on_queue_ready_and_resolve_traps() {
    let h = harness(probe(Profile::Kong).plugin_config("queue=jobs"));
    let id = h.resolve_queue("", "jobs").unwrap();
    h.enqueue(id, "x").unwrap();
    assert_eq!(h.queue_items(id), vec![b"x".to_vec()]);
    assert!(!h.logged("item: x"));

    let mut s = h.stream().unwrap();
    let err = s
        .send_request_headers(&request(&["reqh~resolve~~jobs"]), false)
        .unwrap_err();
    assert!(
        matches!(
            err.host_trap(),
            Some(HostTrap::NotImplemented {
                call: "proxy_resolve_shared_queue",
                ..
            })
        ),
        "{err}"
    );
}

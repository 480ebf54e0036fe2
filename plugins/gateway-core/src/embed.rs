//! What changes when a plugin's wiring runs as one job of the gateway suite (one filter, one VM,
//! any subset of the five plugins) instead of as its own module.
//!
//! The plugins' root and stream contexts are the same code in both builds. They ask the host
//! for a few things only the filter as a whole may decide, always through
//! [`crate::proxy_wasm_host::ProxyWasmHost`], which asks this module first:
//!
//! - the plugin configuration: the job reads its own section of the suite's configuration;
//! - the tick period: a VM has one timer; the suite runs it at the shortest period a job asked
//!   for and calls each job's `on_tick` at that job's own period;
//! - resuming a paused request: the suite resumes only after its later jobs ran too;
//! - callout answers: the suite hands each answer to the job that sent the call.
//!
//! Outside the suite (no job running) every call goes to the host as before. Built without the
//! `suite` feature (the plugins' own modules), every function here answers "not in the suite"
//! at compile time, and none of this is in the module.

use std::cell::{Cell, RefCell};

/// Whether this build can run as the suite's jobs at all.
const SUITE: bool = cfg!(feature = "suite");

thread_local! {
    static JOB: Cell<Option<usize>> = const { Cell::new(None) };
    static SECTION: RefCell<Option<(&'static str, Vec<u8>)>> = const { RefCell::new(None) };
    static TICKS: RefCell<Vec<(usize, u32)>> = const { RefCell::new(Vec::new()) };
    static RESUMES: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    static CALLOUTS: RefCell<Vec<(u32, usize)>> = const { RefCell::new(Vec::new()) };
    static EFFECTIVE: Cell<u32> = const { Cell::new(0) };
}

/// Runs `f` as job `job` of the suite: what it asks of the filter as a whole is recorded for
/// the suite. (Its phase joins the suite's open one: one copy of each header map for all jobs.)
pub fn run_as<T>(job: usize, f: impl FnOnce() -> T) -> T {
    if !SUITE {
        return f();
    }
    let outer = JOB.with(|j| j.replace(Some(job)));
    let out = f();
    JOB.with(|j| j.set(outer));
    out
}

/// The job whose code runs now (`None` outside the suite).
pub fn current_job() -> Option<usize> {
    if !SUITE {
        return None;
    }
    JOB.with(Cell::get)
}

/// Runs `f` (a job's `on_configure`) with `bytes` as the plugin configuration it reads;
/// `section` names it in refusals (`jwt_rbac.providers.sso.audiences: ...`).
pub fn configure_as<T>(
    job: usize,
    section: &'static str,
    bytes: Vec<u8>,
    f: impl FnOnce() -> T,
) -> T {
    SECTION.with(|s| *s.borrow_mut() = Some((section, bytes)));
    let out = run_as(job, f);
    SECTION.with(|s| *s.borrow_mut() = None);
    out
}

/// The section a job is being configured from, and its bytes.
pub fn section() -> Option<(&'static str, Vec<u8>)> {
    if !SUITE {
        return None;
    }
    SECTION.with(|s| s.borrow().clone())
}

/// A job asks for a tick period: recorded (true), or `false` outside the suite.
pub fn note_tick(millis: u32) -> bool {
    let Some(job) = current_job() else {
        return false;
    };
    TICKS.with(|t| {
        let mut ticks = t.borrow_mut();
        ticks.retain(|(j, _)| *j != job);
        if millis > 0 {
            ticks.push((job, millis));
        }
    });
    true
}

/// The tick period each job asked for.
pub fn ticks() -> Vec<(usize, u32)> {
    if !SUITE {
        return Vec::new();
    }
    TICKS.with(|t| t.borrow().clone())
}

/// The context later calls act for (the suite sets it for each stream callback; a job's
/// `set_effective_context` moves it).
pub fn note_effective(context_id: u32) {
    if !SUITE {
        return;
    }
    EFFECTIVE.with(|e| e.set(context_id));
}

/// A job asks to resume the request of the current context: recorded for the suite (true), or
/// `false` outside the suite.
pub fn defer_resume() -> bool {
    if current_job().is_none() {
        return false;
    }
    let id = EFFECTIVE.with(Cell::get);
    RESUMES.with(|r| r.borrow_mut().push(id));
    true
}

/// Records a resume of `context_id` again (one taken by a stream that was not its own).
pub fn keep_resume(context_id: u32) {
    if !SUITE {
        return;
    }
    RESUMES.with(|r| r.borrow_mut().push(context_id));
}

/// The contexts jobs asked to resume since the last call, in order.
pub fn take_resumes() -> Vec<u32> {
    if !SUITE {
        return Vec::new();
    }
    RESUMES.with(|r| std::mem::take(&mut *r.borrow_mut()))
}

/// A job sent the callout `token`.
pub fn note_callout(token: u32) {
    if let Some(job) = current_job() {
        CALLOUTS.with(|c| c.borrow_mut().push((token, job)));
    }
}

/// The job that sent the callout `token`, forgotten once asked.
pub fn callout_owner(token: u32) -> Option<usize> {
    if !SUITE {
        return None;
    }
    CALLOUTS.with(|c| {
        let mut calls = c.borrow_mut();
        let at = calls.iter().position(|(t, _)| *t == token)?;
        Some(calls.swap_remove(at).1)
    })
}

/// A refusal of a job's section, its path prefixed: `providers.sso: x` in section `jwt_rbac`
/// reads `jwt_rbac.providers.sso: x`; a reason without a path reads `jwt_rbac: reason`.
pub fn section_path(section: &str, reason: &str) -> String {
    // A path comes first and has no space: `a.b[2].c: message`.
    let bytes = reason.as_bytes();
    let head = bytes.iter().position(|b| *b == b' ').unwrap_or(bytes.len());
    let path_like = head > 1 && bytes.get(head - 1) == Some(&b':');
    if path_like {
        format!("{section}.{reason}")
    } else {
        format!("{section}: {reason}")
    }
}

#[cfg(all(test, feature = "suite"))]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_named_by_their_path_in_the_suite() {
        assert_eq!(
            section_path("jwt_rbac", "providers.sso.audiences: expected a list"),
            "jwt_rbac.providers.sso.audiences: expected a list"
        );
        assert_eq!(
            section_path("audit_log", "expected an object, got a number"),
            "audit_log: expected an object, got a number"
        );
    }

    #[test]
    fn outside_the_suite_nothing_is_deferred() {
        assert!(!note_tick(1000));
        assert!(!defer_resume());
        note_callout(3);
        assert_eq!(callout_owner(3), None);
    }

    #[test]
    fn a_job_records_ticks_resumes_and_callouts() {
        note_effective(42);
        run_as(2, || {
            assert!(note_tick(250));
            assert!(defer_resume());
            note_callout(9);
        });
        assert_eq!(ticks(), vec![(2, 250)]);
        assert_eq!(take_resumes(), vec![42]);
        assert!(take_resumes().is_empty());
        assert_eq!(callout_owner(9), Some(2));
        assert_eq!(callout_owner(9), None);
    }
}

//! The per-callback exchange: what [`crate::proxy_wasm_host::ProxyWasmHost`] keeps of the host
//! between the first and the last call of one callback, so that each thing crosses the VM
//! boundary once.
//!
//! Every crossing costs the host microseconds (a call, and for each returned buffer an
//! allocation the host makes by calling back into the guest). Inside a [`Phase`]:
//!
//! - a header map (request, response) read whole is kept; later reads of the map or of one of
//!   its headers are answered from that copy, the plugin's own edits included. In the gateway
//!   suite a single header read reads its map whole (the jobs after it read and write the same
//!   map); in a separate module, and where the host refuses the map, a header read alone is
//!   kept;
//! - header writes (`set`, `add`) to a map that was read are applied to the copy and written
//!   back once when the phase ends: one call per header name that changed, or on Envoy one
//!   `proxy_set_header_map_pairs` when [`PAIRS_FROM`] or more names changed. Writes to a map
//!   not read go to the host at once, and so do removals, so that a refused removal (a forged
//!   identity header that may still be there) is seen by the plugin that asked for it;
//! - the clock is read once, each property at most once (a write forgets the cached value).
//!
//! Outside a phase every call goes straight to the host. A local reply, a context switch
//! (`set_effective_context`) and a resume write the phase's pending writes first: later
//! callbacks (audit-log's `on_log` on a refused request) read the maps as a chain of separate
//! filters would have left them.
//!
//! A phase opened while one is open joins it: the gateway suite opens the phase of a callback
//! and its jobs' callbacks run inside it, sharing one copy of each map (what one job writes the
//! next reads without a crossing). The host never calls a module back while one of its
//! callbacks runs (the SDK's dispatcher would trap), so a nested phase is always a job's.

use crate::headers::HeaderList;
use crate::ports::{HeaderMapKind, HostError};
use std::cell::RefCell;
use std::rc::Rc;

/// Whether this build keeps anything (feature `exchange`). Without it every call goes to the
/// host as it comes, and none of this code is in the module.
const ON: bool = cfg!(feature = "exchange");

/// Whether a single header read in a phase reads its map whole (the gateway suite, where the
/// jobs after the reader read the same map and write to it). A separate module reads one or two
/// headers alone: an absent header costs one crossing alone, two (the call and the returned
/// buffer) with the map.
const READ_WHOLE: bool = cfg!(feature = "suite");

/// From this many changed header names on, Envoy gets the whole map in one call.
pub const PAIRS_FROM: usize = 3;

/// One header map's copy and what changed in it.
#[derive(Debug, Default)]
struct MapCopy {
    /// The host's map with this phase's edits applied; `None` until read whole.
    loaded: Option<HeaderList>,
    /// Names (lowercase) set or added since the map was read, in first-change order.
    changed: Vec<String>,
    /// Single headers read while the map was not: name, first value.
    singles: Vec<(String, Option<Vec<u8>>)>,
    /// The host refused the map whole this phase: single headers are read alone.
    refused: bool,
    /// The map as an earlier phase of the stream left it ([`Carry`]), while this phase has not
    /// read it: read-only, shared with the stream (not copied per phase), never written back.
    carried: Option<Rc<HeaderList>>,
}

/// What one phase keeps.
#[derive(Debug, Default)]
struct Frame {
    depth: u32,
    request: MapCopy,
    response: MapCopy,
    now: Option<u64>,
    properties: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl Frame {
    fn map(&mut self, kind: HeaderMapKind) -> &mut MapCopy {
        match kind {
            HeaderMapKind::Request => &mut self.request,
            HeaderMapKind::Response => &mut self.response,
        }
    }
}

thread_local! {
    static FRAME: RefCell<Option<Frame>> = const { RefCell::new(None) };
}

/// Runs `f` on the slot of this thread's (this VM's) phase.
fn slot<T>(f: impl FnOnce(&mut Option<Frame>) -> T) -> T {
    FRAME.with(|cell| f(&mut cell.borrow_mut()))
}

/// The host calls the exchange makes. [`crate::proxy_wasm_host::ProxyWasmHost`] implements it
/// with real host calls; tests with a recording fake.
pub trait Wire {
    fn read_map(&self, map: HeaderMapKind) -> Result<HeaderList, HostError>;
    fn read_one(&self, map: HeaderMapKind, name: &str) -> Result<Option<Vec<u8>>, HostError>;
    fn replace(&self, map: HeaderMapKind, name: &str, value: &[u8]) -> Result<(), HostError>;
    fn add(&self, map: HeaderMapKind, name: &str, value: &[u8]) -> Result<(), HostError>;
    fn remove(&self, map: HeaderMapKind, name: &str) -> Result<(), HostError>;
    /// `proxy_set_header_map_pairs`; `Unsupported` where the host should not get it.
    fn write_map(&self, map: HeaderMapKind, pairs: &HeaderList) -> Result<(), HostError>;
    /// A write the host refused at the end of a phase (the plugin was already told `Ok`).
    fn refused(&self, map: HeaderMapKind, name: &str, error: HostError);
}

/// One callback's phase: open it first thing in the callback; it ends when dropped.
#[must_use = "the phase ends when this is dropped"]
pub struct Phase<'w, W: Wire> {
    wire: &'w W,
}

impl<'w, W: Wire> Phase<'w, W> {
    /// Opens a phase, or joins the one open.
    pub fn open(wire: &'w W) -> Self {
        if !ON {
            return Self { wire };
        }
        slot(|frame| frame.get_or_insert_with(Frame::default).depth += 1);
        Self { wire }
    }
}

impl<W: Wire> Drop for Phase<'_, W> {
    fn drop(&mut self) {
        if !ON {
            return;
        }
        let ended = slot(|slot| {
            let frame = slot.as_mut()?;
            frame.depth = frame.depth.saturating_sub(1);
            if frame.depth == 0 {
                slot.take()
            } else {
                None
            }
        });
        if let Some(mut frame) = ended {
            write_back(self.wire, &mut frame);
        }
    }
}

/// True inside a phase.
pub fn active() -> bool {
    if !ON {
        return false;
    }
    slot(|frame| frame.is_some())
}

fn with_frame<T>(f: impl FnOnce(&mut Frame) -> T) -> Option<T> {
    if !ON {
        return None;
    }
    slot(|frame| frame.as_mut().map(f))
}

/// Removes every item `named` (a loop over `position`: smaller code than `Vec::retain`).
fn drop_where<T>(items: &mut Vec<T>, named: impl Fn(&T) -> bool) {
    while let Some(at) = items.iter().position(&named) {
        items.remove(at);
    }
}

fn find<'a>(list: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    crate::headers::first(list, name)
}

/// The whole map: from the copy (or the carried map), read once. Outside a phase, straight
/// from the host.
pub fn header_list<W: Wire>(wire: &W, kind: HeaderMapKind) -> Result<HeaderList, HostError> {
    let known = with_frame(|frame| {
        let copy = frame.map(kind);
        copy.loaded
            .clone()
            .or_else(|| copy.carried.as_deref().cloned())
    });
    if let Some(Some(list)) = known {
        return Ok(list);
    }
    let list = wire.read_map(kind)?;
    with_frame(|frame| frame.map(kind).loaded = Some(list.clone()));
    Ok(list)
}

/// The first value of `name`. In a phase: from the copy; if the map was not read, in the
/// suite the map is read whole first (one crossing and one returned buffer, as for a present
/// header alone, and every later read and write of the phase is then in memory), in a separate
/// module (or where the host refuses the map) the header alone, once. Outside a phase, straight
/// from the host.
pub fn header<W: Wire>(
    wire: &W,
    kind: HeaderMapKind,
    name: &str,
) -> Result<Option<Vec<u8>>, HostError> {
    // None: outside a phase; Some(None): in a phase, not known yet.
    let mut whole = false;
    let known = with_frame(|frame| {
        let copy = frame.map(kind);
        whole = READ_WHOLE && !copy.refused;
        match copy.loaded.as_ref().or(copy.carried.as_deref()) {
            Some(list) => Some(find(list, name).map(<[u8]>::to_vec)),
            None => copy
                .singles
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone()),
        }
    });
    match known {
        None => return wire.read_one(kind, name),
        Some(Some(value)) => return Ok(value),
        Some(None) => {}
    }
    if whole {
        match header_list(wire, kind) {
            Ok(list) => return Ok(find(&list, name).map(<[u8]>::to_vec)),
            Err(_) => {
                with_frame(|frame| frame.map(kind).refused = true);
            }
        }
    }
    let value = wire.read_one(kind, name)?;
    with_frame(|frame| {
        frame
            .map(kind)
            .singles
            .push((name.to_owned(), value.clone()))
    });
    Ok(value)
}

/// Applies a write to the copy of a map that was read (true), else forgets what was read of
/// `name` and returns false: the caller writes to the host at once.
fn edit(kind: HeaderMapKind, name: &str, value: &[u8], replace: bool) -> bool {
    with_frame(|frame| {
        let copy = frame.map(kind);
        // A write after the request went on goes to the host, and the host's map is read again.
        copy.carried = None;
        let Some(list) = copy.loaded.as_mut() else {
            drop_where(&mut copy.singles, |(n, _)| n.eq_ignore_ascii_case(name));
            return false;
        };
        if !copy.changed.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            copy.changed.push(name.to_ascii_lowercase());
        }
        if replace {
            drop_where(list, |(n, _)| n.eq_ignore_ascii_case(name));
        }
        list.push((name.to_ascii_lowercase(), value.to_vec()));
        true
    })
    .unwrap_or(false)
}

/// Replaces every line of `name` in the copy (true); false if the caller must write it.
pub fn set(kind: HeaderMapKind, name: &str, value: &[u8]) -> bool {
    edit(kind, name, value, true)
}

/// Adds a line to the copy (true); false if the caller must write it.
pub fn add(kind: HeaderMapKind, name: &str, value: &[u8]) -> bool {
    edit(kind, name, value, false)
}

/// Removes every line of `name` from the host at once (its answer is the caller's), and from
/// the copy.
pub fn remove<W: Wire>(wire: &W, kind: HeaderMapKind, name: &str) -> Result<(), HostError> {
    let answer = wire.remove(kind, name);
    if answer.is_ok() {
        with_frame(|frame| {
            let copy = frame.map(kind);
            drop_where(&mut copy.singles, |(n, _)| n.eq_ignore_ascii_case(name));
            drop_where(&mut copy.changed, |n| n.eq_ignore_ascii_case(name));
            if let Some(list) = copy.loaded.as_mut() {
                drop_where(list, |(n, _)| n.eq_ignore_ascii_case(name));
            }
            if let Some(list) = copy.carried.as_mut() {
                drop_where(Rc::make_mut(list), |(n, _)| n.eq_ignore_ascii_case(name));
            }
        });
    }
    answer
}

/// Writes the phase's changes to the host now and forgets what it read (before a context
/// switch or a resume, after which the host's maps are another stream's, or move on).
pub fn write_now<W: Wire>(wire: &W) {
    let taken = with_frame(|frame| Frame {
        depth: frame.depth,
        request: std::mem::take(&mut frame.request),
        response: std::mem::take(&mut frame.response),
        now: frame.now.take(),
        properties: std::mem::take(&mut frame.properties),
    });
    if let Some(mut frame) = taken {
        write_back(wire, &mut frame);
    }
}

fn write_back<W: Wire>(wire: &W, frame: &mut Frame) {
    for kind in [HeaderMapKind::Request, HeaderMapKind::Response] {
        let copy = std::mem::take(frame.map(kind));
        let Some(list) = copy.loaded else {
            continue;
        };
        if copy.changed.len() >= PAIRS_FROM && wire.write_map(kind, &list).is_ok() {
            continue;
        }
        for name in &copy.changed {
            let mut replaced = false;
            for (n, value) in &list {
                if !n.eq_ignore_ascii_case(name) {
                    continue;
                }
                let answer = if replaced {
                    wire.add(kind, name, value)
                } else {
                    wire.replace(kind, name, value)
                };
                replaced = true;
                if let Err(error) = answer {
                    wire.refused(kind, name, error);
                }
            }
        }
    }
}

/// What one stream of the gateway suite keeps from its request phase for its later phases:
/// the request map as the suite's jobs left it, and the properties that do not change during a
/// stream (the connection's addresses) that a job read. A later phase reads them from memory:
/// audit-log's record in `on_log` gets the circuit-breaker's marker and the client address
/// that ratelimit-shared-data read, without a crossing.
///
/// The carried request map is what the suite's jobs saw and wrote; filters after the suite may
/// have added to the host's since. It is read-only: a write to it goes to the host, and the
/// phase reads the host's map again after it.
#[derive(Debug, Default)]
pub struct Carry {
    request: Option<Rc<HeaderList>>,
    properties: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

/// Properties (NUL-joined paths) that stay the same for the whole stream.
fn stable(path: &[u8]) -> bool {
    [b"source\0".as_slice(), b"destination\0", b"connection\0"]
        .iter()
        .any(|prefix| path.starts_with(prefix))
}

/// At the end of a stream's request phase (the request went on): keeps in `carry` what later
/// phases may read from memory. Nothing outside a phase.
pub fn keep(carry: &mut Carry) {
    with_frame(|frame| {
        if let Some(list) = &frame.request.loaded {
            carry.request = Some(Rc::new(list.clone()));
        }
        for (path, value) in &frame.properties {
            if stable(path) && !carry.properties.iter().any(|(p, _)| p == path) {
                carry.properties.push((path.clone(), value.clone()));
            }
        }
    });
}

/// At the start of a later phase of the stream: what `carry` kept, where the phase has not read
/// it itself.
pub fn seed(carry: &Carry) {
    with_frame(|frame| {
        if frame.request.loaded.is_none() {
            frame.request.carried = carry.request.clone();
        }
        for (path, value) in &carry.properties {
            if !frame.properties.iter().any(|(p, _)| p == path) {
                frame.properties.push((path.clone(), value.clone()));
            }
        }
    });
}

/// The clock, read once per phase.
pub fn now(read: impl FnOnce() -> Result<u64, HostError>) -> Result<u64, HostError> {
    if let Some(Some(now)) = with_frame(|frame| frame.now) {
        return Ok(now);
    }
    let now = read()?;
    with_frame(|frame| frame.now = Some(now));
    Ok(now)
}

/// A property, read at most once per phase (`path` NUL-joined).
pub fn property(
    path: &[u8],
    read: impl FnOnce() -> Result<Option<Vec<u8>>, HostError>,
) -> Result<Option<Vec<u8>>, HostError> {
    let cached = with_frame(|frame| {
        frame
            .properties
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, v)| v.clone())
    });
    if let Some(Some(value)) = cached {
        return Ok(value);
    }
    let value = read()?;
    with_frame(|frame| frame.properties.push((path.to_vec(), value.clone())));
    Ok(value)
}

/// Forgets a cached property (it was just written).
pub fn forget_property(path: &[u8]) {
    with_frame(|frame| drop_where(&mut frame.properties, |(p, _)| p == path));
}

#[cfg(all(test, feature = "exchange"))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::cell::{Cell, RefCell};

    /// A host map and the calls made to it.
    #[derive(Default)]
    struct Recorder {
        map: RefCell<HeaderList>,
        calls: RefCell<Vec<String>>,
        pairs: bool,
    }

    impl Wire for Recorder {
        fn read_map(&self, _: HeaderMapKind) -> Result<HeaderList, HostError> {
            self.calls.borrow_mut().push("read".into());
            Ok(self.map.borrow().clone())
        }
        fn read_one(&self, _: HeaderMapKind, name: &str) -> Result<Option<Vec<u8>>, HostError> {
            self.calls.borrow_mut().push(format!("get {name}"));
            Ok(find(&self.map.borrow(), name).map(<[u8]>::to_vec))
        }
        fn replace(&self, _: HeaderMapKind, name: &str, value: &[u8]) -> Result<(), HostError> {
            self.calls.borrow_mut().push(format!("replace {name}"));
            let mut map = self.map.borrow_mut();
            map.retain(|(n, _)| n != name);
            map.push((name.into(), value.to_vec()));
            Ok(())
        }
        fn add(&self, _: HeaderMapKind, name: &str, value: &[u8]) -> Result<(), HostError> {
            self.calls.borrow_mut().push(format!("add {name}"));
            self.map.borrow_mut().push((name.into(), value.to_vec()));
            Ok(())
        }
        fn remove(&self, _: HeaderMapKind, name: &str) -> Result<(), HostError> {
            self.calls.borrow_mut().push(format!("remove {name}"));
            self.map.borrow_mut().retain(|(n, _)| n != name);
            Ok(())
        }
        fn write_map(&self, _: HeaderMapKind, pairs: &HeaderList) -> Result<(), HostError> {
            if !self.pairs {
                return Err(HostError::Unsupported);
            }
            self.calls.borrow_mut().push("pairs".into());
            *self.map.borrow_mut() = pairs.clone();
            Ok(())
        }
        fn refused(&self, _: HeaderMapKind, _: &str, _: HostError) {}
    }

    fn host(pairs: bool) -> Recorder {
        Recorder {
            map: RefCell::new(vec![
                (":path".into(), b"/".to_vec()),
                ("x-a".into(), b"1".to_vec()),
                ("x-a".into(), b"2".to_vec()),
            ]),
            pairs,
            ..Recorder::default()
        }
    }

    const REQ: HeaderMapKind = HeaderMapKind::Request;

    fn calls(wire: &Recorder) -> Vec<String> {
        wire.calls.borrow().clone()
    }

    #[test]
    fn one_read_and_one_write_per_changed_name() {
        let wire = host(false);
        {
            let _phase = Phase::open(&wire);
            assert_eq!(header_list(&wire, REQ).unwrap().len(), 3);
            assert_eq!(header(&wire, REQ, "x-a").unwrap(), Some(b"1".to_vec()));
            assert!(set(REQ, "x-b", b"b"));
            assert_eq!(header(&wire, REQ, "X-B").unwrap(), Some(b"b".to_vec()));
            assert!(set(REQ, "x-a", b"one"));
            assert!(add(REQ, "x-a", b"two"));
            assert_eq!(header_list(&wire, REQ).unwrap().len(), 4);
            assert_eq!(calls(&wire), ["read"]);
        }
        assert_eq!(
            calls(&wire),
            ["read", "replace x-b", "replace x-a", "add x-a"]
        );
        let map = wire.map.borrow();
        let a: Vec<_> = crate::headers::all(&map, "x-a").collect();
        assert_eq!(a, [b"one".as_slice(), b"two".as_slice()]);
    }

    #[test]
    fn a_single_header_read_in_a_phase_is_read_once() {
        let wire = host(false);
        {
            let _phase = Phase::open(&wire);
            for _ in 0..2 {
                assert_eq!(header(&wire, REQ, "X-A").unwrap(), Some(b"1".to_vec()));
                assert_eq!(header(&wire, REQ, "x-none").unwrap(), None);
            }
            if READ_WHOLE {
                // The map is kept: the write waits for the end of the phase.
                assert!(set(REQ, "x-a", b"new"));
                assert_eq!(calls(&wire), ["read"]);
            } else {
                // The map was not read: the caller writes at once, the next read asks again.
                assert!(!set(REQ, "x-a", b"new"));
                wire.replace(REQ, "x-a", b"new").unwrap();
            }
            assert_eq!(header(&wire, REQ, "x-a").unwrap(), Some(b"new".to_vec()));
        }
        if READ_WHOLE {
            assert_eq!(calls(&wire), ["read", "replace x-a"]);
        } else {
            assert_eq!(
                calls(&wire),
                ["get X-A", "get x-none", "replace x-a", "get x-a"]
            );
        }
        // Outside a phase: the header alone, every time.
        wire.calls.borrow_mut().clear();
        assert_eq!(header(&wire, REQ, "x-a").unwrap(), Some(b"new".to_vec()));
        assert_eq!(calls(&wire), ["get x-a"]);
    }

    /// A host that refuses the whole map but answers for one header.
    #[cfg(feature = "suite")]
    struct NoMap(Recorder);

    #[cfg(feature = "suite")]
    impl Wire for NoMap {
        fn read_map(&self, _: HeaderMapKind) -> Result<HeaderList, HostError> {
            self.0.calls.borrow_mut().push("read refused".into());
            Err(HostError::Unsupported)
        }
        fn read_one(&self, kind: HeaderMapKind, name: &str) -> Result<Option<Vec<u8>>, HostError> {
            self.0.read_one(kind, name)
        }
        fn replace(&self, kind: HeaderMapKind, name: &str, value: &[u8]) -> Result<(), HostError> {
            self.0.replace(kind, name, value)
        }
        fn add(&self, kind: HeaderMapKind, name: &str, value: &[u8]) -> Result<(), HostError> {
            self.0.add(kind, name, value)
        }
        fn remove(&self, kind: HeaderMapKind, name: &str) -> Result<(), HostError> {
            self.0.remove(kind, name)
        }
        fn write_map(&self, kind: HeaderMapKind, pairs: &HeaderList) -> Result<(), HostError> {
            self.0.write_map(kind, pairs)
        }
        fn refused(&self, _: HeaderMapKind, _: &str, _: HostError) {}
    }

    /// The suite's behaviour (a single read reads the map whole).
    #[cfg(feature = "suite")]
    #[test]
    fn where_the_map_is_refused_a_header_is_read_alone_once_until_written() {
        let wire = NoMap(host(false));
        {
            let _phase = Phase::open(&wire);
            for _ in 0..2 {
                assert_eq!(header(&wire, REQ, "X-A").unwrap(), Some(b"1".to_vec()));
            }
            // The map was not read: the caller writes at once, and the next read asks again.
            assert!(!set(REQ, "x-a", b"new"));
            wire.replace(REQ, "x-a", b"new").unwrap();
            assert_eq!(header(&wire, REQ, "x-a").unwrap(), Some(b"new".to_vec()));
        }
        assert_eq!(
            calls(&wire.0),
            ["read refused", "get X-A", "replace x-a", "get x-a"]
        );
    }

    #[test]
    fn many_changed_names_go_as_one_map_where_the_host_takes_it() {
        let wire = host(true);
        {
            let _phase = Phase::open(&wire);
            header_list(&wire, REQ).unwrap();
            for name in ["x-1", "x-2", "x-3"] {
                assert!(set(REQ, name, b"v"));
            }
        }
        assert_eq!(calls(&wire), ["read", "pairs"]);
        assert_eq!(wire.map.borrow().len(), 6);
    }

    #[test]
    fn a_removal_is_immediate() {
        let wire = host(false);
        assert!(!set(REQ, "x-b", b"b"), "outside a phase nothing is kept");
        {
            let _phase = Phase::open(&wire);
            header_list(&wire, REQ).unwrap();
            assert!(set(REQ, "x-a", b"3"));
            remove(&wire, REQ, "x-a").unwrap();
            assert_eq!(calls(&wire), ["read", "remove x-a"]);
        }
        assert_eq!(calls(&wire), ["read", "remove x-a"]);
        assert!(!active());
    }

    #[test]
    fn a_joined_phase_shares_the_copy() {
        let wire = host(false);
        {
            let _outer = Phase::open(&wire);
            header_list(&wire, REQ).unwrap();
            {
                let _job = Phase::open(&wire);
                assert!(set(REQ, "x-job", b"j"));
            }
            // The job's phase ended, the outer one did not: nothing written yet.
            assert_eq!(calls(&wire), ["read"]);
            assert_eq!(header(&wire, REQ, "x-job").unwrap(), Some(b"j".to_vec()));
            write_now(&wire);
            assert_eq!(calls(&wire), ["read", "replace x-job"]);
            assert!(active());
        }
        assert_eq!(calls(&wire), ["read", "replace x-job"]);
    }

    /// The suite's behaviour (a single read reads the map whole).
    #[cfg(feature = "suite")]
    #[test]
    fn a_later_phase_reads_what_the_request_phase_kept_and_writes_to_the_host() {
        let wire = host(true);
        let mut carry = Carry::default();
        {
            let _phase = Phase::open(&wire);
            header_list(&wire, REQ).unwrap();
            assert!(set(REQ, "x-marker", b"m"));
            property(b"source\0address", || Ok(Some(b"ip".to_vec()))).unwrap();
            property(b"request\0duration", || Ok(Some(b"1".to_vec()))).unwrap();
            keep(&mut carry);
        }
        assert_eq!(calls(&wire), ["read", "replace x-marker"]);
        {
            let _phase = Phase::open(&wire);
            seed(&carry);
            assert_eq!(header(&wire, REQ, "x-marker").unwrap(), Some(b"m".to_vec()));
            let ip = property(b"source\0address", || panic!("read from the host"));
            assert_eq!(ip.unwrap(), Some(b"ip".to_vec()));
            // A property that changes during the stream is not kept.
            let reads = Cell::new(0);
            property(b"request\0duration", || {
                reads.set(1);
                Ok(None)
            })
            .unwrap();
            assert_eq!(reads.get(), 1);
            assert_eq!(calls(&wire), ["read", "replace x-marker"]);
            // A removal goes to the host at once and out of the kept map.
            remove(&wire, REQ, "x-marker").unwrap();
            assert_eq!(header(&wire, REQ, "x-marker").unwrap(), None);
            assert_eq!(carry.request.as_ref().map(|l| l.len()), Some(4));
            // The kept map is read-only: a write goes to the host, the map is read again.
            assert!(!set(REQ, "x-late", b"l"));
            wire.replace(REQ, "x-late", b"l").unwrap();
            assert_eq!(header(&wire, REQ, "x-late").unwrap(), Some(b"l".to_vec()));
        }
        assert_eq!(
            calls(&wire),
            [
                "read",
                "replace x-marker",
                "remove x-marker",
                "replace x-late",
                "read"
            ]
        );
    }

    #[test]
    fn clock_and_properties_are_read_once_per_phase() {
        let wire = host(false);
        let reads = Cell::new(0);
        let _phase = Phase::open(&wire);
        for _ in 0..3 {
            let now = now(|| {
                reads.set(reads.get() + 1);
                Ok(7)
            });
            assert_eq!(now.unwrap(), 7);
            let value = property(b"source\0address", || {
                reads.set(reads.get() + 1);
                Ok(Some(b"ip".to_vec()))
            });
            assert_eq!(value.unwrap(), Some(b"ip".to_vec()));
        }
        assert_eq!(reads.get(), 2);
        forget_property(b"source\0address");
        property(b"source\0address", || {
            reads.set(reads.get() + 1);
            Ok(None)
        })
        .unwrap();
        assert_eq!(reads.get(), 3);
    }
}

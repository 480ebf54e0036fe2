//! An in-memory host implementing every port, for native unit tests of plugin logic.
//!
//! State is plain data behind `RefCell`s: tests set it up, run the logic, then inspect it.
//! Shared data follows Envoy's rules (cas 0 writes unconditionally, each write bumps the cas), or
//! Kong's when [`FakeHost::cas_rule`] says so.

use crate::headers::HeaderList;
use crate::ports::{
    Clock, HeaderMapKind, HeaderPort, HostError, LocalReplyPort, LogLevel, LogPort, MetricId,
    MetricsPort, PropertyPort, RandomSource, SharedDataPort, SharedEntry,
};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// A local reply the logic sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentReply {
    /// HTTP status.
    pub status: u32,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// The fake host. `Default` gives empty maps, time 0 and a counter-based random stream.
#[derive(Debug, Default)]
pub struct FakeHost {
    /// Request headers, pseudo-headers included.
    pub request_headers: RefCell<HeaderList>,
    /// Response headers.
    pub response_headers: RefCell<HeaderList>,
    /// Properties by dotted path (`source.address`).
    pub properties: RefCell<HashMap<String, Vec<u8>>>,
    /// Wall-clock nanoseconds since the epoch.
    pub now_nanos: Cell<u64>,
    /// Next byte of the deterministic random stream.
    pub random_counter: Cell<u8>,
    /// When true, `fill_random` fails.
    pub random_fails: Cell<bool>,
    /// When true, `header_list` fails (a host that cannot hand over a header map).
    pub header_list_fails: Cell<bool>,
    /// Log lines written.
    pub logs: RefCell<Vec<(LogLevel, String)>>,
    /// Metrics: name, value.
    pub metrics: RefCell<Vec<(String, i64)>>,
    /// Shared data: key -> (value, cas).
    pub shared: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    /// The local reply sent, if any.
    pub local_reply: RefCell<Option<SentReply>>,
    /// Host calls made, by name, for "read once per phase" checks.
    pub calls: RefCell<Vec<&'static str>>,
    /// Which host's compare-and-swap rule shared data follows (default: Envoy's).
    pub cas_rule: Cell<CasRule>,
}

/// The compare-and-swap rule of a host's shared data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CasRule {
    /// cas 0 writes unconditionally; any other cas must equal the stored one.
    #[default]
    Envoy,
    /// A write succeeds only if cas equals the stored one (a missing key counts as 0).
    Kong,
}

impl FakeHost {
    /// A host with these request headers.
    pub fn with_request(headers: &[(&str, &[u8])]) -> Self {
        let host = Self::default();
        *host.request_headers.borrow_mut() = to_list(headers);
        host
    }

    /// Replaces the response headers.
    pub fn set_response(&self, headers: &[(&str, &[u8])]) {
        *self.response_headers.borrow_mut() = to_list(headers);
    }

    /// Sets a property by dotted path.
    pub fn set_property_str(&self, path: &str, value: &str) {
        self.properties
            .borrow_mut()
            .insert(path.to_owned(), value.as_bytes().to_vec());
    }

    /// Every value of `name` in a map, as lossy strings.
    pub fn values(&self, map: HeaderMapKind, name: &str) -> Vec<String> {
        self.map(map)
            .borrow()
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    /// The value of a metric by name (0 if never incremented).
    pub fn metric(&self, name: &str) -> i64 {
        self.metrics
            .borrow()
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, v)| *v)
    }

    /// How many calls named `name` were made.
    pub fn call_count(&self, name: &str) -> usize {
        self.calls.borrow().iter().filter(|c| **c == name).count()
    }

    fn map(&self, map: HeaderMapKind) -> &RefCell<HeaderList> {
        match map {
            HeaderMapKind::Request => &self.request_headers,
            HeaderMapKind::Response => &self.response_headers,
        }
    }

    fn define(&self, name: &str) -> MetricId {
        let mut metrics = self.metrics.borrow_mut();
        if let Some(i) = metrics.iter().position(|(n, _)| n == name) {
            return MetricId(u32::try_from(i).unwrap_or(u32::MAX));
        }
        metrics.push((name.to_owned(), 0));
        MetricId(u32::try_from(metrics.len() - 1).unwrap_or(u32::MAX))
    }
}

fn to_list(headers: &[(&str, &[u8])]) -> HeaderList {
    headers
        .iter()
        .map(|(n, v)| ((*n).to_owned(), v.to_vec()))
        .collect()
}

impl HeaderPort for FakeHost {
    fn header_list(&self, map: HeaderMapKind) -> Result<HeaderList, HostError> {
        self.calls.borrow_mut().push("header_list");
        if self.header_list_fails.get() {
            return Err(HostError::InternalFailure);
        }
        Ok(self.map(map).borrow().clone())
    }

    fn header(&self, map: HeaderMapKind, name: &str) -> Result<Option<Vec<u8>>, HostError> {
        self.calls.borrow_mut().push("header");
        Ok(self
            .map(map)
            .borrow()
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone()))
    }

    fn set_header(&self, map: HeaderMapKind, name: &str, value: &[u8]) -> Result<(), HostError> {
        self.calls.borrow_mut().push("set_header");
        let mut headers = self.map(map).borrow_mut();
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        headers.push((name.to_owned(), value.to_vec()));
        Ok(())
    }

    fn add_header(&self, map: HeaderMapKind, name: &str, value: &[u8]) -> Result<(), HostError> {
        self.calls.borrow_mut().push("add_header");
        self.map(map)
            .borrow_mut()
            .push((name.to_owned(), value.to_vec()));
        Ok(())
    }

    fn remove_header(&self, map: HeaderMapKind, name: &str) -> Result<(), HostError> {
        self.calls.borrow_mut().push("remove_header");
        self.map(map)
            .borrow_mut()
            .retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        Ok(())
    }
}

impl PropertyPort for FakeHost {
    fn property(&self, path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
        self.calls.borrow_mut().push("property");
        Ok(self.properties.borrow().get(&path.join(".")).cloned())
    }

    fn set_property(&self, path: &[&str], value: &[u8]) -> Result<(), HostError> {
        self.calls.borrow_mut().push("set_property");
        self.properties
            .borrow_mut()
            .insert(path.join("."), value.to_vec());
        Ok(())
    }
}

impl Clock for FakeHost {
    fn now_unix_nanos(&self) -> Result<u64, HostError> {
        Ok(self.now_nanos.get())
    }
}

impl RandomSource for FakeHost {
    fn fill_random(&self, buf: &mut [u8]) -> Result<(), HostError> {
        if self.random_fails.get() {
            return Err(HostError::InternalFailure);
        }
        for b in buf.iter_mut() {
            let next = self.random_counter.get().wrapping_add(1);
            self.random_counter.set(next);
            *b = next;
        }
        Ok(())
    }
}

impl LogPort for FakeHost {
    fn log(&self, level: LogLevel, message: &str) {
        self.logs.borrow_mut().push((level, message.to_owned()));
    }
}

impl MetricsPort for FakeHost {
    fn define_counter(&self, name: &str) -> Result<MetricId, HostError> {
        Ok(self.define(name))
    }

    fn define_gauge(&self, name: &str) -> Result<MetricId, HostError> {
        Ok(self.define(name))
    }

    fn increment(&self, id: MetricId, delta: i64) -> Result<(), HostError> {
        self.calls.borrow_mut().push("increment");
        let mut metrics = self.metrics.borrow_mut();
        let entry = usize::try_from(id.0)
            .ok()
            .and_then(|i| metrics.get_mut(i))
            .ok_or(HostError::NotFound)?;
        entry.1 += delta;
        Ok(())
    }

    fn record(&self, id: MetricId, value: u64) -> Result<(), HostError> {
        self.calls.borrow_mut().push("record");
        let mut metrics = self.metrics.borrow_mut();
        let entry = usize::try_from(id.0)
            .ok()
            .and_then(|i| metrics.get_mut(i))
            .ok_or(HostError::NotFound)?;
        entry.1 = i64::try_from(value).unwrap_or(i64::MAX);
        Ok(())
    }
}

impl SharedDataPort for FakeHost {
    fn shared_data(&self, key: &str) -> Result<SharedEntry, HostError> {
        Ok(match self.shared.borrow().get(key) {
            Some((value, cas)) => SharedEntry {
                value: Some(value.clone()),
                cas: *cas,
            },
            None => SharedEntry::default(),
        })
    }

    fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
        let mut shared = self.shared.borrow_mut();
        let current = shared.get(key).map_or(0, |(_, c)| *c);
        let refused = match self.cas_rule.get() {
            CasRule::Envoy => cas != 0 && cas != current,
            CasRule::Kong => cas != current,
        };
        if refused {
            return Err(HostError::CasMismatch);
        }
        shared.insert(
            key.to_owned(),
            (value.to_vec(), current.wrapping_add(1).max(1)),
        );
        Ok(())
    }
}

impl LocalReplyPort for FakeHost {
    fn send_local_reply(
        &self,
        status: u32,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), HostError> {
        self.calls.borrow_mut().push("send_local_reply");
        *self.local_reply.borrow_mut() = Some(SentReply {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.to_vec(),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_data_follows_envoy_cas_rules() {
        let host = FakeHost::default();
        assert_eq!(host.shared_data("k").unwrap(), SharedEntry::default());
        host.set_shared_data("k", b"1", 0).unwrap();
        let entry = host.shared_data("k").unwrap();
        assert_eq!(entry.value.as_deref(), Some(&b"1"[..]));
        host.set_shared_data("k", b"2", entry.cas).unwrap();
        assert_eq!(
            host.set_shared_data("k", b"3", entry.cas),
            Err(HostError::CasMismatch)
        );
    }

    #[test]
    fn headers_set_replaces_all_lines() {
        let host = FakeHost::with_request(&[("a", b"1"), ("a", b"2")]);
        host.set_header(HeaderMapKind::Request, "a", b"3").unwrap();
        assert_eq!(host.values(HeaderMapKind::Request, "a"), vec!["3"]);
    }
}

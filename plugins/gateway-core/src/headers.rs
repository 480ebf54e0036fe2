//! Header names and values: validation (RFC 9110) and helpers over a header list.
//!
//! A header list is what the host hands over: `(name, value bytes)` pairs in order, duplicates
//! kept. Values are bytes because clients may send anything; never assume UTF-8.

use crate::error::{ConfigError, ConfigErrorKind};
use crate::ports::{HeaderMapKind, HeaderPort, HostError, LogLevel, LogPort};

/// Header pairs as read from the host, in order, duplicates kept.
pub type HeaderList = Vec<(String, Vec<u8>)>;

/// True if `name` is an RFC 9110 `token` (`!#$%&'*+-.^_`|~`, digits, letters), non-empty.
pub fn is_token(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(is_tchar)
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// True if `value` holds no CR, LF or NUL (the bytes that would split or truncate a header).
pub fn is_valid_value(value: &[u8]) -> bool {
    !value.iter().any(|b| matches!(b, b'\r' | b'\n' | 0))
}

/// Validates a configured header name and returns it lowercased.
pub fn header_name(name: &str, field: &str) -> Result<String, ConfigError> {
    if is_token(name) {
        Ok(name.to_ascii_lowercase())
    } else {
        Err(ConfigError::new(
            field,
            ConfigErrorKind::InvalidHeaderName(name.to_owned()),
        ))
    }
}

/// Validates a configured header value.
pub fn header_value(value: &str, field: &str) -> Result<String, ConfigError> {
    if is_valid_value(value.as_bytes()) {
        Ok(value.to_owned())
    } else {
        Err(ConfigError::new(field, ConfigErrorKind::InvalidHeaderValue))
    }
}

/// First value of `name` (ASCII case-insensitive).
pub fn first<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

/// Every value of `name` (ASCII case-insensitive), in order.
pub fn all<'a>(headers: &'a [(String, Vec<u8>)], name: &'a str) -> impl Iterator<Item = &'a [u8]> {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

/// How many lines carry `name`.
pub fn count(headers: &[(String, Vec<u8>)], name: &str) -> usize {
    all(headers, name).count()
}

/// True if a comma-separated header value lists `token` (ASCII case-insensitive), e.g. `Vary`.
pub fn list_contains(value: &[u8], token: &str) -> bool {
    value
        .split(|b| *b == b',')
        .any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// One change to a header map, to replay on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderOp {
    /// Replace every line of `name` with one line.
    Set(String, Vec<u8>),
    /// Add one more line.
    Add(String, Vec<u8>),
    /// Remove every line of `name`.
    Remove(String),
}

/// A header map being edited in memory: decisions read the current state (earlier edits
/// included) and every change is recorded as a [`HeaderOp`] to replay on the host once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderEdits {
    headers: HeaderList,
    ops: Vec<HeaderOp>,
}

impl HeaderEdits {
    /// Starts from the map read from the host.
    pub fn new(headers: HeaderList) -> Self {
        Self {
            headers,
            ops: Vec::new(),
        }
    }

    /// The current state.
    pub fn headers(&self) -> &HeaderList {
        &self.headers
    }

    /// Mutable access for bulk filters; callers must record matching ops themselves.
    pub fn headers_mut(&mut self) -> &mut HeaderList {
        &mut self.headers
    }

    /// The changes so far, in order.
    pub fn ops(&self) -> &[HeaderOp] {
        &self.ops
    }

    /// First value of `name`.
    pub fn first(&self, name: &str) -> Option<&[u8]> {
        first(&self.headers, name)
    }

    /// Every value of `name`, copied.
    pub fn all(&self, name: &str) -> Vec<Vec<u8>> {
        all(&self.headers, name).map(<[u8]>::to_vec).collect()
    }

    /// True if at least one line carries `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.first(name).is_some()
    }

    /// Replaces every line of `name` with one line.
    pub fn set(&mut self, name: &str, value: Vec<u8>) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.clone()));
        self.ops.push(HeaderOp::Set(name.to_owned(), value));
    }

    /// Adds one more line.
    pub fn add(&mut self, name: &str, value: Vec<u8>) {
        self.headers.push((name.to_owned(), value.clone()));
        self.ops.push(HeaderOp::Add(name.to_owned(), value));
    }

    /// Removes every line of `name`; returns how many there were (no op recorded for none).
    pub fn remove(&mut self, name: &str) -> usize {
        let before = self.headers.len();
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        let removed = before - self.headers.len();
        if removed > 0 {
            self.ops.push(HeaderOp::Remove(name.to_owned()));
        }
        removed
    }

    /// Records a removal done through [`Self::headers_mut`].
    pub fn record_removed(&mut self, name: &str) {
        self.ops.push(HeaderOp::Remove(name.to_owned()));
    }

    /// Replays every op on the host, in order. Keeps going after a failure and returns the
    /// first error, so one refused header does not cancel the others; the error says whether a
    /// removal was among the refused ops (a header meant to go, e.g. a forged identity, may
    /// still be there).
    pub fn apply<H: HeaderPort + ?Sized>(
        &self,
        host: &H,
        map: HeaderMapKind,
    ) -> Result<(), ApplyError> {
        let mut failure: Option<ApplyError> = None;
        for op in &self.ops {
            let (outcome, removal) = match op {
                HeaderOp::Set(name, value) => (host.set_header(map, name, value), false),
                HeaderOp::Add(name, value) => (host.add_header(map, name, value), false),
                HeaderOp::Remove(name) => (host.remove_header(map, name), true),
            };
            if let Err(error) = outcome {
                let f = failure.get_or_insert(ApplyError {
                    first: error,
                    removal_refused: false,
                });
                f.removal_refused |= removal;
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// [`Self::apply`] with the suite's policy on refusals, logged as `plugin`: a refused
    /// removal from the request map (a forged identity header or a credential may still be
    /// there) is logged as an error and returns false: that request must not go upstream. Any
    /// other refusal is a warning (`"{plugin}: {warning}: ..."`) and returns true.
    pub fn write<H: HeaderPort + LogPort + ?Sized>(
        &self,
        host: &H,
        map: HeaderMapKind,
        plugin: &str,
        warning: &str,
    ) -> bool {
        match self.apply(host, map) {
            Ok(()) => true,
            Err(err) if err.removal_refused && map == HeaderMapKind::Request => {
                host.log(
                    LogLevel::Error,
                    &format!(
                        "{plugin}: the host refused to remove a request header ({err}), answering 500"
                    ),
                );
                false
            }
            Err(err) => {
                host.log(LogLevel::Warn, &format!("{plugin}: {warning}: {err}"));
                true
            }
        }
    }
}

/// What [`HeaderEdits::apply`] could not do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyError {
    /// The host's answer to the first refused op.
    pub first: HostError,
    /// True if the host refused a removal.
    pub removal_refused: bool,
}

impl std::fmt::Display for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.removal_refused {
            write!(f, "{} (a header removal among them)", self.first)
        } else {
            write!(f, "{}", self.first)
        }
    }
}

/// Why `upstream` (a callout target: an Envoy cluster name, or `host:port` on Kong) looks like
/// a URL, with what to write instead; `None` when it does not. Envoy would take the URL as an
/// unknown cluster name and every call would fail at run time.
///
/// ```
/// use gateway_core::headers::url_shaped_upstream;
/// assert!(url_shaped_upstream("https://sso.example.com/jwks").is_some());
/// assert!(url_shaped_upstream("sso.example.com/jwks").is_some());
/// assert_eq!(url_shaped_upstream("outbound|443||sso.example.com"), None);
/// assert_eq!(url_shaped_upstream("127.0.0.1:8082"), None);
/// ```
pub fn url_shaped_upstream(upstream: &str) -> Option<String> {
    if !upstream.contains('/') {
        return None;
    }
    Some(format!(
        "{upstream:?} is a url: upstream names where the gateway sends the call, an envoy \
         cluster (a static cluster name, or istio's outbound|443||host) or host:port on kong; \
         put the host in authority and the path in path"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_track_state_and_ops() {
        let mut edits = HeaderEdits::new(vec![
            ("a".into(), b"1".to_vec()),
            ("a".into(), b"2".to_vec()),
        ]);
        edits.add("b", b"x".to_vec());
        edits.set("a", b"3".to_vec());
        assert_eq!(edits.remove("missing"), 0);
        assert_eq!(edits.all("a"), vec![b"3".to_vec()]);
        assert_eq!(edits.remove("b"), 1);
        assert_eq!(
            edits.ops(),
            &[
                HeaderOp::Add("b".into(), b"x".to_vec()),
                HeaderOp::Set("a".into(), b"3".to_vec()),
                HeaderOp::Remove("b".into()),
            ]
        );
    }

    #[test]
    fn tokens() {
        assert!(is_token("x-user-id"));
        assert!(is_token("X_Weird.!#$%&'*+^`|~9"));
        assert!(!is_token(""));
        assert!(!is_token("x user"));
        assert!(!is_token(":path"));
        assert!(!is_token("a\"b"));
        assert!(!is_token("é"));
    }

    #[test]
    fn values() {
        assert!(is_valid_value(b"anything \xff goes\t"));
        assert!(!is_valid_value(b"a\r\nb"));
        assert!(!is_valid_value(b"a\0"));
        assert!(!is_valid_value(b"a\n"));
    }

    #[test]
    fn config_validation_lowercases_and_names_field() {
        assert_eq!(header_name("X-Env", "f").unwrap(), "x-env");
        let err = header_name("bad name", "rules[0].name").unwrap_err();
        assert_eq!(err.field, "rules[0].name");
        assert!(header_value("ok", "f").is_ok());
        assert_eq!(
            header_value("a\nb", "v").unwrap_err().kind,
            ConfigErrorKind::InvalidHeaderValue
        );
    }

    #[test]
    fn lookups() {
        let h: HeaderList = vec![
            ("Vary".into(), b"Accept, origin".to_vec()),
            ("a".into(), b"1".to_vec()),
            ("A".into(), b"2".to_vec()),
        ];
        assert_eq!(first(&h, "a"), Some(&b"1"[..]));
        assert_eq!(count(&h, "a"), 2);
        assert_eq!(first(&h, "b"), None);
        assert!(list_contains(first(&h, "vary").unwrap(), "Origin"));
        assert!(!list_contains(b"originx", "origin"));
    }
}

//! Kong's request header list, as ngx_wasm_module edits nginx's `r->headers_in.headers`.
//!
//! nginx keeps request headers in an `ngx_list_t` of `ngx_table_elt_t`; ngx_wasm_module never
//! takes an element out of it. What the engine does (ngx_http_wasm_headers.c,
//! ngx_http_wasm_set_header_helper and ngx_http_wasm_set_builtin_header_handler, 9136e463 and
//! 96b4e27e alike):
//! - remove: every live element of the name gets `hash = 0` (dead) and stays in the list;
//! - replace (`NGX_HTTP_WASM_HEADERS_SET`): the first live element is updated in place; a later
//!   live element of the same name is cleared and the search restarts with `found` still set,
//!   so the element updated first is cleared too: with duplicates, a replace leaves no live
//!   value at all. No live element: one is appended;
//! - add (`NGX_HTTP_WASM_HEADERS_APPEND`): appended;
//! - `set_header_map_pairs`: every live element removed (ngx_http_wasm_clear_headers_helper),
//!   then each pair set (ngx_proxy_wasm_maps.c, ngx_proxy_wasm_maps_set_all);
//! - "builtin" headers (ngx_http_wasm_headers_request.c, `ngx_http_wasm_req_headers_handlers`:
//!   Host, Connection, User-Agent, Authorization, Content-Type, ...) go through the
//!   `r->headers_in.<field>` pointer nginx set to the first such line: remove clears only that
//!   element, replace updates it in place (reviving it if removed), and add is refused with
//!   `cannot add new "<Name>" builtin request header` while the pointer is set.
//!
//! nginx's proxy module (ngx_http_proxy_module.c, ngx_http_proxy_create_request) forwards every
//! element of `r->headers_in.headers` and never looks at `hash == 0`: the upstream receives
//! dead elements too, with the value they last had
//! ([`crate::HttpStream::upstream_request_headers`]).

use crate::types::Headers;
use std::collections::HashMap;

/// The builtin request headers of ngx_http_wasm_headers_request.c (9136e463), lowercase, with
/// the canonical name the engine logs. `X-Forwarded-For` and `Cookie` use the multi-header
/// handler, which goes through the generic helper: they are not listed. `Accept-Encoding`/`Via`
/// need NGX_HTTP_GZIP and `X-Real-IP` NGX_HTTP_REALIP (both in Kong's build); the DAV headers
/// are not (Kong builds nginx without the DAV module).
const BUILTIN: &[(&str, &str)] = &[
    ("host", "Host"),
    ("connection", "Connection"),
    ("if-modified-since", "If-Modified-Since"),
    ("if-unmodified-since", "If-Unmodified-Since"),
    ("if-match", "If-Match"),
    ("if-none-match", "If-None-Match"),
    ("user-agent", "User-Agent"),
    ("referer", "Referer"),
    ("content-length", "Content-Length"),
    ("content-type", "Content-Type"),
    ("range", "Range"),
    ("if-range", "If-Range"),
    ("transfer-encoding", "Transfer-Encoding"),
    ("expect", "Expect"),
    ("upgrade", "Upgrade"),
    ("accept-encoding", "Accept-Encoding"),
    ("via", "Via"),
    ("authorization", "Authorization"),
    ("keep-alive", "Keep-Alive"),
    ("x-real-ip", "X-Real-IP"),
];

fn builtin(name: &str) -> Option<&'static str> {
    BUILTIN.iter().find(|(n, _)| *n == name).map(|(_, c)| *c)
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    name: String,
    value: Vec<u8>,
    /// `hash != 0`.
    live: bool,
}

/// The request header list of one Kong stream, plus the request-line pseudo-headers the test
/// sent (`:method`, `:path`, ...), which nginx keeps outside the list.
#[derive(Debug, Clone, Default)]
pub(crate) struct NgxRequest {
    pub(crate) pseudo: Headers,
    entries: Vec<Entry>,
    /// `r->headers_in.<field>` of each builtin header: index of the element it points to.
    pointers: HashMap<&'static str, usize>,
}

impl NgxRequest {
    /// The list nginx builds from the client's request: pseudo-headers apart, builtin
    /// pointers on the first line of each builtin name (ngx_http_request.c, ngx_http_headers_in).
    pub(crate) fn new(headers: &Headers) -> NgxRequest {
        let mut req = NgxRequest::default();
        for (name, value) in headers {
            if name.starts_with(':') {
                req.pseudo.push((name.clone(), value.clone()));
                continue;
            }
            if let Some((key, _)) = BUILTIN.iter().find(|(n, _)| n == name) {
                req.pointers.entry(key).or_insert(req.entries.len());
            }
            req.entries.push(Entry {
                name: name.clone(),
                value: value.clone(),
                live: true,
            });
        }
        req
    }

    /// What the filter sees: pseudo-headers, then the live elements.
    pub(crate) fn view(&self) -> Headers {
        let mut out = self.pseudo.clone();
        out.extend(self.live());
        out
    }

    /// The live elements (no pseudo-headers).
    pub(crate) fn live(&self) -> Headers {
        self.entries
            .iter()
            .filter(|e| e.live)
            .map(|e| (e.name.clone(), e.value.clone()))
            .collect()
    }

    /// What nginx's proxy module sends upstream: every element, dead or live, in list order.
    pub(crate) fn upstream(&self) -> Headers {
        self.entries
            .iter()
            .map(|e| (e.name.clone(), e.value.clone()))
            .collect()
    }

    /// First live value (ngx_wasm_get_list_elem skips nothing but dead elements never match a
    /// lookup: the engine compares names of elements with `hash != 0`).
    pub(crate) fn get(&self, name: &str) -> Option<Vec<u8>> {
        self.entries
            .iter()
            .find(|e| e.live && e.name == name)
            .map(|e| e.value.clone())
    }

    fn push(&mut self, name: &str, value: Vec<u8>) -> usize {
        self.entries.push(Entry {
            name: name.to_string(),
            value,
            live: true,
        });
        self.entries.len() - 1
    }

    /// ngx_http_wasm_set_header_helper for a non-builtin name; returns the element `*out`
    /// ends up pointing to (for the builtin handler).
    fn helper_set(&mut self, name: &str, value: Vec<u8>) -> Option<usize> {
        let matches: Vec<usize> = (0..self.entries.len())
            .filter(|&i| self.entries[i].live && self.entries[i].name == name)
            .collect();
        match matches.as_slice() {
            [] => Some(self.push(name, value)),
            [only] => {
                self.entries[*only].value = value;
                Some(*only)
            }
            [first, ..] => {
                // The first match is updated, then every match (the first one included, after
                // the `goto again` restart with `found` set) is cleared.
                self.entries[*first].value = value;
                for i in matches {
                    self.entries[i].live = false;
                }
                None
            }
        }
    }

    /// `proxy_remove_header_map_value` (NGX_HTTP_WASM_HEADERS_REMOVE).
    pub(crate) fn remove(&mut self, name: &str) {
        if let Some(key) = BUILTIN.iter().map(|(n, _)| *n).find(|n| *n == name) {
            if let Some(&i) = self.pointers.get(key) {
                self.entries[i].live = false;
            }
            return;
        }
        for e in &mut self.entries {
            if e.live && e.name == name {
                e.live = false;
            }
        }
    }

    /// `proxy_replace_header_map_value` (NGX_HTTP_WASM_HEADERS_SET).
    pub(crate) fn set(&mut self, name: &str, value: Vec<u8>) {
        let Some(key) = BUILTIN.iter().map(|(n, _)| *n).find(|n| *n == name) else {
            self.helper_set(name, value);
            return;
        };
        match self.pointers.get(key).copied() {
            Some(i) => {
                self.entries[i].value = value;
                self.entries[i].live = true;
            }
            None => match self.helper_set(name, value) {
                Some(i) => {
                    self.pointers.insert(key, i);
                }
                None => {
                    self.pointers.remove(key);
                }
            },
        }
    }

    /// `proxy_add_header_map_value` (NGX_HTTP_WASM_HEADERS_APPEND). Returns the error line the
    /// engine logs when it refuses (a builtin header whose pointer is set).
    pub(crate) fn add(&mut self, name: &str, value: Vec<u8>) -> Option<String> {
        if let Some(key) = BUILTIN.iter().map(|(n, _)| *n).find(|n| *n == name) {
            if self.pointers.contains_key(key) {
                return Some(format!(
                    "cannot add new \"{}\" builtin request header",
                    builtin(name).unwrap_or(name)
                ));
            }
            let i = self.push(name, value);
            self.pointers.insert(key, i);
            return None;
        }
        self.push(name, value);
        None
    }

    /// ngx_http_wasm_clear_headers_helper: a remove for each live element, in list order.
    pub(crate) fn clear(&mut self) {
        for i in 0..self.entries.len() {
            if self.entries[i].live {
                let name = self.entries[i].name.clone();
                self.remove(&name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn remove_keeps_the_line_for_the_upstream() {
        let mut r = NgxRequest::new(&h(&[(":path", "/"), ("a", "1"), ("b", "2")]));
        r.remove("a");
        assert_eq!(r.view(), h(&[(":path", "/"), ("b", "2")]));
        assert_eq!(r.upstream(), h(&[("a", "1"), ("b", "2")]));
    }

    #[test]
    fn replace_of_a_duplicated_header_clears_every_value() {
        let mut r = NgxRequest::new(&h(&[("a", "1"), ("b", "x"), ("a", "2")]));
        r.set("a", b"3".to_vec());
        assert_eq!(r.live(), h(&[("b", "x")]));
        assert_eq!(r.upstream(), h(&[("a", "3"), ("b", "x"), ("a", "2")]));
        let mut r = NgxRequest::new(&h(&[("a", "1"), ("b", "x")]));
        r.set("a", b"3".to_vec());
        r.set("c", b"4".to_vec());
        assert_eq!(r.live(), h(&[("a", "3"), ("b", "x"), ("c", "4")]));
    }

    #[test]
    fn builtin_headers_go_through_their_pointer() {
        let mut r = NgxRequest::new(&h(&[("authorization", "Bearer a"), ("x", "1")]));
        assert!(r.add("authorization", b"Basic b".to_vec()).is_some());
        r.remove("authorization");
        assert_eq!(r.get("authorization"), None);
        assert!(r.add("authorization", b"Basic b".to_vec()).is_some());
        r.set("authorization", b"Basic c".to_vec());
        assert_eq!(r.live(), h(&[("authorization", "Basic c"), ("x", "1")]));
        let mut r = NgxRequest::new(&h(&[("x", "1")]));
        assert_eq!(r.add("user-agent", b"ua".to_vec()), None);
        assert!(r.add("user-agent", b"ua2".to_vec()).is_some());
    }

    #[test]
    fn clear_then_set_pairs_appends() {
        let mut r = NgxRequest::new(&h(&[("a", "1"), ("host", "h")]));
        r.clear();
        r.set("a", b"9".to_vec());
        assert_eq!(r.live(), h(&[("a", "9")]));
        assert_eq!(r.upstream(), h(&[("a", "1"), ("host", "h"), ("a", "9")]));
    }
}

//! Verified-token cache: bounded, per VM, keyed by (provider, the token's exact bytes), an entry
//! never outliving the token's `exp` (tokens without `exp` are not cached). When full, the
//! oldest entry goes (first in, first out: O(1) per insert, and a stream of new tokens never
//! leaves stale entries behind that a scan by expiry would keep).
//!
//! A hit needs the very same token (the hash map compares the whole key), so no hash collision
//! can ever stand in for a verified token, and no cryptographic digest has to be computed per
//! request (SHA-256 of a 1 KiB token is several microseconds in a Wasm VM; the map's keyed
//! SipHash is a fraction of that). An entry holds its token: at most `max_entries` times the
//! provider's `max_token_bytes`.

use crate::validate::Verified;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

/// One cached token.
type Entry = (i64, Rc<Verified>);

/// The cache.
#[derive(Debug, Default)]
pub struct TokenCache {
    max_entries: usize,
    /// One map per provider index, keyed by the token.
    maps: Vec<HashMap<Rc<[u8]>, Entry>>,
    /// Entries held, over every provider.
    len: usize,
    /// Keys in insertion order; may hold keys already gone (expired), skipped on eviction.
    order: VecDeque<(usize, Rc<[u8]>)>,
}

impl TokenCache {
    /// A cache of at most `max_entries` (0: disabled).
    pub fn new(max_entries: usize) -> Self {
        Self {
            max_entries,
            maps: Vec::new(),
            len: 0,
            order: VecDeque::new(),
        }
    }

    /// True if the cache keeps anything.
    pub fn enabled(&self) -> bool {
        self.max_entries > 0
    }

    /// How many entries are held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The verified `token` of `provider`, if cached and `now` is before its `exp`.
    pub fn get(&mut self, provider: usize, token: &[u8], now: i64) -> Option<Rc<Verified>> {
        let map = self.maps.get_mut(provider)?;
        match map.get(token) {
            Some((exp, verified)) if now < *exp => Some(Rc::clone(verified)),
            Some(_) => {
                map.remove(token);
                self.len = self.len.saturating_sub(1);
                None
            }
            None => None,
        }
    }

    fn remove(&mut self, provider: usize, token: &[u8]) {
        if let Some(map) = self.maps.get_mut(provider) {
            if map.remove(token).is_some() {
                self.len = self.len.saturating_sub(1);
            }
        }
    }

    /// Keeps `verified` until its `exp`; when full, evicts the oldest entry.
    pub fn insert(&mut self, provider: usize, token: &[u8], verified: Rc<Verified>, now: i64) {
        let Some(exp) = verified.exp.filter(|exp| *exp > now) else {
            return;
        };
        if !self.enabled() {
            return;
        }
        if self.maps.len() <= provider {
            self.maps.resize_with(provider + 1, HashMap::new);
        }
        if let Some(entry) = self.maps.get_mut(provider).and_then(|m| m.get_mut(token)) {
            *entry = (exp, verified);
            return;
        }
        while self.len >= self.max_entries {
            let Some((p, oldest)) = self.order.pop_front() else {
                break;
            };
            self.remove(p, &oldest);
        }
        if self.order.len() >= 2 * self.max_entries {
            // Keys of entries that expired meanwhile: drop them, keeping the order bounded.
            let maps = &self.maps;
            self.order
                .retain(|(p, k)| maps.get(*p).is_some_and(|m| m.contains_key(k)));
        }
        let key: Rc<[u8]> = Rc::from(token);
        if let Some(map) = self.maps.get_mut(provider) {
            map.insert(Rc::clone(&key), (exp, verified));
            self.len += 1;
            self.order.push_back((provider, key));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn v(exp: Option<i64>) -> Rc<Verified> {
        Rc::new(Verified {
            claims: Map::new(),
            exp,
        })
    }

    #[test]
    fn never_outlives_exp() {
        let mut c = TokenCache::new(4);
        c.insert(0, b"t", v(Some(100)), 50);
        assert!(c.get(0, b"t", 99).is_some());
        assert!(c.get(0, b"t", 100).is_none());
        assert!(c.is_empty());
        c.insert(0, b"t", v(None), 50);
        c.insert(0, b"t", v(Some(40)), 50);
        assert!(c.is_empty());
    }

    #[test]
    fn bounded_and_keyed_by_provider() {
        let mut c = TokenCache::new(2);
        c.insert(0, b"a", v(Some(300)), 0);
        c.insert(0, b"b", v(Some(100)), 0);
        c.insert(0, b"c", v(Some(200)), 0);
        assert_eq!(c.len(), 2);
        assert!(c.get(0, b"a", 1).is_none(), "oldest evicted");
        assert!(c.get(0, b"b", 1).is_some());
        assert!(c.get(0, b"c", 1).is_some());
        assert!(c.get(1, b"c", 1).is_none(), "keyed by provider");
        assert!(c.get(0, b"c ", 1).is_none(), "the exact token only");
        c.insert(1, b"c", v(Some(200)), 0);
        assert_eq!(c.len(), 2);
        assert!(c.get(1, b"c", 1).is_some());
        assert!(c.get(0, b"b", 1).is_none(), "oldest over every provider");
        // A stream of new tokens cycles through: none of the first ones survives.
        let mut c = TokenCache::new(4);
        for i in 0..100u32 {
            c.insert(0, &i.to_be_bytes(), v(Some(300)), 0);
        }
        assert_eq!(c.len(), 4);
        assert!((0..96u32).all(|i| c.get(0, &i.to_be_bytes(), 1).is_none()));
        assert!((96..100u32).all(|i| c.get(0, &i.to_be_bytes(), 1).is_some()));
        // Expired entries leave keys in the order; it stays bounded.
        for i in 0..100u32 {
            let at = i64::from(i);
            c.insert(1, &i.to_be_bytes(), v(Some(10 + at)), at);
            let _ = c.get(1, &i.to_be_bytes(), 10 + at);
        }
        assert!(c.order.len() <= 8, "{}", c.order.len());
        let mut off = TokenCache::new(0);
        off.insert(0, b"a", v(Some(300)), 0);
        assert!(off.is_empty());
    }
}

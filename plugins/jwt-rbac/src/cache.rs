//! Verified-token cache: bounded, per VM, keyed by SHA-256 of (provider, token), an entry
//! never outliving the token's `exp` (tokens without `exp` are not cached). When full, the
//! oldest entry goes (first in, first out: O(1) per insert, and a stream of new tokens never
//! leaves stale entries behind that a scan by expiry would keep).

use crate::validate::Verified;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

/// A cache key: SHA-256 of the provider index and the token.
pub type CacheKey = [u8; 32];

/// The key of `token` for provider `provider`.
pub fn key(provider: usize, token: &[u8]) -> CacheKey {
    let mut h = Sha256::new();
    h.update((provider as u64).to_be_bytes());
    h.update(token);
    h.finalize().into()
}

/// The cache.
#[derive(Debug, Default)]
pub struct TokenCache {
    max_entries: usize,
    entries: HashMap<CacheKey, (i64, Rc<Verified>)>,
    /// Keys in insertion order; may hold keys already gone (expired), skipped on eviction.
    order: VecDeque<CacheKey>,
}

impl TokenCache {
    /// A cache of at most `max_entries` (0: disabled).
    pub fn new(max_entries: usize) -> Self {
        Self {
            max_entries,
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// True if the cache keeps anything.
    pub fn enabled(&self) -> bool {
        self.max_entries > 0
    }

    /// How many entries are held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The verified token for `key`, if cached and `now` is before its `exp`.
    pub fn get(&mut self, key: &CacheKey, now: i64) -> Option<Rc<Verified>> {
        match self.entries.get(key) {
            Some((exp, verified)) if now < *exp => Some(Rc::clone(verified)),
            Some(_) => {
                self.entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps `verified` until its `exp`; when full, evicts the oldest entry.
    pub fn insert(&mut self, key: CacheKey, verified: Rc<Verified>, now: i64) {
        let Some(exp) = verified.exp.filter(|exp| *exp > now) else {
            return;
        };
        if !self.enabled() {
            return;
        }
        if let Some(entry) = self.entries.get_mut(&key) {
            *entry = (exp, verified);
            return;
        }
        while self.entries.len() >= self.max_entries {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.entries.remove(&oldest);
        }
        if self.order.len() >= 2 * self.max_entries {
            // Keys of entries that expired meanwhile: drop them, keeping the order bounded.
            let entries = &self.entries;
            self.order.retain(|k| entries.contains_key(k));
        }
        self.entries.insert(key, (exp, verified));
        self.order.push_back(key);
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
        let k = key(0, b"t");
        c.insert(k, v(Some(100)), 50);
        assert!(c.get(&k, 99).is_some());
        assert!(c.get(&k, 100).is_none());
        assert!(c.is_empty());
        c.insert(k, v(None), 50);
        c.insert(k, v(Some(40)), 50);
        assert!(c.is_empty());
    }

    #[test]
    fn bounded_and_keyed_by_provider() {
        let mut c = TokenCache::new(2);
        c.insert(key(0, b"a"), v(Some(300)), 0);
        c.insert(key(0, b"b"), v(Some(100)), 0);
        c.insert(key(0, b"c"), v(Some(200)), 0);
        assert_eq!(c.len(), 2);
        assert!(c.get(&key(0, b"a"), 1).is_none(), "oldest evicted");
        assert!(c.get(&key(0, b"b"), 1).is_some());
        assert!(c.get(&key(0, b"c"), 1).is_some());
        assert!(c.get(&key(1, b"c"), 1).is_none());
        // A stream of new tokens cycles through: none of the first ones survives.
        let mut c = TokenCache::new(4);
        for i in 0..100u32 {
            c.insert(key(0, &i.to_be_bytes()), v(Some(300)), 0);
        }
        assert_eq!(c.len(), 4);
        assert!((0..96u32).all(|i| c.get(&key(0, &i.to_be_bytes()), 1).is_none()));
        // Expired entries leave keys in the order; it stays bounded.
        for i in 0..100u32 {
            c.insert(
                key(1, &i.to_be_bytes()),
                v(Some(10 + i64::from(i))),
                i64::from(i),
            );
            let _ = c.get(&key(1, &i.to_be_bytes()), 10 + i64::from(i));
        }
        assert!(c.order.len() <= 8, "{}", c.order.len());
        let mut off = TokenCache::new(0);
        off.insert(key(0, b"a"), v(Some(300)), 0);
        assert!(off.is_empty());
    }
}

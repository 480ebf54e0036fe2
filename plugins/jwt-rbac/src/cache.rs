//! Verified-token cache: bounded, per VM, keyed by SHA-256 of (provider, token), an entry
//! never outliving the token's `exp` (tokens without `exp` are not cached).

use crate::validate::Verified;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
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
}

impl TokenCache {
    /// A cache of at most `max_entries` (0: disabled).
    pub fn new(max_entries: usize) -> Self {
        Self {
            max_entries,
            entries: HashMap::new(),
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

    /// Keeps `verified` until its `exp`; evicts expired entries, then the soonest to expire.
    pub fn insert(&mut self, key: CacheKey, verified: Rc<Verified>, now: i64) {
        let Some(exp) = verified.exp.filter(|exp| *exp > now) else {
            return;
        };
        if !self.enabled() {
            return;
        }
        if self.entries.len() >= self.max_entries && !self.entries.contains_key(&key) {
            self.entries.retain(|_, (e, _)| *e > now);
            if self.entries.len() >= self.max_entries {
                let soonest = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (e, _))| *e)
                    .map(|(k, _)| *k);
                if let Some(k) = soonest {
                    self.entries.remove(&k);
                }
            }
        }
        self.entries.insert(key, (exp, verified));
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
        assert!(c.get(&key(0, b"b"), 1).is_none(), "soonest evicted");
        assert!(c.get(&key(0, b"a"), 1).is_some());
        assert!(c.get(&key(1, b"a"), 1).is_none());
        let mut off = TokenCache::new(0);
        off.insert(key(0, b"a"), v(Some(300)), 0);
        assert!(off.is_empty());
    }
}

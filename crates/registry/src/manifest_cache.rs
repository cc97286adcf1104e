//! Recently read manifests, decrypted, by digest. A digest names its bytes forever, so an entry
//! is never stale; whether a caller may see it, and whether its repository still holds it, is
//! decided from the metadata store before the cache is asked.

use std::collections::HashMap;
use std::sync::Mutex;

use berth_core::Digest;
use bytes::Bytes;

/// How many bytes of manifests the cache holds at most.
pub(crate) const MANIFEST_CACHE_BYTES: usize = 16 * 1024 * 1024;

pub(crate) struct ManifestCache {
    budget: usize,
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    bytes: usize,
    by_digest: HashMap<Digest, Bytes>,
}

impl ManifestCache {
    pub(crate) fn new(budget: usize) -> Self {
        Self { budget, entries: Mutex::new(Entries::default()) }
    }

    pub(crate) fn get(&self, digest: &Digest) -> Option<Bytes> {
        self.lock().by_digest.get(digest).cloned()
    }

    /// Keeps `bytes` for `digest`; when the budget is spent, older entries make room (which
    /// ones is arbitrary: a miss costs one read of a small file).
    pub(crate) fn insert(&self, digest: &Digest, bytes: &Bytes) {
        if bytes.len() > self.budget / 4 {
            return;
        }
        let mut entries = self.lock();
        while entries.bytes + bytes.len() > self.budget {
            let Some(victim) = entries.by_digest.keys().next().cloned() else { break };
            if let Some(evicted) = entries.by_digest.remove(&victim) {
                entries.bytes -= evicted.len();
            }
        }
        if let Some(previous) = entries.by_digest.insert(digest.clone(), bytes.clone()) {
            entries.bytes -= previous.len();
        }
        entries.bytes += bytes.len();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic while holding the lock leaves consistent entries (every update is one step).
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u8) -> Digest {
        format!("sha256:{}", format!("{n:02x}").repeat(32)).parse().expect("digest")
    }

    #[test]
    fn entries_come_back_and_the_budget_holds() {
        let cache = ManifestCache::new(1000);
        let small = Bytes::from(vec![1u8; 100]);
        cache.insert(&digest(1), &small);
        assert_eq!(cache.get(&digest(1)), Some(small.clone()));
        assert_eq!(cache.get(&digest(2)), None);
        for n in 2..40 {
            cache.insert(&digest(n), &Bytes::from(vec![n; 200]));
            assert!(cache.lock().bytes <= 1000, "over budget after {n}");
        }
        assert_eq!(cache.get(&digest(39)), Some(Bytes::from(vec![39u8; 200])), "the newest entry is kept");
        // Re-inserting a digest does not count it twice; an entry over a quarter of the budget is not kept.
        cache.insert(&digest(39), &Bytes::from(vec![39u8; 200]));
        assert!(cache.lock().bytes <= 1000);
        cache.insert(&digest(99), &Bytes::from(vec![0u8; 251]));
        assert_eq!(cache.get(&digest(99)), None);
    }
}

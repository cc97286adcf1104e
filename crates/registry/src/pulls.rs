//! Pull times for `lastRecordedPullTime`, written at most once a minute per image so that
//! serving manifests stays a read-only path.

use std::collections::HashMap;
use std::sync::Mutex;

use berth_core::Digest;
use berth_meta::{MetaStore, Millis, now_millis};

/// How stale a recorded pull time may get.
const RECORD_EVERY_MILLIS: Millis = 60_000;
/// Images whose last recording is remembered; beyond it the memory starts afresh.
const MAX_REMEMBERED: usize = 100_000;

#[derive(Default)]
pub(crate) struct PullRecorder {
    recorded: Mutex<HashMap<(i64, Digest), Millis>>,
}

impl PullRecorder {
    pub(crate) async fn note(&self, meta: &dyn MetaStore, repository_id: i64, digest: &Digest) {
        let now = now_millis();
        {
            let mut recorded = self.recorded.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let key = (repository_id, digest.clone());
            if recorded.get(&key).is_some_and(|&at| now - at < RECORD_EVERY_MILLIS) {
                return;
            }
            if recorded.len() >= MAX_REMEMBERED {
                recorded.clear();
            }
            recorded.insert(key, now);
        }
        // A failed write loses one pull time, never the pull itself.
        if let Err(e) = meta.record_pull(repository_id, digest, now).await {
            tracing::warn!(error = %e, "could not record a pull time");
        }
    }
}

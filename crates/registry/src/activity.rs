//! What clients do per repository, for the tenant series of `/metrics`: image pulls (ECR's
//! `RepositoryPullCount`: a client's manifest GET or BatchGetImage of an image; not a blob read,
//! a HEAD, or the registry's own reads such as a scan's), image pushes, and blob bytes received
//! and sent. Counted in memory since the process started, as Prometheus counters are. At most
//! `cap` repositories are tracked one by one; the rest add up in one `other` series, so that no
//! number of repositories can grow the scrape without bound.

use std::collections::HashMap;
use std::sync::Mutex;

use berth_meta::Repository;

/// The account and repository labels of the series that sums every repository past the cap.
pub const OTHER: &str = "other";

/// One repository's counts (or, for `OTHER`, those of every repository past the cap).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepositoryActivity {
    pub account: String,
    pub repository: String,
    pub pulls: u64,
    pub pushes: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
}

pub(crate) struct ActivityCounters {
    /// Off: nothing is counted (`metrics.per_repository = false`).
    enabled: bool,
    cap: usize,
    /// By repository id, so that counting a pull allocates nothing once a repository is known;
    /// `None` is the `other` series.
    counts: Mutex<HashMap<Option<i64>, RepositoryActivity>>,
    /// Deleted repositories: a pull still in flight when its repository went counts nowhere.
    forgotten: Mutex<std::collections::HashSet<i64>>,
}

/// Deleted repository ids remembered; past it the memory starts afresh (an id is never reused).
const MAX_FORGOTTEN: usize = 10_000;

impl ActivityCounters {
    pub(crate) fn new(enabled: bool, cap: usize) -> Self {
        Self { enabled, cap, counts: Mutex::new(HashMap::new()), forgotten: Mutex::default() }
    }

    fn add(&self, repository: &Repository, change: impl FnOnce(&mut RepositoryActivity)) {
        if !self.enabled {
            return;
        }
        let mut counts = self.counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(known) = counts.get_mut(&Some(repository.id)) {
            change(known);
            return;
        }
        if self.forgotten.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).contains(&repository.id) {
            return;
        }
        // The `other` series does not count against the cap.
        let tracked = counts.len() - usize::from(counts.contains_key(&None));
        let (key, account, name) = if tracked >= self.cap {
            (None, OTHER.to_owned(), OTHER.to_owned())
        } else {
            (Some(repository.id), repository.account_id.to_string(), repository.name.to_string())
        };
        let entry = counts.entry(key).or_insert_with(|| RepositoryActivity {
            account,
            repository: name,
            ..RepositoryActivity::default()
        });
        change(entry);
    }

    pub(crate) fn pulled(&self, repository: &Repository) {
        self.add(repository, |a| a.pulls += 1);
    }

    pub(crate) fn pushed(&self, repository: &Repository) {
        self.add(repository, |a| a.pushes += 1);
    }

    pub(crate) fn received(&self, repository: &Repository, bytes: u64) {
        self.add(repository, |a| a.bytes_received += bytes);
    }

    pub(crate) fn sent(&self, repository: &Repository, bytes: u64) {
        self.add(repository, |a| a.bytes_sent += bytes);
    }

    /// Ends a deleted repository's series, freeing its place under the cap.
    pub(crate) fn forget(&self, repository: &Repository) {
        let mut counts = self.counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        counts.remove(&Some(repository.id));
        let mut forgotten = self.forgotten.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if forgotten.len() >= MAX_FORGOTTEN {
            forgotten.clear();
        }
        forgotten.insert(repository.id);
    }

    /// Every series, sorted by account and repository.
    pub(crate) fn snapshot(&self) -> Vec<RepositoryActivity> {
        let counts = self.counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut all: Vec<RepositoryActivity> = counts.values().cloned().collect();
        all.sort_by(|a, b| (&a.account, &a.repository).cmp(&(&b.account, &b.repository)));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repository(account: &str, name: &str) -> Repository {
        Repository {
            // Distinct per name, as the store's ids are.
            id: name.bytes().map(i64::from).sum(),
            account_id: account.parse().expect("account"),
            name: name.parse().expect("name"),
            created_at: 0,
            settings: berth_core::RepositorySettings::default(),
        }
    }

    #[test]
    fn repositories_past_the_cap_add_up_in_one_other_series_and_a_deleted_one_frees_its_place() {
        let counters = ActivityCounters::new(true, 2);
        let (a, b, c, d) = (
            repository("111111111111", "team/a"),
            repository("111111111111", "team/b"),
            repository("222222222222", "team/c"),
            repository("222222222222", "team/d"),
        );
        counters.pulled(&a);
        counters.pulled(&b);
        counters.pulled(&c);
        counters.received(&d, 10);
        counters.pulled(&a);
        counters.sent(&b, 5);
        counters.pushed(&c);
        let snapshot = counters.snapshot();
        let find = |account: &str, name: &str| {
            snapshot
                .iter()
                .find(|s| s.account == account && s.repository == name)
                .cloned()
                .unwrap_or_default()
        };
        assert_eq!(snapshot.len(), 3, "{snapshot:?}");
        assert_eq!((find("111111111111", "team/a").pulls, find("111111111111", "team/b").bytes_sent), (2, 5));
        let other = find(OTHER, OTHER);
        assert_eq!((other.pulls, other.pushes, other.bytes_received), (1, 1, 10));

        // A deleted repository's place goes to the next one.
        counters.forget(&a);
        counters.pulled(&c);
        let snapshot = counters.snapshot();
        assert!(!snapshot.iter().any(|s| s.repository == "team/a"), "{snapshot:?}");
        assert!(snapshot.iter().any(|s| s.repository == "team/c" && s.pulls == 1), "{snapshot:?}");
        // A pull that was in flight when its repository went counts nowhere.
        counters.pulled(&a);
        assert!(!counters.snapshot().iter().any(|s| s.repository == "team/a"));
    }

    #[test]
    fn nothing_is_counted_when_per_repository_metrics_are_off() {
        let counters = ActivityCounters::new(false, 2);
        let a = repository("111111111111", "team/a");
        counters.pulled(&a);
        counters.received(&a, 10);
        assert!(counters.snapshot().is_empty());
    }
}

//! What the background work has done since the process started, for `/metrics`: scans by how
//! they ended, images lifecycle policies expired and archived, what garbage collection
//! reclaimed, and webhook deliveries. None of it names a tenant.

use std::sync::atomic::{AtomicU64, Ordering};

/// The counters, each only ever growing.
#[derive(Default)]
pub(crate) struct BackgroundCounters {
    scans_complete: AtomicU64,
    scans_failed: AtomicU64,
    lifecycle_expired: AtomicU64,
    lifecycle_archived: AtomicU64,
    gc_passes: AtomicU64,
    gc_blobs: AtomicU64,
    gc_bytes: AtomicU64,
    gc_orphan_files: AtomicU64,
    gc_uploads: AtomicU64,
    deliveries_ok: AtomicU64,
    deliveries_failed: AtomicU64,
}

/// A reading of the counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackgroundWork {
    /// Scans ended, by ECR's status: `COMPLETE`, and everything else as `FAILED`.
    pub scans_complete: u64,
    pub scans_failed: u64,
    pub lifecycle_expired: u64,
    pub lifecycle_archived: u64,
    pub gc_passes: u64,
    pub gc_blobs: u64,
    pub gc_bytes: u64,
    pub gc_orphan_files: u64,
    pub gc_uploads: u64,
    /// Webhook deliveries: events handed over (2xx), and attempts that failed.
    pub deliveries_ok: u64,
    pub deliveries_failed: u64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl BackgroundCounters {
    pub(crate) fn scan_ended(&self, status: &str) {
        add(if status == "COMPLETE" { &self.scans_complete } else { &self.scans_failed }, 1);
    }

    pub(crate) fn lifecycle_ran(&self, expired: u64, archived: u64) {
        add(&self.lifecycle_expired, expired);
        add(&self.lifecycle_archived, archived);
    }

    pub(crate) fn collected(&self, report: &crate::GcReport) {
        add(&self.gc_passes, 1);
        add(&self.gc_blobs, report.blobs);
        add(&self.gc_bytes, report.bytes);
        add(&self.gc_orphan_files, report.orphan_files);
        add(&self.gc_uploads, report.uploads);
    }

    pub(crate) fn delivered(&self, ok: bool) {
        add(if ok { &self.deliveries_ok } else { &self.deliveries_failed }, 1);
    }

    pub(crate) fn read(&self) -> BackgroundWork {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        BackgroundWork {
            scans_complete: get(&self.scans_complete),
            scans_failed: get(&self.scans_failed),
            lifecycle_expired: get(&self.lifecycle_expired),
            lifecycle_archived: get(&self.lifecycle_archived),
            gc_passes: get(&self.gc_passes),
            gc_blobs: get(&self.gc_blobs),
            gc_bytes: get(&self.gc_bytes),
            gc_orphan_files: get(&self.gc_orphan_files),
            gc_uploads: get(&self.gc_uploads),
            deliveries_ok: get(&self.deliveries_ok),
            deliveries_failed: get(&self.deliveries_failed),
        }
    }
}

//! Online garbage collection: the space of what no image uses any more comes back while pushes
//! and pulls go on.
//!
//! Content is garbage once nothing has taken it for the grace period: a repository's hold on a
//! layer none of its images references (an upload whose manifest never came, a deleted image's
//! layers) is released, then blobs no repository holds are removed with their bytes. The
//! metadata step is one transaction on the store's single writer, so a manifest push either
//! committed first (its references keep the layers) or checks its layers after (and finds a
//! released one missing, refusing the push: nothing acknowledged is ever lost). Uploads, mounts
//! and pushes refresh a hold when they take content, which is what the grace is measured from.
//! Files no metadata names (a crash between a write and its commit) and abandoned uploads are
//! removed too.

use std::time::{Duration, UNIX_EPOCH};

use berth_blob::BlobLocation;

use crate::{Registry, RegistryError};

/// How long an upload may sit untouched before it counts as abandoned.
pub const UPLOAD_EXPIRY: Duration = Duration::from_secs(24 * 60 * 60);

/// Stored files no metadata names are spared at least this long after they were written,
/// whatever the pass's grace: such a file may be a blob put in place whose metadata commit is
/// still on its way (the write, the rename and then the commit), and removing it would leave that
/// commit acknowledging bytes that are gone. A crash's leftovers wait this long; nothing else does.
pub(crate) const ORPHAN_FILE_FLOOR: Duration = Duration::from_secs(10 * 60);

/// Blobs removed per metadata transaction, so that a large collection never holds the writer long.
const BATCH: u32 = 1_000;

/// What a garbage collection pass reclaimed (or, in a dry run, would).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Holds of repositories on content none of their images uses, released.
    pub released_holds: u64,
    /// Blobs removed, and their size.
    pub blobs: u64,
    pub bytes: u64,
    /// Stored files no metadata named, and their size on disk.
    pub orphan_files: u64,
    pub orphan_bytes: u64,
    /// Abandoned uploads removed.
    pub uploads: u64,
    /// Wraps of data keys under keys no repository holding the blob is under any more.
    pub dropped_wraps: u64,
    pub dry_run: bool,
}

impl GcReport {
    pub fn reclaimed_objects(&self) -> u64 {
        self.blobs + self.orphan_files + self.uploads
    }
}

impl Registry {
    /// One pass: reclaims what nothing has used for `grace` (or, with `dry_run`, reports it).
    pub async fn collect_garbage(&self, grace: Duration, dry_run: bool) -> Result<GcReport, RegistryError> {
        let now = self.now();
        let cutoff = now.checked_sub(grace).unwrap_or(UNIX_EPOCH);
        let before =
            cutoff.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let mut report = GcReport { dry_run, ..GcReport::default() };
        loop {
            // A dry run changes nothing, so it must see every blob at once.
            let limit = if dry_run { u32::MAX } else { BATCH };
            let garbage = self.meta.collect_garbage(before, limit, dry_run).await?;
            report.released_holds += garbage.released_holds;
            report.blobs += garbage.blobs.len() as u64;
            for blob in &garbage.blobs {
                report.bytes += blob.size;
                if !dry_run {
                    self.blobs.delete(&BlobLocation(blob.location.clone())).await?;
                }
            }
            if dry_run || garbage.blobs.len() < BATCH as usize {
                break;
            }
        }

        loop {
            let dropped = self.meta.drop_unneeded_wraps(before, self.kms.key_id(), BATCH, dry_run).await?;
            report.dropped_wraps += dropped;
            if dry_run || dropped < u64::from(BATCH) {
                break;
            }
        }

        let orphan_cutoff = cutoff.min(now.checked_sub(ORPHAN_FILE_FLOOR).unwrap_or(UNIX_EPOCH));
        let old_files: Vec<_> =
            self.blobs.list_blobs().await?.into_iter().filter(|f| f.written_at < orphan_cutoff).collect();
        for chunk in old_files.chunks(BATCH as usize) {
            let locations: Vec<String> = chunk.iter().map(|f| f.location.0.clone()).collect();
            let known = self.meta.known_locations(&locations).await?;
            for file in chunk.iter().filter(|f| !known.contains(&f.location.0)) {
                report.orphan_files += 1;
                report.orphan_bytes += file.stored_bytes;
                if !dry_run {
                    self.blobs.delete(&file.location).await?;
                }
            }
        }

        report.uploads = if dry_run {
            self.stale_upload_count(UPLOAD_EXPIRY).await? as u64
        } else {
            self.expire_uploads(UPLOAD_EXPIRY).await? as u64
        };
        Ok(report)
    }
}

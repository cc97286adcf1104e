//! Background work, through the metadata store's one queue of jobs: what each kind of job does.
//!
//! A worker claims a due job for a lease, performs it, and either removes it or schedules it
//! again; a job whose worker died is claimed again once its lease runs out. Periodic work (the
//! lifecycle sweep, garbage collection) is a job that schedules itself again, so a restart
//! neither loses a run nor adds one.

use std::time::Duration;

use berth_meta::{Job, Millis};

use crate::{Registry, RegistryError};

/// Finds the repositories that have a lifecycle policy and schedules a run of each.
pub const LIFECYCLE_SWEEP: &str = "lifecycle-sweep";
/// Runs one repository's lifecycle policy; the subject is the repository id.
pub const LIFECYCLE_RUN: &str = "lifecycle-run";
/// Evaluates a lifecycle policy preview; the subject is the repository id.
pub const LIFECYCLE_PREVIEW: &str = berth_meta::PREVIEW_JOB;
/// One pass of the garbage collector.
pub const GARBAGE_COLLECTION: &str = "gc";
/// Scans one image; the subject is `<repository id>/<digest>`.
pub const IMAGE_SCAN: &str = berth_meta::SCAN_JOB;
/// Matches every kept inventory against the vulnerability database after an import.
pub const VULNERABILITY_REMATCH: &str = berth_meta::REMATCH_JOB;
/// Wraps the data keys under a rotated key again with its newest version; the subject is the key.
pub const KEY_REWRAP: &str = berth_meta::REWRAP_JOB;
/// Schedules a delivery for every webhook after new image events.
pub const EVENT_FANOUT: &str = berth_meta::EVENTS_JOB;
/// Hands one webhook its next image events: the kind is this prefix and the webhook's name, so
/// that each webhook's worker claims only its own. Performed by the server, which speaks HTTP, on
/// a worker per webhook, so that a slow webhook delays no other webhook and no other job.
pub const EVENT_DELIVERY: &str = "event-delivery:";

/// Updates the vulnerability database from its feeds, then schedules itself again. Performed by
/// the server, which speaks HTTP, on a worker of its own, so that a slow download holds no
/// other job.
pub const VULNERABILITY_FEEDS: &str = "vulnerability-feeds";

/// Tries of a scan before it is recorded as FAILED.
const SCAN_ATTEMPTS: u32 = 3;

const KINDS: [&str; 8] = [
    LIFECYCLE_SWEEP,
    LIFECYCLE_RUN,
    LIFECYCLE_PREVIEW,
    GARBAGE_COLLECTION,
    IMAGE_SCAN,
    VULNERABILITY_REMATCH,
    KEY_REWRAP,
    EVENT_FANOUT,
];

/// How often the periodic jobs run, and how long the collector spares what was just unused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobSchedule {
    pub lifecycle_interval: Duration,
    pub gc_interval: Duration,
    pub gc_grace: Duration,
}

impl Default for JobSchedule {
    fn default() -> Self {
        let hour = Duration::from_secs(3600);
        Self { lifecycle_interval: hour, gc_interval: hour, gc_grace: hour }
    }
}

/// What became of a performed job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobDone {
    /// Finished for good.
    Finished,
    /// Due again at this time.
    Again(Millis),
}

fn millis(d: Duration) -> Millis {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Registry {
    /// Schedules the periodic jobs to run `first_in` from now (or after their interval, if that
    /// is shorter), unless they are due sooner.
    pub async fn schedule_periodic_jobs(
        &self,
        first_in: Duration,
        schedule: &JobSchedule,
    ) -> Result<(), RegistryError> {
        let now = self.now_millis();
        for (kind, interval) in
            [(LIFECYCLE_SWEEP, schedule.lifecycle_interval), (GARBAGE_COLLECTION, schedule.gc_interval)]
        {
            self.meta.schedule_job(kind, "", now.saturating_add(millis(first_in.min(interval)))).await?;
        }
        Ok(())
    }

    /// Claims the due job that has waited longest, for `worker` for `lease`.
    pub async fn claim_job(&self, worker: &str, lease: Duration) -> Result<Option<Job>, RegistryError> {
        let now = self.now_millis();
        Ok(self.meta.claim_job(&KINDS, worker, now, now.saturating_add(millis(lease))).await?)
    }

    /// Claims `webhook`'s delivery, when it is due.
    pub async fn claim_delivery(
        &self,
        webhook: &str,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<Job>, RegistryError> {
        let now = self.now_millis();
        let kind = format!("{EVENT_DELIVERY}{webhook}");
        Ok(self.meta.claim_job(&[kind.as_str()], worker, now, now.saturating_add(millis(lease))).await?)
    }

    /// Claims the update from the vulnerability feeds, when it is due.
    pub async fn claim_feed_update(
        &self,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<Job>, RegistryError> {
        let now = self.now_millis();
        let until = now.saturating_add(millis(lease));
        Ok(self.meta.claim_job(&[VULNERABILITY_FEEDS], worker, now, until).await?)
    }

    /// Makes the update from the vulnerability feeds due within `first_in` (unless it is due
    /// sooner already).
    pub async fn schedule_feed_update(&self, first_in: Duration) -> Result<(), RegistryError> {
        let at = self.now_millis().saturating_add(millis(first_in));
        Ok(self.meta.schedule_job(VULNERABILITY_FEEDS, "", at).await?)
    }

    /// Extends `worker`'s claim on a job; false if it lost it.
    pub async fn renew_job(&self, job: &Job, worker: &str, lease: Duration) -> Result<bool, RegistryError> {
        let until = self.now_millis().saturating_add(millis(lease));
        Ok(self.meta.renew_job(job.id, worker, until).await?)
    }

    /// Ends a performed job: removed, or due again.
    pub async fn finish_job(&self, job: &Job, worker: &str, done: JobDone) -> Result<(), RegistryError> {
        let next = match done {
            JobDone::Finished => None,
            JobDone::Again(at) => Some(at),
        };
        Ok(self.meta.finish_job(job.id, worker, next).await?)
    }

    /// Releases a job that failed, to be tried again after `retry_in`.
    pub async fn fail_job(
        &self,
        job: &Job,
        worker: &str,
        error: &RegistryError,
        retry_in: Duration,
    ) -> Result<(), RegistryError> {
        let at = self.now_millis().saturating_add(millis(retry_in));
        Ok(self.meta.fail_job(job.id, worker, &error.to_string(), at).await?)
    }

    /// Resolves when a job may have become due sooner than the workers' next look (a preview or
    /// a scan was asked for).
    pub async fn job_scheduled(&self) {
        self.jobs_waiting.notified().await;
    }

    /// Does what `job` stands for.
    pub async fn perform_job(&self, job: &Job, schedule: &JobSchedule) -> Result<JobDone, RegistryError> {
        let now = self.now_millis();
        let repository_id = || {
            job.subject
                .parse::<i64>()
                .map_err(|_| RegistryError::Internal(format!("job {} names no repository", job.id)))
        };
        match job.kind.as_str() {
            LIFECYCLE_SWEEP => {
                for repository in self.meta.repositories_with_lifecycle_policy().await? {
                    self.meta.schedule_job(LIFECYCLE_RUN, &repository.id.to_string(), now).await?;
                }
                Ok(JobDone::Again(now.saturating_add(millis(schedule.lifecycle_interval))))
            }
            LIFECYCLE_RUN => {
                // The policy may have been deleted, or the repository with it, since the sweep.
                if let Some(repository) = self.meta.repository_by_id(repository_id()?).await?
                    && self.meta.lifecycle_policy(repository.id).await?.is_some()
                {
                    let run = self.run_lifecycle_on(&repository, now, false).await?;
                    self.background.lifecycle_ran(run.expired as u64, run.archived as u64);
                    tracing::info!(
                        repository = %run.repository, expired = run.expired, archived = run.archived,
                        "lifecycle policy ran"
                    );
                }
                Ok(JobDone::Finished)
            }
            LIFECYCLE_PREVIEW => {
                self.complete_preview(repository_id()?).await?;
                Ok(JobDone::Finished)
            }
            GARBAGE_COLLECTION => {
                self.prune_events().await?;
                let report = self.collect_garbage(schedule.gc_grace, false).await?;
                self.background.collected(&report);
                if report.reclaimed_objects() > 0 {
                    tracing::info!(
                        blobs = report.blobs,
                        uploads = report.uploads,
                        bytes = report.bytes,
                        "garbage collected"
                    );
                }
                Ok(JobDone::Again(now.saturating_add(millis(schedule.gc_interval))))
            }
            IMAGE_SCAN => {
                let (repository, digest) = job
                    .subject
                    .split_once('/')
                    .and_then(|(r, d)| Some((r.parse::<i64>().ok()?, d.parse::<berth_core::Digest>().ok()?)))
                    .ok_or_else(|| RegistryError::Internal(format!("job {} names no image", job.id)))?;
                match self.run_scan(repository, &digest).await {
                    Ok(()) => {}
                    // Retried a few times (the store may be briefly unavailable), then ended as
                    // FAILED rather than left in progress.
                    Err(e) if job.attempts >= SCAN_ATTEMPTS => {
                        tracing::warn!(job = job.id, error = %e, "an image scan failed for good");
                        self.fail_scan(repository, &digest).await?;
                    }
                    Err(e) => return Err(e),
                }
                Ok(JobDone::Finished)
            }
            VULNERABILITY_REMATCH => {
                self.rematch_all().await?;
                Ok(JobDone::Finished)
            }
            EVENT_FANOUT => self.fan_out_events().await,
            // In steps: due again at once until every wrap is renewed.
            KEY_REWRAP => {
                if self.rewrap_step(&job.subject).await? {
                    Ok(JobDone::Finished)
                } else {
                    Ok(JobDone::Again(now))
                }
            }
            other => Err(RegistryError::Internal(format!("job {} is of an unknown kind {other:?}", job.id))),
        }
    }
}

//! Background work that runs beside the HTTP surfaces: a worker that takes jobs from the
//! metadata store's queue (lifecycle runs and previews, garbage collection, image scans and the
//! re-match after a vulnerability database import) one at a time.

use std::sync::Arc;
use std::time::Duration;

use berth_registry::Registry;
use berth_registry::jobs::JobSchedule;

/// How often the worker looks for due jobs when nothing wakes it.
const POLL_INTERVAL: Duration = Duration::from_secs(5);
/// How long a claim lasts; renewed at a third of it while the job runs. Should the process die,
/// another worker takes the job over once its lease runs out.
const LEASE: Duration = Duration::from_secs(60);
/// How long a failed job waits before it is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(60);
/// When the periodic jobs first run after a start (unless they were due sooner, or their interval
/// is shorter).
const FIRST_RUN: Duration = Duration::from_secs(60);

/// Runs jobs until the task is dropped. Every node of a cluster may run one: a job is claimed
/// by one worker at a time.
pub fn spawn_job_worker(registry: Arc<Registry>, schedule: JobSchedule) -> tokio::task::JoinHandle<()> {
    let worker = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4());
    tokio::spawn(async move {
        if let Err(e) = registry.schedule_periodic_jobs(FIRST_RUN, &schedule).await {
            tracing::error!(error = %e, "cannot schedule the periodic jobs; they will not run until the next start");
        }
        loop {
            match registry.claim_job(&worker, LEASE).await {
                Ok(Some(job)) => run_one(&registry, &worker, &job, &schedule).await,
                Ok(None) => {
                    tokio::select! {
                        () = registry.job_scheduled() => {}
                        () = tokio::time::sleep(POLL_INTERVAL) => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot look for jobs");
                    tokio::time::sleep(POLL_INTERVAL).await;
                }
            }
        }
    })
}

/// Performs one claimed job, renewing its lease while it runs.
async fn run_one(registry: &Registry, worker: &str, job: &berth_registry::Job, schedule: &JobSchedule) {
    let work = registry.perform_job(job, schedule);
    tokio::pin!(work);
    let mut renew = tokio::time::interval(LEASE / 3);
    renew.tick().await;
    let outcome = loop {
        tokio::select! {
            outcome = &mut work => break outcome,
            _ = renew.tick() => {
                if !matches!(registry.renew_job(job, worker, LEASE).await, Ok(true)) {
                    tracing::warn!(job = job.id, kind = %job.kind, "lost the claim on a job; another worker may run it");
                }
            }
        }
    };
    let ended = match outcome {
        Ok(done) => registry.finish_job(job, worker, done).await,
        Err(e) => {
            tracing::warn!(job = job.id, kind = %job.kind, subject = %job.subject, error = %e, "job failed; it will be retried");
            registry.fail_job(job, worker, &e, RETRY_AFTER).await
        }
    };
    if let Err(e) = ended {
        tracing::warn!(job = job.id, error = %e, "cannot record the end of a job; it will run again");
    }
}

//! Updates of the vulnerability database from its feeds: addresses of OSV zips (osv.dev
//! publishes one per ecosystem, `<ecosystem>/all.zip`). Each is fetched with the validators of
//! its last download, so an unchanged feed costs one `304 Not Modified`; a changed one is
//! downloaded whole to a scratch file, and only a complete, readable download replaces the
//! feed's advisories, in one transaction: until then the database serves the previous ones.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_registry::{FeedDownload, Registry};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

/// Where and how often the database is updated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedSettings {
    /// `https://` (or `http://`) addresses of OSV zips.
    pub urls: Vec<String>,
    /// How often the server checks them (zero: only `berth vulndb update` does).
    pub interval: Duration,
    /// The largest download taken.
    pub max_bytes: u64,
    /// A private folder for downloads in progress.
    pub scratch_dir: PathBuf,
}

/// How one feed's check went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedOutcome {
    /// The feed answered 304: nothing changed since the last download.
    Unchanged,
    /// A new download replaced the feed's advisories.
    Replaced(FeedDownload),
}

/// Why an address cannot be a feed, if it cannot.
pub fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!("{url:?} is not an http:// or https:// address of an OSV zip"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!("{url:?} carries credentials; feeds are public downloads"));
    }
    Ok(())
}

/// The HTTP client of feed downloads: a connection must open within 30 s and the body keep
/// coming (no pause over 60 s), however long the whole download takes.
pub fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::limited(5))
        .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot make the HTTP client for vulnerability feeds: {e}"))
}

/// Checks the feed at `url` and, if it changed, replaces its advisories with the new download.
/// The outcome (or the failure) is recorded with the feed, for `berth vulndb status`.
pub async fn update_feed(
    registry: &Registry,
    client: &reqwest::Client,
    url: &str,
    settings: &FeedSettings,
) -> Result<FeedOutcome, String> {
    let outcome = fetch_and_replace(registry, client, url, settings).await;
    let noted = match &outcome {
        Ok(FeedOutcome::Replaced(_)) => Ok(()),
        Ok(FeedOutcome::Unchanged) => registry.note_vulnerability_feed_check(url, None).await,
        Err(e) => registry.note_vulnerability_feed_check(url, Some(e)).await,
    };
    if let Err(e) = noted {
        tracing::warn!(feed = url, error = %e, "cannot record how a vulnerability feed's check went");
    }
    outcome
}

async fn fetch_and_replace(
    registry: &Registry,
    client: &reqwest::Client,
    url: &str,
    settings: &FeedSettings,
) -> Result<FeedOutcome, String> {
    check_url(url)?;
    let known = registry.vulnerability_feed(url).await.map_err(|e| e.to_string())?;
    let mut request = client.get(url);
    if let Some(feed) = known.as_ref().filter(|f| f.changed_at.is_some()) {
        if let Some(etag) = &feed.etag {
            request = request.header(http::header::IF_NONE_MATCH, etag);
        }
        if let Some(last_modified) = &feed.last_modified {
            request = request.header(http::header::IF_MODIFIED_SINCE, last_modified);
        }
    }
    let response = request.send().await.map_err(|e| format!("{url}: {}", describe(&e)))?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_MODIFIED {
        return Ok(FeedOutcome::Unchanged);
    }
    if !status.is_success() {
        return Err(format!("{url} answered {status}"));
    }
    let header = |name: http::HeaderName| {
        response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    };
    let etag = header(http::header::ETAG);
    let last_modified = header(http::header::LAST_MODIFIED);
    if let Some(length) = response.content_length().filter(|l| *l > settings.max_bytes) {
        return Err(format!(
            "{url} offers {length} bytes, more than the {} a feed's download may hold (vulndb.max_download_bytes)",
            settings.max_bytes
        ));
    }
    let scratch = Scratch::create(&settings.scratch_dir).await?;
    download(response, &scratch, url, settings.max_bytes).await?;
    let replaced = registry
        .replace_vulnerability_feed(url, scratch.path.clone(), (etag.as_deref(), last_modified.as_deref()))
        .await
        .map_err(|e| e.to_string())?;
    Ok(FeedOutcome::Replaced(replaced))
}

/// Writes the body to the scratch file and syncs it, refusing to pass `max_bytes`.
async fn download(
    response: reqwest::Response,
    scratch: &Scratch,
    url: &str,
    max_bytes: u64,
) -> Result<(), String> {
    let write_error = |e: std::io::Error| format!("cannot write {}: {e}", scratch.path.display());
    let mut file = tokio::fs::File::create(&scratch.path).await.map_err(write_error)?;
    let mut body = response.bytes_stream();
    let mut written: u64 = 0;
    while let Some(frame) = body.next().await {
        let frame = frame
            .map_err(|e| format!("{url}: the download broke off after {written} bytes: {}", describe(&e)))?;
        written = written.saturating_add(frame.len() as u64);
        if written > max_bytes {
            return Err(format!(
                "{url}: the download passed {max_bytes} bytes, the most a feed may hold (vulndb.max_download_bytes)"
            ));
        }
        file.write_all(&frame).await.map_err(write_error)?;
    }
    file.sync_all().await.map_err(write_error)
}

/// The error and its causes, which reqwest keeps in its source chain.
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A download in progress, removed when it is dropped (read or abandoned).
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    async fn create(dir: &std::path::Path) -> Result<Self, String> {
        tokio::fs::create_dir_all(dir).await.map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(Self { path: dir.join(format!("download-{}.zip", uuid::Uuid::new_v4())) })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Missing (never written) is fine; anything else is left for the operator to see.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// How long a claim on the update lasts; renewed while the downloads run.
const LEASE: Duration = Duration::from_secs(120);
const POLL_INTERVAL: Duration = Duration::from_secs(30);
/// When the first update runs after a start, unless one is due sooner.
const FIRST_RUN: Duration = Duration::from_secs(60);

/// Checks every feed every `settings.interval`, through the job queue so that one node of a
/// cluster does it at a time and a restart neither skips nor repeats an update.
pub fn spawn_feed_worker(registry: Arc<Registry>, settings: FeedSettings) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if settings.urls.is_empty() || settings.interval.is_zero() {
            return;
        }
        let client = match client() {
            Ok(client) => client,
            Err(e) => {
                tracing::error!(error = %e, "vulnerability feeds will not be checked");
                return;
            }
        };
        if let Err(e) = registry.schedule_feed_update(FIRST_RUN.min(settings.interval)).await {
            tracing::error!(error = %e, "cannot schedule the vulnerability feeds' update; it will not run until the next start");
            return;
        }
        let worker = format!("{}-feeds-{}", std::process::id(), uuid::Uuid::new_v4());
        loop {
            match registry.claim_feed_update(&worker, LEASE).await {
                Ok(Some(job)) => {
                    let update = update_all(&registry, &client, &settings);
                    tokio::pin!(update);
                    let mut renew = tokio::time::interval(LEASE / 3);
                    renew.tick().await;
                    loop {
                        tokio::select! {
                            () = &mut update => break,
                            _ = renew.tick() => {
                                if !matches!(registry.renew_job(&job, &worker, LEASE).await, Ok(true)) {
                                    tracing::warn!("lost the claim on the vulnerability feeds' update");
                                }
                            }
                        }
                    }
                    let next = registry
                        .now_millis()
                        .saturating_add(i64::try_from(settings.interval.as_millis()).unwrap_or(i64::MAX));
                    let done = berth_registry::jobs::JobDone::Again(next);
                    if let Err(e) = registry.finish_job(&job, &worker, done).await {
                        tracing::warn!(error = %e, "cannot schedule the next update of the vulnerability feeds");
                    }
                }
                Ok(None) => tokio::time::sleep(POLL_INTERVAL.min(settings.interval)).await,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot look for the vulnerability feeds' update");
                    tokio::time::sleep(POLL_INTERVAL).await;
                }
            }
        }
    })
}

/// One check of every feed; a feed that fails keeps its advisories and is tried at the next.
async fn update_all(registry: &Registry, client: &reqwest::Client, settings: &FeedSettings) {
    for url in &settings.urls {
        match update_feed(registry, client, url, settings).await {
            Ok(FeedOutcome::Unchanged) => tracing::info!(feed = %url, "vulnerability feed unchanged"),
            Ok(FeedOutcome::Replaced(download)) => tracing::info!(
                feed = %url, records = download.records, skipped = download.skipped.len(),
                "vulnerability feed updated"
            ),
            Err(e) => {
                tracing::warn!(feed = %url, error = %e, "vulnerability feed not updated; its advisories are kept")
            }
        }
    }
}

//! Vulnerability scanning: an image's layers read once, as decrypted streams, into a package
//! inventory that is kept; the inventory matched against the vulnerability database; and every
//! kept inventory matched again when the database changes, without reading a layer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use berth_core::media_types;
use berth_core::{Digest, Manifest, ManifestKind, StorageClass};
use berth_iam::Action;
use berth_meta::{Millis, Repository, StoredScan, VulnerabilityFeed};
use berth_scan::{Advisories, Finding, ImageFiles, Inventory, Limits};
use futures_util::TryStreamExt;

use crate::images::{ImageIdInput, ImageRef};
use crate::{Caller, Registry, RegistryError, RepoPath};

/// What a feed's download held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedDownload {
    /// Advisories now in the database under the feed.
    pub records: usize,
    /// Members that are not advisories, or not valid ones, with why.
    pub skipped: Vec<(String, String)>,
}

/// How often an image may be scanned on request (ECR's quota: once a day per image).
pub const SCAN_QUOTA: Duration = Duration::from_secs(24 * 60 * 60);
const FINDINGS_PAGE: &str = "scan-findings";
/// The config media types of container images; anything else is an artifact, not scanned.
const IMAGE_CONFIGS: [&str; 2] =
    ["application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"];
/// Inventories re-matched per batch.
const REMATCH_BATCH: u32 = 500;
/// The artifact type (and layer media type) of an SBOM attached to its image.
pub const SBOM_ARTIFACT_TYPE: &str = "application/vnd.cyclonedx+json";

/// A finding as stored and shown, in the terms ECR's findings use.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScanFinding {
    pub name: String,
    pub uri: String,
    /// ECR's levels: `CRITICAL`, `HIGH`, `MEDIUM`, `LOW`, `INFORMATIONAL`, `UNDEFINED`.
    pub severity: String,
    pub package_name: String,
    pub package_version: String,
    pub fixed_version: Option<String>,
    /// The CVSS base score and vector the severity came from, when it did.
    #[serde(default)]
    pub cvss_score: Option<String>,
    #[serde(default)]
    pub cvss_vector: Option<String>,
}

/// An image's scan as ECR's DescribeImageScanFindings shows it, one page of findings at a time.
#[derive(Debug, Clone)]
pub struct ScanReport {
    pub image: ImageRef,
    pub status: String,
    pub description: String,
    pub completed_at: Option<Millis>,
    /// When the vulnerability database the findings come from last changed.
    pub database_at: Option<Millis>,
    /// Of all the findings, how many at each severity.
    pub severity_counts: BTreeMap<String, u64>,
    pub findings: Vec<ScanFinding>,
    pub next_token: Option<String>,
}

/// What DescribeImages shows of an image's latest scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanSummary {
    pub status: String,
    pub description: String,
    pub completed_at: Option<Millis>,
    pub database_at: Option<Millis>,
    pub severity_counts: BTreeMap<String, u64>,
}

fn severity_counts(findings: &[ScanFinding]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for finding in findings {
        *counts.entry(finding.severity.clone()).or_insert(0) += 1;
    }
    counts
}

impl Registry {
    /// An image's findings counted by severity as they stand; empty when it has none (or is gone).
    pub(crate) async fn severity_counts_now(
        &self,
        account: &str,
        repository: &str,
        digest: &str,
    ) -> BTreeMap<String, u64> {
        let (Ok(account), Ok(name), Ok(digest)) =
            (account.parse(), repository.parse(), digest.parse::<Digest>())
        else {
            return BTreeMap::new();
        };
        let Ok(Some(repository)) = self.meta.get_repository(&account, &name).await else {
            return BTreeMap::new();
        };
        match self.meta.image_scan(repository.id, &digest).await {
            Ok(Some(scan)) => stored_findings(&scan).map(|f| severity_counts(&f)).unwrap_or_default(),
            _ => BTreeMap::new(),
        }
    }
}

fn stored_findings(scan: &StoredScan) -> Result<Vec<ScanFinding>, RegistryError> {
    match &scan.findings {
        Some(json) => serde_json::from_str(json)
            .map_err(|e| RegistryError::Internal(format!("stored findings are malformed: {e}"))),
        None => Ok(Vec::new()),
    }
}

/// Where an advisory is described: osv.dev knows every id, CVEs included, in every ecosystem.
fn uri_of(finding: &Finding) -> String {
    format!("https://osv.dev/vulnerability/{}", finding.name)
}

fn shown(findings: Vec<Finding>) -> Vec<ScanFinding> {
    findings
        .into_iter()
        .map(|f| ScanFinding {
            uri: uri_of(&f),
            severity: f.rating.level,
            cvss_score: f.rating.score,
            cvss_vector: f.rating.vector,
            name: f.name,
            package_name: f.package,
            package_version: f.version,
            fixed_version: f.fixed_version,
        })
        .collect()
}

/// Findings a change record lists one by one; the counts cover them all.
const CHANGES_LISTED: usize = 100;

/// What a re-match changed in an image's findings, as the detail of its `SCAN` event: the
/// findings that are new (and their severities, so that a subscriber can act on new critical
/// ones), the ones whose severity changed, and how many are gone. `None` when nothing changed.
fn finding_change(before: Option<&str>, after: &[ScanFinding]) -> Option<serde_json::Value> {
    let before: Vec<ScanFinding> = before.and_then(|b| serde_json::from_str(b).ok()).unwrap_or_default();
    let key = |f: &ScanFinding| (f.name.clone(), f.package_name.clone(), f.package_version.clone());
    let was: BTreeMap<_, &str> = before.iter().map(|f| (key(f), f.severity.as_str())).collect();
    let now: BTreeMap<_, &str> = after.iter().map(|f| (key(f), f.severity.as_str())).collect();
    let new: Vec<&ScanFinding> = after.iter().filter(|f| !was.contains_key(&key(f))).collect();
    let reassessed: Vec<(&ScanFinding, &str)> = after
        .iter()
        .filter_map(|f| was.get(&key(f)).filter(|s| **s != f.severity).map(|s| (f, *s)))
        .collect();
    let resolved = was.keys().filter(|k| !now.contains_key(*k)).count();
    if new.is_empty() && reassessed.is_empty() && resolved == 0 {
        return None;
    }
    let listed = |f: &ScanFinding| {
        serde_json::json!({
            "name": f.name,
            "severity": f.severity,
            "package-name": f.package_name,
            "package-version": f.package_version,
            "fixed-version": f.fixed_version,
        })
    };
    let mut new_counts: BTreeMap<&str, u64> = BTreeMap::new();
    for finding in &new {
        *new_counts.entry(finding.severity.as_str()).or_default() += 1;
    }
    Some(serde_json::json!({
        "scan-status": "COMPLETE",
        "trigger": "VULNERABILITY_DATABASE_UPDATE",
        "new-finding-count": new.len(),
        "new-finding-severity-counts": new_counts,
        "new-findings": new.iter().take(CHANGES_LISTED).map(|f| listed(f)).collect::<Vec<_>>(),
        "reassessed-findings": reassessed
            .iter()
            .take(CHANGES_LISTED)
            .map(|(f, previous)| {
                let mut shown = listed(f);
                shown["previous-severity"] = serde_json::json!(previous);
                shown
            })
            .collect::<Vec<_>>(),
        "resolved-finding-count": resolved,
    }))
}

fn as_json<T: serde::Serialize>(value: &T) -> Result<String, RegistryError> {
    serde_json::to_string(value).map_err(|e| RegistryError::Internal(format!("serializing a scan: {e}")))
}

impl Registry {
    /// The vulnerability database, loaded from the metadata store on first use.
    async fn advisories(&self) -> Result<Arc<Advisories>, RegistryError> {
        if let Some(loaded) = self.advisories.read().await.as_ref() {
            return Ok(Arc::clone(loaded));
        }
        self.reload_advisories().await
    }

    /// Loads the vulnerability database afresh (after an import).
    async fn reload_advisories(&self) -> Result<Arc<Advisories>, RegistryError> {
        let records = self.meta.vulnerability_records().await?;
        let advisories = tokio::task::spawn_blocking(move || {
            let mut advisories = Advisories::default();
            for record in records.iter().filter_map(|json| berth_scan::osv::Record::parse(json).ok()) {
                advisories.add(record);
            }
            advisories
        })
        .await
        .map_err(|e| RegistryError::Internal(format!("loading the vulnerability database: {e}")))?;
        let advisories = Arc::new(advisories);
        *self.advisories.write().await = Some(Arc::clone(&advisories));
        Ok(advisories)
    }

    /// Starts a scan of an image the registry holds (on push, or asked for): its job runs it.
    pub(crate) async fn schedule_scan(
        &self,
        repository: &Repository,
        digest: &Digest,
    ) -> Result<bool, RegistryError> {
        let started = self.meta.start_image_scan(repository.id, digest, self.now_millis()).await?;
        if started {
            self.jobs_waiting.notify_one();
        }
        Ok(started)
    }

    /// StartImageScan: scans an image now, at most once a day per image.
    pub async fn start_image_scan(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        id: &ImageIdInput,
    ) -> Result<(ImageRef, String), RegistryError> {
        let repository = self.authorized_repository(caller, Action::StartImageScan, repo).await?;
        let (image, record) = self
            .resolve_image(&repository, id)
            .await
            .map_err(|f| crate::images::image_not_found(repo, &f.id))?;
        if record.storage_class == StorageClass::Archive {
            return Err(RegistryError::ImageArchived(format!(
                "the image {} is archived and cannot be scanned; restore it first",
                record.digest
            )));
        }
        let previous = self.meta.image_scan(repository.id, &record.digest).await?;
        let quota = i64::try_from(SCAN_QUOTA.as_millis()).unwrap_or(i64::MAX);
        if let Some(scan) = &previous {
            if scan.status == "IN_PROGRESS" {
                return Ok((image, scan.status.clone()));
            }
            // Only a completed scan counts against the day's quota: a failed one may be retried.
            if scan.status == "COMPLETE" && scan.completed_at.is_some_and(|at| self.now_millis() - at < quota)
            {
                return Err(RegistryError::LimitExceeded(
                    "The scan quota per image has been exceeded. Wait and try again.".to_owned(),
                ));
            }
        }
        self.schedule_scan(&repository, &record.digest).await?;
        Ok((image, "IN_PROGRESS".to_owned()))
    }

    /// DescribeImageScanFindings: the image's latest scan, its findings a page at a time.
    pub async fn image_scan_report(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        id: &ImageIdInput,
        next_token: Option<&str>,
        max_results: usize,
    ) -> Result<ScanReport, RegistryError> {
        let repository = self.authorized_repository(caller, Action::DescribeImageScanFindings, repo).await?;
        let (image, record) = self
            .resolve_image(&repository, id)
            .await
            .map_err(|f| crate::images::image_not_found(repo, &f.id))?;
        let scan = self.meta.image_scan(repository.id, &record.digest).await?.ok_or_else(|| {
            RegistryError::ScanNotFound(format!(
                "Image scan does not exist for the image with '{{imageDigest:'{}'}}' in the repository with name '{}' \
                 in the registry with id '{}'",
                record.digest, repo.name, repo.account
            ))
        })?;
        let all = stored_findings(&scan)?;
        let severity_counts = severity_counts(&all);
        let after = crate::images::open_page(self, FINDINGS_PAGE, repo, next_token)?;
        // Findings are ordered by (name, package); a page ends after the pair its token names.
        let position = |f: &ScanFinding| format!("{}|{}", f.name, f.package_name);
        let after = after.as_deref().map(|a| a.split_once('|').unwrap_or((a, "")));
        let mut findings: Vec<ScanFinding> = all
            .into_iter()
            .filter(|f| after.is_none_or(|a| (f.name.as_str(), f.package_name.as_str()) > a))
            .take(max_results + 1)
            .collect();
        let next_token = if findings.len() > max_results {
            findings.truncate(max_results);
            findings.last().map(|f| crate::images::seal_page(self, FINDINGS_PAGE, repo, &position(f)))
        } else {
            None
        };
        Ok(ScanReport {
            image,
            status: scan.status,
            description: scan.description,
            completed_at: scan.completed_at,
            database_at: self.database_updated_at().await?,
            severity_counts,
            findings,
            next_token,
        })
    }

    /// When the vulnerability database last changed.
    pub(crate) async fn database_updated_at(&self) -> Result<Option<Millis>, RegistryError> {
        Ok(self.meta.vulnerability_sources().await?.iter().map(|s| s.imported_at).max())
    }

    /// The summary of an image's latest scan, if it was ever scanned.
    pub(crate) async fn scan_summary(
        &self,
        repository_id: i64,
        digest: &Digest,
        database_at: Option<Millis>,
    ) -> Result<Option<ScanSummary>, RegistryError> {
        let Some(scan) = self.meta.image_scan(repository_id, digest).await? else { return Ok(None) };
        let severity_counts = severity_counts(&stored_findings(&scan)?);
        Ok(Some(ScanSummary {
            status: scan.status,
            description: scan.description,
            completed_at: scan.completed_at,
            database_at,
            severity_counts,
        }))
    }

    /// The scan job: reads the image's layers into an inventory, matches it, records both.
    pub(crate) async fn run_scan(&self, repository_id: i64, digest: &Digest) -> Result<(), RegistryError> {
        let Some(record) = self.meta.get_manifest(repository_id, digest).await? else { return Ok(()) };
        let Some(scan) = self.meta.image_scan(repository_id, digest).await? else { return Ok(()) };
        let Some(repository) = self.meta.repository_by_id(repository_id).await? else { return Ok(()) };
        let bytes = self.manifest_bytes(&repository, &record).await?;
        let outcome = match Manifest::parse(&bytes, Some(&record.media_type)) {
            Ok(manifest) if manifest.kind == ManifestKind::Index => {
                // Its platform images are scanned, each on its own.
                let mut started = 0;
                for child in &manifest.manifests {
                    // A child scanned already (on its own push) keeps its scan.
                    if self.meta.image_scan(repository_id, &child.digest).await?.is_none()
                        && self.meta.start_image_scan(repository_id, &child.digest, self.now_millis()).await?
                    {
                        started += 1;
                    }
                }
                if started > 0 {
                    self.jobs_waiting.notify_one();
                }
                Err((
                    "UNSUPPORTED_IMAGE",
                    format!(
                        "an image index: each of its {} images is scanned on its own",
                        manifest.manifests.len()
                    ),
                ))
            }
            Ok(manifest) if record.artifact_type.as_deref().is_some_and(|t| !IMAGE_CONFIGS.contains(&t)) => {
                let kind = manifest.artifact_type.unwrap_or_default();
                Err(("UNSUPPORTED_IMAGE", format!("an artifact ({kind}), not a container image")))
            }
            Ok(manifest) => self.read_inventory(&repository, &manifest).await,
            Err(e) => Err(("FAILED", e.to_string())),
        };
        let now = self.now_millis();
        let done = match outcome {
            Ok(inventory) => {
                let findings = shown(self.advisories().await?.findings(&inventory));
                StoredScan {
                    status: "COMPLETE".to_owned(),
                    description: "The scan was completed successfully.".to_owned(),
                    started_at: scan.started_at,
                    completed_at: Some(now),
                    inventory: Some(as_json(&inventory)?),
                    findings: Some(as_json(&findings)?),
                    matched_at: Some(now),
                }
            }
            Err((status, why)) => StoredScan {
                status: status.to_owned(),
                description: why,
                started_at: scan.started_at,
                completed_at: Some(now),
                inventory: None,
                findings: None,
                matched_at: None,
            },
        };
        tracing::info!(repository_id, digest = %digest, status = %done.status, "image scanned");
        self.meta.record_image_scan(repository_id, digest, &done).await?;
        self.background.scan_ended(&done.status);
        Ok(())
    }

    /// Ends a scan that could not be done as FAILED (its job gave up after retries).
    pub(crate) async fn fail_scan(&self, repository_id: i64, digest: &Digest) -> Result<(), RegistryError> {
        let Some(scan) = self.meta.image_scan(repository_id, digest).await? else { return Ok(()) };
        let failed = StoredScan {
            status: "FAILED".to_owned(),
            description: "the scan could not be completed; start it again".to_owned(),
            completed_at: Some(self.now_millis()),
            inventory: None,
            findings: None,
            matched_at: None,
            ..scan
        };
        self.meta.record_image_scan(repository_id, digest, &failed).await?;
        self.background.scan_ended("FAILED");
        Ok(())
    }

    /// Streams the layers, in order, through the catalogers on a blocking thread.
    async fn read_inventory(
        &self,
        repository: &Repository,
        manifest: &Manifest,
    ) -> Result<Inventory, (&'static str, String)> {
        let mut layers = Vec::new();
        for layer in &manifest.layers {
            // What went wrong is for the operator's log; the scan says only which layer.
            let unreadable = |e: &dyn std::fmt::Display| {
                tracing::warn!(layer = %layer.digest, error = %e, "a scan could not read a layer");
                ("FAILED", format!("the layer {} could not be read from storage", layer.digest))
            };
            let blob = match self.meta.get_blob(&layer.digest).await {
                Ok(Some(blob)) => blob,
                Ok(None) => return Err(("FAILED", format!("the layer {} is not stored", layer.digest))),
                Err(e) => return Err(unreadable(&e)),
            };
            let stream = self.open_blob(repository, &blob, None).await.map_err(|e| unreadable(&e))?;
            let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(
                stream.map_err(|e| std::io::Error::new(e.kind(), e.to_string())),
            ));
            layers.push((layer.digest.to_string(), reader));
        }
        self.layers_read.fetch_add(layers.len() as u64, std::sync::atomic::Ordering::Relaxed);
        tokio::task::spawn_blocking(move || {
            let mut files = ImageFiles::new(Limits::default()).inspecting(berth_scan::inspected);
            for (digest, reader) in layers {
                files
                    .add_layer(&digest, reader, &berth_scan::wanted)
                    .map_err(|e| ("FAILED", e.to_string()))?;
            }
            Ok(berth_scan::catalog(&files))
        })
        .await
        .map_err(|e| ("FAILED", format!("the scan stopped: {e}")))?
    }

    /// The re-match job: reloads the database and matches every kept inventory against it.
    pub(crate) async fn rematch_all(&self) -> Result<u64, RegistryError> {
        let advisories = self.reload_advisories().await?;
        let mut after: Option<(i64, Digest)> = None;
        let mut matched = 0;
        loop {
            let batch =
                self.meta.stored_inventories(after.as_ref().map(|(r, d)| (*r, d)), REMATCH_BATCH).await?;
            let Some(last) = batch.last() else { break };
            after = Some((last.repository_id, last.digest.clone()));
            for stored in &batch {
                let Ok(inventory) = serde_json::from_str::<Inventory>(&stored.inventory) else { continue };
                let findings = shown(advisories.findings(&inventory));
                let change = finding_change(stored.findings.as_deref(), &findings).map(|c| c.to_string());
                self.meta
                    .record_findings(
                        stored.repository_id,
                        &stored.digest,
                        &as_json(&findings)?,
                        self.now_millis(),
                        change.as_deref(),
                    )
                    .await?;
                matched += 1;
            }
        }
        tracing::info!(
            inventories = matched,
            records = advisories.len(),
            "vulnerability database re-matched"
        );
        Ok(matched)
    }

    /// The software bill of materials of a scanned image, as CycloneDX JSON (an operator
    /// command: no caller).
    pub async fn image_sbom(
        &self,
        repo: &RepoPath,
        digest: &Digest,
    ) -> Result<serde_json::Value, RegistryError> {
        let repository = self.existing_repository(repo).await?;
        let scan = self.meta.image_scan(repository.id, digest).await?;
        let inventory = scan.and_then(|s| s.inventory).ok_or_else(|| {
            RegistryError::ScanNotFound(format!(
                "{repo}@{digest} has no completed scan: scan it first (scanOnPush, or aws ecr start-image-scan)"
            ))
        })?;
        let inventory: Inventory = serde_json::from_str(&inventory).map_err(|e| {
            RegistryError::Internal(format!("stored inventory of {repo}@{digest} is malformed: {e}"))
        })?;
        Ok(berth_scan::sbom::cyclonedx(&inventory, &digest.to_string(), &repo.to_string()))
    }

    /// Attaches the SBOM of a scanned image to it as an OCI referrer in its repository (an
    /// artifact manifest of type `application/vnd.cyclonedx+json` whose subject is the image),
    /// so that the referrers API and ListImageReferrers list it and any client pulls it. The
    /// document and the manifest depend only on the inventory (no time in either), so attaching
    /// again, even after a rescan, changes nothing. Returns the referrer's digest.
    pub async fn attach_sbom(&self, repo: &RepoPath, digest: &Digest) -> Result<Digest, RegistryError> {
        let document = self.image_sbom(repo, digest).await?;
        let repository = self.existing_repository(repo).await?;
        let image = self.meta.get_manifest(repository.id, digest).await?.ok_or_else(|| {
            RegistryError::ManifestUnknown(format!("{repo}@{digest} is not an image of the repository"))
        })?;
        let document = serde_json::to_vec_pretty(&document)
            .map_err(|e| RegistryError::Internal(format!("serializing an SBOM: {e}")))?;
        let sbom = self.store_bytes(&repository, document).await?;
        let empty = self.store_bytes(&repository, b"{}".to_vec()).await?;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_types::OCI_MANIFEST,
            "artifactType": SBOM_ARTIFACT_TYPE,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.0, "size": empty.1},
            "layers": [{"mediaType": SBOM_ARTIFACT_TYPE, "digest": sbom.0, "size": sbom.1}],
            "subject": {"mediaType": image.media_type, "digest": digest, "size": image.size},
        });
        let bytes = serde_json::to_vec(&manifest)
            .map_err(|e| RegistryError::Internal(format!("serializing a manifest: {e}")))?;
        let referrer = berth_blob::Hasher::digest_of(digest.algorithm(), &bytes);
        let push = crate::manifests::ManifestPush::into_existing(repo, repository);
        let reference = berth_core::Reference::Digest(referrer.clone());
        self.put_manifest(push, &reference, Some(media_types::OCI_MANIFEST), bytes.into()).await?;
        Ok(referrer)
    }

    /// Stores `bytes` as a blob of `repository` through an upload, as a push would; returns
    /// its digest and size.
    async fn store_bytes(
        &self,
        repository: &Repository,
        bytes: Vec<u8>,
    ) -> Result<(Digest, u64), RegistryError> {
        let digest = berth_blob::Hasher::digest_of(berth_core::DigestAlgorithm::Sha256, &bytes);
        let size = bytes.len() as u64;
        let upload = self.new_upload(repository).await?;
        let body: berth_blob::ByteStream =
            Box::pin(futures_util::stream::once(async move { Ok(bytes::Bytes::from(bytes)) }));
        self.finish_upload(repository, &upload.id, &digest, None, Some(body), |_| Ok(())).await?;
        Ok((digest, size))
    }

    /// Layers the scanner has read since start; a re-match reads none.
    pub fn layers_read_by_scans(&self) -> u64 {
        self.layers_read.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Imports OSV records (id, JSON) under `source`; the server's workers re-match every image.
    pub async fn import_vulnerability_records(
        &self,
        source: &str,
        records: &[(String, Vec<u8>)],
    ) -> Result<(), RegistryError> {
        self.meta.import_vulnerability_records(source, records, self.now_millis()).await?;
        self.jobs_waiting.notify_one();
        Ok(())
    }

    /// What the vulnerability database holds, by import.
    pub async fn vulnerability_sources(&self) -> Result<Vec<berth_meta::VulnerabilitySource>, RegistryError> {
        Ok(self.meta.vulnerability_sources().await?)
    }

    /// The feed at `url` (an address the database is updated from), if it was ever checked.
    pub async fn vulnerability_feed(&self, url: &str) -> Result<Option<VulnerabilityFeed>, RegistryError> {
        Ok(self.meta.vulnerability_feed(url).await?)
    }

    /// Every feed ever checked, with how its last check went.
    pub async fn vulnerability_feeds(&self) -> Result<Vec<VulnerabilityFeed>, RegistryError> {
        Ok(self.meta.vulnerability_feeds().await?)
    }

    /// Replaces the advisories of the feed at `url` with a complete download of it (an OSV zip
    /// in the file at `zip`), at once, and re-matches every scanned image against the result.
    /// Returns the members that were skipped, with why.
    pub async fn replace_vulnerability_feed(
        &self,
        url: &str,
        zip: std::path::PathBuf,
        validators: (Option<&str>, Option<&str>),
    ) -> Result<FeedDownload, RegistryError> {
        let read = tokio::task::spawn_blocking(move || {
            let file =
                std::fs::File::open(&zip).map_err(|e| format!("cannot open {}: {e}", zip.display()))?;
            berth_scan::osv::read_zip(std::io::BufReader::new(file))
        })
        .await
        .map_err(|e| RegistryError::Internal(format!("reading a feed's download: {e}")))?
        .map_err(|e| RegistryError::InvalidParameter(format!("{url} did not answer an OSV zip: {e}")))?;
        // An empty answer (a feed's server in trouble) must not empty the database.
        if read.records.is_empty() {
            return Err(RegistryError::InvalidParameter(format!(
                "{url} answered a zip with no OSV records ({} members skipped); the feed's advisories are kept",
                read.skipped.len()
            )));
        }
        let records: Vec<(String, Vec<u8>)> =
            read.records.into_iter().map(|(record, json)| (record.id, json)).collect();
        self.meta.replace_vulnerability_feed(url, &records, validators, self.now_millis()).await?;
        self.jobs_waiting.notify_one();
        Ok(FeedDownload { records: records.len(), skipped: read.skipped })
    }

    /// Records a check of the feed at `url` that left its advisories as they were: unchanged
    /// upstream, or failed with `error`.
    pub async fn note_vulnerability_feed_check(
        &self,
        url: &str,
        error: Option<&str>,
    ) -> Result<(), RegistryError> {
        Ok(self.meta.note_vulnerability_feed_check(url, self.now_millis(), error).await?)
    }
}

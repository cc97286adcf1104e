//! Registry services: the push, pull, discovery and management operations of the OCI
//! Distribution API, built on the domain crates and free of HTTP types.
//!
//! Every public operation takes the [`Caller`] and asks [`berth_iam::authorize`] before it looks
//! anything up, so a caller without permission learns nothing, not even whether a repository
//! exists. Callers above this crate (the HTTP server, the CLI) translate requests into these
//! calls and [`RegistryError`] into their wire formats.

mod access;
pub mod activity;
mod addresses;
mod admin;
mod background;
mod error;
mod events;
mod gc;
mod images;
pub mod jobs;
mod keys;
mod layers;
mod lifecycle;
pub mod limits;
mod manifest_cache;
mod manifests;
mod policies;
mod pulls;
mod repositories;
mod scanning_rules;
mod scans;
mod templates;
mod uploads;

use std::sync::Arc;

use berth_blob::BlobStore;
use berth_iam::Principal;
use berth_iam::token::TokenSigner;
use berth_kms::{KeyProvider, KeyService};
use berth_meta::MetaStore;

pub use access::{BootstrapCredentials, PendingSignature};
pub use addresses::PublicUrl;
pub use admin::NewAccessKey;
pub use background::BackgroundWork;
pub use berth_blob::ByteStream;
pub use berth_kms::{KeyDescription, KeyState};
pub use berth_lifecycle::{Outcome, Reason, RuleAction, Since, Verdict};
pub use berth_meta::{CreationTemplate, Repository};
pub use berth_meta::{ImageDetail, Job, TagFilter};
pub use berth_meta::{KeyRewrap, StoredBytes, VulnerabilityFeed};
pub use error::{PartRefusal, RegistryError};
pub use events::{EVENT_BATCH, ImageEvent};
pub use gc::{GcReport, UPLOAD_EXPIRY};
pub use images::{
    DescribedImage, FoundImage, ImageFailure, ImageIdInput, ImageListFilter, ImageRef, ImageStatus,
};
pub use layers::{DOWNLOAD_URL_LIFETIME, LayerCheck};
pub use lifecycle::{
    ImageVerdict, LifecyclePolicyView, LifecycleRun, PreviewPage, PreviewQuery, PreviewResult,
};
pub use limits::MAX_RESOURCE_TAGS;
pub use manifests::{ManifestContent, ManifestPush, PutManifestOutcome, Referrer};
pub use repositories::RepositoryPage;
pub use scanning_rules::{RegistryScanning, RepositoryScanning, ScanningRule, filter_matches};
pub use scans::{FeedDownload, SBOM_ARTIFACT_TYPE, SCAN_QUOTA, ScanFinding, ScanReport, ScanSummary};
pub use uploads::{BlobContent, UploadStatus};

/// Settings the services need from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The region named in ARNs.
    pub region: String,
    /// Largest blob accepted, in bytes.
    pub max_blob_bytes: u64,
    /// A wildcard domain for host-style addresses (`<account>.<domain>/<name>`, as ECR's);
    /// `None` for path style (`<host>/<account>/<name>`).
    pub host_domain: Option<String>,
    /// Where clients reach the registry when that is not where a request arrived (a load
    /// balancer's address); `None`: the address each request names in its `Host`.
    pub public_url: Option<PublicUrl>,
    /// The listener serves HTTPS: the addresses clients are told (login endpoints, download
    /// URLs) use `https` unless `public_url` says otherwise.
    pub tls: bool,
    /// Most layers, configs and child manifests one manifest may name.
    pub max_manifest_references: usize,
    /// Most uploads an account may have open at once.
    pub max_open_uploads_per_account: u64,
    /// Repositories whose activity `/metrics` reports one by one; the rest are summed as `other`.
    pub metrics_max_repositories: usize,
    /// Lifecycle policies keep images pulled within this many days (beyond ECR's semantics;
    /// `None`, the default, keeps ECR's).
    pub lifecycle_protect_pulled_days: Option<u32>,
    /// Whether pulls, pushes and bytes are counted per repository for `/metrics`.
    pub per_repository_metrics: bool,
    /// How long image events are kept for webhooks that cannot be reached.
    pub event_retention: std::time::Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            region: "us-east-1".to_owned(),
            // ECR's maximum layer size: 52,000 MiB.
            max_blob_bytes: 52_000 * 1024 * 1024,
            host_domain: None,
            public_url: None,
            tls: false,
            metrics_max_repositories: 1000,
            max_manifest_references: limits::DEFAULT_MAX_MANIFEST_REFERENCES,
            max_open_uploads_per_account: limits::DEFAULT_MAX_OPEN_UPLOADS_PER_ACCOUNT,
            lifecycle_protect_pulled_days: None,
            event_retention: std::time::Duration::from_secs(7 * 24 * 3600),
            per_repository_metrics: true,
        }
    }
}

/// Who is calling, once their credentials have been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub principal: Principal,
    /// The access key the caller's token was issued to, if any.
    pub access_key_id: Option<String>,
    /// What the request says about itself for policy conditions (`aws:SourceIp`,
    /// `aws:SecureTransport`, `aws:UserAgent`, `aws:Referer`), lower-cased keys.
    pub context: berth_iam::ContextKeys,
}

/// Where a request came from and how, for the condition keys a transport sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestOrigin {
    /// The client's address (after any trusted proxy's `X-Forwarded-For`).
    pub source_ip: Option<std::net::IpAddr>,
    /// Whether the request arrived over TLS.
    pub secure_transport: bool,
    pub user_agent: Option<String>,
    pub referer: Option<String>,
}

impl Caller {
    pub fn anonymous() -> Self {
        Self::new(Principal::Anonymous, None)
    }

    pub fn new(principal: Principal, access_key_id: Option<String>) -> Self {
        Self { principal, access_key_id, context: berth_iam::ContextKeys::new() }
    }

    /// Adds what the transport knows of the request to the caller, for policy conditions.
    pub fn with_origin(mut self, origin: &RequestOrigin) -> Self {
        let mut set = |key: &str, value: String| {
            self.context.insert(key.to_owned(), vec![value]);
        };
        if let Some(ip) = origin.source_ip {
            set("aws:sourceip", ip.to_string());
        }
        set("aws:securetransport", origin.secure_transport.to_string());
        if let Some(agent) = &origin.user_agent {
            set("aws:useragent", agent.clone());
        }
        if let Some(referer) = &origin.referer {
            set("aws:referer", referer.clone());
        }
        self
    }
}

/// A repository as named in a request: `<account>/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepoPath {
    pub account: berth_core::AccountId,
    pub name: berth_core::RepositoryName,
}

impl std::fmt::Display for RepoPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.account, self.name)
    }
}

impl std::str::FromStr for RepoPath {
    type Err = berth_core::InvalidInput;

    /// Splits `<12-digit account>/<repository name>`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (account, name) = s.split_once('/').ok_or_else(|| {
            berth_core::InvalidInput::new(
                "repository name",
                format!("{s:?} must be <12-digit account id>/<repository>"),
            )
        })?;
        Ok(Self { account: account.parse()?, name: name.parse()? })
    }
}

/// Where the registry reads the time: the system clock, or a clock a test moves.
pub trait Clock: Send + Sync {
    fn now(&self) -> std::time::SystemTime;
}

/// The system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> std::time::SystemTime {
        std::time::SystemTime::now()
    }
}

/// The registry: metadata, blob storage and keys, behind the operations clients call.
pub struct Registry {
    meta: Arc<dyn MetaStore>,
    blobs: Arc<dyn BlobStore>,
    kms: Arc<dyn KeyProvider>,
    /// Customer keys, for repositories with `KMS` encryption.
    keys: Arc<dyn KeyService>,
    tokens: TokenSigner,
    settings: Settings,
    uploads: uploads::UploadStates,
    pulls: pulls::PullRecorder,
    /// Per-repository pulls, pushes and bytes, for `/metrics`.
    activity: activity::ActivityCounters,
    /// Bytes held per repository and account, counted at most once a minute for `/metrics`.
    stored: tokio::sync::Mutex<Option<(std::time::Instant, Arc<berth_meta::StoredBytes>)>>,
    manifests: manifest_cache::ManifestCache,
    /// The time credentials, tokens and download URLs are judged at.
    clock: Arc<dyn Clock>,
    /// Woken when a job is scheduled to run at once (a preview), so workers need not wait for
    /// their next look at the queue.
    jobs_waiting: tokio::sync::Notify,
    /// The vulnerability database, loaded on first use and after each import.
    advisories: tokio::sync::RwLock<Option<Arc<berth_scan::Advisories>>>,
    /// Layers scans have read since start (a re-match reads none).
    layers_read: std::sync::atomic::AtomicU64,
    /// What scans, lifecycle runs, garbage collection and webhook deliveries did since start.
    background: background::BackgroundCounters,
    /// The webhooks image events go to, by name.
    webhooks: std::sync::RwLock<Vec<String>>,
    /// Woken when a webhook's delivery is scheduled.
    deliveries_waiting: tokio::sync::Notify,
}

impl Registry {
    /// Assembles the registry, creating the login-token signing key on first start.
    pub async fn open(
        meta: Arc<dyn MetaStore>,
        blobs: Arc<dyn BlobStore>,
        kms: Arc<dyn KeyProvider>,
        keys: Arc<dyn KeyService>,
        settings: Settings,
    ) -> Result<Self, RegistryError> {
        let tokens = access::token_signer(meta.as_ref(), kms.as_ref()).await?;
        let activity = activity::ActivityCounters::new(
            settings.per_repository_metrics,
            settings.metrics_max_repositories,
        );
        Ok(Self {
            meta,
            blobs,
            kms,
            keys,
            tokens,
            settings,
            uploads: uploads::UploadStates::default(),
            pulls: pulls::PullRecorder::default(),
            activity,
            stored: tokio::sync::Mutex::new(None),
            manifests: manifest_cache::ManifestCache::new(manifest_cache::MANIFEST_CACHE_BYTES),
            clock: Arc::new(SystemClock),
            jobs_waiting: tokio::sync::Notify::new(),
            webhooks: std::sync::RwLock::new(Vec::new()),
            deliveries_waiting: tokio::sync::Notify::new(),
            advisories: tokio::sync::RwLock::new(None),
            layers_read: std::sync::atomic::AtomicU64::new(0),
            background: background::BackgroundCounters::default(),
        })
    }

    /// The registry judging credentials, tokens and download URLs by `clock` (a test's).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub(crate) fn now(&self) -> std::time::SystemTime {
        self.clock.now()
    }

    /// The registry's time in milliseconds since the epoch, as the metadata store records it.
    pub fn now_millis(&self) -> berth_meta::Millis {
        self.clock
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    /// The embedded default over one data directory: the local key file `master.key`, customer
    /// keys in `kms/`, SQLite metadata in `meta.db`, and sealed blobs and uploads beside them.
    pub async fn open_embedded(dir: &std::path::Path, settings: Settings) -> Result<Self, RegistryError> {
        let keys = berth_kms::LocalKeyService::open(&dir.join("kms"), &settings.region)?;
        Self::open_embedded_with_keys(dir, settings, Arc::new(keys)).await
    }

    /// The embedded default with customer keys in another key service (`aws-kms`).
    pub async fn open_embedded_with_keys(
        dir: &std::path::Path,
        settings: Settings,
        keys: Arc<dyn KeyService>,
    ) -> Result<Self, RegistryError> {
        let kms = berth_kms::LocalKeyProvider::open_or_create(&dir.join("master.key"))?;
        let meta = berth_meta::SqliteMetaStore::open(&dir.join("meta.db")).await?;
        let blobs = berth_blob::FsBlobStore::open(dir).await?;
        Self::open(Arc::new(meta), Arc::new(blobs), Arc::new(kms), keys, settings).await
    }

    /// Per-repository activity since start, for the tenant series of `/metrics`.
    pub fn repository_activity(&self) -> Vec<activity::RepositoryActivity> {
        self.activity.snapshot()
    }

    /// Bytes of content held per repository, per account and in all (at most a minute old:
    /// counting walks every blob a repository holds).
    pub async fn stored_bytes(&self) -> Result<Arc<berth_meta::StoredBytes>, RegistryError> {
        const FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(60);
        let mut cached = self.stored.lock().await;
        if let Some((at, bytes)) = cached.as_ref()
            && at.elapsed() < FRESH_FOR
        {
            return Ok(Arc::clone(bytes));
        }
        let bytes = Arc::new(self.meta.stored_bytes().await?);
        *cached = Some((std::time::Instant::now(), Arc::clone(&bytes)));
        Ok(bytes)
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Succeeds when the registry can serve requests: its metadata store answers.
    pub async fn ready(&self) -> Result<(), RegistryError> {
        Ok(self.meta.ping().await?)
    }

    /// Releases the metadata store once requests have finished.
    pub async fn close(&self) {
        self.meta.close().await;
    }
}

#[cfg(test)]
mod tests;

//! The metadata store: what accounts, keys, repositories, blobs, manifests, tags and uploads
//! exist, and how they relate.
//!
//! [`MetaStore`] is the one interface; each method is one domain operation that the backend runs
//! as a single transaction, so callers never assemble consistency from several calls. The SQLite
//! backend is the embedded default. [`conformance`] holds the one test suite every backend passes.

pub mod conformance;
mod sqlite;

use berth_core::{AccountId, Digest, RepositoryName, RepositorySettings, StorageClass, Tag};

pub use sqlite::SqliteMetaStore;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

pub fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("{0} still holds images")]
    NotEmpty(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0} does not exist")]
    NotFound(String),
    /// A manifest names content the repository does not hold: `blobs` (config, layers) and
    /// `manifests` (children of an index), each in the manifest's order.
    #[error("the manifest references content this repository does not hold: {}", list(.blobs, .manifests))]
    MissingReferences { blobs: Vec<Digest>, manifests: Vec<Digest> },
    #[error("the upload was changed by another request (expected length {expected})")]
    UploadMoved { expected: u64 },
    #[error("stored data is malformed: {0}")]
    Malformed(String),
    #[error("metadata backend failed: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

fn list(blobs: &[Digest], manifests: &[Digest]) -> String {
    blobs.iter().chain(manifests).map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub created_at: Millis,
}

/// An access key; `user_name` is `None` for the account's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKey {
    pub access_key_id: String,
    pub account_id: AccountId,
    pub user_name: Option<String>,
    pub sealed_secret: Vec<u8>,
    pub active: bool,
    pub created_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub id: i64,
    pub account_id: AccountId,
    pub name: RepositoryName,
    pub created_at: Millis,
    pub settings: RepositorySettings,
}

/// The stored facts an authorization decision on one repository depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessFacts {
    pub repository: Option<Repository>,
    pub repository_policy: Option<String>,
    pub registry_policy: Option<String>,
}

/// Where a blob's ciphertext lives, and its data key wrapped under each key-encryption key that
/// guards a repository holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRecord {
    pub digest: Digest,
    pub size: u64,
    pub location: String,
    pub keys: Vec<WrappedKey>,
}

impl BlobRecord {
    /// The data key as wrapped under `key_id`, if it is.
    pub fn wrapped_under(&self, key_id: &str) -> Option<&WrappedKey> {
        self.keys.iter().find(|k| k.key_id == key_id)
    }
}

/// A data key wrapped under the key-encryption key `key_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    pub key_id: String,
    pub wrapped: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub id: String,
    pub repository_id: i64,
    pub length: u64,
    pub key_id: String,
    pub wrapped_key: Vec<u8>,
    pub created_at: Millis,
    /// The sizes of the parts sent through the ECR layer API, for its part-size rule.
    pub parts: LayerParts,
}

/// What the ECR layer API's parts of an upload looked like, recorded with the upload's length
/// so that both always change together. Chunks of the OCI API leave it as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LayerParts {
    /// The size of the most recent part.
    pub last: Option<u64>,
    /// The size of the first part, other than the last one, that was below the minimum part size.
    pub short: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRecord {
    pub digest: Digest,
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub size: u64,
    pub subject: Option<Digest>,
    pub pushed_at: Millis,
    /// The image's size as ECR reports it: config and layers of an image, the largest child
    /// of an index.
    pub image_size: u64,
    /// When the image was last pulled, recorded at most about once a minute.
    pub last_pulled_at: Option<Millis>,
    /// Archived images are kept and listed, but cannot be pulled until restored.
    pub storage_class: StorageClass,
    pub last_archived_at: Option<Millis>,
    /// When the image was last restored from the archive.
    pub last_activated_at: Option<Millis>,
}

/// An image as a lifecycle policy sees it: its record, its tags, and the indexes that list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleImage {
    pub record: ManifestRecord,
    pub tags: Vec<String>,
    /// The manifests of the repository that list this one as a child.
    pub parents: Vec<Digest>,
}

/// A repository's lifecycle policy as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLifecyclePolicy {
    pub text: String,
    pub updated_at: Millis,
    /// When the policy last ran over the repository.
    pub last_evaluated_at: Option<Millis>,
}

/// How far a lifecycle policy preview has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreviewStatus {
    InProgress,
    Complete,
    Failed,
}

impl PreviewStatus {
    /// As ECR's API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "IN_PROGRESS",
            Self::Complete => "COMPLETE",
            Self::Failed => "FAILED",
        }
    }

    fn parse(text: &str) -> Result<Self, MetaError> {
        [Self::InProgress, Self::Complete, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| MetaError::Malformed(format!("preview status {text:?}")))
    }
}

/// The latest preview of a repository: the policy it evaluates and, once complete, its results
/// (opaque text the registry wrote).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPreview {
    pub policy: String,
    pub status: PreviewStatus,
    pub results: Option<String>,
    pub started_at: Millis,
    pub finished_at: Option<Millis>,
}

/// The job kind that evaluates a lifecycle policy preview; its subject is the repository id.
pub const PREVIEW_JOB: &str = "lifecycle-preview";
/// The job that scans an image, scheduled with its IN_PROGRESS scan; its subject is
/// `<repository id>/<digest>`.
pub const SCAN_JOB: &str = "image-scan";
/// The job that re-matches every stored inventory, scheduled with each database import.
pub const REMATCH_JOB: &str = "vulnerability-rematch";
/// The job that wraps every data key under a key again with the key's newest version, scheduled
/// with the re-wrap it performs; its subject is the key's id.
pub const REWRAP_JOB: &str = "key-rewrap";
/// The job that hands new image events to each webhook's delivery, scheduled with every event.
pub const EVENTS_JOB: &str = "event-fanout";

/// An image event of the outbox, as it happened: a push (`PUSH`), a deletion (`DELETE`), a
/// scan's end (`SCAN`, detail `{"scan-status": ...}`) or a move between storage classes
/// (`UPDATE_STORAGE_CLASS`, detail `{"target-storage-class": ...}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Increasing in the order the changes committed.
    pub id: i64,
    pub at: Millis,
    pub account: String,
    pub repository: String,
    pub action: String,
    pub digest: String,
    pub tag: Option<String>,
    /// The action's own fields, as JSON text.
    pub detail: Option<String>,
}

/// Bytes of content held, as [`MetaStore::stored_bytes`] counts them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredBytes {
    /// (account, repository, bytes of the blobs it holds), by account and name.
    pub repositories: Vec<(AccountId, RepositoryName, u64)>,
    /// (account, bytes of the distinct blobs its repositories hold), by account.
    pub accounts: Vec<(AccountId, u64)>,
    /// Bytes of every stored blob, each once.
    pub total: u64,
}

/// A re-wrap of the data keys under one key, and how far it has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRewrap {
    pub key_id: String,
    pub requested_at: Millis,
    /// The last blob whose wrap was renewed; the walk resumes after it.
    pub after: Option<Digest>,
    pub rewrapped: u64,
    pub finished_at: Option<Millis>,
}

/// An image's latest scan as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredScan {
    /// ECR's scan status (`IN_PROGRESS`, `COMPLETE`, `FAILED`, `UNSUPPORTED_IMAGE`).
    pub status: String,
    pub description: String,
    pub started_at: Millis,
    pub completed_at: Option<Millis>,
    /// The package inventory and the findings of the last match, as the registry's JSON.
    pub inventory: Option<String>,
    pub findings: Option<String>,
    /// When the findings were last matched against the database.
    pub matched_at: Option<Millis>,
}

/// An image whose inventory is stored, for re-matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredInventory {
    pub repository_id: i64,
    pub digest: Digest,
    pub inventory: String,
    /// The findings recorded last (JSON), to tell what a re-match changed.
    pub findings: Option<String>,
}

/// One import's share of the vulnerability database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VulnerabilitySource {
    pub source: String,
    pub records: u64,
    pub imported_at: Millis,
}

/// An address the vulnerability database is updated from, and how its last check went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VulnerabilityFeed {
    pub url: String,
    /// Validators of the last complete download, sent back so that an unchanged feed answers
    /// 304 Not Modified.
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// The last attempt, whatever its outcome.
    pub checked_at: Millis,
    /// The last download that replaced the feed's advisories.
    pub changed_at: Option<Millis>,
    /// Why the last attempt failed, if it did (the feed's advisories are then the previous ones).
    pub error: Option<String>,
    /// Advisories the feed holds now.
    pub records: u64,
}

/// A unit of background work: what to do (`kind`) to what (`subject`), not before `run_after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub subject: String,
    pub run_after: Millis,
    /// How many times a worker has claimed it.
    pub attempts: u32,
    /// Which worker holds it, and until when; `None` when it waits.
    pub claimed_by: Option<String>,
    pub lease_until: Option<Millis>,
    pub last_error: Option<String>,
}

/// Which images a listing includes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TagFilter {
    #[default]
    Any,
    Tagged,
    Untagged,
}

/// Which images a listing includes: by tags, and by storage class (`None`: in either).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImageFilter {
    pub tags: TagFilter,
    pub storage_class: Option<StorageClass>,
}

/// An image and its tags, as DescribeImages shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageDetail {
    pub record: ManifestRecord,
    pub tags: Vec<String>,
}

/// What became of a request to delete a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestDeletion {
    Deleted,
    NotFound,
    /// Kept: this index of the same repository lists it.
    ListedBy(Digest),
}

/// A manifest to record, with what it references.
#[derive(Debug, Clone)]
pub struct NewManifest {
    pub record: ManifestRecord,
    /// Where the manifest's own bytes are stored (kept only if the digest is not stored yet).
    pub content: BlobRecord,
    /// Whether `content` names bytes written for this push; if not, it is the stored record of
    /// the digest, and the push is refused (`NotFound`) should that record be gone by the time
    /// it commits (collected as garbage meanwhile).
    pub content_written: bool,
    /// Blobs (config, layers) the repository must hold.
    pub blobs: Vec<Digest>,
    /// Manifests (children of an index) the repository must hold.
    pub manifests: Vec<Digest>,
}

/// What a repository starts with: settings, resource tags and a repository policy, recorded
/// in the one transaction that creates it.
#[derive(Debug, Clone, Copy)]
pub struct NewRepository<'a> {
    pub settings: &'a RepositorySettings,
    pub tags: &'a [(String, String)],
    pub policy: Option<&'a str>,
    pub lifecycle_policy: Option<&'a str>,
}

/// A repository creation template: what repositories whose name starts with `prefix` get
/// when they are created (on push, for `CREATE_ON_PUSH`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreationTemplate {
    /// A name prefix, or `ROOT` for every repository.
    pub prefix: String,
    pub description: Option<String>,
    /// Mutability, exclusions and encryption; `scan_on_push` is not part of a template.
    pub settings: RepositorySettings,
    pub resource_tags: Vec<(String, String)>,
    pub repository_policy: Option<String>,
    pub lifecycle_policy: Option<String>,
    /// `REPLICATION`, `PULL_THROUGH_CACHE`, `CREATE_ON_PUSH`.
    pub applied_for: Vec<String>,
    pub custom_role_arn: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// What a repository holds of the content a manifest names: the size of each blob it holds, and
/// the size and image size of each manifest. Digests it does not hold are absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeldContent {
    pub blobs: std::collections::HashMap<Digest, u64>,
    pub manifests: std::collections::HashMap<Digest, HeldManifest>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldManifest {
    pub size: u64,
    pub image_size: u64,
}

/// What committing an upload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobCommit {
    /// The bytes were new; the given location is now referenced.
    Stored(BlobRecord),
    /// The registry already held the digest; the new copy is unused and may be deleted.
    AlreadyStored(BlobRecord),
}

/// One page of a listing, ordered, after the `last` item of the previous page.
#[derive(Debug, Clone, Copy)]
pub struct Page<'a> {
    pub last: Option<&'a str>,
    pub limit: u32,
}

#[async_trait::async_trait]
pub trait MetaStore: Send + Sync {
    /// Finishes statements in flight and releases the backend; later calls fail.
    async fn close(&self);
    /// Succeeds when the backend can answer a query (readiness).
    async fn ping(&self) -> Result<(), MetaError>;

    // Accounts and keys.
    async fn create_account(&self, account: &Account) -> Result<(), MetaError>;
    async fn get_account(&self, id: &AccountId) -> Result<Option<Account>, MetaError>;
    async fn list_accounts(&self) -> Result<Vec<Account>, MetaError>;
    /// Creates an IAM user (`path` like `/` or `/team/`); `AlreadyExists` if the name is taken.
    async fn create_user(&self, account: &AccountId, name: &str, path: &str) -> Result<(), MetaError>;
    /// An account's users as (name, path), ordered by name.
    async fn list_users(&self, account: &AccountId) -> Result<Vec<(String, String)>, MetaError>;
    /// A user's path (`/` or `/team/`), if the user exists.
    async fn user_path(&self, account: &AccountId, name: &str) -> Result<Option<String>, MetaError>;
    /// Deletes a user with its keys and policies; false if there was none.
    async fn delete_user(&self, account: &AccountId, name: &str) -> Result<bool, MetaError>;
    /// Attaches (or replaces) a named identity policy; `NotFound` if the user does not exist.
    async fn put_user_policy(
        &self,
        account: &AccountId,
        user: &str,
        policy_name: &str,
        policy: &str,
    ) -> Result<(), MetaError>;
    /// A user's identity policies as (name, text), ordered by name.
    async fn user_policies(
        &self,
        account: &AccountId,
        user: &str,
    ) -> Result<Vec<(String, String)>, MetaError>;
    /// Detaches a named identity policy; false if there was none.
    async fn delete_user_policy(
        &self,
        account: &AccountId,
        user: &str,
        policy_name: &str,
    ) -> Result<bool, MetaError>;
    async fn create_access_key(&self, key: &AccessKey) -> Result<(), MetaError>;
    /// An account's access keys (of its root and its users), ordered by id.
    async fn list_access_keys(&self, account: &AccountId) -> Result<Vec<AccessKey>, MetaError>;
    async fn get_access_key(&self, access_key_id: &str) -> Result<Option<AccessKey>, MetaError>;
    async fn set_access_key_active(&self, access_key_id: &str, active: bool) -> Result<(), MetaError>;
    async fn delete_access_key(&self, access_key_id: &str) -> Result<(), MetaError>;

    /// Stores `sealed` under `name` unless a value is already there; returns the stored value.
    async fn put_secret_once(&self, name: &str, sealed: &[u8]) -> Result<Vec<u8>, MetaError>;

    // Repositories.
    async fn repository_by_id(&self, repository_id: i64) -> Result<Option<Repository>, MetaError>;
    async fn get_repository(
        &self,
        account: &AccountId,
        name: &RepositoryName,
    ) -> Result<Option<Repository>, MetaError>;
    /// Creates a repository in an existing account, with resource tags; `AlreadyExists` if the
    /// name is taken, `NotFound` if the account does not exist.
    async fn create_repository(
        &self,
        account: &AccountId,
        name: &RepositoryName,
        new: &NewRepository<'_>,
    ) -> Result<Repository, MetaError>;
    /// Deletes a repository; unless `force`, only if it holds no images (`NotEmpty`). Returns
    /// the ids of the uploads that were in progress in it, whose staged data is now unused.
    async fn delete_repository(&self, repository_id: i64, force: bool) -> Result<Vec<String>, MetaError>;
    /// Replaces a repository's settings.
    async fn update_repository_settings(
        &self,
        repository_id: i64,
        settings: &RepositorySettings,
    ) -> Result<(), MetaError>;
    /// A repository's resource tags, ordered by key.
    async fn repository_tags(&self, repository_id: i64) -> Result<Vec<(String, String)>, MetaError>;
    /// Adds or overwrites resource tags, refusing (`LimitExceeded`) to pass `max` tags in all.
    async fn tag_repository(
        &self,
        repository_id: i64,
        tags: &[(String, String)],
        max: usize,
    ) -> Result<(), MetaError>;
    /// Removes resource tags by key; absent keys are ignored.
    async fn untag_repository(&self, repository_id: i64, keys: &[String]) -> Result<(), MetaError>;
    /// Stores a creation template: a new one (`AlreadyExists` if the prefix is taken) or a
    /// replacement (`NotFound` if it is not).
    async fn put_creation_template(
        &self,
        account: &AccountId,
        template: &CreationTemplate,
        replace: bool,
    ) -> Result<(), MetaError>;
    /// Every creation template of an account, ordered by prefix.
    async fn creation_templates(&self, account: &AccountId) -> Result<Vec<CreationTemplate>, MetaError>;
    /// Deletes a creation template; false if there was none.
    async fn delete_creation_template(&self, account: &AccountId, prefix: &str) -> Result<bool, MetaError>;
    /// What authorizing a request on one repository reads, in one round trip: the repository
    /// (if it exists), its policy, and its account's registry policy.
    async fn access_facts(
        &self,
        account: &AccountId,
        name: &RepositoryName,
    ) -> Result<AccessFacts, MetaError>;
    /// The policy text of a repository, by name (the repository may not exist: `None`).
    async fn repository_policy(
        &self,
        account: &AccountId,
        name: &RepositoryName,
    ) -> Result<Option<String>, MetaError>;
    /// Sets or, with `None`, removes a repository's policy; returns the previous text.
    async fn set_repository_policy(
        &self,
        repository_id: i64,
        policy: Option<&str>,
    ) -> Result<Option<String>, MetaError>;
    /// The registry policy of an account.
    async fn registry_policy(&self, account: &AccountId) -> Result<Option<String>, MetaError>;
    /// An account's registry scanning configuration, as the registry's JSON.
    async fn registry_scanning(&self, account: &AccountId) -> Result<Option<String>, MetaError>;
    async fn set_registry_scanning(&self, account: &AccountId, configuration: &str) -> Result<(), MetaError>;
    /// Sets or, with `None`, removes an account's registry policy; returns the previous text.
    async fn set_registry_policy(
        &self,
        account: &AccountId,
        policy: Option<&str>,
    ) -> Result<Option<String>, MetaError>;
    /// Returns the repository, creating it with default settings (in an existing account) if
    /// absent.
    async fn ensure_repository(
        &self,
        account: &AccountId,
        name: &RepositoryName,
    ) -> Result<Repository, MetaError>;
    /// Repositories of the given accounts ordered by `<account>/<name>`, after `page.last`.
    async fn list_repositories(
        &self,
        accounts: &[AccountId],
        page: Page<'_>,
    ) -> Result<Vec<Repository>, MetaError>;

    // Blobs.
    /// What the repository holds of `blobs` and `manifests`, read in one set-based query each,
    /// outside any write transaction.
    async fn held_content(
        &self,
        repository_id: i64,
        blobs: &[Digest],
        manifests: &[Digest],
    ) -> Result<HeldContent, MetaError>;
    /// The blob, if `repository_id` holds it.
    async fn repository_blob(
        &self,
        repository_id: i64,
        digest: &Digest,
    ) -> Result<Option<BlobRecord>, MetaError>;
    /// The blob, if the registry stores it at all (for mounts and deduplication).
    async fn get_blob(&self, digest: &Digest) -> Result<Option<BlobRecord>, MetaError>;
    /// Whether a manifest of the repository references the blob (as config, layer or child), or
    /// the blob is a manifest of the repository itself.
    async fn blob_in_use(&self, repository_id: i64, digest: &Digest) -> Result<bool, MetaError>;
    /// Records that `repository_id` holds an already stored blob (refreshing when it last took
    /// it); false if the registry does not store the digest (any more).
    async fn link_blob(&self, repository_id: i64, digest: &Digest) -> Result<bool, MetaError>;
    /// Adds a wrap of a stored blob's data key under another key (a repository under that key
    /// took the blob); false if the blob is not stored at `location` (any more: collected, or
    /// stored anew elsewhere under another data key). A wrap under the same key is kept as it is.
    async fn add_blob_key(
        &self,
        digest: &Digest,
        location: &str,
        key: &WrappedKey,
    ) -> Result<bool, MetaError>;
    /// Marks the wrap of `digest`'s data key under `key_id` as needed now (a repository under
    /// that key takes the blob); false if there is no such wrap (any more).
    async fn touch_blob_key(&self, digest: &Digest, key_id: &str) -> Result<bool, MetaError>;
    /// Drops (or, with `dry_run`, counts) wraps made before `before` under keys that guard no
    /// repository holding the blob, `registry_key` being the key of `AES256` repositories: a key
    /// whose repositories all let go of a blob no longer opens it. At most `limit` are dropped
    /// per call, so that one call never holds the writer long; a dry run counts them all.
    async fn drop_unneeded_wraps(
        &self,
        before: Millis,
        registry_key: &str,
        limit: u32,
        dry_run: bool,
    ) -> Result<u64, MetaError>;
    /// Data keys wrapped under `key_id`, by blob digest after `after`, at most `limit`.
    async fn key_wraps(
        &self,
        key_id: &str,
        after: Option<&Digest>,
        limit: u32,
    ) -> Result<Vec<(Digest, Vec<u8>)>, MetaError>;
    /// How many data keys are wrapped under `key_id`.
    async fn count_key_wraps(&self, key_id: &str) -> Result<u64, MetaError>;
    /// The customer keys (key ARNs) that guard at least one repository, sorted.
    async fn customer_keys_in_use(&self) -> Result<Vec<String>, MetaError>;
    /// Replaces a blob's wrap under `key_id` if it is still `old`; false if it changed or went.
    async fn replace_blob_key(
        &self,
        digest: &Digest,
        key_id: &str,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool, MetaError>;
    /// Starts (or starts over) the re-wrap of the data keys under `key_id` and schedules its
    /// [`REWRAP_JOB`], in one transaction.
    async fn start_key_rewrap(&self, key_id: &str, at: Millis) -> Result<(), MetaError>;
    /// Records how far the re-wrap requested at `requested_at` has come: `rewrapped` more keys,
    /// up to the blob `after`, and whether it finished. Nothing, if a newer one started since.
    async fn advance_key_rewrap(
        &self,
        key_id: &str,
        requested_at: Millis,
        after: Option<&Digest>,
        rewrapped: u64,
        finished_at: Option<Millis>,
    ) -> Result<(), MetaError>;
    async fn key_rewrap(&self, key_id: &str) -> Result<Option<KeyRewrap>, MetaError>;
    /// Forgets that `repository_id` holds a blob; false if it did not.
    async fn unlink_blob(&self, repository_id: i64, digest: &Digest) -> Result<bool, MetaError>;
    /// In one transaction: records the blob unless its digest is already stored, links it to
    /// the repository, and ends the upload.
    async fn commit_blob(
        &self,
        repository_id: i64,
        upload_id: &str,
        blob: &BlobRecord,
    ) -> Result<BlobCommit, MetaError>;

    // Uploads.
    /// Records a new upload, unless the repository's account already has `max_open_in_account`
    /// uploads open (`LimitExceeded`).
    async fn create_upload(&self, upload: &Upload, max_open_in_account: u64) -> Result<(), MetaError>;
    async fn get_upload(&self, repository_id: i64, id: &str) -> Result<Option<Upload>, MetaError>;
    /// Moves an upload's length from `expected` to `length` and records its `parts`, failing if
    /// another request moved it.
    async fn advance_upload(
        &self,
        id: &str,
        expected: u64,
        length: u64,
        parts: LayerParts,
    ) -> Result<(), MetaError>;
    async fn delete_upload(&self, id: &str) -> Result<(), MetaError>;
    /// Ids of uploads last written before `before`, at most `limit` of them.
    async fn stale_uploads(&self, before: Millis, limit: u32) -> Result<Vec<String>, MetaError>;

    // Manifests and tags.
    /// In one transaction: checks every reference, records the manifest's content blob (unless
    /// its digest is stored already) and the manifest, and points `tag` at it. An existing tag
    /// is refused with `AlreadyExists` unless `tag_may_move`; a tag that would be the manifest's
    /// `max_tags + 1`th is refused with `LimitExceeded`. Returns whether `manifest.content` was
    /// recorded; if not, its bytes are unused.
    async fn put_manifest(
        &self,
        repository_id: i64,
        manifest: &NewManifest,
        tag: Option<&Tag>,
        tag_may_move: bool,
        max_tags: usize,
    ) -> Result<bool, MetaError>;
    async fn get_manifest(
        &self,
        repository_id: i64,
        digest: &Digest,
    ) -> Result<Option<ManifestRecord>, MetaError>;
    async fn resolve_tag(&self, repository_id: i64, tag: &Tag) -> Result<Option<ManifestRecord>, MetaError>;
    async fn list_tags(&self, repository_id: i64, page: Page<'_>) -> Result<Vec<String>, MetaError>;
    /// Images with their tags, ordered by digest, after the digest `page.last`.
    async fn describe_images(
        &self,
        repository_id: i64,
        filter: ImageFilter,
        page: Page<'_>,
    ) -> Result<Vec<ImageDetail>, MetaError>;
    /// One (digest, tag) pair per tag, and (digest, None) per untagged image, ordered by digest
    /// then tag, after `after`.
    async fn list_images(
        &self,
        repository_id: i64,
        filter: ImageFilter,
        after: Option<(&Digest, &str)>,
        limit: u32,
    ) -> Result<Vec<(Digest, Option<String>)>, MetaError>;
    /// The tags pointing at a manifest, in order.
    async fn manifest_tags(&self, repository_id: i64, digest: &Digest) -> Result<Vec<String>, MetaError>;
    /// Records that a manifest was pulled at `at`.
    async fn record_pull(&self, repository_id: i64, digest: &Digest, at: Millis) -> Result<(), MetaError>;
    /// Manifests whose subject is `subject`, ordered by digest.
    async fn referrers(&self, repository_id: i64, subject: &Digest)
    -> Result<Vec<ManifestRecord>, MetaError>;
    /// Deletes a manifest and every tag pointing at it, unless an index of the repository lists
    /// it (the index would name a manifest that is gone): then nothing changes.
    async fn delete_manifest(
        &self,
        repository_id: i64,
        digest: &Digest,
    ) -> Result<ManifestDeletion, MetaError>;
    /// Deletes a tag only; false if it did not exist.
    async fn delete_tag(&self, repository_id: i64, tag: &Tag) -> Result<bool, MetaError>;

    // The outbox of image events. Pushes that change a repository (a new manifest, a tag set or
    // moved) and deletions record their event, and schedule the [`EVENTS_JOB`], in their own
    // transaction.
    /// Events after `after`, oldest first, at most `limit`.
    async fn events_after(&self, after: i64, limit: u32) -> Result<Vec<StoredEvent>, MetaError>;
    /// The newest event's id (0 when there is none).
    async fn latest_event(&self) -> Result<i64, MetaError>;
    /// Where `endpoint`'s deliveries stand, if it has begun.
    async fn event_cursor(&self, endpoint: &str) -> Result<Option<i64>, MetaError>;
    /// Records that `endpoint` is done with every event up to `delivered`; never moves back.
    async fn set_event_cursor(&self, endpoint: &str, delivered: i64, at: Millis) -> Result<(), MetaError>;
    /// Starts `endpoint` at `delivered`, unless it has begun already.
    async fn begin_event_cursor(&self, endpoint: &str, delivered: i64, at: Millis) -> Result<(), MetaError>;
    /// Removes events recorded before `before`; how many.
    async fn prune_events(&self, before: Millis) -> Result<u64, MetaError>;

    // Image scans and the vulnerability database.
    /// Marks the image's scan IN_PROGRESS and schedules its [`SCAN_JOB`], in one transaction;
    /// false (and nothing changes) when one is in progress already.
    async fn start_image_scan(
        &self,
        repository_id: i64,
        digest: &Digest,
        at: Millis,
    ) -> Result<bool, MetaError>;
    async fn image_scan(&self, repository_id: i64, digest: &Digest) -> Result<Option<StoredScan>, MetaError>;
    /// Records a scan's outcome; nothing if the image is gone.
    async fn record_image_scan(
        &self,
        repository_id: i64,
        digest: &Digest,
        scan: &StoredScan,
    ) -> Result<(), MetaError>;
    /// Replaces the findings of a stored inventory, matched at `at`; with `change` (what the
    /// re-match changed, as an event's detail JSON), records the image's `SCAN` event in the
    /// same transaction.
    async fn record_findings(
        &self,
        repository_id: i64,
        digest: &Digest,
        findings: &str,
        at: Millis,
        change: Option<&str>,
    ) -> Result<(), MetaError>;
    /// Stored inventories after `after` (repository id, digest), in that order.
    async fn stored_inventories(
        &self,
        after: Option<(i64, &Digest)>,
        limit: u32,
    ) -> Result<Vec<StoredInventory>, MetaError>;
    /// Adds or replaces advisories (id, OSV JSON) under `source` and schedules the
    /// [`REMATCH_JOB`], in one transaction.
    async fn import_vulnerability_records(
        &self,
        source: &str,
        records: &[(String, Vec<u8>)],
        at: Millis,
    ) -> Result<(), MetaError>;
    /// Every advisory's OSV JSON.
    async fn vulnerability_records(&self) -> Result<Vec<Vec<u8>>, MetaError>;
    async fn vulnerability_sources(&self) -> Result<Vec<VulnerabilitySource>, MetaError>;
    /// The feed at `url`, if it was ever checked.
    async fn vulnerability_feed(&self, url: &str) -> Result<Option<VulnerabilityFeed>, MetaError>;
    /// Every feed ever checked.
    async fn vulnerability_feeds(&self) -> Result<Vec<VulnerabilityFeed>, MetaError>;
    /// Replaces every advisory of the feed at `url` with `records` (an advisory it no longer
    /// lists goes), records the download's validators and schedules the [`REMATCH_JOB`], in one
    /// transaction: the old advisories serve until it commits.
    async fn replace_vulnerability_feed(
        &self,
        url: &str,
        records: &[(String, Vec<u8>)],
        validators: (Option<&str>, Option<&str>),
        at: Millis,
    ) -> Result<(), MetaError>;
    /// Records a check of the feed at `url` that changed nothing: unmodified, or failed with `error`.
    async fn note_vulnerability_feed_check(
        &self,
        url: &str,
        at: Millis,
        error: Option<&str>,
    ) -> Result<(), MetaError>;

    // Lifecycle policies and the archive.
    async fn lifecycle_policy(&self, repository_id: i64) -> Result<Option<StoredLifecyclePolicy>, MetaError>;
    /// Sets or, with `None`, removes a repository's lifecycle policy; returns the previous one.
    async fn set_lifecycle_policy(
        &self,
        repository_id: i64,
        policy: Option<&str>,
    ) -> Result<Option<StoredLifecyclePolicy>, MetaError>;
    /// Records that the policy ran over the repository at `at`.
    async fn record_lifecycle_evaluation(&self, repository_id: i64, at: Millis) -> Result<(), MetaError>;
    /// Every repository that has a lifecycle policy, ordered by `<account>/<name>`.
    async fn repositories_with_lifecycle_policy(&self) -> Result<Vec<Repository>, MetaError>;
    /// Every image of a repository with its tags and the indexes that list it, ordered by digest.
    async fn lifecycle_images(&self, repository_id: i64) -> Result<Vec<LifecycleImage>, MetaError>;
    /// Moves an image to `class` at `at`, recording when it was archived or restored; false if
    /// the image does not exist or is in that class already.
    async fn set_storage_class(
        &self,
        repository_id: i64,
        digest: &Digest,
        class: StorageClass,
        at: Millis,
    ) -> Result<bool, MetaError>;
    /// Starts a preview of `policy` and schedules the job ([`PREVIEW_JOB`]) that evaluates it,
    /// in one transaction; `AlreadyExists` while the repository's previous preview is in progress.
    async fn start_lifecycle_preview(
        &self,
        repository_id: i64,
        policy: &str,
        at: Millis,
    ) -> Result<(), MetaError>;
    async fn lifecycle_preview(&self, repository_id: i64) -> Result<Option<StoredPreview>, MetaError>;
    /// Records a preview's outcome.
    async fn finish_lifecycle_preview(
        &self,
        repository_id: i64,
        status: PreviewStatus,
        results: Option<&str>,
        at: Millis,
    ) -> Result<(), MetaError>;

    // Background jobs.
    /// Schedules `kind` for `subject` at `run_after`; a job already waiting for the same pair
    /// keeps the earlier time, so scheduling twice runs once.
    async fn schedule_job(&self, kind: &str, subject: &str, run_after: Millis) -> Result<(), MetaError>;
    /// Asks for `kind` for `subject`: a new job due at `run_after`; a job already waiting keeps
    /// its time (a retry's back-off stands); a job running runs again once it ends.
    async fn request_job(&self, kind: &str, subject: &str, run_after: Millis) -> Result<(), MetaError>;
    /// Claims the job of one of `kinds` that is due at `now` and has waited longest, for `worker`
    /// until `lease_until`. A job whose lease ran out (its worker died) can be claimed again.
    async fn claim_job(
        &self,
        kinds: &[&str],
        worker: &str,
        now: Millis,
        lease_until: Millis,
    ) -> Result<Option<Job>, MetaError>;
    /// Extends a claim; false if `worker` no longer holds the job.
    async fn renew_job(&self, id: i64, worker: &str, lease_until: Millis) -> Result<bool, MetaError>;
    /// Ends a claimed job: removes it, or with `next_run`, schedules it again. Nothing happens if
    /// `worker` no longer holds it.
    async fn finish_job(&self, id: i64, worker: &str, next_run: Option<Millis>) -> Result<(), MetaError>;
    /// Releases a job that failed, to be tried again at `retry_at`, recording why.
    async fn fail_job(&self, id: i64, worker: &str, error: &str, retry_at: Millis) -> Result<(), MetaError>;
    /// Every job, ordered by time due.
    async fn jobs(&self) -> Result<Vec<Job>, MetaError>;

    // Garbage collection.
    /// In one transaction, what nothing uses and was last taken before `before`: forgets each
    /// repository's hold on content none of its images references, then removes up to `limit`
    /// blobs no repository holds and returns them (their bytes are the caller's to delete).
    /// With `dry_run`, changes nothing and returns what it would have done.
    async fn collect_garbage(&self, before: Millis, limit: u32, dry_run: bool) -> Result<Garbage, MetaError>;
    /// Bytes of content held: per repository (each blob it holds counted in full), per account
    /// (each blob counted once however many of its repositories hold it), and in all (each blob
    /// once).
    async fn stored_bytes(&self) -> Result<StoredBytes, MetaError>;
    /// Which of `locations` a blob record names.
    async fn known_locations(
        &self,
        locations: &[String],
    ) -> Result<std::collections::HashSet<String>, MetaError>;
}

/// What one garbage collection step reclaimed (or would).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Garbage {
    /// Holds of repositories on content none of their images uses.
    pub released_holds: u64,
    /// Blobs no repository holds any more, with where their bytes are.
    pub blobs: Vec<BlobRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_references_are_named_in_the_message() {
        let digest =
            |c: char| -> Digest { format!("sha256:{}", c.to_string().repeat(64)).parse().expect("digest") };
        let error = MetaError::MissingReferences { blobs: vec![digest('a')], manifests: vec![digest('b')] };
        assert_eq!(
            error.to_string(),
            format!(
                "the manifest references content this repository does not hold: {}, {}",
                digest('a'),
                digest('b')
            )
        );
    }
}

//! Blobs: uploads (monolithic, streamed and chunked), cross-repository mounts, reads and
//! deletion.
//!
//! An upload's hash state lives in memory beside a per-upload lock, so consecutive chunks hash
//! each byte once. When the state is missing (after a restart, on another node, or for a digest
//! algorithm other than the one hashed so far) it is rebuilt by reading the staged bytes back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use berth_blob::{BlobLocation, ByteStream, DataKey, Hasher};
use berth_core::{Digest, DigestAlgorithm};
use berth_iam::Action;
use berth_meta::{
    BlobCommit, BlobRecord, CreationTemplate, LayerParts, MetaError, NewRepository, Repository, Upload,
    WrappedKey,
};
use futures_util::StreamExt;

use crate::access::RequestTags;
use crate::{Caller, Registry, RegistryError, RepoPath};

/// Most uploads whose hash state is kept in memory; beyond it, state is rebuilt on demand.
const MAX_TRACKED_UPLOADS: usize = 10_000;

/// A push's permission to create the repository it names, given before its body is read.
#[derive(Debug)]
pub(crate) struct CreateOnPush {
    template: Option<CreationTemplate>,
    /// The repository, when another request created it in the meantime.
    existing: Option<Repository>,
}

/// Where an upload stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadStatus {
    pub id: String,
    pub length: u64,
}

/// A blob's bytes, or the requested range of them.
pub struct BlobContent {
    pub digest: Digest,
    pub size: u64,
    pub body: ByteStream,
}

struct HashState {
    length: u64,
    hasher: Hasher,
}

/// Per-upload locks holding the running hash, so two requests never append at once.
#[derive(Default)]
pub(crate) struct UploadStates {
    states: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<HashState>>>>>,
}

impl UploadStates {
    fn slot(&self, id: &str) -> Arc<tokio::sync::Mutex<Option<HashState>>> {
        let mut states = self.states.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if states.len() >= MAX_TRACKED_UPLOADS && !states.contains_key(id) {
            // Drop idle entries; their uploads rebuild state from staged data if they resume.
            states.retain(|_, slot| Arc::strong_count(slot) > 1);
        }
        states.entry(id.to_owned()).or_default().clone()
    }

    pub(crate) fn forget(&self, id: &str) {
        self.states.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(id);
    }
}

/// Parses a client-sent `Content-Range` / range start for a chunk.
fn check_start(requested: Option<(u64, u64)>, length: u64) -> Result<(), RegistryError> {
    match requested {
        Some((start, end)) if start != length || end < start => {
            Err(RegistryError::RangeInvalid { requested: format!("{start}-{end}"), length })
        }
        _ => Ok(()),
    }
}

impl Registry {
    /// The data key an upload's staged bytes are sealed under.
    async fn upload_key(&self, upload: &Upload) -> Result<DataKey, RegistryError> {
        let wrapped = WrappedKey { key_id: upload.key_id.clone(), wrapped: upload.wrapped_key.clone() };
        self.unwrap_key(&wrapped).await
    }

    pub(crate) async fn upload_in(&self, repository: &Repository, id: &str) -> Result<Upload, RegistryError> {
        self.meta
            .get_upload(repository.id, id)
            .await?
            .ok_or_else(|| RegistryError::UploadUnknown(id.to_owned()))
    }

    /// Begins an upload, creating the repository on first push into an existing account.
    pub async fn start_upload(
        &self,
        caller: &Caller,
        repo: &RepoPath,
    ) -> Result<UploadStatus, RegistryError> {
        let repository = self.authorized_for_push(caller, Action::InitiateLayerUpload, repo).await?;
        self.new_upload(&repository).await
    }

    /// Authorizes a push `action` on `repo` and returns the repository, created on first push;
    /// the repository read by the authorization is not read again.
    pub(crate) async fn authorized_for_push(
        &self,
        caller: &Caller,
        action: Action,
        repo: &RepoPath,
    ) -> Result<Repository, RegistryError> {
        match self.authorize_on(caller, action, repo).await? {
            Some(repository) => Ok(repository),
            None => {
                let creation = self.authorize_create_on_push(caller, repo).await?;
                self.create_on_push(repo, creation).await
            }
        }
    }

    /// Authorizes creating `repo` on push: `ecr:CreateRepository`, with the tags the matching
    /// creation template would give it as `aws:RequestTag`, as ECR requires.
    pub(crate) async fn authorize_create_on_push(
        &self,
        caller: &Caller,
        repo: &RepoPath,
    ) -> Result<CreateOnPush, RegistryError> {
        let template = self.template_for_push(repo).await?;
        let set = template.as_ref().map_or(&[][..], |t| t.resource_tags.as_slice());
        let tags = RequestTags { set, removed: &[] };
        if let Some(existing) = self.authorize_tagging(caller, Action::CreateRepository, repo, tags).await? {
            // Another push created it meanwhile; creating is what was authorized, so it is used.
            return Ok(CreateOnPush { template: None, existing: Some(existing) });
        }
        Ok(CreateOnPush { template, existing: None })
    }

    /// The repository a push was authorized to create, created with the settings, tags,
    /// repository policy and lifecycle policy of its creation template (if any).
    pub(crate) async fn create_on_push(
        &self,
        repo: &RepoPath,
        creation: CreateOnPush,
    ) -> Result<Repository, RegistryError> {
        if let Some(existing) = creation.existing {
            return Ok(existing);
        }
        let Some(template) = creation.template else {
            return self.meta.ensure_repository(&repo.account, &repo.name).await.map_err(|e| match e {
                MetaError::NotFound(_) => RegistryError::name_unknown(repo),
                other => other.into(),
            });
        };
        let settings = self.resolve_encryption(&repo.account, &template.settings).await?;
        let new = NewRepository {
            settings: &settings,
            tags: &template.resource_tags,
            policy: template.repository_policy.as_deref(),
            lifecycle_policy: template.lifecycle_policy.as_deref(),
        };
        match self.meta.create_repository(&repo.account, &repo.name, &new).await {
            Ok(repository) => Ok(repository),
            // Another push created it first.
            Err(MetaError::AlreadyExists(_)) => {
                self.meta.get_repository(&repo.account, &repo.name).await?.ok_or_else(|| {
                    RegistryError::Internal(format!("repository {repo} was created and is gone"))
                })
            }
            Err(MetaError::NotFound(_)) => Err(RegistryError::name_unknown(repo)),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) async fn new_upload(&self, repository: &Repository) -> Result<UploadStatus, RegistryError> {
        let id = uuid::Uuid::new_v4().to_string();
        let (_, wrapped) = self.new_data_key(repository).await?;
        let upload = Upload {
            id: id.clone(),
            repository_id: repository.id,
            length: 0,
            key_id: wrapped.key_id,
            wrapped_key: wrapped.wrapped,
            created_at: self.now_millis(),
            parts: LayerParts::default(),
        };
        // The staged file first: a crash between the two leaves only an unreferenced file.
        self.blobs.begin_upload(&id).await?;
        let cap = self.settings.max_open_uploads_per_account;
        if let Err(e) = self.meta.create_upload(&upload, cap).await {
            if let Err(e) = self.blobs.abort_upload(&id).await {
                tracing::warn!(upload = id, error = %e, "could not delete staged upload data");
            }
            return Err(match e {
                MetaError::LimitExceeded(_) => RegistryError::TooManyUploads(format!(
                    "The registry with id '{}' already has {cap} uploads open, the most an account may have \
                     (limits.max_open_uploads_per_account); finish or cancel some, or wait for abandoned ones to \
                     expire",
                    repository.account_id
                )),
                other => other.into(),
            });
        }
        Ok(UploadStatus { id, length: 0 })
    }

    /// Mounts a blob from `from` into `target` if the caller may read it there; `Ok(None)`
    /// means the mount could not be done and a regular upload was started instead.
    pub async fn mount_blob(
        &self,
        caller: &Caller,
        target: &RepoPath,
        digest: &Digest,
        from: Option<&RepoPath>,
    ) -> Result<Result<Digest, UploadStatus>, RegistryError> {
        let repository = self.authorized_for_push(caller, Action::InitiateLayerUpload, target).await?;
        if let Some(from) = from {
            // Reading from the source needs the same permission as pulling the blob there; a
            // refusal is not an error here, the client just uploads the bytes itself.
            let source = self.authorized_repository(caller, Action::GetDownloadUrlForLayer, from).await;
            // The link fails if the bytes were collected as garbage meanwhile: then, an upload.
            if let Ok(source) = source
                && let Some(blob) = self.meta.repository_blob(source.id, digest).await?
                // Readable under the target's key before the target holds it, through the
                // source's own key: a mount is a read there, and a source whose key is off
                // lends nothing. Any failure: the client uploads the bytes itself.
                && self.wrap_from(&source, &repository, &blob).await.is_ok()
                && self.meta.link_blob(repository.id, digest).await?
            {
                return Ok(Ok(digest.clone()));
            }
        }
        Ok(Err(self.new_upload(&repository).await?))
    }

    /// Appends a chunk. `range` is the client's `Content-Range`, if it sent one.
    pub async fn upload_chunk(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        id: &str,
        range: Option<(u64, u64)>,
        body: ByteStream,
    ) -> Result<UploadStatus, RegistryError> {
        let repository = self.authorized_repository(caller, Action::UploadLayerPart, repo).await?;
        let slot = self.uploads.slot(id);
        let mut state = slot.lock().await;
        let upload = self.upload_in(&repository, id).await?;
        check_start(range, upload.length)?;
        self.append(&upload, &mut state, body, upload.parts).await
    }

    /// Appends `body` to an upload of `repository` if `check`, given the upload as it stands
    /// under its lock, allows it; `check` returns the upload's parts after this append.
    pub(crate) async fn append_checked(
        &self,
        repository: &Repository,
        id: &str,
        check: impl FnOnce(&Upload) -> Result<LayerParts, RegistryError>,
        body: ByteStream,
    ) -> Result<UploadStatus, RegistryError> {
        let slot = self.uploads.slot(id);
        let mut state = slot.lock().await;
        let upload = self.upload_in(repository, id).await?;
        let parts = check(&upload)?;
        self.append(&upload, &mut state, body, parts).await
    }

    /// Appends `body` under the upload's lock, keeping the hash state current, and records
    /// `parts` with the new length.
    async fn append(
        &self,
        upload: &Upload,
        state: &mut Option<HashState>,
        body: ByteStream,
        parts: LayerParts,
    ) -> Result<UploadStatus, RegistryError> {
        let key = self.upload_key(upload).await?;
        let mut hasher = match state.take() {
            Some(s) if s.length == upload.length => s.hasher,
            _ => self.rehash(upload, &key, DigestAlgorithm::Sha256).await?,
        };
        let result = self
            .blobs
            .append_upload(&upload.id, &key, upload.length, body, &mut hasher, self.settings.max_blob_bytes)
            .await;
        let (length, interrupted) = match result {
            Ok(length) => (length, None),
            // What arrived is kept and hashed, so the client may resume right after it.
            Err(berth_blob::BlobError::Interrupted { length, source }) => (length, Some(source)),
            Err(e) => {
                // The staged data no longer matches the acknowledged length: the upload is over.
                self.discard_upload(&upload.id).await;
                return Err(e.into());
            }
        };
        self.meta.advance_upload(&upload.id, upload.length, length, parts).await?;
        *state = Some(HashState { length, hasher });
        match interrupted {
            Some(e) => Err(RegistryError::BodyInterrupted(e.to_string())),
            None => Ok(UploadStatus { id: upload.id.clone(), length }),
        }
    }

    /// Rebuilds hash state by reading an upload's staged bytes.
    async fn rehash(
        &self,
        upload: &Upload,
        key: &DataKey,
        algorithm: DigestAlgorithm,
    ) -> Result<Hasher, RegistryError> {
        let mut hasher = Hasher::new(algorithm);
        let mut stream = self.blobs.read_upload(&upload.id, key, upload.length).await?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| RegistryError::Internal(format!("reading staged upload: {e}")))?;
            hasher.update(&chunk);
        }
        Ok(hasher)
    }

    pub async fn upload_status(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        id: &str,
    ) -> Result<UploadStatus, RegistryError> {
        let repository = self.authorized_repository(caller, Action::UploadLayerPart, repo).await?;
        let upload = self.upload_in(&repository, id).await?;
        Ok(UploadStatus { id: upload.id, length: upload.length })
    }

    /// Appends the final `body` (possibly empty), verifies `digest`, and stores the blob.
    pub async fn complete_upload(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        id: &str,
        digest: &Digest,
        range: Option<(u64, u64)>,
        body: Option<ByteStream>,
    ) -> Result<Digest, RegistryError> {
        let repository = self.authorized_repository(caller, Action::CompleteLayerUpload, repo).await?;
        self.finish_upload(&repository, id, digest, range, body, |_| Ok(())).await
    }

    /// Appends the final `body`, verifies `digest` and stores the blob, if `check` allows the
    /// upload as it stands under its lock.
    pub(crate) async fn finish_upload(
        &self,
        repository: &Repository,
        id: &str,
        digest: &Digest,
        range: Option<(u64, u64)>,
        body: Option<ByteStream>,
        check: impl FnOnce(&Upload) -> Result<(), RegistryError>,
    ) -> Result<Digest, RegistryError> {
        let slot = self.uploads.slot(id);
        let mut state = slot.lock().await;
        let mut upload = self.upload_in(repository, id).await?;
        check(&upload)?;
        if let Some(body) = body {
            check_start(range, upload.length)?;
            upload.length = self.append(&upload, &mut state, body, upload.parts).await?.length;
        }
        let key = self.upload_key(&upload).await?;
        let actual = match state.take() {
            Some(s) if s.length == upload.length && s.hasher.algorithm() == digest.algorithm() => {
                s.hasher.finish()
            }
            _ => self.rehash(&upload, &key, digest.algorithm()).await?.finish(),
        };
        if &actual != digest {
            // The upload stays, at its length, so the client can still finish it correctly.
            *state = None;
            return Err(RegistryError::DigestInvalid(format!(
                "the uploaded content has digest {actual}, not {digest}"
            )));
        }
        // Bytes already stored: readable under this repository's key before it holds them, so
        // that a failure (no usable key) leaves nothing linked and the upload open for a retry.
        if let Some(existing) = self.meta.get_blob(digest).await? {
            self.wrap_for(repository, &existing).await?;
        }
        // Wrapped afresh, with the key's newest version: a rotation since the upload began (and
        // its re-wrap, which never sees uploads) leaves no blob wrapped with an older one.
        let wrapped = self.wrap_key(&upload.key_id, &key).await?;
        let location = self.blobs.commit_upload(id).await?;
        let record = BlobRecord {
            digest: digest.clone(),
            size: upload.length,
            location: location.0.clone(),
            keys: vec![wrapped],
        };
        let commit = self.meta.commit_blob(repository.id, id, &record).await;
        drop(state);
        self.uploads.forget(id);
        let commit = match commit {
            Ok(commit) => commit,
            Err(e) => {
                // Not recorded: the stored file would be an orphan.
                if let Err(cleanup) = self.blobs.delete(&location).await {
                    tracing::warn!(error = %cleanup, "could not remove the file of an upload that was not recorded");
                }
                return Err(e.into());
            }
        };
        match commit {
            BlobCommit::Stored(_) => {}
            // The registry already held these bytes: keep one copy, readable under this
            // repository's key too.
            BlobCommit::AlreadyStored(stored) => {
                self.blobs.delete(&location).await?;
                self.wrap_for(repository, &stored).await?;
            }
        }
        self.activity.received(repository, upload.length);
        Ok(digest.clone())
    }

    /// Uploads a whole blob in one request (`POST ?digest=`).
    pub async fn upload_monolithic(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        digest: &Digest,
        body: ByteStream,
    ) -> Result<Digest, RegistryError> {
        let status = self.start_upload(caller, repo).await?;
        let result = self.complete_upload(caller, repo, &status.id, digest, None, Some(body)).await;
        if result.is_err() {
            self.discard_upload(&status.id).await;
        }
        result
    }

    async fn discard_upload(&self, id: &str) {
        self.uploads.forget(id);
        if let Err(e) = self.meta.delete_upload(id).await {
            tracing::warn!(upload = id, error = %e, "could not delete upload record");
        }
        if let Err(e) = self.blobs.abort_upload(id).await {
            tracing::warn!(upload = id, error = %e, "could not delete staged upload data");
        }
    }

    /// How many uploads nobody has written to for `max_age`.
    pub(crate) async fn stale_upload_count(
        &self,
        max_age: std::time::Duration,
    ) -> Result<usize, RegistryError> {
        let age = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
        Ok(self.meta.stale_uploads(self.now_millis().saturating_sub(age), u32::MAX).await?.len())
    }

    /// Ends uploads nobody has written to for `max_age`, with their staged data, in batches.
    /// Returns how many were removed.
    pub async fn expire_uploads(&self, max_age: std::time::Duration) -> Result<usize, RegistryError> {
        let age = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
        let before = self.now_millis().saturating_sub(age);
        let mut removed = 0;
        loop {
            let stale = self.meta.stale_uploads(before, 500).await?;
            if stale.is_empty() {
                return Ok(removed);
            }
            let mut removed_now = 0;
            for id in &stale {
                let slot = self.uploads.slot(id);
                // An upload being written right now is not abandoned: leave it.
                let Ok(_busy) = slot.try_lock() else { continue };
                self.discard_upload(id).await;
                removed_now += 1;
            }
            removed += removed_now;
            if stale.len() < 500 || removed_now == 0 {
                return Ok(removed);
            }
        }
    }

    pub async fn cancel_upload(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        id: &str,
    ) -> Result<(), RegistryError> {
        let repository = self.authorized_repository(caller, Action::UploadLayerPart, repo).await?;
        let slot = self.uploads.slot(id);
        let _state = slot.lock().await;
        self.upload_in(&repository, id).await?;
        self.discard_upload(id).await;
        Ok(())
    }

    /// The size of a blob the repository holds (HEAD), authorized as a layer-availability check.
    pub async fn blob_size(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        digest: &Digest,
    ) -> Result<u64, RegistryError> {
        let repository =
            self.authorized_repository(caller, Action::BatchCheckLayerAvailability, repo).await?;
        let blob = self.meta.repository_blob(repository.id, digest).await?;
        blob.map(|b| b.size).ok_or_else(|| RegistryError::BlobUnknown(digest.clone()))
    }

    /// A blob's bytes (GET), whole or the inclusive `range`.
    pub async fn read_blob(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        digest: &Digest,
        range: Option<(u64, u64)>,
    ) -> Result<BlobContent, RegistryError> {
        let repository = self.authorized_repository(caller, Action::GetDownloadUrlForLayer, repo).await?;
        let blob = self
            .meta
            .repository_blob(repository.id, digest)
            .await?
            .ok_or_else(|| RegistryError::BlobUnknown(digest.clone()))?;
        let body = self.open_blob(&repository, &blob, range).await?;
        let sent = range.map_or(blob.size, |(start, end)| end.saturating_sub(start).saturating_add(1));
        self.activity.sent(&repository, sent);
        Ok(BlobContent { digest: blob.digest, size: blob.size, body })
    }

    /// A stored blob's bytes as a reader in `repository` sees them.
    pub(crate) async fn open_blob(
        &self,
        repository: &Repository,
        blob: &BlobRecord,
        range: Option<(u64, u64)>,
    ) -> Result<ByteStream, RegistryError> {
        let key = self.blob_key(repository, blob).await?;
        Ok(self.blobs.read(&BlobLocation(blob.location.clone()), &key, blob.size, range).await?)
    }

    /// Removes a blob from a repository. Its bytes stay while any other repository holds them.
    pub async fn delete_blob(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        digest: &Digest,
    ) -> Result<(), RegistryError> {
        let repository = self.authorized_repository(caller, Action::BatchDeleteImage, repo).await?;
        if self.meta.unlink_blob(repository.id, digest).await? {
            Ok(())
        } else {
            Err(RegistryError::BlobUnknown(digest.clone()))
        }
    }
}

#[cfg(test)]
mod tests {

    #[tokio::test]
    async fn expiry_ends_every_abandoned_upload_however_many_batches_they_take() {
        let (registry, clock, _key, caller, _dir) =
            crate::tests::clocked_registry(std::time::SystemTime::now()).await;
        let repo = crate::tests::ecr_repository(&registry, &caller, "gc/many").await;
        for _ in 0..501 {
            registry.initiate_layer_upload(&caller, &repo).await.expect("upload");
        }
        clock.advance(std::time::Duration::from_secs(25 * 3600));
        let day = std::time::Duration::from_secs(24 * 3600);
        assert_eq!(registry.expire_uploads(day).await.expect("expire"), 501, "more than one batch");
        assert_eq!(registry.expire_uploads(day).await.expect("expire"), 0);
    }

    #[tokio::test]
    async fn expiry_ends_when_every_abandoned_upload_left_is_being_written() {
        let (registry, clock, _key, caller, _dir) =
            crate::tests::clocked_registry(std::time::SystemTime::now()).await;
        let repo = crate::tests::ecr_repository(&registry, &caller, "gc/busy").await;
        // A full batch of abandoned uploads, every one of them held by a writer right now.
        let mut ids = Vec::new();
        for _ in 0..500 {
            ids.push(registry.initiate_layer_upload(&caller, &repo).await.expect("upload").id);
        }
        clock.advance(std::time::Duration::from_secs(25 * 3600));
        let slots: Vec<_> = ids.iter().map(|id| registry.uploads.slot(id)).collect();
        let mut writers = Vec::new();
        for slot in &slots {
            writers.push(slot.lock().await);
        }
        let pass = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            registry.expire_uploads(std::time::Duration::from_secs(24 * 3600)),
        );
        let removed = pass.await.expect("the pass ends instead of looking at the same busy batch forever");
        assert_eq!(removed.expect("expire"), 0, "an upload being written is not abandoned");
        drop(writers);
        assert_eq!(
            registry.expire_uploads(std::time::Duration::from_secs(24 * 3600)).await.expect("expire"),
            500
        );
    }

    use super::*;

    #[test]
    fn tracked_uploads_stay_bounded_and_a_busy_upload_keeps_its_lock() {
        let states = UploadStates::default();
        let busy = states.slot("busy");
        let tracked = || states.states.lock().map(|s| s.len()).unwrap_or(usize::MAX);
        for n in 0..MAX_TRACKED_UPLOADS - 1 {
            drop(states.slot(&format!("idle-{n}")));
        }
        assert_eq!(tracked(), MAX_TRACKED_UPLOADS, "below the bound, idle uploads keep their state");
        drop(states.slot("one-more"));
        assert!(tracked() <= 2, "at the bound, idle uploads are forgotten: {}", tracked());
        assert!(
            Arc::ptr_eq(&busy, &states.slot("busy")),
            "an upload in use keeps its lock through the pruning"
        );
        for n in 0..3 * MAX_TRACKED_UPLOADS {
            drop(states.slot(&format!("more-{n}")));
            assert!(tracked() <= MAX_TRACKED_UPLOADS, "{} tracked", tracked());
        }
    }
}

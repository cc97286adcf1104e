//! Which key guards what. Every blob and upload is sealed under its own data key; that data key
//! is wrapped under the key-encryption key of each repository holding the blob: the registry's
//! own key for `AES256` repositories, the repository's customer key (a key ARN) for `KMS`. A
//! reader unwraps only the wrap under its repository's key, so a disabled customer key cuts off
//! exactly the repositories it guards, and the bytes are stored once however many keys guard them.

use berth_core::EncryptionType;
use berth_kms::{DataKey, KmsError};
use berth_meta::{BlobRecord, Repository, WrappedKey};

use crate::{Registry, RegistryError};

/// Wraps renewed per step of a re-wrap job (each step is one claim of the job, so a long
/// re-wrap never holds the worker from other jobs for long).
const REWRAP_BATCH: u32 = 200;

impl Registry {
    /// The key-encryption key guarding `repository`'s content: its customer key for `KMS`
    /// (recorded as a key ARN at creation), else the registry's own.
    pub(crate) fn guarding_key(&self, repository: &Repository) -> String {
        match (repository.settings.encryption, &repository.settings.kms_key) {
            (EncryptionType::Kms | EncryptionType::KmsDsse, Some(arn)) => arn.clone(),
            _ => self.kms.key_id().to_owned(),
        }
    }

    /// Wraps `key` under `key_id` (the registry's key or a customer key).
    pub(crate) async fn wrap_key(&self, key_id: &str, key: &DataKey) -> Result<WrappedKey, RegistryError> {
        let wrapped = if key_id == self.kms.key_id() {
            self.kms.wrap(key).await?
        } else {
            self.keys.wrap(key_id, key).await.map_err(|e| key_failure(key_id, e))?
        };
        Ok(WrappedKey { key_id: key_id.to_owned(), wrapped })
    }

    /// Opens a wrapped data key with the key that wrapped it.
    pub(crate) async fn unwrap_key(&self, key: &WrappedKey) -> Result<DataKey, RegistryError> {
        if key.key_id == self.kms.key_id() {
            Ok(self.kms.unwrap(&key.wrapped).await?)
        } else {
            self.keys.unwrap(&key.key_id, &key.wrapped).await.map_err(|e| key_failure(&key.key_id, e))
        }
    }

    /// A fresh data key for content of `repository`, and it wrapped under the repository's key.
    pub(crate) async fn new_data_key(
        &self,
        repository: &Repository,
    ) -> Result<(DataKey, WrappedKey), RegistryError> {
        let key = DataKey::generate()?;
        let wrapped = self.wrap_key(&self.guarding_key(repository), &key).await?;
        Ok((key, wrapped))
    }

    /// The data key of a stored blob, as a reader in `repository` opens it: only through the
    /// wrap under the repository's own key.
    pub(crate) async fn blob_key(
        &self,
        repository: &Repository,
        blob: &BlobRecord,
    ) -> Result<DataKey, RegistryError> {
        let guarding = self.guarding_key(repository);
        let wrapped = blob.wrapped_under(&guarding).ok_or_else(|| {
            RegistryError::Internal(format!(
                "blob {} held by repository {} has no data key wrapped under its key {guarding}",
                blob.digest, repository.name
            ))
        })?;
        self.unwrap_key(wrapped).await
    }

    /// Makes a stored blob of `source` readable in `target` (a mount): its data key, opened
    /// through the source repository's key, wrapped under the target's, unless it is already.
    pub(crate) async fn wrap_from(
        &self,
        source: &Repository,
        target: &Repository,
        blob: &BlobRecord,
    ) -> Result<(), RegistryError> {
        // Opened even when the target's key already has a wrap: the mount reads the source, and
        // a source whose key is off must not lend its content.
        let key = self.blob_key(source, blob).await?;
        let guarding = self.guarding_key(target);
        if self.still_wrapped_under(blob, &guarding).await? {
            return Ok(());
        }
        let rewrapped = self.wrap_key(&guarding, &key).await?;
        self.add_wrap(blob, &rewrapped).await
    }

    /// Whether `blob` has a wrap under `key_id`, marked as needed now so that garbage collection
    /// does not drop it before the repository taking the blob is recorded as holding it.
    async fn still_wrapped_under(&self, blob: &BlobRecord, key_id: &str) -> Result<bool, RegistryError> {
        Ok(blob.wrapped_under(key_id).is_some() && self.meta.touch_blob_key(&blob.digest, key_id).await?)
    }

    /// Records a wrap of `blob`'s data key, only while the stored copy is the one it opens (the
    /// digest may have been collected and stored anew, under another data key, meanwhile).
    async fn add_wrap(&self, blob: &BlobRecord, wrap: &WrappedKey) -> Result<(), RegistryError> {
        if self.meta.add_blob_key(&blob.digest, &blob.location, wrap).await? {
            Ok(())
        } else {
            Err(RegistryError::BlobUnknown(blob.digest.clone()))
        }
    }

    /// Makes a stored blob readable in `repository` (it took the blob by a push of bytes already
    /// stored, a mount, or a manifest): wraps the blob's data key under the repository's key
    /// unless it is already. The data key is recovered through any wrap whose key is usable;
    /// the blob's bytes are never written again.
    pub(crate) async fn wrap_for(
        &self,
        repository: &Repository,
        blob: &BlobRecord,
    ) -> Result<(), RegistryError> {
        let guarding = self.guarding_key(repository);
        if self.still_wrapped_under(blob, &guarding).await? {
            return Ok(());
        }
        let mut failure = None;
        // The registry's own wrap first: it needs no call to a key service.
        let mut wraps: Vec<&WrappedKey> = blob.keys.iter().collect();
        wraps.sort_by_key(|w| w.key_id != self.kms.key_id());
        for wrapped in wraps {
            match self.unwrap_key(wrapped).await {
                Ok(key) => {
                    let rewrapped = self.wrap_key(&guarding, &key).await?;
                    return self.add_wrap(blob, &rewrapped).await;
                }
                Err(e) => failure = Some(e),
            }
        }
        // Which other keys guard the content is not the caller's business; the log names them.
        tracing::warn!(blob = %blob.digest, error = ?failure, "no key that guards a stored blob could open its data key");
        Err(RegistryError::KeyFailure {
            message: format!(
                "the content {} is stored under keys that are not available now; try again later",
                blob.digest
            ),
            kms_error: "KMSInvalidStateException".to_owned(),
        })
    }
}

impl Registry {
    /// One step of the re-wrap after `key_id` was rotated: the next batch of data keys wrapped
    /// under it are wrapped again with its newest version (a wrap that changed meanwhile is left
    /// as it is). The blobs' bytes are untouched. True once every wrap has been renewed.
    pub(crate) async fn rewrap_step(&self, key_id: &str) -> Result<bool, RegistryError> {
        let Some(progress) = self.meta.key_rewrap(key_id).await? else { return Ok(true) };
        if progress.finished_at.is_some() {
            return Ok(true);
        }
        let wraps = self.meta.key_wraps(key_id, progress.after.as_ref(), REWRAP_BATCH).await?;
        let mut rewrapped = 0;
        for (digest, wrapped) in &wraps {
            let key =
                self.unwrap_key(&WrappedKey { key_id: key_id.to_owned(), wrapped: wrapped.clone() }).await?;
            let fresh = self.wrap_key(key_id, &key).await?;
            if self.meta.replace_blob_key(digest, key_id, wrapped, &fresh.wrapped).await? {
                rewrapped += 1;
            }
        }
        let finished = wraps.len() < REWRAP_BATCH as usize;
        let after = wraps.last().map(|(digest, _)| digest).or(progress.after.as_ref());
        let finished_at = finished.then(|| self.now_millis());
        self.meta.advance_key_rewrap(key_id, progress.requested_at, after, rewrapped, finished_at).await?;
        Ok(finished)
    }
}

/// A customer key that failed: logged with the key's name, and answered as ECR answers it.
fn key_failure(key_id: &str, e: KmsError) -> RegistryError {
    match e {
        KmsError::KeyNotFound(_)
        | KmsError::KeyDisabled(_)
        | KmsError::KeyAccessDenied(_)
        | KmsError::Unavailable(_)
        | KmsError::InvalidKeyName(_) => {
            tracing::warn!(key = key_id, error = %e, "a customer key could not be used");
            RegistryError::KeyFailure { kms_error: e.kms_error().to_owned(), message: e.to_string() }
        }
        other => RegistryError::Internal(format!("key {key_id}: {other}")),
    }
}

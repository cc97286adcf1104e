//! Manifests and tags: push, pull, discovery (tag lists, referrers, catalog) and deletion.

use std::collections::BTreeMap;

use berth_blob::{ByteStream, Hasher};
use berth_core::{Digest, DigestAlgorithm, Manifest, Reference, Tag};
use berth_iam::Action;
use berth_meta::{BlobRecord, ManifestRecord, MetaError, NewManifest, Page, Repository, Upload, now_millis};
use futures_util::StreamExt;

use crate::limits::MAX_TAGS_PER_IMAGE;
use crate::{Caller, Registry, RegistryError, RepoPath};

/// A manifest's bytes and what is known of them.
pub struct ManifestContent {
    pub record: ManifestRecord,
    pub bytes: bytes::Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutManifestOutcome {
    pub digest: Digest,
    pub subject: Option<Digest>,
}

/// One entry of a referrers listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrer {
    pub record: ManifestRecord,
    pub annotations: BTreeMap<String, String>,
}

/// Context under which manifest annotations are sealed.
const ANNOTATIONS_CONTEXT: &str = "manifest-annotations";

/// Whether an `Accept` list admits `media_type`. No list, or a wildcard, admits everything.
fn accepts(accept: &[String], media_type: &str) -> bool {
    accept.is_empty()
        || accept.iter().any(|a| {
            let a = a.split(';').next().unwrap_or(a).trim();
            a == media_type || a == "*/*" || a == "application/*" || a.is_empty()
        })
}

impl Registry {
    async fn find_manifest(
        &self,
        repository: &Repository,
        reference: &Reference,
    ) -> Result<ManifestRecord, RegistryError> {
        let found = match reference {
            Reference::Tag(tag) => self.meta.resolve_tag(repository.id, tag).await?,
            Reference::Digest(digest) => self.meta.get_manifest(repository.id, digest).await?,
        };
        found.ok_or_else(|| RegistryError::ManifestUnknown(format!("{reference} is not in this repository")))
    }

    /// The repository and the manifest a reference names, refused if `accept` excludes its
    /// media type.
    async fn find_accepted(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        reference: &Reference,
        accept: &[String],
    ) -> Result<(Repository, ManifestRecord), RegistryError> {
        let repository = self.authorized_repository(caller, Action::BatchGetImage, repo).await?;
        let record = self.find_manifest(&repository, reference).await?;
        if !accepts(accept, &record.media_type) {
            return Err(RegistryError::ManifestUnknown(format!(
                "{reference} is a {} and the request does not accept that media type",
                record.media_type
            )));
        }
        Ok((repository, record))
    }

    /// A manifest's metadata (HEAD), refused if `accept` excludes its media type.
    pub async fn head_manifest(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        reference: &Reference,
        accept: &[String],
    ) -> Result<ManifestRecord, RegistryError> {
        Ok(self.find_accepted(caller, repo, reference, accept).await?.1)
    }

    /// A manifest's bytes (GET); counts as a pull of the image.
    pub async fn get_manifest(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        reference: &Reference,
        accept: &[String],
    ) -> Result<ManifestContent, RegistryError> {
        let (repository, record) = self.find_accepted(caller, repo, reference, accept).await?;
        let bytes = self.manifest_bytes(&record).await?;
        self.pulls.note(self.meta.as_ref(), repository.id, &record.digest).await;
        Ok(ManifestContent { record, bytes })
    }

    /// A manifest's bytes: from the cache, or read and decrypted from storage.
    pub(crate) async fn manifest_bytes(
        &self,
        record: &ManifestRecord,
    ) -> Result<bytes::Bytes, RegistryError> {
        if let Some(bytes) = self.manifests.get(&record.digest) {
            return Ok(bytes);
        }
        let bytes = self.read_manifest(record).await?;
        self.manifests.insert(&record.digest, &bytes);
        Ok(bytes)
    }

    async fn read_manifest(&self, record: &ManifestRecord) -> Result<bytes::Bytes, RegistryError> {
        let blob = self.meta.get_blob(&record.digest).await?.ok_or_else(|| {
            RegistryError::Internal(format!("content of manifest {} is missing", record.digest))
        })?;
        let mut stream = self.open_blob(&blob, None).await?;
        let mut bytes = Vec::with_capacity(usize::try_from(blob.size).unwrap_or(0));
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(&chunk.map_err(|e| RegistryError::Internal(e.to_string()))?);
        }
        Ok(bytes.into())
    }

    /// Stores a manifest under a tag or its digest, after checking that it parses, that its
    /// digest matches a digest reference, and that the repository holds everything it names.
    pub async fn put_manifest(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        reference: &Reference,
        content_type: Option<&str>,
        bytes: bytes::Bytes,
    ) -> Result<PutManifestOutcome, RegistryError> {
        let existing = self.authorize_on(caller, Action::PutImage, repo).await?;
        let manifest = Manifest::parse(&bytes, content_type).map_err(RegistryError::ManifestInvalid)?;
        let (digest, tag) = match reference {
            Reference::Digest(expected) => {
                let actual = Hasher::digest_of(expected.algorithm(), &bytes);
                if &actual != expected {
                    return Err(RegistryError::DigestInvalid(format!(
                        "the manifest has digest {actual}, not {expected}"
                    )));
                }
                (actual, None)
            }
            Reference::Tag(tag) => (Hasher::digest_of(DigestAlgorithm::Sha256, &bytes), Some(tag)),
        };
        let repository = match existing {
            Some(repository) => repository,
            None => self.ensure_repository(repo).await?,
        };
        let (content, fresh) = self.store_manifest_bytes(&repository, &digest, bytes.clone()).await?;
        let record = ManifestRecord {
            digest: digest.clone(),
            media_type: manifest.media_type.clone(),
            artifact_type: manifest.artifact_type.clone(),
            size: bytes.len() as u64,
            subject: manifest.subject.as_ref().map(|s| s.digest.clone()),
            sealed_annotations: self.seal_annotations(&manifest.annotations).await?,
            pushed_at: now_millis(),
            image_size: self.image_size(&repository, &manifest).await?,
            last_pulled_at: None,
        };
        let new = NewManifest {
            record,
            content: content.clone(),
            blobs: manifest.required_blobs().map(|d| d.digest.clone()).collect(),
            manifests: manifest.manifests.iter().map(|d| d.digest.clone()).collect(),
        };
        let tag_may_move = tag.is_none_or(|t| repository.settings.tag_may_move(t.as_str()));
        let stored = self.meta.put_manifest(repository.id, &new, tag, tag_may_move, MAX_TAGS_PER_IMAGE).await;
        if fresh && !matches!(stored, Ok(true)) {
            // The content was not recorded (refused, or stored concurrently): drop our copy.
            self.blobs.delete(&berth_blob::BlobLocation(content.location)).await?;
        }
        stored.map_err(|e| match (e, tag) {
            (MetaError::AlreadyExists(_), Some(tag)) => RegistryError::TagImmutable(format!(
                "The image tag '{tag}' already exists in the '{}' repository and cannot be overwritten because the \
                 repository is immutable.",
                repo.name
            )),
            (MetaError::LimitExceeded(_), Some(tag)) => RegistryError::LimitExceeded(format!(
                "The image {digest} in the repository with name '{}' already has {MAX_TAGS_PER_IMAGE} tags, the \
                 most an image can have, so the tag '{tag}' was not added",
                repo.name
            )),
            (other, _) => other.into(),
        })?;
        Ok(PutManifestOutcome { digest, subject: new.record.subject })
    }

    /// ECR's image size: config plus layers of an image; the largest child of an index.
    async fn image_size(&self, repository: &Repository, manifest: &Manifest) -> Result<u64, RegistryError> {
        if manifest.kind == berth_core::ManifestKind::Image {
            return Ok(manifest.config.iter().chain(&manifest.layers).map(|d| d.size).sum());
        }
        let mut largest = 0;
        for child in &manifest.manifests {
            // A missing child is refused by the transaction that records the index.
            if let Some(record) = self.meta.get_manifest(repository.id, &child.digest).await? {
                largest = largest.max(record.image_size);
            }
        }
        Ok(largest)
    }

    /// Writes a manifest's bytes as an encrypted blob unless the registry holds them already;
    /// the flag says whether this call wrote them.
    async fn store_manifest_bytes(
        &self,
        repository: &Repository,
        digest: &Digest,
        bytes: bytes::Bytes,
    ) -> Result<(BlobRecord, bool), RegistryError> {
        if let Some(existing) = self.meta.get_blob(digest).await? {
            return Ok((existing, false));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let key = berth_kms::DataKey::generate()?;
        let upload = Upload {
            id: id.clone(),
            repository_id: repository.id,
            length: 0,
            key_id: self.kms.key_id().to_owned(),
            wrapped_key: self.kms.wrap(&key).await?,
            created_at: now_millis(),
            parts: berth_meta::LayerParts::default(),
        };
        self.blobs.begin_upload(&id).await?;
        let size = bytes.len() as u64;
        let body: ByteStream = Box::pin(futures_util::stream::once(async move { Ok(bytes) }));
        let mut hasher = Hasher::new(digest.algorithm());
        let written = self.blobs.append_upload(&id, &key, 0, body, &mut hasher, u64::MAX).await;
        let location = match written {
            Ok(_) => self.blobs.commit_upload(&id).await,
            Err(e) => Err(e),
        };
        let location = match location {
            Ok(location) => location,
            Err(e) => {
                let _ = self.blobs.abort_upload(&id).await;
                return Err(e.into());
            }
        };
        let record = BlobRecord {
            digest: digest.clone(),
            size,
            location: location.0,
            key_id: upload.key_id,
            wrapped_key: upload.wrapped_key,
        };
        Ok((record, true))
    }

    /// Tags in lexical order, at most `limit`, after `last`.
    pub async fn list_tags(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        last: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, RegistryError> {
        let repository = self.authorized_repository(caller, Action::ListImages, repo).await?;
        Ok(self.meta.list_tags(repository.id, Page { last, limit }).await?)
    }

    /// Manifests that name `subject`, optionally only those of `artifact_type`.
    pub async fn referrers(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>, RegistryError> {
        let repository = self.authorized_repository(caller, Action::BatchGetImage, repo).await?;
        let all = self.meta.referrers(repository.id, subject).await?;
        let mut out = Vec::new();
        for record in all {
            if artifact_type.is_some_and(|t| record.artifact_type.as_deref() != Some(t)) {
                continue;
            }
            let annotations = self.open_annotations(&record.sealed_annotations).await?;
            out.push(Referrer { record, annotations });
        }
        Ok(out)
    }

    async fn seal_annotations(
        &self,
        annotations: &BTreeMap<String, String>,
    ) -> Result<Vec<u8>, RegistryError> {
        if annotations.is_empty() {
            return Ok(Vec::new());
        }
        let json = serde_json::to_vec(annotations).map_err(|e| RegistryError::Internal(e.to_string()))?;
        Ok(self.kms.seal(&json, ANNOTATIONS_CONTEXT).await?)
    }

    async fn open_annotations(&self, sealed: &[u8]) -> Result<BTreeMap<String, String>, RegistryError> {
        if sealed.is_empty() {
            return Ok(BTreeMap::new());
        }
        let json = self.kms.open(sealed, ANNOTATIONS_CONTEXT).await?;
        serde_json::from_slice(&json).map_err(|e| RegistryError::Internal(format!("stored annotations: {e}")))
    }

    /// Repositories the caller may describe, as `<account>/<name>`, in lexical order.
    pub async fn catalog(
        &self,
        caller: &Caller,
        last: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, RegistryError> {
        let mut accounts = Vec::new();
        for account in self.visible_accounts(caller) {
            let every_repository = format!("arn:aws:ecr:{}:{account}:repository/*", self.settings.region);
            if self
                .check_resource(caller, Action::DescribeRepositories, &account, &every_repository)
                .await
                .is_ok()
            {
                accounts.push(account);
            }
        }
        let repositories = self.meta.list_repositories(&accounts, Page { last, limit }).await?;
        Ok(repositories.iter().map(|r| format!("{}/{}", r.account_id, r.name)).collect())
    }

    /// Deletes a manifest by digest, with every tag that points at it.
    pub async fn delete_manifest(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        digest: &Digest,
    ) -> Result<(), RegistryError> {
        let repository = self.authorized_repository(caller, Action::BatchDeleteImage, repo).await?;
        if self.meta.delete_manifest(repository.id, digest).await? {
            Ok(())
        } else {
            Err(RegistryError::ManifestUnknown(format!("{digest} is not in this repository")))
        }
    }

    /// Deletes a tag; the manifest it pointed at stays.
    pub async fn delete_tag(&self, caller: &Caller, repo: &RepoPath, tag: &Tag) -> Result<(), RegistryError> {
        let repository = self.authorized_repository(caller, Action::BatchDeleteImage, repo).await?;
        if self.meta.delete_tag(repository.id, tag).await? {
            Ok(())
        } else {
            Err(RegistryError::ManifestUnknown(format!("tag {tag} is not in this repository")))
        }
    }
}

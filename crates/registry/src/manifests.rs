//! Manifests and tags: push, pull, discovery (tag lists, referrers, catalog) and deletion.

use std::collections::BTreeMap;

use berth_blob::{ByteStream, Hasher};
use berth_core::{Descriptor, Digest, DigestAlgorithm, InvalidInput, Manifest, Reference, StorageClass, Tag};
use berth_iam::Action;
use berth_meta::{
    BlobRecord, HeldContent, ManifestDeletion, ManifestRecord, MetaError, NewManifest, Page, Repository,
    now_millis,
};
use futures_util::StreamExt;

use crate::limits::MAX_TAGS_PER_IMAGE;
use crate::uploads::CreateOnPush;
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

/// A push's permission to store a manifest, given before its body is read.
#[derive(Debug)]
pub struct ManifestPush {
    repo: RepoPath,
    target: PushTarget,
}

#[derive(Debug)]
enum PushTarget {
    Existing(Repository),
    /// The push may create the repository, once its manifest has been found valid.
    Create(Box<CreateOnPush>),
}

impl ManifestPush {
    /// A push into a repository an authorization has just returned.
    pub(crate) fn into_existing(repo: &RepoPath, repository: Repository) -> Self {
        Self { repo: repo.clone(), target: PushTarget::Existing(repository) }
    }
}

/// Manifests up to this size are parsed where they arrive; larger ones on a blocking thread.
const INLINE_PARSE_BYTES: usize = 64 * 1024;

/// Large manifests parsed at once: as many as there are cores to spare for it (two).
static LARGE_PARSES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// The manifest and its digest, if it parses, names no more than `max_references` pieces of
/// content, and has the digest a digest reference says.
fn parse_and_digest(
    bytes: &[u8],
    content_type: Option<&str>,
    reference: &Reference,
    max_references: usize,
) -> Result<(Manifest, Digest), RegistryError> {
    let manifest = Manifest::parse(bytes, content_type).map_err(RegistryError::ManifestInvalid)?;
    let references =
        manifest.layers.len() + manifest.manifests.len() + usize::from(manifest.config.is_some());
    if references > max_references {
        return Err(RegistryError::ManifestInvalid(InvalidInput::new(
            "manifest",
            format!(
                "it names {references} layers, configs and manifests; this registry accepts at most \
                 {max_references} (limits.max_manifest_references)"
            ),
        )));
    }
    let digest = match reference {
        Reference::Digest(expected) => {
            let actual = Hasher::digest_of(expected.algorithm(), bytes);
            if &actual != expected {
                return Err(RegistryError::DigestInvalid(format!(
                    "the manifest has digest {actual}, not {expected}"
                )));
            }
            actual
        }
        Reference::Tag(_) => Hasher::digest_of(DigestAlgorithm::Sha256, bytes),
    };
    Ok((manifest, digest))
}

/// ECR's image size (config plus layers of an image; the largest child of an index), after
/// checking that every descriptor the repository must hold is held at the size it declares, so
/// that no declared size can make the sum wrap or lie.
fn checked_image_size(manifest: &Manifest, held: &HeldContent) -> Result<u64, RegistryError> {
    let wrong_size = |d: &Descriptor, actual: u64| {
        RegistryError::ManifestInvalid(InvalidInput::new(
            "manifest",
            format!(
                "the descriptor of {} says {} bytes, but the repository holds it at {actual} bytes",
                d.digest, d.size
            ),
        ))
    };
    let mut missing_blobs = Vec::new();
    for d in manifest.required_blobs() {
        match held.blobs.get(&d.digest) {
            Some(&actual) if actual != d.size => return Err(wrong_size(d, actual)),
            Some(_) => {}
            None => missing_blobs.push(d.digest.clone()),
        }
    }
    let mut missing_manifests = Vec::new();
    let mut largest_child = 0;
    for d in &manifest.manifests {
        match held.manifests.get(&d.digest) {
            Some(child) if child.size != d.size => return Err(wrong_size(d, child.size)),
            Some(child) => largest_child = largest_child.max(child.image_size),
            None => missing_manifests.push(d.digest.clone()),
        }
    }
    if !missing_blobs.is_empty() || !missing_manifests.is_empty() {
        for missing in [&mut missing_blobs, &mut missing_manifests] {
            missing.sort_unstable();
            missing.dedup();
        }
        return Err(RegistryError::ManifestBlobUnknown {
            blobs: missing_blobs,
            manifests: missing_manifests,
        });
    }
    if manifest.kind == berth_core::ManifestKind::Index {
        return Ok(largest_child);
    }
    manifest
        .config
        .iter()
        .chain(&manifest.layers)
        .try_fold(0u64, |sum, d| sum.checked_add(d.size))
        .ok_or_else(|| {
            RegistryError::ManifestInvalid(InvalidInput::new(
                "manifest",
                "its layer sizes add up past 2^64 bytes",
            ))
        })
}

/// Whether an `Accept` list admits `media_type`. No list, or a wildcard, admits everything.
fn accepts(accept: &[String], media_type: &str) -> bool {
    accept.is_empty()
        || accept.iter().any(|a| {
            let a = a.split(';').next().unwrap_or(a).trim();
            a == media_type || a == "*/*" || a == "application/*" || a.is_empty()
        })
}

/// The refusal to serve an archived image.
pub(crate) fn archived(digest: &Digest) -> RegistryError {
    RegistryError::ImageArchived(format!(
        "the image {digest} is archived; restore it (UpdateImageStorageClass to STANDARD, or push it again) to pull it"
    ))
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
        let record = found.ok_or_else(|| {
            RegistryError::ManifestUnknown(format!("{reference} is not in this repository"))
        })?;
        if record.storage_class == StorageClass::Archive {
            return Err(archived(&record.digest));
        }
        Ok(record)
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
        let bytes = self.manifest_bytes(&repository, &record).await?;
        self.pulls.note(self.meta.as_ref(), repository.id, &record.digest).await;
        self.activity.pulled(&repository);
        Ok(ManifestContent { record, bytes })
    }

    /// A manifest's bytes as a reader in `repository` sees them: from the cache, or read and
    /// decrypted from storage. Only content under the registry's own key is cached: a customer
    /// key's repository reads through its key each time, so that disabling the key cuts it off.
    pub(crate) async fn manifest_bytes(
        &self,
        repository: &Repository,
        record: &ManifestRecord,
    ) -> Result<bytes::Bytes, RegistryError> {
        let cacheable = self.guarding_key(repository) == self.kms.key_id();
        if cacheable && let Some(bytes) = self.manifests.get(&record.digest) {
            return Ok(bytes);
        }
        let bytes = self.read_manifest(repository, record).await?;
        if cacheable {
            self.manifests.insert(&record.digest, &bytes);
        }
        Ok(bytes)
    }

    async fn read_manifest(
        &self,
        repository: &Repository,
        record: &ManifestRecord,
    ) -> Result<bytes::Bytes, RegistryError> {
        let blob = self.meta.get_blob(&record.digest).await?.ok_or_else(|| {
            RegistryError::Internal(format!("content of manifest {} is missing", record.digest))
        })?;
        let mut stream = self.open_blob(repository, &blob, None).await?;
        let mut bytes = Vec::with_capacity(usize::try_from(blob.size).unwrap_or(0));
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(&chunk.map_err(|e| RegistryError::Internal(e.to_string()))?);
        }
        Ok(bytes.into())
    }

    /// Authorizes a manifest push (`ecr:PutImage`, and `ecr:CreateRepository` when the push
    /// would create the repository) before its body is read.
    pub async fn authorize_manifest_push(
        &self,
        caller: &Caller,
        repo: &RepoPath,
    ) -> Result<ManifestPush, RegistryError> {
        let target = match self.authorize_on(caller, Action::PutImage, repo).await? {
            Some(repository) => PushTarget::Existing(repository),
            None => PushTarget::Create(Box::new(self.authorize_create_on_push(caller, repo).await?)),
        };
        Ok(ManifestPush { repo: repo.clone(), target })
    }

    /// Stores a manifest under a tag or its digest, after checking that it parses, that its
    /// digest matches a digest reference, and that the repository holds everything it names,
    /// at the sizes it says.
    pub async fn put_manifest(
        &self,
        push: ManifestPush,
        reference: &Reference,
        content_type: Option<&str>,
        bytes: bytes::Bytes,
    ) -> Result<PutManifestOutcome, RegistryError> {
        let (manifest, digest) = self.parse_pushed(&bytes, content_type, reference).await?;
        let tag = match reference {
            Reference::Tag(tag) => Some(tag),
            Reference::Digest(_) => None,
        };
        let repo = &push.repo;
        let repository = match push.target {
            PushTarget::Existing(repository) => repository,
            PushTarget::Create(creation) => self.create_on_push(repo, *creation).await?,
        };
        let blobs: Vec<Digest> = manifest.required_blobs().map(|d| d.digest.clone()).collect();
        let children: Vec<Digest> = manifest.manifests.iter().map(|d| d.digest.clone()).collect();
        let held = self.meta.held_content(repository.id, &blobs, &children).await?;
        let image_size = checked_image_size(&manifest, &held)?;
        let record = ManifestRecord {
            digest: digest.clone(),
            media_type: manifest.media_type.clone(),
            artifact_type: manifest.artifact_type.clone(),
            size: bytes.len() as u64,
            subject: manifest.subject.as_ref().map(|s| s.digest.clone()),
            pushed_at: now_millis(),
            image_size,
            last_pulled_at: None,
            storage_class: berth_core::StorageClass::Standard,
            last_archived_at: None,
            last_activated_at: None,
        };
        let subject = record.subject.clone();
        let tag_may_move = tag.is_none_or(|t| repository.settings.tag_may_move(t.as_str()));
        let (content, fresh) = self.store_manifest_bytes(&repository, &digest, bytes.clone(), true).await?;
        let mut new = NewManifest { record, content, content_written: fresh, blobs, manifests: children };
        let stored = loop {
            let stored =
                self.meta.put_manifest(repository.id, &new, tag, tag_may_move, MAX_TAGS_PER_IMAGE).await;
            if new.content_written && !matches!(stored, Ok(true)) {
                // The content was not recorded (refused, or stored concurrently): drop our copy.
                self.blobs.delete(&berth_blob::BlobLocation(new.content.location.clone())).await?;
            }
            match stored {
                // The stored copy was collected as garbage between the look-up and the commit:
                // write the bytes after all.
                Err(MetaError::NotFound(_)) if !new.content_written => {
                    (new.content, new.content_written) =
                        self.store_manifest_bytes(&repository, &digest, bytes.clone(), false).await?;
                }
                other => break other,
            }
        };
        // Stored concurrently by a repository under another key: our copy was dropped, so the
        // stored one must open under ours.
        if matches!(stored, Ok(false))
            && new.content_written
            && let Some(existing) = self.meta.get_blob(&digest).await?
        {
            self.wrap_for(&repository, &existing).await?;
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
        self.activity.pushed(&repository);
        // Scan on push: a new image of a repository that asks for it, or that a registry rule
        // names (a re-push does not rescan).
        if self.scans_on_push(&repository).await?
            && self.meta.image_scan(repository.id, &digest).await?.is_none()
        {
            self.schedule_scan(&repository, &digest).await?;
        }
        Ok(PutManifestOutcome { digest, subject })
    }

    /// Parses a pushed manifest, holds it to the reference limit and computes its digest
    /// (checked against a digest reference). A large manifest is parsed on a blocking thread, a
    /// few at a time, so that one tenant's largest pushes cannot occupy the threads every other
    /// request is served on.
    async fn parse_pushed(
        &self,
        bytes: &bytes::Bytes,
        content_type: Option<&str>,
        reference: &Reference,
    ) -> Result<(Manifest, Digest), RegistryError> {
        let max_references = self.settings.max_manifest_references;
        if bytes.len() <= INLINE_PARSE_BYTES {
            return parse_and_digest(bytes, content_type, reference, max_references);
        }
        let _slot = LARGE_PARSES.acquire().await.map_err(|e| RegistryError::Internal(e.to_string()))?;
        let (bytes, content_type, reference) =
            (bytes.clone(), content_type.map(str::to_owned), reference.clone());
        tokio::task::spawn_blocking(move || {
            parse_and_digest(&bytes, content_type.as_deref(), &reference, max_references)
        })
        .await
        .map_err(|e| RegistryError::Internal(format!("manifest parsing stopped: {e}")))?
    }

    /// Writes a manifest's bytes as an encrypted blob unless the registry holds them already;
    /// the flag says whether this call wrote them.
    async fn store_manifest_bytes(
        &self,
        repository: &Repository,
        digest: &Digest,
        bytes: bytes::Bytes,
        reuse_stored: bool,
    ) -> Result<(BlobRecord, bool), RegistryError> {
        if reuse_stored && let Some(existing) = self.meta.get_blob(digest).await? {
            // Readable under this repository's key before the repository holds it.
            self.wrap_for(repository, &existing).await?;
            return Ok((existing, false));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let (key, wrapped) = self.new_data_key(repository).await?;
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
        let record = BlobRecord { digest: digest.clone(), size, location: location.0, keys: vec![wrapped] };
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
            // Annotations are read from the referrer itself (usually a small, cached manifest).
            let bytes = self.manifest_bytes(&repository, &record).await?;
            let annotations =
                Manifest::parse(&bytes, Some(&record.media_type)).map(|m| m.annotations).map_err(|e| {
                    RegistryError::Internal(format!("stored manifest {} does not parse: {e}", record.digest))
                })?;
            out.push(Referrer { record, annotations });
        }
        Ok(out)
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
        match self.meta.delete_manifest(repository.id, digest).await? {
            ManifestDeletion::Deleted => Ok(()),
            ManifestDeletion::NotFound => {
                Err(RegistryError::ManifestUnknown(format!("{digest} is not in this repository")))
            }
            ManifestDeletion::ListedBy(index) => {
                Err(RegistryError::ListedByIndex { digest: digest.clone(), index })
            }
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

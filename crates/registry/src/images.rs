//! Images as the ECR API sees them: described, listed, fetched and deleted in batches, and put
//! by manifest. Every one of these runs through the same manifest store as the OCI surface, so
//! both surfaces always agree.

use berth_core::StorageClass;
use berth_core::{Digest, Reference, Tag};
use berth_iam::Action;
use berth_meta::{ImageDetail, ImageFilter, ManifestDeletion, ManifestRecord, Page, Repository, TagFilter};

use crate::manifests::ManifestPush;
use crate::{Caller, ManifestContent, Registry, RegistryError, RepoPath};

const DESCRIBE_IMAGES_PAGE: &str = "describe-images";
const LIST_IMAGES_PAGE: &str = "list-images";

/// An image as a request names it, before validation: a digest, a tag, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageIdInput {
    pub digest: Option<String>,
    pub tag: Option<String>,
}

/// An image as found: its digest and, when it was named or listed by one, a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub digest: Digest,
    pub tag: Option<String>,
}

/// An image's status as ECR names it. berth restores an archived image at once, so no image is
/// ever `Activating`; a listing may still ask for them (and gets none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageStatus {
    Active,
    Archived,
    Activating,
}

impl ImageStatus {
    pub fn of(class: StorageClass) -> Self {
        match class {
            StorageClass::Standard => Self::Active,
            StorageClass::Archive => Self::Archived,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Archived => "ARCHIVED",
            Self::Activating => "ACTIVATING",
        }
    }
}

/// Which images a DescribeImages or ListImages call lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageListFilter {
    pub tags: TagFilter,
    /// `None`: any status.
    pub status: Option<ImageStatus>,
}

impl ImageListFilter {
    /// The store's filter, or `None` when nothing can match.
    fn for_store(self) -> Option<ImageFilter> {
        let storage_class = match self.status {
            None => None,
            Some(ImageStatus::Active) => Some(StorageClass::Standard),
            Some(ImageStatus::Archived) => Some(StorageClass::Archive),
            Some(ImageStatus::Activating) => return None,
        };
        Some(ImageFilter { tags: self.tags, storage_class })
    }
}

/// An image as DescribeImages shows it: its details and its latest scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedImage {
    pub detail: ImageDetail,
    pub scan: Option<crate::scans::ScanSummary>,
}

/// Why one image of a batch was not processed, with ECR's failure code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFailure {
    pub id: ImageIdInput,
    pub code: &'static str,
    pub reason: String,
}

pub struct FoundImage {
    pub id: ImageRef,
    pub content: ManifestContent,
}

impl ImageFailure {
    fn new(id: &ImageIdInput, code: &'static str, reason: impl Into<String>) -> Self {
        Self { id: id.clone(), code, reason: reason.into() }
    }
}

/// Opens a page token for `purpose` over `repo`, returning what it says comes after.
pub(crate) fn open_page(
    registry: &Registry,
    purpose: &str,
    repo: &RepoPath,
    token: Option<&str>,
) -> Result<Option<String>, RegistryError> {
    let Some(token) = token else { return Ok(None) };
    let invalid = || {
        RegistryError::InvalidParameter("Invalid parameter at 'nextToken': the token is not valid".to_owned())
    };
    let payload = registry.tokens.open_opaque(purpose, token).ok_or_else(invalid)?;
    let (scope, after) = payload.split_once('|').ok_or_else(invalid)?;
    if scope != repo.to_string() {
        return Err(RegistryError::InvalidParameter(
            "Invalid parameter at 'nextToken': the token belongs to another listing".to_owned(),
        ));
    }
    Ok(Some(after.to_owned()))
}

pub(crate) fn seal_page(registry: &Registry, purpose: &str, repo: &RepoPath, after: &str) -> String {
    registry.tokens.sign_opaque(purpose, &format!("{repo}|{after}"))
}

/// ECR's refusal of a named image that is not in the repository.
pub(crate) fn image_not_found(repo: &RepoPath, id: &ImageIdInput) -> RegistryError {
    RegistryError::ImageNotFound(format!(
        "The image with imageId {{imageDigest:'{}', imageTag:'{}'}} does not exist within the repository with name \
         '{}' in the registry with id '{}'",
        id.digest.as_deref().unwrap_or("null"),
        id.tag.as_deref().unwrap_or("null"),
        repo.name,
        repo.account
    ))
}

impl Registry {
    /// Resolves one image id of a request to the image and its manifest record, or says why
    /// it cannot be.
    pub(crate) async fn resolve_image(
        &self,
        repository: &Repository,
        id: &ImageIdInput,
    ) -> Result<(ImageRef, ManifestRecord), ImageFailure> {
        let digest = match &id.digest {
            None => None,
            Some(d) => Some(
                d.parse::<Digest>()
                    .map_err(|e| ImageFailure::new(id, "InvalidImageDigest", e.to_string()))?,
            ),
        };
        let tag = match &id.tag {
            None => None,
            Some(t) => {
                Some(t.parse::<Tag>().map_err(|e| ImageFailure::new(id, "InvalidImageTag", e.to_string()))?)
            }
        };
        let lookup_failed = |e: RegistryError| ImageFailure::new(id, "ImageNotFound", e.to_string());
        let found = match (&digest, &tag) {
            (None, None) => {
                return Err(ImageFailure::new(
                    id,
                    "MissingDigestAndTag",
                    "an image id needs a digest or a tag",
                ));
            }
            (Some(d), _) => {
                self.meta.get_manifest(repository.id, d).await.map_err(|e| lookup_failed(e.into()))?
            }
            (None, Some(t)) => {
                self.meta.resolve_tag(repository.id, t).await.map_err(|e| lookup_failed(e.into()))?
            }
        };
        let record =
            found.ok_or_else(|| ImageFailure::new(id, "ImageNotFound", "Requested image not found"))?;
        if let (Some(_), Some(t)) = (&digest, &tag) {
            let tagged =
                self.meta.resolve_tag(repository.id, t).await.map_err(|e| lookup_failed(e.into()))?;
            if tagged.map(|m| m.digest) != Some(record.digest.clone()) {
                return Err(ImageFailure::new(
                    id,
                    "ImageTagDoesNotMatchDigest",
                    "the tag does not point at the digest",
                ));
            }
        }
        Ok((ImageRef { digest: record.digest.clone(), tag: tag.map(|t| t.to_string()) }, record))
    }

    /// DescribeImages: the named images (all must exist), or a page of all of them.
    pub async fn describe_images(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        ids: Option<&[ImageIdInput]>,
        filter: ImageListFilter,
        next_token: Option<&str>,
        max_results: u32,
    ) -> Result<(Vec<DescribedImage>, Option<String>), RegistryError> {
        let repository = self.authorized_repository(caller, Action::DescribeImages, repo).await?;
        let (details, next) =
            self.image_details(&repository, repo, ids, filter, next_token, max_results).await?;
        let database_at = self.database_updated_at().await?;
        let mut described = Vec::with_capacity(details.len());
        for detail in details {
            let scan = self.scan_summary(repository.id, &detail.record.digest, database_at).await?;
            described.push(DescribedImage { detail, scan });
        }
        Ok((described, next))
    }

    /// The details DescribeImages lists: the named images (all must exist), or a page.
    async fn image_details(
        &self,
        repository: &Repository,
        repo: &RepoPath,
        ids: Option<&[ImageIdInput]>,
        filter: ImageListFilter,
        next_token: Option<&str>,
        max_results: u32,
    ) -> Result<(Vec<ImageDetail>, Option<String>), RegistryError> {
        if let Some(ids) = ids {
            let mut details = Vec::with_capacity(ids.len());
            for id in ids {
                let (image, record) =
                    self.resolve_image(repository, id).await.map_err(|f| image_not_found(repo, &f.id))?;
                let tags = self.meta.manifest_tags(repository.id, &image.digest).await?;
                if !details.iter().any(|d: &ImageDetail| d.record.digest == record.digest) {
                    details.push(ImageDetail { record, tags });
                }
            }
            return Ok((details, None));
        }
        let after = open_page(self, DESCRIBE_IMAGES_PAGE, repo, next_token)?;
        let Some(filter) = filter.for_store() else { return Ok((Vec::new(), None)) };
        let mut details = self
            .meta
            .describe_images(repository.id, filter, Page { last: after.as_deref(), limit: max_results + 1 })
            .await?;
        let next = if details.len() > max_results as usize {
            details.truncate(max_results as usize);
            details.last().map(|d| seal_page(self, DESCRIBE_IMAGES_PAGE, repo, &d.record.digest.to_string()))
        } else {
            None
        };
        Ok((details, next))
    }

    /// ListImages: (digest, tag) pairs, one per tag and one per untagged image.
    pub async fn list_images(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        filter: ImageListFilter,
        next_token: Option<&str>,
        max_results: u32,
    ) -> Result<(Vec<ImageRef>, Option<String>), RegistryError> {
        let repository = self.authorized_repository(caller, Action::ListImages, repo).await?;
        let after = open_page(self, LIST_IMAGES_PAGE, repo, next_token)?;
        let Some(filter) = filter.for_store() else { return Ok((Vec::new(), None)) };
        let after = match after.as_deref().map(|a| a.split_once('|').unwrap_or((a, ""))) {
            None => None,
            Some((digest, tag)) => Some((
                digest.parse::<Digest>().map_err(|_| {
                    RegistryError::InvalidParameter("Invalid parameter at 'nextToken'".to_owned())
                })?,
                tag.to_owned(),
            )),
        };
        let mut ids = self
            .meta
            .list_images(repository.id, filter, after.as_ref().map(|(d, t)| (d, t.as_str())), max_results + 1)
            .await?;
        let next = if ids.len() > max_results as usize {
            ids.truncate(max_results as usize);
            ids.last().map(|(d, t)| {
                seal_page(self, LIST_IMAGES_PAGE, repo, &format!("{d}|{}", t.as_deref().unwrap_or("")))
            })
        } else {
            None
        };
        Ok((ids.into_iter().map(|(digest, tag)| ImageRef { digest, tag }).collect(), next))
    }

    /// BatchGetImage: each image's manifest, or why it could not be returned.
    pub async fn batch_get_image(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        ids: &[ImageIdInput],
        accepted_media_types: Option<&[String]>,
    ) -> Result<(Vec<FoundImage>, Vec<ImageFailure>), RegistryError> {
        let repository = self.authorized_repository(caller, Action::BatchGetImage, repo).await?;
        let (mut found, mut failures) = (Vec::new(), Vec::new());
        for id in ids {
            let (image, record) = match self.resolve_image(&repository, id).await {
                Ok(found) => found,
                Err(failure) => {
                    failures.push(failure);
                    continue;
                }
            };
            if record.storage_class == StorageClass::Archive {
                let refusal = crate::manifests::archived(&record.digest);
                failures.push(ImageFailure::new(id, "ImageNotFound", refusal.to_string()));
                continue;
            }
            if accepted_media_types.is_some_and(|types| !types.iter().any(|t| t == &record.media_type)) {
                // ECR's failure codes have none for this; the image is not found in an accepted type.
                failures.push(ImageFailure::new(
                    id,
                    "ImageNotFound",
                    format!("the image is a {}, which acceptedMediaTypes does not list", record.media_type),
                ));
                continue;
            }
            let bytes = match self.manifest_bytes(&repository, &record).await {
                Ok(bytes) => bytes,
                // As ECR reports a key it cannot use: a failure of that image, not of the call.
                Err(RegistryError::KeyFailure { message, .. }) => {
                    failures.push(ImageFailure::new(id, "KmsError", message));
                    continue;
                }
                Err(e) => return Err(e),
            };
            self.pulls.note(self.meta.as_ref(), repository.id, &record.digest).await;
            self.activity.pulled(&repository);
            found.push(FoundImage { id: image, content: ManifestContent { record, bytes } });
        }
        Ok((found, failures))
    }

    /// BatchDeleteImage: a digest deletes the image with all its tags; a tag alone removes the
    /// tag, and the image with it once no tag is left, as ECR does.
    pub async fn batch_delete_image(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        ids: &[ImageIdInput],
    ) -> Result<(Vec<ImageRef>, Vec<ImageFailure>), RegistryError> {
        let repository = self.authorized_repository(caller, Action::BatchDeleteImage, repo).await?;
        let (mut deleted, mut failures) = (Vec::new(), Vec::new());
        for id in ids {
            let image = match self.resolve_image(&repository, id).await {
                Ok((image, _)) => image,
                Err(failure) => {
                    failures.push(failure);
                    continue;
                }
            };
            match (&id.digest, &image.tag) {
                (None, Some(tag)) => {
                    let tag: Tag = tag.parse().map_err(RegistryError::NameInvalid)?;
                    self.meta.delete_tag(repository.id, &tag).await?;
                    // The image goes with its last tag, unless an index lists it: then it
                    // stays, untagged, for the index.
                    if self.meta.manifest_tags(repository.id, &image.digest).await?.is_empty() {
                        self.meta.delete_manifest(repository.id, &image.digest).await?;
                    }
                    deleted.push(image);
                }
                _ => {
                    let tags = self.meta.manifest_tags(repository.id, &image.digest).await?;
                    match self.meta.delete_manifest(repository.id, &image.digest).await? {
                        ManifestDeletion::Deleted => {
                            if tags.is_empty() {
                                deleted.push(ImageRef { digest: image.digest.clone(), tag: None });
                            }
                            deleted.extend(
                                tags.into_iter()
                                    .map(|t| ImageRef { digest: image.digest.clone(), tag: Some(t) }),
                            );
                        }
                        ManifestDeletion::NotFound => {
                            failures.push(ImageFailure::new(id, "ImageNotFound", "Requested image not found"))
                        }
                        ManifestDeletion::ListedBy(index) => failures.push(ImageFailure::new(
                            id,
                            "ImageReferencedByManifestList",
                            format!("Requested image is referenced by the image index {index}; delete the index first"),
                        )),
                    }
                }
            }
        }
        Ok((deleted, failures))
    }

    /// UpdateImageStorageClass: archives an image or restores it, with the referrers (signatures,
    /// SBOMs) that follow it. berth has one kind of storage, so a restore is complete at once.
    /// An image an active index lists stays active while the index does.
    pub async fn update_image_storage_class(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        id: &ImageIdInput,
        target: StorageClass,
    ) -> Result<(ImageRef, ImageStatus), RegistryError> {
        let repository = self.authorized_repository(caller, Action::UpdateImageStorageClass, repo).await?;
        let (image, record) =
            self.resolve_image(&repository, id).await.map_err(|f| image_not_found(repo, &f.id))?;
        if target == StorageClass::Archive && record.storage_class == StorageClass::Standard {
            let images = self.meta.lifecycle_images(repository.id).await?;
            let active = |digest: &Digest| {
                images
                    .iter()
                    .any(|i| &i.record.digest == digest && i.record.storage_class == StorageClass::Standard)
            };
            let listed_by = images
                .iter()
                .find(|i| i.record.digest == record.digest)
                .and_then(|i| i.parents.iter().find(|parent| active(parent)));
            if let Some(index) = listed_by {
                return Err(RegistryError::ImageStorageClassUpdateNotSupported(format!(
                    "the image {} is listed by the index {index}, which is active; archive the index instead",
                    record.digest
                )));
            }
        }
        let now = self.now_millis();
        self.meta.set_storage_class(repository.id, &record.digest, target, now).await?;
        for referrer in self.meta.referrers(repository.id, &record.digest).await? {
            self.meta.set_storage_class(repository.id, &referrer.digest, target, now).await?;
        }
        tracing::info!(
            repository = %repo, digest = %record.digest, target = target.as_str(),
            "image storage class updated"
        );
        Ok((image, ImageStatus::of(target)))
    }

    /// PutImage: stores a manifest under a tag and/or its digest, refusing a push that changes
    /// nothing, as ECR does.
    pub async fn put_image(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        manifest: bytes::Bytes,
        media_type: Option<&str>,
        tag: Option<&Tag>,
        digest: Option<&Digest>,
    ) -> Result<ImageRef, RegistryError> {
        // Unlike an OCI push, PutImage does not create the repository.
        let repository = self.authorized_repository(caller, Action::PutImage, repo).await?;
        if let Some(expected) = digest {
            let actual = berth_blob::Hasher::digest_of(expected.algorithm(), &manifest);
            if &actual != expected {
                return Err(RegistryError::ImageDigestMismatch(format!(
                    "The manifest digest {actual} does not match the provided digest {expected}"
                )));
            }
        }
        let actual = berth_blob::Hasher::digest_of(
            digest.map_or(berth_core::DigestAlgorithm::Sha256, Digest::algorithm),
            &manifest,
        );
        {
            let unchanged = match tag {
                Some(t) => self.meta.resolve_tag(repository.id, t).await?.is_some_and(|m| m.digest == actual),
                None => self.meta.get_manifest(repository.id, &actual).await?.is_some(),
            };
            if unchanged {
                return Err(RegistryError::ImageAlreadyExists(format!(
                    "Image with digest '{actual}' and tag '{}' already exists in the repository with name '{}' in \
                     registry with id '{}'",
                    tag.map_or("null".to_owned(), ToString::to_string),
                    repo.name,
                    repo.account
                )));
            }
        }
        let reference = match tag {
            Some(t) => Reference::Tag(t.clone()),
            None => Reference::Digest(actual.clone()),
        };
        let push = ManifestPush::into_existing(repo, repository);
        let outcome = self.put_manifest(push, &reference, media_type, manifest).await?;
        Ok(ImageRef { digest: outcome.digest, tag: tag.map(ToString::to_string) })
    }
}

const REFERRERS_PAGE: &str = "list-image-referrers";

impl Registry {
    /// A page token for ListImageReferrers, bound to the repository and subject.
    pub fn seal_referrers_token(&self, repo: &RepoPath, subject: &Digest, last: &str) -> String {
        seal_page(self, REFERRERS_PAGE, repo, &format!("{subject}|{last}"))
    }

    /// The last digest a ListImageReferrers token says was returned.
    pub fn open_referrers_token(
        &self,
        repo: &RepoPath,
        subject: &Digest,
        token: &str,
    ) -> Result<String, RegistryError> {
        let after = open_page(self, REFERRERS_PAGE, repo, Some(token))?.unwrap_or_default();
        match after.split_once('|') {
            Some((for_subject, last)) if for_subject == subject.to_string() => Ok(last.to_owned()),
            _ => Err(RegistryError::InvalidParameter(
                "Invalid parameter at 'nextToken': the token belongs to another listing".to_owned(),
            )),
        }
    }
}

//! Images as the ECR API sees them: described, listed, fetched and deleted in batches, and put
//! by manifest. Every one of these runs through the same manifest store as the OCI surface, so
//! both surfaces always agree.

use berth_core::{Digest, Reference, Tag};
use berth_iam::Action;
use berth_meta::{ImageDetail, ManifestRecord, Page, Repository, TagFilter};

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

impl Registry {
    /// Resolves one image id of a request to the image and its manifest record, or says why
    /// it cannot be.
    async fn resolve_image(
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
        filter: TagFilter,
        next_token: Option<&str>,
        max_results: u32,
    ) -> Result<(Vec<ImageDetail>, Option<String>), RegistryError> {
        let repository = self.authorized_repository(caller, Action::DescribeImages, repo).await?;
        if let Some(ids) = ids {
            let mut details = Vec::with_capacity(ids.len());
            for id in ids {
                let (image, record) = self.resolve_image(&repository, id).await.map_err(|f| {
                    RegistryError::ImageNotFound(format!(
                        "The image with imageId {{imageDigest:'{}', imageTag:'{}'}} does not exist within the repository \
                         with name '{}' in the registry with id '{}'",
                        f.id.digest.as_deref().unwrap_or("null"),
                        f.id.tag.as_deref().unwrap_or("null"),
                        repo.name,
                        repo.account
                    ))
                })?;
                let tags = self.meta.manifest_tags(repository.id, &image.digest).await?;
                if !details.iter().any(|d: &ImageDetail| d.record.digest == record.digest) {
                    details.push(ImageDetail { record, tags });
                }
            }
            return Ok((details, None));
        }
        let after = open_page(self, DESCRIBE_IMAGES_PAGE, repo, next_token)?;
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
        filter: TagFilter,
        next_token: Option<&str>,
        max_results: u32,
    ) -> Result<(Vec<ImageRef>, Option<String>), RegistryError> {
        let repository = self.authorized_repository(caller, Action::ListImages, repo).await?;
        let after = open_page(self, LIST_IMAGES_PAGE, repo, next_token)?;
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
            if accepted_media_types.is_some_and(|types| !types.iter().any(|t| t == &record.media_type)) {
                // ECR's failure codes have none for this; the image is not found in an accepted type.
                failures.push(ImageFailure::new(
                    id,
                    "ImageNotFound",
                    format!("the image is a {}, which acceptedMediaTypes does not list", record.media_type),
                ));
                continue;
            }
            let bytes = self.manifest_bytes(&record).await?;
            self.pulls.note(self.meta.as_ref(), repository.id, &record.digest).await;
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
                    if self.meta.manifest_tags(repository.id, &image.digest).await?.is_empty() {
                        self.meta.delete_manifest(repository.id, &image.digest).await?;
                    }
                    deleted.push(image);
                }
                _ => {
                    let tags = self.meta.manifest_tags(repository.id, &image.digest).await?;
                    if self.meta.delete_manifest(repository.id, &image.digest).await? {
                        if tags.is_empty() {
                            deleted.push(ImageRef { digest: image.digest.clone(), tag: None });
                        }
                        deleted.extend(
                            tags.into_iter().map(|t| ImageRef { digest: image.digest.clone(), tag: Some(t) }),
                        );
                    } else {
                        failures.push(ImageFailure::new(id, "ImageNotFound", "Requested image not found"));
                    }
                }
            }
        }
        Ok((deleted, failures))
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

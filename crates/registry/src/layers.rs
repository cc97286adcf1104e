//! Layers through the ECR API: availability checks, download URLs served by berth itself, and
//! the three-step upload (initiate, parts, complete) on the same upload machinery as OCI.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_core::Digest;
use berth_iam::Action;
use berth_meta::LayerParts;

use crate::limits::{MAX_LAYER_PART_BYTES, MIN_LAYER_PART_BYTES};
use crate::{ByteStream, Caller, PartRefusal, Registry, RegistryError, RepoPath, UploadStatus};

/// How long a download URL works.
pub const DOWNLOAD_URL_LIFETIME: Duration = Duration::from_secs(3600);
const DOWNLOAD_URL: &str = "download-url";

/// A layer's availability in a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerCheck {
    Available { digest: Digest, size: u64 },
    Missing { digest: String, code: &'static str, reason: String },
}

fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Registry {
    /// BatchCheckLayerAvailability.
    pub async fn check_layers(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        digests: &[String],
    ) -> Result<Vec<LayerCheck>, RegistryError> {
        let repository =
            self.authorized_repository(caller, Action::BatchCheckLayerAvailability, repo).await?;
        let mut out = Vec::with_capacity(digests.len());
        for raw in digests {
            let Ok(digest) = raw.parse::<Digest>() else {
                out.push(LayerCheck::Missing {
                    digest: raw.clone(),
                    code: "InvalidLayerDigest",
                    reason: "Invalid layer digest".to_owned(),
                });
                continue;
            };
            out.push(match self.meta.repository_blob(repository.id, &digest).await? {
                Some(blob) => LayerCheck::Available { digest, size: blob.size },
                None => LayerCheck::Missing {
                    digest: raw.clone(),
                    code: "MissingLayerDigest",
                    reason: "Requested layer not found".to_owned(),
                },
            });
        }
        Ok(out)
    }

    /// GetDownloadUrlForLayer: a signed token that lets the blob URL be fetched without other
    /// credentials until it expires or the caller's key is disabled.
    pub async fn download_token(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        digest: &Digest,
    ) -> Result<String, RegistryError> {
        let repository = self.authorized_repository(caller, Action::GetDownloadUrlForLayer, repo).await?;
        if self.meta.repository_blob(repository.id, digest).await?.is_none() {
            return Err(RegistryError::LayersNotFound(format!(
                "The layer '{digest}' does not exist in the repository with name '{}' in the registry with id '{}'",
                repo.name, repo.account
            )));
        }
        // As in ECR, only layers that an image references can be downloaded through the API.
        if !self.meta.blob_in_use(repository.id, digest).await? {
            return Err(RegistryError::LayerInaccessible(format!(
                "The layer '{digest}' is in the repository with name '{}' in the registry with id '{}', but no \
                 image of the repository references it",
                repo.name, repo.account
            )));
        }
        let key = caller
            .access_key_id
            .as_deref()
            .ok_or_else(|| RegistryError::Unauthenticated("no access key behind this request".to_owned()))?;
        let expires = unix_seconds(self.now()) + DOWNLOAD_URL_LIFETIME.as_secs();
        Ok(self.tokens.sign_opaque(DOWNLOAD_URL, &format!("{repo}|{digest}|{expires}|{key}")))
    }

    /// The caller a download token stands for, if it is valid for exactly this blob.
    pub async fn caller_from_download_token(
        &self,
        token: &str,
        repo: &RepoPath,
        digest: &Digest,
    ) -> Result<Caller, RegistryError> {
        let refused = || {
            RegistryError::Unauthenticated(
                "the download URL is not valid for this blob, or has expired".to_owned(),
            )
        };
        let payload = self.tokens.open_opaque(DOWNLOAD_URL, token).ok_or_else(refused)?;
        let mut parts = payload.split('|');
        let (Some(for_repo), Some(for_digest), Some(expires), Some(key), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(refused());
        };
        let expires: u64 = expires.parse().map_err(|_| refused())?;
        if for_repo != repo.to_string()
            || for_digest != digest.to_string()
            || unix_seconds(self.now()) >= expires
        {
            return Err(refused());
        }
        self.caller_for_key(key).await.map_err(|_| refused())
    }

    /// InitiateLayerUpload: like an OCI upload start, but the repository must exist.
    pub async fn initiate_layer_upload(
        &self,
        caller: &Caller,
        repo: &RepoPath,
    ) -> Result<UploadStatus, RegistryError> {
        let repository = self.authorized_repository(caller, Action::InitiateLayerUpload, repo).await?;
        self.new_upload(&repository).await
    }

    /// UploadLayerPart: bytes `first..=last` of the layer. A part must continue the upload
    /// exactly and be at most [`MAX_LAYER_PART_BYTES`]; a part below [`MIN_LAYER_PART_BYTES`]
    /// that is followed by another is remembered, and refused when the upload completes.
    pub async fn upload_layer_part(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        upload_id: &str,
        first: u64,
        last: u64,
        part: bytes::Bytes,
    ) -> Result<UploadStatus, RegistryError> {
        let repository = self.authorized_repository(caller, Action::UploadLayerPart, repo).await?;
        let size = part.len() as u64;
        let check = |upload: &berth_meta::Upload| {
            let invalid = |message: String| {
                RegistryError::InvalidLayerPart(Box::new(PartRefusal {
                    registry_id: repo.account.to_string(),
                    repository_name: repo.name.to_string(),
                    upload_id: upload_id.to_owned(),
                    last_valid_byte: i64::try_from(upload.length).unwrap_or(i64::MAX) - 1,
                    message,
                }))
            };
            if size > MAX_LAYER_PART_BYTES {
                return Err(RegistryError::LimitExceeded(format!(
                    "The layer part is {size} bytes; a part can be at most {MAX_LAYER_PART_BYTES} bytes"
                )));
            }
            if size == 0 || last < first || last - first + 1 != size {
                return Err(invalid(format!(
                    "partFirstByte {first} and partLastByte {last} do not span the {size} bytes of layerPartBlob"
                )));
            }
            if first != upload.length {
                return Err(invalid(format!(
                    "The part starts at byte {first}, but the upload holds {} bytes, so the next part must start \
                     at byte {}",
                    upload.length, upload.length
                )));
            }
            // The previous part was not the last one after all.
            let short = upload.parts.short.or(upload.parts.last.filter(|&s| s < MIN_LAYER_PART_BYTES));
            Ok(LayerParts { last: Some(size), short })
        };
        let body: ByteStream = Box::pin(futures_util::stream::once(async move { Ok(part) }));
        self.append_checked(&repository, upload_id, check, body).await
    }

    /// CompleteLayerUpload: verifies the digest and stores the layer; refuses an empty upload,
    /// one with a short part before its last, and a layer the repository already holds, as ECR
    /// does.
    pub async fn complete_layer_upload(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        upload_id: &str,
        digest: &Digest,
    ) -> Result<Digest, RegistryError> {
        let repository = self.authorized_repository(caller, Action::CompleteLayerUpload, repo).await?;
        self.upload_in(&repository, upload_id).await?;
        if self.meta.repository_blob(repository.id, digest).await?.is_some() {
            return Err(RegistryError::LayerAlreadyExists(format!(
                "The layer '{digest}' already exists in the repository with name '{}' in the registry with id '{}'",
                repo.name, repo.account
            )));
        }
        // Judged under the upload's lock, so that no part can slip in between check and commit.
        let ecr_rules = |upload: &berth_meta::Upload| {
            if upload.length == 0 {
                return Err(RegistryError::EmptyUpload(format!(
                    "The upload {upload_id} contains no layer parts"
                )));
            }
            match upload.parts.short {
                Some(short) => Err(RegistryError::LayerPartTooSmall(format!(
                    "All layer parts except the last part must be at least {MIN_LAYER_PART_BYTES} bytes; the \
                     upload {upload_id} has a {short}-byte part that is not its last"
                ))),
                None => Ok(()),
            }
        };
        self.finish_upload(&repository, upload_id, digest, None, None, ecr_rules).await.map_err(|e| match e {
            RegistryError::DigestInvalid(message) => RegistryError::InvalidLayer(message),
            other => other,
        })
    }
}

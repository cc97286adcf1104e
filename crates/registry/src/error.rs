use berth_blob::BlobError;
use berth_core::{Digest, InvalidInput};
use berth_kms::KmsError;
use berth_meta::MetaError;

/// Everything a registry operation can refuse or fail with. Client errors carry a message for
/// the client; infrastructure failures keep their cause for the log and show the client nothing.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    Unauthenticated(String),
    /// A SigV4 signature that does not verify (ECR API).
    #[error("{0}")]
    Signature(berth_iam::sigv4::SigV4Error),
    #[error("{0}")]
    Denied(String),
    #[error("The repository with name '{name}' does not exist in the registry with id '{account}'")]
    NameUnknown { account: String, name: String },
    #[error("{0}")]
    NameInvalid(InvalidInput),
    #[error("manifest unknown: {0}")]
    ManifestUnknown(String),
    /// A manifest an index of its repository lists cannot be deleted before the index.
    #[error("{digest} is listed by the index {index} of this repository; delete the index first")]
    ListedByIndex { digest: Digest, index: Digest },
    #[error("{0}")]
    ManifestInvalid(InvalidInput),
    /// A manifest names content the repository does not hold: `blobs` (config, layers) and
    /// `manifests` (the images an index lists).
    #[error("{}", missing_references(.blobs, .manifests))]
    ManifestBlobUnknown { blobs: Vec<Digest>, manifests: Vec<Digest> },
    #[error("{0}")]
    TagInvalid(String),
    /// A push to an existing tag of an immutable repository.
    #[error("{0}")]
    TagImmutable(String),
    #[error("{0}")]
    ImageNotFound(String),
    #[error("{0}")]
    ImageAlreadyExists(String),
    /// PutImage's `imageDigest` is not the digest of the manifest it was given.
    #[error("{0}")]
    ImageDigestMismatch(String),
    #[error("{0}")]
    LayersNotFound(String),
    #[error("{0}")]
    LayerAlreadyExists(String),
    /// CompleteLayerUpload's digest is not the digest of the uploaded bytes.
    #[error("{0}")]
    InvalidLayer(String),
    /// An UploadLayerPart that does not continue its upload, with where the upload stands.
    #[error("{}", .0.message)]
    InvalidLayerPart(Box<PartRefusal>),
    /// An upload through the ECR layer API with a part, other than the last, below the minimum.
    #[error("{0}")]
    LayerPartTooSmall(String),
    /// A layer the repository holds but no image of it references.
    #[error("{0}")]
    LayerInaccessible(String),
    /// A quota of [`crate::limits`] would be exceeded.
    #[error("{0}")]
    LimitExceeded(String),
    /// Encryption the registry's key provider cannot give; `kms_error` names the key provider's
    /// failure.
    #[error("{message}")]
    Kms { message: String, kms_error: String },
    /// A customer key could not be used (missing, disabled, not allowed, or its service did not
    /// answer): what it guards cannot be read or written until it can.
    #[error("{message}")]
    KeyFailure { message: String, kms_error: String },
    #[error("{0}")]
    EmptyUpload(String),
    #[error("{0}")]
    TooManyTags(String),
    #[error("{0}")]
    TemplateAlreadyExists(String),
    #[error("{0}")]
    TemplateNotFound(String),
    #[error("{0}")]
    RepositoryPolicyNotFound(String),
    #[error("{0}")]
    RegistryPolicyNotFound(String),
    #[error("{0}")]
    LifecyclePolicyNotFound(String),
    /// A preview was asked for while the repository's previous one is still being evaluated.
    #[error("{0}")]
    LifecyclePolicyPreviewInProgress(String),
    #[error("{0}")]
    LifecyclePolicyPreviewNotFound(String),
    /// The image has never been scanned.
    #[error("{0}")]
    ScanNotFound(String),
    /// The image is in the archive storage class: restore it before pulling it.
    #[error("{0}")]
    ImageArchived(String),
    /// A storage-class change the image cannot take (an image an index still lists).
    #[error("{0}")]
    ImageStorageClassUpdateNotSupported(String),
    #[error("blob unknown to registry: {0}")]
    BlobUnknown(Digest),
    #[error("upload unknown: {0}")]
    UploadUnknown(String),
    #[error("{0}")]
    DigestInvalid(String),
    #[error("requested range {requested} does not continue the upload, which holds {length} bytes")]
    RangeInvalid { requested: String, length: u64 },
    #[error("the {what} would exceed the limit of {limit} bytes")]
    TooLarge { what: &'static str, limit: u64 },
    #[error("the request body ended early: {0}")]
    BodyInterrupted(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("The repository with name '{name}' already exists in the registry with id '{account}'")]
    RepositoryAlreadyExists { account: String, name: String },
    #[error(
        "The repository with name '{name}' in registry with id '{account}' cannot be deleted because it still contains images"
    )]
    RepositoryNotEmpty { account: String, name: String },
    /// A request parameter broke a constraint; the message names the parameter.
    #[error("{0}")]
    InvalidParameter(String),
    /// An input of one of ECR's newer operations broke a constraint (ECR answers those with
    /// `ValidationException`): which input, and the rule it broke.
    #[error("{member} {rule}")]
    Validation { member: String, rule: String },
    /// The account already holds as many open uploads as it may (ECR's `LimitExceededException`;
    /// OCI's 429 `TOOMANYREQUESTS`).
    #[error("{0}")]
    TooManyUploads(String),
    /// The registry is busy with other requests' bodies; the client should retry shortly.
    #[error("{0}")]
    Throttled(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl RegistryError {
    /// A repository that does not exist (or that the caller may not learn of).
    pub(crate) fn name_unknown(repo: &crate::RepoPath) -> Self {
        Self::NameUnknown { account: repo.account.to_string(), name: repo.name.to_string() }
    }
}

/// Why an UploadLayerPart was refused, and where its upload stands.
#[derive(Debug)]
pub struct PartRefusal {
    pub registry_id: String,
    pub repository_name: String,
    pub upload_id: String,
    /// The offset of the last byte the upload holds; -1 when it holds none.
    pub last_valid_byte: i64,
    pub message: String,
}

fn list(digests: &[Digest]) -> String {
    digests.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

fn missing_references(blobs: &[Digest], manifests: &[Digest]) -> String {
    match (blobs.is_empty(), manifests.is_empty()) {
        (false, true) => {
            format!("the manifest references layers the repository does not hold: {}", list(blobs))
        }
        (true, false) => {
            format!("the manifest list references images the repository does not hold: {}", list(manifests))
        }
        _ => format!(
            "the manifest references layers ({}) and images ({}) the repository does not hold",
            list(blobs),
            list(manifests)
        ),
    }
}

impl From<MetaError> for RegistryError {
    fn from(e: MetaError) -> Self {
        match e {
            MetaError::MissingReferences { blobs, manifests } => {
                Self::ManifestBlobUnknown { blobs, manifests }
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<BlobError> for RegistryError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::TooLarge { limit } => Self::TooLarge { what: "blob", limit },
            BlobError::Interrupted { source, .. } => Self::BodyInterrupted(source.to_string()),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<KmsError> for RegistryError {
    fn from(e: KmsError) -> Self {
        Self::Internal(e.to_string())
    }
}

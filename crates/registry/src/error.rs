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
    #[error("{0}")]
    ManifestInvalid(InvalidInput),
    #[error("manifest references unknown content: {}", list(.0))]
    ManifestBlobUnknown(Vec<Digest>),
    #[error("{0}")]
    TagInvalid(String),
    /// A push to an existing tag of an immutable repository.
    #[error("{0}")]
    TagImmutable(String),
    #[error("{0}")]
    ImageNotFound(String),
    #[error("{0}")]
    ImageAlreadyExists(String),
    #[error("{0}")]
    LayersNotFound(String),
    #[error("{0}")]
    LayerAlreadyExists(String),
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
    #[error("internal error: {0}")]
    Internal(String),
}

fn list(digests: &[Digest]) -> String {
    digests.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

impl From<MetaError> for RegistryError {
    fn from(e: MetaError) -> Self {
        match e {
            MetaError::MissingReferences(missing) => Self::ManifestBlobUnknown(missing),
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

//! Key providers and envelope encryption.
//!
//! Every blob is encrypted under its own random [`DataKey`]; a [`KeyProvider`] wraps that data
//! key under a key-encryption key that never leaves the provider. The `local` provider keeps its
//! key in a 0600 file in the data directory; HSM and KMS providers plug in behind the same trait.
//! Small secrets (access-key secrets, token-signing keys) are sealed the same way.
//!
//! Customer keys (a repository's `KMS` encryption) live in a [`KeyService`]: the `local` one keeps
//! them as files in the data directory; `pkcs11` keeps the same records there with the key material
//! in an HSM; `aws-kms` keeps them in AWS KMS (or anything speaking its API). Services that are
//! not local files sit behind a [`CachedKeyService`], so that reads do not call them every time.

mod aws_kms;
mod cache;
mod local;
mod local_keys;
mod pkcs11;
mod service;

use std::fmt;

pub use aws_kms::{ACCOUNT_TAG, AwsKmsKeyService, AwsKmsSettings};
pub use cache::{CacheSettings, CachedKeyService};
pub use local::LocalKeyProvider;
pub use local_keys::LocalKeyService;
pub use pkcs11::Pkcs11Settings;
pub use service::{DEFAULT_ALIAS, KeyDescription, KeyService, KeyState};

/// Version byte in front of every wrapped key and sealed secret, so the format can evolve.
const WRAP_FORMAT_V1: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum KmsError {
    #[error("key file {path}: {source}")]
    KeyFile { path: String, source: std::io::Error },
    #[error("key file {path} is not a berth key: {reason}")]
    BadKeyFile { path: String, reason: String },
    #[error("the system random number generator failed")]
    Random,
    #[error("wrapped key or sealed secret could not be opened (wrong key or tampered data)")]
    Unwrap,
    #[error("{0}")]
    InvalidKeyName(String),
    #[error("{0}")]
    KeyNotFound(String),
    #[error("{0}")]
    KeyDisabled(String),
    #[error("{0}")]
    KeyAccessDenied(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// The key service did not answer in time or could not be reached.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Unsupported(String),
}

impl KmsError {
    /// The `kmsError` ECR's `KmsException` carries: the key service's own exception name.
    pub fn kms_error(&self) -> &'static str {
        match self {
            KmsError::InvalidKeyName(_) | KmsError::KeyNotFound(_) => "NotFoundException",
            KmsError::KeyDisabled(_) => "DisabledException",
            KmsError::KeyAccessDenied(_) => "AccessDeniedException",
            KmsError::AlreadyExists(_) => "AlreadyExistsException",
            KmsError::Unavailable(_) => "KMSInternalException",
            KmsError::Unsupported(_) => "UnsupportedOperationException",
            KmsError::Unwrap => "InvalidCiphertextException",
            KmsError::KeyFile { .. } | KmsError::BadKeyFile { .. } | KmsError::Random => {
                "KMSInternalException"
            }
        }
    }
}

/// A 256-bit data key. Its bytes never appear in `Debug` output or logs, and are overwritten
/// when it is dropped.
#[derive(Clone)]
pub struct DataKey([u8; 32]);

impl Drop for DataKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl DataKey {
    /// A fresh key from the system's secure random source.
    pub fn generate() -> Result<Self, KmsError> {
        let mut bytes = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
            .map_err(|_| KmsError::Random)?;
        Ok(Self(bytes))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// A key-encryption key held by some provider.
#[async_trait::async_trait]
pub trait KeyProvider: Send + Sync {
    /// A stable name for the key-encryption key, stored beside everything it wraps.
    fn key_id(&self) -> &str;

    /// Encrypts a data key so that only this provider can recover it.
    async fn wrap(&self, key: &DataKey) -> Result<Vec<u8>, KmsError>;

    /// Recovers a data key wrapped by [`KeyProvider::wrap`].
    async fn unwrap(&self, wrapped: &[u8]) -> Result<DataKey, KmsError>;

    /// Encrypts a small secret bound to `context` (it must be given again to open it).
    async fn seal(&self, secret: &[u8], context: &str) -> Result<Vec<u8>, KmsError>;

    /// Opens a secret sealed with the same `context`.
    async fn open(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, KmsError>;

    /// How many versions of key material it has.
    fn versions(&self) -> u32 {
        1
    }

    /// Adds a version: new wraps and seals use it, older ones still open. The new count.
    async fn rotate(&self) -> Result<u32, KmsError> {
        Err(KmsError::Unsupported("this key provider's key is rotated with its own tools".to_owned()))
    }
}

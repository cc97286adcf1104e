//! Content-addressed, encrypted-at-rest blob storage.
//!
//! Every byte written through this crate lands on disk as ciphertext in the chunked format of
//! [`sealed`]: AES-256-GCM over fixed-size chunks under a per-blob data key, so that a range
//! read decrypts only the chunks it touches and truncation or reordering is detected.
//!
//! A blob begins life as an *upload* (staging data that may grow over several requests) and
//! becomes a stored blob by [`BlobStore::commit_upload`], which makes it durable and gives it a
//! [`BlobLocation`]. Which digest a location holds, and the wrapped data key that opens it,
//! are metadata: this crate stores bytes, the metadata store says what they are.

mod fs;
mod hasher;
pub mod sealed;

use std::io;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::Stream;

pub use berth_kms::DataKey;
pub use fs::FsBlobStore;
pub use hasher::Hasher;

/// A stream of plaintext bytes going into or coming out of the store.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// Where a stored blob's ciphertext lives, relative to its store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobLocation(pub String);

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("storage I/O failed: {0}")]
    Io(#[from] io::Error),
    /// The body broke off; the `length` bytes that arrived are kept and were hashed.
    #[error("the request body broke off after {length} bytes: {source}")]
    Interrupted { length: u64, source: io::Error },
    #[error("the blob would exceed the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("stored data failed authentication at chunk {chunk}: corrupt, truncated or tampered")]
    Corrupt { chunk: u64 },
    #[error("no stored data at {0}")]
    NotFound(String),
    #[error("the system random number generator failed")]
    Random,
}

/// Blob storage backends. Implementations keep every byte they write encrypted.
#[async_trait::async_trait]
pub trait BlobStore: Send + Sync {
    /// Creates empty staging data for an upload.
    async fn begin_upload(&self, upload_id: &str) -> Result<(), BlobError>;

    /// Appends `body` to an upload that holds `offset` plaintext bytes, feeding every appended
    /// byte to `hasher` (which must already have seen the first `offset` bytes), and refusing
    /// to grow past `limit`. Returns the new length; if the body breaks off, what arrived is
    /// kept and [`BlobError::Interrupted`] says how long the upload now is.
    async fn append_upload(
        &self,
        upload_id: &str,
        key: &DataKey,
        offset: u64,
        body: ByteStream,
        hasher: &mut Hasher,
        limit: u64,
    ) -> Result<u64, BlobError>;

    /// Reads back the plaintext of an upload of `len` bytes (to rebuild hash state).
    async fn read_upload(&self, upload_id: &str, key: &DataKey, len: u64) -> Result<ByteStream, BlobError>;

    /// Makes an upload's data durable as a stored blob and returns where it now lives.
    async fn commit_upload(&self, upload_id: &str) -> Result<BlobLocation, BlobError>;

    /// Forgets an upload's staging data. Missing data is not an error.
    async fn abort_upload(&self, upload_id: &str) -> Result<(), BlobError>;

    /// Streams plaintext bytes `range` (start, inclusive end) of a stored blob of `size` bytes.
    async fn read(
        &self,
        location: &BlobLocation,
        key: &DataKey,
        size: u64,
        range: Option<(u64, u64)>,
    ) -> Result<ByteStream, BlobError>;

    /// Removes a stored blob. Missing data is not an error.
    async fn delete(&self, location: &BlobLocation) -> Result<(), BlobError>;

    /// Every upload id with staging data, for expiry of abandoned uploads.
    async fn list_uploads(&self) -> Result<Vec<String>, BlobError>;

    /// Every stored blob with when it was committed, for the garbage collector to find what no
    /// metadata names (left by a crash between a write and its commit).
    async fn list_blobs(&self) -> Result<Vec<StoredBlob>, BlobError>;
}

/// A stored blob as the store sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    pub location: BlobLocation,
    /// When it was committed (or last written).
    pub written_at: std::time::SystemTime,
    /// Its size in the store (ciphertext and framing).
    pub stored_bytes: u64,
}

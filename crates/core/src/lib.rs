//! Identifiers, value types and manifest parsing shared by every berth layer.
//!
//! This crate does no I/O and knows nothing of HTTP or SQL: it turns untrusted strings and
//! bytes into validated values, or says precisely what was wrong with them.

mod cidr;
mod digest;
mod error;
mod manifest;
mod names;
mod pattern;
mod repository;
mod storage_class;

pub use cidr::Cidr;
pub use digest::{Digest, DigestAlgorithm};
pub use error::InvalidInput;
pub use manifest::{Descriptor, MAX_MANIFEST_BYTES, Manifest, ManifestKind, media_types};
pub use names::{AccountId, Reference, RepositoryName, Tag, repository_arn};
pub use pattern::glob_matches;
pub use repository::{
    EncryptionType, RepositorySettings, TagMutability, is_exclusion_filter, wildcard_matches,
};
pub use storage_class::StorageClass;

#[cfg(test)]
mod fuzz;

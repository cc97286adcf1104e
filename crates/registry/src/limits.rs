//! ECR's quotas that berth enforces, in one place. Each is refused with
//! [`RegistryError::LimitExceeded`](crate::RegistryError::LimitExceeded) (or the error ECR
//! names for it) with a message that names the limit.

/// Most tags that may point at one image (ECR's "tags per image" quota).
pub const MAX_TAGS_PER_IMAGE: usize = 1_000;

/// Most resource tags on a repository (`TooManyTagsException`).
pub const MAX_RESOURCE_TAGS: usize = 50;

/// Smallest part the ECR layer API accepts, except for an upload's last part (5 MiB). Only
/// UploadLayerPart is held to it; chunks of the OCI API may be of any size.
pub const MIN_LAYER_PART_BYTES: u64 = 5 * 1024 * 1024;

/// Largest part UploadLayerPart accepts (10 MiB, ECR's quota; the model's blob limit is 20 MiB).
pub const MAX_LAYER_PART_BYTES: u64 = 10 * 1024 * 1024;

/// Most repository creation templates per registry.
pub const MAX_CREATION_TEMPLATES: usize = 50;

/// Most layers, configs and child manifests one manifest may name, unless configured otherwise:
/// far above what images use (Docker images stop near 127 layers), low enough that checking a
/// manifest's references stays cheap.
pub const DEFAULT_MAX_MANIFEST_REFERENCES: usize = 1_000;

/// Most uploads an account may have open at once, unless configured otherwise (abandoned
/// uploads count until they expire).
pub const DEFAULT_MAX_OPEN_UPLOADS_PER_ACCOUNT: u64 = 1_000;

/// Shortest and longest lifecycle policy text, in characters (ECR's model).
pub const LIFECYCLE_POLICY_CHARS: std::ops::RangeInclusive<usize> =
    berth_lifecycle::MIN_POLICY_CHARS..=berth_lifecycle::MAX_POLICY_CHARS;

//! Where an image's content is kept: ready to pull, or archived until someone restores it.

/// ECR's storage classes. An archived image is kept but cannot be pulled until it is restored
/// to `Standard`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum StorageClass {
    #[default]
    Standard,
    Archive,
}

impl StorageClass {
    /// As ECR's API writes it (`STANDARD`, `ARCHIVE`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "STANDARD",
            Self::Archive => "ARCHIVE",
        }
    }

    /// As lifecycle policies write it (`standard`, `archive`).
    pub fn as_policy_str(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Archive => "archive",
        }
    }

    /// Reads the API's spelling; `None` for anything else.
    pub fn from_api(text: &str) -> Option<Self> {
        [Self::Standard, Self::Archive].into_iter().find(|c| c.as_str() == text)
    }
}

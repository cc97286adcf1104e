//! The settings a repository is created with (ECR's `CreateRepository` options).

use std::fmt;
use std::str::FromStr;

use crate::InvalidInput;

/// Whether tags can be moved once pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TagMutability {
    #[default]
    Mutable,
    Immutable,
    /// Immutable except tags matching an exclusion filter.
    ImmutableWithExclusion,
    /// Mutable except tags matching an exclusion filter.
    MutableWithExclusion,
}

impl TagMutability {
    pub const ALL: [Self; 4] =
        [Self::Mutable, Self::Immutable, Self::ImmutableWithExclusion, Self::MutableWithExclusion];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mutable => "MUTABLE",
            Self::Immutable => "IMMUTABLE",
            Self::ImmutableWithExclusion => "IMMUTABLE_WITH_EXCLUSION",
            Self::MutableWithExclusion => "MUTABLE_WITH_EXCLUSION",
        }
    }

    /// Whether this setting takes exclusion filters (and needs at least one).
    pub fn uses_exclusions(self) -> bool {
        matches!(self, Self::ImmutableWithExclusion | Self::MutableWithExclusion)
    }
}

/// How a repository's content is encrypted at rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EncryptionType {
    /// Under the registry's own key.
    #[default]
    Aes256,
    /// Under a named key of a key provider.
    Kms,
    /// Under a named key, with a second layer (ECR's dual-layer option).
    KmsDsse,
}

impl EncryptionType {
    pub const ALL: [Self; 3] = [Self::Aes256, Self::Kms, Self::KmsDsse];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aes256 => "AES256",
            Self::Kms => "KMS",
            Self::KmsDsse => "KMS_DSSE",
        }
    }
}

macro_rules! parse_by_name {
    ($ty:ty, $what:literal) => {
        impl FromStr for $ty {
            type Err = InvalidInput;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL.into_iter().find(|v| v.as_str() == s).ok_or_else(|| {
                    let names: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                    InvalidInput::new($what, format!("{s:?} must be one of [{}]", names.join(", ")))
                })
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

parse_by_name!(TagMutability, "imageTagMutability");
parse_by_name!(EncryptionType, "encryptionType");

/// A repository's settings, fixed at creation except where ECR lets them change.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RepositorySettings {
    pub tag_mutability: TagMutability,
    /// Wildcard filters (`*` matches any run) naming the tags excepted from `tag_mutability`.
    pub mutability_exclusions: Vec<String>,
    pub scan_on_push: bool,
    pub encryption: EncryptionType,
    /// The key for `KMS` encryption; `None` means the provider's default key.
    pub kms_key: Option<String>,
}

impl RepositorySettings {
    /// Whether a tag, once pushed, may be moved to another image.
    pub fn tag_may_move(&self, tag: &str) -> bool {
        let excluded = self.mutability_exclusions.iter().any(|f| wildcard_matches(f, tag));
        match self.tag_mutability {
            TagMutability::Mutable => true,
            TagMutability::Immutable => false,
            TagMutability::ImmutableWithExclusion => excluded,
            TagMutability::MutableWithExclusion => !excluded,
        }
    }
}

/// Matches `text` against a pattern where `*` stands for any run of characters (also none).
pub fn wildcard_matches(pattern: &str, text: &str) -> bool {
    crate::glob_matches(pattern, text, false)
}

/// Whether an exclusion filter is valid: 1 to 128 of `[0-9a-zA-Z._*-]`.
pub fn is_exclusion_filter(filter: &str) -> bool {
    (1..=128).contains(&filter.len())
        && filter.bytes().all(|b| b.is_ascii_alphanumeric() || b"._*-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_names_round_trip_and_bad_names_list_the_choices() {
        for m in TagMutability::ALL {
            assert_eq!(m.as_str().parse::<TagMutability>(), Ok(m));
        }
        for e in EncryptionType::ALL {
            assert_eq!(e.as_str().parse::<EncryptionType>(), Ok(e));
        }
        let err = "mutable".parse::<TagMutability>().expect_err("case matters");
        assert!(err.reason.contains("MUTABLE, IMMUTABLE"), "{err}");
    }

    #[test]
    fn wildcards_match_any_run() {
        for (pattern, text, expected) in [
            ("latest", "latest", true),
            ("latest", "latest2", false),
            ("dev-*", "dev-123", true),
            ("dev-*", "dev-", true),
            ("dev-*", "prod-1", false),
            ("*", "", true),
            ("*-rc*", "v1-rc2", true),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("**", "x", true),
        ] {
            assert_eq!(wildcard_matches(pattern, text), expected, "{pattern} vs {text}");
        }
    }

    #[test]
    fn tag_mutability_with_exclusions() {
        let mut s = RepositorySettings { tag_mutability: TagMutability::Immutable, ..Default::default() };
        assert!(!s.tag_may_move("latest"));
        s.tag_mutability = TagMutability::ImmutableWithExclusion;
        s.mutability_exclusions = vec!["latest".to_owned(), "dev-*".to_owned()];
        assert!(s.tag_may_move("latest") && s.tag_may_move("dev-7") && !s.tag_may_move("v1.0.0"));
        s.tag_mutability = TagMutability::MutableWithExclusion;
        assert!(!s.tag_may_move("latest") && s.tag_may_move("v1.0.0"));
        assert!(RepositorySettings::default().tag_may_move("anything"));
    }

    #[test]
    fn exclusion_filters() {
        assert!(is_exclusion_filter("latest"));
        assert!(is_exclusion_filter("release-*"));
        assert!(!is_exclusion_filter(""));
        assert!(!is_exclusion_filter("a/b"));
        assert!(!is_exclusion_filter(&"a".repeat(129)));
    }
}

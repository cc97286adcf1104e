use std::fmt;
use std::str::FromStr;

use crate::{Digest, InvalidInput};

/// A 12-digit account id, the owner of repositories and principals.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(String);

impl AccountId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for AccountId {
    type Err = InvalidInput;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidInput::new("account id", format!("expected 12 digits, got {s:?}")))
        }
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A repository name inside an account, following ECR's rules: 2 to 256 characters,
/// lower-case path components of `[a-z0-9]` runs joined by `.`, `_`, `__` or one or more `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepositoryName(String);

impl RepositoryName {
    pub const MIN_LEN: usize = 2;
    pub const MAX_LEN: usize = 256;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether one path component matches `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn is_name_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    loop {
        let run_start = i;
        while i < bytes.len() && alnum(bytes[i]) {
            i += 1;
        }
        if i == run_start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        let sep_start = i;
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < bytes.len() && bytes[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < bytes.len() && bytes[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        debug_assert!(i > sep_start);
    }
}

impl FromStr for RepositoryName {
    type Err = InvalidInput;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let what = "repository name";
        if s.len() < Self::MIN_LEN || s.len() > Self::MAX_LEN {
            return Err(InvalidInput::new(
                what,
                format!("must be 2 to 256 characters long, got {} in {s:?}", s.len()),
            ));
        }
        if !s.split('/').all(is_name_component) {
            return Err(InvalidInput::new(
                what,
                format!(
                    "{s:?} must satisfy regular expression \
                     '[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(\\/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*'"
                ),
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An image tag as the OCI distribution spec allows it in a URL:
/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    pub const MAX_LEN: usize = 128;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Tag {
    type Err = InvalidInput;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.as_bytes();
        let first_ok = bytes.first().is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'_');
        let rest_ok =
            bytes.iter().skip(1).all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
        if first_ok && rest_ok && bytes.len() <= Self::MAX_LEN {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidInput::new("tag", format!("{s:?} must match [a-zA-Z0-9_][a-zA-Z0-9._-]{{0,127}}")))
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a manifest URL names: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    Tag(Tag),
    Digest(Digest),
}

impl FromStr for Reference {
    type Err = InvalidInput;

    /// A reference containing `:` is a digest (tags cannot contain one); anything else a tag.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains(':') { s.parse().map(Reference::Digest) } else { s.parse().map(Reference::Tag) }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tag(t) => t.fmt(f),
            Self::Digest(d) => d.fmt(f),
        }
    }
}

/// The ARN of a repository: `arn:aws:ecr:<region>:<account>:repository/<name>`.
pub fn repository_arn(region: &str, account: &AccountId, name: &RepositoryName) -> String {
    format!("arn:aws:ecr:{region}:{account}:repository/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_follow_ecr_rules() {
        for good in [
            "ab",
            "mlops/python-base",
            "a/b/c",
            "a.b",
            "a_b",
            "a__b",
            "a---b",
            "0x/9",
            "project-a/nginx-web-app",
        ] {
            assert!(good.parse::<RepositoryName>().is_ok(), "refused {good:?}");
        }
        for bad in [
            "", "a", "A/b", "/ab", "ab/", "a//b", "a___b", "a..b", "a._b", "-ab", "ab-", "a b", "a/../b",
            "ünï",
        ] {
            assert!(bad.parse::<RepositoryName>().is_err(), "accepted {bad:?}");
        }
        assert!("a".repeat(256).parse::<RepositoryName>().is_ok());
        assert!("a".repeat(257).parse::<RepositoryName>().is_err());
    }

    #[test]
    fn tags_follow_the_oci_grammar() {
        for good in ["latest", "v1.0.0", "_x", "A-b_c.d", &"t".repeat(128)] {
            assert!(good.parse::<Tag>().is_ok(), "refused {good:?}");
        }
        for bad in ["", ".x", "-x", "a:b", "a/b", "a b", &"t".repeat(129)] {
            assert!(bad.parse::<Tag>().is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn account_ids_are_twelve_digits() {
        assert!("123456789012".parse::<AccountId>().is_ok());
        for bad in ["12345678901", "1234567890123", "12345678901a", ""] {
            assert!(bad.parse::<AccountId>().is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn references_tell_tags_from_digests() {
        assert!(matches!("v1".parse::<Reference>(), Ok(Reference::Tag(_))));
        let digest = format!("sha256:{}", "0".repeat(64));
        assert!(matches!(digest.parse::<Reference>(), Ok(Reference::Digest(_))));
        assert!("sha256:zz".parse::<Reference>().is_err());
    }
}

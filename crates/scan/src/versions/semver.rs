//! Semantic versions as Cargo orders them (the `semver` crate: SemVer 2.0 precedence, build
//! metadata breaking ties), which OSV's `SEMVER` ranges and crates.io advisories use. A version
//! that does not parse sorts before every one that does (and as text among those that do not).

use std::cmp::Ordering;

pub fn compare(a: &str, b: &str) -> Ordering {
    let parse = |v: &str| semver::Version::parse(v.trim().trim_start_matches('v')).ok();
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

//! npm's version ordering (node-semver's `compare`): semantic-version precedence, build metadata
//! ignored, read loosely as npm reads what package.json files hold (leading `=`, `v` and spaces
//! dropped). What does not parse sorts before every version that does.

use std::cmp::Ordering;

fn parse(version: &str) -> Option<semver::Version> {
    let cleaned = version.trim_start_matches(|c: char| c == '=' || c == 'v' || c.is_whitespace()).trim_end();
    semver::Version::parse(cleaned).ok()
}

pub fn compare(a: &str, b: &str) -> Ordering {
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => x.cmp_precedence(&y),
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

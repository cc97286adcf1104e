//! Go module versions as the go command reads them: `v` and a semantic version, where `v1` and
//! `v1.2` stand for `v1.0.0` and `v1.2.0` (without a pre-release or build suffix), numbers may be
//! any length, build metadata takes no part in the order, and a string that is not a version
//! sorts before every version (and equal to any other such string). Pseudo-versions
//! (`v1.2.4-0.20060102150405-abcdef123456`, a commit after `v1.2.3`) are pre-releases of the
//! version after their base, so they order as that says.

use std::cmp::Ordering;

/// A parsed Go version. Suffixes keep their leading `-` or `+`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Version<'a> {
    major: &'a str,
    minor: &'a str,
    patch: &'a str,
    prerelease: &'a str,
    build: &'a str,
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
}

/// Dot-separated identifiers of `[0-9A-Za-z-]`, none empty; numeric ones without leading zeros
/// when `numeric_rule` (pre-releases; build metadata allows them).
fn are_identifiers(s: &str, numeric_rule: bool) -> bool {
    s.split('.').all(|id| {
        !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !(numeric_rule
                && id.bytes().all(|b| b.is_ascii_digit())
                && id.len() > 1
                && id.starts_with('0'))
    })
}

fn parse(v: &str) -> Option<Version<'_>> {
    let rest = v.strip_prefix('v')?;
    let (core, build) = match rest.find('+') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, ""),
    };
    let (numbers, prerelease) = match core.find('-') {
        Some(at) => (&core[..at], &core[at..]),
        None => (core, ""),
    };
    let mut parts = numbers.split('.');
    let major = parts.next().filter(|p| is_number(p))?;
    let minor = parts.next();
    let patch = parts.next();
    if parts.next().is_some() {
        return None;
    }
    let short = minor.is_none() || patch.is_none();
    // The shorthands `v1` and `v1.2` take no suffix.
    if short && !(prerelease.is_empty() && build.is_empty()) {
        return None;
    }
    let minor = match minor {
        Some(m) if is_number(m) => m,
        Some(_) => return None,
        None => "0",
    };
    let patch = match patch {
        Some(p) if is_number(p) => p,
        Some(_) => return None,
        None => "0",
    };
    if let Some(ids) = prerelease.strip_prefix('-')
        && !are_identifiers(ids, true)
    {
        return None;
    }
    if let Some(ids) = build.strip_prefix('+')
        && !are_identifiers(ids, false)
    {
        return None;
    }
    Some(Version { major, minor, patch, prerelease, build })
}

/// Whether `v` is a Go module version.
pub fn is_valid(v: &str) -> bool {
    parse(v).is_some()
}

/// `v` written out in full, without build metadata (`v1.2` is `v1.2.0`); `None` if invalid.
pub fn canonical(v: &str) -> Option<String> {
    parse(v).map(|p| format!("v{}.{}.{}{}", p.major, p.minor, p.patch, p.prerelease))
}

/// Decimal strings of any length, without leading zeros.
fn compare_numbers(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn compare_prereleases(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        // A release comes after its pre-releases.
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        (false, false) => {}
    }
    let numeric = |id: &str| id.bytes().all(|b| b.is_ascii_digit());
    let mut left = a[1..].split('.');
    let mut right = b[1..].split('.');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let order = match (numeric(x), numeric(y)) {
                    (true, true) => compare_numbers(x, y),
                    (true, false) => Ordering::Less,
                    (false, true) => Ordering::Greater,
                    (false, false) => x.cmp(y),
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

pub fn compare(a: &str, b: &str) -> Ordering {
    match (parse(a), parse(b)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => compare_numbers(x.major, y.major)
            .then_with(|| compare_numbers(x.minor, y.minor))
            .then_with(|| compare_numbers(x.patch, y.patch))
            .then_with(|| compare_prereleases(x.prerelease, y.prerelease)),
    }
}

/// The parts of a pseudo-version: what precedes the timestamp (`v1.2.4-0`, `v1.2.3-pre.0` or
/// `v0.0.0`), the 14-digit UTC timestamp, the revision and the build metadata (with its `+`).
struct Pseudo<'a> {
    stem: &'a str,
    timestamp: &'a str,
    revision: &'a str,
    build: &'a str,
}

fn parse_pseudo(v: &str) -> Option<Pseudo<'_>> {
    let parsed = parse(v)?;
    // A pseudo-version is written out in full, with a pre-release whose last two identifiers
    // (by `-` or `.`) are the timestamp and the revision.
    if parsed.prerelease.is_empty() || v.matches('-').count() < 2 {
        return None;
    }
    let without_build = &v[..v.len() - parsed.build.len()];
    let (before_revision, revision) = without_build.rsplit_once('-')?;
    let dash = before_revision.rfind('-')?;
    let dot = before_revision.rfind('.').filter(|&dot| dot > dash);
    let at = dot.unwrap_or(dash);
    let (stem, timestamp) = (&before_revision[..at], &before_revision[at + 1..]);
    let well_formed = timestamp.len() == 14
        && timestamp.bytes().all(|b| b.is_ascii_digit())
        && !revision.is_empty()
        && revision.bytes().all(|b| b.is_ascii_alphanumeric());
    // The three forms: vX.0.0-T-R (no base), vX.Y.Z-0.T-R (after vX.Y.(Z-1)), vX.Y.Z-pre.0.T-R.
    let stem_pre = stem.find('-').map_or("", |at| &stem[at..]);
    let form_known = match (stem_pre.is_empty(), dot.is_some()) {
        (true, false) => stem == format!("v{}.0.0", parsed.major),
        (false, true) => stem_pre == "-0" || stem.ends_with(".0"),
        _ => false,
    };
    (well_formed && form_known).then_some(Pseudo { stem, timestamp, revision, build: parsed.build })
}

/// Whether `v` is a pseudo-version (a commit, named after the version it follows).
pub fn is_pseudo(v: &str) -> bool {
    parse_pseudo(v).is_some()
}

/// `n + 1` for a decimal string of any length.
fn increment(n: &str) -> String {
    let mut digits: Vec<u8> = n.bytes().collect();
    for digit in digits.iter_mut().rev() {
        if *digit == b'9' {
            *digit = b'0';
        } else {
            *digit += 1;
            return String::from_utf8_lossy(&digits).into_owned();
        }
    }
    format!("1{}", String::from_utf8_lossy(&digits))
}

/// `n - 1` for a decimal string of any length; `None` for zero.
fn decrement(n: &str) -> Option<String> {
    let mut digits: Vec<u8> = n.bytes().collect();
    for digit in digits.iter_mut().rev() {
        if *digit == b'0' {
            *digit = b'9';
        } else {
            *digit -= 1;
            let text = String::from_utf8_lossy(&digits).into_owned();
            let trimmed = text.trim_start_matches('0');
            return Some(if trimmed.is_empty() { "0".to_owned() } else { trimmed.to_owned() });
        }
    }
    None
}

/// The pseudo-version of a commit at `timestamp` (14 digits, UTC) with revision `revision`,
/// after the version `base` (or, with no base, in major version `major`, `v0` if empty).
pub fn pseudo_version(major: &str, base: &str, timestamp: &str, revision: &str) -> String {
    let segment = format!("{timestamp}-{revision}");
    let Some(parsed) = parse(base) else {
        let major = if major.is_empty() { "v0" } else { major };
        return format!("{major}.0.0-{segment}");
    };
    if parsed.prerelease.is_empty() {
        format!("v{}.{}.{}-0.{segment}{}", parsed.major, parsed.minor, increment(parsed.patch), parsed.build)
    } else {
        format!(
            "v{}.{}.{}{}.0.{segment}{}",
            parsed.major, parsed.minor, parsed.patch, parsed.prerelease, parsed.build
        )
    }
}

/// The version a pseudo-version follows (empty when it follows none); `None` if `v` is not a
/// pseudo-version or names no possible base.
pub fn pseudo_base(v: &str) -> Option<String> {
    let pseudo = parse_pseudo(v)?;
    match pseudo.stem.find('-').map(|at| (&pseudo.stem[..at], &pseudo.stem[at..])) {
        // vX.0.0-T-R: no base, and so no build metadata either.
        None => pseudo.build.is_empty().then(String::new),
        // vX.Y.(Z+1)-0.T-R: the base is vX.Y.Z.
        Some((numbers, "-0")) => {
            let (head, patch) = numbers.rsplit_once('.')?;
            Some(format!("{head}.{}{}", decrement(patch)?, pseudo.build))
        }
        // vX.Y.Z-pre.0.T-R: the base is vX.Y.Z-pre.
        Some(_) => Some(format!("{}{}", pseudo.stem.strip_suffix(".0")?, pseudo.build)),
    }
}

/// The commit time of a pseudo-version, `2006-01-02T15:04:05Z`.
pub fn pseudo_time(v: &str) -> Option<String> {
    let t = parse_pseudo(v)?.timestamp;
    Some(format!("{}-{}-{}T{}:{}:{}Z", &t[..4], &t[4..6], &t[6..8], &t[8..10], &t[10..12], &t[12..14]))
}

/// The revision (commit hash prefix) of a pseudo-version.
pub fn pseudo_revision(v: &str) -> Option<&str> {
    parse_pseudo(v).map(|p| p.revision)
}

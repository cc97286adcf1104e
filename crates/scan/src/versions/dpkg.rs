//! dpkg's version ordering (`dpkg --compare-versions`): `[epoch:]upstream[-revision]`, the epoch
//! compared as a number, then upstream and revision alternately by their non-digit runs
//! (`~` before everything, even the end; letters before other characters) and digit runs (as
//! numbers).

use std::cmp::Ordering;

struct Parsed<'a> {
    epoch: u64,
    upstream: &'a str,
    revision: &'a str,
}

fn parse(version: &str) -> Parsed<'_> {
    let version = version.trim();
    let (epoch, rest) = match version.split_once(':') {
        Some((epoch, rest)) if epoch.bytes().all(|b| b.is_ascii_digit()) && !epoch.is_empty() => {
            (epoch.parse().unwrap_or(u64::MAX), rest)
        }
        _ => (0, version),
    };
    let (upstream, revision) = rest.rsplit_once('-').unwrap_or((rest, ""));
    Parsed { epoch, upstream, revision }
}

/// The weight of one character of a non-digit run; the end of the run weighs 0.
fn weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

fn compare_part(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    while !a.is_empty() || !b.is_empty() {
        while a.first().is_some_and(|c| !c.is_ascii_digit()) || b.first().is_some_and(|c| !c.is_ascii_digit())
        {
            let (wa, wb) = (weight(a.first().copied()), weight(b.first().copied()));
            if wa != wb {
                return wa.cmp(&wb);
            }
            a = a.get(1..).unwrap_or_default();
            b = b.get(1..).unwrap_or_default();
        }
        let digits = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
        let (na, nb) = (digits(a), digits(b));
        let strip = |s: &[u8]| -> usize { s.iter().take_while(|&&c| c == b'0').count() };
        let (da, db) = (&a[strip(&a[..na])..na], &b[strip(&b[..nb])..nb]);
        // Numbers of any length: the longer (without leading zeros) is larger, else by digits.
        let by_number = da.len().cmp(&db.len()).then_with(|| da.cmp(db));
        if by_number != Ordering::Equal {
            return by_number;
        }
        a = &a[na..];
        b = &b[nb..];
    }
    Ordering::Equal
}

/// How `a` sorts against `b` as dpkg orders versions.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (a, b) = (parse(a), parse(b));
    a.epoch
        .cmp(&b.epoch)
        .then_with(|| compare_part(a.upstream, b.upstream))
        .then_with(|| compare_part(a.revision, b.revision))
}

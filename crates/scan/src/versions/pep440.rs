//! Python's version ordering (PEP 440): `[N!]release[{a|b|rc}N][.postN][.devN][+local]`, with the
//! spellings PEP 440 normalizes (`alpha`, `c`, `pre`, `-N` for a post-release, `rev`, `_` and `-`
//! separators, upper case, a leading `v`). Developmental releases sort before pre-releases,
//! pre-releases before the release, post-releases after it; trailing zeros of the release do
//! not count; a local version sorts after the same public version.

use std::cmp::Ordering;

/// A version reduced to what orders it.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    epoch: u64,
    release: Vec<u64>,
    /// (0, 0, 0) for a developmental release without a pre-release, (1, kind, n) for a
    /// pre-release (a < b < rc), (2, 0, 0) for none.
    pre: (u8, u8, u64),
    /// None sorts before any post-release.
    post: Option<u64>,
    /// None (not developmental) sorts after any developmental release.
    dev: (u8, u64),
    /// Local segments: numbers after text; no local version sorts first.
    local: Vec<(u8, u64, String)>,
}

/// The number that follows a label, possibly after a separator (`a1`, `a.1`, `a-1`, `a`).
fn number_after(s: &str) -> (u64, &str) {
    let t =
        s.strip_prefix(['.', '-', '_']).filter(|t| t.starts_with(|c: char| c.is_ascii_digit())).unwrap_or(s);
    let digits = t.len() - t.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return (0, s);
    }
    (t[..digits].parse().unwrap_or(u64::MAX), &t[digits..])
}

/// What follows one of `names` at the start of `s` (after an optional separator).
fn label<'a>(s: &'a str, names: &[&str]) -> Option<&'a str> {
    let t = s.trim_start_matches(['.', '-', '_']);
    names.iter().find(|n| t.starts_with(**n)).map(|n| &t[n.len()..])
}

fn parse(version: &str) -> Option<Key> {
    let lower = version.trim().to_ascii_lowercase();
    let mut s = lower.strip_prefix('v').unwrap_or(&lower);
    let (public, local) = match s.split_once('+') {
        Some((public, local)) => (public, Some(local)),
        None => (s, None),
    };
    s = public;
    let epoch = match s.split_once('!') {
        Some((epoch, rest)) => {
            s = rest;
            epoch.parse().ok()?
        }
        None => 0,
    };
    let mut release = Vec::new();
    loop {
        let digits = s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return None;
        }
        release.push(s[..digits].parse().unwrap_or(u64::MAX));
        s = &s[digits..];
        match s.strip_prefix('.') {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => s = rest,
            _ => break,
        }
    }
    while release.len() > 1 && release.last() == Some(&0) {
        release.pop();
    }
    let mut pre = None;
    for (kind, names) in
        [(0u8, &["alpha", "a"][..]), (1, &["beta", "b"]), (2, &["rc", "c", "preview", "pre"])]
    {
        if let Some(rest) = label(s, names) {
            let (n, rest) = number_after(rest);
            pre = Some((kind, n));
            s = rest;
            break;
        }
    }
    let mut post = None;
    if let Some(rest) = label(s, &["post", "rev", "r"]) {
        let (n, rest) = number_after(rest);
        post = Some(n);
        s = rest;
    } else if let Some(rest) = s.strip_prefix('-').filter(|r| r.starts_with(|c: char| c.is_ascii_digit())) {
        let (n, rest) = number_after(rest);
        post = Some(n);
        s = rest;
    }
    let mut dev = None;
    if let Some(rest) = label(s, &["dev"]) {
        let (n, rest) = number_after(rest);
        dev = Some(n);
        s = rest;
    }
    if !s.is_empty() {
        return None;
    }
    let pre = match (pre, post, dev) {
        (None, None, Some(_)) => (0, 0, 0),
        (None, _, _) => (2, 0, 0),
        (Some((kind, n)), _, _) => (1, kind, n),
    };
    let local = local
        .map(|l| {
            l.split(['.', '-', '_'])
                .map(|part| match part.parse::<u64>() {
                    Ok(n) => (1, n, String::new()),
                    Err(_) => (0, 0, part.to_owned()),
                })
                .collect()
        })
        .unwrap_or_default();
    Some(Key { epoch, release, pre, post, dev: dev.map_or((1, 0), |n| (0, n)), local })
}

/// How `a` sorts against `b` under PEP 440; a version that is not valid sorts before every valid
/// one (and as text among the invalid).
pub fn compare(a: &str, b: &str) -> Ordering {
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => {
            // Release segments compare as if padded with zeros.
            let len = x.release.len().max(y.release.len());
            let pad = |r: &[u64]| (0..len).map(|i| r.get(i).copied().unwrap_or(0)).collect::<Vec<_>>();
            x.epoch
                .cmp(&y.epoch)
                .then_with(|| pad(&x.release).cmp(&pad(&y.release)))
                .then_with(|| x.pre.cmp(&y.pre))
                .then_with(|| x.post.cmp(&y.post))
                .then_with(|| x.dev.cmp(&y.dev))
                .then_with(|| x.local.cmp(&y.local))
        }
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

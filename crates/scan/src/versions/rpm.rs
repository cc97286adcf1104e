//! rpm's version ordering (`rpmvercmp`), and whole `[epoch:]version[-release]` values ordered
//! epoch first. Versions split into runs of digits and runs of letters (anything else only
//! separates); runs compare as numbers or as text, a number beating letters; `~` sorts before
//! everything, even the end; `^` after the end but before anything else.

use std::cmp::Ordering;

/// The longest prefix of `s` whose bytes all satisfy `class`, and the rest.
fn run(s: &[u8], class: fn(&u8) -> bool) -> (&[u8], &[u8]) {
    let n = s.iter().take_while(|c| class(c)).count();
    s.split_at(n)
}

/// How version text `a` sorts against `b` as rpm orders versions.
pub fn compare(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    let separator = |c: &u8| !c.is_ascii_alphanumeric() && *c != b'~' && *c != b'^';
    loop {
        a = run(a, separator).1;
        b = run(b, separator).1;
        match (a.first(), b.first()) {
            (Some(b'~'), Some(b'~')) | (Some(b'^'), Some(b'^')) => {
                a = &a[1..];
                b = &b[1..];
                continue;
            }
            (Some(b'~'), _) => return Ordering::Less,
            (_, Some(b'~')) => return Ordering::Greater,
            (Some(b'^'), None) => return Ordering::Greater,
            (None, Some(b'^')) => return Ordering::Less,
            (Some(b'^'), _) => return Ordering::Less,
            (_, Some(b'^')) => return Ordering::Greater,
            (None, _) | (_, None) => break,
            _ => {}
        }
        let numeric = a[0].is_ascii_digit();
        let class: fn(&u8) -> bool = if numeric { u8::is_ascii_digit } else { u8::is_ascii_alphabetic };
        let ((mut x, rest_a), (mut y, rest_b)) = (run(a, class), run(b, class));
        if y.is_empty() {
            // A run of digits against letters: the number is newer.
            return if numeric { Ordering::Greater } else { Ordering::Less };
        }
        let order = if numeric {
            x = &x[x.iter().take_while(|&&c| c == b'0').count()..];
            y = &y[y.iter().take_while(|&&c| c == b'0').count()..];
            x.len().cmp(&y.len()).then_with(|| x.cmp(y))
        } else {
            x.cmp(y)
        };
        if order != Ordering::Equal {
            return order;
        }
        a = rest_a;
        b = rest_b;
    }
    // Whichever has more left is newer.
    a.is_empty().cmp(&b.is_empty()).reverse()
}

/// `[epoch:]version[-release]`, epoch as a number (none is 0).
fn split(evr: &str) -> (u64, &str, Option<&str>) {
    let (epoch, rest) = match evr.split_once(':') {
        Some((epoch, rest)) if !epoch.is_empty() && epoch.bytes().all(|c| c.is_ascii_digit()) => {
            (epoch.parse().unwrap_or(u64::MAX), rest)
        }
        _ => (0, evr),
    };
    match rest.rsplit_once('-') {
        Some((version, release)) => (epoch, version, Some(release)),
        None => (epoch, rest, None),
    }
}

/// How `a` sorts against `b` as rpm orders whole package versions; a release is compared only
/// when both name one.
pub fn compare_evr(a: &str, b: &str) -> Ordering {
    let ((ea, va, ra), (eb, vb, rb)) = (split(a), split(b));
    ea.cmp(&eb).then_with(|| compare(va, vb)).then_with(|| match (ra, rb) {
        (Some(ra), Some(rb)) => compare(ra, rb),
        _ => Ordering::Equal,
    })
}

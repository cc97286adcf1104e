//! apk's version ordering. A version is read as a run of tokens, each of a kind: the first
//! number, `.`-separated numbers, one letter, `_` suffixes (`alpha`, `beta`, `pre`, `rc` sort
//! before the plain version; `cvs`, `svn`, `git`, `hg`, `p` after), a suffix's number and the
//! `-r` revision. Versions compare token by token; where one runs out or changes kind first, the
//! kind decides (a pre-release suffix sorts lower, else the kind later in that list sorts lower).
//! A `.` component with leading zeros weighs minus their count, so `1.07 < 1.7`.

use std::cmp::Ordering;

/// Token kinds, in the order that decides between versions whose next tokens differ in kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Invalid,
    Dotted,
    Number,
    Letter,
    Suffix,
    SuffixNumber,
    Revision,
    End,
}

const PRE_RELEASE: [&str; 4] = ["alpha", "beta", "pre", "rc"];
const POST_RELEASE: [&str; 5] = ["cvs", "svn", "git", "hg", "p"];

struct Scanner<'a> {
    rest: &'a [u8],
    upcoming: Kind,
}

impl<'a> Scanner<'a> {
    fn new(version: &'a str) -> Self {
        Self { rest: version.as_bytes(), upcoming: Kind::Number }
    }

    fn digits(&mut self) -> i64 {
        let count = self.rest.iter().take_while(|c| c.is_ascii_digit()).count();
        let value = self.rest[..count]
            .iter()
            .fold(0i64, |v, c| v.saturating_mul(10).saturating_add(i64::from(c - b'0')));
        self.rest = &self.rest[count..];
        value
    }

    /// Reads the upcoming token, returning its weight and working out the kind after it.
    fn take(&mut self) -> i64 {
        if self.rest.is_empty() {
            self.upcoming = Kind::End;
            return 0;
        }
        let mut forced = None;
        let value = match self.upcoming {
            Kind::Dotted if self.rest[0] == b'0' => {
                let zeros = self.rest.iter().take_while(|&&c| c == b'0').count();
                self.rest = &self.rest[zeros..];
                forced = Some(Kind::Number);
                -(zeros as i64)
            }
            Kind::Dotted | Kind::Number | Kind::SuffixNumber | Kind::Revision => self.digits(),
            Kind::Letter => {
                let letter = i64::from(self.rest[0]);
                self.rest = &self.rest[1..];
                letter
            }
            Kind::Suffix => {
                let named = |names: &[&str]| names.iter().position(|n| self.rest.starts_with(n.as_bytes()));
                let (weight, name) = match (named(&PRE_RELEASE), named(&POST_RELEASE)) {
                    (Some(i), _) => (i as i64 - PRE_RELEASE.len() as i64, PRE_RELEASE[i]),
                    (None, Some(i)) => (i as i64, POST_RELEASE[i]),
                    (None, None) => {
                        self.upcoming = Kind::Invalid;
                        return -1;
                    }
                };
                self.rest = &self.rest[name.len()..];
                weight
            }
            Kind::Invalid | Kind::End => {
                self.upcoming = Kind::Invalid;
                return -1;
            }
        };
        // After a run of leading zeros a number follows, even an empty one (so that `6.0_pre1`
        // still meets `6.0` at the same kind of token).
        self.upcoming = match (forced, self.rest.is_empty()) {
            (Some(kind), _) => kind,
            (None, true) => Kind::End,
            (None, false) => self.kind_after(),
        };
        value
    }

    /// The kind of the token that starts at `rest`, given the one just read; what may not
    /// follow it is invalid.
    fn kind_after(&mut self) -> Kind {
        let previous = self.upcoming;
        let c = self.rest[0];
        let next = if matches!(previous, Kind::Number | Kind::Dotted) && c.is_ascii_lowercase() {
            Kind::Letter
        } else if previous == Kind::Letter && c.is_ascii_digit() {
            Kind::Number
        } else if previous == Kind::Suffix && c.is_ascii_digit() {
            Kind::SuffixNumber
        } else {
            self.rest = &self.rest[1..];
            match c {
                b'.' => Kind::Dotted,
                b'_' => Kind::Suffix,
                b'-' if self.rest.first() == Some(&b'r') => {
                    self.rest = &self.rest[1..];
                    Kind::Revision
                }
                _ => Kind::Invalid,
            }
        };
        // Kinds only move forward, but for another dotted number, another suffix, or digits
        // after a letter.
        let allowed_back = matches!(
            (previous, next),
            (Kind::Number, Kind::Dotted) | (Kind::SuffixNumber, Kind::Suffix) | (Kind::Letter, Kind::Number)
        );
        if next < previous && !allowed_back { Kind::Invalid } else { next }
    }
}

/// How `a` sorts against `b` as apk orders versions.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (Scanner::new(a), Scanner::new(b));
    let (mut weight_a, mut weight_b) = (0, 0);
    while a.upcoming == b.upcoming && !matches!(a.upcoming, Kind::End | Kind::Invalid) && weight_a == weight_b
    {
        weight_a = a.take();
        weight_b = b.take();
    }
    if weight_a != weight_b {
        return weight_a.cmp(&weight_b);
    }
    if a.upcoming == b.upcoming {
        return Ordering::Equal;
    }
    // One runs on where the other stops or changes kind: a pre-release suffix sorts lower.
    let pre_release = |s: &Scanner<'_>| {
        s.upcoming == Kind::Suffix && PRE_RELEASE.iter().any(|n| s.rest.starts_with(n.as_bytes()))
    };
    if pre_release(&a) {
        return Ordering::Less;
    }
    if pre_release(&b) {
        return Ordering::Greater;
    }
    b.upcoming.cmp(&a.upcoming)
}

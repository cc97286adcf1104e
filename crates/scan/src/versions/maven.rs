//! Maven versions as Maven orders them (its `ComparableVersion`): any string is a version, read
//! as numbers and qualifiers split at `.`, at `-` (which opens a nested list) and where digits
//! and letters meet; trailing zeros and release qualifiers (`ga`, `final`, `release`) carry no
//! weight, and qualifiers order `alpha < beta < milestone < rc < snapshot < (release) < sp`, then
//! any other qualifier as text.

use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    /// Digits without leading zeros ("" for zero), compared by length, then as text.
    Number(String),
    Qualifier(String),
    List(Vec<Item>),
}

/// The known qualifiers in their order; the empty one is a release.
const QUALIFIERS: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];
const RELEASE: usize = 5;

/// Where a qualifier sorts: the known ones by their place, any other after them all, as text.
fn qualifier_rank(q: &str) -> (usize, &str) {
    match QUALIFIERS.iter().position(|k| *k == q) {
        Some(at) => (at, ""),
        None => (QUALIFIERS.len(), q),
    }
}

fn qualifier(text: &str, followed_by_digit: bool) -> Item {
    let text = match (followed_by_digit, text) {
        (true, "a") => "alpha",
        (true, "b") => "beta",
        (true, "m") => "milestone",
        (_, "ga" | "final" | "release") => "",
        (_, "cr") => "rc",
        (_, other) => other,
    };
    Item::Qualifier(text.to_owned())
}

fn item(text: &str, digits: bool) -> Item {
    if digits { Item::Number(text.trim_start_matches('0').to_owned()) } else { qualifier(text, false) }
}

impl Item {
    /// Whether the item weighs nothing at the end of a list: zero, a release, an empty list.
    fn is_null(&self) -> bool {
        match self {
            Item::Number(n) => n.is_empty(),
            Item::Qualifier(q) => q.is_empty(),
            Item::List(items) => items.is_empty(),
        }
    }
}

/// Drops the items that weigh nothing from the end, up to the last number or qualifier.
fn normalize(items: &mut Vec<Item>) {
    let mut at = items.len();
    while at > 0 {
        at -= 1;
        if items[at].is_null() {
            items.remove(at);
        } else if !matches!(items[at], Item::List(_)) {
            break;
        }
    }
}

fn parse(version: &str) -> Vec<Item> {
    let version = version.to_lowercase();
    // Each `-` and each switch between digits and letters opens a list inside the current one,
    // which then takes the rest: so the lists form a chain, one level per opening.
    let mut levels: Vec<Vec<Item>> = vec![Vec::new()];
    let mut digits = false;
    let mut start = 0;
    let open = |levels: &mut Vec<Vec<Item>>| levels.push(Vec::new());
    for (i, c) in version.char_indices() {
        let current = levels.len() - 1;
        match c {
            '.' | '-' => {
                let piece =
                    if i == start { Item::Number(String::new()) } else { item(&version[start..i], digits) };
                levels[current].push(piece);
                start = i + 1;
                if c == '-' {
                    open(&mut levels);
                }
            }
            _ if c.is_ascii_digit() => {
                if !digits && i > start {
                    levels[current].push(qualifier(&version[start..i], true));
                    start = i;
                    open(&mut levels);
                }
                digits = true;
            }
            _ => {
                if digits && i > start {
                    levels[current].push(item(&version[start..i], true));
                    start = i;
                    open(&mut levels);
                }
                digits = false;
            }
        }
    }
    if version.len() > start {
        let last = levels.len() - 1;
        levels[last].push(item(&version[start..], digits));
    }
    let mut child: Option<Vec<Item>> = None;
    while let Some(mut items) = levels.pop() {
        if let Some(inner) = child.take() {
            items.push(Item::List(inner));
        }
        normalize(&mut items);
        child = Some(items);
    }
    child.unwrap_or_default()
}

fn compare_numbers(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// `a` against `b`, where a missing item (`None`) is what the shorter list lacks.
fn compare_items(a: Option<&Item>, b: Option<&Item>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (Some(_), None) => against_nothing(a),
        (None, Some(_)) => against_nothing(b).reverse(),
        (Some(x), Some(y)) => match (x, y) {
            (Item::Number(m), Item::Number(n)) => compare_numbers(m, n),
            (Item::Number(_), _) => Ordering::Greater,
            (Item::Qualifier(_), Item::Number(_) | Item::List(_)) => Ordering::Less,
            (Item::Qualifier(p), Item::Qualifier(q)) => qualifier_rank(p).cmp(&qualifier_rank(q)),
            (Item::List(_), Item::Number(_)) => Ordering::Less,
            (Item::List(_), Item::Qualifier(_)) => Ordering::Greater,
            (Item::List(l), Item::List(m)) => compare_lists(l, m),
        },
    }
}

/// An item against the end of the other list.
fn against_nothing(item: Option<&Item>) -> Ordering {
    match item {
        None => Ordering::Equal,
        Some(Item::Number(n)) => {
            if n.is_empty() {
                Ordering::Equal
            } else {
                Ordering::Greater
            }
        }
        Some(Item::Qualifier(q)) => qualifier_rank(q).cmp(&(RELEASE, "")),
        Some(Item::List(items)) => against_nothing(items.first()),
    }
}

fn compare_lists(a: &[Item], b: &[Item]) -> Ordering {
    (0..a.len().max(b.len()))
        .map(|i| compare_items(a.get(i), b.get(i)))
        .find(|o| *o != Ordering::Equal)
        .unwrap_or(Ordering::Equal)
}

pub fn compare(a: &str, b: &str) -> Ordering {
    compare_lists(&parse(a), &parse(b))
}

//! Evaluating a policy against a repository's images, as ECR does:
//!
//! 1. every rule selects its images (storage class, tag status, tags) and finds, among *all* of
//!    them, those its count condition takes;
//! 2. each image belongs to the highest-priority (lowest-numbered) rule that selects it, and only
//!    that rule may act on it, even if the rule keeps it;
//! 3. an image that an index still needs, or an artifact whose subject is still there, is never
//!    acted on: children go with their index, referrers with their subject.

use std::collections::{BTreeMap, BTreeSet};

use berth_core::{Digest, glob_matches};

use crate::{Count, LifecyclePolicy, Rule, RuleAction, StorageClass, TagFilter, TagStatus};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// What a rule needs to know of one image. Times are milliseconds since the epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub digest: Digest,
    pub tags: Vec<String>,
    /// When it was pushed, or restored from archive if that came later.
    pub pushed_at: i64,
    pub last_pulled_at: Option<i64>,
    pub storage_class: StorageClass,
    /// When it was archived (archived images only).
    pub archived_at: Option<i64>,
    /// The indexes in the repository that list this image.
    pub parents: Vec<Digest>,
    /// The image this one refers to (a signature, an SBOM), if any.
    pub subject: Option<Digest>,
}

/// What the policy does to one image, and which rule decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub digest: Digest,
    pub action: RuleAction,
    pub rule_priority: u32,
}

fn tag_matches(filter: &TagFilter, tags: &[String]) -> bool {
    match filter {
        TagFilter::None => true,
        // Every prefix, and every pattern, must match at least one tag.
        TagFilter::Prefixes(prefixes) => {
            prefixes.iter().all(|p| tags.iter().any(|t| t.starts_with(p.as_str())))
        }
        TagFilter::Patterns(patterns) => {
            patterns.iter().all(|p| tags.iter().any(|t| glob_matches(p, t, false)))
        }
    }
}

fn selects(rule: &Rule, image: &Image) -> bool {
    let selection = &rule.selection;
    selection.storage_class == image.storage_class
        && match selection.tag_status {
            TagStatus::Any => true,
            TagStatus::Untagged => image.tags.is_empty(),
            TagStatus::Tagged => !image.tags.is_empty() && tag_matches(&selection.tags, &image.tags),
        }
}

/// Newest first; equal times by digest, so that a count always keeps the same images.
fn newest_first(a: &Image, b: &Image) -> std::cmp::Ordering {
    b.pushed_at.cmp(&a.pushed_at).then_with(|| a.digest.cmp(&b.digest))
}

/// The images of `selected` the rule's count condition takes at `now`.
fn taken<'a>(rule: &Rule, mut selected: Vec<&'a Image>, now: i64) -> Vec<&'a Image> {
    let older_than = |at: i64, days: u32| now - at > i64::from(days) * DAY_MS;
    match rule.selection.count {
        Count::MoreThan(keep) => {
            selected.sort_by(|a, b| newest_first(a, b));
            selected.into_iter().skip(keep as usize).collect()
        }
        Count::SincePushedDays(days) => {
            selected.into_iter().filter(|i| older_than(i.pushed_at, days)).collect()
        }
        Count::SincePulledDays(days) => selected
            .into_iter()
            .filter(|i| older_than(i.last_pulled_at.map_or(i.pushed_at, |p| p.max(i.pushed_at)), days))
            .collect(),
        Count::SinceTransitionedDays(days) => {
            selected.into_iter().filter(|i| i.archived_at.is_some_and(|at| older_than(at, days))).collect()
        }
    }
}

/// What `policy` does to `images` at `now`: one decision per image it expires or archives.
pub fn evaluate(policy: &LifecyclePolicy, images: &[Image], now: i64) -> Vec<Decision> {
    let present: BTreeSet<&Digest> = images.iter().map(|i| &i.digest).collect();
    // Artifacts whose subject is here live and die with it; rules neither count nor take them.
    let candidates: Vec<&Image> =
        images.iter().filter(|i| i.subject.as_ref().is_none_or(|s| !present.contains(s))).collect();

    let mut acted: BTreeMap<&Digest, Decision> = BTreeMap::new();
    let mut owned: BTreeSet<&Digest> = BTreeSet::new();
    for rule in &policy.rules {
        let selected: Vec<&Image> = candidates.iter().copied().filter(|i| selects(rule, i)).collect();
        let take: BTreeSet<&Digest> =
            taken(rule, selected.clone(), now).into_iter().map(|i| &i.digest).collect();
        for image in selected {
            // The first rule (by priority) to select an image owns it, whatever it decides.
            if owned.insert(&image.digest) && take.contains(&image.digest) {
                let decision = Decision {
                    digest: image.digest.clone(),
                    action: rule.action,
                    rule_priority: rule.priority,
                };
                acted.insert(&image.digest, decision);
            }
        }
    }

    // An image an index still lists stays until the index goes (or is archived with it); an
    // index kept makes its children kept, which can keep their own children in turn.
    loop {
        let kept_by_index: Vec<&Digest> = acted
            .keys()
            .copied()
            .filter(|digest| {
                images.iter().find(|i| &i.digest == *digest).is_some_and(|image| {
                    image.parents.iter().any(|parent| present.contains(parent) && !acted.contains_key(parent))
                })
            })
            .collect();
        if kept_by_index.is_empty() {
            break;
        }
        for digest in kept_by_index {
            acted.remove(digest);
        }
    }

    // Referrers go with their subject (and theirs with them), the way it goes.
    let mut decisions: BTreeMap<Digest, Decision> =
        acted.into_values().map(|d| (d.digest.clone(), d)).collect();
    loop {
        let following: Vec<Decision> = images
            .iter()
            .filter(|i| !decisions.contains_key(&i.digest))
            .filter_map(|i| {
                let cause = decisions.get(i.subject.as_ref()?)?;
                Some(Decision { digest: i.digest.clone(), ..cause.clone() })
            })
            .collect();
        if following.is_empty() {
            break;
        }
        decisions.extend(following.into_iter().map(|d| (d.digest.clone(), d)));
    }
    decisions.into_values().collect()
}

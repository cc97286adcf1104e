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

/// What a policy does to one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Keep,
    Act(RuleAction),
}

/// Which clock a day-count rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    Pushed,
    Pulled,
    Transitioned,
}

/// Why an image is kept or acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// No rule selects it (its storage class, tag status or tags match none).
    NotSelected,
    /// The `rank`th newest of the images its rule selects, which keeps `keep`.
    Rank { rank: usize, keep: u32 },
    /// `age_days` old by the rule's clock, against the rule's limit of `limit_days`.
    Age { since: Since, age_days: i64, limit_days: u32 },
    /// An index that stays lists it.
    ListedByIndex(Digest),
    /// An artifact (a signature, an SBOM) that shares its subject's fate.
    FollowsSubject(Digest),
    /// Pulled `days_ago`, within the registry's protection of recently pulled images.
    RecentlyPulled { days_ago: i64, protect_days: u32 },
}

/// Every image's fate: the rule that owns it (the highest-priority rule that selects it, if any),
/// what happens, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub digest: Digest,
    pub rule_priority: Option<u32>,
    pub outcome: Outcome,
    pub reason: Reason,
}

/// What the registry adds to ECR's semantics; the default is ECR's own behaviour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Protections {
    /// Keep images pulled within this many days, whatever the rules say.
    pub pulled_within_days: Option<u32>,
}

fn days(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

/// Whether the rule takes each of `selected` at `now`, and why, by digest.
fn judge<'a>(rule: &Rule, mut selected: Vec<&'a Image>, now: i64) -> BTreeMap<&'a Digest, (bool, Reason)> {
    let over = |since: Since, at: i64, limit: u32| {
        let age = now - at;
        (age > i64::from(limit) * DAY_MS, Reason::Age { since, age_days: days(age), limit_days: limit })
    };
    match rule.selection.count {
        Count::MoreThan(keep) => {
            selected.sort_by(|a, b| newest_first(a, b));
            selected
                .into_iter()
                .enumerate()
                .map(|(i, image)| (&image.digest, (i >= keep as usize, Reason::Rank { rank: i + 1, keep })))
                .collect()
        }
        Count::SincePushedDays(limit) => {
            selected.into_iter().map(|i| (&i.digest, over(Since::Pushed, i.pushed_at, limit))).collect()
        }
        // Never pulled, or pulled before a restore: the push (or restore) time counts.
        Count::SincePulledDays(limit) => selected
            .into_iter()
            .map(|i| {
                (
                    &i.digest,
                    over(Since::Pulled, i.last_pulled_at.map_or(i.pushed_at, |p| p.max(i.pushed_at)), limit),
                )
            })
            .collect(),
        Count::SinceTransitionedDays(limit) => selected
            .into_iter()
            .map(|i| (&i.digest, over(Since::Transitioned, i.archived_at.unwrap_or(now), limit)))
            .collect(),
    }
}

/// What `policy` does to `images` at `now`: one decision per image it expires or archives.
pub fn evaluate(policy: &LifecyclePolicy, images: &[Image], now: i64) -> Vec<Decision> {
    explain(policy, images, now, Protections::default())
        .into_iter()
        .filter_map(|v| match (v.outcome, v.rule_priority) {
            (Outcome::Act(action), Some(rule_priority)) => {
                Some(Decision { digest: v.digest, action, rule_priority })
            }
            _ => None,
        })
        .collect()
}

/// Every image's verdict under `policy` at `now`, ordered by digest.
pub fn explain(
    policy: &LifecyclePolicy,
    images: &[Image],
    now: i64,
    protections: Protections,
) -> Vec<Verdict> {
    let present: BTreeSet<&Digest> = images.iter().map(|i| &i.digest).collect();
    // Artifacts whose subject is here live and die with it; rules neither count nor take them.
    let follows = |i: &Image| i.subject.as_ref().is_some_and(|s| present.contains(s));
    let candidates: Vec<&Image> = images.iter().filter(|i| !follows(i)).collect();

    let mut verdicts: BTreeMap<Digest, Verdict> = BTreeMap::new();
    for rule in &policy.rules {
        let selected: Vec<&Image> = candidates.iter().copied().filter(|i| selects(rule, i)).collect();
        for (digest, (take, reason)) in judge(rule, selected, now) {
            // The first rule (by priority) to select an image owns it, whatever it decides.
            verdicts.entry(digest.clone()).or_insert_with(|| Verdict {
                digest: digest.clone(),
                rule_priority: Some(rule.priority),
                outcome: if take { Outcome::Act(rule.action) } else { Outcome::Keep },
                reason,
            });
        }
    }
    for image in &candidates {
        verdicts.entry(image.digest.clone()).or_insert_with(|| Verdict {
            digest: image.digest.clone(),
            rule_priority: None,
            outcome: Outcome::Keep,
            reason: Reason::NotSelected,
        });
    }

    // The registry's own protection of images in use, beyond ECR's rules.
    if let Some(protect_days) = protections.pulled_within_days {
        for image in &candidates {
            let Some(pulled) = image.last_pulled_at else { continue };
            let verdict = verdicts.get_mut(&image.digest);
            if let Some(v) = verdict.filter(|v| matches!(v.outcome, Outcome::Act(_)))
                && now - pulled <= i64::from(protect_days) * DAY_MS
            {
                v.outcome = Outcome::Keep;
                v.reason = Reason::RecentlyPulled { days_ago: days(now - pulled), protect_days };
            }
        }
    }

    // An image an index still lists stays until the index goes (or is archived with it); an
    // index kept makes its children kept, which can keep their own children in turn.
    let acted_on = |v: Option<&Verdict>| v.is_some_and(|v| matches!(v.outcome, Outcome::Act(_)));
    loop {
        let kept_by_index: Vec<(Digest, Digest)> = candidates
            .iter()
            .filter(|image| acted_on(verdicts.get(&image.digest)))
            .filter_map(|image| {
                let parent =
                    image.parents.iter().find(|p| present.contains(p) && !acted_on(verdicts.get(p)))?;
                Some((image.digest.clone(), parent.clone()))
            })
            .collect();
        if kept_by_index.is_empty() {
            break;
        }
        for (digest, parent) in kept_by_index {
            if let Some(v) = verdicts.get_mut(&digest) {
                v.outcome = Outcome::Keep;
                v.reason = Reason::ListedByIndex(parent);
            }
        }
    }

    // Referrers go with their subject (and theirs with them), the way it goes.
    loop {
        let following: Vec<Verdict> = images
            .iter()
            .filter(|i| !verdicts.contains_key(&i.digest))
            .filter_map(|i| {
                let subject = i.subject.as_ref()?;
                let cause = verdicts.get(subject)?;
                Some(Verdict {
                    digest: i.digest.clone(),
                    rule_priority: cause.rule_priority,
                    outcome: cause.outcome,
                    reason: Reason::FollowsSubject(subject.clone()),
                })
            })
            .collect();
        if following.is_empty() {
            break;
        }
        verdicts.extend(following.into_iter().map(|v| (v.digest.clone(), v)));
    }
    verdicts.into_values().collect()
}

//! The lifecycle policy document: parsed and validated by every rule ECR applies, before anything
//! is stored. A refusal says which rule is at fault and what to change; where ECR's own message
//! is known (its JSON-Schema `oneOf` failure), it leads the explanation.

use std::collections::{BTreeMap, BTreeSet};

use berth_core::StorageClass;
use serde_json::{Map, Value};

/// Most rules in one policy (ECR's quota).
pub const MAX_RULES: usize = 50;
/// Longest policy text, in characters (ECR's model).
pub const MAX_POLICY_CHARS: usize = 30_720;
/// Shortest policy text, in characters (ECR's model).
pub const MIN_POLICY_CHARS: usize = 100;
/// Most `*` in one tag pattern.
const MAX_WILDCARDS: usize = 4;
/// Days an archived image must stay archived before a policy may delete it.
const MIN_ARCHIVE_DAYS: u32 = 90;

/// ECR's words for a document that fits neither shape of its schema (a `null`, a `countUnit`
/// where none belongs).
const SCHEMA_MISMATCH: &str = "instance failed to match exactly one schema (matched 0 out of 2)";

/// Why a policy was refused: the rule at fault (its priority, or its place when the priority is
/// itself the problem), and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Lifecycle policy validation failure: {}{reason}", rule.as_ref().map(|r| format!("{r}: ")).unwrap_or_default())]
pub struct LifecycleError {
    pub rule: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TagStatus {
    Tagged,
    Untagged,
    Any,
}

/// How a `tagged` rule picks images: every prefix (or pattern) must match one of an image's tags.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum TagFilter {
    None,
    Prefixes(Vec<String>),
    Patterns(Vec<String>),
}

/// What makes a selected image subject to the rule's action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// More than this many images: the oldest beyond them.
    MoreThan(u32),
    /// Pushed (or restored) more than this many days ago.
    SincePushedDays(u32),
    /// Last pulled (else pushed or restored) more than this many days ago.
    SincePulledDays(u32),
    /// Archived more than this many days ago.
    SinceTransitionedDays(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAction {
    Expire,
    /// Move to archive storage.
    Transition,
}

impl RuleAction {
    /// As GetLifecyclePolicyPreview writes it.
    pub fn as_upper(self) -> &'static str {
        match self {
            Self::Expire => "EXPIRE",
            Self::Transition => "TRANSITION",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub tag_status: TagStatus,
    pub tags: TagFilter,
    pub storage_class: StorageClass,
    pub count: Count,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub priority: u32,
    pub description: Option<String>,
    pub selection: Selection,
    pub action: RuleAction,
}

/// A validated policy, its rules in priority order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecyclePolicy {
    pub rules: Vec<Rule>,
}

fn refuse(rule: Option<&str>, reason: impl Into<String>) -> LifecycleError {
    LifecycleError { rule: rule.map(str::to_owned), reason: reason.into() }
}

/// Refuses unknown fields and `null`s: ECR's schema has no such fields and admits no nulls.
fn check_fields(
    object: &Map<String, Value>,
    known: &[&str],
    at: &str,
    rule: Option<&str>,
) -> Result<(), LifecycleError> {
    if let Some(unknown) = object.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(refuse(
            rule,
            format!("{at} has an unknown field {unknown:?} (known: {})", known.join(", ")),
        ));
    }
    if let Some((null, _)) = object.iter().find(|(_, v)| v.is_null()) {
        return Err(refuse(
            rule,
            format!("{SCHEMA_MISMATCH}: {at}.{null} is null; leave the field out instead"),
        ));
    }
    Ok(())
}

fn string<'a>(
    object: &'a Map<String, Value>,
    field: &str,
    rule: Option<&str>,
) -> Result<Option<&'a str>, LifecycleError> {
    match object.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(refuse(rule, format!("{field} must be a string"))),
    }
}

/// A positive whole number (ECR refuses 0, fractions and text).
fn positive(
    object: &Map<String, Value>,
    field: &str,
    rule: Option<&str>,
) -> Result<Option<u32>, LifecycleError> {
    match object.get(field) {
        None => Ok(None),
        Some(value) => match value.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) if n >= 1 => Ok(Some(n)),
            _ => Err(refuse(rule, format!("{field} must be a whole number of at least 1, not {value}"))),
        },
    }
}

/// A list of tag prefixes or patterns: at least one, each a tag's characters (patterns also `*`,
/// at most four).
fn tag_list(value: &Value, field: &str, patterns: bool, rule: &str) -> Result<Vec<String>, LifecycleError> {
    let Value::Array(items) = value else {
        return Err(refuse(Some(rule), format!("{field} must be a list of strings")));
    };
    if items.is_empty() {
        return Err(refuse(Some(rule), format!("{field} must not be empty")));
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::String(text) = item else {
            return Err(refuse(Some(rule), format!("{field} must hold only strings")));
        };
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b"._-".contains(&b) || (patterns && b == b'*');
        if text.is_empty() || text.len() > 128 || !text.bytes().all(allowed) {
            let chars = if patterns {
                "letters, digits, '.', '_', '-' and '*'"
            } else {
                "letters, digits, '.', '_' and '-'"
            };
            return Err(refuse(Some(rule), format!("{field} entry {text:?} must be 1 to 128 of {chars}")));
        }
        if patterns && text.matches('*').count() > MAX_WILDCARDS {
            return Err(refuse(
                Some(rule),
                format!("{field} entry {text:?} has more than {MAX_WILDCARDS} wildcards (*)"),
            ));
        }
        out.push(text.clone());
    }
    Ok(out)
}

fn parse_rule(value: &Value, place: usize) -> Result<Rule, LifecycleError> {
    let Value::Object(rule) = value else {
        return Err(refuse(None, format!("rule {place} must be an object")));
    };
    // Until its priority is known, a rule is named by its place in the list.
    let named = format!("rule {place}");
    check_fields(rule, &["rulePriority", "description", "selection", "action"], "the rule", Some(&named))?;
    let priority = positive(rule, "rulePriority", Some(&named))?
        .ok_or_else(|| refuse(Some(&named), "rulePriority is required"))?;
    let named = format!("rule {priority}");
    let at = Some(named.as_str());
    let description = string(rule, "description", at)?.map(str::to_owned);

    let Some(Value::Object(selection)) = rule.get("selection") else {
        return Err(refuse(at, "selection is required and must be an object"));
    };
    check_fields(
        selection,
        &[
            "tagStatus",
            "tagPrefixList",
            "tagPatternList",
            "storageClass",
            "countType",
            "countUnit",
            "countNumber",
        ],
        "selection",
        at,
    )?;
    let tag_status = match string(selection, "tagStatus", at)? {
        Some("tagged") => TagStatus::Tagged,
        Some("untagged") => TagStatus::Untagged,
        Some("any") => TagStatus::Any,
        Some(other) => {
            return Err(refuse(at, format!("tagStatus {other:?} must be tagged, untagged or any")));
        }
        None => return Err(refuse(at, "tagStatus is required")),
    };
    let tags = match (selection.get("tagPrefixList"), selection.get("tagPatternList")) {
        (Some(_), Some(_)) => return Err(refuse(at, "a rule has tagPrefixList or tagPatternList, not both")),
        (Some(list), None) => TagFilter::Prefixes(tag_list(list, "tagPrefixList", false, &named)?),
        (None, Some(list)) => TagFilter::Patterns(tag_list(list, "tagPatternList", true, &named)?),
        (None, None) => TagFilter::None,
    };
    match (tag_status, &tags) {
        (TagStatus::Tagged, TagFilter::None) => {
            return Err(refuse(at, "a tagged rule needs tagPrefixList or tagPatternList"));
        }
        (TagStatus::Untagged | TagStatus::Any, TagFilter::Prefixes(_) | TagFilter::Patterns(_)) => {
            return Err(refuse(
                at,
                "tagPrefixList and tagPatternList belong only to rules with tagStatus tagged",
            ));
        }
        _ => {}
    }
    let storage_class = match string(selection, "storageClass", at)? {
        None | Some("standard") => StorageClass::Standard,
        Some("archive") => StorageClass::Archive,
        Some(other) => return Err(refuse(at, format!("storageClass {other:?} must be standard or archive"))),
    };
    let count_type =
        string(selection, "countType", at)?.ok_or_else(|| refuse(at, "countType is required"))?;
    let unit = string(selection, "countUnit", at)?;
    let number =
        positive(selection, "countNumber", at)?.ok_or_else(|| refuse(at, "countNumber is required"))?;
    let days = |make: fn(u32) -> Count| match unit {
        Some("days") => Ok(make(number)),
        Some(other) => Err(refuse(at, format!("countUnit {other:?} must be days"))),
        None => Err(refuse(at, format!("countType {count_type} needs countUnit days"))),
    };
    let count = match count_type {
        "imageCountMoreThan" => match unit {
            None => Count::MoreThan(number),
            Some(_) => {
                return Err(refuse(
                    at,
                    format!("{SCHEMA_MISMATCH}: countUnit is not allowed with imageCountMoreThan"),
                ));
            }
        },
        "sinceImagePushed" => days(Count::SincePushedDays)?,
        "sinceImagePulled" => days(Count::SincePulledDays)?,
        "sinceImageTransitioned" => days(Count::SinceTransitionedDays)?,
        other => {
            return Err(refuse(
                at,
                format!(
                    "countType {other:?} must be imageCountMoreThan, sinceImagePushed, sinceImagePulled or \
                     sinceImageTransitioned"
                ),
            ));
        }
    };

    let Some(Value::Object(action)) = rule.get("action") else {
        return Err(refuse(at, "action is required and must be an object"));
    };
    check_fields(action, &["type", "targetStorageClass"], "action", at)?;
    let action = match (string(action, "type", at)?, string(action, "targetStorageClass", at)?) {
        (Some("expire"), None) => RuleAction::Expire,
        (Some("expire"), Some(_)) => {
            return Err(refuse(at, "targetStorageClass belongs only to transition actions"));
        }
        (Some("transition"), Some("archive")) => RuleAction::Transition,
        (Some("transition"), Some(other)) => {
            return Err(refuse(at, format!("targetStorageClass {other:?} must be archive")));
        }
        (Some("transition"), None) => {
            return Err(refuse(at, "a transition action needs targetStorageClass archive"));
        }
        (Some(other), _) => {
            return Err(refuse(at, format!("action type {other:?} must be expire or transition")));
        }
        (None, _) => return Err(refuse(at, "action type is required")),
    };

    // How counts, storage classes and actions combine.
    match (count, storage_class, action) {
        (Count::SincePulledDays(_), _, RuleAction::Expire) => {
            return Err(refuse(
                at,
                "sinceImagePulled can only transition images to archive; to delete by pull age, archive with \
                 sinceImagePulled and expire with sinceImageTransitioned",
            ));
        }
        (Count::SinceTransitionedDays(_), StorageClass::Standard, _) => {
            return Err(refuse(at, "sinceImageTransitioned needs storageClass archive"));
        }
        (Count::SinceTransitionedDays(_), _, RuleAction::Transition) => {
            return Err(refuse(at, "sinceImageTransitioned can only expire images"));
        }
        (Count::SinceTransitionedDays(days), _, _) if days < MIN_ARCHIVE_DAYS => {
            return Err(refuse(
                at,
                format!(
                    "archived images stay at least {MIN_ARCHIVE_DAYS} days: countNumber must be {MIN_ARCHIVE_DAYS} or more"
                ),
            ));
        }
        (
            Count::MoreThan(_) | Count::SincePushedDays(_) | Count::SincePulledDays(_),
            StorageClass::Archive,
            _,
        ) => {
            return Err(refuse(at, "storageClass archive goes only with countType sinceImageTransitioned"));
        }
        _ => {}
    }
    Ok(Rule {
        priority,
        description,
        selection: Selection { tag_status, tags, storage_class, count },
        action,
    })
}

/// Rules across the policy: unique priorities; per storage class, `any` last, at most one
/// `untagged` rule, and no tag selection twice.
fn check_rules(rules: &[Rule]) -> Result<(), LifecycleError> {
    let mut seen = BTreeSet::new();
    for rule in rules {
        if !seen.insert(rule.priority) {
            return Err(refuse(
                None,
                format!("rulePriority {} is used by more than one rule", rule.priority),
            ));
        }
    }
    let mut by_class: BTreeMap<StorageClass, Vec<&Rule>> = BTreeMap::new();
    for rule in rules {
        by_class.entry(rule.selection.storage_class).or_default().push(rule);
    }
    for (class, rules) in by_class {
        let last = rules.iter().map(|r| r.priority).max().unwrap_or(0);
        let mut untagged = None;
        let mut selections = BTreeSet::new();
        for rule in &rules {
            let named = format!("rule {}", rule.priority);
            let at = Some(named.as_str());
            if rule.selection.tag_status == TagStatus::Any && rule.priority != last {
                return Err(refuse(
                    at,
                    format!(
                        "a rule with tagStatus any must have the highest rulePriority of the rules for storage class {}",
                        class.as_policy_str()
                    ),
                ));
            }
            // `any` rules take untagged images too, but AWS's own examples pair one with an
            // `untagged` rule: the limit is on rules that select untagged images alone.
            if rule.selection.tag_status == TagStatus::Untagged {
                if let Some(other) = untagged.replace(rule.priority) {
                    return Err(refuse(
                        at,
                        format!(
                            "rules {other} and {} both select untagged images of storage class {}; one may",
                            rule.priority,
                            class.as_policy_str()
                        ),
                    ));
                }
            } else if rule.selection.tag_status == TagStatus::Tagged {
                let mut set = match &rule.selection.tags {
                    TagFilter::Prefixes(items) | TagFilter::Patterns(items) => items.clone(),
                    TagFilter::None => Vec::new(),
                };
                set.sort();
                set.dedup();
                let kind = matches!(rule.selection.tags, TagFilter::Patterns(_));
                if !selections.insert((kind, set)) {
                    return Err(refuse(
                        at,
                        format!(
                            "another rule for storage class {} selects the same tags",
                            class.as_policy_str()
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Parses and validates a lifecycle policy document.
pub fn parse(text: &str) -> Result<LifecyclePolicy, LifecycleError> {
    let chars = text.chars().count();
    if chars > MAX_POLICY_CHARS {
        return Err(refuse(
            None,
            format!("the policy has {chars} characters, more than the {MAX_POLICY_CHARS} allowed"),
        ));
    }
    if chars < MIN_POLICY_CHARS {
        return Err(refuse(
            None,
            format!("the policy has {chars} characters, fewer than the {MIN_POLICY_CHARS} required"),
        ));
    }
    let document: Value =
        serde_json::from_str(text).map_err(|e| refuse(None, format!("the policy is not valid JSON: {e}")))?;
    let Value::Object(top) = document else { return Err(refuse(None, "the policy must be a JSON object")) };
    check_fields(&top, &["rules"], "the policy", None)?;
    let Some(Value::Array(raw)) = top.get("rules") else {
        return Err(refuse(None, "rules is required and must be a list"));
    };
    if raw.is_empty() || raw.len() > MAX_RULES {
        return Err(refuse(None, format!("a policy has 1 to {MAX_RULES} rules, not {}", raw.len())));
    }
    let mut rules =
        raw.iter().enumerate().map(|(i, r)| parse_rule(r, i + 1)).collect::<Result<Vec<_>, _>>()?;
    check_rules(&rules)?;
    rules.sort_by_key(|r| r.priority);
    Ok(LifecyclePolicy { rules })
}

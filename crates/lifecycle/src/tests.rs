//! AWS's own multi-rule examples, the worked cases W1–W6 of the reference notes, validation
//! refusals, and the evaluator checked against a brute-force model on random repositories.

use berth_core::Digest;
use proptest::prelude::*;

use crate::{
    Decision, Image, LifecyclePolicy, Outcome, Protections, Reason, RuleAction, Since, StorageClass,
    evaluate, explain, parse,
};

const DAY: i64 = 24 * 60 * 60 * 1000;
const NOW: i64 = 1_800_000_000_000;

fn digest(name: &str) -> Digest {
    let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex:0<64}").parse().expect("digest")
}

/// An image named `name`, pushed `days` ago (`minutes` later within that day, to order ties).
fn image(name: &str, tags: &[&str], days: i64) -> Image {
    Image {
        digest: digest(name),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        pushed_at: NOW - days * DAY,
        last_pulled_at: None,
        storage_class: StorageClass::Standard,
        archived_at: None,
        parents: Vec::new(),
        subject: None,
    }
}

fn policy(rules: &str) -> LifecyclePolicy {
    let text = format!(r#"{{"rules": [{rules}]}}"#);
    let padded = format!("{text}{}", " ".repeat(100usize.saturating_sub(text.len())));
    parse(&padded).unwrap_or_else(|e| panic!("{e}: {padded}"))
}

fn rule(priority: u32, selection: &str, action: &str) -> String {
    format!(r#"{{"rulePriority": {priority}, "selection": {{{selection}}}, "action": {{{action}}}}}"#)
}

const EXPIRE: &str = r#""type": "expire""#;

/// The names of the images acted on, sorted, with the rule that acted.
fn acted(policy: &LifecyclePolicy, images: &[Image]) -> Vec<(String, u32)> {
    let names: std::collections::BTreeMap<Digest, String> = images
        .iter()
        .map(|i| {
            let hex = i.digest.to_string();
            let bytes: Vec<u8> = (7..hex.len())
                .step_by(2)
                .filter_map(|at| u8::from_str_radix(hex.get(at..at + 2)?, 16).ok())
                .take_while(|b| *b != 0)
                .collect();
            (i.digest.clone(), String::from_utf8(bytes).expect("name"))
        })
        .collect();
    let mut out: Vec<(String, u32)> = evaluate(policy, images, NOW)
        .into_iter()
        .map(|Decision { digest, rule_priority, .. }| (names[&digest].clone(), rule_priority))
        .collect();
    out.sort();
    out
}

fn expired(names: &[(&str, u32)]) -> Vec<(String, u32)> {
    names.iter().map(|(n, p)| ((*n).to_owned(), *p)).collect()
}

#[test]
fn aws_multiple_rules_example_a_and_b() {
    let images = [
        image("A", &["beta-1", "prod-1"], 10),
        image("B", &["beta-2", "prod-2"], 9),
        image("C", &["beta-3"], 8),
    ];
    let keep_one = |priority, pattern| {
        rule(
            priority,
            &format!(
                r#""tagStatus": "tagged", "tagPatternList": ["{pattern}"], "countType": "imageCountMoreThan", "countNumber": 1"#
            ),
            EXPIRE,
        )
    };
    let a = policy(&format!("{},{}", keep_one(1, "prod*"), keep_one(2, "beta*")));
    assert_eq!(acted(&a, &images), expired(&[("A", 1)]));
    let b = policy(&format!("{},{}", keep_one(1, "beta*"), keep_one(2, "prod*")));
    assert_eq!(acted(&b, &images), expired(&[("A", 1), ("B", 1)]));
}

#[test]
fn aws_filtering_on_all_images_example_b() {
    // E is pushed after D on the same day.
    let mut e = image("E", &[], 1);
    e.pushed_at += 1000;
    let images = [
        image("A", &["alpha-1", "beta-1"], 4),
        image("B", &[], 3),
        image("C", &["alpha-2"], 2),
        image("D", &["git hash"], 1),
        e,
    ];
    let p = policy(&[
        rule(1, r#""tagStatus": "tagged", "tagPatternList": ["alpha*"], "countType": "imageCountMoreThan", "countNumber": 1"#, EXPIRE),
        rule(2, r#""tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1"#, EXPIRE),
        rule(3, r#""tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1"#, EXPIRE),
    ]
    .join(","));
    assert_eq!(acted(&p, &images), expired(&[("A", 1), ("B", 2), ("D", 3)]));
}

#[test]
fn aws_multiple_tags_in_a_single_rule_example_a() {
    let images = [
        image("A", &["alpha-1"], 12),
        image("B", &["beta-1"], 11),
        image("C", &["alpha-2", "beta-2"], 10),
        image("D", &["alpha-3"], 4),
        image("E", &["beta-3"], 3),
        image("F", &["alpha-4", "beta-4"], 2),
    ];
    let p = policy(&rule(
        1,
        r#""tagStatus": "tagged", "tagPatternList": ["alpha*", "beta*"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 5"#,
        EXPIRE,
    ));
    assert_eq!(acted(&p, &images), expired(&[("C", 1)]));
}

#[test]
fn w1_a_global_cap_counts_what_higher_rules_own() {
    let images = [
        image("I1", &["prod-9"], 1),
        image("I2", &["dev-5"], 2),
        image("I3", &["prod-8"], 3),
        image("I4", &[], 4),
        image("I5", &["prod-7"], 5),
        image("I6", &["prod-6"], 6),
        image("I7", &["dev-4"], 7),
        image("I8", &[], 8),
    ];
    let p = policy(&[
        rule(1, r#""tagStatus": "tagged", "tagPatternList": ["prod*"], "countType": "imageCountMoreThan", "countNumber": 3"#, EXPIRE),
        rule(2, r#""tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 5"#, EXPIRE),
    ]
    .join(","));
    assert_eq!(acted(&p, &images), expired(&[("I6", 1), ("I7", 2), ("I8", 2)]));
}

#[test]
fn w2_several_patterns_and_several_tags() {
    let images = [
        image("X", &["v1.0-rc"], 5),
        image("Y", &["v1.1", "v1.1-rc"], 4),
        image("Z", &["v1.2-rc"], 3),
        image("W", &["v2.0"], 1),
    ];
    let p = policy(&rule(
        1,
        r#""tagStatus": "tagged", "tagPatternList": ["v*", "*-rc"], "countType": "imageCountMoreThan", "countNumber": 1"#,
        EXPIRE,
    ));
    assert_eq!(acted(&p, &images), expired(&[("X", 1), ("Y", 1)]));
}

#[test]
fn w3_prefixes_and_patterns_select_alike_and_need_every_entry() {
    let images =
        [image("P", &["prod-1"], 3), image("T", &["prod-team1"], 3), image("B", &["prod-2", "team1-x"], 3)];
    let by = |list: &str| {
        let selection = format!(
            r#""tagStatus": "tagged", {list}, "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1"#
        );
        policy(&rule(1, &selection, EXPIRE))
    };
    assert_eq!(
        acted(&by(r#""tagPrefixList": ["prod"]"#), &images),
        acted(&by(r#""tagPatternList": ["prod*"]"#), &images)
    );
    assert_eq!(acted(&by(r#""tagPrefixList": ["prod", "team1"]"#), &images), expired(&[("B", 1)]));
    assert_eq!(acted(&by(r#""tagPatternList": ["prod*", "team1*"]"#), &images), expired(&[("B", 1)]));
}

#[test]
fn w4_children_of_a_kept_index_and_referrers_stay() {
    let index = image("index", &["v1"], 30);
    let mut amd64 = image("amd64", &[], 30);
    amd64.parents = vec![index.digest.clone()];
    let mut arm64 = image("arm64", &[], 30);
    arm64.parents = vec![index.digest.clone()];
    let mut signature = image("sig", &[], 30);
    signature.subject = Some(index.digest.clone());
    let orphan = image("orphan", &[], 10);
    let images = [index, amd64, arm64, signature, orphan];
    let untagged_week = policy(&rule(
        1,
        r#""tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7"#,
        EXPIRE,
    ));
    assert_eq!(acted(&untagged_week, &images), expired(&[("orphan", 1)]));
    // When the index itself expires, its children and its signature go with it.
    let everything_old = policy(&rule(
        1,
        r#""tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 20"#,
        EXPIRE,
    ));
    assert_eq!(
        acted(&everything_old, &images),
        expired(&[("amd64", 1), ("arm64", 1), ("index", 1), ("sig", 1)])
    );
}

#[test]
fn every_verdict_says_why() {
    let index = image("index", &["v1"], 30);
    let mut child = image("child", &[], 30);
    child.parents = vec![index.digest.clone()];
    let mut signature = image("sig", &[], 30);
    signature.subject = Some(index.digest.clone());
    let mut pulled = image("pulled", &[], 40);
    pulled.last_pulled_at = Some(NOW - 2 * DAY);
    let images = [
        index.clone(),
        child,
        signature,
        pulled,
        image("r1", &["release-1"], 3),
        image("r2", &["release-2"], 2),
        image("r3", &["release-3"], 1),
        image("dev", &["dev"], 1),
    ];
    let p = policy(&[
        rule(
            1,
            r#""tagStatus": "tagged", "tagPrefixList": ["release"], "countType": "imageCountMoreThan", "countNumber": 2"#,
            EXPIRE,
        ),
        rule(
            2,
            r#""tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7"#,
            EXPIRE,
        ),
    ]
    .join(","));
    let why = |protections| -> Vec<(Digest, Option<u32>, Outcome, Reason)> {
        explain(&p, &images, NOW, protections)
            .into_iter()
            .map(|v| (v.digest, v.rule_priority, v.outcome, v.reason))
            .collect()
    };
    let expire = Outcome::Act(RuleAction::Expire);
    let mut expected = vec![
        (digest("index"), None, Outcome::Keep, Reason::NotSelected),
        (digest("child"), Some(2), Outcome::Keep, Reason::ListedByIndex(index.digest.clone())),
        (digest("sig"), None, Outcome::Keep, Reason::FollowsSubject(index.digest.clone())),
        (
            digest("pulled"),
            Some(2),
            expire,
            Reason::Age { since: Since::Pushed, age_days: 40, limit_days: 7 },
        ),
        (digest("r1"), Some(1), expire, Reason::Rank { rank: 3, keep: 2 }),
        (digest("r2"), Some(1), Outcome::Keep, Reason::Rank { rank: 2, keep: 2 }),
        (digest("r3"), Some(1), Outcome::Keep, Reason::Rank { rank: 1, keep: 2 }),
        (digest("dev"), None, Outcome::Keep, Reason::NotSelected),
    ];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(why(Protections::default()), expected);

    // The registry's optional protection keeps what was pulled lately, and says so.
    let protected = why(Protections { pulled_within_days: Some(7) });
    let pulled = protected.iter().find(|v| v.0 == digest("pulled")).expect("listed");
    assert_eq!(
        (pulled.2, &pulled.3),
        (Outcome::Keep, &Reason::RecentlyPulled { days_ago: 2, protect_days: 7 })
    );
    assert_eq!(protected.iter().filter(|v| v.2 == expire).count(), 1, "{protected:?}");
}

#[test]
fn w5_archive_by_pull_age_then_delete_archived() {
    let text = r#"{"rules": [
        {"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "sinceImagePulled", "countUnit": "days", "countNumber": 90},
         "action": {"type": "transition", "targetStorageClass": "archive"}},
        {"rulePriority": 2, "selection": {"tagStatus": "any", "storageClass": "archive", "countType": "sinceImageTransitioned", "countUnit": "days", "countNumber": 365},
         "action": {"type": "expire"}}]}"#;
    let p = parse(text).expect("AWS's own archive example is valid");
    let mut pulled_long_ago = image("cold", &["v1"], 400);
    pulled_long_ago.last_pulled_at = Some(NOW - 100 * DAY);
    let mut pulled_lately = image("warm", &["v2"], 400);
    pulled_lately.last_pulled_at = Some(NOW - 10 * DAY);
    let never_pulled_new = image("new", &["v3"], 5);
    let mut archived_long_ago = image("frozen", &["v0"], 900);
    archived_long_ago.storage_class = StorageClass::Archive;
    archived_long_ago.archived_at = Some(NOW - 400 * DAY);
    let mut archived_lately = image("chilled", &["v00"], 900);
    archived_lately.storage_class = StorageClass::Archive;
    archived_lately.archived_at = Some(NOW - 100 * DAY);
    let images = [pulled_long_ago, pulled_lately, never_pulled_new, archived_long_ago, archived_lately];
    let decisions = evaluate(&p, &images, NOW);
    let actions: Vec<(Digest, RuleAction)> = decisions.into_iter().map(|d| (d.digest, d.action)).collect();
    assert_eq!(
        actions,
        vec![(digest("cold"), RuleAction::Transition), (digest("frozen"), RuleAction::Expire)]
    );
}

#[test]
fn w6_policies_ecr_refuses() {
    let select =
        |s: &str| format!(r#"{{"rulePriority": 1, "selection": {{{s}}}, "action": {{"type": "expire"}}}}"#);
    let count = r#""countType": "imageCountMoreThan", "countNumber": 5"#;
    let cases: Vec<(String, &str)> = vec![
        (
            format!(
                "{},{}",
                rule(1, &format!(r#""tagStatus": "untagged", {count}"#), EXPIRE),
                rule(1, &format!(r#""tagStatus": "tagged", "tagPrefixList": ["v"], {count}"#), EXPIRE)
            ),
            "more than one rule",
        ),
        (
            format!(
                "{},{}",
                rule(1, &format!(r#""tagStatus": "any", {count}"#), EXPIRE),
                rule(2, &format!(r#""tagStatus": "tagged", "tagPrefixList": ["v"], {count}"#), EXPIRE)
            ),
            "highest rulePriority",
        ),
        (select(&format!(r#""tagStatus": "tagged", {count}"#)), "needs tagPrefixList or tagPatternList"),
        (
            select(&format!(r#""tagStatus": "untagged", "tagPrefixList": ["v"], {count}"#)),
            "only to rules with tagStatus tagged",
        ),
        (
            select(&format!(
                r#""tagStatus": "tagged", "tagPrefixList": ["v"], "tagPatternList": ["v*"], {count}"#
            )),
            "not both",
        ),
        (
            select(
                r#""tagStatus": "any", "countType": "imageCountMoreThan", "countUnit": "days", "countNumber": 5"#,
            ),
            "matched 0 out of 2",
        ),
        (
            select(r#""tagStatus": "any", "countType": "sinceImagePushed", "countNumber": 5"#),
            "needs countUnit days",
        ),
        (select(r#""tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 0"#), "at least 1"),
        (
            select(
                r#""tagStatus": "tagged", "tagPatternList": ["a*b*c*d*e*"], "countType": "imageCountMoreThan", "countNumber": 5"#,
            ),
            "more than 4 wildcards",
        ),
        (
            select(
                r#""tagStatus": "any", "countType": "sinceImagePulled", "countUnit": "days", "countNumber": 5"#,
            ),
            "sinceImagePulled can only transition",
        ),
        (
            rule(
                1,
                r#""tagStatus": "any", "countType": "sinceImageTransitioned", "countUnit": "days", "countNumber": 100"#,
                EXPIRE,
            ),
            "needs storageClass archive",
        ),
        (
            rule(
                1,
                r#""tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 5"#,
                r#""type": "transition""#,
            ),
            "needs targetStorageClass",
        ),
        (
            select(
                r#""tagStatus": "any", "storageClass": null, "countType": "imageCountMoreThan", "countNumber": 5"#,
            ),
            "matched 0 out of 2",
        ),
        (
            (1..=51)
                .map(|p| {
                    rule(p, &format!(r#""tagStatus": "tagged", "tagPrefixList": ["t{p}"], {count}"#), EXPIRE)
                })
                .collect::<Vec<_>>()
                .join(","),
            "1 to 50 rules",
        ),
    ];
    for (rules, expected) in cases {
        let text = format!(r#"{{"rules": [{rules}]}}"#);
        let text = format!("{text}{}", " ".repeat(100usize.saturating_sub(text.len())));
        let refused = parse(&text).expect_err(&text).to_string();
        assert!(refused.starts_with("Lifecycle policy validation failure: "), "{refused}");
        assert!(refused.contains(expected), "expected {expected:?} in {refused:?} for {text}");
    }
}

#[test]
fn documents_out_of_bounds_are_refused() {
    assert!(parse(r#"{"rules": []}"#).expect_err("short").to_string().contains("fewer than the 100"));
    let long = format!(r#"{{"rules": [], "x": "{}"}}"#, "y".repeat(31_000));
    assert!(parse(&long).expect_err("long").to_string().contains("more than the 30720"));
    for junk in [
        "",
        "[]",
        "not json at all, padded out to the minimum length .........................................................",
    ] {
        assert!(parse(junk).is_err(), "{junk:?}");
    }
}

// The brute-force model: rules over tiny vocabularies, decided image by image from the rules as
// ECR states them, without the evaluator's structure: an image's owner is the first rule (by
// priority) whose selection takes it; it is acted on when the owner's count condition holds for
// it within everything the owner selects (for a count, fewer than N selected images are newer);
// an image a kept index lists is not acted on.

#[derive(Debug, Clone)]
struct ModelRule {
    status: u8,
    prefix: Option<&'static str>,
    count: Option<u32>,
    days: Option<u32>,
}

const PREFIXES: [&str; 3] = ["a", "b", "ab"];
const TAGS: [&str; 5] = ["a1", "a2", "b1", "ab", "c"];

fn model_selects(rule: &ModelRule, image: &Image) -> bool {
    match rule.status {
        0 => {
            !image.tags.is_empty() && rule.prefix.is_some_and(|p| image.tags.iter().any(|t| t.starts_with(p)))
        }
        1 => image.tags.is_empty(),
        _ => true,
    }
}

fn model(rules: &[ModelRule], images: &[Image]) -> std::collections::BTreeSet<Digest> {
    let condition = |rule: &ModelRule, image: &Image| {
        let selected: Vec<&Image> = images.iter().filter(|i| model_selects(rule, i)).collect();
        match (rule.count, rule.days) {
            (Some(n), _) => {
                let newer = selected
                    .iter()
                    .filter(|o| {
                        o.pushed_at > image.pushed_at
                            || (o.pushed_at == image.pushed_at && o.digest < image.digest)
                    })
                    .count();
                newer >= n as usize
            }
            (None, Some(days)) => NOW - image.pushed_at > i64::from(days) * DAY,
            (None, None) => false,
        }
    };
    let mut acted: std::collections::BTreeSet<Digest> = images
        .iter()
        .filter(|image| {
            rules.iter().find(|r| model_selects(r, image)).is_some_and(|owner| condition(owner, image))
        })
        .map(|i| i.digest.clone())
        .collect();
    loop {
        let kept: Vec<Digest> = images
            .iter()
            .filter(|i| acted.contains(&i.digest) && i.parents.iter().any(|p| !acted.contains(p)))
            .map(|i| i.digest.clone())
            .collect();
        if kept.is_empty() {
            return acted;
        }
        for digest in kept {
            acted.remove(&digest);
        }
    }
}

fn model_rule() -> impl Strategy<Value = ModelRule> {
    (
        0u8..3,
        0usize..3,
        prop_oneof![(1u32..4).prop_map(|n| (Some(n), None)), (1u32..6).prop_map(|d| (None, Some(d)))],
    )
        .prop_map(|(status, prefix, (count, days))| ModelRule {
            status,
            prefix: Some(PREFIXES[prefix]),
            count,
            days,
        })
}

fn policy_text(rules: &[ModelRule]) -> Option<String> {
    let mut parts = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        let status = ["tagged", "untagged", "any"][r.status as usize];
        let tags =
            if r.status == 0 { format!(r#", "tagPrefixList": ["{}"]"#, r.prefix?) } else { String::new() };
        let count = match (r.count, r.days) {
            (Some(n), _) => format!(r#""countType": "imageCountMoreThan", "countNumber": {n}"#),
            (None, Some(d)) => {
                format!(r#""countType": "sinceImagePushed", "countUnit": "days", "countNumber": {d}"#)
            }
            _ => return None,
        };
        parts.push(rule(i as u32 + 1, &format!(r#""tagStatus": "{status}"{tags}, {count}"#), EXPIRE));
    }
    let text = format!(r#"{{"rules": [{}]}}"#, parts.join(","));
    Some(format!("{text}{}", " ".repeat(100usize.saturating_sub(text.len()))))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn the_evaluator_agrees_with_the_brute_force_model(
        rules in proptest::collection::vec(model_rule(), 1..4),
        images in proptest::collection::vec((proptest::collection::vec(0usize..5, 0..3), 0i64..8, proptest::option::of(0usize..8)), 1..9),
    ) {
        // A valid policy from the random rules: tagged rules with distinct prefixes, at most one
        // untagged rule, at most one any rule, last.
        let mut seen = std::collections::BTreeSet::new();
        let mut rules: Vec<ModelRule> = rules
            .into_iter()
            .filter(|r| match r.status {
                0 => seen.insert(r.prefix),
                status => seen.insert(Some(["", "untagged", "any"][status as usize])),
            })
            .collect();
        rules.sort_by_key(|r| r.status == 2);
        let text = policy_text(&rules).expect("text");
        let policy = parse(&text).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
        let mut built: Vec<Image> = images
            .iter()
            .enumerate()
            .map(|(n, (tags, days, _))| {
                let mut tags: Vec<&str> = tags.iter().map(|t| TAGS[*t]).collect();
                tags.sort();
                tags.dedup();
                image(&format!("i{n}"), &tags, *days)
            })
            .collect();
        // Some images are listed by an earlier one (as an index lists its children).
        for (n, (_, _, parent)) in images.iter().enumerate() {
            if let Some(p) = parent.filter(|p| *p < n) {
                let parent = built[p].digest.clone();
                built[n].parents.push(parent);
            }
        }
        let got: std::collections::BTreeSet<Digest> = evaluate(&policy, &built, NOW).into_iter().map(|d| d.digest).collect();
        prop_assert_eq!(got, model(&rules, &built), "policy {}", text);
    }
}

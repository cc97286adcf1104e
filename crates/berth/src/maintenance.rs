//! `berth lifecycle` and `berth gc`: run lifecycle policies and the garbage collector by hand,
//! see what a policy would do and why, on the data directory of a running server or a stopped one.

use std::path::PathBuf;
use std::time::Duration;

use berth_registry::{GcReport, ImageVerdict, Outcome, Reason, Registry, RepoPath, RuleAction, Since};
use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Subcommand)]
pub(crate) enum LifecycleCommand {
    /// Run repositories' lifecycle policies now: expire and archive what they say, and print
    /// each image acted on.
    Run {
        /// One repository, as ACCOUNT/NAME; default: every repository that has a policy.
        #[arg(long)]
        repository: Option<String>,
        /// Print what would be done, and do nothing.
        #[arg(long)]
        dry_run: bool,
        /// Evaluate as at this time (RFC 3339, e.g. 2027-01-01T00:00:00Z) instead of now.
        #[arg(long)]
        now: Option<String>,
    },
    /// Show, for every image of a repository, which rule owns it, whether it is kept or acted on,
    /// and why. Changes nothing.
    Preview {
        /// The repository, as ACCOUNT/NAME.
        #[arg(long)]
        repository: String,
        /// A policy file (ECR's JSON) to preview instead of the repository's own policy.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Evaluate as at this time (RFC 3339) instead of now.
        #[arg(long)]
        now: Option<String>,
        /// How to print the preview.
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
}

/// Shown after `berth lifecycle --help`.
pub(crate) const LIFECYCLE_EXAMPLES: &str = "\
Examples:
  berth lifecycle preview --repository 000000000000/app
  berth lifecycle preview --repository 000000000000/app --policy keep-releases.json --now 2027-01-01T00:00:00Z
  berth lifecycle run --dry-run
  berth lifecycle run --repository 000000000000/app

The server runs every policy on its own (lifecycle.interval_seconds); these commands run one by
hand, on the data directory of a running server (--data-dir, or BERTH_DATA_DIR).";

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Output {
    /// One line per image, for people.
    Table,
    /// One JSON document, for scripts.
    Json,
}

fn parse_now(now: Option<&str>) -> Result<i64, String> {
    let Some(text) = now else {
        return Ok(millis(OffsetDateTime::now_utc()));
    };
    let at = OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|e| format!("--now {text:?} is not an RFC 3339 time like 2027-01-01T00:00:00Z: {e}"))?;
    Ok(millis(at))
}

fn millis(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub(crate) fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.replace_nanosecond(0).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

fn repository(text: &str) -> Result<RepoPath, String> {
    text.parse().map_err(|e| format!("--repository: {e}"))
}

pub(crate) async fn lifecycle(registry: &Registry, command: LifecycleCommand) -> Result<(), String> {
    match command {
        LifecycleCommand::Run { repository: one, dry_run, now } => {
            let now = parse_now(now.as_deref())?;
            let repositories = match one {
                Some(text) => vec![repository(&text)?],
                None => registry.repositories_with_lifecycle_policy().await.map_err(|e| e.to_string())?,
            };
            let verb = if dry_run { "would" } else { "did" };
            for repo in repositories {
                let run =
                    registry.run_lifecycle(&repo, now, dry_run).await.map_err(|e| format!("{repo}: {e}"))?;
                for image in run.images.iter().filter(|i| i.action().is_some()) {
                    println!("{repo}  {}", line(image));
                }
                println!(
                    "{repo}: {verb} expire {} and archive {} of {} images",
                    run.expired,
                    run.archived,
                    run.images.len()
                );
            }
            Ok(())
        }
        LifecycleCommand::Preview { repository: text, policy, now, output } => {
            let repo = repository(&text)?;
            let now = parse_now(now.as_deref())?;
            let policy = match policy {
                Some(path) => Some(
                    std::fs::read_to_string(&path)
                        .map_err(|e| format!("--policy {}: {e}", path.display()))?,
                ),
                None => None,
            };
            let images = registry
                .explain_lifecycle(&repo, policy.as_deref(), now)
                .await
                .map_err(|e| format!("{repo}: {e}"))?;
            match output {
                Output::Json => {
                    let doc = json!({
                        "repository": repo.to_string(),
                        "evaluatedAt": rfc3339(now),
                        "images": images.iter().map(image_json).collect::<Vec<_>>(),
                    });
                    println!("{}", serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?);
                }
                Output::Table => {
                    println!(
                        "{:<19}  {:<24}  {:<20}  {:>4}  {:<10}  WHY",
                        "IMAGE", "TAGS", "PUSHED", "RULE", "VERDICT"
                    );
                    for image in &images {
                        println!("{}", line(image));
                    }
                    let acted = images.iter().filter(|i| i.action().is_some()).count();
                    println!("{acted} of {} images acted on, as at {}", images.len(), rfc3339(now));
                }
            }
            Ok(())
        }
    }
}

fn verdict_word(image: &ImageVerdict) -> &'static str {
    match image.action() {
        None => "keep",
        Some(RuleAction::Expire) => "expire",
        Some(RuleAction::Transition) => "archive",
    }
}

fn line(image: &ImageVerdict) -> String {
    let digest = image.digest.to_string();
    let short = digest.get(..19).unwrap_or(&digest);
    let tags = if image.tags.is_empty() { "-".to_owned() } else { image.tags.join(",") };
    let rule = image.verdict.rule_priority.map_or_else(|| "-".to_owned(), |p| p.to_string());
    format!(
        "{short:<19}  {tags:<24}  {:<20}  {rule:>4}  {:<10}  {}",
        rfc3339(image.pushed_at),
        verdict_word(image),
        why(image)
    )
}

fn since_word(since: Since) -> &'static str {
    match since {
        Since::Pushed => "pushed",
        Since::Pulled => "last pulled",
        Since::Transitioned => "archived",
    }
}

/// Why an image is kept or acted on, in words.
fn why(image: &ImageVerdict) -> String {
    let acted = image.verdict.outcome != Outcome::Keep;
    match &image.verdict.reason {
        Reason::NotSelected => "no rule selects it".to_owned(),
        Reason::Rank { rank, keep } if acted => {
            format!("newest no. {rank}: beyond the {keep} its rule keeps")
        }
        Reason::Rank { rank, keep } => format!("newest no. {rank} of the {keep} its rule keeps"),
        Reason::Age { since, age_days, limit_days } if acted => {
            format!("{} {age_days} days ago: more than {limit_days}", since_word(*since))
        }
        Reason::Age { since, age_days, limit_days } => {
            format!("{} {age_days} days ago: within {limit_days}", since_word(*since))
        }
        Reason::ListedByIndex(index) => format!("listed by the index {index}, which stays"),
        Reason::FollowsSubject(subject) => format!("goes with its subject {subject}"),
        Reason::RecentlyPulled { days_ago, protect_days } => {
            format!("pulled {days_ago} days ago: protected for {protect_days} days after a pull")
        }
    }
}

fn image_json(image: &ImageVerdict) -> Value {
    let reason = match &image.verdict.reason {
        Reason::NotSelected => json!({ "kind": "notSelected" }),
        Reason::Rank { rank, keep } => json!({ "kind": "rank", "rank": rank, "keep": keep }),
        Reason::Age { since, age_days, limit_days } => json!({
            "kind": "age", "since": since_word(*since), "ageDays": age_days, "limitDays": limit_days,
        }),
        Reason::ListedByIndex(index) => json!({ "kind": "listedByIndex", "index": index.to_string() }),
        Reason::FollowsSubject(subject) => {
            json!({ "kind": "followsSubject", "subject": subject.to_string() })
        }
        Reason::RecentlyPulled { days_ago, protect_days } => {
            json!({ "kind": "recentlyPulled", "daysAgo": days_ago, "protectDays": protect_days })
        }
    };
    json!({
        "imageDigest": image.digest.to_string(),
        "imageTags": image.tags,
        "imagePushedAt": rfc3339(image.pushed_at),
        "storageClass": image.storage_class.as_str(),
        "appliedRulePriority": image.verdict.rule_priority,
        "verdict": verdict_word(image),
        "reason": reason,
        "explanation": why(image),
    })
}

/// `berth gc`: one garbage collection pass, then what it reclaimed.
pub(crate) async fn gc(
    registry: &Registry,
    grace: Duration,
    dry_run: bool,
    output: Output,
) -> Result<(), String> {
    let report = registry.collect_garbage(grace, dry_run).await.map_err(|e| e.to_string())?;
    match output {
        Output::Json => println!("{}", gc_json(&report)),
        Output::Table => {
            let verb = if dry_run { "would reclaim" } else { "reclaimed" };
            println!(
                "{verb} {} blobs ({} bytes), {} stored files no metadata names ({} bytes) and {} abandoned uploads; \
                 released {} holds of repositories on content their images no longer use; dropped {} wraps of \
                 data keys under keys no holding repository is under",
                report.blobs,
                report.bytes,
                report.orphan_files,
                report.orphan_bytes,
                report.uploads,
                report.released_holds,
                report.dropped_wraps
            );
        }
    }
    Ok(())
}

fn gc_json(report: &GcReport) -> Value {
    json!({
        "dryRun": report.dry_run,
        "blobs": report.blobs,
        "bytes": report.bytes,
        "orphanFiles": report.orphan_files,
        "orphanBytes": report.orphan_bytes,
        "uploads": report.uploads,
        "releasedHolds": report.released_holds,
        "droppedWraps": report.dropped_wraps,
    })
}

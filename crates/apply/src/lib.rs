//! `berth apply`: repositories described as the module blocks platform teams already write
//! (`file.rs`), compared with what a registry holds (`plan.rs`), and made so over ECR's API
//! (`remote.rs`), which a berth, local or remote, or ECR itself answers.

pub mod file;
pub mod plan;
pub mod remote;

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::json;

pub use file::{FileError, Repository, default_lifecycle_policy};
pub use plan::{Action, Conflict, Options, Plan};
pub use remote::Connection;

/// Why an apply stopped.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("{0}\nnothing was changed")]
    File(#[from] FileError),
    #[error("{0}\nnothing was changed")]
    Refused(String),
    #[error("{}\nnothing was changed", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Conflicts(Vec<Conflict>),
    #[error("{operation}{}: {message}", repository.as_ref().map(|r| format!(" on {r}")).unwrap_or_default())]
    Registry { operation: String, repository: Option<String>, message: String },
    /// A call failed while applying: the repositories before it are changed, the rest are not.
    #[error(
        "{cause}\n{done} repositories were changed before this error and {pending} were not (that one \
             included): fix the cause and apply again, which plans only what is left"
    )]
    Stopped { cause: Box<ApplyError>, done: usize, pending: usize },
    #[error("{0}")]
    Internal(String),
}

/// How the outcome is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Output {
    #[default]
    Text,
    Json,
}

/// What `berth apply` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub path: String,
    pub connection: Connection,
    pub options: Options,
    /// Print the plan and change nothing.
    pub plan_only: bool,
    pub output: Output,
}

/// How an apply ended, for the exit code: 0 for `NoChanges` and `Applied`, 2 for `Pending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    NoChanges,
    Applied,
    /// `--plan` found changes to make.
    Pending,
}

/// Reads the file, plans against the registry and, unless only a plan is asked for, applies it;
/// what it does is written to `out` as it happens.
pub async fn run(
    request: &Request,
    variable: &dyn Fn(&str) -> Option<String>,
    out: &mut dyn Write,
) -> Result<Outcome, ApplyError> {
    let text = std::fs::read_to_string(&request.path)
        .map_err(|e| ApplyError::Read { path: request.path.clone(), message: e.to_string() })?;
    let desired = file::parse(&request.path, &text, variable)?;
    if desired.is_empty() && request.options.prune {
        return Err(ApplyError::Refused(format!(
            "{} describes no repositories, so --prune would delete every repository of the account; \
             delete them with `aws ecr delete-repository` if that is what you mean",
            request.path
        )));
    }

    let registry = remote::Registry::connect(&request.connection).await?;
    let wanted: Vec<&str> = desired.iter().map(|r| r.name.as_str()).collect();
    let observed = registry.observe(&wanted, request.options.prune).await?;
    let plan = plan::plan(&desired, &observed, request.options).map_err(ApplyError::Conflicts)?;

    let text_output = request.output == Output::Text;
    if text_output {
        write_out(out, &plan::render(&plan))?;
    }
    if request.plan_only || !plan.has_changes() {
        let urls = repository_urls(&desired, &observed, &BTreeMap::new());
        if request.output == Output::Json {
            write_out(out, &format!("{}\n", json_report(&plan, &urls, false)))?;
        } else if !request.plan_only {
            write_out(out, &urls_text(&urls))?;
        }
        return Ok(if plan.has_changes() { Outcome::Pending } else { Outcome::NoChanges });
    }

    let mut created = BTreeMap::new();
    let mut done = 0;
    for entry in &plan.entries {
        let arn = observed.get(&entry.name).map(|o| o.arn.clone()).unwrap_or_default();
        for step in &entry.steps {
            match registry.execute(&entry.name, &arn, step).await {
                Ok(Some(uri)) => {
                    created.insert(entry.name.clone(), uri);
                }
                Ok(None) => {}
                Err(e) => {
                    let pending = plan.entries.iter().filter(|e| e.action != Action::Keep).count() - done;
                    return Err(ApplyError::Stopped { cause: Box::new(e), done, pending });
                }
            }
        }
        if entry.action != Action::Keep {
            done += 1;
        }
        let past = match entry.action {
            Action::Create => "created",
            Action::Update => "updated",
            Action::Delete => "deleted",
            Action::Keep => continue,
        };
        if text_output {
            write_out(out, &format!("{}: {past}\n", entry.name))?;
        }
    }
    let urls = repository_urls(&desired, &observed, &created);
    if text_output {
        write_out(
            out,
            &format!(
                "Applied: {} created, {} updated, {} deleted.\n",
                plan.count(Action::Create),
                plan.count(Action::Update),
                plan.count(Action::Delete)
            ),
        )?;
        write_out(out, &urls_text(&urls))?;
    } else {
        write_out(out, &format!("{}\n", json_report(&plan, &urls, true)))?;
    }
    Ok(Outcome::Applied)
}

/// Each file repository's `repository_url`, as the registry reports it.
fn repository_urls(
    desired: &[Repository],
    observed: &BTreeMap<String, plan::Observed>,
    created: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    desired
        .iter()
        .map(|r| {
            let name = r.name.as_str();
            let url =
                created.get(name).or_else(|| observed.get(name).map(|o| &o.uri)).cloned().unwrap_or_default();
            (name.to_owned(), url)
        })
        .collect()
}

fn urls_text(urls: &[(String, String)]) -> String {
    urls.iter()
        .filter(|(_, url)| !url.is_empty())
        .map(|(name, url)| format!("{name}: repository_url = {url}\n"))
        .collect()
}

fn json_report(plan: &Plan, urls: &[(String, String)], applied: bool) -> serde_json::Value {
    let entries: Vec<_> = plan
        .entries
        .iter()
        .map(|e| {
            json!({
                "name": e.name,
                "action": e.action.to_string(),
                "changes": e.changes.iter().map(|c| json!({
                    "attribute": c.attribute, "before": c.before, "after": c.after,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "applied": applied,
        "changes_pending": !applied && plan.has_changes(),
        "plan": entries,
        "repositories": urls.iter().map(|(name, url)| json!({
            "name": name,
            "repository_url": (!url.is_empty()).then_some(url),
        })).collect::<Vec<_>>(),
    })
}

fn write_out(out: &mut dyn Write, text: &str) -> Result<(), ApplyError> {
    out.write_all(text.as_bytes()).map_err(|e| ApplyError::Internal(format!("cannot write the output: {e}")))
}

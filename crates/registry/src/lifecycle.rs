//! Lifecycle policies: validated with ECR's rules before they are stored, one per repository;
//! evaluated over a repository's images with the reason for every verdict; run, expiring and
//! archiving images in an order a crash cannot leave inconsistent.

use std::collections::{BTreeMap, BTreeSet};

use berth_core::{Digest, StorageClass};
use berth_iam::Action;
use berth_lifecycle::{Image, Outcome, Protections, RuleAction, Verdict, explain};
use berth_meta::{
    LifecycleImage, ManifestDeletion, Millis, PreviewStatus, Repository, StoredLifecyclePolicy,
};

use crate::{Caller, Registry, RegistryError, RepoPath};

/// A repository's lifecycle policy, as GetLifecyclePolicy shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecyclePolicyView {
    pub text: String,
    /// When the policy last ran over the repository; `None` until it has.
    pub last_evaluated_at: Option<Millis>,
}

impl From<StoredLifecyclePolicy> for LifecyclePolicyView {
    fn from(stored: StoredLifecyclePolicy) -> Self {
        Self { text: stored.text, last_evaluated_at: stored.last_evaluated_at }
    }
}

/// Parses a policy, answering a refusal as ECR does: `InvalidParameterException` naming
/// `LifecyclePolicyText`, with what is wrong.
pub(crate) fn validate(text: &str) -> Result<berth_lifecycle::LifecyclePolicy, RegistryError> {
    berth_lifecycle::parse(text).map_err(|e| {
        RegistryError::InvalidParameter(format!(
            "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: '{e}'"
        ))
    })
}

fn policy_not_found(repo: &RepoPath) -> RegistryError {
    RegistryError::LifecyclePolicyNotFound(format!(
        "Lifecycle policy does not exist for the repository with name '{}' in the registry with id '{}'",
        repo.name, repo.account
    ))
}

impl Registry {
    /// PutLifecyclePolicy: replaces the repository's policy once it validates.
    pub async fn put_lifecycle_policy(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        text: &str,
    ) -> Result<(), RegistryError> {
        let repository = self.authorized_repository(caller, Action::PutLifecyclePolicy, repo).await?;
        validate(text)?;
        self.meta.set_lifecycle_policy(repository.id, Some(text)).await?;
        Ok(())
    }

    pub async fn get_lifecycle_policy(
        &self,
        caller: &Caller,
        repo: &RepoPath,
    ) -> Result<LifecyclePolicyView, RegistryError> {
        let repository = self.authorized_repository(caller, Action::GetLifecyclePolicy, repo).await?;
        let stored = self.meta.lifecycle_policy(repository.id).await?;
        stored.map(Into::into).ok_or_else(|| policy_not_found(repo))
    }

    /// DeleteLifecyclePolicy: removes the policy and returns what it was.
    pub async fn delete_lifecycle_policy(
        &self,
        caller: &Caller,
        repo: &RepoPath,
    ) -> Result<LifecyclePolicyView, RegistryError> {
        let repository = self.authorized_repository(caller, Action::DeleteLifecyclePolicy, repo).await?;
        let previous = self.meta.set_lifecycle_policy(repository.id, None).await?;
        previous.map(Into::into).ok_or_else(|| policy_not_found(repo))
    }
}

/// One image of a repository and what a policy does to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageVerdict {
    pub digest: Digest,
    pub tags: Vec<String>,
    pub pushed_at: Millis,
    pub storage_class: StorageClass,
    pub verdict: Verdict,
}

impl ImageVerdict {
    /// The action taken, if any.
    pub fn action(&self) -> Option<RuleAction> {
        match self.verdict.outcome {
            Outcome::Act(action) => Some(action),
            Outcome::Keep => None,
        }
    }
}

/// What one run of a policy over a repository found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleRun {
    pub repository: RepoPath,
    /// Every image, ordered by digest.
    pub images: Vec<ImageVerdict>,
    pub expired: usize,
    pub archived: usize,
    /// Whether the actions were only reported.
    pub dry_run: bool,
}

fn repo_path(repository: &Repository) -> RepoPath {
    RepoPath { account: repository.account_id.clone(), name: repository.name.clone() }
}

/// Deletion order: an index before the images it lists and a subject's referrers before the
/// subject, so that a run cut short never leaves an index naming a deleted image.
fn deletion_order(images: &[LifecycleImage], doomed: &BTreeSet<Digest>) -> Vec<Digest> {
    // What must go before each doomed image: the doomed indexes that list it, its doomed referrers.
    let before: BTreeMap<&Digest, Vec<&Digest>> = doomed
        .iter()
        .map(|digest| {
            let parents = images
                .iter()
                .filter(|i| &i.record.digest == digest)
                .flat_map(|i| i.parents.iter())
                .filter(|p| doomed.contains(*p));
            let referrers = images
                .iter()
                .filter(|i| i.record.subject.as_ref() == Some(digest))
                .map(|i| &i.record.digest)
                .filter(|r| doomed.contains(*r));
            (digest, parents.chain(referrers).collect())
        })
        .collect();
    let mut done: BTreeSet<&Digest> = BTreeSet::new();
    let mut order = Vec::with_capacity(doomed.len());
    while order.len() < doomed.len() {
        let ready: Vec<&Digest> = doomed
            .iter()
            .filter(|d| !done.contains(d) && before.get(d).is_none_or(|b| b.iter().all(|x| done.contains(x))))
            .collect();
        if ready.is_empty() {
            // Digests name content, so no cycle can be pushed; take any rest as it comes.
            order.extend(doomed.iter().filter(|d| !done.contains(d)).cloned());
            break;
        }
        for digest in ready {
            done.insert(digest);
            order.push(digest.clone());
        }
    }
    order
}

impl Registry {
    /// The images of a repository as the lifecycle evaluator sees them.
    async fn lifecycle_view(&self, repository: &Repository) -> Result<Vec<LifecycleImage>, RegistryError> {
        Ok(self.meta.lifecycle_images(repository.id).await?)
    }

    fn verdicts(
        &self,
        policy: &berth_lifecycle::LifecyclePolicy,
        images: &[LifecycleImage],
        now: Millis,
    ) -> Vec<ImageVerdict> {
        let inputs: Vec<Image> = images
            .iter()
            .map(|i| Image {
                digest: i.record.digest.clone(),
                tags: i.tags.clone(),
                // A restored image counts from its restore, as ECR's lastActivatedAt.
                pushed_at: i.record.pushed_at.max(i.record.last_activated_at.unwrap_or(0)),
                last_pulled_at: i.record.last_pulled_at,
                storage_class: i.record.storage_class,
                archived_at: match i.record.storage_class {
                    StorageClass::Archive => i.record.last_archived_at,
                    StorageClass::Standard => None,
                },
                parents: i.parents.clone(),
                subject: i.record.subject.clone(),
            })
            .collect();
        let protections = Protections { pulled_within_days: self.settings.lifecycle_protect_pulled_days };
        let mut verdicts: BTreeMap<Digest, Verdict> =
            explain(policy, &inputs, now, protections).into_iter().map(|v| (v.digest.clone(), v)).collect();
        images
            .iter()
            .filter_map(|i| {
                Some(ImageVerdict {
                    digest: i.record.digest.clone(),
                    tags: i.tags.clone(),
                    pushed_at: i.record.pushed_at,
                    storage_class: i.record.storage_class,
                    verdict: verdicts.remove(&i.record.digest)?,
                })
            })
            .collect()
    }

    /// What `policy_text` (default: the repository's policy) would do to a repository at `now`,
    /// image by image, with the reasons. For operators: no caller is authorized.
    pub async fn explain_lifecycle(
        &self,
        repo: &RepoPath,
        policy_text: Option<&str>,
        now: Millis,
    ) -> Result<Vec<ImageVerdict>, RegistryError> {
        let repository = self.existing_repository(repo).await?;
        let text = match policy_text {
            Some(text) => text.to_owned(),
            None => {
                self.meta.lifecycle_policy(repository.id).await?.ok_or_else(|| policy_not_found(repo))?.text
            }
        };
        let policy = validate(&text)?;
        let images = self.lifecycle_view(&repository).await?;
        Ok(self.verdicts(&policy, &images, now))
    }

    /// Runs a repository's policy as at `now`: expires and archives what it says (unless
    /// `dry_run`), logging each action, and records when it ran.
    pub async fn run_lifecycle(
        &self,
        repo: &RepoPath,
        now: Millis,
        dry_run: bool,
    ) -> Result<LifecycleRun, RegistryError> {
        let repository = self.existing_repository(repo).await?;
        self.run_lifecycle_on(&repository, now, dry_run).await
    }

    pub(crate) async fn run_lifecycle_on(
        &self,
        repository: &Repository,
        now: Millis,
        dry_run: bool,
    ) -> Result<LifecycleRun, RegistryError> {
        let repo = repo_path(repository);
        let stored =
            self.meta.lifecycle_policy(repository.id).await?.ok_or_else(|| policy_not_found(&repo))?;
        let policy = validate(&stored.text)?;
        let images = self.lifecycle_view(repository).await?;
        let verdicts = self.verdicts(&policy, &images, now);
        let mut run = LifecycleRun { repository: repo, images: Vec::new(), expired: 0, archived: 0, dry_run };
        let doomed: BTreeSet<Digest> = verdicts
            .iter()
            .filter(|v| v.action() == Some(RuleAction::Expire))
            .map(|v| v.digest.clone())
            .collect();
        let by_digest: BTreeMap<&Digest, &ImageVerdict> = verdicts.iter().map(|v| (&v.digest, v)).collect();
        for digest in deletion_order(&images, &doomed) {
            let Some(verdict) = by_digest.get(&digest) else { continue };
            // An image tagged since it was judged is judged again at the next run, not deleted now.
            if !dry_run {
                let mut tags = self.meta.manifest_tags(repository.id, &digest).await?;
                let mut judged = verdict.tags.clone();
                tags.sort();
                judged.sort();
                if tags != judged {
                    tracing::info!(repository = %run.repository, digest = %digest, "tagged since the evaluation; kept for now");
                    continue;
                }
            }
            let deleted = dry_run
                || match self.meta.delete_manifest(repository.id, &digest).await? {
                    ManifestDeletion::Deleted => true,
                    ManifestDeletion::NotFound => false,
                    // An index that lists it was pushed, or kept, since the evaluation: judged again
                    // at the next run.
                    ManifestDeletion::ListedBy(index) => {
                        tracing::info!(repository = %run.repository, digest = %digest, index = %index, "listed by an index that stays; kept for now");
                        false
                    }
                };
            if deleted {
                log_action(&run.repository, verdict, dry_run);
                run.expired += 1;
            }
        }
        for verdict in verdicts.iter().filter(|v| v.action() == Some(RuleAction::Transition)) {
            if dry_run
                || self
                    .meta
                    .set_storage_class(repository.id, &verdict.digest, StorageClass::Archive, now)
                    .await?
            {
                log_action(&run.repository, verdict, dry_run);
                run.archived += 1;
            }
        }
        if !dry_run {
            self.meta.record_lifecycle_evaluation(repository.id, self.now_millis()).await?;
        }
        run.images = verdicts;
        Ok(run)
    }

    /// Every repository that has a lifecycle policy.
    pub async fn repositories_with_lifecycle_policy(&self) -> Result<Vec<RepoPath>, RegistryError> {
        Ok(self.meta.repositories_with_lifecycle_policy().await?.iter().map(repo_path).collect())
    }

    pub(crate) async fn existing_repository(&self, repo: &RepoPath) -> Result<Repository, RegistryError> {
        self.meta
            .get_repository(&repo.account, &repo.name)
            .await?
            .ok_or_else(|| RegistryError::name_unknown(repo))
    }
}

/// One action, in the shape of ECR's `PolicyExecutionEvent` (repository, image, rule).
fn log_action(repo: &RepoPath, verdict: &ImageVerdict, dry_run: bool) {
    tracing::info!(
        event = "PolicyExecutionEvent",
        repository = %repo,
        digest = %verdict.digest,
        tags = ?verdict.tags,
        tag_status = if verdict.tags.is_empty() { "UNTAGGED" } else { "TAGGED" },
        pushed_at = verdict.pushed_at,
        rule_priority = verdict.verdict.rule_priority.unwrap_or(0),
        action = verdict.action().map_or("NONE", RuleAction::as_upper),
        dry_run,
        "lifecycle policy acted on an image"
    );
}

/// One image a preview found the policy acting on (ECR's `LifecyclePolicyPreviewResult`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PreviewResult {
    pub digest: Digest,
    pub tags: Vec<String>,
    pub pushed_at: Millis,
    /// `EXPIRE` or `TRANSITION`.
    pub action: String,
    pub rule_priority: u32,
    /// The image's storage class now (`STANDARD`, `ARCHIVE`).
    pub storage_class: String,
}

/// Which preview results a caller asks for.
#[derive(Debug, Clone, Default)]
pub struct PreviewQuery {
    pub image_ids: Option<Vec<crate::ImageIdInput>>,
    pub tag_status: berth_meta::TagFilter,
    pub next_token: Option<String>,
    pub max_results: usize,
}

/// A page of a repository's latest preview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewPage {
    pub policy_text: String,
    /// `IN_PROGRESS`, `COMPLETE` or `FAILED`.
    pub status: &'static str,
    pub results: Vec<PreviewResult>,
    pub next_token: Option<String>,
    /// Of all the preview's results, how many expire and how many move to archive.
    pub expiring: usize,
    pub transitioning: usize,
}

const PREVIEW_PAGE: &str = "lifecycle-preview";

fn preview_not_found(repo: &RepoPath) -> RegistryError {
    RegistryError::LifecyclePolicyPreviewNotFound(format!(
        "There is no dry run for the repository with name '{}' in the registry with id '{}'",
        repo.name, repo.account
    ))
}

impl Registry {
    /// StartLifecyclePolicyPreview: queues an evaluation of `text` (default: the repository's
    /// policy) against the repository's images; one at a time per repository.
    pub async fn start_lifecycle_preview(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        text: Option<&str>,
    ) -> Result<String, RegistryError> {
        let repository =
            self.authorized_repository(caller, Action::StartLifecyclePolicyPreview, repo).await?;
        let text = match text {
            Some(text) => text.to_owned(),
            None => {
                self.meta.lifecycle_policy(repository.id).await?.ok_or_else(|| policy_not_found(repo))?.text
            }
        };
        validate(&text)?;
        match self.meta.start_lifecycle_preview(repository.id, &text, self.now_millis()).await {
            Ok(()) => {
                self.jobs_waiting.notify_one();
                Ok(text)
            }
            Err(berth_meta::MetaError::AlreadyExists(_)) => {
                Err(RegistryError::LifecyclePolicyPreviewInProgress(format!(
                    "A lifecycle policy preview is already in progress for the repository with name '{}' in the \
                     registry with id '{}'; wait for it to complete",
                    repo.name, repo.account
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// GetLifecyclePolicyPreview: the latest preview's status and, once complete, its results,
    /// filtered and paged.
    pub async fn lifecycle_preview(
        &self,
        caller: &Caller,
        repo: &RepoPath,
        query: &PreviewQuery,
    ) -> Result<PreviewPage, RegistryError> {
        let repository = self.authorized_repository(caller, Action::GetLifecyclePolicyPreview, repo).await?;
        let preview =
            self.meta.lifecycle_preview(repository.id).await?.ok_or_else(|| preview_not_found(repo))?;
        let all: Vec<PreviewResult> = match &preview.results {
            Some(json) => serde_json::from_str(json).map_err(|e| {
                RegistryError::Internal(format!("stored preview of {repo} is malformed: {e}"))
            })?,
            None => Vec::new(),
        };
        let expiring = all.iter().filter(|r| r.action == RuleAction::Expire.as_upper()).count();
        let transitioning = all.len() - expiring;
        let wanted = |r: &&PreviewResult| {
            let by_status = match query.tag_status {
                berth_meta::TagFilter::Any => true,
                berth_meta::TagFilter::Tagged => !r.tags.is_empty(),
                berth_meta::TagFilter::Untagged => r.tags.is_empty(),
            };
            let by_id = query.image_ids.as_ref().is_none_or(|ids| {
                ids.iter().any(|id| {
                    id.digest.as_deref().is_none_or(|d| d == r.digest.to_string())
                        && id.tag.as_ref().is_none_or(|t| r.tags.contains(t))
                })
            });
            by_status && by_id
        };
        let after = crate::images::open_page(self, PREVIEW_PAGE, repo, query.next_token.as_deref())?;
        let mut results: Vec<PreviewResult> = all
            .iter()
            .filter(wanted)
            .filter(|r| after.as_deref().is_none_or(|a| r.digest.to_string().as_str() > a))
            .take(query.max_results + 1)
            .cloned()
            .collect();
        let next_token = if results.len() > query.max_results {
            results.truncate(query.max_results);
            results.last().map(|r| crate::images::seal_page(self, PREVIEW_PAGE, repo, &r.digest.to_string()))
        } else {
            None
        };
        Ok(PreviewPage {
            policy_text: preview.policy,
            status: preview.status.as_str(),
            results,
            next_token,
            expiring,
            transitioning,
        })
    }

    /// Evaluates a repository's pending preview and records its results (the preview job).
    pub(crate) async fn complete_preview(&self, repository_id: i64) -> Result<(), RegistryError> {
        let Some(preview) = self.meta.lifecycle_preview(repository_id).await? else { return Ok(()) };
        let repository = self.meta.repository_by_id(repository_id).await?;
        let outcome = match (&repository, validate(&preview.policy)) {
            (Some(repository), Ok(policy)) => {
                let images = self.lifecycle_view(repository).await?;
                let results: Vec<PreviewResult> = self
                    .verdicts(&policy, &images, self.now_millis())
                    .into_iter()
                    .filter_map(|v| {
                        Some(PreviewResult {
                            action: v.action()?.as_upper().to_owned(),
                            rule_priority: v.verdict.rule_priority?,
                            storage_class: v.storage_class.as_str().to_owned(),
                            digest: v.digest,
                            tags: v.tags,
                            pushed_at: v.pushed_at,
                        })
                    })
                    .collect();
                serde_json::to_string(&results).ok()
            }
            _ => None,
        };
        let status = if outcome.is_some() { PreviewStatus::Complete } else { PreviewStatus::Failed };
        self.meta
            .finish_lifecycle_preview(repository_id, status, outcome.as_deref(), self.now_millis())
            .await?;
        Ok(())
    }
}

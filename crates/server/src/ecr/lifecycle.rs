//! Lifecycle policies: Put/Get/DeleteLifecyclePolicy.

use berth_registry::{LifecyclePolicyView, RepoPath};
use serde::Deserialize;
use serde_json::{Value, json};

use super::repositories::{constraint, epoch_seconds, registry_id, repository_name};
use super::{Context, EcrError};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PutLifecyclePolicyInput {
    registry_id: Option<String>,
    repository_name: String,
    lifecycle_policy_text: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LifecyclePolicyInput {
    registry_id: Option<String>,
    repository_name: String,
}

fn repo(ctx: &Context<'_>, registry: Option<&str>, name: &str) -> Result<RepoPath, EcrError> {
    Ok(RepoPath { account: registry_id(ctx, registry)?, name: repository_name(name)? })
}

/// The model's bounds on `lifecyclePolicyText`, in characters.
fn check_text(text: &str) -> Result<(), EcrError> {
    let bounds = berth_registry::limits::LIFECYCLE_POLICY_CHARS;
    let chars = text.chars().count();
    if chars < *bounds.start() {
        return Err(constraint(
            "lifecyclePolicyText",
            &format!("must have length greater than or equal to {}", bounds.start()),
        ));
    }
    if chars > *bounds.end() {
        return Err(constraint(
            "lifecyclePolicyText",
            &format!("must have length less than or equal to {}", bounds.end()),
        ));
    }
    Ok(())
}

fn policy_output(repo: &RepoPath, policy: &LifecyclePolicyView) -> Value {
    let mut out = json!({
        "registryId": repo.account.as_str(),
        "repositoryName": repo.name.as_str(),
        "lifecyclePolicyText": policy.text,
    });
    if let Some(at) = policy.last_evaluated_at {
        out["lastEvaluatedAt"] = epoch_seconds(at);
    }
    out
}

pub(crate) async fn put_lifecycle_policy(
    ctx: &Context<'_>,
    input: PutLifecyclePolicyInput,
) -> Result<Value, EcrError> {
    let repo = repo(ctx, input.registry_id.as_deref(), &input.repository_name)?;
    check_text(&input.lifecycle_policy_text)?;
    ctx.registry.put_lifecycle_policy(&ctx.caller, &repo, &input.lifecycle_policy_text).await?;
    Ok(json!({
        "registryId": repo.account.as_str(),
        "repositoryName": repo.name.as_str(),
        "lifecyclePolicyText": input.lifecycle_policy_text,
    }))
}

pub(crate) async fn get_lifecycle_policy(
    ctx: &Context<'_>,
    input: LifecyclePolicyInput,
) -> Result<Value, EcrError> {
    let repo = repo(ctx, input.registry_id.as_deref(), &input.repository_name)?;
    let policy = ctx.registry.get_lifecycle_policy(&ctx.caller, &repo).await?;
    Ok(policy_output(&repo, &policy))
}

pub(crate) async fn delete_lifecycle_policy(
    ctx: &Context<'_>,
    input: LifecyclePolicyInput,
) -> Result<Value, EcrError> {
    let repo = repo(ctx, input.registry_id.as_deref(), &input.repository_name)?;
    let policy = ctx.registry.delete_lifecycle_policy(&ctx.caller, &repo).await?;
    Ok(policy_output(&repo, &policy))
}

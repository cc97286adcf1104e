//! Lifecycle policies: Put/Get/DeleteLifecyclePolicy, Start/GetLifecyclePolicyPreview.

use berth_registry::{LifecyclePolicyView, PreviewQuery, RepoPath};
use serde::Deserialize;
use serde_json::{Value, json};

use super::images::{ImageFilter, ImageIdentifier, image_ids, repo, tag_filter};
use super::repositories::{constraint, epoch_seconds};
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StartPreviewInput {
    registry_id: Option<String>,
    repository_name: String,
    lifecycle_policy_text: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GetPreviewInput {
    registry_id: Option<String>,
    repository_name: String,
    image_ids: Option<Vec<ImageIdentifier>>,
    next_token: Option<String>,
    max_results: Option<i64>,
    filter: Option<ImageFilter>,
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

pub(crate) async fn start_lifecycle_policy_preview(
    ctx: &Context<'_>,
    input: StartPreviewInput,
) -> Result<Value, EcrError> {
    let repo = repo(ctx, input.registry_id.as_deref(), &input.repository_name)?;
    if let Some(text) = &input.lifecycle_policy_text {
        check_text(text)?;
    }
    let text = ctx
        .registry
        .start_lifecycle_preview(&ctx.caller, &repo, input.lifecycle_policy_text.as_deref())
        .await?;
    Ok(json!({
        "registryId": repo.account.as_str(),
        "repositoryName": repo.name.as_str(),
        "lifecyclePolicyText": text,
        "status": "IN_PROGRESS",
    }))
}

pub(crate) async fn get_lifecycle_policy_preview(
    ctx: &Context<'_>,
    input: GetPreviewInput,
) -> Result<Value, EcrError> {
    let repo = repo(ctx, input.registry_id.as_deref(), &input.repository_name)?;
    let max_results = match input.max_results {
        None => 100,
        Some(n @ 1..=100) => n as usize,
        Some(_) => return Err(constraint("maxResults", "must be between 1 and 100")),
    };
    let image_ids = input.image_ids.as_deref().map(image_ids).transpose()?;
    if image_ids.is_some() && input.next_token.is_some() {
        return Err(constraint("nextToken", "cannot be used with imageIds"));
    }
    let query = PreviewQuery {
        image_ids,
        tag_status: tag_filter(input.filter.as_ref())?,
        next_token: input.next_token,
        max_results,
    };
    let page = ctx.registry.lifecycle_preview(&ctx.caller, &repo, &query).await?;
    let results: Vec<Value> = page
        .results
        .iter()
        .map(|r| {
            let mut action = json!({ "type": r.action });
            if r.action == "TRANSITION" {
                action["targetStorageClass"] = json!("ARCHIVE");
            }
            let mut out = json!({
                "imageDigest": r.digest.to_string(),
                "imagePushedAt": epoch_seconds(r.pushed_at),
                "action": action,
                "appliedRulePriority": r.rule_priority,
                "storageClass": r.storage_class,
            });
            if !r.tags.is_empty() {
                out["imageTags"] = json!(r.tags);
            }
            out
        })
        .collect();
    let mut out = json!({
        "registryId": repo.account.as_str(),
        "repositoryName": repo.name.as_str(),
        "lifecyclePolicyText": page.policy_text,
        "status": page.status,
        "previewResults": results,
        "summary": {
            "expiringImageTotalCount": page.expiring,
            "transitioningImageTotalCounts": if page.transitioning > 0 {
                json!([{ "targetStorageClass": "ARCHIVE", "imageTotalCount": page.transitioning }])
            } else {
                json!([])
            },
        },
    });
    if let Some(token) = page.next_token {
        out["nextToken"] = json!(token);
    }
    Ok(out)
}

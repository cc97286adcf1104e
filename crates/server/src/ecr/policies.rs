//! Repository and registry policies: Set/Get/DeleteRepositoryPolicy, Put/Get/DeleteRegistryPolicy.

use berth_registry::RepoPath;
use serde::Deserialize;
use serde_json::{Value, json};

use super::repositories::{constraint, registry_id, repository_name};
use super::{Context, EcrError};

const MAX_POLICY_TEXT: usize = 10_240;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SetRepositoryPolicyInput {
    registry_id: Option<String>,
    repository_name: String,
    policy_text: String,
    #[serde(default)]
    force: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RepositoryPolicyInput {
    registry_id: Option<String>,
    repository_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PutRegistryPolicyInput {
    policy_text: String,
}

#[derive(Deserialize)]
pub(crate) struct NoInput {}

fn repo(ctx: &Context<'_>, registry: Option<&str>, name: &str) -> Result<RepoPath, EcrError> {
    Ok(RepoPath { account: registry_id(ctx, registry)?, name: repository_name(name)? })
}

fn check_text(text: &str) -> Result<(), EcrError> {
    if text.is_empty() || text.len() > MAX_POLICY_TEXT {
        return Err(constraint("policyText", "must have length between 1 and 10240"));
    }
    Ok(())
}

pub(crate) async fn set_repository_policy(
    ctx: &Context<'_>,
    input: SetRepositoryPolicyInput,
) -> Result<Value, EcrError> {
    let repo = repo(ctx, input.registry_id.as_deref(), &input.repository_name)?;
    check_text(&input.policy_text)?;
    ctx.registry.set_repository_policy(&ctx.caller, &repo, &input.policy_text, input.force).await?;
    Ok(
        json!({ "registryId": repo.account.as_str(), "repositoryName": repo.name.as_str(), "policyText": input.policy_text }),
    )
}

pub(crate) async fn get_repository_policy(
    ctx: &Context<'_>,
    input: RepositoryPolicyInput,
) -> Result<Value, EcrError> {
    let repo = repo(ctx, input.registry_id.as_deref(), &input.repository_name)?;
    let text = ctx.registry.get_repository_policy(&ctx.caller, &repo).await?;
    Ok(
        json!({ "registryId": repo.account.as_str(), "repositoryName": repo.name.as_str(), "policyText": text }),
    )
}

pub(crate) async fn delete_repository_policy(
    ctx: &Context<'_>,
    input: RepositoryPolicyInput,
) -> Result<Value, EcrError> {
    let repo = repo(ctx, input.registry_id.as_deref(), &input.repository_name)?;
    let text = ctx.registry.delete_repository_policy(&ctx.caller, &repo).await?;
    Ok(
        json!({ "registryId": repo.account.as_str(), "repositoryName": repo.name.as_str(), "policyText": text }),
    )
}

pub(crate) async fn put_registry_policy(
    ctx: &Context<'_>,
    input: PutRegistryPolicyInput,
) -> Result<Value, EcrError> {
    let account = registry_id(ctx, None)?;
    check_text(&input.policy_text)?;
    ctx.registry.put_registry_policy(&ctx.caller, &account, &input.policy_text).await?;
    Ok(json!({ "registryId": account.as_str(), "policyText": input.policy_text }))
}

pub(crate) async fn get_registry_policy(ctx: &Context<'_>, _input: NoInput) -> Result<Value, EcrError> {
    let account = registry_id(ctx, None)?;
    let text = ctx.registry.get_registry_policy(&ctx.caller, &account).await?;
    Ok(json!({ "registryId": account.as_str(), "policyText": text }))
}

pub(crate) async fn delete_registry_policy(ctx: &Context<'_>, _input: NoInput) -> Result<Value, EcrError> {
    let account = registry_id(ctx, None)?;
    let text = ctx.registry.delete_registry_policy(&ctx.caller, &account).await?;
    Ok(json!({ "registryId": account.as_str(), "policyText": text }))
}

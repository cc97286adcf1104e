//! Repository creation templates: Create/Describe/Update/DeleteRepositoryCreationTemplate.

use berth_core::{EncryptionType, RepositorySettings, TagMutability};
use berth_registry::CreationTemplate;
use serde::Deserialize;
use serde_json::{Value, json};

use super::repositories::{
    EncryptionConfiguration, ExclusionFilter, ResourceTag, epoch_seconds, registry_id, resource_tags,
};
use super::{Context, EcrError};

// The template operations, among ECR's newer ones, answer a broken input constraint with
// `ValidationException` (`EcrError::validation`).

/// The fields Create and Update share; on Update every one is optional.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TemplateInput {
    prefix: String,
    description: Option<String>,
    encryption_configuration: Option<EncryptionConfiguration>,
    resource_tags: Option<Vec<ResourceTag>>,
    image_tag_mutability: Option<String>,
    image_tag_mutability_exclusion_filters: Option<Vec<ExclusionFilter>>,
    repository_policy: Option<String>,
    lifecycle_policy: Option<String>,
    applied_for: Option<Vec<String>>,
    custom_role_arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DescribeTemplatesInput {
    prefixes: Option<Vec<String>>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeleteTemplateInput {
    prefix: String,
}

fn template_json(t: &CreationTemplate) -> Value {
    let mut encryption = json!({ "encryptionType": t.settings.encryption.as_str() });
    if let Some(key) = &t.settings.kms_key {
        encryption["kmsKey"] = json!(key);
    }
    let mut out = json!({
        "prefix": t.prefix,
        "encryptionConfiguration": encryption,
        "resourceTags": t.resource_tags.iter().map(|(k, v)| json!({ "Key": k, "Value": v })).collect::<Vec<_>>(),
        "imageTagMutability": t.settings.tag_mutability.as_str(),
        "appliedFor": t.applied_for,
        "createdAt": epoch_seconds(t.created_at),
        "updatedAt": epoch_seconds(t.updated_at),
    });
    let optional = [
        ("description", &t.description),
        ("repositoryPolicy", &t.repository_policy),
        ("lifecyclePolicy", &t.lifecycle_policy),
        ("customRoleArn", &t.custom_role_arn),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            out[name] = json!(v);
        }
    }
    if !t.settings.mutability_exclusions.is_empty() {
        out["imageTagMutabilityExclusionFilters"] = json!(
            t.settings
                .mutability_exclusions
                .iter()
                .map(|f| json!({ "filterType": "WILDCARD", "filter": f }))
                .collect::<Vec<_>>()
        );
    }
    out
}

/// Applies the fields an input sets to a template.
fn apply(input: TemplateInput, t: &mut CreationTemplate) -> Result<(), EcrError> {
    if let Some(d) = input.description {
        t.description = Some(d);
    }
    if let Some(c) = input.encryption_configuration {
        t.settings.encryption = c
            .encryption_type
            .parse()
            .map_err(|e: berth_core::InvalidInput| EcrError::validation("encryptionType", &e.reason))?;
        if let Some(key) = &c.kms_key
            && !key.is_empty()
            && !key.starts_with("arn:aws")
        {
            return Err(EcrError::validation(
                "encryptionConfiguration.kmsKey",
                "must be empty or a full KMS key ARN",
            ));
        }
        t.settings.kms_key = c.kms_key.filter(|k| !k.is_empty());
    }
    if let Some(tags) = input.resource_tags {
        // Tag errors have exceptions of their own only where the model lists them.
        t.resource_tags =
            resource_tags(&tags).map_err(|e| EcrError::validation("resourceTags", &e.message))?;
    }
    if let Some(m) = input.image_tag_mutability {
        t.settings.tag_mutability = m
            .parse()
            .map_err(|e: berth_core::InvalidInput| EcrError::validation("imageTagMutability", &e.reason))?;
    }
    if let Some(filters) = input.image_tag_mutability_exclusion_filters {
        if filters.iter().any(|f| f.filter_type != "WILDCARD") {
            return Err(EcrError::validation(
                "imageTagMutabilityExclusionFilters.filterType",
                "must be one of [WILDCARD]",
            ));
        }
        t.settings.mutability_exclusions = filters.into_iter().map(|f| f.filter).collect();
    }
    if let Some(p) = input.repository_policy {
        t.repository_policy = Some(p);
    }
    if let Some(p) = input.lifecycle_policy {
        t.lifecycle_policy = Some(p);
    }
    if let Some(a) = input.applied_for {
        t.applied_for = a;
    }
    if let Some(r) = input.custom_role_arn {
        t.custom_role_arn = Some(r);
    }
    Ok(())
}

fn empty_template(prefix: String) -> CreationTemplate {
    CreationTemplate {
        prefix,
        description: None,
        settings: RepositorySettings {
            tag_mutability: TagMutability::Mutable,
            encryption: EncryptionType::Aes256,
            ..RepositorySettings::default()
        },
        resource_tags: Vec::new(),
        repository_policy: None,
        lifecycle_policy: None,
        applied_for: Vec::new(),
        custom_role_arn: None,
        created_at: 0,
        updated_at: 0,
    }
}

pub(crate) async fn create(ctx: &Context<'_>, input: TemplateInput) -> Result<Value, EcrError> {
    let account = registry_id(ctx, None)?;
    if input.applied_for.is_none() {
        return Err(EcrError::validation("appliedFor", "is required"));
    }
    let mut template = empty_template(input.prefix.clone());
    apply(input, &mut template)?;
    let template = ctx.registry.create_creation_template(&ctx.caller, &account, template).await?;
    Ok(json!({ "registryId": account.as_str(), "repositoryCreationTemplate": template_json(&template) }))
}

pub(crate) async fn update(ctx: &Context<'_>, input: TemplateInput) -> Result<Value, EcrError> {
    let account = registry_id(ctx, None)?;
    let prefix = input.prefix.clone();
    let mut result = Ok(());
    let template = ctx
        .registry
        .update_creation_template(&ctx.caller, &account, &prefix, |t| result = apply(input, t))
        .await;
    result?;
    Ok(json!({ "registryId": account.as_str(), "repositoryCreationTemplate": template_json(&template?) }))
}

pub(crate) async fn describe(ctx: &Context<'_>, input: DescribeTemplatesInput) -> Result<Value, EcrError> {
    let account = registry_id(ctx, None)?;
    let max = match input.max_results {
        None => 1000,
        Some(n @ 1..=1000) => n as usize,
        Some(_) => return Err(EcrError::validation("maxResults", "must be between 1 and 1000")),
    };
    if input.prefixes.as_ref().is_some_and(|p| p.len() > 100) {
        return Err(EcrError::validation("prefixes", "must have at most 100 members"));
    }
    let (templates, next) = ctx
        .registry
        .describe_creation_templates(
            &ctx.caller,
            &account,
            input.prefixes.as_deref(),
            input.next_token.as_deref(),
            max,
        )
        .await?;
    let mut out = json!({
        "registryId": account.as_str(),
        "repositoryCreationTemplates": templates.iter().map(template_json).collect::<Vec<_>>(),
    });
    if let Some(token) = next {
        out["nextToken"] = json!(token);
    }
    Ok(out)
}

pub(crate) async fn delete(ctx: &Context<'_>, input: DeleteTemplateInput) -> Result<Value, EcrError> {
    let account = registry_id(ctx, None)?;
    let template = ctx.registry.delete_creation_template(&ctx.caller, &account, &input.prefix).await?;
    Ok(json!({ "registryId": account.as_str(), "repositoryCreationTemplate": template_json(&template) }))
}

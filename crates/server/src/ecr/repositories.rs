//! Repository operations and GetAuthorizationToken.

use berth_core::{
    AccountId, EncryptionType, RepositoryName, RepositorySettings, TagMutability, repository_arn,
};
use berth_registry::RepoPath;
use berth_registry::Repository;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Context, EcrError};

/// Most resource tags on a repository, as ECR's.
const MAX_TAGS: usize = berth_registry::MAX_RESOURCE_TAGS;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GetAuthorizationTokenInput {
    #[serde(default)]
    registry_ids: Option<Vec<String>>,
}

#[derive(Deserialize)]
pub(super) struct ResourceTag {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Value")]
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ExclusionFilter {
    pub(super) filter_type: String,
    pub(super) filter: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ScanningConfiguration {
    #[serde(default)]
    scan_on_push: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct EncryptionConfiguration {
    pub(super) encryption_type: String,
    #[serde(default)]
    pub(super) kms_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateRepositoryInput {
    registry_id: Option<String>,
    repository_name: String,
    #[serde(default)]
    tags: Vec<ResourceTag>,
    image_tag_mutability: Option<String>,
    #[serde(default)]
    image_tag_mutability_exclusion_filters: Vec<ExclusionFilter>,
    image_scanning_configuration: Option<ScanningConfiguration>,
    encryption_configuration: Option<EncryptionConfiguration>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DescribeRepositoriesInput {
    registry_id: Option<String>,
    repository_names: Option<Vec<String>>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeleteRepositoryInput {
    registry_id: Option<String>,
    repository_name: String,
    #[serde(default)]
    force: bool,
}

pub(super) fn constraint(member: &str, rule: &str) -> EcrError {
    EcrError::invalid_parameter(format!(
        "Invalid parameter at '{member}' failed to satisfy constraint: '{rule}'"
    ))
}

/// The registry (account) a request addresses: `registryId` if given, else the caller's own.
pub(super) fn registry_id(ctx: &Context<'_>, given: Option<&str>) -> Result<AccountId, EcrError> {
    match given {
        Some(id) => {
            id.parse().map_err(|_| constraint("registryId", "must satisfy regular expression '[0-9]{12}'"))
        }
        None => ctx.caller.principal.account().cloned().ok_or_else(|| {
            EcrError::new(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        }),
    }
}

pub(super) fn repository_name(name: &str) -> Result<RepositoryName, EcrError> {
    name.parse().map_err(|e: berth_core::InvalidInput| constraint("repositoryName", &e.reason))
}

/// Epoch seconds with millisecond precision, as AWS timestamps are encoded.
pub(super) fn epoch_seconds(millis: i64) -> Value {
    json!(millis as f64 / 1000.0)
}

/// ECR's `Repository` shape.
fn repository_json(ctx: &Context<'_>, repository: &Repository) -> Value {
    let settings = &repository.settings;
    let mut encryption = json!({ "encryptionType": settings.encryption.as_str() });
    if let Some(key) = &settings.kms_key {
        encryption["kmsKey"] = json!(key);
    }
    let mut out = json!({
        "repositoryArn": repository_arn(&ctx.registry.settings().region, &repository.account_id, &repository.name),
        "registryId": repository.account_id.as_str(),
        "repositoryName": repository.name.as_str(),
        "repositoryUri": ctx.registry.settings().repository_uri(&ctx.host, &repository.account_id, repository.name.as_str()),
        "createdAt": epoch_seconds(repository.created_at),
        "imageTagMutability": settings.tag_mutability.as_str(),
        "imageScanningConfiguration": { "scanOnPush": settings.scan_on_push },
        "encryptionConfiguration": encryption,
    });
    if !settings.mutability_exclusions.is_empty() {
        out["imageTagMutabilityExclusionFilters"] = json!(
            settings
                .mutability_exclusions
                .iter()
                .map(|f| json!({ "filterType": "WILDCARD", "filter": f }))
                .collect::<Vec<_>>()
        );
    }
    out
}

pub(crate) async fn get_authorization_token(
    ctx: &Context<'_>,
    input: GetAuthorizationTokenInput,
) -> Result<Value, EcrError> {
    if let Some(ids) = &input.registry_ids {
        if ids.is_empty() || ids.len() > 10 {
            return Err(constraint("registryIds", "must have 1 to 10 members"));
        }
        for id in ids {
            registry_id(ctx, Some(id))?;
        }
    }
    let token = ctx.registry.authorization_token(&ctx.caller).await?;
    let account = ctx.caller.principal.account().ok_or_else(|| {
        EcrError::from(berth_registry::RegistryError::Unauthenticated("authentication required".to_owned()))
    })?;
    // One entry per registry asked for (the parameter is deprecated), else one.
    let entries = input.registry_ids.as_ref().map_or(1, Vec::len);
    let data: Vec<Value> = (0..entries)
        .map(|_| {
            json!({
                "authorizationToken": token.authorization_token(),
                "expiresAt": token.expires_at,
                "proxyEndpoint": ctx.registry.settings().proxy_endpoint(&ctx.host, account),
            })
        })
        .collect();
    Ok(json!({ "authorizationData": data }))
}

fn settings_from(input: &CreateRepositoryInput) -> Result<RepositorySettings, EcrError> {
    let tag_mutability = match &input.image_tag_mutability {
        None => TagMutability::Mutable,
        Some(m) => {
            m.parse().map_err(|e: berth_core::InvalidInput| constraint("imageTagMutability", &e.reason))?
        }
    };
    let mut mutability_exclusions = Vec::new();
    for f in &input.image_tag_mutability_exclusion_filters {
        if f.filter_type != "WILDCARD" {
            return Err(constraint(
                "imageTagMutabilityExclusionFilters.filterType",
                "must be one of [WILDCARD]",
            ));
        }
        mutability_exclusions.push(f.filter.clone());
    }
    let (encryption, kms_key) = match &input.encryption_configuration {
        None => (EncryptionType::Aes256, None),
        Some(c) => {
            let kind: EncryptionType = c
                .encryption_type
                .parse()
                .map_err(|e: berth_core::InvalidInput| constraint("encryptionType", &e.reason))?;
            if let Some(key) = &c.kms_key {
                if key.is_empty() || key.len() > 2048 {
                    return Err(constraint("kmsKey", "must have length between 1 and 2048"));
                }
                if kind == EncryptionType::Aes256 {
                    return Err(EcrError::invalid_parameter(
                        "kmsKey can only be given with encryptionType KMS or KMS_DSSE",
                    ));
                }
            }
            (kind, c.kms_key.clone())
        }
    };
    Ok(RepositorySettings {
        tag_mutability,
        mutability_exclusions,
        scan_on_push: input.image_scanning_configuration.as_ref().is_some_and(|c| c.scan_on_push),
        encryption,
        kms_key,
    })
}

/// Why a resource tag key breaks AWS's tag rules, if it does: 1 to 128 characters, and not
/// starting with the reserved `aws:` (in any case).
fn tag_key_problem(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        Some("is empty; a tag key must have 1 to 128 characters")
    } else if key.chars().count() > 128 {
        Some("is longer than 128 characters")
    } else if key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:")) {
        Some("starts with aws:, which is reserved for AWS")
    } else {
        None
    }
}

fn invalid_tag(message: String) -> EcrError {
    EcrError::new("InvalidTagParameterException", message)
}

pub(super) fn resource_tags(tags: &[ResourceTag]) -> Result<Vec<(String, String)>, EcrError> {
    if tags.len() > MAX_TAGS {
        return Err(EcrError::new(
            "TooManyTagsException",
            format!("{} tags were given; a repository can have at most {MAX_TAGS} tags", tags.len()),
        ));
    }
    let mut out: Vec<(String, String)> = Vec::with_capacity(tags.len());
    for tag in tags {
        if let Some(problem) = tag_key_problem(&tag.key) {
            return Err(invalid_tag(format!("The tag key {:?} {problem}", tag.key)));
        }
        if tag.value.chars().count() > 256 {
            return Err(invalid_tag(format!(
                "The value of the tag key {:?} is longer than 256 characters",
                tag.key
            )));
        }
        if out.iter().any(|(k, _)| k == &tag.key) {
            return Err(invalid_tag(format!("The tag key {:?} is given twice", tag.key)));
        }
        out.push((tag.key.clone(), tag.value.clone()));
    }
    Ok(out)
}

pub(crate) async fn create_repository(
    ctx: &Context<'_>,
    input: CreateRepositoryInput,
) -> Result<Value, EcrError> {
    let repo = RepoPath {
        account: registry_id(ctx, input.registry_id.as_deref())?,
        name: repository_name(&input.repository_name)?,
    };
    let settings = settings_from(&input)?;
    let tags = resource_tags(&input.tags)?;
    let repository = ctx.registry.create_repository(&ctx.caller, &repo, &settings, &tags).await?;
    Ok(json!({ "repository": repository_json(ctx, &repository) }))
}

pub(crate) async fn describe_repositories(
    ctx: &Context<'_>,
    input: DescribeRepositoriesInput,
) -> Result<Value, EcrError> {
    let account = registry_id(ctx, input.registry_id.as_deref())?;
    let max_results = match input.max_results {
        None => 1000,
        Some(n @ 1..=1000) => n as u32,
        Some(_) => return Err(constraint("maxResults", "must be between 1 and 1000")),
    };
    let names = match &input.repository_names {
        None => None,
        Some(names) if names.is_empty() || names.len() > 100 => {
            return Err(constraint("repositoryNames", "must have 1 to 100 members"));
        }
        Some(names) => Some(names.iter().map(|n| repository_name(n)).collect::<Result<Vec<_>, _>>()?),
    };
    if names.is_some() && (input.next_token.is_some() || input.max_results.is_some()) {
        return Err(EcrError::invalid_parameter(
            "nextToken and maxResults cannot be used with repositoryNames",
        ));
    }
    let page = ctx
        .registry
        .describe_repositories(
            &ctx.caller,
            &account,
            names.as_deref(),
            input.next_token.as_deref(),
            max_results,
        )
        .await?;
    let mut out = json!({
        "repositories": page.repositories.iter().map(|r| repository_json(ctx, r)).collect::<Vec<_>>(),
    });
    if let Some(token) = page.next_token {
        out["nextToken"] = json!(token);
    }
    Ok(out)
}

pub(crate) async fn delete_repository(
    ctx: &Context<'_>,
    input: DeleteRepositoryInput,
) -> Result<Value, EcrError> {
    let repo = RepoPath {
        account: registry_id(ctx, input.registry_id.as_deref())?,
        name: repository_name(&input.repository_name)?,
    };
    let repository = ctx.registry.delete_repository(&ctx.caller, &repo, input.force).await?;
    Ok(json!({ "repository": repository_json(ctx, &repository) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PutImageTagMutabilityInput {
    registry_id: Option<String>,
    repository_name: String,
    image_tag_mutability: String,
    #[serde(default)]
    image_tag_mutability_exclusion_filters: Vec<ExclusionFilter>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PutImageScanningConfigurationInput {
    registry_id: Option<String>,
    repository_name: String,
    image_scanning_configuration: ScanningConfiguration,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TagResourceInput {
    resource_arn: String,
    tags: Vec<ResourceTag>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UntagResourceInput {
    resource_arn: String,
    tag_keys: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListTagsForResourceInput {
    resource_arn: String,
}

#[derive(Deserialize)]
pub(crate) struct DescribeRegistryInput {}

fn exclusion_filters_json(filters: &[String]) -> Value {
    json!(filters.iter().map(|f| json!({ "filterType": "WILDCARD", "filter": f })).collect::<Vec<_>>())
}

pub(crate) async fn put_image_tag_mutability(
    ctx: &Context<'_>,
    input: PutImageTagMutabilityInput,
) -> Result<Value, EcrError> {
    let repo = RepoPath {
        account: registry_id(ctx, input.registry_id.as_deref())?,
        name: repository_name(&input.repository_name)?,
    };
    let mutability: TagMutability = input
        .image_tag_mutability
        .parse()
        .map_err(|e: berth_core::InvalidInput| constraint("imageTagMutability", &e.reason))?;
    let mut filters = Vec::new();
    for f in &input.image_tag_mutability_exclusion_filters {
        if f.filter_type != "WILDCARD" {
            return Err(constraint(
                "imageTagMutabilityExclusionFilters.filterType",
                "must be one of [WILDCARD]",
            ));
        }
        filters.push(f.filter.clone());
    }
    let settings = ctx
        .registry
        .update_repository_settings(&ctx.caller, &repo, berth_iam::Action::PutImageTagMutability, |s| {
            s.tag_mutability = mutability;
            s.mutability_exclusions = filters;
        })
        .await?;
    let mut out = json!({
        "registryId": repo.account.as_str(),
        "repositoryName": repo.name.as_str(),
        "imageTagMutability": settings.tag_mutability.as_str(),
    });
    if !settings.mutability_exclusions.is_empty() {
        out["imageTagMutabilityExclusionFilters"] = exclusion_filters_json(&settings.mutability_exclusions);
    }
    Ok(out)
}

pub(crate) async fn put_image_scanning_configuration(
    ctx: &Context<'_>,
    input: PutImageScanningConfigurationInput,
) -> Result<Value, EcrError> {
    let repo = RepoPath {
        account: registry_id(ctx, input.registry_id.as_deref())?,
        name: repository_name(&input.repository_name)?,
    };
    let scan_on_push = input.image_scanning_configuration.scan_on_push;
    let settings = ctx
        .registry
        .update_repository_settings(
            &ctx.caller,
            &repo,
            berth_iam::Action::PutImageScanningConfiguration,
            |s| {
                s.scan_on_push = scan_on_push;
            },
        )
        .await?;
    Ok(json!({
        "registryId": repo.account.as_str(),
        "repositoryName": repo.name.as_str(),
        "imageScanningConfiguration": { "scanOnPush": settings.scan_on_push },
    }))
}

pub(crate) async fn tag_resource(ctx: &Context<'_>, input: TagResourceInput) -> Result<Value, EcrError> {
    let repo = ctx.registry.repository_from_arn(&input.resource_arn)?;
    if input.tags.is_empty() {
        return Err(constraint("tags", "must have at least 1 member"));
    }
    let tags = resource_tags(&input.tags)?;
    ctx.registry.tag_repository(&ctx.caller, &repo, &tags).await?;
    Ok(json!({}))
}

pub(crate) async fn untag_resource(ctx: &Context<'_>, input: UntagResourceInput) -> Result<Value, EcrError> {
    let repo = ctx.registry.repository_from_arn(&input.resource_arn)?;
    if input.tag_keys.is_empty() || input.tag_keys.len() > MAX_TAGS {
        return Err(constraint("tagKeys", "must have 1 to 50 members"));
    }
    for key in &input.tag_keys {
        if let Some(problem) = tag_key_problem(key) {
            return Err(invalid_tag(format!("The tag key {key:?} {problem}")));
        }
    }
    ctx.registry.untag_repository(&ctx.caller, &repo, &input.tag_keys).await?;
    Ok(json!({}))
}

pub(crate) async fn list_tags_for_resource(
    ctx: &Context<'_>,
    input: ListTagsForResourceInput,
) -> Result<Value, EcrError> {
    let repo = ctx.registry.repository_from_arn(&input.resource_arn)?;
    let tags = ctx.registry.repository_tags(&ctx.caller, &repo).await?;
    Ok(json!({ "tags": tags.iter().map(|(k, v)| json!({ "Key": k, "Value": v })).collect::<Vec<_>>() }))
}

pub(crate) async fn describe_registry(
    ctx: &Context<'_>,
    _input: DescribeRegistryInput,
) -> Result<Value, EcrError> {
    let account = registry_id(ctx, None)?;
    ctx.registry.describe_registry(&ctx.caller, &account).await?;
    Ok(json!({ "registryId": account.as_str(), "replicationConfiguration": { "rules": [] } }))
}

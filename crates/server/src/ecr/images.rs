//! Image operations: DescribeImages, ListImages, BatchGetImage, BatchDeleteImage, PutImage.

use berth_core::{Digest, MAX_MANIFEST_BYTES, StorageClass, Tag};
use berth_registry::{
    DescribedImage, ImageFailure, ImageIdInput, ImageListFilter, ImageRef, ImageStatus, RepoPath, TagFilter,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::repositories::{constraint, epoch_seconds, registry_id, repository_name};
use super::{Context, EcrError};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ImageIdentifier {
    pub(super) image_digest: Option<String>,
    pub(super) image_tag: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct ImageFilter {
    tag_status: Option<String>,
    image_status: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DescribeImagesInput {
    registry_id: Option<String>,
    repository_name: String,
    image_ids: Option<Vec<ImageIdentifier>>,
    next_token: Option<String>,
    max_results: Option<i64>,
    filter: Option<ImageFilter>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListImagesInput {
    registry_id: Option<String>,
    repository_name: String,
    next_token: Option<String>,
    max_results: Option<i64>,
    filter: Option<ImageFilter>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BatchGetImageInput {
    registry_id: Option<String>,
    repository_name: String,
    image_ids: Vec<ImageIdentifier>,
    accepted_media_types: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BatchDeleteImageInput {
    registry_id: Option<String>,
    repository_name: String,
    image_ids: Vec<ImageIdentifier>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PutImageInput {
    registry_id: Option<String>,
    repository_name: String,
    image_manifest: String,
    image_manifest_media_type: Option<String>,
    image_tag: Option<String>,
    image_digest: Option<String>,
}

pub(super) fn repo(ctx: &Context<'_>, registry: Option<&str>, name: &str) -> Result<RepoPath, EcrError> {
    Ok(RepoPath { account: registry_id(ctx, registry)?, name: repository_name(name)? })
}

pub(super) fn image_ids(ids: &[ImageIdentifier]) -> Result<Vec<ImageIdInput>, EcrError> {
    if ids.is_empty() || ids.len() > 100 {
        return Err(constraint("imageIds", "must have 1 to 100 members"));
    }
    Ok(ids
        .iter()
        .map(|i| ImageIdInput { digest: i.image_digest.clone(), tag: i.image_tag.clone() })
        .collect())
}

pub(super) fn tag_filter(filter: Option<&ImageFilter>) -> Result<TagFilter, EcrError> {
    match filter.and_then(|f| f.tag_status.as_deref()) {
        None | Some("ANY") => Ok(TagFilter::Any),
        Some("TAGGED") => Ok(TagFilter::Tagged),
        Some("UNTAGGED") => Ok(TagFilter::Untagged),
        Some(_) => Err(constraint("filter.tagStatus", "must be one of [TAGGED, UNTAGGED, ANY]")),
    }
}

/// DescribeImages' and ListImages' filter: ECR lists only active images unless asked otherwise.
fn list_filter(filter: Option<&ImageFilter>) -> Result<ImageListFilter, EcrError> {
    let status = match filter.and_then(|f| f.image_status.as_deref()) {
        None | Some("ACTIVE") => Some(ImageStatus::Active),
        Some("ARCHIVED") => Some(ImageStatus::Archived),
        Some("ACTIVATING") => Some(ImageStatus::Activating),
        Some("ANY") => None,
        Some(_) => {
            return Err(constraint(
                "filter.imageStatus",
                "must be one of [ACTIVE, ARCHIVED, ACTIVATING, ANY]",
            ));
        }
    };
    Ok(ImageListFilter { tags: tag_filter(filter)?, status })
}

fn max_results(given: Option<i64>, default: u32) -> Result<u32, EcrError> {
    match given {
        None => Ok(default),
        Some(n @ 1..=1000) => Ok(n as u32),
        Some(_) => Err(constraint("maxResults", "must be between 1 and 1000")),
    }
}

pub(super) fn image_id_json(image: &ImageRef) -> Value {
    let mut id = json!({ "imageDigest": image.digest.to_string() });
    if let Some(tag) = &image.tag {
        id["imageTag"] = json!(tag);
    }
    id
}

fn failure_json(failure: &ImageFailure) -> Value {
    let mut id = json!({});
    if let Some(d) = &failure.id.digest {
        id["imageDigest"] = json!(d);
    }
    if let Some(t) = &failure.id.tag {
        id["imageTag"] = json!(t);
    }
    json!({ "imageId": id, "failureCode": failure.code, "failureReason": failure.reason })
}

fn image_detail_json(repo: &RepoPath, described: &DescribedImage) -> Value {
    let detail = &described.detail;
    let record = &detail.record;
    let mut out = json!({
        "registryId": repo.account.as_str(),
        "repositoryName": repo.name.as_str(),
        "imageDigest": record.digest.to_string(),
        "imageSizeInBytes": record.image_size,
        "imagePushedAt": epoch_seconds(record.pushed_at),
        "imageManifestMediaType": record.media_type,
        "imageStatus": ImageStatus::of(record.storage_class).as_str(),
    });
    if let Some(at) = record.last_archived_at {
        out["lastArchivedAt"] = epoch_seconds(at);
    }
    if let Some(at) = record.last_activated_at {
        out["lastActivatedAt"] = epoch_seconds(at);
    }
    if !detail.tags.is_empty() {
        out["imageTags"] = json!(detail.tags);
    }
    if let Some(at) = record.last_pulled_at {
        out["lastRecordedPullTime"] = epoch_seconds(at);
    }
    if let Some(t) = &record.artifact_type {
        out["artifactMediaType"] = json!(t);
    }
    if let Some(subject) = &record.subject {
        out["subjectManifestDigest"] = json!(subject.to_string());
    }
    if let Some(scan) = &described.scan {
        out["imageScanStatus"] = json!({"status": scan.status, "description": scan.description});
        if let Some(completed) = scan.completed_at {
            let mut summary = json!({
                "imageScanCompletedAt": epoch_seconds(completed),
                "findingSeverityCounts": scan.severity_counts,
            });
            if let Some(at) = scan.database_at {
                summary["vulnerabilitySourceUpdatedAt"] = epoch_seconds(at);
            }
            out["imageScanFindingsSummary"] = summary;
        }
    }
    out
}

pub(crate) async fn describe_images(
    ctx: &Context<'_>,
    input: DescribeImagesInput,
) -> Result<Value, EcrError> {
    let repo = repo(ctx, input.registry_id.as_deref(), &input.repository_name)?;
    let ids = input.image_ids.as_deref().map(image_ids).transpose()?;
    if ids.is_some() && (input.next_token.is_some() || input.max_results.is_some()) {
        return Err(EcrError::invalid_parameter("nextToken and maxResults cannot be used with imageIds"));
    }
    let filter = list_filter(input.filter.as_ref())?;
    let max = max_results(input.max_results, 100)?;
    let (details, next) = ctx
        .registry
        .describe_images(&ctx.caller, &repo, ids.as_deref(), filter, input.next_token.as_deref(), max)
        .await?;
    let mut out =
        json!({ "imageDetails": details.iter().map(|d| image_detail_json(&repo, d)).collect::<Vec<_>>() });
    if let Some(token) = next {
        out["nextToken"] = json!(token);
    }
    Ok(out)
}

pub(crate) async fn list_images(ctx: &Context<'_>, input: ListImagesInput) -> Result<Value, EcrError> {
    let repo = repo(ctx, input.registry_id.as_deref(), &input.repository_name)?;
    let filter = list_filter(input.filter.as_ref())?;
    let max = max_results(input.max_results, 100)?;
    let (ids, next) =
        ctx.registry.list_images(&ctx.caller, &repo, filter, input.next_token.as_deref(), max).await?;
    let mut out = json!({ "imageIds": ids.iter().map(image_id_json).collect::<Vec<_>>() });
    if let Some(token) = next {
        out["nextToken"] = json!(token);
    }
    Ok(out)
}

pub(crate) async fn batch_get_image(ctx: &Context<'_>, input: BatchGetImageInput) -> Result<Value, EcrError> {
    let repo = repo(ctx, input.registry_id.as_deref(), &input.repository_name)?;
    let ids = image_ids(&input.image_ids)?;
    if let Some(types) = &input.accepted_media_types
        && (types.is_empty() || types.len() > 100)
    {
        return Err(constraint("acceptedMediaTypes", "must have 1 to 100 members"));
    }
    let (found, failures) =
        ctx.registry.batch_get_image(&ctx.caller, &repo, &ids, input.accepted_media_types.as_deref()).await?;
    let images: Vec<Value> = found
        .iter()
        .map(|image| {
            json!({
                "registryId": repo.account.as_str(),
                "repositoryName": repo.name.as_str(),
                "imageId": image_id_json(&image.id),
                "imageManifest": String::from_utf8_lossy(&image.content.bytes),
                "imageManifestMediaType": image.content.record.media_type,
            })
        })
        .collect();
    Ok(json!({ "images": images, "failures": failures.iter().map(failure_json).collect::<Vec<_>>() }))
}

pub(crate) async fn batch_delete_image(
    ctx: &Context<'_>,
    input: BatchDeleteImageInput,
) -> Result<Value, EcrError> {
    let repo = repo(ctx, input.registry_id.as_deref(), &input.repository_name)?;
    let ids = image_ids(&input.image_ids)?;
    let (deleted, failures) = ctx.registry.batch_delete_image(&ctx.caller, &repo, &ids).await?;
    Ok(json!({
        "imageIds": deleted.iter().map(image_id_json).collect::<Vec<_>>(),
        "failures": failures.iter().map(failure_json).collect::<Vec<_>>(),
    }))
}

pub(crate) async fn put_image(ctx: &Context<'_>, input: PutImageInput) -> Result<Value, EcrError> {
    let repo = repo(ctx, input.registry_id.as_deref(), &input.repository_name)?;
    if input.image_manifest.is_empty() || input.image_manifest.len() > MAX_MANIFEST_BYTES {
        return Err(constraint("imageManifest", "must have length between 1 and 4194304"));
    }
    let tag = match &input.image_tag {
        None => None,
        Some(t) => {
            Some(t.parse::<Tag>().map_err(|e: berth_core::InvalidInput| constraint("imageTag", &e.reason))?)
        }
    };
    let digest = match &input.image_digest {
        None => None,
        Some(d) => Some(
            d.parse::<Digest>()
                .map_err(|e: berth_core::InvalidInput| constraint("imageDigest", &e.reason))?,
        ),
    };
    let manifest = bytes::Bytes::from(input.image_manifest.clone().into_bytes());
    let image = ctx
        .registry
        .put_image(
            &ctx.caller,
            &repo,
            manifest,
            input.image_manifest_media_type.as_deref(),
            tag.as_ref(),
            digest.as_ref(),
        )
        .await?;
    let media_type = input.image_manifest_media_type.clone().unwrap_or_else(|| {
        serde_json::from_str::<Value>(&input.image_manifest)
            .ok()
            .and_then(|m| m["mediaType"].as_str().map(str::to_owned))
            .unwrap_or_default()
    });
    Ok(json!({
        "image": {
            "registryId": repo.account.as_str(),
            "repositoryName": repo.name.as_str(),
            "imageId": image_id_json(&image),
            "imageManifest": input.image_manifest,
            "imageManifestMediaType": media_type,
        }
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SubjectIdentifier {
    image_digest: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReferrersFilter {
    artifact_types: Option<Vec<String>>,
    artifact_status: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListImageReferrersInput {
    registry_id: Option<String>,
    repository_name: String,
    subject_id: SubjectIdentifier,
    filter: Option<ReferrersFilter>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

pub(crate) async fn list_image_referrers(
    ctx: &Context<'_>,
    input: ListImageReferrersInput,
) -> Result<Value, EcrError> {
    let repo = repo(ctx, input.registry_id.as_deref(), &input.repository_name)?;
    let subject: Digest = input
        .subject_id
        .image_digest
        .parse()
        .map_err(|e: berth_core::InvalidInput| constraint("subjectId.imageDigest", &e.reason))?;
    let filter = input.filter.unwrap_or_default();
    let types = filter.artifact_types.unwrap_or_default();
    // ListImageReferrers is one of ECR's newer operations, which answer a broken constraint of
    // their own inputs with ValidationException.
    if types.len() > 5 {
        return Err(EcrError::validation(
            "filter.artifactTypes",
            &format!("must have length less than or equal to 5, not {}", types.len()),
        ));
    }
    if let Some(status) = &filter.artifact_status
        && !["ACTIVE", "ARCHIVED", "ACTIVATING", "ANY"].contains(&status.as_str())
    {
        return Err(EcrError::validation(
            "filter.artifactStatus",
            "must satisfy enum value set: [ACTIVE, ARCHIVED, ACTIVATING, ANY]",
        ));
    }
    let max = match input.max_results {
        None => 50,
        Some(n @ 1..=50) => n as usize,
        Some(_) => return Err(EcrError::validation("maxResults", "must be between 1 and 50")),
    };
    let mut referrers = ctx.registry.referrers(&ctx.caller, &repo, &subject, None).await?;
    referrers
        .retain(|r| types.is_empty() || r.record.artifact_type.as_ref().is_some_and(|t| types.contains(t)));
    // Referrers come ordered by digest; the token is the last digest of the page.
    let start = match &input.next_token {
        None => 0,
        Some(token) => {
            let last = ctx.registry.open_referrers_token(&repo, &subject, token)?;
            referrers.iter().position(|r| r.record.digest.to_string() > last).unwrap_or(referrers.len())
        }
    };
    let page: Vec<_> = referrers.iter().skip(start).take(max).collect();
    let next = (start + page.len() < referrers.len())
        .then(|| {
            page.last()
                .map(|r| ctx.registry.seal_referrers_token(&repo, &subject, &r.record.digest.to_string()))
        })
        .flatten();
    let items: Vec<Value> = page
        .iter()
        .map(|r| {
            let mut item = json!({
                "digest": r.record.digest.to_string(),
                "mediaType": r.record.media_type,
                "size": r.record.size,
                "artifactStatus": "ACTIVE",
            });
            if let Some(t) = &r.record.artifact_type {
                item["artifactType"] = json!(t);
            }
            if !r.annotations.is_empty() {
                item["annotations"] = json!(r.annotations);
            }
            item
        })
        .collect();
    let mut out = json!({ "referrers": items });
    if let Some(token) = next {
        out["nextToken"] = json!(token);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UpdateImageStorageClassInput {
    registry_id: Option<String>,
    repository_name: String,
    image_id: ImageIdentifier,
    target_storage_class: String,
}

pub(crate) async fn update_image_storage_class(
    ctx: &Context<'_>,
    input: UpdateImageStorageClassInput,
) -> Result<Value, EcrError> {
    let repo = repo(ctx, input.registry_id.as_deref(), &input.repository_name)?;
    let id = ImageIdInput { digest: input.image_id.image_digest, tag: input.image_id.image_tag };
    let target = StorageClass::from_api(&input.target_storage_class)
        .ok_or_else(|| constraint("targetStorageClass", "must be one of [STANDARD, ARCHIVE]"))?;
    let (image, status) = ctx.registry.update_image_storage_class(&ctx.caller, &repo, &id, target).await?;
    Ok(json!({
        "registryId": repo.account.as_str(),
        "repositoryName": repo.name.as_str(),
        "imageId": image_id_json(&image),
        "imageStatus": status.as_str(),
    }))
}

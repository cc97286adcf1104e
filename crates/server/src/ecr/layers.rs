//! Layer operations: BatchCheckLayerAvailability, GetDownloadUrlForLayer, InitiateLayerUpload,
//! UploadLayerPart, CompleteLayerUpload.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use berth_core::Digest;
use berth_registry::{LayerCheck, RepoPath};
use serde::Deserialize;
use serde_json::{Value, json};

use super::repositories::{constraint, registry_id, repository_name};
use super::{Context, EcrError};

/// Largest blob ECR's model allows in one UploadLayerPart (the registry's own part limit,
/// ECR's quota, is smaller).
const MAX_PART_BLOB_BYTES: usize = 20 * 1024 * 1024;
/// The part size InitiateLayerUpload advises, as ECR's: its largest part.
const PART_SIZE: u64 = berth_registry::limits::MAX_LAYER_PART_BYTES;
/// The media type ECR reports for a layer it holds.
const LAYER_MEDIA_TYPE: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BatchCheckLayerAvailabilityInput {
    registry_id: Option<String>,
    repository_name: String,
    layer_digests: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GetDownloadUrlForLayerInput {
    registry_id: Option<String>,
    repository_name: String,
    layer_digest: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InitiateLayerUploadInput {
    registry_id: Option<String>,
    repository_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UploadLayerPartInput {
    registry_id: Option<String>,
    repository_name: String,
    upload_id: String,
    part_first_byte: i64,
    part_last_byte: i64,
    layer_part_blob: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CompleteLayerUploadInput {
    registry_id: Option<String>,
    repository_name: String,
    upload_id: String,
    layer_digests: Vec<String>,
}

fn repo(ctx: &Context<'_>, registry: Option<&str>, name: &str) -> Result<RepoPath, EcrError> {
    Ok(RepoPath { account: registry_id(ctx, registry)?, name: repository_name(name)? })
}

/// Upload ids are UUIDs in ECR's model.
fn upload_id(id: &str) -> Result<&str, EcrError> {
    let ok = id.len() == 36
        && id
            .bytes()
            .enumerate()
            .all(|(i, b)| if [8, 13, 18, 23].contains(&i) { b == b'-' } else { b.is_ascii_hexdigit() });
    if ok {
        Ok(id)
    } else {
        Err(constraint(
            "uploadId",
            "must satisfy regular expression '[a-fA-F0-9]{8}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{12}'",
        ))
    }
}

pub(crate) async fn batch_check_layer_availability(
    ctx: &Context<'_>,
    input: BatchCheckLayerAvailabilityInput,
) -> Result<Value, EcrError> {
    let repo = repo(ctx, input.registry_id.as_deref(), &input.repository_name)?;
    if input.layer_digests.is_empty() || input.layer_digests.len() > 100 {
        return Err(constraint("layerDigests", "must have 1 to 100 members"));
    }
    let checks = ctx.registry.check_layers(&ctx.caller, &repo, &input.layer_digests).await?;
    let (mut layers, mut failures) = (Vec::new(), Vec::new());
    for check in checks {
        match check {
            LayerCheck::Available { digest, size } => layers.push(json!({
                "layerDigest": digest.to_string(),
                "layerAvailability": "AVAILABLE",
                "layerSize": size,
                "mediaType": LAYER_MEDIA_TYPE,
            })),
            LayerCheck::Missing { digest, code, reason } => {
                failures.push(json!({ "layerDigest": digest, "failureCode": code, "failureReason": reason }));
            }
        }
    }
    Ok(json!({ "layers": layers, "failures": failures }))
}

pub(crate) async fn get_download_url_for_layer(
    ctx: &Context<'_>,
    input: GetDownloadUrlForLayerInput,
) -> Result<Value, EcrError> {
    let repo = repo(ctx, input.registry_id.as_deref(), &input.repository_name)?;
    let digest: Digest = input
        .layer_digest
        .parse()
        .map_err(|e: berth_core::InvalidInput| constraint("layerDigest", &e.reason))?;
    let token = ctx.registry.download_token(&ctx.caller, &repo, &digest).await?;
    Ok(json!({
        "downloadUrl": ctx.registry.settings().path_url(
            &ctx.host,
            &repo.to_string(),
            &format!("/blobs/{digest}?{}={token}", crate::DOWNLOAD_TOKEN_PARAM)
        ),
        "layerDigest": digest.to_string(),
    }))
}

pub(crate) async fn initiate_layer_upload(
    ctx: &Context<'_>,
    input: InitiateLayerUploadInput,
) -> Result<Value, EcrError> {
    let repo = repo(ctx, input.registry_id.as_deref(), &input.repository_name)?;
    let status = ctx.registry.initiate_layer_upload(&ctx.caller, &repo).await?;
    Ok(json!({ "uploadId": status.id, "partSize": PART_SIZE }))
}

pub(crate) async fn upload_layer_part(
    ctx: &Context<'_>,
    input: UploadLayerPartInput,
) -> Result<Value, EcrError> {
    let repo = repo(ctx, input.registry_id.as_deref(), &input.repository_name)?;
    let id = upload_id(&input.upload_id)?;
    let bytes = STANDARD
        .decode(input.layer_part_blob.as_bytes())
        .map_err(|_| constraint("layerPartBlob", "must be base64"))?;
    if bytes.len() > MAX_PART_BLOB_BYTES {
        return Err(constraint("layerPartBlob", "must have length less than or equal to 20971520"));
    }
    let first = u64::try_from(input.part_first_byte)
        .map_err(|_| constraint("partFirstByte", "must be greater than or equal to 0"))?;
    let last = u64::try_from(input.part_last_byte)
        .map_err(|_| constraint("partLastByte", "must be greater than or equal to 0"))?;
    let status = ctx.registry.upload_layer_part(&ctx.caller, &repo, id, first, last, bytes.into()).await?;
    Ok(json!({
        "registryId": repo.account.as_str(),
        "repositoryName": repo.name.as_str(),
        "uploadId": status.id,
        "lastByteReceived": status.length.saturating_sub(1),
    }))
}

pub(crate) async fn complete_layer_upload(
    ctx: &Context<'_>,
    input: CompleteLayerUploadInput,
) -> Result<Value, EcrError> {
    let repo = repo(ctx, input.registry_id.as_deref(), &input.repository_name)?;
    let id = upload_id(&input.upload_id)?;
    let [digest] = input.layer_digests.as_slice() else {
        return Err(constraint("layerDigests", "must have exactly 1 member"));
    };
    let digest: Digest =
        digest.parse().map_err(|e: berth_core::InvalidInput| constraint("layerDigests", &e.reason))?;
    let stored = ctx.registry.complete_layer_upload(&ctx.caller, &repo, id, &digest).await?;
    Ok(json!({
        "registryId": repo.account.as_str(),
        "repositoryName": repo.name.as_str(),
        "uploadId": id,
        "layerDigest": stored.to_string(),
    }))
}

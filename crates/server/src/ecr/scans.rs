//! Scanning operations: StartImageScan and DescribeImageScanFindings.

use berth_registry::{ImageIdInput, ScanFinding};
use serde::Deserialize;
use serde_json::{Value, json};

use super::images::{ImageIdentifier, image_id_json, repo};
use super::repositories::{constraint, epoch_seconds};
use super::{Context, EcrError};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StartImageScanInput {
    registry_id: Option<String>,
    repository_name: String,
    image_id: ImageIdentifier,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DescribeFindingsInput {
    registry_id: Option<String>,
    repository_name: String,
    image_id: ImageIdentifier,
    next_token: Option<String>,
    max_results: Option<i64>,
}

fn image_id(id: ImageIdentifier) -> ImageIdInput {
    ImageIdInput { digest: id.image_digest, tag: id.image_tag }
}

pub(crate) async fn start_image_scan(
    ctx: &Context<'_>,
    input: StartImageScanInput,
) -> Result<Value, EcrError> {
    let repo = repo(ctx, input.registry_id.as_deref(), &input.repository_name)?;
    let (image, status) =
        ctx.registry.start_image_scan(&ctx.caller, &repo, &image_id(input.image_id)).await?;
    Ok(json!({
        "registryId": repo.account.as_str(),
        "repositoryName": repo.name.as_str(),
        "imageId": image_id_json(&image),
        "imageScanStatus": {"status": status, "description": "The scan is in progress."},
    }))
}

fn finding_json(finding: &ScanFinding) -> Value {
    let mut attributes = vec![
        json!({"key": "package_name", "value": finding.package_name}),
        json!({"key": "package_version", "value": finding.package_version}),
    ];
    if let Some(fixed) = &finding.fixed_version {
        attributes.push(json!({"key": "fixed_version", "value": fixed}));
    }
    if let (Some(score), Some(vector)) = (&finding.cvss_score, &finding.cvss_vector) {
        // ECR names the attributes after CVSS v3, whichever version the vector is.
        attributes.push(json!({"key": "CVSS3_SCORE", "value": score}));
        attributes.push(json!({"key": "CVSS3_VECTOR", "value": vector}));
    }
    json!({"name": finding.name, "uri": finding.uri, "severity": finding.severity, "attributes": attributes})
}

pub(crate) async fn describe_image_scan_findings(
    ctx: &Context<'_>,
    input: DescribeFindingsInput,
) -> Result<Value, EcrError> {
    let repo = repo(ctx, input.registry_id.as_deref(), &input.repository_name)?;
    let max = match input.max_results {
        None => 100,
        Some(n @ 1..=1000) => n as usize,
        Some(_) => return Err(constraint("maxResults", "must be between 1 and 1000")),
    };
    let report = ctx
        .registry
        .image_scan_report(&ctx.caller, &repo, &image_id(input.image_id), input.next_token.as_deref(), max)
        .await?;
    let mut out = json!({
        "registryId": repo.account.as_str(),
        "repositoryName": repo.name.as_str(),
        "imageId": image_id_json(&report.image),
        "imageScanStatus": {"status": report.status, "description": report.description},
    });
    if let Some(completed) = report.completed_at {
        let mut findings = json!({
            "imageScanCompletedAt": epoch_seconds(completed),
            "findingSeverityCounts": report.severity_counts,
            "findings": report.findings.iter().map(finding_json).collect::<Vec<_>>(),
        });
        if let Some(at) = report.database_at {
            findings["vulnerabilitySourceUpdatedAt"] = epoch_seconds(at);
        }
        out["imageScanFindings"] = findings;
    }
    if let Some(token) = report.next_token {
        out["nextToken"] = json!(token);
    }
    Ok(out)
}

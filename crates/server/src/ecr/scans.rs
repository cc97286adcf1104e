//! Scanning operations: StartImageScan, DescribeImageScanFindings, and the registry's scanning
//! configuration (Put/GetRegistryScanningConfiguration, BatchGetRepositoryScanningConfiguration).

use berth_core::repository_arn;
use berth_registry::{ImageIdInput, RegistryScanning, ScanFinding, ScanningRule};
use serde::Deserialize;
use serde_json::{Value, json};

use super::images::{ImageIdentifier, image_id_json, repo};
use super::repositories::{constraint, epoch_seconds, registry_id};
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RepositoryFilter {
    filter: String,
    filter_type: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ScanningRuleInput {
    scan_frequency: String,
    repository_filters: Vec<RepositoryFilter>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PutRegistryScanningInput {
    scan_type: Option<String>,
    #[serde(default)]
    rules: Vec<ScanningRuleInput>,
}

#[derive(Deserialize)]
pub(crate) struct NoInput {}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BatchGetScanningInput {
    repository_names: Vec<String>,
}

fn configuration_json(configuration: &RegistryScanning) -> Value {
    let rules: Vec<Value> = configuration
        .rules
        .iter()
        .map(|rule| {
            let filters: Vec<Value> = rule
                .repository_filters
                .iter()
                .map(|f| json!({"filter": f, "filterType": "WILDCARD"}))
                .collect();
            json!({"scanFrequency": rule.scan_frequency, "repositoryFilters": filters})
        })
        .collect();
    json!({"scanType": configuration.scan_type, "rules": rules})
}

pub(crate) async fn put_registry_scanning(
    ctx: &Context<'_>,
    input: PutRegistryScanningInput,
) -> Result<Value, EcrError> {
    let account = registry_id(ctx, None)?;
    let mut rules = Vec::with_capacity(input.rules.len());
    for rule in input.rules {
        let mut filters = Vec::with_capacity(rule.repository_filters.len());
        for filter in rule.repository_filters {
            if filter.filter_type != "WILDCARD" {
                return Err(constraint("rules.repositoryFilters.filterType", "must be WILDCARD"));
            }
            filters.push(filter.filter);
        }
        rules.push(ScanningRule { scan_frequency: rule.scan_frequency, repository_filters: filters });
    }
    let configuration =
        RegistryScanning { scan_type: input.scan_type.unwrap_or_else(|| "BASIC".to_owned()), rules };
    let stored = ctx.registry.put_registry_scanning(&ctx.caller, &account, configuration).await?;
    Ok(json!({"registryScanningConfiguration": configuration_json(&stored)}))
}

pub(crate) async fn get_registry_scanning(ctx: &Context<'_>, _input: NoInput) -> Result<Value, EcrError> {
    let account = registry_id(ctx, None)?;
    let configuration = ctx.registry.registry_scanning(&ctx.caller, &account).await?;
    Ok(json!({"registryId": account.as_str(), "scanningConfiguration": configuration_json(&configuration)}))
}

pub(crate) async fn batch_get_repository_scanning(
    ctx: &Context<'_>,
    input: BatchGetScanningInput,
) -> Result<Value, EcrError> {
    if input.repository_names.is_empty() || input.repository_names.len() > 25 {
        return Err(constraint("repositoryNames", "must have 1 to 25 members"));
    }
    let repos =
        input.repository_names.iter().map(|name| repo(ctx, None, name)).collect::<Result<Vec<_>, _>>()?;
    let (found, missing) = ctx.registry.repository_scanning(&ctx.caller, &repos).await?;
    let region = &ctx.registry.settings().region;
    let configurations: Vec<Value> = found
        .iter()
        .map(|s| {
            let filters: Vec<Value> =
                s.applied_filters.iter().map(|f| json!({"filter": f, "filterType": "WILDCARD"})).collect();
            json!({
                "repositoryArn": repository_arn(region, &s.repository.account, &s.repository.name),
                "repositoryName": s.repository.name.as_str(),
                "scanOnPush": s.scan_on_push,
                "scanFrequency": s.frequency,
                "appliedScanFilters": filters,
            })
        })
        .collect();
    let failures: Vec<Value> = missing
        .iter()
        .map(|r| {
            json!({"repositoryName": r.name.as_str(), "failureCode": "REPOSITORY_NOT_FOUND",
                   "failureReason": "REPOSITORY_NOT_FOUND"})
        })
        .collect();
    Ok(json!({"scanningConfigurations": configurations, "failures": failures}))
}

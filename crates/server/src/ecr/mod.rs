//! The ECR control plane: AWS JSON 1.1 over `POST /`, signed with SigV4.
//!
//! One request: resolve `X-Amz-Target` to an operation, check the signature's envelope and key
//! from the headers, only then read the body (bounded per operation and by the shared budget),
//! verify the signature over it, decode the input, run one registry operation, encode the
//! output. Constraints of ECR's model are enforced here, since AWS clients check only minimums.

mod error;
mod images;
mod layers;
mod lifecycle;
mod operations;
mod policies;
mod repositories;
mod scans;
mod templates;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use berth_iam::sigv4::SignedRequest;
use berth_registry::{Caller, Registry, RegistryError};
use http::{HeaderValue, StatusCode, header};
use serde::de::DeserializeOwned;

use crate::App;
use error::EcrError;
use operations::{Operation, Target};

pub(crate) const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// Room for the JSON around an operation's largest member.
const JSON_SLACK: usize = 64 * 1024;
/// Largest body of an operation with no large member (policies, lifecycle texts and templates
/// are tens of KiB at most).
const SMALL_BODY_BYTES: usize = 256 * 1024;

/// The largest body `operation` can need: a layer part of ECR's maximum size in base64, a
/// manifest of the largest size with every byte escaped in JSON, or a small input.
fn max_body_bytes(operation: Operation) -> usize {
    match operation {
        Operation::UploadLayerPart => {
            (berth_registry::limits::MAX_LAYER_PART_BYTES as usize).div_ceil(3) * 4 + JSON_SLACK
        }
        // A byte of the manifest is at most three in JSON (`\uXXXX` for two-byte characters).
        Operation::PutImage => berth_core::MAX_MANIFEST_BYTES * 3 + JSON_SLACK,
        _ => SMALL_BODY_BYTES,
    }
}

/// What every operation handler gets.
pub(crate) struct Context<'a> {
    registry: &'a Registry,
    caller: Caller,
    /// The address the client reached berth at, for `repositoryUri` and `proxyEndpoint`.
    host: String,
}

/// Answers one ECR API request; its `x-amzn-RequestId` is the router's, as for every surface.
pub(crate) async fn dispatch(State(app): State<Arc<App>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    match handle(&app, &parts, body).await {
        Ok(output) => {
            let mut response = (StatusCode::OK, output.to_string()).into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
            response
        }
        Err(e) => e.into_response(),
    }
}

/// The operation a request names, for metrics: a served operation's name, or one of
/// `unsupported` and `unknown`, so that no request can invent a label value.
pub(crate) fn operation_label(headers: &http::HeaderMap) -> &'static str {
    match operations::parse_target(headers.get("x-amz-target").and_then(|v| v.to_str().ok())) {
        Target::Served(op) => op.name(),
        Target::NotSupported(_) => "unsupported",
        Target::Unknown => "unknown",
    }
}

async fn handle(app: &App, parts: &http::request::Parts, body: Body) -> Result<serde_json::Value, EcrError> {
    let registry = app.registry.as_ref();
    let target = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok());
    let operation = match operations::parse_target(target) {
        Target::Served(op) => op,
        Target::NotSupported(name) => {
            return Err(EcrError::new(
                "UnsupportedOperationException",
                format!("berth does not support the ECR operation {name}"),
            ));
        }
        Target::Unknown => {
            return Err(EcrError::new(
                "UnknownOperationException",
                format!("{:?} is not an operation of the ECR API", target.unwrap_or("")),
            ));
        }
    };
    // Who is asking is settled from the headers first: a request without a valid envelope and
    // an active key is refused before a byte of its body is read.
    let headers = signed_headers(&parts.headers)?;
    let pending = registry.begin_sigv4(&headers).await?;
    let limit = max_body_bytes(operation);
    let idle = app.settings.body_idle_timeout;
    let body = crate::body::read_bounded(body, idle, limit, "request body", &app.budget).await.map_err(
        |e| match e {
            RegistryError::TooLarge { .. } => EcrError::new(
                "SerializationException",
                format!("the request body is larger than {limit} bytes, the most {} needs", operation.name()),
            ),
            other => other.into(),
        },
    )?;
    crate::audit::note_body(parts, &body.bytes);
    let body = &body.bytes;
    let signed = SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        body,
    };
    let caller = registry.finish_sigv4(pending, &signed).await?.with_origin(&app.origin(parts));
    crate::audit::note_caller(parts, &caller);
    let host =
        parts.headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost").to_owned();
    let ctx = Context { registry, caller, host };

    match operation {
        Operation::GetAuthorizationToken => repositories::get_authorization_token(&ctx, input(body)?).await,
        Operation::CreateRepository => repositories::create_repository(&ctx, input(body)?).await,
        Operation::DescribeRepositories => repositories::describe_repositories(&ctx, input(body)?).await,
        Operation::DeleteRepository => repositories::delete_repository(&ctx, input(body)?).await,
        Operation::DescribeImages => images::describe_images(&ctx, input(body)?).await,
        Operation::ListImages => images::list_images(&ctx, input(body)?).await,
        Operation::BatchGetImage => images::batch_get_image(&ctx, input(body)?).await,
        Operation::BatchDeleteImage => images::batch_delete_image(&ctx, input(body)?).await,
        Operation::PutImage => images::put_image(&ctx, input(body)?).await,
        Operation::ListImageReferrers => images::list_image_referrers(&ctx, input(body)?).await,
        Operation::BatchCheckLayerAvailability => {
            layers::batch_check_layer_availability(&ctx, input(body)?).await
        }
        Operation::GetDownloadUrlForLayer => layers::get_download_url_for_layer(&ctx, input(body)?).await,
        Operation::InitiateLayerUpload => layers::initiate_layer_upload(&ctx, input(body)?).await,
        Operation::UploadLayerPart => layers::upload_layer_part(&ctx, input(body)?).await,
        Operation::CompleteLayerUpload => layers::complete_layer_upload(&ctx, input(body)?).await,
        Operation::DescribeRegistry => repositories::describe_registry(&ctx, input(body)?).await,
        Operation::PutImageTagMutability => repositories::put_image_tag_mutability(&ctx, input(body)?).await,
        Operation::PutImageScanningConfiguration => {
            repositories::put_image_scanning_configuration(&ctx, input(body)?).await
        }
        Operation::TagResource => repositories::tag_resource(&ctx, input(body)?).await,
        Operation::UntagResource => repositories::untag_resource(&ctx, input(body)?).await,
        Operation::ListTagsForResource => repositories::list_tags_for_resource(&ctx, input(body)?).await,
        Operation::CreateRepositoryCreationTemplate => templates::create(&ctx, input(body)?).await,
        Operation::SetRepositoryPolicy => policies::set_repository_policy(&ctx, input(body)?).await,
        Operation::GetRepositoryPolicy => policies::get_repository_policy(&ctx, input(body)?).await,
        Operation::DeleteRepositoryPolicy => policies::delete_repository_policy(&ctx, input(body)?).await,
        Operation::PutRegistryPolicy => policies::put_registry_policy(&ctx, input(body)?).await,
        Operation::GetRegistryPolicy => policies::get_registry_policy(&ctx, input(body)?).await,
        Operation::DeleteRegistryPolicy => policies::delete_registry_policy(&ctx, input(body)?).await,
        Operation::UpdateRepositoryCreationTemplate => templates::update(&ctx, input(body)?).await,
        Operation::DescribeRepositoryCreationTemplates => templates::describe(&ctx, input(body)?).await,
        Operation::DeleteRepositoryCreationTemplate => templates::delete(&ctx, input(body)?).await,
        Operation::PutLifecyclePolicy => lifecycle::put_lifecycle_policy(&ctx, input(body)?).await,
        Operation::GetLifecyclePolicy => lifecycle::get_lifecycle_policy(&ctx, input(body)?).await,
        Operation::DeleteLifecyclePolicy => lifecycle::delete_lifecycle_policy(&ctx, input(body)?).await,
        Operation::StartLifecyclePolicyPreview => {
            lifecycle::start_lifecycle_policy_preview(&ctx, input(body)?).await
        }
        Operation::GetLifecyclePolicyPreview => {
            lifecycle::get_lifecycle_policy_preview(&ctx, input(body)?).await
        }
        Operation::UpdateImageStorageClass => images::update_image_storage_class(&ctx, input(body)?).await,
        Operation::StartImageScan => scans::start_image_scan(&ctx, input(body)?).await,
        Operation::DescribeImageScanFindings => scans::describe_image_scan_findings(&ctx, input(body)?).await,
        Operation::PutRegistryScanningConfiguration => scans::put_registry_scanning(&ctx, input(body)?).await,
        Operation::GetRegistryScanningConfiguration => scans::get_registry_scanning(&ctx, input(body)?).await,
        Operation::BatchGetRepositoryScanningConfiguration => {
            scans::batch_get_repository_scanning(&ctx, input(body)?).await
        }
    }
}

/// The request's headers as text, names in lower case, for signature verification.
fn signed_headers(headers: &http::HeaderMap) -> Result<Vec<(String, String)>, EcrError> {
    headers
        .iter()
        .map(|(name, value)| {
            let value = value.to_str().map_err(|_| {
                EcrError::new("IncompleteSignatureException", format!("header {name} is not valid text"))
            })?;
            Ok((name.as_str().to_owned(), value.to_owned()))
        })
        .collect()
}

/// Decodes an operation's input; an empty body is an empty input.
fn input<T: DeserializeOwned>(body: &[u8]) -> Result<T, EcrError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) { &b"{}"[..] } else { body };
    serde_json::from_slice(body).map_err(|e| {
        EcrError::new(
            "SerializationException",
            format!("the request body does not match the operation's input: {e}"),
        )
    })
}

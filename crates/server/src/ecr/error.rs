//! Renders errors as AWS JSON 1.1 errors: `{"__type": ..., "message": ...}` with the same name
//! in the `X-Amzn-ErrorType` header (botocore reads the body, other SDKs the header).

use axum::response::{IntoResponse, Response};
use berth_iam::sigv4::SigV4Error;
use berth_registry::RegistryError;
use http::{HeaderValue, StatusCode};
use serde_json::{Map, Value, json};

pub(crate) struct EcrError {
    pub(crate) exception: &'static str,
    pub(crate) message: String,
    pub(crate) status: StatusCode,
    /// The exception's members besides `message` (e.g. `KmsException.kmsError`), sent next to
    /// it in the same object.
    pub(crate) members: Map<String, Value>,
}

impl EcrError {
    pub(crate) fn new(exception: &'static str, message: impl Into<String>) -> Self {
        Self { exception, message: message.into(), status: StatusCode::BAD_REQUEST, members: Map::new() }
    }

    /// Adds a member of the exception's shape besides `message`.
    fn with(mut self, member: &str, value: Value) -> Self {
        self.members.insert(member.to_owned(), value);
        self
    }

    pub(crate) fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new("InvalidParameterException", message)
    }

    /// A broken input constraint of one of ECR's newer operations (creation templates,
    /// ListImageReferrers), which answer with `ValidationException` in the wording of AWS's
    /// validation layer.
    pub(crate) fn validation(member: &str, rule: &str) -> Self {
        Self::new(
            "ValidationException",
            format!(
                "1 validation error detected: Value at '{member}' failed to satisfy constraint: Member {rule}"
            ),
        )
    }
}

impl From<RegistryError> for EcrError {
    fn from(error: RegistryError) -> Self {
        use RegistryError as E;
        let exception = match &error {
            E::Signature(SigV4Error::Missing) => {
                return Self {
                    status: StatusCode::FORBIDDEN,
                    ..Self::new("MissingAuthenticationTokenException", error.to_string())
                };
            }
            E::Signature(e) => e.exception(),
            E::Unauthenticated(_) => "UnrecognizedClientException",
            E::Denied(_) => "AccessDeniedException",
            E::NameUnknown { .. } => "RepositoryNotFoundException",
            E::RepositoryAlreadyExists { .. } => "RepositoryAlreadyExistsException",
            E::RepositoryNotEmpty { .. } => "RepositoryNotEmptyException",
            E::ManifestUnknown(_) | E::ImageNotFound(_) => "ImageNotFoundException",
            // BatchDeleteImage reports it per image (ImageReferencedByManifestList); no other
            // operation deletes a manifest.
            E::ListedByIndex { .. } => "InvalidParameterException",
            E::ImageAlreadyExists(_) => "ImageAlreadyExistsException",
            E::ImageDigestMismatch(_) => "ImageDigestDoesNotMatchException",
            E::LayersNotFound(_) => "LayersNotFoundException",
            E::LayerAlreadyExists(_) => "LayerAlreadyExistsException",
            E::InvalidLayer(_) => "InvalidLayerException",
            E::InvalidLayerPart(part) => {
                return Self::new("InvalidLayerPartException", part.message.clone())
                    .with("registryId", json!(part.registry_id))
                    .with("repositoryName", json!(part.repository_name))
                    .with("uploadId", json!(part.upload_id))
                    .with("lastValidByteReceived", json!(part.last_valid_byte));
            }
            E::LayerPartTooSmall(_) => "LayerPartTooSmallException",
            E::LayerInaccessible(_) => "LayerInaccessibleException",
            E::LimitExceeded(_) | E::TooManyUploads(_) => "LimitExceededException",
            E::Throttled(_) => "ThrottlingException",
            E::Kms { message, kms_error } | E::KeyFailure { message, kms_error } => {
                return Self::new("KmsException", message.clone()).with("kmsError", json!(kms_error));
            }
            E::Validation { member, rule } => return Self::validation(member, rule),
            E::EmptyUpload(_) => "EmptyUploadException",
            E::TooManyTags(_) => "TooManyTagsException",
            E::TemplateAlreadyExists(_) => "TemplateAlreadyExistsException",
            E::TemplateNotFound(_) => "TemplateNotFoundException",
            E::RepositoryPolicyNotFound(_) => "RepositoryPolicyNotFoundException",
            E::RegistryPolicyNotFound(_) => "RegistryPolicyNotFoundException",
            E::LifecyclePolicyNotFound(_) => "LifecyclePolicyNotFoundException",
            E::LifecyclePolicyPreviewInProgress(_) => "LifecyclePolicyPreviewInProgressException",
            E::LifecyclePolicyPreviewNotFound(_) => "LifecyclePolicyPreviewNotFoundException",
            E::ImageArchived(_) => "ImageArchivedException",
            E::ScanNotFound(_) => "ScanNotFoundException",
            E::ImageStorageClassUpdateNotSupported(_) => "ImageStorageClassUpdateNotSupportedException",
            E::TagImmutable(_) => "ImageTagAlreadyExistsException",
            E::BlobUnknown(_) => "LayersNotFoundException",
            // A manifest list whose images are missing; missing layers are the other case.
            E::ManifestBlobUnknown { blobs, .. } if blobs.is_empty() => "ReferencedImagesNotFoundException",
            E::ManifestBlobUnknown { .. } => "LayersNotFoundException",
            E::UploadUnknown(_) => "UploadNotFoundException",
            E::RangeInvalid { .. } => "InvalidLayerPartException",
            E::NameInvalid(_)
            | E::InvalidParameter(_)
            | E::ManifestInvalid(_)
            | E::TagInvalid(_)
            | E::DigestInvalid(_)
            | E::TooLarge { .. }
            | E::BodyInterrupted(_)
            | E::Unsupported(_) => "InvalidParameterException",
            E::Internal(cause) => {
                tracing::error!(error = %cause, "ECR API request failed");
                return Self {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    ..Self::new("ServerException", "internal server error")
                };
            }
        };
        let message = match &error {
            E::NameInvalid(e) => {
                format!("Invalid parameter at 'repositoryName' failed to satisfy constraint: '{}'", e.reason)
            }
            other => other.to_string(),
        };
        Self::new(exception, message)
    }
}

impl IntoResponse for EcrError {
    fn into_response(self) -> Response {
        let mut body = self.members;
        body.insert("__type".to_owned(), json!(self.exception));
        body.insert("message".to_owned(), json!(self.message));
        let body = Value::Object(body);
        let mut response = (self.status, body.to_string()).into_response();
        response
            .extensions_mut()
            .insert(crate::audit::ErrorFacts { code: self.exception.to_owned(), message: self.message });
        let headers = response.headers_mut();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(super::CONTENT_TYPE));
        headers.insert("x-amzn-errortype", HeaderValue::from_static(self.exception));
        response
    }
}

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse;
    use berth_registry::{PartRefusal, RegistryError};
    use http::StatusCode;
    use http_body_util::BodyExt;
    use serde_json::{Value, json};

    use super::EcrError;

    async fn render(error: RegistryError) -> (StatusCode, String, Value) {
        let response = EcrError::from(error).into_response();
        let status = response.status();
        let header = response.headers()["x-amzn-errortype"].to_str().expect("header").to_owned();
        let body = response.into_body().collect().await.expect("body").to_bytes();
        (status, header, serde_json::from_slice(&body).expect("json"))
    }

    fn digest(n: u8) -> berth_core::Digest {
        format!("sha256:{}", format!("{n:02x}").repeat(32)).parse().expect("digest")
    }

    #[tokio::test]
    async fn modeled_members_go_next_to_the_message() {
        let (status, header, body) = render(RegistryError::InvalidLayerPart(Box::new(PartRefusal {
            registry_id: "000000000000".to_owned(),
            repository_name: "team/app".to_owned(),
            upload_id: "0f0f0f0f-0000-4000-8000-000000000000".to_owned(),
            last_valid_byte: 99,
            message: "the part does not continue the upload".to_owned(),
        })))
        .await;
        assert_eq!((status, header.as_str()), (StatusCode::BAD_REQUEST, "InvalidLayerPartException"));
        assert_eq!(
            body,
            json!({
                "__type": "InvalidLayerPartException",
                "message": "the part does not continue the upload",
                "registryId": "000000000000",
                "repositoryName": "team/app",
                "uploadId": "0f0f0f0f-0000-4000-8000-000000000000",
                "lastValidByteReceived": 99,
            })
        );

        let (_, header, body) = render(RegistryError::Kms {
            message: "no KMS".to_owned(),
            kms_error: "NoKmsKeyProvider".to_owned(),
        })
        .await;
        assert_eq!(header, "KmsException");
        assert_eq!(
            body,
            json!({"__type": "KmsException", "message": "no KMS", "kmsError": "NoKmsKeyProvider"})
        );
    }

    #[tokio::test]
    async fn missing_images_of_an_index_and_missing_layers_have_their_own_exceptions() {
        let images = RegistryError::ManifestBlobUnknown { blobs: vec![], manifests: vec![digest(1)] };
        assert_eq!(render(images).await.1, "ReferencedImagesNotFoundException");
        let layers =
            RegistryError::ManifestBlobUnknown { blobs: vec![digest(2)], manifests: vec![digest(1)] };
        assert_eq!(render(layers).await.1, "LayersNotFoundException");
    }

    #[tokio::test]
    async fn each_new_refusal_has_its_exception() {
        for (error, exception) in [
            (RegistryError::InvalidLayer("x".to_owned()), "InvalidLayerException"),
            (RegistryError::LayerPartTooSmall("x".to_owned()), "LayerPartTooSmallException"),
            (RegistryError::LayerInaccessible("x".to_owned()), "LayerInaccessibleException"),
            (RegistryError::LimitExceeded("x".to_owned()), "LimitExceededException"),
            (RegistryError::ImageDigestMismatch("x".to_owned()), "ImageDigestDoesNotMatchException"),
        ] {
            let (status, header, body) = render(error).await;
            assert_eq!((status, header.as_str()), (StatusCode::BAD_REQUEST, exception));
            assert_eq!(body, json!({"__type": exception, "message": "x"}));
        }
        // Validation errors take AWS's validation wording, naming the member.
        let invalid =
            RegistryError::Validation { member: "prefix".to_owned(), rule: "must be short".to_owned() };
        let (status, header, body) = render(invalid).await;
        assert_eq!((status, header.as_str()), (StatusCode::BAD_REQUEST, "ValidationException"));
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains("at 'prefix'") && message.ends_with("Member must be short"), "{message}");
    }

    #[tokio::test]
    async fn infrastructure_failures_are_a_bare_server_exception() {
        let cause = "No such file or directory: /var/lib/berth/uploads/1234".to_owned();
        let (status, header, body) = render(RegistryError::Internal(cause)).await;
        assert_eq!((status, header.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, "ServerException"));
        assert_eq!(body, json!({"__type": "ServerException", "message": "internal server error"}));
    }
}

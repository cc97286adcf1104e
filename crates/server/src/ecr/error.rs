//! Renders errors as AWS JSON 1.1 errors: `{"__type": ..., "message": ...}` with the same name
//! in the `X-Amzn-ErrorType` header (botocore reads the body, other SDKs the header).

use axum::response::{IntoResponse, Response};
use berth_iam::sigv4::SigV4Error;
use berth_registry::RegistryError;
use http::{HeaderValue, StatusCode};
use serde_json::json;

pub(crate) struct EcrError {
    pub(crate) exception: &'static str,
    pub(crate) message: String,
    pub(crate) status: StatusCode,
}

impl EcrError {
    pub(crate) fn new(exception: &'static str, message: impl Into<String>) -> Self {
        Self { exception, message: message.into(), status: StatusCode::BAD_REQUEST }
    }

    pub(crate) fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new("InvalidParameterException", message)
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
            E::ImageAlreadyExists(_) => "ImageAlreadyExistsException",
            E::LayersNotFound(_) => "LayersNotFoundException",
            E::LayerAlreadyExists(_) => "LayerAlreadyExistsException",
            E::EmptyUpload(_) => "EmptyUploadException",
            E::TooManyTags(_) => "TooManyTagsException",
            E::TemplateAlreadyExists(_) => "TemplateAlreadyExistsException",
            E::TemplateNotFound(_) => "TemplateNotFoundException",
            E::RepositoryPolicyNotFound(_) => "RepositoryPolicyNotFoundException",
            E::RegistryPolicyNotFound(_) => "RegistryPolicyNotFoundException",
            E::TagImmutable(_) => "ImageTagAlreadyExistsException",
            E::BlobUnknown(_) | E::ManifestBlobUnknown(_) => "LayersNotFoundException",
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
        let body = json!({ "__type": self.exception, "message": self.message });
        let mut response = (self.status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(super::CONTENT_TYPE));
        headers.insert("x-amzn-errortype", HeaderValue::from_static(self.exception));
        response
    }
}
